/**
 * The persistent trace log: every event the node emits, one JSON line each, in
 * `DIR/trace/trace.log`, rotated by size into `trace.1.log` (newest) … `trace.N.log` (oldest).
 *
 * Crash safety (the node may be SIGKILLed at any point):
 * - Lines are buffered in memory for up to `flushIntervalMs` and then appended in order; what a
 *   kill loses is that buffer, and at most one torn line at the end of `trace.log`. On start the
 *   torn line is closed with a newline so the next line is not glued to it; readers skip it and
 *   count it.
 * - Rotation, in this order: (1) write everything for the current file and close it;
 *   (2) find the lowest free slot k ≥ 1 and shift `trace.{k-1}` → `trace.k`, …, `trace.1` →
 *   `trace.2` (each one atomic rename, into a slot just vacated); (3) rename `trace.log` →
 *   `trace.1.log`; (4) delete files numbered above `maxFiles` (and, with `retentionMs`, expired
 *   ones from the oldest end); (5) open a new `trace.log`. Every complete line is at every moment
 *   in exactly one file, and files keep their relative order, so a kill between any two steps
 *   loses nothing: the next start deletes files beyond `maxFiles` and carries on; a hole left in
 *   the numbering is filled by the next rotation (it stops shifting at the first free slot).
 * - Files only ever move to higher numbers or are deleted from the oldest end. That is what a
 *   following reader relies on to track the file it reads, by identity (inode), across renames.
 * - Lines reach the OS when written (they survive a kill of the process), but are not fsynced:
 *   a power loss may lose the last moments.
 * - One writer per folder: the node holds the data dir lock (the database) while it writes.
 */
import { DefaultTraceLog } from './trace-log.js'
import type { RealmEvent } from '../events/index.js'
import type { Startable } from '../startable.js'

export * from './constants.js'
export { InvalidSinceError, TraceCrashedError } from './errors.js'
export { traceFiles, traceFileName, parseTraceFileName, pruneTrace, lastEventTime, type PruneTraceOptions } from './files.js'
export { readTrace, type ReadTraceOptions, type ReadTraceResult, type SkippedLine } from './reader.js'
export { markerOf, type MarkerReason } from './encode.js'

/** Named points in a rotation where a test may stop the log as if its process were killed */
export type TraceFailpoint =
  | 'rotate:start' // current file written and closed, nothing renamed yet
  | 'rotate:after-shift' // after each `trace.n` → `trace.n+1` rename
  | 'rotate:after-rename' // `trace.log` is now `trace.1.log`, no new `trace.log` yet
  | 'rotate:after-delete' // files beyond `maxFiles` deleted
  | 'rotate:done' // new `trace.log` open

export interface TraceLogInit {
  /** the trace folder (`DIR/trace`); created if missing */
  dir: string
  /** rotate when `trace.log` would grow past this many bytes; default 10 MiB (`DEFAULT_MAX_BYTES`) */
  maxBytes?: number
  /** rotated files kept besides `trace.log` (the oldest beyond is deleted); default 5 */
  maxFiles?: number
  /** buffered events are written within this many ms; default 100 */
  flushIntervalMs?: number
  /** an event whose line is longer is written as a `{ type, time, truncated: true, bytes, …small fields }` marker; default 256 KiB */
  maxEventBytes?: number
  /** events waiting for a stuck disk beyond this many bytes are dropped and counted (a `trace.dropped` event marks the gap); default 32 MiB */
  maxBufferBytes?: number
  /** rotated files whose newest event is older than this (ms) are deleted at start and at each rotation; default: none (only `maxFiles` bounds the log) */
  retentionMs?: number
  /**
   * Applied to each event before it is written (e.g. strip prompts unless the node keeps them);
   * return `undefined` to leave the event out. If it throws, only the event's type and time
   * are written (`redactFailed: true`), never the unredacted event. Default: none.
   */
  redact?: (event: RealmEvent) => RealmEvent | undefined
  /**
   * Test hook, called at each `TraceFailpoint`. If it throws, the log stops there as if killed:
   * no more I/O, buffered events lost, `flush()` rejects with `TraceCrashedError`. Default: none.
   */
  failpoint?: (name: TraceFailpoint) => void
}

export interface TraceLogStats {
  /** events given to `append` */
  appended: number
  /** lines written to disk */
  written: number
  /** events written as a `truncated` marker */
  truncated: number
  /** events dropped: buffer full, or appended after `stop()` */
  dropped: number
  rotations: number
  /** failed writes or rotations (retried) */
  errors: number
}

export interface TraceLog extends Startable {
  /** create the folder, finish what a crash left (extra files, torn line), open `trace.log` */
  start (): Promise<void>
  /** queue an event (written within `flushIntervalMs`); never throws. Events appended before `start()` are written once started */
  append (event: RealmEvent): void
  /** resolves once everything appended before the call is written (or, after a write error, retried later) */
  flush (): Promise<void>
  /** flush, then close; later appends are dropped */
  stop (): Promise<void>
  readonly stats: TraceLogStats
}

export function createTraceLog (init: TraceLogInit): TraceLog {
  return new DefaultTraceLog(init)
}
