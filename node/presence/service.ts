/**
 * Presence gossip: publishes this node's signed beacon every interval (and at once when its
 * workers change), validates every beacon it receives, and keeps the live peer table.
 */
import { logger } from '@libp2p/logger'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import type { RealmLibp2p } from '../p2p/libp2p.js'
import type { Startable } from '../startable.js'
import type { EventBus } from '../events/index.js'
import { PeerTable, type PeerEntry } from './peer-table.js'
import { TOPIC_PRESENCE, REALM_VERSION } from '../../protocol/ids.js'
import { checkBeaconFresh, decodeBeacon, encodeBeacon, type Beacon, type NodeHealth, type WorkerAd } from '../../protocol/presence.js'
import { GossipValidationError } from '../../protocol/verdict.js'
import { errorMessage } from '../../protocol/errors.js'
import { verifyCached } from '../p2p/verify.js'

/** Default beacon period (DESIGN: HEALTH_INTERVAL_MS) */
export const HEALTH_INTERVAL_MS = 2_000
/** A peer silent for this many of its own intervals expires */
export const EXPIRE_INTERVALS = 3
/**
 * Why a beacon goes out before its time, and how soon: a capability change (a worker or its
 * models) at once, coalescing a burst; a load change (tasks starting and ending, possibly
 * thousands a second) at most a few times an interval; a peer that just subscribed (when a node
 * joins, every peer would answer, N² messages) at most twice an interval.
 */
export type AnnounceReason = 'capability' | 'load' | 'peer'
const ANNOUNCE_DEBOUNCE_MS = 20
const LOAD_MIN_GAP_MS = 250
const PEER_MIN_DELAY_MS = 250
/** Expiry is checked this many times per interval, so a peer goes within 3 intervals, not 4 */
const EXPIRY_CHECKS_PER_INTERVAL = 8
/** Replay protection remembers this many peers' last sequence numbers */
const MAX_SEQ_MEMORY = 10_000
/**
 * Beacons one peer may publish of its own, per second after a burst: ticks, load announcements
 * (≥ 250 ms apart) and capability changes stay well below. Beyond it the beacon is REJECTed
 * (`BEACON_RATE_LIMITED`) when the peer sent it itself, ignored when relayed.
 */
export const MAX_OWN_BEACONS_PER_S = 20
const OWN_BEACON_BURST = 40
/**
 * Gossip messages one neighbour may hand us per second after a burst, whoever wrote them,
 * checked before the signature (so a flood costs us no crypto). Beyond it they are ignored, not
 * rejected: an honest relay in a large, busy realm may pass it for a moment.
 */
export const MAX_RELAYED_PER_S = 100
const RELAYED_BURST = 400

export interface LocalAd {
  workers: WorkerAd[]
  health: NodeHealth
}

export interface PresenceInit {
  privateKey: PrivateKey
  events: EventBus
  /** what this node advertises right now */
  localAd: () => LocalAd
  intervalMs?: number
  expireIntervals?: number
  name?: string
  gateway?: string
  /** peers whose beacons are rejected and who are kept out of the table */
  isBlocked?: (peerId: string) => boolean
  /** told of every beacon accepted, by its author (presence, for probation); default nothing */
  onBeacon?: (peerId: string) => void
  /** told when a peer replays its own old beacons or floods its own (reputation); default nothing */
  onMisbehaviour?: (peerId: string, what: 'replay' | 'flood') => void
  now?: () => number
}

export interface PresenceStats {
  published: number
  accepted: number
  ignored: number
  rejected: number
  /** beacons dropped because their sender or author is blocked (rejected from the peer, ignored when relayed) */
  blocked: number
  /** rejections per peer (by code), for scoring and the sysop */
  rejectedBy: Map<string, Record<string, number>>
  /** messages ignored because their neighbour passed MAX_RELAYED_PER_S */
  rateLimited: number
}

/** A token bucket per key, bounded in the keys it remembers */
class RateLimits {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly perS: number, private readonly burst: number) {}

  /** Take one token for `key`; false when it has none left */
  take (key: string, now: number): boolean {
    let b = this.buckets.get(key)
    if (b == null) {
      if (this.buckets.size >= MAX_SEQ_MEMORY) this.buckets.delete(this.buckets.keys().next().value!)
      b = { tokens: this.burst, at: now }
      this.buckets.set(key, b)
    }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perS / 1000)
    b.at = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}

export class PresenceService implements Startable {
  readonly table = new PeerTable()
  readonly stats: PresenceStats = { published: 0, accepted: 0, ignored: 0, rejected: 0, blocked: 0, rejectedBy: new Map(), rateLimited: 0 }
  private readonly log = logger('realm:presence')
  private readonly intervalMs: number
  private readonly expireIntervals: number
  private readonly now: () => number
  private readonly lastSeq = new Map<string, number>()
  private readonly decoded = new WeakMap<Uint8Array, Beacon>()
  private seq: number
  private timer?: ReturnType<typeof setInterval>
  private expiryTimer?: ReturnType<typeof setInterval>
  private announceTimer?: ReturnType<typeof setTimeout>
  private announceAt = Infinity
  private lastPublishAt = 0
  private nextTickAt = 0
  private running = false
  private lastSummary = new Map<string, string>()
  private readonly ownRate = new RateLimits(MAX_OWN_BEACONS_PER_S, OWN_BEACON_BURST)
  private readonly relayRate = new RateLimits(MAX_RELAYED_PER_S, RELAYED_BURST)

