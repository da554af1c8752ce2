/**
 * What this node knows of each peer id from its own dealings with it: when it was first seen,
 * how long it has been present, the tasks it served for us (done, failed, timed out, lied about
 * its models), the tasks it submitted to us and the protocol rules it broke. Two uses:
 *
 * - Probation. A fresh peer id costs nothing to make, so a new one gets a small share of this
 *   node's queue (`weightOf`) and a routing penalty (`routePenaltyMs`: proven workers are
 *   preferred, new ones still get work when the proven are busy) until it has done
 *   `probationTasks` honest tasks (served for us, or submitted and followed to the end) or been
 *   present for `probationMs` without misbehaving. Flooding or dodging a block with new identities
 *   then buys only a sliver of the node's attention.
 * - The application-specific part of gossipsub's peer score (`appScore`). Each bad outcome adds to a
 *   penalty that halves every PENALTY_HALF_LIFE_MS and is capped at PENALTY_CAP (the floor of the
 *   score), so a peer that keeps failing sinks below the graylist threshold and is disconnected
 *   (`exiled`), while one bad run of an honest peer — a backend that died mid-task — does not
 *   reach it, and an exiled peer can come back once the penalty has decayed.
 *
 * Records are kept in the database (`Bucket.peers`), written in batches, so a restart neither
 * resets everyone to probation nor forgives a peer it had just exiled.
 */
import { z } from 'zod'
import { logger } from '@libp2p/logger'
import { Bucket, type BucketStore, type RealmDb } from '../db/index.js'
import type { EventBus, RealmEvent } from '../events/index.js'
import type { Startable } from '../startable.js'
import { errorMessage } from '../../protocol/errors.js'

/** Peers remembered at once (in memory and in the database); the least recently seen go first */
export const MAX_PEER_RECORDS = 10_000
/** The penalty halves in this long: a peer exiled for a burst of bad outcomes is back within minutes */
export const PENALTY_HALF_LIFE_MS = 5 * 60_000
/** The penalty never grows past this: the floor of the app score, so even the worst peer recovers (in ~12 min) */
export const PENALTY_CAP = 40
/**
 * A peer whose app score is at or below this is exiled (disconnected, refused by the gater).
 * Gossipsub weighs the app score ×10 (appSpecificWeight), so −8 is its graylist threshold (−80).
 */
export const EXILE_APP_SCORE = -8
/** A proven peer's credit: it takes PROVEN_CREDIT more penalty to exile it than a new one */
export const PROVEN_CREDIT = 4
/** A gap between two sightings longer than this is absence, not presence */
const MAX_PRESENCE_GAP_MS = 60_000
/** Dirty records are written this often (and at stop) */
const FLUSH_INTERVAL_MS = 5_000

/** What a peer did, as this node saw it */
export type PeerOutcome =
  /** served a task of ours to the end */
  | 'served'
  /** a task of ours failed on it (backend error, bad frames, broken stream) */
  | 'failed'
  /** fell silent on a task of ours (lease lost, unreachable) */
  | 'timeout'
  /** advertised a model it then said it does not serve */
  | 'lied'
  /** submitted a task to us and followed it to the end */
  | 'submitted'
  /** broke the task protocol (garbage, oversized or out-of-order frames, no request) */
  | 'violation'
  /** replayed its own old beacon */
  | 'replay'
  /** sent more gossip than the rate limit allows */
  | 'flood'
  /** fell below gossipsub's graylist threshold and was disconnected: a cool-down */
  | 'graylisted'

/** Penalty of each outcome (good ones: none); see EXILE_APP_SCORE for the scale */
export const OUTCOME_PENALTY: Record<PeerOutcome, number> = {
  served: 0,
  submitted: 0,
  failed: 1,
  timeout: 1.5,
  lied: 3,
  violation: 2,
  replay: 0.25,
  flood: 0.5,
  graylisted: 10
}

export const PeerRecordSchema = z.object({
  firstSeen: z.number(),
  lastSeen: z.number(),
  /** time present (sightings less than MAX_PRESENCE_GAP_MS apart), ms */
  presentMs: z.number().nonnegative(),
  served: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  timedOut: z.number().int().nonnegative(),
  lied: z.number().int().nonnegative(),
  submitted: z.number().int().nonnegative(),
  violations: z.number().int().nonnegative(),
  /** the penalty as of `penaltyAt` (it decays from there) */
  penalty: z.number().nonnegative(),
  penaltyAt: z.number()
}).strict()
export type PeerRecord = z.infer<typeof PeerRecordSchema>

