/**
 * The mutations: start from a valid message and change it the way a broken or hostile peer
 * would, guided by the message's schema — wrong types, missing and extra fields, values at and
 * past each limit, huge strings, deep nesting, duplicated and prototype keys — then, on the
 * serialized bytes, bad encodings and truncation. Every mutation says what it did, for the
 * reproduction of a finding.
 */
import fc from 'fast-check'
import type { Rng } from './rng.js'
import { numberBounds, sitesOf, type JsonSchema, type SchemaOverride, type Site } from './schema.js'

/** A JSON document being mutated: a value plus raw JSON text spliced in where markers stand */
export class Doc {
  value: unknown
  /** marker string (as a JSON string value) → raw JSON text put in its place */
  readonly raws = new Map<string, string>()
  /** marker key → the key it stands for (duplicated keys) */
  readonly keys = new Map<string, string>()
  readonly notes: string[] = []

  constructor (value: unknown) {
    this.value = structuredClone(value)
  }

  /** A value that serializes as `text` verbatim (numbers JSON cannot hold, nesting bombs, bad tokens) */
  raw (text: string): string {
    const marker = `@@RAW${this.raws.size}@@`
    this.raws.set(marker, text)
    return marker
  }

  /** A key that serializes as `key` (a second `key` in the same object) */
  dupKey (key: string): string {
    const marker = `@@DUP${this.keys.size}@@`
    this.keys.set(marker, key)
    return marker
  }

  text (): string {
    let text = JSON.stringify(this.value) ?? 'null'
    if (this.raws.size === 0 && this.keys.size === 0) return text
    for (const [marker, raw] of this.raws) text = text.split(JSON.stringify(marker)).join(raw)
    for (const [marker, key] of this.keys) text = text.split(JSON.stringify(marker)).join(JSON.stringify(key))
    return text
  }
}

/** Keys that mean something to JavaScript objects */
export const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'then', 'toJSON']

/** Strings that break patterns, encodings and parsers */
export const NASTY_STRINGS = [
  '', ' ', '\u0000', '\n', '\r\n', '\t', '\u007f', '\u0085', '\u2028', '\u2029', '\ufeff', '\u200b', '\u202e', '\u0301'.repeat(64),
  '\ud800', '\udfff', '\udfff\ud800', 'a\ud83d', '\ud83d\ude00', '𝕏', '﷽', 'ǅ', 'İ', 'ß',
  '"', '\\', '\'', '<script>alert(1)</script>', '${7*7}', '{{7*7}}', '%00', '%', '%ZZ', '../../etc/passwd', '/', '?', '#', '&',
  'null', 'undefined', 'NaN', 'true', '0', '-0', '1e999', '[]', '{}', '__proto__', 'constructor',
  '2025-13-45T99:99:99Z', '+275760-09-13T00:00:00.001Z', '-271821-04-20T00:00:00.000Z', '1970-01-01', '9999999999999', 'Z',
  '=', '==', 'a===', 'ab=c', 'YQ', 'YQ=', '-_-_', 'YW Jj', 'YWJj\n', '////', '++++',
  '12D3KooW', 'Qm', '0.0.0.0/0', '::/0', '127.0.0.1/33', 'fe80::1%eth0', '255.255.255.255/32'
]

/** Number values around limits, and numbers JSON can carry that JavaScript reads oddly */
const SPECIAL_NUMBERS = [0, -0, -1, 1, 0.5, -0.5, 1e308, -1e308, 5e-324, -5e-324, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, Number.MAX_SAFE_INTEGER + 1, Number.MAX_SAFE_INTEGER + 2, 2 ** 64, -(2 ** 63), 1e21, 1.7976931348623157e308]
/** Number tokens as text: some parse to Infinity / lose precision, some are not JSON at all */
const RAW_NUMBERS = ['1e999', '-1e999', '1E400', '-0', '-0.0', '0e0', '1.0', '1e0', '123456789012345678901234567890', '0.00000000000000000000000000000000000001e-400', 'NaN', 'Infinity', '-Infinity', '0x10', '01', '.5', '+1', '1.', '-', '1e', '--1', '1_000']

function setAt (doc: Doc, path: ReadonlyArray<string | number>, value: unknown): void {
  if (path.length === 0) {
    doc.value = value
    return
  }
  const parent = getAt(doc.value, path.slice(0, -1)) as Record<string | number, unknown>
  parent[path[path.length - 1]] = value
}

function getAt (value: unknown, path: ReadonlyArray<string | number>): unknown {
  let v: any = value
  for (const k of path) v = v?.[k]
  return v
}

