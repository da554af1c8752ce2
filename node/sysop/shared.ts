/**
 * Shared blocklists on `/rentahal/1/blocklist`. A node whose sysop publishes sends its local
 * entries, signed with its node key, at once and then every minute (so nodes that join later get
 * them) and soon after each local change. A node applies the lists of the publishers it follows
 * (config `sysop.follow`); its local allow entries override them.
 *
 * Validation: malformed, oversized, unsigned or wrongly signed lists, and lists with an entry
 * that is not a real peer id or range, are REJECTed (the sender loses gossip score); lists from
 * publishers not followed, from this node, stale (older than an hour, or not above the last
 * sequence number applied) or from the future are IGNOREd (dropped, not relayed, no penalty).
 */
import { logger } from '@libp2p/logger'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import type { RealmLibp2p } from '../p2p/libp2p.js'
import type { EventBus } from '../events/index.js'
import type { Startable } from '../startable.js'
import { verifyCached } from '../p2p/verify.js'
import { parseCidr } from './cidr.js'
import { parsePeerId, type Blocklist } from './blocklist.js'
import { BLOCKLIST_REPUBLISH_DEBOUNCE_MS, BLOCKLIST_REPUBLISH_MS } from './constants.js'
import { TOPIC_BLOCKLIST } from '../../protocol/ids.js'
import { checkBlocklistFresh, decodeBlocklist, encodeBlocklist, type SharedBlocklist } from '../../protocol/blocklist.js'
import { GossipValidationError } from '../../protocol/verdict.js'
import { errorMessage } from '../../protocol/errors.js'

export interface SharedBlocklistsInit {
  privateKey: PrivateKey
  blocklist: Blocklist
  /** publishers followed (config `sysop.follow`) */
  follow: readonly string[]
  events?: EventBus
  /** a blocked peer's messages are rejected whoever signed them */
  isPeerBlocked?: (peerId: string) => boolean
  /** republish period while publishing; default 60 000 (BLOCKLIST_REPUBLISH_MS) */
  republishMs?: number
  /** the clock; default `Date.now` */
  now?: () => number
}

export interface SharedBlocklistStats {
  published: number
  applied: number
  ignored: number
  rejected: number
  /** the code of the last message ignored or rejected */
  lastCode?: string
}

export interface PublishResult {
  publisher: string
  seq: number
  time: string
  entries: number
}

export class SharedBlocklists implements Startable {
  readonly stats: SharedBlocklistStats = { published: 0, applied: 0, ignored: 0, rejected: 0 }
  private readonly log = logger('realm:blocklist-gossip')
  private readonly follow: Set<string>
  private readonly now: () => number
  private readonly decoded = new WeakMap<Uint8Array, SharedBlocklist>()
  private timer?: ReturnType<typeof setInterval>
  private soon?: ReturnType<typeof setTimeout>
  private offChange?: () => void
  private running = false

  constructor (private readonly libp2p: RealmLibp2p, private readonly init: SharedBlocklistsInit) {
    this.follow = new Set(init.follow)
    this.now = init.now ?? Date.now
  }

  get publishing (): boolean {
    return this.init.blocklist.selfState().publishing
  }

  /** Publishers this node follows */
  following (): string[] {
    return [...this.follow]
  }

  start (): void {
    const pubsub = this.libp2p.services.pubsub
    pubsub.topicValidators.set(TOPIC_BLOCKLIST, this.validate)
    pubsub.addEventListener('message', this.onMessage)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    // every node subscribes, so lists travel across nodes that follow nobody
    pubsub.subscribe(TOPIC_BLOCKLIST)
    this.running = true
    this.timer = setInterval(() => { if (this.publishing) this.republishSoon() }, this.init.republishMs ?? BLOCKLIST_REPUBLISH_MS)
    this.timer.unref?.()
    this.offChange = this.init.blocklist.onChange(() => { if (this.publishing) this.republishSoon() })
    if (this.publishing) this.republishSoon()
  }

  stop (): void {
    if (!this.running) return
    this.running = false
    clearInterval(this.timer)
    clearTimeout(this.soon)
    this.offChange?.()
    const pubsub = this.libp2p.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.topicValidators.delete(TOPIC_BLOCKLIST)
    try { pubsub.unsubscribe(TOPIC_BLOCKLIST) } catch {}
  }