export interface ReputationInit {
  /** where records live (`Bucket.peers`); default: memory only */
  db?: RealmDb
  /** honest tasks that end probation */
  probationTasks: number
  /** presence without misbehaviour that ends probation, ms */
  probationMs: number
  /** queue share of a peer on probation, (0, 1] */
  probationWeight: number
  /** routing penalty of a worker on probation, ms of expected completion time (shrinks as it proves itself) */
  probationPenaltyMs: number
  /** peers never on probation: this node, trusted peers; default none */
  isExempt?: (peerId: string) => boolean
  /** where `peer.exiled` goes; default none */
  events?: EventBus
  now?: () => number
}

/** How a peer stands, for the sysop and tests */
export interface PeerStanding extends PeerRecord {
  peerId: string
  probation: boolean
  appScore: number
  exiled: boolean
}

export class PeerReputation implements Startable {
  private readonly log = logger('realm:reputation')
  private readonly records = new Map<string, PeerRecord>()
  private readonly dirty = new Set<string>()
  private readonly deleted = new Set<string>()
  private readonly exileListeners = new Set<(peerId: string) => void>()
  private readonly now: () => number
  private timer?: ReturnType<typeof setInterval>
  private flushing: Promise<void> = Promise.resolve()
  private readonly store?: BucketStore<PeerRecord>

  constructor (private readonly init: ReputationInit) {
    this.now = init.now ?? Date.now
    this.store = init.db?.bucket(Bucket.peers, PeerRecordSchema)
  }

  /** Load the records kept in the database */
  async load (): Promise<void> {
    if (this.store == null) return
    const loaded: Array<[string, PeerRecord]> = []
    try {
      for await (const [peerId, record] of this.store.entries()) loaded.push([peerId, record])
    } catch (err) {
      // a damaged record costs the peer its history, not the node its start
      this.log.error('could not read peer records: %s', errorMessage(err))
    }
    // least recently seen first, so eviction order survives the restart
    loaded.sort((a, b) => a[1].lastSeen - b[1].lastSeen)
    for (const [peerId, record] of loaded) this.records.set(peerId, record)
    while (this.records.size > MAX_PEER_RECORDS) this.evictOldest()
  }

  start (): void {
    this.timer ??= setInterval(() => { void this.flush() }, FLUSH_INTERVAL_MS)
    this.timer.unref?.()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.flush()
  }

  /** Write changed records now */
  async flush (): Promise<void> {
    const store = this.store
    const db = this.init.db
    if (store == null || db == null) { this.dirty.clear(); this.deleted.clear(); return }
    this.flushing = this.flushing.then(async () => {
      const ops = []
      for (const peerId of this.deleted) ops.push(store.delOp(peerId))
      for (const peerId of this.dirty) {
        const r = this.records.get(peerId)
        if (r != null) ops.push(store.putOp(peerId, r))
      }
      this.deleted.clear()
      this.dirty.clear()
      // one atomic write: a crash leaves the records as they were or as they are
      await db.batch(ops)
    }).catch(err => { this.log.error('could not write peer records: %s', errorMessage(err)) })
    await this.flushing
  }

  /** Called when one of the peer's connections is exiled (to hang up on it at once) */
  onExile (listener: (peerId: string) => void): () => void {
    this.exileListeners.add(listener)
    return () => { this.exileListeners.delete(listener) }
  }

  /** The peer was seen (a valid beacon of its own, a connection): counts towards its presence */
  seen (peerId: string): void {
    const now = this.now()
    const r = this.touch(peerId, now)
    const gap = now - r.lastSeen
    if (gap > 0 && gap <= MAX_PRESENCE_GAP_MS) r.presentMs += gap
    r.lastSeen = now
  }

  /** Record what a peer did */
  record (peerId: string, outcome: PeerOutcome): void {
    if (peerId === '') return
    const now = this.now()
    const r = this.touch(peerId, now)
    r.lastSeen = Math.max(r.lastSeen, now)
    if (outcome === 'served') r.served++
    else if (outcome === 'submitted') r.submitted++
    else if (outcome === 'failed') r.failed++
    else if (outcome === 'timeout') r.timedOut++
    else if (outcome === 'lied') r.lied++
    else if (outcome === 'violation' || outcome === 'replay' || outcome === 'flood') r.violations++
    const add = OUTCOME_PENALTY[outcome]
    if (add === 0) return
    const wasExiled = this.exiled(peerId)
    r.penalty = Math.min(PENALTY_CAP, this.penaltyOf(r, now) + add)
    r.penaltyAt = now
    if (!wasExiled && this.exiled(peerId)) {
      this.log('peer %s exiled: app score %d', peerId, this.appScore(peerId))
      this.init.events?.emit('peer.exiled', { peerId, appScore: Math.round(this.appScore(peerId) * 100) / 100, outcome })
      for (const l of [...this.exileListeners]) {
        try { l(peerId) } catch {}
      }
    }
  }

