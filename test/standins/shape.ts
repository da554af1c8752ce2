/**
 * Comparing answers with the API fixtures (test/fixtures/<api>/): same keys, same value types,
 * same NDJSON / SSE framing. Used by the stand-ins' own test and by any test of a route that
 * copies an API (the gateway's Ollama and OpenAI facades).
 */
import { AssertionError } from 'node:assert'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url))

/** The APIs with fixtures, one folder each under test/fixtures/ */
export type FixtureApi = 'ollama' | 'openai' | 'a1111' | 'anthropic' | 'hf' | 'agent'

/** A fixture file as text */
export function fixtureText (api: FixtureApi, file: string): string {
  return readFileSync(`${FIXTURES_DIR}${api}/${file}`, 'utf8')
}

/** A JSON fixture */
export function fixtureJson (api: FixtureApi, file: string): any {
  return JSON.parse(fixtureText(api, file))
}

export interface ShapeOptions {
  /**
   * Key paths that may be absent on either side (for keys the server sends that the documented
   * example happens to lack, or the reverse). Paths are dotted, `[]` for "every element":
   * `done_reason`, `choices[].delta.role`.
   */
  optional?: string[]
  /** key paths whose value is only checked to be of the same JSON type (free-form maps) */
  opaque?: string[]
  /** key paths whose value may be null where the fixture has a value, or the reverse (`string | null` fields) */
  nullable?: string[]
  /** when true, the answer may have keys the fixture lacks (at every level) */
  subset?: boolean
}

type JsonType = 'null' | 'array' | 'object' | 'string' | 'number' | 'boolean'

function typeOf (v: unknown): JsonType {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  const t = typeof v
  if (t === 'string' || t === 'number' || t === 'boolean' || t === 'object') return t
  throw new AssertionError({ message: `not a JSON value: ${String(v)}` })
}

