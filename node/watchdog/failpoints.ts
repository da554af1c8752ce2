/**
 * Failpoints, for crash tests only: named points where the process SIGKILLs itself, armed by the
 * environment variable `REALM_FAILPOINTS` (read once, when this module loads):
 *
 *   REALM_FAILPOINTS=task.acknowledged@3,trace.rotate:after-rename realm start …
 *
 * `name` fires the first time the point is reached, `name@N` the N-th time. A process without
 * the variable pays one branch per point. A node refuses to start when the variable names an
 * unknown point (`checkFailpoints`), and says on stderr that failpoints are armed.
 */
import { writeSync } from 'node:fs'
import { FAILPOINTS_ENV } from './constants.js'
import { InvalidFailpointError } from './errors.js'
import type { TraceFailpoint } from '../trace/index.js'

/** Every point, and what has just happened when it fires */
export const FAILPOINTS = {
  /** `POST /realm/tasks` handed its 202 `{ id }` to the OS (the task record is in the database) */
  'task.acknowledged': 'a task was acknowledged to its client',
  'trace.rotate:start': 'trace rotation: the current file written and closed, nothing renamed',
  'trace.rotate:after-shift': 'trace rotation: after each trace.n → trace.n+1 rename',
  'trace.rotate:after-rename': 'trace rotation: trace.log is now trace.1.log, no new trace.log yet',
  'trace.rotate:after-delete': 'trace rotation: files beyond max_files deleted',
  'trace.rotate:done': 'trace rotation: the new trace.log is open'
} as const

export type FailpointName = keyof typeof FAILPOINTS

/** Largest `@N` accepted */
const MAX_COUNT = 1_000_000

interface Armed {
  /** fires when `hits` reaches it */
  at: number
  hits: number
}

/** Parse `REALM_FAILPOINTS`; throws InvalidFailpointError (code INVALID_ENV) on a bad entry */
export function parseFailpoints (text: string | undefined): Map<FailpointName, Armed> {
  const armed = new Map<FailpointName, Armed>()
  for (const raw of (text ?? '').split(',')) {
    const entry = raw.trim()
    if (entry === '') continue
    const [name, count, ...rest] = entry.split('@')
    if (!Object.hasOwn(FAILPOINTS, name)) throw new InvalidFailpointError(entry, `unknown point; known: ${Object.keys(FAILPOINTS).join(', ')}`)
    const at = count === undefined ? 1 : Number(count)
    if (rest.length > 0 || !Number.isInteger(at) || at < 1 || at > MAX_COUNT) throw new InvalidFailpointError(entry, `expected NAME or NAME@N with N in 1..${MAX_COUNT}`)
    armed.set(name as FailpointName, { at, hits: 0 })
  }
  return armed
}

let armed: Map<FailpointName, Armed> | undefined
let parseError: InvalidFailpointError | undefined
try {
  const parsed = parseFailpoints(process.env[FAILPOINTS_ENV])
  armed = parsed.size > 0 ? parsed : undefined
} catch (err) {
  parseError = err as InvalidFailpointError
}

/**
 * The armed points as text (for the start-up warning), or `undefined` when none are;
 * throws InvalidFailpointError when `REALM_FAILPOINTS` does not parse
 */
export function checkFailpoints (): string | undefined {
  if (parseError != null) throw parseError
  if (armed == null) return undefined
  return [...armed].map(([name, a]) => a.at === 1 ? name : `${name}@${a.at}`).join(',')
}

/** Reach a point: SIGKILL this process if it is armed and its count is reached */
export function failpoint (name: FailpointName): void {
  if (armed === undefined) return
  const point = armed.get(name)
  if (point === undefined || ++point.hits !== point.at) return
  try {
    writeSync(2, `realm: failpoint ${name}${point.at > 1 ? `@${point.at}` : ''} reached (${FAILPOINTS_ENV}): SIGKILL\n`)
  } catch {}
  process.kill(process.pid, 'SIGKILL')
}

/** The trace log's failpoint hook, or `undefined` when no trace point is armed (the log then skips the calls) */
export function traceFailpointHook (): ((name: TraceFailpoint) => void) | undefined {
  if (armed === undefined || ![...armed.keys()].some(name => name.startsWith('trace.'))) return undefined
  return (name) => { failpoint(`trace.${name}` as FailpointName) }
}
