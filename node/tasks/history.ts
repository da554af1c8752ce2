/**
 * Per-task history on the requesting node, in the `tasks` bucket: each record under
 * `t:<id>`, and an index `r:<requester hash>:<inverted time>:<id>` so a requester's history
 * lists newest first without a scan of everyone's.
 *
 * Crash safety: an index `o:<id>` holds the tasks not ended yet, written in the same atomic batch
 * as the new record and deleted in the same batch as its final one. After a crash (SIGKILL,
 * power loss) the next start closes what it lists as `error` / `INTERRUPTED`
 * (`closeInterrupted`), so every task a client was given an id for ends, and says why.
 *
 * Group commit: writes leave one batch at a time; those that come while one is being written
 * (tasks submitted or ended meanwhile) leave together in the next, fsynced when any of them asked
 * for it. Each `put` still resolves only once its own ops are written (and synced if it asked),
 * and a record's later write never overtakes its earlier one. Under load this is one LevelDB
 * write and one fsync for many tasks instead of two writes per task.
 */
import { createHash } from 'node:crypto'
import { Bucket, type DbBatchOp, type RealmDb, type BucketStore } from '../db/index.js'
import type { TaskRecord, TaskStatus } from './types.js'
import type { TaskOutput } from '../../protocol/task.js'

/** Largest time key, so that newer tasks sort first */
const TIME_BASE = 10 ** 15
/** Most history entries a list returns */
export const MAX_HISTORY_LIST = 500
/** Text kept of an output in the stored record */
const MAX_STORED_TEXT = 64 * 1024
/** Key (in the `tasks` bucket) saying the open-task index `o:` is kept; before it, a start looks at every record once */
const OPEN_INDEX_MARK = 'm:open-index'
/** Statuses a task ends with: its record leaves the open-task index */
const FINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['done', 'error', 'cancelled'])
/** The code and message of a task the node was running when it died */
export const INTERRUPTED_ERROR = { code: 'INTERRUPTED', message: 'the node restarted while this task ran; submit it again' } as const

/** Recent requesters' keys: one hash per requester, not one per write */
const requesterKeys = new Map<string, string>()
const MAX_CACHED_REQUESTER_KEYS = 1024

function requesterKey (requester: string): string {
  let key = requesterKeys.get(requester)
  if (key === undefined) {
    key = createHash('sha256').update(requester).digest('hex').slice(0, 32)
    if (requesterKeys.size >= MAX_CACHED_REQUESTER_KEYS) requesterKeys.delete(requesterKeys.keys().next().value!)
    requesterKeys.set(requester, key)
  }
  return key
}

function indexKey (requester: string, createdAt: string, id: string): string {
  const inv = String(TIME_BASE - Date.parse(createdAt)).padStart(16, '0')
  return `r:${requesterKey(requester)}:${inv}:${id}`
}

/** What is stored of an output: text and figures, media described rather than kept */
export function storedOutput (output: TaskOutput): TaskOutput & { media?: Array<{ mime: string, bytes: number }> } {
  const stored: TaskOutput & { media?: Array<{ mime: string, bytes: number }> } = {}
  if (output.text !== undefined) stored.text = output.text.slice(0, MAX_STORED_TEXT)
  if (output.doneReason !== undefined) stored.doneReason = output.doneReason
  if (output.usage !== undefined) stored.usage = output.usage
  if (output.seed !== undefined) stored.seed = output.seed
  const media = [...(output.images ?? []), ...(output.audio != null ? [output.audio] : [])]
  if (media.length > 0) stored.media = media.map(m => ({ mime: m.mime, bytes: Math.floor(m.data.length * 3 / 4) }))
  if (output.embeddings !== undefined) stored.media = [...(stored.media ?? []), { mime: 'application/x-embeddings', bytes: output.embeddings.length }]
  return stored
}

/** Writes waiting for the batch under way to finish */
interface PendingBatch {
  ops: DbBatchOp[]
  sync: boolean
  waiters: Array<{ resolve: () => void, reject: (err: unknown) => void }>
}