  /** Is this peer on probation? */
  onProbation (peerId: string): boolean {
    if (this.init.probationTasks === 0 || this.init.isExempt?.(peerId) === true) return false
    const r = this.records.get(peerId)
    if (r == null) return this.init.probationMs > 0
    if (this.honest(r) >= this.init.probationTasks) return false
    // presence counts only while the peer behaves
    return r.presentMs < this.init.probationMs || this.penaltyOf(r, this.now()) >= 1
  }

  /** Queue share of a peer's tasks on this node: small while on probation */
  readonly weightOf = (peerId: string): number => this.onProbation(peerId) ? this.init.probationWeight : 1

  /** Routing penalty of a worker on this peer, ms: shrinks with each honest task until probation ends */
  readonly routePenaltyMs = (peerId: string): number => {
    if (!this.onProbation(peerId)) return 0
    const r = this.records.get(peerId)
    const done = r == null ? 0 : Math.min(this.honest(r), this.init.probationTasks)
    return this.init.probationPenaltyMs * (this.init.probationTasks - done) / Math.max(1, this.init.probationTasks)
  }

  /** Gossipsub's application-specific score of a peer (weighted ×10 there) */
  readonly appScore = (peerId: string): number => {
    const r = this.records.get(peerId)
    if (r == null) return 0
    const credit = this.onProbation(peerId) ? 0 : PROVEN_CREDIT
    // positive credit only offsets penalties: it never lifts a score above 0
    return Math.min(0, credit - this.penaltyOf(r, this.now()))
  }

  /** Is this peer exiled (to be disconnected and refused until its penalty decays)? */
  readonly exiled = (peerId: string): boolean => this.records.has(peerId) && this.appScore(peerId) <= EXILE_APP_SCORE

  /** A peer's standing; undefined for one never seen */
  standing (peerId: string): PeerStanding | undefined {
    const r = this.records.get(peerId)
    if (r == null) return undefined
    return { peerId, ...r, penalty: this.penaltyOf(r, this.now()), probation: this.onProbation(peerId), appScore: this.appScore(peerId), exiled: this.exiled(peerId) }
  }

  get size (): number {
    return this.records.size
  }

  private honest (r: PeerRecord): number {
    return r.served + r.submitted
  }

  private penaltyOf (r: PeerRecord, now: number): number {
    if (r.penalty === 0) return 0
    return r.penalty * 0.5 ** (Math.max(0, now - r.penaltyAt) / PENALTY_HALF_LIFE_MS)
  }

  /** The record of a peer, created if new, moved to the most recently used end and marked dirty */
  private touch (peerId: string, now: number): PeerRecord {
    let r = this.records.get(peerId)
    if (r == null) {
      if (this.records.size >= MAX_PEER_RECORDS) this.evictOldest()
      r = { firstSeen: now, lastSeen: now, presentMs: 0, served: 0, failed: 0, timedOut: 0, lied: 0, submitted: 0, violations: 0, penalty: 0, penaltyAt: now }
      this.deleted.delete(peerId)
    } else {
      this.records.delete(peerId)
    }
    this.records.set(peerId, r)
    this.dirty.add(peerId)
    return r
  }

  private evictOldest (): void {
    const oldest = this.records.keys().next().value
    if (oldest === undefined) return
    this.records.delete(oldest)
    this.dirty.delete(oldest)
    this.deleted.add(oldest)
  }
}

/**
 * What a task event of the manager (the requesting side) says about the worker's peer, if
 * anything: a done task was served; a failed attempt is a failure, a timeout or a lie about a
 * model by its code. Codes that are the requester's doing or honest backpressure (CANCELLED,
 * QUEUE_FULL, FORBIDDEN, SPEND_CAP) say nothing.
 */
export function outcomeOfTaskEvent (event: RealmEvent): { peerId: string, outcome: PeerOutcome } | undefined {
  const peerId = event.peerId
  if (typeof peerId !== 'string') return undefined
  if (event.type === 'task.done') return { peerId, outcome: 'served' }
  if (event.type !== 'task.attempt_failed') return undefined
  switch (event.code) {
    case 'MODEL_NOT_FOUND':
    case 'NO_WORKER':
      return { peerId, outcome: 'lied' }
    case 'LEASE_LOST':
    case 'TIMEOUT':
    case 'BACKEND_UNREACHABLE':
      return { peerId, outcome: 'timeout' }
    case 'BACKEND_ERROR':
    case 'INTERNAL':
    case 'INVALID_TASK':
    case 'INTERRUPTED':
      return { peerId, outcome: 'failed' }
    default:
      return undefined
  }
}
