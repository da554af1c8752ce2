/**
 * Per-task history on the requesting node, in the `tasks` bucket: each record under
 * `t:<id>`, and an index `r:<requester hash>:<inverted time>:<id>` so a requester's history
 * lists newest first without a scan of everyone's.
 */
import { createHash } from 'node:crypto'
import { Bucket, type RealmDb, type BucketStore } from '../db/index.js'
import type { TaskRecord } from './types.js'
import type { TaskOutput } from '../../protocol/task.js'

/** Largest time key, so that newer tasks sort first */
const TIME_BASE = 10 ** 15
/** Most history entries a list returns */
export const MAX_HISTORY_LIST = 500
/** Text kept of an output in the stored record */
const MAX_STORED_TEXT = 64 * 1024

function requesterKey (requester: string): string {
  return createHash('sha256').update(requester).digest('hex').slice(0, 32)
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

export class TaskHistory {
  private readonly store: BucketStore<TaskRecord | ''>

  constructor (private readonly db: RealmDb) {
    this.store = db.bucket<TaskRecord | ''>(Bucket.tasks)
  }

  /** Store a record; a new one is indexed under its requester in the same atomic write */
  async put (record: TaskRecord, isNew: boolean): Promise<void> {
    if (isNew) {
      await this.db.batch([this.store.putOp(`t:${record.id}`, record), this.store.putOp(indexKey(record.requester, record.createdAt, record.id), '')])
    } else {
      await this.store.put(`t:${record.id}`, record)
    }
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
