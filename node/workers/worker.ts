/**
 * One worker: probes its backend on a timer, benches it after consecutive failures (models
 * leave, probes continue with exponential backoff), brings it back on the first healthy probe.
 * Runs tasks through its adapter; a run failure makes the next probe come early (probes alone
 * bench). A paid backend checks its daily spend before a task and adds the task's cost after.
 */
import { logger } from '@libp2p/logger'
import type { Backend, ModelInfo } from '../../protocol/kinds.js'
import { RealmError, errorMessage } from '../../protocol/errors.js'
import { TASK_ERROR_CODES, TaskSpecSchema } from '../../protocol/task.js'
import type { TaskOutput, TaskSpec } from '../../protocol/task.js'
import type { EventBus } from '../events/index.js'
import {
  BACKOFF_BASE_MS, BACKOFF_MAX_MS, BENCH_AFTER_FAILURES, IDLE_TIMEOUT_MS, LATENCY_EWMA_ALPHA, PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS,
  RUN_FAILURE_PROBE_DELAY_MS, USD_ROUNDING
} from './constants.js'
import { BackendError, InvalidTaskError, ProbeTimeoutError, TaskCancelledError, WorkerInternalError } from './errors.js'
import { kindsOf } from './listing.js'
import type { Adapter, Listing } from './listing.js'
import { RunSession } from './session.js'
import type { Connection } from './spec.js'
import { redactText } from './spec.js'
import { billableUsage, taskCost } from './spend.js'
import type { Prices, SpendMeter } from './spend.js'
import type { RunContext, Worker, WorkerInit, WorkerState, WorkerStatus } from './types.js'

const log = logger('realm:workers')

/** Thrown into a probe when the worker stops: not a backend failure */
class StoppedError extends Error {
  override name = 'StoppedError'
}

export interface ProbingWorkerComponents {
  id: string
  backend: Backend
  /** the target without credentials */
  target: string
  adapter: Adapter
  /** how runs reach the backend (credentials in its headers) */
  conn: Connection
  /** strings that must never appear in errors or events (credentials of the target, API keys) */
  secrets: string[]
  /** paid backends: the daily spend and the prices a task's cost is counted at */
  spend?: { meter: SpendMeter, prices: Prices }
}

/** Codes after which the backend itself may be in trouble: the next probe comes early */
const PROBE_AFTER: ReadonlySet<string> = new Set(['BACKEND_UNREACHABLE', 'BACKEND_ERROR', 'TIMEOUT'])

export class ProbingWorker implements Worker {
  readonly id: string
  readonly backend: Backend
  private readonly target: string
  private readonly adapter: Adapter
  private readonly conn: Connection
  private readonly fetchFn: typeof fetch
  private readonly idleTimeoutMs: number
  private readonly spend?: { meter: SpendMeter, prices: Prices }
  /** whether the last status handed to listeners was capped (a change is a models change) */
  private notifiedCapped = false
  private readonly secrets: string[]
  private readonly probeIntervalMs: number
  private readonly probeTimeoutMs: number
  private readonly benchAfterFailures: number
  private readonly backoffBaseMs: number
  private readonly backoffMaxMs: number
  private readonly events?: EventBus

  private state: WorkerState = 'starting'
  private models: ModelInfo[] = []
  private failures = 0
  /** failed probes since the worker was benched: the backoff exponent */
  private benchedFailures = 0
  private nextDelayMs: number
  private latencyMs?: number
  private vramUsed?: number
  private vramTotal?: number
  private benchedUntil?: string
  private lastProbe?: string
  private lastError?: string

  private running = false
  private timer?: ReturnType<typeof setTimeout>
  private inflight?: Promise<WorkerStatus>
  /** aborted by stop(): cuts the probe under way */
  private lifetime = new AbortController()
  private readonly listeners = new Set<(status: WorkerStatus) => void>()

  constructor (components: ProbingWorkerComponents, init: WorkerInit = {}) {
    this.id = components.id
    this.backend = components.backend
    this.target = components.target
    this.adapter = components.adapter
    this.conn = components.conn
    this.spend = components.spend
    this.fetchFn = init.fetch ?? globalThis.fetch
    this.idleTimeoutMs = init.idleTimeoutMs ?? IDLE_TIMEOUT_MS
    this.secrets = components.secrets.filter(s => s.length >= 3)
    this.probeIntervalMs = init.probeIntervalMs ?? PROBE_INTERVAL_MS
    this.probeTimeoutMs = init.probeTimeoutMs ?? PROBE_TIMEOUT_MS
    this.benchAfterFailures = Math.max(1, init.benchAfterFailures ?? BENCH_AFTER_FAILURES)
    this.backoffBaseMs = init.backoffBaseMs ?? BACKOFF_BASE_MS
    this.backoffMaxMs = Math.max(this.backoffBaseMs, init.backoffMaxMs ?? BACKOFF_MAX_MS)
    this.events = init.events
    this.nextDelayMs = this.probeIntervalMs
  }

