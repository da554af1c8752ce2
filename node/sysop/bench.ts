/**
 * Benching a worker by hand: the sysop takes a local worker out of service (`bench(reason)`) and
 * puts it back (`unbench()`). A benched worker advertises no models and no kinds (so it leaves
 * the mesh's model list and gets no new tasks here or from peers); a task that was already queued
 * for it fails over to another worker; a task already running finishes. A wrapper, so the
 * workers' own probing (node/workers) is untouched and resumes as it was on unbench.
 */
import type { Worker, WorkerStatus, RunContext } from '../workers/index.js'
import type { TaskOutput, TaskSpec } from '../../protocol/task.js'
import { RealmError } from '../../protocol/errors.js'
import { checkReason } from './blocklist.js'

export class BenchableWorker implements Worker {
  private benchedBy?: { reason: string, at: string }
  private readonly listeners = new Set<(status: WorkerStatus) => void>()
  private offInner?: () => void

  constructor (readonly inner: Worker) {}

  get id (): string {
    return this.inner.id
  }

  get backend (): Worker['backend'] {
    return this.inner.backend
  }

  /** Is it benched by the sysop, and why */
  get sysopBench (): { reason: string, at: string } | undefined {
    return this.benchedBy
  }

  /** Take it out of service (again: updates the reason) */
  bench (reason?: string): WorkerStatus {
    this.benchedBy = { reason: checkReason(reason), at: new Date().toISOString() }
    this.notify()
    return this.status()
  }

  /** Put it back; false if it was not benched */
  unbench (): boolean {
    if (this.benchedBy == null) return false
    this.benchedBy = undefined
    this.notify()
    return true
  }

  status (): WorkerStatus {
    const s = this.inner.status()
    if (this.benchedBy == null) return s
    return {
      ...s,
      state: 'benched',
      models: [],
      kinds: [],
      lastError: `benched by the sysop${this.benchedBy.reason !== '' ? `: ${this.benchedBy.reason}` : ''}`
    }
  }

  async probe (): Promise<WorkerStatus> {
    await this.inner.probe()
    return this.status()
  }

  onChange (listener: (status: WorkerStatus) => void): () => void {
    this.listeners.add(listener)
    this.offInner ??= this.inner.onChange(() => { this.notify() })
    return () => {
      this.listeners.delete(listener)
      if (this.listeners.size === 0) {
        this.offInner?.()
        this.offInner = undefined
      }
    }
  }

  async run (task: TaskSpec, ctx: RunContext): Promise<TaskOutput> {
    // a task queued before the bench: its requester moves it to another worker
    if (this.benchedBy != null) throw new RealmError('BACKEND_UNREACHABLE', `worker ${this.id} is benched by the sysop`)
    return await this.inner.run(task, ctx)
  }

  async start (): Promise<void> {
    await this.inner.start()
  }

  async stop (): Promise<void> {
    await this.inner.stop()
  }

  private notify (): void {
    const s = this.status()
    for (const l of [...this.listeners]) {
      try { l(s) } catch {}
    }
  }
}

/** Wrap a worker so the sysop can bench it */
export function benchable (worker: Worker): BenchableWorker {
  return worker instanceof BenchableWorker ? worker : new BenchableWorker(worker)
}