  /** Publish this node's local entries now, and keep republishing them */
  async publish (): Promise<PublishResult> {
    const state = this.init.blocklist.selfState()
    // above both the last one sent and the clock, so it survives a restart and a lost record
    const seq = Math.max(state.seq + 1, this.now())
    const list: SharedBlocklist = {
      v: 1,
      publisher: this.libp2p.peerId.toString(),
      seq,
      time: new Date(this.now()).toISOString(),
      entries: this.init.blocklist.localEntries()
    }
    let data: Uint8Array
    for (;;) {
      try {
        data = await encodeBlocklist(list, this.init.privateKey)
        break
      } catch (err) {
        // long reasons in many scripts can outgrow the byte limit: the oldest entries wait
        if (!(err instanceof GossipValidationError && err.code === 'BLOCKLIST_TOO_LARGE') || list.entries.length === 0) throw err
        list.entries = list.entries.slice(0, Math.floor(list.entries.length * 0.8))
      }
    }
    await this.init.blocklist.setSelfState({ publishing: true, seq })
    await this.libp2p.services.pubsub.publish(TOPIC_BLOCKLIST, data)
    this.stats.published++
    this.init.events?.emit('sysop.blocklist_published', { seq, entries: list.entries.length })
    return { publisher: list.publisher, seq, time: list.time, entries: list.entries.length }
  }

  private republishSoon (): void {
    if (!this.running || this.soon != null) return
    this.soon = setTimeout(() => {
      this.soon = undefined
      if (!this.running) return
      void this.publish().catch(err => { this.log('republish failed: %s', errorMessage(err)) })
    }, BLOCKLIST_REPUBLISH_DEBOUNCE_MS)
    this.soon.unref?.()
  }

  private readonly validate = async (propagationSource: PeerId, msg: Message): Promise<TopicValidatorResult> => {
    const source = propagationSource.toString()
    try {
      if (this.init.isPeerBlocked?.(source) === true) throw new GossipValidationError('reject', 'PEER_BLOCKED', 'peer is blocked')
      const list = await decodeBlocklist(msg.data, verifyCached)
      for (const e of list.entries) {
        try {
          if (e.peerId !== undefined) parsePeerId(e.peerId)
          else parseCidr(e.cidr ?? '')
        } catch (err) {
          throw new GossipValidationError('reject', 'BLOCKLIST_INVALID', errorMessage(err))
        }
      }
      if (list.publisher === this.libp2p.peerId.toString()) throw new GossipValidationError('ignore', 'BLOCKLIST_SELF', 'own list')
      if (!this.follow.has(list.publisher)) throw new GossipValidationError('ignore', 'BLOCKLIST_NOT_FOLLOWED', 'publisher not followed')
      checkBlocklistFresh(list, this.now(), this.init.blocklist.publisher(list.publisher)?.seq)
      this.decoded.set(msg.data, list)
      return TopicValidatorResult.Accept
    } catch (err) {
      const verdict = err instanceof GossipValidationError ? err.verdict : 'reject'
      const code = err instanceof GossipValidationError ? err.code : 'BLOCKLIST_INVALID'
      this.stats.lastCode = code
      if (verdict === 'reject') {
        this.stats.rejected++
        this.log('rejected blocklist from %s: %s', source, errorMessage(err))
        this.init.events?.emit('sysop.blocklist_rejected', { peerId: source, code })
        return TopicValidatorResult.Reject
      }
      this.stats.ignored++
      return TopicValidatorResult.Ignore
    }
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    if (msg.topic !== TOPIC_BLOCKLIST) return
    const list = this.decoded.get(msg.data)
    if (list == null) return
    void this.init.blocklist.applyShared(list.publisher, list).then(applied => {
      if (!applied) return
      this.stats.applied++
      this.init.events?.emit('sysop.blocklist_applied', { publisher: list.publisher, seq: list.seq, entries: list.entries.length })
    }, err => {
      this.log.error('could not apply the blocklist of %s: %s', list.publisher, errorMessage(err))
    })
  }

  // a peer that just subscribed gets our list now rather than at the next period
  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (this.publishing && evt.detail.subscriptions.some(s => s.topic === TOPIC_BLOCKLIST && s.subscribe)) this.republishSoon()
  }
}
