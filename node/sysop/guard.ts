/**
 * Makes the blocklist hold at every layer at once. When a peer or range becomes blocked: its open
 * connections are aborted (for a range: every connection whose remote IP is inside), it leaves the
 * peer table (so its workers leave the mesh and the router never picks it), and the gater refuses
 * it from then on; gossipsub loses it with its connections, and its application score sinks so it
 * is not grafted back. A peer met at a blocked address is blocked by peer id too while that range
 * is, so it cannot come back through another address or have its beacons relayed. When it is
 * unblocked, the node dials it again (bootstrap and discovery would too, later).
 *
 * With a reputation (p2p/reputation.ts), job outcomes and protocol violations feed the same
 * application score, and a peer the reputation exiles is refused by the gater like a blocked one
 * until its penalty decays (the score watch hangs up on it).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import type { Connection, ConnectionGater } from '@libp2p/interface'
import type { RealmLibp2p } from '../p2p/libp2p.js'
import { createRealmGater, ipOfMultiaddr } from '../p2p/gater.js'
import type { EventBus } from '../events/index.js'
import type { Startable } from '../startable.js'
import type { Blocklist, BlockChange } from './blocklist.js'
import type { PeerReputation } from '../p2p/reputation.js'
import { errorMessage } from '../../protocol/errors.js'

/** Gossipsub application score of a blocked peer (× appSpecificWeight 10 = far below the graylist threshold) */
export const BLOCKED_APP_SCORE = -1_000
/** Most peers remembered as met at a blocked address */
const MAX_ADDRESS_BLOCKED_PEERS = 10_000
/** A redial of an unblocked peer gives up after this */
const REDIAL_TIMEOUT_MS = 10_000

export interface PeerGuardInit {
  /** what is blocked */
  blocklist: Blocklist
  /** where `sysop.disconnected` goes; default: none */
  events?: EventBus
  /** this node's peer id: never blocked; default: none */
  selfId?: string
}

/** What the guard acts on, once the node has built them */
export interface PeerGuardComponents {
  libp2p: RealmLibp2p
  /** removes a peer from the live table at once */
  dropPeer: (peerId: string, reason: string) => void
}

export class PeerGuard implements Startable {
  private readonly log = logger('realm:guard')
  /** peers met at a blocked address → that address */
  private readonly byAddress = new Map<string, string>()
  private components?: PeerGuardComponents
  private off?: () => void
  private running = false
  private reputation?: PeerReputation

  constructor (private readonly init: PeerGuardInit) {}

  /** Is this peer blocked: by the blocklist, or met at a blocked address? */
  readonly isPeerBlocked = (peerId: string): boolean => {
    if (peerId === this.init.selfId) return false
    return this.init.blocklist.isBlocked(peerId) || this.byAddress.has(peerId)
  }

  readonly isAddressBlocked = (ip: string): boolean => this.init.blocklist.isAddressBlocked(ip)

  /**
   * For gossipsub's peer score: blocked peers sink far below the graylist threshold; the others
   * score what their job outcomes earned (0 without a reputation)
   */
  readonly appSpecificScore = (peerId: string): number => {
    if (this.isPeerBlocked(peerId)) return BLOCKED_APP_SCORE
    return this.reputation?.appScore(peerId) ?? 0
  }

  /** Score peers by their job outcomes too, and refuse exiled ones (before `gater()` is taken) */
  useReputation (reputation: PeerReputation): void {
    this.reputation = reputation
  }

  /** Blocked, or exiled by its reputation: refused at the gater either way */
  readonly isPeerShutOut = (peerId: string): boolean => {
    if (peerId === this.init.selfId) return false
    return this.isPeerBlocked(peerId) || this.reputation?.exiled(peerId) === true
  }

  /** The libp2p ConnectionGater (hand it to createLibp2p) */
  gater (): ConnectionGater {
    return createRealmGater({
      isPeerBlocked: this.isPeerShutOut,
      isAddressBlocked: this.isAddressBlocked,
      onAddressBlockedPeer: (peerId, ip) => { this.rememberAddressBlocked(peerId, ip) },
      onDenied: (d) => { this.log('gater %s refused %s %s', d.hook, d.peerId ?? '', d.ip ?? '') }
    })
  }

