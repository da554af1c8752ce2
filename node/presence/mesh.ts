/**
 * The mesh as the gateway shows it: every model served anywhere (this node's workers and every
 * live peer's), which kinds it serves and which peers serve it. Pure functions of the table.
 */
import type { WorkerAd } from '../../protocol/presence.js'
import type { ModelInfo, TaskKind } from '../../protocol/kinds.js'
import { TASK_KINDS } from '../../protocol/kinds.js'

export interface PeerWorkers {
  peerId: string
  workers: WorkerAd[]
  /** when the peer was first seen (ms since epoch) */
  firstSeen: number
}

export interface MeshModel {
  name: string
  kinds: TaskKind[]
  peers: string[]
  /** the most informative advertisement of the model (first with details) */
  info: ModelInfo
  firstSeen: number
}

/** Only healthy workers' models are in the mesh: a benched worker's models leave it */
export function meshModels (sources: PeerWorkers[]): MeshModel[] {
  const byName = new Map<string, MeshModel>()
  for (const source of sources) {
    for (const worker of source.workers) {
      if (worker.health.state !== 'ok') continue
      for (const model of worker.models) {
        let entry = byName.get(model.name)
        if (entry == null) {
          entry = { name: model.name, kinds: [], peers: [], info: model, firstSeen: source.firstSeen }
          byName.set(model.name, entry)
        }
        for (const kind of model.kinds) if (!entry.kinds.includes(kind)) entry.kinds.push(kind)
        if (!entry.peers.includes(source.peerId)) entry.peers.push(source.peerId)
        if (entry.info.family == null && model.family != null) entry.info = model
        entry.firstSeen = Math.min(entry.firstSeen, source.firstSeen)
      }
    }
  }
  const models = [...byName.values()]
  for (const m of models) {
    m.kinds.sort((a, b) => TASK_KINDS.indexOf(a) - TASK_KINDS.indexOf(b))
    m.peers.sort()
  }
  return models.sort((a, b) => a.name.localeCompare(b.name))
}