/** Puts an own property (even `__proto__`) on an object, where JSON.stringify will write it */
function defineOwn (obj: Record<string, unknown>, key: string, value: unknown, first = false): Record<string, unknown> {
  if (!first) {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
    return obj
  }
  const out: Record<string, unknown> = {}
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
  for (const [k, v] of Object.entries(obj)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
  return out
}

function pathText (path: ReadonlyArray<string | number>): string {
  return path.length === 0 ? '(root)' : path.map(k => typeof k === 'number' ? `[${k}]` : `.${k}`).join('').replace(/^\./, '')
}

/** A random JSON value (fast-check's generator, seeded by the case) */
export function randomJson (rng: Rng, maxDepth = 3): unknown {
  let arb = jsonArbs.get(maxDepth)
  if (arb === undefined) {
    arb = fc.jsonValue({ maxDepth })
    jsonArbs.set(maxDepth, arb)
  }
  return fc.sample(arb, { seed: rng.u32() | 0, numRuns: 1 })[0]
}
// building an arbitrary costs far more than drawing from it: one of each, reused
const jsonArbs = new Map<number, fc.Arbitrary<unknown>>()
const stringArbs = new Map<string, fc.Arbitrary<string>>()

/** A random string of any code units, lone surrogates included */
export function randomString (rng: Rng, maxLength = 40): string {
  const unit = rng.pick(['binary', 'grapheme', 'grapheme-ascii'] as const)
  const key = `${unit}/${maxLength}`
  let arb = stringArbs.get(key)
  if (arb === undefined) {
    arb = fc.string({ unit, maxLength })
    stringArbs.set(key, arb)
  }
  return fc.sample(arb, { seed: rng.u32() | 0, numRuns: 1 })[0]
}

/** Nesting `depth` deep, as raw JSON text */
export function nestingBomb (rng: Rng, depth: number): string {
  switch (rng.int(4)) {
    case 0: return '['.repeat(depth) + ']'.repeat(depth)
    case 1: return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)
    case 2: return '[{"a":'.repeat(depth) + 'null' + '}]'.repeat(depth)
    default: return '['.repeat(depth) // unclosed
  }
}

function valueOfType (rng: Rng, type: string, original: unknown): unknown {
  switch (type) {
    case 'string': return rng.pick(['', 'x', '1', 'true', 'null', '[]', '{}', String(JSON.stringify(original) ?? '').slice(0, 200)])
    case 'number': return rng.pick([0, 1, -1, 1.5, 1e308, -0])
    case 'boolean': return rng.chance(0.5)
    case 'null': return null
    case 'array': return rng.pick([[], [original], [1, 2, 3], [null]])
    default: return rng.pick([{}, { value: original }, { '': null }])
  }
}

/** A string of `length` UTF-16 units built from `sample`'s characters (so it may keep a pattern) */
function stringOfLength (rng: Rng, length: number, sample: string): string {
  if (length <= 0) return ''
  const chars = [...(sample === '' ? 'a' : sample)].filter(c => c.length === 1)
  const unit = chars.length > 0 ? rng.pick(chars) : 'a'
  return unit.repeat(length)
}

type Mutator = (rng: Rng, doc: Doc, site: Site, sites: Site[]) => string | undefined

const typeSwap: Mutator = (rng, doc, site) => {
  const types = ['string', 'number', 'boolean', 'null', 'array', 'object'].filter(t => t !== jsonTypeLoose(site.value))
  const t = rng.pick(types)
  setAt(doc, site.path, valueOfType(rng, t, site.value))
  return `type ${pathText(site.path)}: ${jsonTypeLoose(site.value)} → ${t}`
}

