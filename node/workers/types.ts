import type { EventBus } from '../events/index.js'
import type { Startable } from '../startable.js'
import type { Backend, ModelInfo, TaskKind } from '../../protocol/kinds.js'
import type { TaskOutput, TaskSpec, WorkerEvent } from '../../protocol/task.js'
import type { SpendStore } from './spend.js'

/** A model named in a worker spec's `#fragment`: `MODEL` or `KIND[+KIND…]=MODEL` */
export interface SpecModel {
  name: string
  /** kinds given with the name (`imagine=sdxl`); absent: the adapter decides */
  kinds?: TaskKind[]
  /** `vision` was among the kinds: the model reads images in chat */
  vision?: boolean
}

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
  /** `agent=URL#imagine=model`: the kinds given with the agent's model */
  kinds?: TaskKind[]
  /** `agent=URL#vision=model`: the agent's model reads images */
  vision?: boolean
  /** `hf=URL#MODEL,KIND=MODEL,…`: the models an hf worker serves */
  models?: SpecModel[]
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
  /** paid backends (claude, hf): what was spent on this UTC day; `capped` workers advertise no models */
  spend?: { day: string, usd: number, capUsd: number, capped: boolean }
}

/** What a run is handed besides its task */
export interface RunContext {
  /** aborting it cancels the run: the backend request is closed and run rejects with CANCELLED */
  signal: AbortSignal
  /** receives `token` / `progress` / `image` / `audio` events as the backend produces them */
  emit: (event: WorkerEvent) => void
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
  /**
   * Run one task on the backend, streaming where the backend streams: `ctx.emit` gets
   * `token` / `progress` / `image` / `audio` events as they come; resolves with the TaskOutput
   * (text for chat/generate/transcribe, embeddings, images, audio; usage; doneReason).
   * Aborting `ctx.signal` cancels: the backend HTTP request is aborted (connection closed) and
   * run rejects with code CANCELLED. Errors are RealmErrors with a code from TASK_ERROR_CODES
   * (protocol/task.ts): MODEL_NOT_FOUND (backend says the model does not exist), BACKEND_UNREACHABLE
   * (connection refused/reset before any output), BACKEND_ERROR (HTTP error, malformed stream,
   * connection cut mid-stream — `details: { partial: true }` when events were already emitted),
   * TIMEOUT (no byte from the backend for `init.idleTimeoutMs`, default 120 s), SPEND_CAP (a paid
   * backend past its daily cap), INVALID_TASK (a kind this backend does not run, a malformed task).
   * Runs need no `start()`; a failed run makes the next probe come early, it never benches alone.
   */
  run (task: TaskSpec, ctx: RunContext): Promise<TaskOutput>
}

/** Key, daily cap and prices of one paid backend (config `[paid]`, see `paidInitFromConfig`) */
export interface PaidInit {
  /**
   * API key used when the worker URL carries none. Default: the environment variable
   * (`ANTHROPIC_API_KEY` for claude, `HF_TOKEN` for hf). Never logged, never in events or errors.
   */
  apiKey?: string
  /** USD the backend may spend per UTC day; 0 refuses every task. Default 1 (PAID_DEFAULTS) */
  dailyCapUsd?: number
  /** USD per million input tokens. Default: claude 3, hf 1 (PAID_DEFAULTS) */
  inputUsdPerMTok?: number
  /** USD per million output tokens. Default: claude 15, hf 1 (PAID_DEFAULTS) */
  outputUsdPerMTok?: number
  /** USD per generated image (hf text-to-image). Default: hf 0.05 */
  usdPerImage?: number
  /** hf only: models served when the worker spec names none (`MODEL` or `KIND=MODEL`). Default: none */
  models?: string[]
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
  /** a run fails with TIMEOUT when the backend sends no byte for this long. Default 120000 (IDLE_TIMEOUT_MS) */
  idleTimeoutMs?: number
  /** keys, caps and prices of the paid backends. Default: PAID_DEFAULTS, keys from the environment */
  paid?: { claude?: PaidInit, hf?: PaidInit }
  /**
   * Where paid backends keep what they spent per UTC day (the node hands it the db bucket
   * `spend`). Default: a store in memory, so a restart forgets the day's spend
   */
  spend?: SpendStore
  /** the clock deciding the UTC day of the spend. Default: Date.now */
  now?: () => number
  /** environment the API keys are read from. Default: process.env */
  env?: Record<string, string | undefined>
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
