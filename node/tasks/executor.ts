/**
 * Runs tasks on this node's workers: one fair queue and one set of slots per worker (its
 * concurrency limit, default 1 like Ollama), position updates pushed to every waiting task,
 * per-model service times and success rates for routing and the beacon.
 */
import { logger } from '@libp2p/logger'
import { FairQueue, QueueFullError, ServiceTimeEwma, Slots, etaForPosition } from '../queue/index.js'
import type { Worker } from '../workers/index.js'
import { TASK_ERROR_CODES, type TaskOutput, type TaskSpec, type WorkerEvent } from '../../protocol/task.js'
import { RealmError, errorMessage } from '../../protocol/errors.js'
import { TaskError } from './types.js'

/** Service time assumed for a model never run here */
export const DEFAULT_SERVICE_MS = 2_000
/** Weight of the newest sample in the success rate */
const SUCCESS_ALPHA = 0.1

/** What an execution reports besides the worker's own events */
export type ExecEvent =
  | { type: 'queued', position: number, etaMs: number }
  | { type: 'started', workerId: string }
  | WorkerEvent

export interface ExecTimings {
  queueMs: number
  firstTokenMs?: number
  runMs: number
}

export interface ExecuteOptions {
  /** run on this worker; default: the first healthy one serving the task's kind + model */
  workerId?: string
  requester: string
  /** share of the queue (probation for new peers), 0..1; default 1 */
  weight?: number
  signal?: AbortSignal
  onEvent: (event: ExecEvent) => void
}

interface Job {
  task: TaskSpec
  opts: ExecuteOptions
  resolve: (r: { output: TaskOutput, timings: ExecTimings }) => void
  reject: (err: unknown) => void
  enqueuedAt: number
  onAbort?: () => void
}

interface Lane {
  worker: Worker
  queue: FairQueue<Job>
  slots: Slots
  service: Map<string, ServiceTimeEwma>
  successRate: number
  running: Set<{ startedAt: number, model: string }>
}

export interface ExecutorInit {
  /** tasks one backend runs at once; default 1 */
  concurrency?: number
  /** most tasks waiting per worker; default 1024 */
  maxQueue?: number
  /** most tasks one requester may have waiting per worker; default 16 */
  perRequester?: number
  now?: () => number
}

export class LocalExecutor {
  private readonly log = logger('realm:executor')
  private readonly lanes = new Map<string, Lane>()
  private readonly now: () => number

  constructor (workers: Worker[], init: ExecutorInit = {}) {
    this.now = init.now ?? Date.now
    for (const worker of workers) {
      const lane: Lane = {
        worker,
        queue: new FairQueue<Job>({ maxSize: init.maxQueue, perRequester: init.perRequester, now: this.now }),
        slots: new Slots(init.concurrency ?? 1),
        service: new Map(),
        successRate: 1,
        running: new Set()
      }
      lane.queue.onChange((changes) => {
        // what the tasks in the slots have left is the same for every waiting task: reckoned once
        const inFlight = this.inFlightRemainingMs(lane)
        for (const { ticketId, position } of changes) {
          const job = this.jobs.get(ticketId)
          if (job != null) job.opts.onEvent({ type: 'queued', position, etaMs: this.etaFor(lane, position, job.task.model, inFlight) })
        }
      })
      this.lanes.set(worker.id, lane)
    }
  }

  private readonly jobs = new Map<string, Job>()
  private nextTicket = 0
  private version = 0

  /** Changes whenever a queue, a slot, a service time or a success rate does: what `health` says is unchanged while it is */
  get loadVersion (): number {
    return this.version
  }

  /** Run a task on a local worker, waiting in its fair queue. Rejects with TaskError */
  async execute (task: TaskSpec, opts: ExecuteOptions): Promise<{ output: TaskOutput, timings: ExecTimings }> {
    const lane = this.pickLane(task, opts.workerId)
    if (opts.signal?.aborted === true) throw new TaskError('CANCELLED', 'task cancelled')
    return await new Promise((resolve, reject) => {
      const job: Job = { task, opts, resolve, reject, enqueuedAt: this.now() }
      const ticketId = `t${++this.nextTicket}`
      let ticket
      try {
        ticket = lane.queue.enqueue(job, opts.requester, { weight: opts.weight, id: ticketId })
      } catch (err) {
        if (err instanceof QueueFullError) {
          reject(new TaskError('QUEUE_FULL', err.message, err.details))
        } else {
          reject(err)
        }
        return
      }
      this.jobs.set(ticketId, job)
      this.version++
      job.onAbort = () => {
        if (lane.queue.remove(ticketId) != null) {
          this.version++
          this.jobs.delete(ticketId)
          reject(new TaskError('CANCELLED', 'task cancelled while queued'))
        }
      }
      opts.signal?.addEventListener('abort', job.onAbort, { once: true })
      opts.onEvent({ type: 'queued', position: ticket.position, etaMs: this.etaFor(lane, ticket.position, task.model) })
      this.pump(lane)
    })
  }

  private pickLane (task: TaskSpec, workerId?: string): Lane {
    if (workerId != null) {
      const lane = this.lanes.get(workerId)
      if (lane == null) throw new TaskError('NO_WORKER', `no worker ${workerId} on this node`)
      if (!serves(lane.worker, task)) throw new TaskError('MODEL_NOT_FOUND', `worker ${workerId} does not serve ${task.kind} with ${task.model}`)
      return lane
    }
    for (const lane of this.lanes.values()) {
      if (serves(lane.worker, task)) return lane
    }
    throw new TaskError('MODEL_NOT_FOUND', `no worker on this node serves ${task.kind} with ${task.model}`)
  }

