/**
 * What a freeze restart needs, shared by the main thread, the freeze monitor thread and the
 * restarter process: the command line to run again, and the marker the next start reads.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { TEST_ONLY_ENV_PREFIXES } from './constants.js'

/** How to start this node again: the same program, arguments, folder and environment */
export interface RespawnCommand {
  /** the Node.js binary */
  execPath: string
  /** its arguments: Node's own options, the script, then the script's (`start --data …`) */
  args: string[]
  cwd: string
  /** the environment, test hooks left out (`withoutTestHooks`) */
  env: Record<string, string>
}

/** What the freeze monitor leaves for the next start, in `DIR/watchdog-restart.json` */
export interface RestartMarker {
  reason: 'frozen'
  /** the process that froze and was killed */
  previousPid: number
  /** how long it had not beaten, ms */
  frozenMs: number
  /** ISO time of the kill */
  at: string
  /** whether a restarter was started (false: too many restarts in a row, see `restarts`) */
  respawned: boolean
  /** times (ms) of the recent freeze restarts, oldest first */
  restarts: number[]
  /** set by the start that reported it */
  reportedBy?: number
}

/** The environment without test-only variables, so a test hook fires once and not after every restart */
export function withoutTestHooks (env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || TEST_ONLY_ENV_PREFIXES.some(prefix => name.startsWith(prefix))) continue
    out[name] = value
  }
  return out
}

/** `realm start` as this process runs it */
export function respawnCommandOfThisProcess (): RespawnCommand {
  return {
    execPath: process.execPath,
    args: [...process.execArgv, ...process.argv.slice(1)],
    cwd: process.cwd(),
    env: withoutTestHooks(process.env)
  }
}

/** The marker, or `undefined` when there is none or it does not parse */
export function readRestartMarker (file: string): RestartMarker | undefined {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8'))
    if (value == null || typeof value !== 'object' || typeof value.previousPid !== 'number') return undefined
    if (!Array.isArray(value.restarts)) value.restarts = []
    return value as RestartMarker
  } catch {
    return undefined
  }
}

/** Write the marker whole or not at all (temp file, rename): a kill right after leaves the old one or the new one */
export function writeRestartMarker (file: string, marker: RestartMarker): void {
  const temp = `${file}.${process.pid}.tmp`
  writeFileSync(temp, JSON.stringify(marker) + '\n', { mode: 0o600 })
  renameSync(temp, file)
}
