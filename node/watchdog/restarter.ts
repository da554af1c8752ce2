/**
 * The restarter: a short-lived detached process the freeze monitor starts before it kills the
 * frozen node. It waits for the node's process to be gone (its data dir lock is then free), runs
 * the node's command line again, detached, with its output appended to the restart log, and exits.
 *
 *   node restarter.js '{"pid":123,"command":{…},"logFile":"…"}'
 *
 * It prints no arguments: they may hold credentials (a worker URL with a key).
 */
import { closeSync, openSync, readFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { RESTARTER_POLL_MS, RESTARTER_WAIT_MS } from './constants.js'
import type { RespawnCommand } from './restart.js'

interface RestarterArgs {
  pid: number
  command: RespawnCommand
  logFile: string
}

function say (line: string): void {
  process.stdout.write(`${new Date().toISOString()} restarter: ${line}\n`)
}

/** Is the process gone (or only a zombie its parent has not reaped yet: it holds no lock then) */
function gone (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S …"; comm may hold spaces and parentheses
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return false
  }
}

async function main (): Promise<number> {
  const args = JSON.parse(process.argv[2] ?? '{}') as RestarterArgs
  if (typeof args.pid !== 'number' || args.command == null) {
    say('bad arguments')
    return 2
  }
  const deadline = Date.now() + RESTARTER_WAIT_MS
  while (!gone(args.pid)) {
    if (Date.now() > deadline) {
      say(`pid ${args.pid} is still there after ${RESTARTER_WAIT_MS} ms; not restarting`)
      return 1
    }
    await sleep(RESTARTER_POLL_MS)
  }
  const out = openSync(args.logFile, 'a', 0o600)
  try {
    const child = spawn(args.command.execPath, args.command.args, {
      detached: true,
      stdio: ['ignore', out, out],
      cwd: args.command.cwd,
      env: args.command.env
    })
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', reject)
    })
    say(`pid ${args.pid} is gone; started the node again as pid ${child.pid ?? '?'}`)
    child.unref()
  } finally {
    closeSync(out)
  }
  return 0
}

main().then(code => { process.exitCode = code }, (err: unknown) => {
  say(`failed: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
})
