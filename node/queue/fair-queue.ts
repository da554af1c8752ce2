import { logger } from '@libp2p/logger'
import {
  DEFAULT_MAX_SIZE, DEFAULT_PER_REQUESTER, DEFAULT_SERVICE_TIME_MS, DEFAULT_SLOTS, DEFAULT_WEIGHT,
  FIFO_COMPACT_MIN, MIN_RETRY_AFTER_S, MIN_WEIGHT
} from './constants.js'
import { etaForPosition } from './eta.js'
import { DuplicateTicketError, InvalidQueueOptionError, QueueFullError, type QueueFullReason } from './errors.js'
import type {
  ChangeListener, EnqueueOptions, EtaModel, FairQueueInit, PositionChange, QueueEntry, QueuedTicket, QueueStats
} from './index.js'

const log = logger('realm:queue')

/** Most rounds between two turns of one requester (the stride of `MIN_WEIGHT`) */
const MAX_STRIDE = Math.round(1 / MIN_WEIGHT)

interface Entry<T> {
  readonly id: string
  readonly item: T
  readonly requester: Requester<T>
  readonly enqueuedAt: number
  /** increasing within its requester, so its index in the FIFO is found by binary search */
  readonly ord: number
  /** the position the caller last learned (enqueue's answer or a notification) */
  reported: number
}

interface Requester<T> {
  readonly id: string
  /** waiting entries, oldest first, from index `head` (the served prefix is compacted lazily) */
  entries: Array<Entry<T> | undefined>
  head: number
  nextOrd: number
  /** the round of its next turn: its oldest task's round; its i-th task's is `next + i × stride` */
  next: number
  /** rounds from one turn to the next: round(1 / weight) */
  stride: number
  /** its place in the rotation: larger for a later join */
  readonly seq: number
  /** index in the heap of requesters */
  heapIndex: number
  /** the round of its last turn, -Infinity if none is remembered */
  lastTurn: number
}

/**
 * The fair queue; semantics in index.ts. Requesters with tasks waiting sit in a binary min-heap
 * keyed by (next round, rotation place), which gives the next turn in O(log r); a task's round
 * is computed from its requester's `next`, `stride` and its index, so nothing per task moves
 * when a turn is served.
 */
export class FairQueue<T> {
  readonly maxSize: number
  readonly perRequester: number
  private readonly now: () => number
  private readonly etaModel: () => EtaModel
  /** requesters with tasks waiting, in rotation order (a Map keeps insertion order) */
  private readonly active = new Map<string, Requester<T>>()
  private readonly heap: Array<Requester<T>> = []
  /**
   * Last turns of requesters with nothing waiting, oldest first, kept while they still matter
   * (a turn at most `MAX_STRIDE` rounds ago); an entry kept longer only costs memory.
   */
  private readonly recent = new Map<string, number>()
  private readonly tickets = new Map<string, Entry<T>>()
  private readonly listeners = new Set<ChangeListener>()
  private round = 0
  private seq = 0
  private idCounter = 0
  private waiting = 0
  private dirty = false
  private scheduled = false
  private readonly counts = { enqueued: 0, dequeued: 0, removed: 0, rejected: { requester: 0, node: 0 } }

  constructor (init: FairQueueInit = {}) {
    this.maxSize = init.maxSize ?? DEFAULT_MAX_SIZE
    this.perRequester = init.perRequester ?? DEFAULT_PER_REQUESTER
    if (!(Number.isInteger(this.maxSize) && this.maxSize >= 1)) throw new InvalidQueueOptionError('maxSize', init.maxSize, 'an integer ≥ 1')
    if (!(Number.isInteger(this.perRequester) && this.perRequester >= 1)) throw new InvalidQueueOptionError('perRequester', init.perRequester, 'an integer ≥ 1')
    this.now = init.now ?? Date.now
    this.etaModel = init.etaModel ?? (() => ({ serviceTimeMs: DEFAULT_SERVICE_TIME_MS, slots: DEFAULT_SLOTS }))
  }

  /** tasks waiting */
  get size (): number {
    return this.waiting
  }

