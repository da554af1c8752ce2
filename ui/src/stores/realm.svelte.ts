/**
 * The realm as this node sees it: its status and workers, the peers (live from the events
 * socket), and the models of the mesh with who serves them at what price.
 */
import { getJson } from '../lib/api.js'
import { applyRealmEvent, tableFromResponse, type PeerTable } from '../lib/realm.js'
import { buildCatalog, type CatalogModel } from '../lib/models.js'
import type { ModelResponse, PeerResponse, RealmEvent, StatusResponse, WorkerAd } from '../lib/types.js'

/** Full reload of the realm's routes (the events socket keeps the table live in between) */
const REFRESH_MS = 15_000
/** Models and workers are reloaded this long after a peer joins, leaves or changes */
const CATALOG_DEBOUNCE_MS = 400

class RealmStore {
  status = $state<StatusResponse | undefined>()
  peers = $state<PeerTable>({})
  workers = $state<WorkerAd[]>([])
  models = $state<ModelResponse[]>([])
  loaded = $state(false)
  error = $state<string | undefined>()
  catalog: CatalogModel[] = $derived(buildCatalog({
    models: this.models,
    peers: Object.values(this.peers).map(p => ({
      peerId: p.peerId,
      name: p.name,
      multiaddrs: p.multiaddrs,
      capabilities: { workers: p.workers },
      health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 0 },
      blocked: p.blocked,
      lastSeen: new Date(p.lastSeen).toISOString()
    } satisfies PeerResponse)),
    self: this.status != null ? { peerId: this.status.peerId, workers: this.workers } : undefined
  }))

  private timer?: ReturnType<typeof setInterval>
  private debounce?: ReturnType<typeof setTimeout>

  start (): void {
    void this.refresh()
    this.timer ??= setInterval(() => { void this.refresh() }, REFRESH_MS)
  }

  async refresh (): Promise<void> {
    try {
      const [status, peers, workers, models] = await Promise.all([
        getJson<StatusResponse>('/realm/status'),
        getJson<{ peers: PeerResponse[] }>('/realm/peers'),
        getJson<{ workers: WorkerAd[] }>('/realm/workers'),
        getJson<{ models: ModelResponse[] }>('/realm/models')
      ])
      this.status = status
      this.peers = tableFromResponse(peers.peers)
      this.workers = workers.workers
      this.models = models.models
      this.error = undefined
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err)
    } finally {
      this.loaded = true
    }
  }

  private async refreshCatalog (): Promise<void> {
    try {
      const [workers, models] = await Promise.all([
        getJson<{ workers: WorkerAd[] }>('/realm/workers'),
        getJson<{ models: ModelResponse[] }>('/realm/models')
      ])
      this.workers = workers.workers
      this.models = models.models
    } catch {
      // the periodic refresh tries again
    }
  }

  onEvent (event: RealmEvent): void {
    const next = applyRealmEvent(this.peers, event)
    if (next !== this.peers) this.peers = next
    if (event.type === 'peer.join' || event.type === 'peer.leave' || event.type === 'presence.update' || event.type.startsWith('worker.')) {
      if (this.debounce !== undefined) clearTimeout(this.debounce)
      this.debounce = setTimeout(() => { void this.refreshCatalog() }, CATALOG_DEBOUNCE_MS)
    }
  }
}

export const realm = new RealmStore()
