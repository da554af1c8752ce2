import type { EventBus } from '../events/index.js'
import type { Startable } from '../startable.js'
import type { Backend, ModelInfo, TaskKind } from '../../protocol/kinds.js'

/**
 * What `--worker BACKEND=TARGET` attaches. `target` is kept as given (normalised), credentials
 * included, because the adapter needs them: never log it — log `redactTarget(target)` or the
 * worker's `status().target`.
 */
export interface WorkerSpec {
  backend: Backend
  /** an http(s) URL, or an engine name (`pocketsphinx`, `espeak-ng`) for `stt` / `tts` */
  target: string
  /** `agent=URL#model`: the model the agent serves */
  model?: string
}

export type WorkerState = 'starting' | 'ok' | 'benched'

export interface WorkerStatus {
  /** stable across restarts: `${backend}-${first 8 hex of sha256(redacted target [+ '#' + model])}` */
  id: string
  backend: Backend
  /** the target with any credentials stripped */
  target: string
  state: WorkerState
  /** [] unless state === 'ok' */
  models: ModelInfo[]
  /** union of the models' kinds */
  kinds: TaskKind[]
  /** EWMA of probe round trips, ms */
  latencyMs?: number
  /** bytes, where known (Ollama: sum of `/api/ps` size_vram) */
  vramUsed?: number
  vramTotal?: number
  /** consecutive failed probes */
  failures: number
  /** ISO time of the next probe while benched */
  benchedUntil?: string
  /** ISO time of the last finished probe */
  lastProbe?: string
  /** why the last probe failed (cleared by a healthy one); never contains credentials */
  lastError?: string
}

export interface Worker extends Startable {
  readonly id: string
  readonly backend: Backend
  /** a snapshot of the worker's state */
  status (): WorkerStatus
  /** probes now (joining a probe already under way) and resolves with the status after it */
  probe (): Promise<WorkerStatus>
  /** called when state or models change; returns a function that stops listening */
  onChange (listener: (status: WorkerStatus) => void): () => void
}

export interface WorkerInit {
  /** pause between probes of a healthy (or starting) worker. Default 5000 (PROBE_INTERVAL_MS) */
  probeIntervalMs?: number
  /** a probe not answered within this fails. Default 3000 (PROBE_TIMEOUT_MS) */
  probeTimeoutMs?: number
  /** consecutive failed probes that bench the worker. Default 2 (BENCH_AFTER_FAILURES) */
  benchAfterFailures?: number
  /** first retry delay once benched, doubled per further failure. Default 1000 (BACKOFF_BASE_MS) */
  backoffBaseMs?: number
  /** cap of the retry delay. Default 60000 (BACKOFF_MAX_MS) */
  backoffMaxMs?: number
  /** where `worker.benched`, `worker.restored` and `worker.models` are emitted. Default: none */
  events?: EventBus
  /** the fetch used for every backend request. Default: the global fetch */
  fetch?: typeof fetch
}

export interface DetectWorkersInit {
  /** host the usual ports are tried on. Default '127.0.0.1' */
  host?: string
  /** time each port has to answer. Default 500 (DETECT_TIMEOUT_MS) */
  timeoutMs?: number
  /** ports to try, per backend. Default { ollama: 11434, openai: 8080, sd: 7860 } */
  ports?: Partial<Record<'ollama' | 'openai' | 'sd', number>>
  /** Default: the global fetch */
  fetch?: typeof fetch
}
