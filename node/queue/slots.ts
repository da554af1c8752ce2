import { DEFAULT_SLOTS } from './constants.js'
import { InvalidQueueOptionError, SlotNotHeldError } from './errors.js'
import type { FairQueue } from './fair-queue.js'
import type { QueueEntry } from './index.js'

/**
 * A counting semaphore for one resource (a worker backend that runs `limit` tasks at once).
 * `limit` may change at run time: lowered below `inFlight`, running tasks finish and no new one
 * starts until fewer than `limit` run; 0 pauses the resource.
 */
export class Slots {
  private max: number
  private held = 0

  /** @param limit - tasks run at once, an integer ≥ 0; default 1 (`DEFAULT_SLOTS`) */
  constructor (limit: number = DEFAULT_SLOTS) {
    this.max = checkLimit(limit)
  }

  get limit (): number {
    return this.max
  }

  set limit (limit: number) {
    this.max = checkLimit(limit)
  }

  /** slots held */
  get inFlight (): number {
    return this.held
  }

  /** slots free now */
  get available (): number {
    return Math.max(0, this.max - this.held)
  }

  /** take a slot if one is free */
  tryAcquire (): boolean {
    if (this.held >= this.max) return false
    this.held++
    return true
  }

  /** give back a slot; throws SlotNotHeldError (SLOT_NOT_HELD) if none is held */
  release (): void {
    if (this.held === 0) throw new SlotNotHeldError()
    this.held--
  }
}

function checkLimit (limit: number): number {
  if (!(Number.isInteger(limit) && limit >= 0)) throw new InvalidQueueOptionError('limit', limit, 'an integer ≥ 0')
  return limit
}

/**
 * Hand waiting tasks to free slots: while a slot is free and a task waits, take the slot,
 * dequeue the task in fair order and `start` it. Call after each enqueue and each release.
 * `start` owns the slot from then on and must `release()` it when the task ends; if `start`
 * throws, the slot is released and the error thrown (the task is out of the queue: the caller
 * must fail it, never drop it). Returns the number of tasks started.
 */
export function pump<T> (queue: FairQueue<T>, slots: Slots, start: (entry: QueueEntry<T>) => void): number {
  let started = 0
  while (queue.size > 0 && slots.tryAcquire()) {
    const entry = queue.dequeue()
    if (entry === undefined) {
      slots.release()
      break
    }
    try {
      start(entry)
    } catch (err) {
      slots.release()
      throw err
    }
    started++
  }
  return started
}