  /** tasks `requester` has waiting */
  sizeOf (requester: string): number {
    const r = this.active.get(requester)
    return r === undefined ? 0 : r.entries.length - r.head
  }

  /** requesters with tasks waiting, in rotation order */
  requesters (): string[] {
    return [...this.active.keys()]
  }

  has (ticketId: string): boolean {
    return this.tickets.has(ticketId)
  }

  /**
   * Queue `item` for `requester`. Throws QueueFullError (QUEUE_FULL, `details.reason`
   * 'requester' or 'node', `details.retryAfterS`) when the requester already has
   * `perRequester` tasks waiting or the queue holds `maxSize`; nothing changes then.
   */
  enqueue (item: T, requester: string, opts: EnqueueOptions = {}): QueuedTicket {
    if (typeof requester !== 'string' || requester === '') throw new InvalidQueueOptionError('requester', requester, 'a non-empty string')
    const stride = opts.weight === undefined ? undefined : strideOf(opts.weight)
    let r = this.active.get(requester)
    if (r !== undefined && r.entries.length - r.head >= this.perRequester) throw this.full('requester', r)
    if (this.waiting >= this.maxSize) throw this.full('node')
    const id = opts.id ?? this.freshId()
    if (this.tickets.has(id)) throw new DuplicateTicketError(id)

    if (r === undefined) {
      const lastTurn = this.recent.get(requester) ?? -Infinity
      this.recent.delete(requester)
      const s = stride ?? strideOf(DEFAULT_WEIGHT)
      r = {
        id: requester,
        entries: [],
        head: 0,
        nextOrd: 0,
        next: Math.max(this.round, lastTurn + s),
        stride: s,
        seq: ++this.seq,
        heapIndex: -1,
        lastTurn
      }
      this.active.set(requester, r)
      this.heapPush(r)
    } else if (stride !== undefined) {
      r.stride = stride
    }

    const entry: Entry<T> = { id, item, requester: r, enqueuedAt: this.now(), ord: r.nextOrd++, reported: 0 }
    r.entries.push(entry)
    this.tickets.set(id, entry)
    this.waiting++
    this.counts.enqueued++
    entry.reported = this.positionOf(entry)
    this.changed()
    return { id, requester, position: entry.reported, enqueuedAt: entry.enqueuedAt }
  }

  /** the next task in fair order (call when a slot frees), or undefined if none waits */
  dequeue (): QueueEntry<T> | undefined {
    const r = this.heap[0]
    if (r === undefined) return undefined
    const entry = r.entries[r.head] as Entry<T>
    r.entries[r.head] = undefined
    r.head++
    this.round = r.next
    r.lastTurn = r.next
    r.next += r.stride
    if (r.head === r.entries.length) {
      this.leave(r)
    } else {
      this.compact(r)
      this.siftDown(0)
    }
    this.tickets.delete(entry.id)
    this.waiting--
    this.counts.dequeued++
    this.changed()
    return this.entryOut(entry, 0)
  }

  /** cancel a waiting task; its requester's later tasks move up one turn each. Undefined if not waiting */
  remove (ticketId: string): QueueEntry<T> | undefined {
    const entry = this.tickets.get(ticketId)
    if (entry === undefined) return undefined
    const position = this.positionOf(entry)
    const r = entry.requester
    r.entries.splice(this.indexOf(entry), 1)
    if (r.head === r.entries.length) this.leave(r)
    this.tickets.delete(ticketId)
    this.waiting--
    this.counts.removed++
    this.changed()
    return this.entryOut(entry, position)
  }

  /** remove every task of `requester` (a ban), oldest first */
  removeRequester (requester: string): Array<QueueEntry<T>> {
    const r = this.active.get(requester)
    if (r === undefined) return []
    const positions = this.positions()
    const removed: Array<QueueEntry<T>> = []
    for (let i = r.head; i < r.entries.length; i++) {
      const entry = r.entries[i] as Entry<T>
      this.tickets.delete(entry.id)
      removed.push(this.entryOut(entry, positions.get(entry.id) ?? 0))
    }
    r.head = r.entries.length
    this.leave(r)
    this.waiting -= removed.length
    this.counts.removed += removed.length
    this.changed()
    return removed
  }

