import { RealmError } from '../../protocol/errors.js'

/** `REALM_FAILPOINTS` names a point that does not exist, or a bad count */
export class InvalidFailpointError extends RealmError {
  override name = 'InvalidFailpointError'
  constructor (entry: string, why: string) {
    super('INVALID_ENV', `REALM_FAILPOINTS "${entry.slice(0, 60)}": ${why}`, { details: { env: 'REALM_FAILPOINTS' } })
  }
}

/**
 * A run the watchdog cancelled: it made no progress while another task waited for its worker.
 * Code TIMEOUT, so the requester fails the task over as for any backend timeout.
 */
export class StuckRunError extends RealmError {
  override name = 'StuckRunError'
  constructor (workerId: string, idleMs: number) {
    super('TIMEOUT', `worker ${workerId} made no progress for ${Math.round(idleMs)} ms while other tasks waited; the watchdog freed its slot`, { details: { workerId, idleMs: Math.round(idleMs), watchdog: true } })
  }
}
