import { RealmError } from '../../protocol/errors.js'

/** Why a task was refused: its requester has its share waiting, or the node's queue is full */
export type QueueFullReason = 'requester' | 'node'

/**
 * The task cannot wait here now; come back in `retryAfterS` seconds (an estimate from the ETA
 * model, at least 1). The gateway answers 429 with `Retry-After` (503 on the Ollama routes).
 */
export class QueueFullError extends RealmError {
  override name = 'QueueFullError'
  readonly reason: QueueFullReason
  readonly retryAfterS: number

  constructor (reason: QueueFullReason, retryAfterS: number, limit: number) {
    const what = reason === 'requester' ? `this requester already has ${limit} tasks waiting` : `the queue is full (${limit} tasks waiting)`
    super('QUEUE_FULL', `${what}; retry in ${retryAfterS} s`, { details: { retryAfterS, reason, limit } })
    this.reason = reason
    this.retryAfterS = retryAfterS
  }
}

/** A ticket id given to `enqueue` is already waiting */
export class DuplicateTicketError extends RealmError {
  override name = 'DuplicateTicketError'
  constructor (ticketId: string) {
    super('DUPLICATE_TICKET', `ticket ${JSON.stringify(ticketId.slice(0, 80))} is already queued`, { details: { ticketId: ticketId.slice(0, 80) } })
  }
}

/** An option or argument of the queue, the ETA model or the slots is out of range (a bug in the caller) */
export class InvalidQueueOptionError extends RealmError {
  override name = 'InvalidQueueOptionError'
  constructor (option: string, value: unknown, expected: string) {
    super('INVALID_QUEUE_OPTION', `${option} = ${String(value).slice(0, 40)}: expected ${expected}`, { details: { option, expected } })
  }
}

/** `Slots.release()` with no slot held: a task was released twice */
export class SlotNotHeldError extends RealmError {
  override name = 'SlotNotHeldError'
  constructor () {
    super('SLOT_NOT_HELD', 'release() without a slot held')
  }
}
