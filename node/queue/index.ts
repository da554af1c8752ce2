/**
 * The fair queue (the original RentAHal's "safe queue"): tasks waiting on this node for a slot
 * on some resource, served round robin across requesters and FIFO within one. Pure logic, no
 * I/O, no timers. See DESIGN.md "Routing, queue, health".
 *
 * Rounds — what "fair order" means, exactly:
 * - The queue counts rounds 0, 1, 2, … Each requester with tasks waiting has its next *turn*
 *   booked in some round; one turn serves its oldest waiting task. Its tasks are booked one per
 *   turn, in rounds `next`, `next + stride`, `next + 2·stride`, … where `stride` is
 *   `round(1 / weight)`: 1 for everyone, 2 for a weight-0.5 requester (probation), 4 for 0.25.
 * - Within a round, turns are taken in *rotation order*: the order in which requesters joined
 *   the queue, i.e. last went from no task waiting to one. A requester that leaves (nothing left
 *   waiting) gives up its place; when it comes back it is last in the rotation.
 * - The *current round* is the round of the last turn served (0 before any). So a round is the
 *   set of turns booked with that number, served in rotation order; it ends when a turn of a
 *   later round is served, which happens only once nobody has a turn left in it.
 * - A requester joining books its first turn in the current round — at its end, since it is
 *   last in the rotation — unless it already had a turn there (or, on probation, fewer than
 *   `stride` rounds ago): then in round `lastTurn + stride`. Newcomers never jump ahead of
 *   requesters already waiting in the round, and a requester cannot get an extra turn by
 *   letting its queue run dry and coming back.
 * - `dequeue()` serves the turn with the lowest (round, rotation place). Cancelling a task gives
 *   its turn to the requester's next task (the requester keeps its turns; its later tasks move
 *   up one turn each). Turns are fixed when booked, so the order of tasks already waiting
 *   changes only by removals and by a new weight for a requester; enqueues only insert.
 *
 * Example: A1..A5, B1..B5, C1..C5 arrive in that order while the slot is busy → A1 B1 C1 A2 B2
 * C2 …. If D arrives after A1 and B1 were served, it is served after C1: C1 D1 A2 B2 C2 D2 ….
 *
 * Positions: `position(id)` is the number of tasks that will be served before this one if
 * nothing else arrives or leaves (`dequeue()` returns the task at position 0). ETA: `etaMs`.
 *
 * Change notifications are batched per microtask: `onChange` listeners get, once per tick after
 * any enqueue, dequeue or removal, the waiting tickets whose position differs from the one last
 * reported to the caller (by `enqueue`'s answer or an earlier notification), in position order.
 * A ticket that moved and moved back within one tick is not reported; tickets dequeued or
 * removed are not reported (the caller did that). `flushChanges()` delivers now.
 *
 * Costs (n tasks waiting, r requesters waiting): enqueue O(r) (it answers with a position),
 * dequeue O(log r), remove O(r + k) for a requester with k waiting, position O(r + log k),
 * removeRequester, positions and each notification batch O(n) (precisely O(n + span of rounds),
 * span ≤ 64·(k + 1)). A dequeue moves every waiting task up one, so a batch after it reports
 * all n; notifications cost nothing while no listener is subscribed.
 */
import { FairQueue } from './fair-queue.js'

export { FairQueue } from './fair-queue.js'
export { etaForPosition, ServiceTimeEwma, type ServiceTimeEwmaInit } from './eta.js'
export { Slots, pump } from './slots.js'
export * from './errors.js'
export * from './constants.js'

export interface FairQueueInit {
  /** most tasks waiting in the whole queue (the node's bound); default 1024 (`DEFAULT_MAX_SIZE`) */
  maxSize?: number
  /** most tasks one requester may have waiting; default 16 (`DEFAULT_PER_REQUESTER`) */
  perRequester?: number
  /** the clock, ms (for `enqueuedAt`, `waitedMs` and `stats().oldestWaitMs`); default `Date.now` */
  now?: () => number
  /**
   * The ETA model used for `QueueFullError`'s `retryAfterS`, asked at the moment a task is
   * refused; default `{ serviceTimeMs: 10_000, slots: 1 }` (`DEFAULT_SERVICE_TIME_MS`, `DEFAULT_SLOTS`)
   */
  etaModel?: () => EtaModel
}

export interface EnqueueOptions {
  /**
   * The requester's share, in (0, 1]: it gets a turn every `round(1 / weight)` rounds (0.25: a
   * turn every 4 rounds, for a brand-new peer id on probation). Values below 1/64 count as
   * 1/64 (`MIN_WEIGHT`), above 1 as 1. Applies to all the requester's waiting tasks but the
   * next one, whose turn is already booked. Default: unchanged while the requester has tasks
   * waiting, else 1 (`DEFAULT_WEIGHT`).
   */
  weight?: number
  /** the ticket id (e.g. the task id); must not be waiting already. Default: a fresh id (`q1`, `q2`, …) */
  id?: string
}

/** A task's place in the queue, as known when the object was made */
export interface QueuedTicket {
  id: string
  requester: string
  /** tasks served before this one if nothing else arrives or leaves */
  position: number
  /** `now()` at enqueue, ms */
  enqueuedAt: number
}

/** A task taken out of the queue (served, cancelled or banned) */
export interface QueueEntry<T> {
  item: T
  requester: string
  /** position: its position just before it left (0 for a served task) */
  ticket: QueuedTicket
  /** `now()` at that moment minus `enqueuedAt` */
  waitedMs: number
}

export interface PositionChange {
  ticketId: string
  position: number
}

export type ChangeListener = (changes: PositionChange[]) => void

/** How long the tasks ahead will take; see `etaForPosition` */
export interface EtaModel {
  /** expected time one task holds a slot (e.g. a `ServiceTimeEwma` of that model), ms */
  serviceTimeMs: number
  /** tasks the resource runs at once (values below 1 count as 1) */
  slots: number
  /** time until the first running task frees its slot, ms; default `serviceTimeMs` (as if it just started) */
  inFlightRemainingMs?: number
}

export interface QueueStats {
  /** tasks waiting */
  size: number
  /** requesters with tasks waiting */
  requesters: number
  maxSize: number
  perRequester: number
  /** the current round */
  round: number
  /** how long the oldest waiting task has waited, ms (0 when empty) */
  oldestWaitMs: number
  /** totals since the queue was made */
  enqueued: number
  dequeued: number
  /** cancelled with `remove` or banned with `removeRequester` */
  removed: number
  rejected: { requester: number, node: number }
}

export function createFairQueue<T> (init: FairQueueInit = {}): FairQueue<T> {
  return new FairQueue<T>(init)
}