  /** tasks that will be served before this one if nothing else arrives or leaves; undefined if not waiting */
  position (ticketId: string): number | undefined {
    const entry = this.tickets.get(ticketId)
    return entry === undefined ? undefined : this.positionOf(entry)
  }

  /** every waiting ticket's position, in position order */
  positions (): Map<string, number> {
    const out = new Map<string, number>()
    this.walk((entry, position) => out.set(entry.id, position))
    return out
  }

  /** estimated ms until this task gets a slot (`etaForPosition` of its position); undefined if not waiting */
  etaMs (ticketId: string, model: EtaModel): number | undefined {
    const position = this.position(ticketId)
    return position === undefined ? undefined : etaForPosition(position, model)
  }

  /**
   * Call `listener` with the tickets whose position changed, batched per microtask (see
   * index.ts). Returns a function that unsubscribes. A listener that throws is logged.
   */
  onChange (listener: ChangeListener): () => void {
    this.listeners.add(listener)
    if (this.dirty) this.schedule()
    return () => { this.listeners.delete(listener) }
  }

  /** deliver pending change notifications now instead of at the end of the tick */
  flushChanges (): void {
    if (!this.dirty || this.listeners.size === 0) return
    this.dirty = false
    const changes: PositionChange[] = []
    this.walk((entry, position) => {
      if (entry.reported !== position) {
        entry.reported = position
        changes.push({ ticketId: entry.id, position })
      }
    })
    if (changes.length === 0) return
    for (const listener of [...this.listeners]) {
      try {
        listener(changes)
      } catch (err) {
        log.error('queue change listener failed: %e', err)
      }
    }
  }

  stats (): QueueStats {
    let oldest = Infinity
    for (const r of this.active.values()) oldest = Math.min(oldest, (r.entries[r.head] as Entry<T>).enqueuedAt)
    return {
      size: this.waiting,
      requesters: this.active.size,
      maxSize: this.maxSize,
      perRequester: this.perRequester,
      round: this.round,
      oldestWaitMs: oldest === Infinity ? 0 : Math.max(0, this.now() - oldest),
      enqueued: this.counts.enqueued,
      dequeued: this.counts.dequeued,
      removed: this.counts.removed,
      rejected: { ...this.counts.rejected }
    }
  }

  private full (reason: QueueFullReason, r?: Requester<T>): QueueFullError {
    this.counts.rejected[reason]++
    // room opens when the requester's oldest task (or the queue's first) gets a slot
    const position = r === undefined ? 0 : this.positionOf(r.entries[r.head] as Entry<T>)
    const etaMs = etaForPosition(position, this.etaModel())
    const retryAfterS = Math.max(MIN_RETRY_AFTER_S, Number.isFinite(etaMs) ? Math.ceil(etaMs / 1000) : MIN_RETRY_AFTER_S)
    return new QueueFullError(reason, retryAfterS, reason === 'requester' ? this.perRequester : this.maxSize)
  }

  private freshId (): string {
    let id: string
    do id = `q${++this.idCounter}`
    while (this.tickets.has(id))
    return id
  }

  private entryOut (entry: Entry<T>, position: number): QueueEntry<T> {
    const requester = entry.requester.id
    return {
      item: entry.item,
      requester,
      ticket: { id: entry.id, requester, position, enqueuedAt: entry.enqueuedAt },
      waitedMs: Math.max(0, this.now() - entry.enqueuedAt)
    }
  }

  /** a requester with nothing left waiting leaves the rotation; its last turn is remembered */
  private leave (r: Requester<T>): void {
    this.heapRemove(r)
    this.active.delete(r.id)
    if (r.lastTurn + MAX_STRIDE > this.round) this.recent.set(r.id, r.lastTurn)
    // oldest first: drop what no longer matters (a later-inserted older turn just waits its turn here)
    for (const [id, lastTurn] of this.recent) {
      if (lastTurn + MAX_STRIDE > this.round) break
      this.recent.delete(id)
    }
  }

  private compact (r: Requester<T>): void {
    if (r.head >= FIFO_COMPACT_MIN && r.head * 2 >= r.entries.length) {
      r.entries = r.entries.slice(r.head)
      r.head = 0
    }
  }

