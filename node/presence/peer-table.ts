/**
 * The live peer table, built only from validated beacons. Pure state + transitions, no I/O and
 * no clock of its own, so expiry is tested by handing it times.
 */
import type { Beacon } from '../../protocol/presence.js'

export interface PeerEntry {
  peerId: string
  beacon: Beacon
  /** ms since epoch when the last beacon arrived */
  lastSeen: number
  /** ms since epoch of the first beacon in this session of the peer */
  firstSeen: number
}

export type ApplyResult = 'join' | 'update'

export class PeerTable {
  private readonly peers = new Map<string, PeerEntry>()
  private changes = 0

  /** Changes with every beacon applied and every peer removed: views built from the table stay valid while it does not */
  get version (): number {
    return this.changes
  }

  /** Record a validated, fresh beacon. A `leaving` beacon removes the peer */
  apply (beacon: Beacon, now: number): ApplyResult | 'leave' | undefined {
    const existing = this.peers.get(beacon.peerId)
    if (beacon.leaving === true) {
      if (existing == null) return undefined
      this.peers.delete(beacon.peerId)
      this.changes++
      return 'leave'
    }
    this.changes++
    if (existing == null) {
      this.peers.set(beacon.peerId, { peerId: beacon.peerId, beacon, lastSeen: now, firstSeen: now })
      return 'join'
    }
    existing.beacon = beacon
    existing.lastSeen = now
    return 'update'
  }

  /** Drop peers silent for longer than `ttlMs`; returns the ids dropped */
  expire (now: number, ttlMs: number): string[] {
    const dropped: string[] = []
    for (const [peerId, entry] of this.peers) {
      if (now - entry.lastSeen > ttlMs) {
        this.peers.delete(peerId)
        this.changes++
        dropped.push(peerId)
      }
    }
    return dropped
  }

  remove (peerId: string): boolean {
    if (!this.peers.delete(peerId)) return false
    this.changes++
    return true
  }

  get (peerId: string): PeerEntry | undefined {
    return this.peers.get(peerId)
  }

  /** Last sequence number seen from a peer (for replay checks) */
  lastSeq (peerId: string): number | undefined {
    return this.peers.get(peerId)?.beacon.seq
  }

  entries (): PeerEntry[] {
    return [...this.peers.values()]
  }

  get size (): number {
    return this.peers.size
  }
}
