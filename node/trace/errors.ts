import { RealmError } from '../../protocol/errors.js'

/** `since` is not a time */
export class InvalidSinceError extends RealmError {
  override name = 'InvalidSinceError'
  constructor (since: unknown) {
    super('INVALID_SINCE', `since ${JSON.stringify(String(since).slice(0, 40))}: expected an ISO-8601 time`)
  }
}

/**
 * Thrown by `TraceLog.flush()` after a test failpoint threw: the log behaves as if its process
 * was killed at that point and does no more I/O.
 */
export class TraceCrashedError extends RealmError {
  override name = 'TraceCrashedError'
  constructor (failpoint: string, cause?: unknown) {
    super('TRACE_CRASHED', `trace log stopped at failpoint ${failpoint}`, { cause, details: { failpoint } })
  }
}
