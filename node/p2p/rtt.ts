/**
 * Round-trip times to peers, from libp2p ping, for the router. Peers that host workers are
 * pinged every few seconds while connected; the figure is an EWMA.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { RealmLibp2p } from './libp2p.js'
import type { Startable } from '../startable.js'

/** Ping period per peer */
export const RTT_INTERVAL_MS = 5_000
const PING_TIMEOUT_MS = 3_000
const RTT_ALPHA = 0.3
/** Most peers pinged per round (the closest candidates matter; the rest keep their last value) */
const MAX_PINGS_PER_ROUND = 32

export class RttTracker implements Startable {
  private readonly rtts = new Map<string, number>()
  /** one ping per peer at a time: libp2p allows a single outbound ping stream per peer */
  private readonly inFlight = new Set<string>()
  private timer?: ReturnType<typeof setInterval>

  constructor (private readonly libp2p: RealmLibp2p, private readonly peersToPing: () => string[], private readonly intervalMs = RTT_INTERVAL_MS) {}

  start (): void {
    this.timer = setInterval(() => { void this.round() }, this.intervalMs)
    this.timer.unref?.()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  rttMs (peerId: string): number | undefined {
    return this.rtts.get(peerId)
  }

  forget (peerId: string): void {
    this.rtts.delete(peerId)
  }

  /** Ping now (also used by tests) */
  async ping (peerId: string): Promise<number | undefined> {
    if (this.inFlight.has(peerId)) return undefined
    this.inFlight.add(peerId)
    try {
      const id = peerIdFromString(peerId)
      if (this.libp2p.getConnections(id).length === 0) return undefined
      const ms = await this.libp2p.services.ping.ping(id, { signal: AbortSignal.timeout(PING_TIMEOUT_MS) })
      const prev = this.rtts.get(peerId)
      this.rtts.set(peerId, prev === undefined ? ms : prev + RTT_ALPHA * (ms - prev))
      return ms
    } catch {
      return undefined
    } finally {
      this.inFlight.delete(peerId)
    }
  }

  private async round (): Promise<void> {
    const peers = this.peersToPing().slice(0, MAX_PINGS_PER_ROUND)
    await Promise.all(peers.map(async p => { await this.ping(p) }))
  }
}