  private indexOf (entry: Entry<T>): number {
    const entries = entry.requester.entries
    let lo = entry.requester.head
    let hi = entries.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const ord = (entries[mid] as Entry<T>).ord
      if (ord === entry.ord) return mid
      if (ord < entry.ord) lo = mid + 1
      else hi = mid - 1
    }
    throw new Error(`queue entry ${entry.id} not found in its requester`)
  }

  /** tasks served before `entry`: per requester, how many of its tasks have a lower (round, rotation place) */
  private positionOf (entry: Entry<T>): number {
    const x = entry.requester
    const index = this.indexOf(entry) - x.head
    const round = x.next + index * x.stride
    let position = index
    for (const y of this.active.values()) {
      if (y === x) continue
      // y's j-th task comes first iff y.next + j·stride < round, or equal and y is earlier in the rotation
      const span = round - y.next + (y.seq < x.seq ? 1 : 0)
      if (span > 0) position += Math.min(y.entries.length - y.head, Math.ceil(span / y.stride))
    }
    return position
  }

  /** visit every waiting entry in fair order: bucket by round (rotation order kept within one), then read out */
  private walk (visit: (entry: Entry<T>, position: number) => void): void {
    if (this.waiting === 0) return
    let last = this.round
    for (const r of this.active.values()) last = Math.max(last, r.next + (r.entries.length - r.head - 1) * r.stride)
    const buckets: Array<Array<Entry<T>> | undefined> = new Array(last - this.round + 1)
    for (const r of this.active.values()) {
      let round = r.next - this.round
      for (let i = r.head; i < r.entries.length; i++, round += r.stride) {
        let bucket = buckets[round]
        if (bucket === undefined) {
          bucket = []
          buckets[round] = bucket
        }
        bucket.push(r.entries[i] as Entry<T>)
      }
    }
    let position = 0
    for (const bucket of buckets) {
      if (bucket === undefined) continue
      for (const entry of bucket) visit(entry, position++)
    }
  }

  private changed (): void {
    this.dirty = true
    if (this.listeners.size > 0) this.schedule()
  }

  private schedule (): void {
    if (this.scheduled) return
    this.scheduled = true
    queueMicrotask(() => {
      this.scheduled = false
      this.flushChanges()
    })
  }

  // binary min-heap of requesters by (next, seq)

  private less (a: Requester<T>, b: Requester<T>): boolean {
    return a.next < b.next || (a.next === b.next && a.seq < b.seq)
  }

  private heapPush (r: Requester<T>): void {
    r.heapIndex = this.heap.length
    this.heap.push(r)
    this.siftUp(r.heapIndex)
  }

  private heapRemove (r: Requester<T>): void {
    const i = r.heapIndex
    const last = this.heap.pop() as Requester<T>
    r.heapIndex = -1
    if (last === r) return
    this.heap[i] = last
    last.heapIndex = i
    this.siftDown(i)
    this.siftUp(last.heapIndex)
  }

  private siftUp (i: number): void {
    const heap = this.heap
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.less(heap[i], heap[parent])) break
      this.swap(i, parent)
      i = parent
    }
  }

  private siftDown (i: number): void {
    const heap = this.heap
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let min = i
      if (left < heap.length && this.less(heap[left], heap[min])) min = left
      if (right < heap.length && this.less(heap[right], heap[min])) min = right
      if (min === i) return
      this.swap(i, min)
      i = min
    }
  }

  private swap (i: number, j: number): void {
    const heap = this.heap
    const a = heap[i]
    heap[i] = heap[j]
    heap[j] = a
    heap[i].heapIndex = i
    heap[j].heapIndex = j
  }
}

/** rounds between a requester's turns for a weight; throws on a weight that is not a positive number */
function strideOf (weight: number): number {
  if (typeof weight !== 'number' || !(weight > 0)) throw new InvalidQueueOptionError('weight', weight, 'a number in (0, 1]')
  return Math.min(MAX_STRIDE, Math.max(1, Math.round(1 / Math.max(weight, MIN_WEIGHT))))
}