function join (path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`
}

function shapeDiffs (actual: unknown, expected: unknown, options: ShapeOptions, path: string, out: string[]): void {
  const at = path === '' ? '$' : path
  const ta = typeOf(actual)
  const te = typeOf(expected)
  if (ta !== te) {
    if ((ta === 'null' || te === 'null') && options.nullable?.includes(path) === true) return
    out.push(`${at}: expected ${te}, got ${ta}`)
    return
  }
  if (options.opaque?.includes(path) === true) return
  if (ta === 'array') {
    const a = actual as unknown[]
    const e = expected as unknown[]
    // each element of the answer must look like the fixture's first element
    if (a.length > 0 && e.length > 0) {
      for (const item of a) shapeDiffs(item, e[0], options, `${path}[]`, out)
    }
    return
  }
  if (ta !== 'object') return
  const a = actual as Record<string, unknown>
  const e = expected as Record<string, unknown>
  for (const key of Object.keys(e)) {
    const p = join(path, key)
    if (!(key in a)) {
      if (options.optional?.includes(p) !== true) out.push(`${p}: missing`)
      continue
    }
    shapeDiffs(a[key], e[key], options, p, out)
  }
  for (const key of Object.keys(a)) {
    const p = join(path, key)
    if (!(key in e) && options.subset !== true && options.optional?.includes(p) !== true) out.push(`${p}: not in the fixture`)
  }
}

/** Asserts `actual` has the fixture's shape: same keys at every level, same JSON types */
export function assertSameShape (actual: unknown, expected: unknown, options: ShapeOptions = {}, what = 'answer'): void {
  const diffs: string[] = []
  shapeDiffs(actual, expected, options, '', diffs)
  if (diffs.length > 0) {
    throw new AssertionError({ message: `${what} differs in shape from the fixture:\n  ${diffs.join('\n  ')}`, actual, expected })
  }
}

/**
 * Asserts a stream of objects follows a fixture stream: the first object like the fixture's
 * first, the last like its last, every other like the fixture's middle ones (or its first when
 * the fixture has only two).
 */
export function assertStreamShape (actual: unknown[], expected: unknown[], options: ShapeOptions = {}, what = 'stream'): void {
  if (expected.length < 2) throw new Error('a fixture stream needs at least two objects')
  if (actual.length < 2) throw new AssertionError({ message: `${what}: expected at least 2 objects, got ${actual.length}` })
  const middle = expected.length > 2 ? expected.slice(1, -1) : [expected[0]]
  actual.forEach((item, i) => {
    if (i === 0) {
      assertSameShape(item, expected[0], options, `${what}[0]`)
    } else if (i === actual.length - 1) {
      assertSameShape(item, expected[expected.length - 1], options, `${what}[last]`)
    } else {
      // any of the middle shapes will do
      const errors: string[] = []
      for (const m of middle) {
        try {
          assertSameShape(item, m, options, `${what}[${i}]`)
          return
        } catch (err) {
          errors.push((err as Error).message)
        }
      }
      throw new AssertionError({ message: errors.join('\n') })
    }
  })
}

/** Splits NDJSON, asserting the framing: one JSON object per `\n`-terminated line */
export function parseNdjson (text: string): unknown[] {
  if (!text.endsWith('\n')) throw new AssertionError({ message: 'NDJSON must end with a newline' })
  return text.slice(0, -1).split('\n').map((line, i) => {
    try {
      return JSON.parse(line)
    } catch {
      throw new AssertionError({ message: `NDJSON line ${i + 1} is not JSON: ${line.slice(0, 80)}` })
    }
  })
}

/**
 * Splits a `data:`-only SSE stream, asserting the framing: events `data: <json>\n\n`, ending with
 * `data: [DONE]\n\n` and nothing after. Returns the JSON payloads (without the [DONE]).
 */
export function parseSse (text: string): unknown[] {
  if (!text.endsWith('data: [DONE]\n\n')) throw new AssertionError({ message: 'SSE stream must end with "data: [DONE]\\n\\n"' })
  const events = text.slice(0, -2).split('\n\n')
  const done = events.pop()
  if (done !== 'data: [DONE]') throw new AssertionError({ message: 'SSE stream must end with [DONE]' })
  return events.map((event, i) => {
    if (!event.startsWith('data: ') || event.includes('\n')) {
      throw new AssertionError({ message: `SSE event ${i + 1} is not one "data: " line: ${event.slice(0, 80)}` })
    }
    try {
      return JSON.parse(event.slice('data: '.length))
    } catch {
      throw new AssertionError({ message: `SSE event ${i + 1} is not JSON: ${event.slice(0, 80)}` })
    }
  })
}

/** One event of a named-event SSE stream (Anthropic's) */
export interface NamedSseEvent {
  event: string
  data: any
}

/**
 * Splits an SSE stream of named events, asserting Anthropic's framing: each event is
 * `event: <name>\ndata: <json>\n\n` and its JSON carries the same name in `type`.
 */
export function parseNamedSse (text: string): NamedSseEvent[] {
  if (!text.endsWith('\n\n')) throw new AssertionError({ message: 'SSE stream must end with a blank line' })
  return text.slice(0, -2).split('\n\n').map((block, i) => {
    const lines = block.split('\n')
    if (lines.length !== 2 || !lines[0].startsWith('event: ') || !lines[1].startsWith('data: ')) {
      throw new AssertionError({ message: `SSE event ${i + 1} is not "event: …" then "data: …": ${block.slice(0, 80)}` })
    }
    const event = lines[0].slice('event: '.length)
    let data: any
    try {
      data = JSON.parse(lines[1].slice('data: '.length))
    } catch {
      throw new AssertionError({ message: `SSE event ${i + 1} data is not JSON: ${lines[1].slice(0, 80)}` })
    }
    if (data?.type !== event) throw new AssertionError({ message: `SSE event ${i + 1}: event ${event} but data.type ${String(data?.type)}` })
    return { event, data }
  })
}
