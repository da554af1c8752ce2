import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { url as inspectorUrl } from 'node:inspector'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { Worker as Thread } from 'node:worker_threads'
import { logger } from '@libp2p/logger'
import { errorMessage } from '../../protocol/errors.js'
import { writeFileAtomic } from '../fs-util.js'
import {
  DEFAULT_FREEZE_MS, DEFAULT_STUCK_MS, HEARTBEAT_INTERVAL_MS, LAG_WARN_MS, LAG_WINDOW_MS, LOOP_DELAY_RESOLUTION_MS,
  RESTART_LOG_FILE, RESTART_MARKER_FILE, STUCK_CHECK_MAX_MS, TEST_FREEZE_ENV
} from './constants.js'
import { StuckRunError } from './errors.js'
import { readRestartMarker } from './restart.js'
import { WatchedWorker } from './watched-worker.js'
import type { FreezeMonitorData } from './freeze-thread.js'
import type { LoopDelay, StuckRun, Watchdog, WatchdogComponents, WatchdogInit } from './index.js'
import type { Worker, WorkerState } from '../workers/index.js'

const log = logger('realm:watchdog')

/** This module's extension: `.js` when built, `.ts` under tsx; the thread and restarter files have the same */
const HERE = fileURLToPath(import.meta.url)
const EXT = path.extname(HERE)
const siblingFile = (name: string): string => path.join(path.dirname(HERE), name + EXT)

const ms = (ns: number): number => Math.round(ns / 1e5) / 10

export class DefaultWatchdog implements Watchdog {
  readonly enabled: boolean
  readonly freezeMs: number
  readonly stuckMs: number
  private readonly stuckCheckMs: number
  private readonly now: () => number
  private readonly watched: WatchedWorker[] = []
  /** when each worker was first seen with tasks waiting (cleared when none wait) */
  private readonly waitingSince = new Map<string, number>()
  /** each worker's last state, to report a dead backend once per transition */
  private readonly states = new Map<string, WorkerState>()
  private readonly offs: Array<() => void> = []
  private readonly timers: Array<ReturnType<typeof setTimeout>> = []
  private histogram?: IntervalHistogram
  private thread?: Thread
  private started = false

  constructor (private readonly init: WatchdogInit, private readonly components: WatchdogComponents) {
    this.enabled = init.enabled ?? true
    this.freezeMs = init.freezeMs ?? DEFAULT_FREEZE_MS
    this.stuckMs = init.stuckMs ?? DEFAULT_STUCK_MS
    this.stuckCheckMs = init.stuckCheckMs ?? Math.min(STUCK_CHECK_MAX_MS, Math.max(50, Math.floor(this.stuckMs / 4)))
    this.now = init.now ?? Date.now
  }

  get restartLog (): string {
    return path.join(this.init.traceDir, RESTART_LOG_FILE)
  }

  watch (worker: Worker): Worker {
    if (!this.enabled) return worker
    const watched = new WatchedWorker(worker, this.now)
    this.watched.push(watched)
    return watched
  }

