/**
 * The realm view's table of peers: loaded from `GET /realm/peers`, kept live by the events
 * socket's `presence` and `peers` topics (`peer.join`, `presence.update`, `peer.leave`,
 * `peer.connect`, `peer.disconnect`). A pure reducer; tested in test/unit/ui-views.test.ts.
 */
import type { NodeHealth, PeerResponse, RealmEvent, WorkerAd, WorkerHealth } from './types.js'

export interface PeerState {
  peerId: string
  /** self-chosen: shown as text only */
  name?: string
  version?: string
  multiaddrs: string[]
  workers: WorkerAd[]
  health?: NodeHealth
  rttMs?: number
  blocked: boolean
  connected?: boolean
  /** ms since epoch */
  lastSeen: number
  firstSeen?: number
}

export type PeerTable = Record<string, PeerState>

const EMPTY_HEALTH: WorkerHealth = { state: 'ok', queueDepth: 0, inFlight: 0, concurrency: 1 }

/** One peer of `/realm/peers` as a table row (its per-worker health folded into its workers) */
export function peerFromResponse (p: PeerResponse): PeerState {
  const workers: WorkerAd[] = (p.capabilities?.workers ?? []).map(w => ({ ...w, health: p.health?.workers?.[w.id] ?? EMPTY_HEALTH }))
  let health: NodeHealth | undefined
  if (p.health != null) {
    const { workers: _w, ...node } = p.health
    health = node
  }
  const state: PeerState = {
    peerId: p.peerId,
    multiaddrs: p.multiaddrs ?? [],
    workers,
    blocked: p.blocked === true,
    lastSeen: Date.parse(p.lastSeen) || Date.now()
  }
  if (p.name != null && p.name !== '') state.name = p.name
  if (p.version != null) state.version = p.version
  if (health != null) state.health = health
  if (p.rttMs != null) state.rttMs = p.rttMs
  if (p.firstSeen != null) state.firstSeen = Date.parse(p.firstSeen) || undefined
  return state
}

export function tableFromResponse (peers: PeerResponse[]): PeerTable {
  const table: PeerTable = {}
  for (const p of peers) table[p.peerId] = peerFromResponse(p)
  return table
}

function str (v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

/** The table after one event (events of other topics leave it as it is) */
export function applyRealmEvent (table: PeerTable, event: RealmEvent): PeerTable {
  const peerId = str(event.peerId)
  if (peerId === undefined) return table
  const time = Date.parse(event.time) || Date.now()
  const known = table[peerId]
  switch (event.type) {
    case 'peer.join':
    case 'presence.update': {
      const next: PeerState = { ...(known ?? { peerId, multiaddrs: [], workers: [], blocked: false }), lastSeen: time }
      if (Array.isArray(event.workers)) next.workers = event.workers as WorkerAd[]
      if (event.health != null && typeof event.health === 'object') next.health = event.health as NodeHealth
      const name = str(event.name)
      if (name !== undefined && name !== '') next.name = name
      const version = str(event.version)
      if (version !== undefined) next.version = version
      if (event.type === 'peer.join' && next.firstSeen === undefined) next.firstSeen = time
      return { ...table, [peerId]: next }
    }
    case 'peer.leave': {
      if (known == null) return table
      const { [peerId]: _gone, ...rest } = table
      return rest
    }
    case 'peer.connect':
    case 'peer.disconnect':
      if (known == null) return table
      return { ...table, [peerId]: { ...known, connected: event.type === 'peer.connect' } }
    default:
      return table
  }
}

/** Peers for display: this node's workers first is the caller's business; here by name, then id */
export function sortedPeers (table: PeerTable): PeerState[] {
  return Object.values(table).sort((a, b) => (a.name ?? '\uffff').localeCompare(b.name ?? '\uffff') || a.peerId.localeCompare(b.peerId))
}

/** A one-word health for a worker: `ok`, `busy`, `benched`, `starting` */
export function workerState (h: WorkerHealth | undefined): 'ok' | 'busy' | 'benched' | 'starting' | 'unknown' {
  if (h == null) return 'unknown'
  if (h.state !== 'ok') return h.state
  return h.inFlight >= h.concurrency && h.queueDepth > 0 ? 'busy' : 'ok'
}

/** The models a peer serves, each once */
export function peerModels (peer: { workers: WorkerAd[] }): string[] {
  return [...new Set(peer.workers.flatMap(w => w.models.map(m => m.name)))].sort()
}
