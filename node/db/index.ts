/**
 * The node's database: one LevelDB (classic-level) folder with JSON values, split into buckets
 * by a one-byte key prefix (see `buckets.ts`), with a schema version checked at open.
 */
import type { ZodType } from 'zod'
import type { Bucket } from './buckets.js'
import { openLevelDb } from './level-db.js'

export { Bucket, MAX_BUCKET_ID } from './buckets.js'
export { DB_SCHEMA_VERSION, SCHEMA_VERSION_KEY } from './constants.js'
export { DbLockedError, DbOpenError, DbVersionError, DbValueError } from './errors.js'

export interface DbInit {
  /** folder of the database (created if missing), e.g. `DIR/db` */
  path: string
  /**
   * Default for every write's `sync`. `false` (the default): a write that resolved survives a
   * crash or SIGKILL of the process (LevelDB has handed it to the OS) but not a power loss or
   * kernel crash. `true`: every write is fsynced before it resolves (much slower). A single
   * write may override it with its own `{ sync }`; the ledger passes `sync: true`.
   */
  sync?: boolean
}

export interface WriteOptions {
  /** fsync before resolving; default: the database's `DbInit.sync` */
  sync?: boolean
}

/** Bounds of a scan within one bucket; keys compare as UTF-8 bytes (zero-pad numbers) */
export interface RangeOptions {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
  /** newest-key first; default `false` */
  reverse?: boolean
  /** at most this many entries; default: no limit */
  limit?: number
}

/** One write of an atomic `RealmDb.batch`, possibly spanning buckets */
export type DbBatchOp =
  | { type: 'put', bucket: Bucket, key: string, value: unknown }
  | { type: 'del', bucket: Bucket, key: string }

/**
 * A typed view of one bucket. With a schema, every value is checked on write and on read; a
 * value that fails it throws `DbValueError` (code `DB_VALUE_INVALID`), on read too: a stored
 * value that no longer fits its schema is a bug or corruption, never silently skipped.
 * Schemas should be JSON round-trip safe (no transforms to non-JSON types).
 */
export interface BucketStore<T> {
  readonly bucket: Bucket
  /** the value at `key`, or `undefined` when there is none */
  get (key: string): Promise<T | undefined>
  put (key: string, value: T, options?: WriteOptions): Promise<void>
  del (key: string, options?: WriteOptions): Promise<void>
  /** `[key, value]` pairs in key order (or reverse), within `range` */
  entries (range?: RangeOptions): AsyncGenerator<[string, T]>
  /** a checked put for `RealmDb.batch` */
  putOp (key: string, value: T): DbBatchOp
  /** a delete for `RealmDb.batch` */
  delOp (key: string): DbBatchOp
}

export interface RealmDb {
  readonly path: string
  /** the schema version the database is at (after open) */
  readonly schemaVersion: number
  /** a typed view of `bucket`; cheap, make one wherever it is needed */
  bucket<T = unknown> (bucket: Bucket, schema?: ZodType<T>): BucketStore<T>
  /**
   * Apply every op or none. Values of raw ops are not schema-checked: build them with
   * `BucketStore.putOp` to check them.
   */
  batch (ops: DbBatchOp[], options?: WriteOptions): Promise<void>
  /** close the database; idempotent. Operations after close reject */
  close (): Promise<void>
}

/**
 * Open (creating if missing) the database at `init.path`.
 *
 * @throws DbLockedError (`DATA_DIR_LOCKED`) when another process holds it
 * @throws DbVersionError (`DB_VERSION_UNSUPPORTED`) when it was written by a newer schema
 * @throws DbOpenError (`DB_OPEN_FAILED`) for any other failure
 */
export async function openDb (init: DbInit): Promise<RealmDb> {
  return openLevelDb(init)
}
