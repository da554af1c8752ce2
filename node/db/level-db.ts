import { Level } from 'level'
import { Bucket, MAX_BUCKET_ID } from './buckets.js'
import { DB_SCHEMA_VERSION, SCHEMA_VERSION_KEY } from './constants.js'
import { DbLockedError, DbOpenError, DbValueError, DbVersionError } from './errors.js'
import type { ZodType } from 'zod'
import type { BucketStore, DbBatchOp, DbInit, RangeOptions, RealmDb, WriteOptions } from './index.js'

type RawLevel = Level<Buffer, unknown>

/** classic-level reports a held LOCK file as `LEVEL_LOCKED`, wrapped in `LEVEL_DATABASE_NOT_OPEN` */
function isLockedError (err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code
  const causeCode = ((err as { cause?: { code?: unknown } } | undefined)?.cause)?.code
  return code === 'LEVEL_LOCKED' || causeCode === 'LEVEL_LOCKED'
}

function bucketName (bucket: Bucket): string {
  return Bucket[bucket] ?? String(bucket)
}

function checkBucket (bucket: Bucket): void {
  if (!Number.isInteger(bucket) || bucket < 0 || bucket > MAX_BUCKET_ID) {
    throw new RangeError(`bucket id ${bucket} is outside 0..${MAX_BUCKET_ID}`)
  }
}

function encodeKey (bucket: Bucket, key: string): Buffer {
  const body = Buffer.from(key, 'utf8')
  const out = Buffer.allocUnsafe(body.length + 1)
  out[0] = bucket
  body.copy(out, 1)
  return out
}

function decodeKey (raw: Buffer): string {
  return raw.subarray(1).toString('utf8')
}

function checkValue<T> (schema: ZodType<T> | undefined, bucket: Bucket, key: string, value: unknown, op: 'read' | 'write'): T {
  if (op === 'write' && value === undefined) throw new DbValueError(bucketName(bucket), key, 'undefined is not a JSON value', op)
  if (schema == null) return value as T
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const issues = result.error.issues.map(issue => `${issue.path.join('.') || '(value)'}: ${issue.message}`).join('; ')
  throw new DbValueError(bucketName(bucket), key, issues, op)
}

class LevelBucketStore<T> implements BucketStore<T> {
  constructor (
    private readonly db: LevelRealmDb,
    readonly bucket: Bucket,
    private readonly schema: ZodType<T> | undefined
  ) {}

  async get (key: string): Promise<T | undefined> {
    const value = await this.db.level.get(encodeKey(this.bucket, key))
    if (value === undefined) return undefined
    return checkValue(this.schema, this.bucket, key, value, 'read')
  }

  async put (key: string, value: T, options?: WriteOptions): Promise<void> {
    checkValue(this.schema, this.bucket, key, value, 'write')
    await this.db.level.put(encodeKey(this.bucket, key), value, { sync: options?.sync ?? this.db.sync })
  }

  async del (key: string, options?: WriteOptions): Promise<void> {
    await this.db.level.del(encodeKey(this.bucket, key), { sync: options?.sync ?? this.db.sync })
  }

  async * entries (range: RangeOptions = {}): AsyncGenerator<[string, T]> {
    const bounds: Record<string, Buffer> = {}
    if (range.gt !== undefined) bounds.gt = encodeKey(this.bucket, range.gt)
    else if (range.gte !== undefined) bounds.gte = encodeKey(this.bucket, range.gte)
    else bounds.gte = Buffer.from([this.bucket])
    if (range.lt !== undefined) bounds.lt = encodeKey(this.bucket, range.lt)
    else if (range.lte !== undefined) bounds.lte = encodeKey(this.bucket, range.lte)
    // every key of this bucket sorts below the next bucket's one-byte prefix
    else bounds.lt = Buffer.from([this.bucket + 1])
    const iterator = this.db.level.iterator({ ...bounds, reverse: range.reverse ?? false, limit: range.limit ?? -1 })
    try {
      for await (const [rawKey, value] of iterator) {
        const key = decodeKey(rawKey)
        yield [key, checkValue(this.schema, this.bucket, key, value, 'read')]
      }
    } finally {
      await iterator.close()
    }
  }

  putOp (key: string, value: T): DbBatchOp {
    checkValue(this.schema, this.bucket, key, value, 'write')
    return { type: 'put', bucket: this.bucket, key, value }
  }

  delOp (key: string): DbBatchOp {
    return { type: 'del', bucket: this.bucket, key }
  }
}

class LevelRealmDb implements RealmDb {
  schemaVersion = DB_SCHEMA_VERSION
  private closing?: Promise<void>

  constructor (readonly path: string, readonly level: RawLevel, readonly sync: boolean) {}

  bucket<T = unknown> (bucket: Bucket, schema?: ZodType<T>): BucketStore<T> {
    checkBucket(bucket)
    return new LevelBucketStore<T>(this, bucket, schema)
  }

  async batch (ops: DbBatchOp[], options?: WriteOptions): Promise<void> {
    if (ops.length === 0) return
    const raw = ops.map(op => {
      checkBucket(op.bucket)
      if (op.type === 'put') {
        checkValue(undefined, op.bucket, op.key, op.value, 'write')
        return { type: 'put' as const, key: encodeKey(op.bucket, op.key), value: op.value }
      }
      return { type: 'del' as const, key: encodeKey(op.bucket, op.key) }
    })
    await this.level.batch(raw, { sync: options?.sync ?? this.sync })
  }

  async close (): Promise<void> {
    this.closing ??= this.level.close()
    await this.closing
  }

  /** read the schema version; write it on a new database, refuse one from a newer schema */
  async checkVersion (): Promise<void> {
    const key = encodeKey(Bucket.meta, SCHEMA_VERSION_KEY)
    const found = await this.level.get(key)
    if (found === undefined) {
      // always fsynced: a database must never exist on disk without its version
      await this.level.put(key, DB_SCHEMA_VERSION, { sync: true })
      this.schemaVersion = DB_SCHEMA_VERSION
      return
    }
    if (typeof found !== 'number' || !Number.isInteger(found) || found < 1 || found > DB_SCHEMA_VERSION) {
      throw new DbVersionError(this.path, found, DB_SCHEMA_VERSION)
    }
    // older versions would be migrated here, in order; there are none before version 1
    this.schemaVersion = found
  }
}

export async function openLevelDb (init: DbInit): Promise<RealmDb> {
  const level: RawLevel = new Level<Buffer, unknown>(init.path, { keyEncoding: 'buffer', valueEncoding: 'json' })
  try {
    await level.open()
  } catch (err) {
    if (isLockedError(err)) throw new DbLockedError(init.path, err)
    throw new DbOpenError(init.path, err)
  }
  const db = new LevelRealmDb(init.path, level, init.sync ?? false)
  try {
    await db.checkVersion()
  } catch (err) {
    await db.close().catch(() => {})
    if (err instanceof DbVersionError) throw err
    throw new DbOpenError(init.path, err)
  }
  return db
}