export class TaskHistory {
  private readonly store: BucketStore<TaskRecord | ''>
  private pending?: PendingBatch
  private writing = false

  constructor (private readonly db: RealmDb) {
    this.store = db.bucket<TaskRecord | ''>(Bucket.tasks)
  }

  /**
   * Store a record; a new one is indexed under its requester in the same atomic write. A record
   * not final yet is listed as open, a final one leaves that list in the same write.
   * `sync`: fsync before resolving (survives a power loss, not only a crash of the process).
   */
  async put (record: TaskRecord, isNew: boolean, options?: { sync?: boolean }): Promise<void> {
    const ops = [this.store.putOp(`t:${record.id}`, record)]
    if (isNew) ops.push(this.store.putOp(indexKey(record.requester, record.createdAt, record.id), ''))
    if (!FINAL_STATUSES.has(record.status)) ops.push(this.store.putOp(`o:${record.id}`, ''))
    else if (!isNew) ops.push(this.store.delOp(`o:${record.id}`))
    await new Promise<void>((resolve, reject) => {
      let batch = this.pending
      if (batch == null) {
        batch = { ops: [], sync: false, waiters: [] }
        this.pending = batch
        // nothing being written: this batch leaves at the end of the current job, with whatever joins it by then
        if (!this.writing) queueMicrotask(() => { this.flush() })
      }
      for (const op of ops) batch.ops.push(op)
      if (options?.sync === true) batch.sync = true
      batch.waiters.push({ resolve, reject })
    })
  }

  /** Writes the pending batch (one at a time); the next one leaves when this one is done */
  private flush (): void {
    const batch = this.pending
    if (batch == null || this.writing) return
    this.pending = undefined
    this.writing = true
    this.db.batch(batch.ops, batch.sync ? { sync: true } : undefined).then(
      () => { for (const w of batch.waiters) w.resolve() },
      (err: unknown) => { for (const w of batch.waiters) w.reject(err) }
    ).finally(() => {
      this.writing = false
      this.flush()
    })
  }

  /**
   * Close the records a crash left open (`queued`, `running`) as `error` with code INTERRUPTED;
   * returns them as closed. Run at start, before any task is taken.
   */
  async closeInterrupted (now = new Date()): Promise<TaskRecord[]> {
    const ids = new Set<string>()
    for await (const [key] of this.store.entries({ gte: 'o:', lt: 'o;' })) ids.add(key.slice(2))
    const indexed = await this.store.get(OPEN_INDEX_MARK) !== undefined
    if (!indexed) {
      // a database from before the open-task index: look at every record, once
      for await (const [key, value] of this.store.entries({ gte: 't:', lt: 't;' })) {
        if (value !== '' && !FINAL_STATUSES.has(value.status)) ids.add(key.slice(2))
      }
    }
    const closed: TaskRecord[] = []
    for (const id of ids) {
      const record = await this.get(id)
      const ops = [this.store.delOp(`o:${id}`)]
      if (record != null && !FINAL_STATUSES.has(record.status)) {
        const ended: TaskRecord = { ...record, status: 'error', endedAt: now.toISOString(), error: { ...INTERRUPTED_ERROR } }
        ops.push(this.store.putOp(`t:${id}`, ended))
        closed.push(ended)
      }
      await this.db.batch(ops)
    }
    if (!indexed) await this.store.put(OPEN_INDEX_MARK, '', { sync: true })
    return closed
  }

  async get (id: string): Promise<TaskRecord | undefined> {
    const v = await this.store.get(`t:${id}`)
    return v === '' ? undefined : v
  }

  async list (requester: string, limit = 50): Promise<TaskRecord[]> {
    const prefix = `r:${requesterKey(requester)}:`
    const out: TaskRecord[] = []
    for await (const [key] of this.store.entries({ gte: prefix, lt: prefix + '\xff', limit: Math.min(limit, MAX_HISTORY_LIST) })) {
      const id = key.slice(key.lastIndexOf(':') + 1)
      const record = await this.get(id)
      if (record != null) out.push(record)
    }
    return out
  }
}
