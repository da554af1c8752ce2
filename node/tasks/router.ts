/**
 * The router: which worker in the mesh should run a task. Candidates are healthy, allowed
 * workers (this node's and every live peer's) that serve the kind + model (a vision model when
 * the task has images) under the requester's price cap; they are ranked by expected completion
 * time — RTT + queue wait + service time for that model — with a penalty for recent failures,
 * ties broken at random. Local workers compete on the same terms. A worker whose peer is on
 * probation (a new peer id, see p2p/reputation.ts) carries a penalty too: proven workers are
 * preferred, yet a new one still gets the work the proven ones are too busy or slow for.
 */
import type { TaskKind, ModelInfo } from '../../protocol/kinds.js'
import type { WorkerAd } from '../../protocol/presence.js'

/** Service time assumed for a (worker, model) never measured: optimistic, so new workers get tried */
export const DEFAULT_SERVICE_MS = 1_000
/** RTT assumed for a peer not yet pinged */
export const DEFAULT_RTT_MS = 50
/** Weight of the newest service-time sample */
export const SERVICE_ALPHA = 0.5
/**
 * Each time a candidate is passed over, its service estimate shrinks by this factor, so a
 * worker that was slow once is retried now and then and a worker that became fast is noticed
 * (optimism under uncertainty). 0.93: a 10× slower worker is retried about every 30 tasks.
 */
export const OPTIMISM_DECAY = 0.93
/** Cost of one recent failure, in ms of expected completion time */
export const FAILURE_PENALTY_MS = 10_000
/** Recent failures are forgotten with this half-life */
export const FAILURE_HALF_LIFE_MS = 30_000

export interface Candidate {
  peerId: string
  workerId: string
  local: boolean
  model: ModelInfo
  /** what the worker's beacon (or this node) says of its load */
  queueDepth: number
  inFlight: number
  concurrency: number
  /** the expected completion time, ms (set by `rank`) */
  score?: number
}

export interface RouteSource {
  peerId: string
  local: boolean
  workers: WorkerAd[]
}

export interface RouteQuery {
  kind: TaskKind
  model: string
  needsVision?: boolean
  maxPrice?: number
  /** never these (failed attempts of this task) */
  exclude?: Set<string>
  /** allowed peers (run_on trusted/local), undefined = any */
  allow?: (peerId: string, local: boolean) => boolean
}

interface Stats {
  serviceMs?: number
  failures: number
  failuresAt: number
}

export interface RouterInit {
  now?: () => number
  random?: () => number
  /** RTT to a peer in ms, where measured */
  rttMs?: (peerId: string) => number | undefined
  /** exact wait for a local worker (the executor knows its queue) */
  localWaitMs?: (workerId: string, model: string) => number
  /** extra expected time of any worker on this peer, ms (probation); default none */
  peerPenaltyMs?: (peerId: string) => number
}

export function candidateKey (c: { peerId: string, workerId: string }): string {
  return `${c.peerId}/${c.workerId}`
}

export class Router {
  private readonly stats = new Map<string, Stats>()
  /** tasks this node has sent to a worker and not seen end: counts before the next beacon does */
  private readonly outstanding = new Map<string, number>()
  private readonly now: () => number
  private readonly random: () => number

  constructor (private readonly init: RouterInit = {}) {
    this.now = init.now ?? Date.now
    this.random = init.random ?? Math.random
  }

  /** Workers that could run the task */
  candidates (sources: RouteSource[], q: RouteQuery): Candidate[] {
    const out: Candidate[] = []
    for (const source of sources) {
      if (q.allow != null && !q.allow(source.peerId, source.local)) continue
      for (const worker of source.workers) {
        if (worker.health.state !== 'ok') continue
        const model = worker.models.find(m => m.name === q.model && m.kinds.includes(q.kind))
        if (model == null) continue
        if (q.needsVision === true && model.vision !== true) continue
        if (q.maxPrice !== undefined && (model.price ?? 0) > q.maxPrice) continue
        const c: Candidate = {
          peerId: source.peerId,
          workerId: worker.id,
          local: source.local,
          model,
          queueDepth: worker.health.queueDepth,
          inFlight: worker.health.inFlight,
          concurrency: Math.max(1, worker.health.concurrency)
        }
        if (q.exclude?.has(candidateKey(c)) === true) continue
        out.push(c)
      }
    }
    return out
  }