  /** Probes once (so a healthy backend's models are known when start resolves), then on a timer */
  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.lifetime = new AbortController()
    await this.probe()
  }

  async stop (): Promise<void> {
    this.running = false
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.lifetime.abort(new StoppedError('worker stopped'))
    await this.inflight
  }

  status (): WorkerStatus {
    // a capped paid worker serves nothing until the next UTC day, so it advertises nothing
    const serving = this.state === 'ok' && this.spend?.meter.capped() !== true
    const status: WorkerStatus = {
      id: this.id,
      backend: this.backend,
      target: this.target,
      state: this.state,
      models: serving ? this.models.map(m => ({ ...m, kinds: [...m.kinds] })) : [],
      kinds: serving ? kindsOf(this.models) : [],
      failures: this.failures
    }
    if (this.latencyMs !== undefined) status.latencyMs = this.latencyMs
    if (this.vramUsed !== undefined) status.vramUsed = this.vramUsed
    if (this.vramTotal !== undefined) status.vramTotal = this.vramTotal
    if (this.benchedUntil !== undefined) status.benchedUntil = this.benchedUntil
    if (this.lastProbe !== undefined) status.lastProbe = this.lastProbe
    if (this.lastError !== undefined) status.lastError = this.lastError
    if (this.spend !== undefined) {
      const { meter } = this.spend
      status.spend = { day: meter.day(), usd: Math.round(meter.cachedUsd() * USD_ROUNDING) / USD_ROUNDING, capUsd: meter.capUsd, capped: meter.capped() }
    }
    return status
  }

  async run (task: TaskSpec, ctx: RunContext): Promise<TaskOutput> {
    const checked = TaskSpecSchema.safeParse(task)
    if (!checked.success) {
      const issue = checked.error.issues[0]
      throw new InvalidTaskError(`invalid task: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim())
    }
    if (!this.adapter.kinds.includes(task.kind)) {
      throw new InvalidTaskError(`the ${this.backend} backend does not run ${task.kind} tasks`, { kind: task.kind })
    }
    if (ctx.signal.aborted) throw new TaskCancelledError()
    if (this.spend !== undefined) {
      try {
        await this.spend.meter.check()
      } finally {
        this.noticeCap()
      }
    }
    const session = new RunSession({ conn: this.conn, fetch: this.fetchFn, signal: ctx.signal, emit: ctx.emit, idleTimeoutMs: this.idleTimeoutMs })
    let output: TaskOutput
    try {
      output = await this.adapter.run(task, session)
    } catch (err) {
      const failure = session.stopped ?? this.runError(err)
      session.close()
      await session.settled()
      if (PROBE_AFTER.has(failure.code)) this.probeSoon()
      log('%s run %s failed: %s %s', this.id, task.id, failure.code, failure.message)
      throw failure
    }
    session.close()
    if (this.spend !== undefined) {
      const cost = taskCost(billableUsage(task, output), output.images?.length ?? 0, this.spend.prices)
      await this.spend.meter.record(cost).catch((err: unknown) => {
        log.error('%s could not record %d USD of spend: %s', this.id, cost, this.redact(errorMessage(err)))
      })
      this.noticeCap()
    }
    return output
  }

  /** Any failure of a run as a RealmError with a task error code, credentials removed */
  private runError (err: unknown): RealmError {
    let out: RealmError
    if (err instanceof RealmError && (TASK_ERROR_CODES as readonly string[]).includes(err.code)) {
      out = err
    } else if (err instanceof RealmError) {
      // probe-side codes (BACKEND_BAD_RESPONSE, PROBE_TIMEOUT) mean the backend failed this run
      out = new BackendError(err.message, { ...err.details, partial: false })
    } else {
      out = new WorkerInternalError(`worker failed: ${errorMessage(err)}`, { cause: err })
    }
    out.message = this.redact(out.message)
    if (out.details !== undefined) {
      const details = JSON.parse(this.redact(JSON.stringify(out.details))) as Record<string, unknown>
      Object.assign(out.details, details)
    }
    return out
  }

  /** A failed run: probe soon, so a dead backend is benched by probes, not by one run */
  private probeSoon (): void {
    if (!this.running || this.inflight !== undefined) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.probe() }, RUN_FAILURE_PROBE_DELAY_MS)
    this.timer.unref?.()
  }

  /** Tells listeners when the spend cap starts or stops hiding the models */
  private noticeCap (): void {
    const capped = this.spend?.meter.capped() === true
    if (capped === this.notifiedCapped) return
    this.notifiedCapped = capped
    log('%s %s', this.id, capped ? 'reached its daily spend cap' : 'is below its daily spend cap again')
    this.emit('worker.spend', { capped, ...this.status().spend })
    if (this.state === 'ok') {
      this.emit('worker.models', { models: this.status().models })
      this.notify()
    }
  }

  probe (): Promise<WorkerStatus> {
    if (this.inflight !== undefined) return this.inflight
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const probe = this.runProbe().finally(() => {
      this.inflight = undefined
      this.schedule()
    })
    this.inflight = probe
    return probe
  }

  onChange (listener: (status: WorkerStatus) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  private schedule (): void {
    if (!this.running) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.probe() }, this.nextDelayMs)
    // the node's servers keep the process alive, not a probe timer
    this.timer.unref?.()
  }

  private async runProbe (): Promise<WorkerStatus> {
    const controller = new AbortController()
    const onStop = (): void => controller.abort(this.lifetime.signal.reason)
    if (this.running) {
      if (this.lifetime.signal.aborted) return this.status()
      this.lifetime.signal.addEventListener('abort', onStop, { once: true })
    }
    const timeout = setTimeout(() => controller.abort(new ProbeTimeoutError(this.probeTimeoutMs)), this.probeTimeoutMs)
    const started = performance.now()
    try {
      const listing = await Promise.race([
        this.adapter.list(controller.signal),
        // a lister that ignores its signal must not hold the probe past the timeout
        new Promise<never>((_resolve, reject) => {
          controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })
        })
      ])
      this.healthy(listing, performance.now() - started)
      // a new UTC day lifts the cap: the spend is read again and the models come back
      if (this.spend !== undefined) {
        await this.spend.meter.spentUsd().catch(() => {})
        this.noticeCap()
      }
    } catch (err) {
      if (err instanceof StoppedError) return this.status()
      this.failed(err)
    } finally {
      clearTimeout(timeout)
      this.lifetime.signal.removeEventListener('abort', onStop)
    }
    return this.status()
  }

  private healthy (listing: Listing, roundTripMs: number): void {
    const wasBenched = this.state === 'benched'
    const stateChanged = this.state !== 'ok'
    const modelsChanged = JSON.stringify(listing.models) !== JSON.stringify(this.models)
    this.state = 'ok'
    this.models = listing.models
    this.failures = 0
    this.benchedFailures = 0
    this.benchedUntil = undefined
    this.lastError = undefined
    this.lastProbe = new Date().toISOString()
    this.latencyMs = this.latencyMs === undefined ? roundTripMs : LATENCY_EWMA_ALPHA * roundTripMs + (1 - LATENCY_EWMA_ALPHA) * this.latencyMs
    this.latencyMs = Math.round(this.latencyMs * 100) / 100
    this.vramUsed = listing.vramUsed
    this.vramTotal = listing.vramTotal
    this.nextDelayMs = this.probeIntervalMs
    if (wasBenched) {
      log('%s restored', this.id)
      this.emit('worker.restored', { models: this.models.map(m => m.name) })
    }
    if (modelsChanged) this.emit('worker.models', { models: this.models })
    if (stateChanged || modelsChanged) this.notify()
  }

  private failed (err: unknown): void {
    this.failures++
    this.lastProbe = new Date().toISOString()
    this.lastError = this.redact(errorMessage(err))
    log('%s probe failed (%d): %s', this.id, this.failures, this.lastError)
    if (this.state === 'benched') {
      this.benchedFailures++
      this.setBackoff()
      return
    }
    if (this.failures < this.benchAfterFailures) {
      this.nextDelayMs = this.probeIntervalMs
      return
    }
    const hadModels = this.models.length > 0
    this.state = 'benched'
    this.models = []
    this.benchedFailures = 0
    this.setBackoff()
    log('%s benched: %s', this.id, this.lastError)
    this.emit('worker.benched', { error: this.lastError, failures: this.failures, benchedUntil: this.benchedUntil })
    if (hadModels) this.emit('worker.models', { models: [] })
    this.notify()
  }

  private setBackoff (): void {
    this.nextDelayMs = Math.min(this.backoffBaseMs * 2 ** Math.min(this.benchedFailures, 30), this.backoffMaxMs)
    this.benchedUntil = new Date(Date.now() + this.nextDelayMs).toISOString()
  }

  private redact (text: string): string {
    let out = redactText(text)
    for (const secret of this.secrets) out = out.split(secret).join('***')
    return out
  }

  private emit (type: string, fields: Record<string, unknown>): void {
    this.events?.emit(type, { id: this.id, backend: this.backend, target: this.target, ...fields })
  }

  private notify (): void {
    const status = this.status()
    for (const listener of [...this.listeners]) {
      try {
        listener(status)
      } catch (err) {
        log.error('%s change listener failed: %s', this.id, errorMessage(err))
      }
    }
  }
}
