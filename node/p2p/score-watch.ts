/**
 * Gossipsub scores peers but never hangs up on them: a graylisted peer's gossip is ignored, yet
 * its connection (and its task streams, its ability to take our work) stays. The score watch
 * closes that gap. Once a second, and at once when the reputation exiles a peer, every connected
 * peer whose gossipsub score is below the graylist threshold (invalid gossip, floods, or job
 * outcomes through the application-specific score) or whom the reputation exiles is
 * disconnected, dropped from the peer table and recorded as `graylisted` — a penalty that keeps
 * it exiled, so refused by the gater, until it decays (see reputation.ts).
 */
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import type { RealmLibp2p } from './libp2p.js'
import type { PeerReputation } from './reputation.js'
import type { EventBus } from '../events/index.js'
import type { Startable } from '../startable.js'
import { errorMessage } from '../../protocol/errors.js'

/** Gossipsub's default graylist threshold (the node does not change the thresholds) */
export const GRAYLIST_THRESHOLD = -80
/** How often connected peers' scores are checked */
export const SCORE_CHECK_INTERVAL_MS = 1_000

export interface ScoreWatchInit {
  reputation: PeerReputation
  events?: EventBus
  /** removes a peer from the live table at once */
  dropPeer?: (peerId: string, reason: string) => void
  /** never disconnected by score (this node) */
  selfId?: string
  /** peers left to the sysop's guard (blocked ones: their score is its doing, and unblocking restores them) */
  isBlocked?: (peerId: string) => boolean
  intervalMs?: number
}

export class ScoreWatch implements Startable {
  private readonly log = logger('realm:score-watch')
  private timer?: ReturnType<typeof setInterval>
  private off?: () => void
  /** peers being hung up on, so one exile is acted on once */
  private readonly hangingUp = new Set<string>()
  readonly stats = { disconnected: 0 }

  constructor (private readonly libp2p: RealmLibp2p, private readonly init: ScoreWatchInit) {}

  start (): void {
    this.timer = setInterval(() => { this.check() }, this.init.intervalMs ?? SCORE_CHECK_INTERVAL_MS)
    this.timer.unref?.()
    this.off = this.init.reputation.onExile(peerId => { this.disconnect(peerId, this.scoreOf(peerId), 'exiled') })
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.off?.()
    this.off = undefined
  }

  /** Gossipsub's score of a peer (0 for one it does not track) */
  scoreOf (peerId: string): number {
    try {
      // the implementation has it; the exported GossipSub interface does not say so
      return (this.libp2p.services.pubsub as unknown as { getScore: (id: string) => number }).getScore(peerId)
    } catch {
      return 0
    }
  }

  /** Disconnect every connected peer that is graylisted or exiled */
  check (): void {
    const seen = new Set<string>()
    for (const conn of this.libp2p.getConnections()) {
      const peerId = conn.remotePeer.toString()
      if (seen.has(peerId) || peerId === this.init.selfId || this.init.isBlocked?.(peerId) === true) continue
      seen.add(peerId)
      const score = this.scoreOf(peerId)
      if (score < GRAYLIST_THRESHOLD) this.disconnect(peerId, score, 'graylisted')
      else if (this.init.reputation.exiled(peerId)) this.disconnect(peerId, score, 'exiled')
    }
  }

  private disconnect (peerId: string, score: number, reason: 'graylisted' | 'exiled'): void {
    if (peerId === this.init.selfId || this.hangingUp.has(peerId) || this.init.isBlocked?.(peerId) === true) return
    this.hangingUp.add(peerId)
    // recorded first: the gater refuses the peer from now on, so it cannot slip back in
    if (!this.init.reputation.exiled(peerId)) this.init.reputation.record(peerId, 'graylisted')
    this.stats.disconnected++
    this.log('disconnecting %s (%s, gossip score %d, app score %d)', peerId, reason, score, this.init.reputation.appScore(peerId))
    this.init.events?.emit('peer.graylisted', { peerId, reason, score: Math.round(score * 100) / 100, appScore: Math.round(this.init.reputation.appScore(peerId) * 100) / 100 })
    this.init.dropPeer?.(peerId, reason)
    this.libp2p.hangUp(peerIdFromString(peerId))
      .catch(err => { this.log('hang up on %s failed: %s', peerId, errorMessage(err)) })
      .finally(() => { this.hangingUp.delete(peerId) })
  }
}