  /** Begin enforcing: close whatever is already blocked, then follow the blocklist's changes */
  start (components?: PeerGuardComponents): void {
    if (components != null) this.components = components
    if (this.components == null) throw new Error('PeerGuard.start needs the node components')
    this.running = true
    this.off = this.init.blocklist.onChange(change => { this.onChange(change) })
    this.components.libp2p.addEventListener('connection:open', this.onConnectionOpen)
    this.enforce('blocked')
  }

  stop (): void {
    this.running = false
    this.off?.()
    this.off = undefined
    this.components?.libp2p.removeEventListener('connection:open', this.onConnectionOpen)
  }

  /** Peers currently blocked because they were met at a blocked address */
  addressBlockedPeers (): string[] {
    return [...this.byAddress.keys()]
  }

  private rememberAddressBlocked (peerId: string, ip: string): void {
    if (peerId === this.init.selfId) return
    if (!this.byAddress.has(peerId) && this.byAddress.size >= MAX_ADDRESS_BLOCKED_PEERS) {
      this.byAddress.delete(this.byAddress.keys().next().value!)
    }
    this.byAddress.set(peerId, ip)
  }

  private onChange (change: BlockChange): void {
    if (!this.running) return
    if (change.blocked.length > 0) this.enforce(change.reason)
    if (change.unblocked.length === 0) return
    const redial = new Set<string>()
    for (const t of change.unblocked) if (t.kind === 'peer' && !this.isPeerBlocked(t.entry)) redial.add(t.entry)
    // peers met at an address that is no longer blocked are free again
    for (const [peerId, ip] of [...this.byAddress]) {
      if (!this.isAddressBlocked(ip)) {
        this.byAddress.delete(peerId)
        if (!this.isPeerBlocked(peerId)) redial.add(peerId)
      }
    }
    for (const peerId of redial) void this.redial(peerId)
  }

  /** Close every connection of a blocked peer or from a blocked address, and drop those peers */
  private enforce (why: string): void {
    const c = this.components
    if (c == null) return
    const conns = c.libp2p.getConnections()
    // first learn every peer met at a blocked address, so all its connections close, whatever their address
    for (const conn of conns) {
      const ip = ipOfMultiaddr(conn.remoteAddr)
      if (ip !== undefined && this.isAddressBlocked(ip)) this.rememberAddressBlocked(conn.remotePeer.toString(), ip)
    }
    for (const conn of conns) this.check(conn, why)
  }

  private check (conn: Connection, why: string): void {
    const c = this.components
    if (c == null) return
    const peerId = conn.remotePeer.toString()
    const ip = ipOfMultiaddr(conn.remoteAddr)
    if (ip !== undefined && this.isAddressBlocked(ip)) this.rememberAddressBlocked(peerId, ip)
    if (!this.isPeerBlocked(peerId)) return
    this.log('closing connection to blocked peer %s (%s)', peerId, ip ?? 'no ip')
    try {
      conn.abort(new Error('blocked by the sysop'))
    } catch (err) {
      this.log('abort failed: %s', errorMessage(err))
    }
    c.dropPeer(peerId, 'blocked')
    this.init.events?.emit('sysop.disconnected', { peerId, ...(ip !== undefined ? { ip } : {}), reason: why })
  }

  // a connection that was mid-upgrade when the entry was added is closed as soon as it opens
  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    this.check(evt.detail, 'blocked')
  }

  private async redial (peerId: string): Promise<void> {
    const c = this.components
    if (c == null || !this.running) return
    try {
      const id = peerIdFromString(peerId)
      if (c.libp2p.getConnections(id).length > 0) return
      const known = await c.libp2p.peerStore.get(id).catch(() => undefined)
      if (known == null || known.addresses.length === 0) return
      await c.libp2p.dial(id, { signal: AbortSignal.timeout(REDIAL_TIMEOUT_MS) })
      this.log('redialled unblocked peer %s', peerId)
    } catch (err) {
      this.log('could not redial unblocked peer %s: %s', peerId, errorMessage(err))
    }
  }
}
