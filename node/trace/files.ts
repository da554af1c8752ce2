/**
 * The trace folder's files. `trace.log` is appended to; rotated files are `trace.1.log`
 * (newest) … `trace.N.log` (oldest). Files only ever move to a higher number (older slot) or
 * get deleted from the oldest end, which is what lets a reader follow them while they rotate.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { CURRENT_TRACE_FILE, LISTING_ATTEMPTS, MAX_LINE_BYTES, READ_CHUNK_BYTES } from './constants.js'

const ROTATED_NAME = /^trace\.([1-9][0-9]{0,8})\.log$/

/** The name of the file at `index`: 0 is the current file, 1 the newest rotated one */
export function traceFileName (index: number): string {
  return index === 0 ? CURRENT_TRACE_FILE : `trace.${index}.log`
}

/** The index of a trace file name (0 = current), or `undefined` for any other file */
export function parseTraceFileName (name: string): number | undefined {
  if (name === CURRENT_TRACE_FILE) return 0
  const match = ROTATED_NAME.exec(name)
  return match == null ? undefined : Number(match[1])
}

function isMissing (err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
}

/** Indexes of the trace files present, ascending (newest first); [] when the folder is missing */
export async function traceIndexes (dir: string): Promise<number[]> {
  let names: string[]
  try {
    names = await fs.readdir(dir)
  } catch (err) {
    if (isMissing(err)) return []
    throw err
  }
  const indexes: number[] = []
  for (const name of names) {
    const index = parseTraceFileName(name)
    if (index !== undefined) indexes.push(index)
  }
  return indexes.sort((a, b) => a - b)
}

/** Paths of the trace files, oldest first, the current file last (for the CLI and tests) */
export async function traceFiles (dir: string): Promise<string[]> {
  const indexes = await traceIndexes(dir)
  return indexes.reverse().map(index => path.join(dir, traceFileName(index)))
}

/** A trace file and its identity, which survives renames */
export interface TraceFileEntry {
  path: string
  index: number
  /** device, inode and birth time: the same file under any name */
  id: string
}

async function scanOnce (dir: string): Promise<TraceFileEntry[]> {
  // readdir is no snapshot: a name renamed while it runs may be missed. It only tells how far
  // the slots go; every slot up to there is stat'ed, and slots past it while files are found.
  const indexes = await traceIndexes(dir)
  const last = indexes.length > 0 ? indexes[indexes.length - 1] : -1
  const newestFirst: TraceFileEntry[] = []
  const seen = new Set<string>()
  // Stat from the newest slot to the oldest, the direction files move in during a rotation:
  // a file that moves while we scan is then seen (perhaps twice, deduplicated), never skipped.
  for (let index = 0; ; index++) {
    const entry = await statEntry(dir, index)
    if (entry == null) {
      if (index > last) break
      continue
    }
    if (seen.has(entry.id)) continue
    seen.add(entry.id)
    newestFirst.push(entry)
  }
  return newestFirst.reverse()
}

async function statEntry (dir: string, index: number): Promise<TraceFileEntry | undefined> {
  const file = path.join(dir, traceFileName(index))
  try {
    const st = await fs.stat(file, { bigint: true })
    return { path: file, index, id: `${st.dev}:${st.ino}:${st.birthtimeNs}` }
  } catch (err) {
    if (isMissing(err)) return undefined
    throw err
  }
}

/**
 * The trace files oldest first with their identities, from a scan that two consecutive
 * attempts agree on (so a rotation running meanwhile cannot reorder them).
 */
export async function listTraceEntries (dir: string): Promise<TraceFileEntry[]> {
  let previous = await scanOnce(dir)
  for (let attempt = 1; attempt < LISTING_ATTEMPTS; attempt++) {
    const next = await scanOnce(dir)
    if (next.length === previous.length && next.every((entry, i) => entry.id === previous[i].id)) return next
    previous = next
  }
  return previous
}

/** Identity of an open file, comparable with `TraceFileEntry.id` */
export async function handleId (handle: fs.FileHandle): Promise<string> {
  const st = await handle.stat({ bigint: true })
  return `${st.dev}:${st.ino}:${st.birthtimeNs}`
}

function eventTimeOf (line: string): number | undefined {
  try {
    const value = JSON.parse(line)
    if (value == null || typeof value !== 'object' || typeof value.time !== 'string') return undefined
    const time = Date.parse(value.time)
    return Number.isNaN(time) ? undefined : time
  } catch {
    return undefined
  }
}

/**
 * The time (ms) of the last readable event of a file, reading backwards from its end;
 * `undefined` when none is found within a line's length of the end.
 */
export async function lastEventTime (file: string): Promise<number | undefined> {
  const handle = await fs.open(file, 'r')
  try {
    const { size } = await handle.stat()
    let tail = Buffer.alloc(0)
    let position = size
    while (position > 0 && tail.length <= MAX_LINE_BYTES) {
      const length = Math.min(READ_CHUNK_BYTES, position)
      position -= length
      const chunk = Buffer.alloc(length)
      const { bytesRead } = await handle.read(chunk, 0, length, position)
      tail = Buffer.concat([chunk.subarray(0, bytesRead), tail])
      // lines wholly inside `tail`: all but the first, unless the file's start was reached
      const lines = tail.toString('utf8').split('\n')
      const first = position === 0 ? 0 : 1
      for (let i = lines.length - 1; i >= first; i--) {
        if (lines[i] === '') continue
        const time = eventTimeOf(lines[i])
        if (time !== undefined) return time
      }
    }
    return undefined
  } finally {
    await handle.close()
  }
}

/** Delete rotated files numbered beyond `maxFiles` (oldest first); returns their paths */
export async function deleteBeyond (dir: string, maxFiles: number): Promise<string[]> {
  const deleted: string[] = []
  for (const index of (await traceIndexes(dir)).reverse()) {
    if (index <= maxFiles) break
    const file = path.join(dir, traceFileName(index))
    await fs.rm(file, { force: true })
    deleted.push(file)
  }
  return deleted
}

export interface PruneTraceOptions {
  /** rotated files whose newest event is older than this are deleted */
  olderThan: Date
}

/**
 * Delete rotated files, oldest first, whose newest event (or, when no event can be read, whose
 * modification time) is older than `olderThan`; stops at the first newer file, so what remains
 * is always a contiguous, newest part of the log. The current file is never deleted.
 * `TraceLog` runs this itself with its `retentionMs`; run it by hand only on a folder that no
 * node is writing (a concurrent rotation could move another file into a checked slot).
 * Returns the deleted paths.
 */
export async function pruneTrace (dir: string, options: PruneTraceOptions): Promise<string[]> {
  const cutoff = options.olderThan.getTime()
  const deleted: string[] = []
  for (const index of (await traceIndexes(dir)).reverse()) {
    if (index === 0) break
    const file = path.join(dir, traceFileName(index))
    let newest: number | undefined
    try {
      newest = await lastEventTime(file) ?? (await fs.stat(file)).mtimeMs
    } catch (err) {
      if (isMissing(err)) continue
      throw err
    }
    if (newest >= cutoff) break
    await fs.rm(file, { force: true })
    deleted.push(file)
  }
  return deleted
}
