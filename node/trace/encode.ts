/** Turning an event into one trace line, whatever the event holds; never throws */
import { MARKER_MAX_FIELDS_CHARS, MARKER_MAX_STRING_CHARS, MARKER_MAX_TYPE_CHARS } from './constants.js'
import type { RealmEvent } from '../events/index.js'

/** Why an event was replaced by a marker */
export type MarkerReason = 'truncated' | 'unserializable' | 'redactFailed'

function safeType (value: unknown): string {
  return typeof value === 'string' ? value.slice(0, MARKER_MAX_TYPE_CHARS) : 'unknown'
}

function safeTime (value: unknown): string {
  return typeof value === 'string' && value.length <= 64 ? value : new Date().toISOString()
}

/**
 * `{ type, time, <reason>: true, bytes?, ...small fields }`: what is kept of an event that
 * cannot be written whole. Small primitive fields (ids, sequence numbers, codes) are kept so
 * the marker can still be found and correlated; `bytes` is the size of the original line.
 */
export function markerOf (event: RealmEvent, reason: MarkerReason, bytes?: number, keepFields = true): RealmEvent {
  const marker: RealmEvent = { type: 'unknown', time: '' }
  try {
    marker.type = safeType(event?.type)
    marker.time = safeTime(event?.time)
    marker[reason] = true
    if (bytes !== undefined) marker.bytes = bytes
    if (!keepFields) return marker
    let budget = MARKER_MAX_FIELDS_CHARS
    for (const [key, value] of Object.entries(event)) {
      if (key in marker || key.length > MARKER_MAX_TYPE_CHARS) continue
      let cost: number
      if (typeof value === 'string') {
        if (value.length > MARKER_MAX_STRING_CHARS) continue
        cost = key.length + value.length
      } else if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
        cost = key.length + 24
      } else {
        continue
      }
      if (cost > budget) continue
      budget -= cost
      marker[key] = value
    }
  } catch {
    // a hostile object (throwing getter, proxy): the type and time are enough
  }
  marker.time ||= new Date().toISOString()
  return marker
}

export interface EncodeOptions {
  maxEventBytes: number
  redact?: (event: RealmEvent) => RealmEvent | undefined
}

export interface EncodedLine {
  /** the JSON text and its newline */
  text: string
  /** its length in UTF-8 bytes */
  bytes: number
  /** what replaced the event, if anything did */
  marker?: MarkerReason
}

/** The line for `event`, or `undefined` when redaction leaves it out */
export function encodeEvent (event: RealmEvent, options: EncodeOptions): EncodedLine | undefined {
  let marker: MarkerReason | undefined
  let out: RealmEvent | undefined = event
  if (options.redact != null) {
    try {
      out = options.redact(event)
    } catch {
      // never write what redaction was meant to strip: keep only type and time
      out = markerOf(event, 'redactFailed', undefined, false)
      marker = 'redactFailed'
    }
    if (out == null) return undefined
  }
  if (typeof out.type !== 'string' || typeof out.time !== 'string') {
    out = { ...out, type: safeType(out.type), time: safeTime(out.time) }
  }
  let json: string | undefined
  try {
    json = JSON.stringify(out)
  } catch {
    json = undefined
  }
  if (typeof json !== 'string') {
    json = JSON.stringify(markerOf(out, 'unserializable'))
    marker = 'unserializable'
  }
  let bytes = Buffer.byteLength(json)
  if (bytes > options.maxEventBytes) {
    json = JSON.stringify(markerOf(out, 'truncated', bytes))
    bytes = Buffer.byteLength(json)
    marker = 'truncated'
  }
  return { text: json + '\n', bytes: bytes + 1, marker }
}
