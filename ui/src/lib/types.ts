/**
 * What the UI reads from the node's HTTP API and events socket (README "HTTP API"). Wire shapes
 * come from `protocol/` (types only: nothing of it is bundled); the task events mirror what
 * `POST /realm/tasks` streams.
 */
import type { ChatMessage, Media, TaskOutput } from '../../../protocol/task.js'
import type { NodeHealth, WorkerAd, WorkerHealth } from '../../../protocol/presence.js'
import type { ModelInfo, TaskKind } from '../../../protocol/kinds.js'

export type { ChatMessage, Media, TaskOutput, NodeHealth, WorkerAd, WorkerHealth, ModelInfo, TaskKind }

export interface TaskTimings {
  queueMs?: number
  firstTokenMs?: number
  runMs?: number
  totalMs: number
}

/** The events of one task, in order, as `POST /realm/tasks` streams them */
export type TaskEvent =
  | { type: 'task.submitted', id: string, kind: TaskKind, model: string }
  | { type: 'task.trimmed', id: string, dropped: number, reason: string }
  | { type: 'task.queued', id: string, position: number, etaMs: number, peerId: string }
  | { type: 'task.started', id: string, peerId: string, workerId: string, attempt: number }
  | { type: 'task.progress', id: string, fraction: number, step?: number, steps?: number, message?: string }
  | { type: 'task.token', id: string, text: string }
  | { type: 'task.image', id: string, image: Media }
  | { type: 'task.audio', id: string, audio: Media }
  | { type: 'task.restarted', id: string, reason: string, attempt: number }
  | { type: 'task.done', id: string, output: TaskOutput, peerId: string, workerId: string, timings: TaskTimings }
  | { type: 'task.error', id: string, code: string, message: string, timings?: TaskTimings }

export interface TaskSubmission {
  kind: TaskKind
  model: string
  input: unknown
  options?: Record<string, unknown>
}

/** `GET /realm/status` */
export interface StatusResponse {
  peerId: string
  multiaddrs: string[]
  version: string
  uptimeS: number
  peers: number
  connections?: number
  workers: number
  workersOk?: number
  models?: number
}

/** One peer of `GET /realm/peers` */
export interface PeerResponse {
  peerId: string
  multiaddrs: string[]
  name?: string
  version?: string
  capabilities: { workers: Array<Omit<WorkerAd, 'health'>> }
  health: NodeHealth & { workers?: Record<string, WorkerHealth> }
  rttMs?: number
  blocked: boolean
  firstSeen?: string
  lastSeen: string
}

/** One model of `GET /realm/models` */
export interface ModelResponse {
  name: string
  kinds: TaskKind[]
  peers: string[]
  context?: number
  family?: string
  parameterSize?: string
}

/** `GET /realm/me` */
export interface MeResponse {
  id: string
  nickname: string | null
  createdAt: string
}

/** One task of `GET /realm/tasks` */
export interface TaskRecordResponse {
  id: string
  kind: TaskKind
  model: string
  status: 'queued' | 'running' | 'done' | 'error' | 'cancelled'
  createdAt: string
  endedAt?: string
  peerId?: string
  workerId?: string
  attempts: number
  timings?: TaskTimings
  error?: { code: string, message: string }
  prompt?: string
  output?: TaskOutput
}

/** A message of the events socket: `{ type, time, ...fields }` */
export interface RealmEvent {
  type: string
  time: string
  [field: string]: unknown
}
