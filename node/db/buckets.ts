/**
 * Key prefixes of the database's buckets: the first byte of every key on disk.
 *
 * Ids are stored data: never reuse or renumber one. A bucket that is no longer needed is
 * commented out with its id left in place, and a new bucket takes the next unused id.
 */
export enum Bucket {
  /** the database's own bookkeeping (schema version) */
  meta = 0,
  /** peers seen on the mesh */
  peers = 1,
  /** sysop blocklist entries */
  blocklist = 2,
  /** task history */
  tasks = 3,
  /** double-entry ledger (economy) */
  ledger = 4,
  /** web UI users */
  users = 5,
  /** paid backends' spend per UTC day, keyed `${backend}:${YYYY-MM-DD}` (workers/spend.ts) */
  spend = 6
}

/** Highest id a bucket may take: one key byte, and `id + 1` must fit in it to bound a range scan */
export const MAX_BUCKET_ID = 254