  constructor (private readonly libp2p: RealmLibp2p, private readonly init: PresenceInit) {
    this.intervalMs = init.intervalMs ?? HEALTH_INTERVAL_MS
    this.expireIntervals = init.expireIntervals ?? EXPIRE_INTERVALS
    this.now = init.now ?? Date.now
    // starts from the clock so that it stays above what peers saw before a restart
    this.seq = this.now()
  }

  start (): void {
    const pubsub = this.libp2p.services.pubsub
    pubsub.topicValidators.set(TOPIC_PRESENCE, this.validate)
    pubsub.addEventListener('message', this.onMessage)
    pubsub.subscribe(TOPIC_PRESENCE)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.running = true
    this.nextTickAt = this.now() + this.intervalMs
    this.timer = setInterval(() => { this.tick() }, this.intervalMs)
    this.timer.unref?.()
    this.expiryTimer = setInterval(() => { this.expire() }, Math.max(10, Math.floor(this.intervalMs / EXPIRY_CHECKS_PER_INTERVAL)))
    this.expiryTimer.unref?.()
    this.announce()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    clearInterval(this.timer)
    clearInterval(this.expiryTimer)
    clearTimeout(this.announceTimer)
    this.announceAt = Infinity
    // a last beacon saying we leave, so peers drop us at once instead of after 3 intervals
    await this.publish(true).catch(() => {})
    const pubsub = this.libp2p.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.topicValidators.delete(TOPIC_PRESENCE)
    try { pubsub.unsubscribe(TOPIC_PRESENCE) } catch {}
  }

  /** Publish a beacon before the next tick, as soon as the reason warrants (see AnnounceReason) */
  announce (reason: AnnounceReason = 'capability'): void {
    if (!this.running) return
    const now = this.now()
    let at: number
    if (reason === 'capability') at = now + ANNOUNCE_DEBOUNCE_MS
    else if (reason === 'load') at = Math.max(now + ANNOUNCE_DEBOUNCE_MS, this.lastPublishAt + LOAD_MIN_GAP_MS)
    else at = Math.max(now + PEER_MIN_DELAY_MS, this.lastPublishAt + this.intervalMs / 2)
    // the regular beacon comes soon enough, or an earlier announcement is already due
    if (at >= this.nextTickAt || at >= this.announceAt) return
    clearTimeout(this.announceTimer)
    this.announceAt = at
    this.announceTimer = setTimeout(() => {
      this.announceTimer = undefined
      this.announceAt = Infinity
      void this.publish(false).catch(err => { this.log.error('publish failed: %s', errorMessage(err)) })
    }, at - now)
  }

  /** Remove a peer at once (blocked) */
  drop (peerId: string, reason: string): void {
    if (this.table.remove(peerId)) {
      this.lastSummary.delete(peerId)
      this.init.events.emit('peer.leave', { peerId, reason })
    }
  }

  peers (): PeerEntry[] {
    return this.table.entries()
  }

  /** The beacon this node would publish now */
  async buildBeacon (leaving: boolean): Promise<Beacon> {
    const ad = this.init.localAd()
    const beacon: Beacon = {
      v: 1,
      peerId: this.libp2p.peerId.toString(),
      seq: ++this.seq,
      time: new Date(this.now()).toISOString(),
      intervalMs: this.intervalMs,
      version: REALM_VERSION,
      workers: leaving ? [] : ad.workers,
      health: ad.health
    }
    if (this.init.name != null && this.init.name !== '') beacon.name = this.init.name
    if (this.init.gateway != null) beacon.gateway = this.init.gateway
    if (leaving) beacon.leaving = true
    return beacon
  }

  private async publish (leaving: boolean): Promise<void> {
    this.lastPublishAt = this.now()
    const beacon = await this.buildBeacon(leaving)
    const data = await encodeBeacon(beacon, this.init.privateKey)
    await this.libp2p.services.pubsub.publish(TOPIC_PRESENCE, data)
    this.stats.published++
  }

  private tick (): void {
    this.nextTickAt = this.now() + this.intervalMs
    void this.publish(false).catch(err => { this.log('publish failed: %s', errorMessage(err)) })
  }

  /** Drop peers silent for `expireIntervals` of their own interval */
  expire (): void {
    const now = this.now()
    for (const entry of this.table.entries()) {
      const ttl = this.expireIntervals * Math.max(entry.beacon.intervalMs, 100)
      if (now - entry.lastSeen > ttl) {
        this.table.remove(entry.peerId)
        this.lastSummary.delete(entry.peerId)
        this.init.events.emit('peer.leave', { peerId: entry.peerId, reason: 'expired' })
      }
    }
  }