  async start (): Promise<void> {
    if (!this.enabled || this.started) return
    this.started = true
    await this.reportRestart()

    // (a) the event loop: its delay measured here, a freeze detected from another thread
    this.histogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS })
    this.histogram.enable()
    this.every(LAG_WINDOW_MS, () => { this.reportLag() })
    if (this.init.respawn != null) this.startFreezeMonitor()
    this.testFreeze()

    // (b) runs that hold a worker's slot without progress while others wait
    this.every(this.stuckCheckMs, () => { this.checkStuck() })

    // (c) dead backends: the probes bench them; reported once per transition
    for (const w of this.watched) {
      this.states.set(w.id, w.status().state)
      this.offs.push(w.onChange(status => { this.onWorkerState(w, status.state) }))
    }
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    for (const timer of this.timers.splice(0)) clearInterval(timer)
    for (const off of this.offs.splice(0)) off()
    this.histogram?.disable()
    // a stop that takes long is no freeze
    void this.thread?.terminate()
    this.thread = undefined
  }

  loopDelay (): LoopDelay | undefined {
    const h = this.histogram
    if (h == null || h.count === 0) return undefined
    return { meanMs: ms(h.mean), p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) }
  }

  checkStuck (): StuckRun[] {
    const now = this.now()
    const cancelled: StuckRun[] = []
    for (const w of this.watched) {
      const waiting = this.components.waiting(w.id)
      if (waiting <= 0 || w.runs.size === 0) {
        this.waitingSince.delete(w.id)
        continue
      }
      const since = this.waitingSince.get(w.id)
      if (since == null) {
        this.waitingSince.set(w.id, now)
        continue
      }
      if (now - since < this.stuckMs) continue
      for (const run of w.runs) {
        const idleMs = now - run.lastProgressAt
        if (run.cancelled || idleMs < this.stuckMs) continue
        run.cancel(new StuckRunError(w.id, idleMs))
        const stuck: StuckRun = { workerId: w.id, backend: w.backend, taskId: run.taskId, idleMs, waiting }
        cancelled.push(stuck)
        log('task %s on %s: no progress for %d ms with %d waiting; cancelled', run.taskId, w.id, idleMs, waiting)
        this.components.events.emit('watchdog.stuck_queue', { ...stuck })
      }
      // the next one waiting gets a full period of its own
      if (cancelled.some(s => s.workerId === w.id)) this.waitingSince.set(w.id, now)
    }
    return cancelled
  }

  private every (intervalMs: number, fn: () => void): void {
    const timer = setInterval(() => {
      try {
        fn()
      } catch (err) {
        log.error('watchdog check failed: %s', errorMessage(err))
      }
    }, intervalMs)
    timer.unref()
    this.timers.push(timer)
  }

  private onWorkerState (w: WatchedWorker, state: WorkerState): void {
    const before = this.states.get(w.id)
    this.states.set(w.id, state)
    if (state === before) return
    const s = w.status()
    if (state === 'benched') {
      this.components.events.emit('watchdog.backend_dead', {
        workerId: w.id, backend: w.backend, target: s.target, failures: s.failures, lastError: s.lastError, benchedUntil: s.benchedUntil
      })
    } else if (state === 'ok' && before === 'benched') {
      this.components.events.emit('watchdog.backend_restored', { workerId: w.id, backend: w.backend, target: s.target })
    }
  }

  private reportLag (): void {
    const delay = this.loopDelay()
    this.histogram?.reset()
    if (delay != null && delay.maxMs >= LAG_WARN_MS) this.components.events.emit('watchdog.lag', { ...delay, windowMs: LAG_WINDOW_MS })
  }

  /** the previous process froze and was restarted: say so, once */
  private async reportRestart (): Promise<void> {
    const file = path.join(this.init.dataDir, RESTART_MARKER_FILE)
    const marker = readRestartMarker(file)
    if (marker == null || marker.reportedBy != null) return
    this.components.events.emit('watchdog.restarted', {
      reason: marker.reason, previousPid: marker.previousPid, frozenMs: marker.frozenMs, killedAt: marker.at, pid: process.pid, restartLog: this.restartLog
    })
    // kept (with the recent restarts, to tell a crash loop), marked as reported
    try {
      await writeFileAtomic(file, JSON.stringify({ ...marker, reportedBy: process.pid }) + '\n', 0o600)
    } catch (err) {
      log.error('cannot update %s: %s', file, errorMessage(err))
    }
  }

  private startFreezeMonitor (): void {
    const respawn = this.init.respawn
    if (respawn == null) return
    const heartbeat = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT)
    const beats = new Int32Array(heartbeat)
    this.every(HEARTBEAT_INTERVAL_MS, () => {
      Atomics.add(beats, 0, 1)
      // a debugger attached: a pause at a breakpoint is no freeze
      Atomics.store(beats, 1, inspectorUrl() !== undefined ? 1 : 0)
    })
    const data: FreezeMonitorData = {
      heartbeat,
      freezeMs: this.freezeMs,
      pid: process.pid,
      markerFile: path.join(this.init.dataDir, RESTART_MARKER_FILE),
      logFile: this.restartLog,
      restarter: { execPath: process.execPath, args: [...process.execArgv, siblingFile('restarter')] },
      respawn
    }
    const thread = new Thread(siblingFile('freeze-thread'), { workerData: { freezeMonitor: data }, stdout: false, stderr: false })
    thread.on('error', (err) => { log.error('freeze monitor failed: %s', errorMessage(err)) })
    // the monitor alone must not keep the process alive
    thread.unref()
    this.thread = thread
  }

  /** test only: freeze the event loop (a busy loop) when the variable asks for it */
  private testFreeze (): void {
    const after = Number(this.init.env?.[TEST_FREEZE_ENV])
    if (!(after >= 0)) return
    const timer = setTimeout(() => {
      log.error('%s: freezing the event loop (test only)', TEST_FREEZE_ENV)
      // eslint-disable-next-line no-empty
      for (;;) {}
    }, after)
    timer.unref()
    this.timers.push(timer)
  }
}
