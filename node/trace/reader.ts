/**
 * Reading the trace log across its files, oldest first, optionally following it.
 *
 * The file being read is tracked by identity (device + inode + birth time), not by name: when a
 * newer file exists it is read to its end (the writer finished it before renaming it) and the
 * reader moves to the file that comes after it in a fresh listing. So rotation while reading or
 * following neither loses nor repeats a line.
 */
import fs from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEFAULT_READ_POLL_MS, MAX_LINE_BYTES, READ_CHUNK_BYTES } from './constants.js'
import { InvalidSinceError } from './errors.js'
import { handleId, listTraceEntries, type TraceFileEntry } from './files.js'
import type { RealmEvent } from '../events/index.js'

const NEWLINE = 0x0a

export interface ReadTraceOptions {
  /** only events whose `time` is at or after this (an ISO-8601 string or a Date); default: all */
  since?: string | Date
  /** keep waiting for new events (until `signal` aborts); default `false`: stop at the end */
  follow?: boolean
  /** ends the read (the generator returns normally) */
  signal?: AbortSignal
  /** how often a follower looks for new lines, in ms; default 200 (`DEFAULT_READ_POLL_MS`) */
  pollMs?: number
  /** told about every line skipped */
  onSkip?: (skipped: SkippedLine) => void
}

export interface SkippedLine {
  file: string
  /**
   * `unparseable`: not JSON (a torn line left by a crash); `not-an-event`: JSON without a
   * string `type` and `time`; `too-long`: over `MAX_LINE_BYTES` without a newline
   */
  reason: 'unparseable' | 'not-an-event' | 'too-long'
}

/** The generator's return value */
export interface ReadTraceResult {
  /** events yielded */
  events: number
  /** lines skipped */
  skipped: number
}

interface OpenTraceFile {
  handle: fs.FileHandle
  id: string
  path: string
  position: number
  /** bytes after the last newline */
  rest: Buffer
  /** inside an over-long line, dropping bytes up to its newline */
  discarding: boolean
}

function parseSince (since: string | Date | undefined): number | undefined {
  if (since === undefined) return undefined
  const time = since instanceof Date ? since.getTime() : Date.parse(since)
  if (Number.isNaN(time)) throw new InvalidSinceError(since)
  return time
}

async function openEntry (entry: TraceFileEntry): Promise<OpenTraceFile | undefined> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(entry.path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    // the slot may hold another file by now (a rotation moved them): list again
    if (await handleId(handle) !== entry.id) {
      await handle.close()
      return undefined
    }
  } catch (err) {
    await handle.close().catch(() => {})
    throw err
  }
  return { handle, id: entry.id, path: entry.path, position: 0, rest: Buffer.alloc(0), discarding: false }
}

/**
 * Every event of the trace folder `dir`: rotated files oldest first, then `trace.log`; with
 * `follow`, new events as they are written, until `signal` aborts. Lines that are not events
 * (a torn last line after a crash) are skipped and counted (`onSkip`, and the return value).
 *
 * @throws InvalidSinceError (`INVALID_SINCE`) when `since` is not a time
 */