  private pump (lane: Lane): void {
    while (lane.queue.size > 0 && lane.slots.tryAcquire()) {
      const entry = lane.queue.dequeue()
      if (entry == null) {
        lane.slots.release()
        break
      }
      this.jobs.delete(entry.ticket.id)
      this.version++
      void this.run(lane, entry.item)
    }
  }

  private async run (lane: Lane, job: Job): Promise<void> {
    const { task, opts } = job
    if (job.onAbort != null) opts.signal?.removeEventListener('abort', job.onAbort)
    const startedAt = this.now()
    const running = { startedAt, model: task.model }
    lane.running.add(running)
    let firstTokenAt: number | undefined
    try {
      if (opts.signal?.aborted === true) throw new TaskError('CANCELLED', 'task cancelled')
      opts.onEvent({ type: 'started', workerId: lane.worker.id })
      const output = await lane.worker.run(task, {
        signal: opts.signal ?? new AbortController().signal,
        emit: (event) => {
          firstTokenAt ??= this.now()
          opts.onEvent(event)
        }
      })
      const runMs = this.now() - startedAt
      this.serviceOf(lane, task.model).observe(runMs)
      lane.successRate = lane.successRate * (1 - SUCCESS_ALPHA) + SUCCESS_ALPHA
      job.resolve({ output, timings: { queueMs: startedAt - job.enqueuedAt, runMs, firstTokenMs: firstTokenAt != null ? firstTokenAt - startedAt : undefined } })
    } catch (err) {
      const code = err instanceof RealmError ? err.code : 'BACKEND_ERROR'
      if (code !== 'CANCELLED') lane.successRate = lane.successRate * (1 - SUCCESS_ALPHA)
      this.log('task %s on %s failed: %s', task.id, lane.worker.id, errorMessage(err))
      job.reject(err instanceof TaskError ? err : new TaskError(isTaskCode(code) ? code : 'BACKEND_ERROR', errorMessage(err), err instanceof RealmError ? err.details : undefined))
    } finally {
      this.version++
      lane.running.delete(running)
      lane.slots.release()
      this.pump(lane)
    }
  }

  private serviceOf (lane: Lane, model: string): ServiceTimeEwma {
    let ewma = lane.service.get(model)
    if (ewma == null) {
      ewma = new ServiceTimeEwma({ initialMs: DEFAULT_SERVICE_MS })
      lane.service.set(model, ewma)
    }
    return ewma
  }

  /** The shortest expected rest of the tasks in the slots, when all are taken; else 0 */
  private inFlightRemainingMs (lane: Lane): number {
    if (lane.slots.available > 0) return 0
    const now = this.now()
    let least = Infinity
    for (const r of lane.running) least = Math.min(least, Math.max(0, this.serviceOf(lane, r.model).valueMs - (now - r.startedAt)))
    return least
  }

  private etaFor (lane: Lane, position: number, model: string, inFlightRemainingMs = this.inFlightRemainingMs(lane)): number {
    const serviceTimeMs = this.serviceOf(lane, model).valueMs
    return Math.round(etaForPosition(position, { serviceTimeMs, slots: lane.slots.limit, inFlightRemainingMs }))
  }

  /** Expected wait before a new task for this model would start on this worker, ms */
  expectedWaitMs (workerId: string, model: string): number {
    const lane = this.lanes.get(workerId)
    if (lane == null) return Infinity
    if (lane.slots.available > 0 && lane.queue.size === 0) return 0
    return this.etaFor(lane, lane.queue.size, model)
  }

  /** Expected run time of a task for this model on this worker, ms */
  serviceMs (workerId: string, model: string): number | undefined {
    const lane = this.lanes.get(workerId)
    const ewma = lane?.service.get(model)
    return ewma != null && ewma.samples > 0 ? ewma.valueMs : undefined
  }

  /** Health figures for the beacon */
  health (workerId: string): { queueDepth: number, inFlight: number, concurrency: number, successRate: number, serviceMs?: number } | undefined {
    const lane = this.lanes.get(workerId)
    if (lane == null) return undefined
    const samples = [...lane.service.values()].filter(e => e.samples > 0)
    return {
      queueDepth: lane.queue.size,
      inFlight: lane.slots.inFlight,
      concurrency: lane.slots.limit,
      successRate: Math.round(lane.successRate * 1000) / 1000,
      serviceMs: samples.length > 0 ? samples.reduce((a, e) => a + e.valueMs, 0) / samples.length : undefined
    }
  }

  /** Cancel every waiting task of a requester (a banned user); running ones are cancelled by their signal */
  dropRequester (requester: string): number {
    let n = 0
    for (const lane of this.lanes.values()) {
      for (const entry of lane.queue.removeRequester(requester)) {
        this.jobs.delete(entry.ticket.id)
        entry.item.reject(new TaskError('CANCELLED', 'requester removed'))
        this.version++
        n++
      }
    }
    return n
  }

  /** Fail every waiting task (node stopping) */
  stop (): void {
    for (const lane of this.lanes.values()) {
      for (const requester of lane.queue.requesters()) {
        for (const entry of lane.queue.removeRequester(requester)) {
          entry.item.reject(new TaskError('CANCELLED', 'node stopping'))
        }
      }
    }
    this.jobs.clear()
    this.version++
  }
}

function serves (worker: Worker, task: TaskSpec): boolean {
  const status = worker.status()
  if (status.state !== 'ok') return false
  return status.models.some(m => m.name === task.model && m.kinds.includes(task.kind))
}

export function isTaskCode (code: string): code is TaskError['code'] {
  return (TASK_ERROR_CODES as readonly string[]).includes(code)
}