function jsonTypeLoose (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

const remove: Mutator = (rng, doc, site) => {
  if (site.path.length === 0) return undefined
  const parent = getAt(doc.value, site.path.slice(0, -1))
  const key = site.path[site.path.length - 1]
  if (Array.isArray(parent) && typeof key === 'number') {
    parent.splice(key, 1)
    return `remove item ${pathText(site.path)}`
  }
  if (parent === null || typeof parent !== 'object') return undefined
  delete (parent as Record<string, unknown>)[key as string]
  return `remove field ${pathText(site.path)}`
}

const extraField: Mutator = (rng, doc, site) => {
  const target = getAt(doc.value, site.path)
  if (target === null || typeof target !== 'object' || Array.isArray(target)) return undefined
  const key = rng.chance(0.6) ? rng.pick(PROTOTYPE_KEYS) : rng.chance(0.5) ? randomString(rng, 20) : rng.pick(['x', 'extra', 'v2', '', 'a'.repeat(10_000)])
  const value = rng.pick<unknown>([{ polluted: true }, null, 1, 'x', [], {}, { toString: 'x' }])
  setAt(doc, site.path, defineOwn(target as Record<string, unknown>, key, value, rng.chance(0.3)))
  return `extra field ${JSON.stringify(key.slice(0, 40))} at ${pathText(site.path)}`
}

const duplicateKey: Mutator = (rng, doc, site) => {
  const target = getAt(doc.value, site.path)
  if (target === null || typeof target !== 'object' || Array.isArray(target)) return undefined
  const keys = Object.keys(target)
  if (keys.length === 0) return undefined
  const key = rng.pick(keys)
  const original = (target as Record<string, unknown>)[key]
  const other = rng.chance(0.5) ? valueOfType(rng, rng.pick(['string', 'number', 'null', 'object']), original) : original
  const first = rng.chance(0.5)
  setAt(doc, site.path, defineOwn(target as Record<string, unknown>, doc.dupKey(key), other, first))
  return `duplicate key ${pathText([...site.path, key])} (${first ? 'first' : 'last'} copy ${JSON.stringify(other)?.slice(0, 40)})`
}

const boundaryString: Mutator = (rng, doc, site) => {
  const s = site.schema
  const original = typeof site.value === 'string' ? site.value : ''
  const max = s.maxLength
  const min = s.minLength ?? 0
  const options: Array<[string, () => string]> = [
    ['nasty', () => rng.pick(NASTY_STRINGS)],
    ['nasty appended', () => original + rng.pick(NASTY_STRINGS)],
    ['nasty prepended', () => rng.pick(NASTY_STRINGS) + original],
    ['random', () => randomString(rng, 64)],
    ['huge', () => stringOfLength(rng, rng.pick([65_537, 1_000_001, 4 * 1024 * 1024]), original)]
  ]
  if (s.enum !== undefined) {
    options.push(['enum case', () => original.toUpperCase()], ['enum padded', () => ` ${original}`], ['other enum', () => String(rng.pick(s.enum!))])
  }
  if (max !== undefined) {
    options.push(
      ['at max', () => stringOfLength(rng, max, original)],
      ['over max', () => stringOfLength(rng, max + 1, original)],
      ['far over max', () => stringOfLength(rng, Math.min(max * 4 + 7, 26 * 1024 * 1024), original)],
      ['astral at max', () => '😀'.repeat(Math.floor(max / 2)) + (max % 2 === 1 ? 'a' : '')],
      ['astral over max', () => '😀'.repeat(Math.floor(max / 2) + 1)]
    )
  }
  if (min > 0) options.push(['under min', () => stringOfLength(rng, min - 1, original)])
  const [label, make] = rng.pick(options)
  const value = make()
  setAt(doc, site.path, value)
  return `string ${pathText(site.path)}: ${label} (${value.length} units${value.length <= 40 ? ` ${JSON.stringify(value)}` : ''})`
}

const boundaryNumber: Mutator = (rng, doc, site) => {
  const { min, max, integer } = numberBounds(site.schema)
  const near: number[] = [...SPECIAL_NUMBERS]
  if (max !== undefined) near.push(max, max + 1, max + 0.5, max * (1 + Number.EPSILON), max * 2, -max)
  if (min !== undefined) near.push(min, min - 1, min - 0.5, min - Number.EPSILON)
  if (integer) near.push(1.5, 0.1)
  if (rng.chance(0.3)) {
    const text = rng.pick(RAW_NUMBERS)
    setAt(doc, site.path, doc.raw(text))
    return `number ${pathText(site.path)}: raw ${text}`
  }
  const value = rng.pick(near)
  setAt(doc, site.path, value)
  return `number ${pathText(site.path)}: ${Object.is(value, -0) ? '-0' : String(value)}`
}

const boundaryArray: Mutator = (rng, doc, site) => {
  const arr = getAt(doc.value, site.path)
  if (!Array.isArray(arr)) return undefined
  const s = site.schema
  const item = arr.length > 0 ? rng.pick(arr) : rng.pick<unknown>(['x', 1, {}])
  const max = s.maxItems
  const options: Array<[string, () => unknown[]]> = [
    ['empty', () => []],
    // the same item many times over (shared: JSON.stringify writes each copy)
    ['many', () => Array.from({ length: rng.pick([1000, 10_000]) }, () => item)],
    ['many small', () => Array.from({ length: 100_000 }, () => 0)],
    ['mixed types', () => [...arr, null, 1, 'x', [], {}]]
  ]
  if (max !== undefined) {
    options.push(['at max', () => Array.from({ length: max }, () => structuredClone(item))], ['over max', () => Array.from({ length: max + 1 }, () => structuredClone(item))])
  }
  const [label, make] = rng.pick(options)
  const value = make()
  setAt(doc, site.path, value)
  return `array ${pathText(site.path)}: ${label} (${value.length} items)`
}

const literal: Mutator = (rng, doc, site) => {
  const s = site.schema
  if (s.const === undefined && s.enum === undefined) return undefined
  const choices: unknown[] = [2, 0, -1, '1', true, null, 'request', 'heartbeat', 'x', 1.5]
  if (s.enum !== undefined) choices.push(...s.enum.filter(e => e !== site.value))
  if (rng.chance(0.3)) {
    const text = rng.pick(['1.0', '1e0', '10e-1', '"1"', '0x1'])
    setAt(doc, site.path, doc.raw(text))
    return `literal ${pathText(site.path)}: raw ${text}`
  }
  const value = rng.pick(choices)
  setAt(doc, site.path, value)
  return `literal ${pathText(site.path)}: ${JSON.stringify(value)}`
}

const nest: Mutator = (rng, doc, site) => {
  const depth = rng.pick([64, 1000, 10_000, 100_000])
  setAt(doc, site.path, doc.raw(nestingBomb(rng, depth)))
  return `nesting ${depth} deep at ${pathText(site.path)}`
}

const swapSite: Mutator = (rng, doc, site, sites) => {
  const other = rng.pick(sites)
  setAt(doc, site.path, structuredClone(other.value))
  return `value of ${pathText(other.path)} put at ${pathText(site.path)}`
}

const randomValue: Mutator = (rng, doc, site) => {
  setAt(doc, site.path, randomJson(rng))
  return `random JSON at ${pathText(site.path)}`
}

/** Mutations that fit a site, with weights */
function mutatorsFor (site: Site): Array<[Mutator, number]> {
  const v = site.value
  const list: Array<[Mutator, number]> = [[typeSwap, 4], [swapSite, 1], [randomValue, 1], [nest, 0.5]]
  if (site.path.length > 0) list.push([remove, 3])
  if (typeof v === 'string') list.push([boundaryString, 6])
  if (typeof v === 'number') list.push([boundaryNumber, 6])
  if (Array.isArray(v)) list.push([boundaryArray, 3])
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) list.push([extraField, 3], [duplicateKey, 2])
  if (site.schema.const !== undefined || site.schema.enum !== undefined) list.push([literal, 3])
  return list
}

