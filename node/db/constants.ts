/**
 * Version of the on-disk layout (bucket ids, key and value shapes). Bump it with a migration
 * when a change would make existing data unreadable by the new code.
 */
export const DB_SCHEMA_VERSION = 1

/** Key in `Bucket.meta` holding the schema version; reserved, not for other use */
export const SCHEMA_VERSION_KEY = 'schemaVersion'