  /** Expected completion time of a task for this model on this candidate, ms */
  expectedMs (c: Candidate): number {
    const key = `${candidateKey(c)}/${c.model.name}`
    const stats = this.stats.get(key)
    const serviceMs = stats?.serviceMs ?? DEFAULT_SERVICE_MS
    let waitMs: number
    if (c.local && this.init.localWaitMs != null) {
      waitMs = this.init.localWaitMs(c.workerId, c.model.name)
    } else {
      // the beacon may lag behind what this node itself sent there
      const ahead = Math.max(c.queueDepth + c.inFlight, this.outstanding.get(candidateKey(c)) ?? 0)
      waitMs = ahead < c.concurrency ? 0 : (ahead - c.concurrency + 1) * serviceMs / c.concurrency
    }
    const rtt = c.local ? 0 : (this.init.rttMs?.(c.peerId) ?? DEFAULT_RTT_MS)
    let penalty = c.local ? 0 : (this.init.peerPenaltyMs?.(c.peerId) ?? 0)
    if (stats != null && stats.failures > 0) {
      penalty += FAILURE_PENALTY_MS * stats.failures * 0.5 ** ((this.now() - stats.failuresAt) / FAILURE_HALF_LIFE_MS)
    }
    return rtt + waitMs + serviceMs + penalty
  }

  /** Best first; equal scores in random order */
  rank (candidates: Candidate[]): Candidate[] {
    const scored = candidates.map(c => ({ c, score: this.expectedMs(c), tie: this.random() }))
    scored.sort((a, b) => a.score - b.score || a.tie - b.tie)
    return scored.map(({ c, score }) => { c.score = score; return c })
  }

  /** Record the choice: the others' estimates shrink a little (see OPTIMISM_DECAY) */
  chose (chosen: Candidate, others: Candidate[]): void {
    this.outstanding.set(candidateKey(chosen), (this.outstanding.get(candidateKey(chosen)) ?? 0) + 1)
    for (const c of others) {
      if (c === chosen) continue
      // untried workers too: passed over often enough, every candidate gets tried
      const stats = this.statsOf(`${candidateKey(c)}/${c.model.name}`)
      stats.serviceMs = (stats.serviceMs ?? DEFAULT_SERVICE_MS) * OPTIMISM_DECAY
    }
  }

  /** A task sent to `c` ended: its run time (when it succeeded) or a failure */
  finished (c: Candidate, result: { serviceMs?: number, failed?: boolean }): void {
    const k = candidateKey(c)
    const n = (this.outstanding.get(k) ?? 1) - 1
    if (n <= 0) this.outstanding.delete(k)
    else this.outstanding.set(k, n)
    const stats = this.statsOf(`${k}/${c.model.name}`)
    if (result.serviceMs !== undefined) {
      stats.serviceMs = stats.serviceMs === undefined ? result.serviceMs : stats.serviceMs + SERVICE_ALPHA * (result.serviceMs - stats.serviceMs)
    }
    if (result.failed === true) {
      const now = this.now()
      stats.failures = stats.failures * 0.5 ** ((now - stats.failuresAt) / FAILURE_HALF_LIFE_MS) + 1
      stats.failuresAt = now
    }
  }

  private statsOf (key: string): Stats {
    let stats = this.stats.get(key)
    if (stats == null) {
      stats = { failures: 0, failuresAt: 0 }
      this.stats.set(key, stats)
    }
    return stats
  }

  /** A peer left: forget what was known of it */
  forgetPeer (peerId: string): void {
    for (const key of [...this.stats.keys()]) if (key.startsWith(`${peerId}/`)) this.stats.delete(key)
    for (const key of [...this.outstanding.keys()]) if (key.startsWith(`${peerId}/`)) this.outstanding.delete(key)
  }
}
