/** Errors of the sysop tools, told apart by `name`; each carries a SNAKE_CASE code the API reports */
import { RealmError } from '../../protocol/errors.js'

/**
 * Input a sysop gave does not fit: `INVALID_CIDR`, `INVALID_PEER_ID`, `INVALID_ENTRY`,
 * `INVALID_REASON`, `INVALID_EXPIRY`, `INVALID_USER_ID`, `INVALID_MESSAGE`
 */
export class SysopInputError extends RealmError {
  override name = 'SysopInputError'
}

/** No such blocklist entry, user or worker: `ENTRY_NOT_FOUND`, `USER_NOT_FOUND`, `WORKER_NOT_FOUND` */
export class SysopNotFoundError extends RealmError {
  override name = 'SysopNotFoundError'
}

/** The blocklist is at its bound (`BLOCKLIST_FULL`) */
export class BlocklistFullError extends RealmError {
  override name = 'BlocklistFullError'
  constructor (max: number) {
    super('BLOCKLIST_FULL', `the blocklist holds at most ${max} entries`)
  }
}

/** No valid sysop token or session (`UNAUTHORIZED`) */
export class UnauthorizedError extends RealmError {
  override name = 'UnauthorizedError'
  constructor (message = 'a sysop token (Authorization: Bearer …) or sysop session is required') {
    super('UNAUTHORIZED', message)
  }
}

/** Too many failed attempts from this address (`TOO_MANY_ATTEMPTS`); retry after `retryAfterS` */
export class TooManyAttemptsError extends RealmError {
  override name = 'TooManyAttemptsError'
  readonly retryAfterS: number
  constructor (retryAfterS: number) {
    super('TOO_MANY_ATTEMPTS', `too many failed sysop attempts from this address; retry in ${retryAfterS} s`, { details: { retryAfterS } })
    this.retryAfterS = retryAfterS
  }
}