/** 1–3 schema-aware mutations of `value`; returns the document and what was done */
export function mutateValue (rng: Rng, value: unknown, schema: JsonSchema, overrides: SchemaOverride[] = [], count = rng.weighted([[1, 6], [2, 3], [3, 1]] as const)): Doc {
  const doc = new Doc(value)
  for (let i = 0; i < count; i++) {
    const sites = sitesOf(doc.value, schema, overrides).filter(s => !(typeof s.value === 'string' && s.value.startsWith('@@')))
    if (sites.length === 0) break
    const site = rng.pick(sites)
    for (let attempt = 0; attempt < 4; attempt++) {
      const note = rng.weighted(mutatorsFor(site))(rng, doc, site, sites)
      if (note !== undefined) {
        doc.notes.push(note)
        break
      }
    }
  }
  return doc
}

const enc = new TextEncoder()

/** Byte sequences that are not valid UTF-8 (overlong, surrogates, out of range, cut, stray) */
export const INVALID_UTF8: ReadonlyArray<readonly [string, number[]]> = [
  ['0xff', [0xff]],
  ['0xfe', [0xfe]],
  ['stray continuation', [0x80]],
  ['overlong "/"', [0xc0, 0xaf]],
  ['overlong NUL', [0xc0, 0x80]],
  ['overlong 3-byte', [0xe0, 0x80, 0xaf]],
  ['encoded surrogate', [0xed, 0xa0, 0x80]],
  ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ['cut 3-byte', [0xe2, 0x82]],
  ['cut 4-byte', [0xf0, 0x9f, 0x98]],
  ['5-byte form', [0xf8, 0x88, 0x80, 0x80, 0x80]]
]

function splice (bytes: Uint8Array, at: number, remove: number, insert: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(bytes.length - remove + insert.length)
  out.set(bytes.subarray(0, at), 0)
  out.set(insert, at)
  out.set(bytes.subarray(at + remove), at + insert.length)
  return out
}

