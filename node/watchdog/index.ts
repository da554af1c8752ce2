/**
 * The watchdog: keeps a node alive and its workers moving.
 *
 * (a) A frozen event loop. `monitorEventLoopDelay` measures the loop's delay (`loopDelay()`, and
 *     a `watchdog.lag` event when a minute's worst delay passes 1 s). A freeze is detected from
 *     outside the main thread: a worker thread watches a heartbeat the main thread bumps every
 *     100 ms in a SharedArrayBuffer; after `freezeMs` without a beat it writes
 *     `DIR/watchdog-restart.json`, starts a detached restarter (which waits for this process to be
 *     gone, then runs the same command line again, output appended to `DIR/trace/restart.log`)
 *     and SIGKILLs the process. The next start reports `watchdog.restarted`. Only a node that owns
 *     its process does this (`respawn`, which `realm start` passes); more than 5 freezes in
 *     10 minutes and the process is only killed, not restarted again. While a debugger is
 *     attached no freeze is called (a breakpoint stops the loop too).
 * (b) A stuck queue. A run that has made no progress (no event) for `stuckMs` while a task has
 *     waited as long for its worker is cancelled with TIMEOUT: the worker's slot is freed and the
 *     requester fails the task over; `watchdog.stuck_queue` says which.
 * (c) A dead backend. The probes bench it; `watchdog.backend_dead` reports it once per
 *     transition, `watchdog.backend_restored` when it comes back.
 *
 * Its events are on the bus, topic `system` (the trace log and sysop sessions of the events socket).
 */
import { DefaultWatchdog } from './watchdog.js'
import type { EventBus } from '../events/index.js'
import type { Worker } from '../workers/index.js'
import type { Startable } from '../startable.js'
import type { RespawnCommand } from './restart.js'

export * from './constants.js'
export { InvalidFailpointError, StuckRunError } from './errors.js'
export { FAILPOINTS, checkFailpoints, failpoint, parseFailpoints, traceFailpointHook, type FailpointName } from './failpoints.js'
export { readRestartMarker, respawnCommandOfThisProcess, withoutTestHooks, type RespawnCommand, type RestartMarker } from './restart.js'
export { WatchedWorker, type RunWatch } from './watched-worker.js'

export interface WatchdogInit {
  /** the data dir (the restart marker lives there) */
  dataDir: string
  /** the trace folder (`restart.log` lives there) */
  traceDir: string
  /** off: no thread, no timers, workers not wrapped; default true (config `watchdog.enabled`) */
  enabled?: boolean
  /** no heartbeat for this long is a frozen event loop, ms; default 10000 (config `watchdog.freeze_ms`) */
  freezeMs?: number
  /** a run without progress for this long, while a task waits as long, is cancelled, ms; default 180000 (config `watchdog.stuck_ms`) */
  stuckMs?: number
  /** how often runs are looked at; default a quarter of `stuckMs`, at most 5 s */
  stuckCheckMs?: number
  /**
   * How to start this node again after a freeze. Default: none — the node does not own its
   * process (tests, tools running several nodes), so no freeze monitor runs
   */
  respawn?: RespawnCommand
  /** environment for the test-only `REALM_TEST_FREEZE_AFTER_MS`; default none */
  env?: NodeJS.ProcessEnv
  now?: () => number
}

export interface WatchdogComponents {
  events: EventBus
  /** tasks waiting for a slot of this local worker (the executor's queue depth) */
  waiting: (workerId: string) => number
}

/** The event loop's delay since the last report, ms */
export interface LoopDelay {
  meanMs: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

/** A run the watchdog cancelled */
export interface StuckRun {
  workerId: string
  backend: string
  taskId: string
  /** how long it had made no progress, ms */
  idleMs: number
  /** tasks waiting for the worker at the time */
  waiting: number
}

export interface Watchdog extends Startable {
  readonly enabled: boolean
  readonly freezeMs: number
  readonly stuckMs: number
  /** `DIR/trace/restart.log` */
  readonly restartLog: string
  /** wrap a worker so its runs are watched (before the executor and the sysop's bench wrap it); as is when disabled */
  watch (worker: Worker): Worker
  /** look for stuck runs now (it also runs every `stuckCheckMs`); returns those cancelled */
  checkStuck (): StuckRun[]
  /** the event loop's delay over the current window, or undefined before any sample */
  loopDelay (): LoopDelay | undefined
}

export function createWatchdog (init: WatchdogInit, components: WatchdogComponents): Watchdog {
  return new DefaultWatchdog(init, components)
}
