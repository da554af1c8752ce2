import type { EventBus } from '../events/index.js'
import type { MeshModel } from '../presence/mesh.js'
import type { NodeHealth, WorkerAd } from '../../protocol/presence.js'
import type { TaskManagerApi } from '../tasks/types.js'
import type { SysopApi } from '../sysop/index.js'

/** A remote peer as the gateway shows it */
export interface PeerView {
  peerId: string
  multiaddrs: string[]
  name?: string
  version: string
  workers: WorkerAd[]
  health: NodeHealth
  blocked: boolean
  /** ms since epoch */
  lastSeen: number
  firstSeen: number
  /** ping round trip in ms, where measured */
  rttMs?: number
}

/** The slice of the node the gateway reads */
export interface GatewayComponents {
  peerId: string
  version: string
  /** ms since epoch */
  startedAt: number
  events: EventBus
  multiaddrs: () => string[]
  /** remote peers in the live table */
  peers: () => PeerView[]
  /** this node's workers as advertised */
  localWorkers: () => WorkerAd[]
  /** every model in the mesh, this node's included */
  models: () => MeshModel[]
  /** peers connected at the libp2p level */
  connections: () => number
  /** submits tasks and follows them (the Ollama / OpenAI routes run every request as a task) */
  tasks: TaskManagerApi
  /** the sysop's tools: `/realm/sysop/*` routes, sysop sessions; default: no sysop routes */
  sysop?: SysopApi
}