/** A position inside a JSON string of the text, when there is one (bad bytes there reach string decoding) */
function insideString (rng: Rng, bytes: Uint8Array): number {
  const quotes: number[] = []
  for (let i = 0; i < bytes.length && quotes.length < 512; i++) if (bytes[i] === 0x22) quotes.push(i)
  return quotes.length > 0 ? rng.pick(quotes) + 1 : rng.int(bytes.length + 1)
}

/** One byte-level mutation: bad UTF-8, BOM, UTF-16, truncation, flips, slices, trailing data */
export function mutateBytes (rng: Rng, bytes: Uint8Array): { bytes: Uint8Array, note: string } {
  const op = rng.weighted([
    ['invalid utf-8', 4], ['truncate', 3], ['bom', 1], ['utf-16', 0.5], ['flip', 2], ['delete slice', 1],
    ['duplicate slice', 1], ['trailing', 1.5], ['nul', 1], ['whitespace', 0.5]
  ] as const)
  switch (op) {
    case 'invalid utf-8': {
      const [label, seq] = rng.pick(INVALID_UTF8)
      const at = rng.chance(0.7) ? insideString(rng, bytes) : rng.int(bytes.length + 1)
      return { bytes: splice(bytes, at, rng.chance(0.3) ? Math.min(seq.length, bytes.length - at) : 0, seq), note: `invalid UTF-8 (${label}) at byte ${at}` }
    }
    case 'truncate': {
      const at = rng.int(bytes.length)
      return { bytes: bytes.slice(0, at), note: `truncated at byte ${at} of ${bytes.length}` }
    }
    case 'bom': return { bytes: splice(bytes, 0, 0, [0xef, 0xbb, 0xbf]), note: 'UTF-8 BOM prefixed' }
    case 'utf-16': {
      const text = new TextDecoder('utf-8').decode(bytes)
      const out = new Uint8Array(2 + text.length * 2)
      out[0] = 0xff; out[1] = 0xfe
      for (let i = 0; i < text.length; i++) { out[2 + i * 2] = text.charCodeAt(i) & 0xff; out[3 + i * 2] = text.charCodeAt(i) >> 8 }
      return { bytes: out, note: 'UTF-16LE with BOM' }
    }
    case 'flip': {
      const out = bytes.slice()
      const n = rng.range(1, 8)
      for (let i = 0; i < n && out.length > 0; i++) out[rng.int(out.length)] ^= 1 << rng.int(8)
      return { bytes: out, note: `${n} bit flips` }
    }
    case 'delete slice': {
      const at = rng.int(bytes.length)
      const n = rng.range(1, Math.max(1, Math.min(64, bytes.length - at)))
      return { bytes: splice(bytes, at, n, []), note: `deleted ${n} bytes at ${at}` }
    }
    case 'duplicate slice': {
      const at = rng.int(bytes.length)
      const n = rng.range(1, Math.max(1, Math.min(64, bytes.length - at)))
      return { bytes: splice(bytes, at, 0, bytes.slice(at, at + n)), note: `duplicated ${n} bytes at ${at}` }
    }
    case 'trailing': {
      const tail = rng.pick(['x', '{}', ' ', '\u0000', ',', ']', '}', '\n{"t":"heartbeat"}', '//comment'])
      return { bytes: splice(bytes, bytes.length, 0, enc.encode(tail)), note: `trailing ${JSON.stringify(tail)}` }
    }
    case 'nul': {
      const at = rng.int(bytes.length + 1)
      return { bytes: splice(bytes, at, 0, [0]), note: `NUL at byte ${at}` }
    }
    default: {
      const ws = rng.pick(['\u00a0', '\u2028', '\u000b', '\u000c', '\ufeff'])
      const at = rng.int(bytes.length + 1)
      return { bytes: splice(bytes, at, 0, enc.encode(ws)), note: `non-JSON whitespace U+${ws.charCodeAt(0).toString(16).padStart(4, '0')} at ${at}` }
    }
  }
}

/** Purely random bytes, mostly short */
export function randomBytes (rng: Rng): { bytes: Uint8Array, note: string } {
  const n = rng.chance(0.02) ? rng.range(65_536, 300_000) : rng.size(4096)
  return { bytes: rng.bytes(n), note: `${n} random bytes` }
}

/** The text of a document, serialized */
export function docBytes (doc: Doc): Uint8Array {
  return enc.encode(doc.text())
}
