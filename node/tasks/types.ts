/**
 * Tasks as the gateway sees them: submit one, follow its events, get its output. The manager
 * routes it to the best worker in the mesh (this node's included), fails over, and keeps the
 * history of each requester.
 */
import type { TaskKind } from '../../protocol/kinds.js'
import type { Media, TaskOptions, TaskOutput, TaskErrorCode } from '../../protocol/task.js'
import { RealmError } from '../../protocol/errors.js'

export interface TaskSubmission {
  kind: TaskKind
  model: string
  input: unknown
  options?: TaskOptions
}

/**
 * How a restart after tokens flowed looks to the client:
 * - `restart`: a `task.restarted` event, then the answer from its start (realm API)
 * - `splice`: the next worker's answer is checked against what the client already has and only
 *   the rest is streamed; when it does not match, the task fails with BACKEND_ERROR
 *   (compatibility routes, whose clients cannot be told to start over)
 */
export type RestartMode = 'restart' | 'splice'

export interface SubmitContext {
  /** who asks: a user id, an API key hash, a client address, or `peer:<peerId>` */
  requester: string
  /** aborting it cancels the task (a client that disconnects) */
  signal?: AbortSignal
  restartMode?: RestartMode
}

export interface TaskTimings {
  /** waiting in a queue, ms */
  queueMs?: number
  /** from start of the run to the first token/progress, ms */
  firstTokenMs?: number
  /** running, ms */
  runMs?: number
  /** from submit to end, ms */
  totalMs: number
}

/** What a task emits, in order; every event carries the task id */
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
  | { type: 'task.error', id: string, code: TaskErrorCode, message: string, timings: TaskTimings }

export type TaskStatus = 'queued' | 'running' | 'done' | 'error' | 'cancelled'

/** One task in the requester's history */
export interface TaskRecord {
  id: string
  requester: string
  kind: TaskKind
  model: string
  status: TaskStatus
  /** ISO times */
  createdAt: string
  endedAt?: string
  /** the worker that answered (or last tried) */
  peerId?: string
  workerId?: string
  attempts: number
  timings?: TaskTimings
  error?: { code: string, message: string }
  /** a short preview of the prompt (kept only when the config keeps prompts) */
  prompt?: string
  /** the output (large media left out of the stored record) */
  output?: TaskOutput
}

export interface TaskRun {
  readonly id: string
  /** resolves once a worker has queued or started the task; rejects if it failed before that */
  readonly accepted: Promise<void>
  /** the output; rejects with a TaskError */
  readonly result: Promise<TaskOutput>
  /** every event so far, then each new one; returns a function that stops listening */
  subscribe (listener: (event: TaskEvent) => void): () => void
  cancel (): void
}

/** Why a task failed, with the code clients see */
export class TaskError extends RealmError {
  override name = 'TaskError'
  declare readonly code: TaskErrorCode

  constructor (code: TaskErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, { details })
  }
}

export interface TaskManagerApi {
  /**
   * Start a task. Throws TaskError at once for what is known at once: INVALID_TASK,
   * MODEL_NOT_FOUND (no live worker in the mesh serves this kind + model), QUEUE_FULL (the
   * requester or the node is over its bound; `details.retryAfterS`).
   */
  submit (task: TaskSubmission, ctx: SubmitContext): TaskRun
  /** a task of this requester (any task when `requester` is undefined: sysop) */
  get (id: string, requester?: string): Promise<TaskRecord | undefined>
  /** this requester's history, newest first */
  list (requester: string, opts?: { limit?: number }): Promise<TaskRecord[]>
  /** cancel a running task of this requester (any when undefined: sysop); false if none */
  cancel (id: string, requester?: string): boolean
  /** the models of the mesh that serve a kind (for compat routes: /api/show, /v1/models) */
  hasModel (kind: TaskKind, model: string): boolean
}