export async function * readTrace (dir: string, options: ReadTraceOptions = {}): AsyncGenerator<RealmEvent, ReadTraceResult, undefined> {
  const sinceMs = parseSince(options.since)
  const follow = options.follow === true
  const pollMs = options.pollMs ?? DEFAULT_READ_POLL_MS
  const signal = options.signal
  const result: ReadTraceResult = { events: 0, skipped: 0 }
  const aborted = (): boolean => signal?.aborted === true

  const skip = (file: string, reason: SkippedLine['reason']): void => {
    result.skipped++
    options.onSkip?.({ file, reason })
  }

  /** the event on a line, or `undefined` (counted as skipped unless blank) */
  const parseLine = (file: string, line: Buffer): RealmEvent | undefined => {
    const text = line.toString('utf8')
    if (text.trim() === '') return undefined
    let value: any
    try {
      value = JSON.parse(text)
    } catch {
      skip(file, 'unparseable')
      return undefined
    }
    if (value == null || typeof value !== 'object' || Array.isArray(value) || typeof value.type !== 'string' || typeof value.time !== 'string') {
      skip(file, 'not-an-event')
      return undefined
    }
    if (sinceMs !== undefined && !(Date.parse(value.time) >= sinceMs)) return undefined
    return value as RealmEvent
  }

  /** the complete lines of `file` from where it was left to its current end */
  async function * readAvailable (file: OpenTraceFile): AsyncGenerator<RealmEvent, void, undefined> {
    const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES)
    while (!aborted()) {
      const { bytesRead } = await file.handle.read(chunk, 0, chunk.length, file.position)
      if (bytesRead === 0) return
      file.position += bytesRead
      const data = file.rest.length > 0 ? Buffer.concat([file.rest, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead)
      let start = 0
      const events: RealmEvent[] = []
      for (let end = data.indexOf(NEWLINE, start); end !== -1; end = data.indexOf(NEWLINE, start)) {
        if (file.discarding) {
          file.discarding = false
        } else {
          const event = parseLine(file.path, data.subarray(start, end))
          if (event !== undefined) events.push(event)
        }
        start = end + 1
      }
      file.rest = Buffer.from(data.subarray(start))
      if (file.rest.length > MAX_LINE_BYTES) {
        if (!file.discarding) skip(file.path, 'too-long')
        file.discarding = true
        file.rest = Buffer.alloc(0)
      }
      for (const event of events) {
        result.events++
        yield event
      }
    }
  }

  /** the file is complete: what follows its last newline is a torn line, or an event whose newline was lost */
  function finish (file: OpenTraceFile): RealmEvent | undefined {
    const rest = file.rest
    file.rest = Buffer.alloc(0)
    if (file.discarding || rest.length === 0) return undefined
    const event = parseLine(file.path, rest)
    if (event !== undefined) result.events++
    return event
  }

  const wait = async (): Promise<boolean> => {
    try {
      await sleep(pollMs, undefined, { signal })
      return true
    } catch {
      return false
    }
  }

  /** a deleted file has no name left: retention removed it (and, before it, every older file) */
  const isDeleted = async (file: OpenTraceFile): Promise<boolean> => (await file.handle.stat()).nlink === 0

  let current: OpenTraceFile | undefined
  /** the last file read to its end, kept open until the next one is: the next is the file after it */
  let previous: OpenTraceFile | undefined
  try {
    while (!aborted()) {
      if (current == null) {
        const entries = await listTraceEntries(dir)
        let candidates = entries
        if (previous !== undefined) {
          const at = entries.findIndex(entry => entry.id === previous?.id)
          if (at !== -1) {
            candidates = entries.slice(at + 1)
          } else if (!await isDeleted(previous)) {
            // still there but not listed: the listing raced some renames; look again
            if (!await wait()) return result
            continue
          }
        }
        if (candidates.length === 0) {
          if (!follow || !await wait()) return result
          continue
        }
        current = await openEntry(candidates[0])
        if (current == null) continue
        await previous?.handle.close()
        previous = undefined
      }

      yield * readAvailable(current)
      if (aborted()) break
      const entries = await listTraceEntries(dir)
      const at = entries.findIndex(entry => entry.id === current?.id)
      const newest = at !== -1 && at === entries.length - 1
      if (newest && follow) {
        // nothing after it yet: wait for more
        if (!await wait()) return result
        continue
      }
      if (at === -1 && !await isDeleted(current)) {
        // still there but not listed: the listing raced some renames; look again
        if (!await wait()) return result
        continue
      }
      // a newer file exists (or this one was deleted), so this one is complete: read what was
      // written before it was rotated
      if (!newest) yield * readAvailable(current)
      const last = finish(current)
      if (last !== undefined) yield last
      if (newest) return result
      previous = current
      current = undefined
    }
    return result
  } finally {
    await current?.handle.close().catch(() => {})
    await previous?.handle.close().catch(() => {})
  }
}
