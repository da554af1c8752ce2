/**
 * A worker as the watchdog sees it: every run it is handed, and when each last made progress (an
 * event: token, progress, image, audio). The watchdog may cancel a run (`RunWatch.cancel`): the
 * run rejects at once with the given error, which frees the worker's slot in the executor and
 * makes the requester fail the task over; the backend request is aborted, and whatever the
 * abandoned run still emits is dropped. Everything else passes through.
 */
import type { RunContext, Worker, WorkerStatus } from '../workers/index.js'
import type { TaskOutput, TaskSpec } from '../../protocol/task.js'

/** A run under way */
export interface RunWatch {
  readonly taskId: string
  readonly startedAt: number
  /** the last event, or the start */
  lastProgressAt: number
  cancelled: boolean
  /** reject the run with `err` now, abort the backend request */
  cancel: (err: Error) => void
}

export class WatchedWorker implements Worker {
  readonly runs = new Set<RunWatch>()

  constructor (readonly inner: Worker, private readonly now: () => number = Date.now) {}

  get id (): string {
    return this.inner.id
  }

  get backend (): Worker['backend'] {
    return this.inner.backend
  }

  status (): WorkerStatus {
    return this.inner.status()
  }

  async probe (): Promise<WorkerStatus> {
    return await this.inner.probe()
  }

  onChange (listener: (status: WorkerStatus) => void): () => void {
    return this.inner.onChange(listener)
  }

  async start (): Promise<void> {
    await this.inner.start()
  }

  async stop (): Promise<void> {
    await this.inner.stop()
  }

  async run (task: TaskSpec, ctx: RunContext): Promise<TaskOutput> {
    const controller = new AbortController()
    let rejectRun!: (err: Error) => void
    const cancelled = new Promise<never>((_resolve, reject) => { rejectRun = reject })
    const started = this.now()
    const watch: RunWatch = {
      taskId: task.id,
      startedAt: started,
      lastProgressAt: started,
      cancelled: false,
      cancel: (err) => {
        if (watch.cancelled) return
        watch.cancelled = true
        rejectRun(err)
        controller.abort(err)
      }
    }
    this.runs.add(watch)
    try {
      const run = this.inner.run(task, {
        signal: AbortSignal.any([ctx.signal, controller.signal]),
        emit: (event) => {
          // an abandoned run's late output must not reach the task's next attempt
          if (watch.cancelled) return
          watch.lastProgressAt = this.now()
          ctx.emit(event)
        }
      })
      // once cancelled, the inner run's own end (CANCELLED) is nobody's concern
      run.catch(() => {})
      return await Promise.race([run, cancelled])
    } finally {
      this.runs.delete(watch)
    }
  }
}
