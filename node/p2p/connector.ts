/**
 * Keeps the node joined to the realm: dials the bootstrap list at start and redials it with
 * backoff whenever no bootstrap peer is connected, and dials peers found by discovery (mDNS,
 * the DHT rendezvous) while under the connection target.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { RealmLibp2p } from './libp2p.js'
import type { Startable } from '../startable.js'
import type { EventBus } from '../events/index.js'
import { errorMessage } from '../../protocol/errors.js'

/** First redial of an unreachable bootstrap peer; doubles up to the max */
export const BOOTSTRAP_RETRY_BASE_MS = 1_000
export const BOOTSTRAP_RETRY_MAX_MS = 60_000
/** Dial a discovered peer only while below this many connections */
export const DISCOVERY_DIAL_TARGET = 50
const DIAL_TIMEOUT_MS = 10_000

export interface ConnectorInit {
  bootstrap: string[]
  /** may this peer be dialled (blocklist); default: any */
  allowed?: (peerId: string) => boolean
  events?: EventBus
}

export class Connector implements Startable {
  private readonly log = logger('realm:connector')
  private readonly bootstrap: Array<{ addr: Multiaddr, peerId?: PeerId, failures: number, timer?: ReturnType<typeof setTimeout> }>
  private running = false
  private readonly dialing = new Set<string>()

  constructor (private readonly libp2p: RealmLibp2p, private readonly init: ConnectorInit) {
    this.bootstrap = init.bootstrap.map(a => {
      const addr = multiaddr(a)
      const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
      return { addr, peerId: id != null ? peerIdFromString(id) : undefined, failures: 0 }
    })
  }

  start (): void {
    this.running = true
    this.libp2p.addEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    for (const entry of this.bootstrap) void this.dialBootstrap(entry)
  }

  stop (): void {
    this.running = false
    this.libp2p.removeEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const entry of this.bootstrap) clearTimeout(entry.timer)
  }

  /** Dial a peer found by any discovery mechanism, unless connected, blocked or at the target */
  async dialDiscovered (peer: PeerInfo): Promise<void> {
    const id = peer.id.toString()
    if (!this.running || id === this.libp2p.peerId.toString()) return
    if (this.init.allowed?.(id) === false) return
    if (this.libp2p.getConnections(peer.id).length > 0 || this.dialing.has(id)) return
    if (this.libp2p.getConnections().length >= DISCOVERY_DIAL_TARGET) return
    this.dialing.add(id)
    try {
      if (peer.multiaddrs.length > 0) {
        await this.libp2p.peerStore.merge(peer.id, { multiaddrs: peer.multiaddrs })
      }
      await this.libp2p.dial(peer.id, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
      this.log('dialled discovered peer %s', id)
    } catch (err) {
      this.log('could not dial discovered peer %s: %s', id, errorMessage(err))
    } finally {
      this.dialing.delete(id)
    }
  }

  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => {
    void this.dialDiscovered(evt.detail)
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    for (const entry of this.bootstrap) {
      if (entry.peerId?.equals(evt.detail) === true && entry.timer == null) {
        this.scheduleBootstrap(entry, BOOTSTRAP_RETRY_BASE_MS)
      }
    }
  }

  private scheduleBootstrap (entry: Connector['bootstrap'][number], delayMs: number): void {
    if (!this.running) return
    clearTimeout(entry.timer)
    entry.timer = setTimeout(() => {
      entry.timer = undefined
      void this.dialBootstrap(entry)
    }, delayMs)
    entry.timer.unref?.()
  }

  private async dialBootstrap (entry: Connector['bootstrap'][number]): Promise<void> {
    if (!this.running) return
    if (entry.peerId != null && this.libp2p.getConnections(entry.peerId).length > 0) return
    if (entry.peerId != null && this.init.allowed?.(entry.peerId.toString()) === false) return
    try {
      await this.libp2p.dial(entry.addr, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
      entry.failures = 0
      this.init.events?.emit('peer.bootstrap', { addr: entry.addr.toString(), ok: true })
    } catch (err) {
      entry.failures++
      const delay = Math.min(BOOTSTRAP_RETRY_MAX_MS, BOOTSTRAP_RETRY_BASE_MS * 2 ** Math.min(entry.failures - 1, 10))
      this.log('bootstrap %s failed (%d): %s; retry in %d ms', entry.addr.toString(), entry.failures, errorMessage(err), delay)
      if (entry.failures === 1) {
        this.init.events?.emit('peer.bootstrap', { addr: entry.addr.toString(), ok: false, error: errorMessage(err) })
      }
      this.scheduleBootstrap(entry, delay)
    }
  }
}
