import { RealmError } from '../../protocol/errors.js'

/** Another process (usually another node on the same data dir) holds the database's lock */
export class DbLockedError extends RealmError {
  override name = 'DbLockedError'
  constructor (path: string, cause?: unknown) {
    super('DATA_DIR_LOCKED', `database ${path} is locked by another process (is another node running on this data dir?)`, { cause, details: { path } })
  }
}

/** The database could not be opened for any other reason (permissions, corruption, not a folder) */
export class DbOpenError extends RealmError {
  override name = 'DbOpenError'
  constructor (path: string, cause?: unknown) {
    const reason = cause instanceof Error ? `: ${(cause.cause instanceof Error ? cause.cause : cause).message}` : ''
    super('DB_OPEN_FAILED', `cannot open database ${path}${reason}`, { cause, details: { path } })
  }
}

/** The database was written by a newer version of the node, or its version record is unreadable */
export class DbVersionError extends RealmError {
  override name = 'DbVersionError'
  constructor (path: string, found: unknown, supported: number) {
    super('DB_VERSION_UNSUPPORTED', `database ${path} has schema version ${JSON.stringify(found)}; this node supports up to ${supported}`, { details: { path, found, supported } })
  }
}

/** A value failed its bucket's schema, on write or on read (a bug or a corrupt record) */
export class DbValueError extends RealmError {
  override name = 'DbValueError'
  constructor (bucket: string, key: string, message: string, op: 'read' | 'write') {
    super('DB_VALUE_INVALID', `invalid value on ${op} in bucket ${bucket} at key ${JSON.stringify(key)}: ${message}`, { details: { bucket, key, op } })
  }
}
