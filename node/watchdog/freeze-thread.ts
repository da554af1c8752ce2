/**
 * The freeze monitor: a worker thread that watches the main thread's heartbeat (a counter in a
 * SharedArrayBuffer the main thread bumps every HEARTBEAT_INTERVAL_MS). When it has not moved for
 * `freezeMs`, the event loop is frozen (a busy loop, a deadlock in native code, a sync call that
 * never returns) and nothing on the main thread can help: this thread leaves a marker for the next
 * start, starts a detached restarter (which waits for this process to be gone, then runs the same
 * command line again), and SIGKILLs the process.
 *
 * Runs as a worker thread only (see watchdog.ts); it imports nothing of the node.
 */
import { closeSync, openSync, writeSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { isMainThread, workerData } from 'node:worker_threads'
import { FREEZE_CHECKS_PER_PERIOD, MAX_RESTARTS_IN_WINDOW, RESTART_HISTORY, RESTART_WINDOW_MS } from './constants.js'
import { readRestartMarker, writeRestartMarker, type RespawnCommand } from './restart.js'

/** What the main thread hands the monitor */
export interface FreezeMonitorData {
  /** Int32Array view: [0] the beat counter, [1] 1 while a debugger is attached (no freeze is called then) */
  heartbeat: SharedArrayBuffer
  freezeMs: number
  pid: number
  /** `DIR/watchdog-restart.json` */
  markerFile: string
  /** `DIR/trace/restart.log`: this thread's, the restarter's and the restarted node's output */
  logFile: string
  /** the restarter script and how to run it (Node options of this process) */
  restarter: { execPath: string, args: string[] }
  respawn: RespawnCommand
}

function log (file: string, line: string): void {
  try {
    const fd = openSync(file, 'a', 0o600)
    try {
      writeSync(fd, `${new Date().toISOString()} watchdog: ${line}\n`)
    } finally {
      closeSync(fd)
    }
  } catch {}
}

function onFrozen (data: FreezeMonitorData, frozenMs: number): void {
  const now = Date.now()
  const recent = (readRestartMarker(data.markerFile)?.restarts ?? []).filter(t => now - t < RESTART_WINDOW_MS)
  const restarts = [...recent, now].slice(-RESTART_HISTORY)
  const respawn = recent.length < MAX_RESTARTS_IN_WINDOW
  try {
    writeRestartMarker(data.markerFile, { reason: 'frozen', previousPid: data.pid, frozenMs: Math.round(frozenMs), at: new Date(now).toISOString(), respawned: respawn, restarts })
  } catch (err) {
    log(data.logFile, `cannot write ${data.markerFile}: ${(err as Error).message}`)
  }
  if (respawn) {
    log(data.logFile, `the event loop of pid ${data.pid} has been frozen for ${Math.round(frozenMs)} ms; restarting the node`)
    try {
      const out = openSync(data.logFile, 'a', 0o600)
      const child = spawn(data.restarter.execPath, [...data.restarter.args, JSON.stringify({ pid: data.pid, command: data.respawn, logFile: data.logFile })], {
        detached: true,
        stdio: ['ignore', out, out],
        cwd: data.respawn.cwd,
        env: data.respawn.env
      })
      child.unref()
      closeSync(out)
    } catch (err) {
      log(data.logFile, `cannot start the restarter: ${(err as Error).message}`)
    }
  } else {
    log(data.logFile, `the event loop of pid ${data.pid} has been frozen for ${Math.round(frozenMs)} ms; ${recent.length + 1} freezes within ${RESTART_WINDOW_MS / 60_000} min: killing it without a restart`)
  }
  process.kill(data.pid, 'SIGKILL')
}

/** Watch the heartbeat until the process dies or the main thread terminates this thread */
export function monitor (data: FreezeMonitorData): void {
  const beats = new Int32Array(data.heartbeat)
  const checkMs = Math.max(10, Math.floor(data.freezeMs / FREEZE_CHECKS_PER_PERIOD))
  let last = Atomics.load(beats, 0)
  let lastChange = performance.now()
  let lastCheck = lastChange
  let fired = false
  setInterval(() => {
    if (fired) return
    const now = performance.now()
    const beat = Atomics.load(beats, 0)
    // a check this late means the whole process was not running (suspend, swap storm): not the
    // main thread's fault, so its count starts again
    if (beat !== last || now - lastCheck > data.freezeMs / 2 || Atomics.load(beats, 1) === 1) {
      last = beat
      lastChange = now
    }
    lastCheck = now
    if (now - lastChange >= data.freezeMs) {
      fired = true
      onFrozen(data, now - lastChange)
    }
  }, checkMs)
}

if (!isMainThread && (workerData as { freezeMonitor?: FreezeMonitorData } | undefined)?.freezeMonitor != null) {
  monitor((workerData as { freezeMonitor: FreezeMonitorData }).freezeMonitor)
}