  private recordReject (peerId: string, code: string): void {
    this.stats.rejected++
    let counts = this.stats.rejectedBy.get(peerId)
    if (counts == null) {
      if (this.stats.rejectedBy.size >= MAX_SEQ_MEMORY) this.stats.rejectedBy.delete(this.stats.rejectedBy.keys().next().value!)
      counts = {}
      this.stats.rejectedBy.set(peerId, counts)
    }
    counts[code] = (counts[code] ?? 0) + 1
  }

  private readonly validate = async (propagationSource: PeerId, msg: Message): Promise<TopicValidatorResult> => {
    const source = propagationSource.toString()
    try {
      // gossip runs StrictNoSign: the beacon carries its own signature, checked here once
      if (this.init.isBlocked?.(source) === true) throw new GossipValidationError('reject', 'PEER_BLOCKED', 'peer is blocked')
      if (!this.relayRate.take(source, this.now())) {
        this.stats.rateLimited++
        throw new GossipValidationError('ignore', 'GOSSIP_RATE_LIMITED', `more than ${MAX_RELAYED_PER_S} gossip messages a second from this peer`)
      }
      const beacon = await decodeBeacon(msg.data, undefined, verifyCached)
      // relayed by a peer that is not blocked: not the relay's fault, so dropped without penalty
      if (this.init.isBlocked?.(beacon.peerId) === true) throw new GossipValidationError('ignore', 'PEER_BLOCKED', 'peer is blocked')
      if (beacon.peerId === this.libp2p.peerId.toString()) throw new GossipValidationError('ignore', 'BEACON_SELF', 'own beacon')
      const own = beacon.peerId === source
      if (!this.ownRate.take(beacon.peerId, this.now())) {
        if (own) this.init.onMisbehaviour?.(source, 'flood')
        throw new GossipValidationError(own ? 'reject' : 'ignore', 'BEACON_RATE_LIMITED', `more than ${MAX_OWN_BEACONS_PER_S} beacons a second from ${beacon.peerId}`)
      }
      try {
        checkBeaconFresh(beacon, this.now(), this.lastSeq.get(beacon.peerId))
      } catch (err) {
        // its own old beacon, sent again by itself: relays may lag, the author has no excuse
        if (own && err instanceof GossipValidationError && err.code === 'BEACON_REPLAY') this.init.onMisbehaviour?.(source, 'replay')
        throw err
      }
      this.decoded.set(msg.data, beacon)
      return TopicValidatorResult.Accept
    } catch (err) {
      const verdict = err instanceof GossipValidationError ? err.verdict : 'reject'
      const code = err instanceof GossipValidationError ? err.code : 'BEACON_INVALID'
      if (code === 'PEER_BLOCKED') this.stats.blocked++
      if (verdict === 'reject') {
        this.recordReject(source, code)
        this.log('rejected beacon from %s: %s', source, errorMessage(err))
        this.init.events.emit('presence.rejected', { peerId: source, code, message: errorMessage(err) })
        return TopicValidatorResult.Reject
      }
      this.stats.ignored++
      return TopicValidatorResult.Ignore
    }
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    if (msg.topic !== TOPIC_PRESENCE) return
    const beacon = this.decoded.get(msg.data)
    if (beacon == null) return
    const last = this.lastSeq.get(beacon.peerId)
    if (last !== undefined && beacon.seq <= last) return
    if (!this.lastSeq.has(beacon.peerId) && this.lastSeq.size >= MAX_SEQ_MEMORY) {
      this.lastSeq.delete(this.lastSeq.keys().next().value!)
    }
    this.lastSeq.set(beacon.peerId, beacon.seq)
    this.stats.accepted++
    this.init.onBeacon?.(beacon.peerId)
    const result = this.table.apply(beacon, this.now())
    if (result === 'leave') {
      this.lastSummary.delete(beacon.peerId)
      this.init.events.emit('peer.leave', { peerId: beacon.peerId, reason: 'left' })
      return
    }
    if (result == null) return
    const summary = summarise(beacon)
    if (result === 'join') {
      this.lastSummary.set(beacon.peerId, summary)
      this.init.events.emit('peer.join', { peerId: beacon.peerId, name: beacon.name, version: beacon.version, workers: beacon.workers, health: beacon.health })
    } else if (this.lastSummary.get(beacon.peerId) !== summary) {
      this.lastSummary.set(beacon.peerId, summary)
      this.init.events.emit('presence.update', { peerId: beacon.peerId, name: beacon.name, workers: beacon.workers, health: beacon.health })
    }
  }

  // a peer that just subscribed learns about us now rather than at the next tick
  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (evt.detail.subscriptions.some(s => s.topic === TOPIC_PRESENCE && s.subscribe)) this.announce('peer')
  }
}

/** What changed enough to tell event listeners: capabilities and coarse health */
function summarise (beacon: Beacon): string {
  return JSON.stringify([
    beacon.name,
    beacon.workers.map(w => [w.id, w.health.state, w.health.queueDepth, w.health.inFlight, w.models.map(m => [m.name, m.loaded, m.price])]),
    beacon.health.queueDepth,
    beacon.health.inFlight
  ])
}
