/**
 * The real `realm` CLI as child processes (`node bin/realm.js …`, never `npx`), for the e2e
 * tests: nodes that run until stopped, one-shot commands, and a cleanup that SIGKILLs whatever
 * is still running and removes the temp dirs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sleep } from '../helpers/wait.js'
import type { NodeJson } from '../../node/node.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const REALM_BIN = path.join(ROOT, 'bin', 'realm.js')

/** How tests run a node: loopback, free ports, no backend detection, no LAN discovery */
export const START_ARGS = ['--no-detect', '--no-mdns', '--http', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0']

/** Beacons every 500 ms instead of 2 s, so peers appear sooner (a documented variable) */
export const TEST_ENV: NodeJS.ProcessEnv = { REALM_PRESENCE_INTERVAL_MS: '500' }

/**
 * Liveness deadline for one CLI process (a node to write node.json, a command to exit). Generous:
 * a loaded machine is slow, and `bin/realm.js` rebuilds dist/ first when sources changed.
 */
export const PROCESS_DEADLINE_MS = 120_000

/** What bin/build-if-stale.js prints when it rebuilds: not part of any command's answer */
const BUILD_LINE = /^realm: building \(TypeScript/

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface RunResult extends Exit {
  stdout: string
  stderr: string
}

/** Build dist/ once before the tests, so the CLI processes do not each find it stale */
export function buildOnce (): void {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'build-if-stale.js'), '--if-stale'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 })
  // a type error elsewhere still emits dist/ (the CLI runs it); only a missing build is fatal
  if (r.status !== 0 && r.stderr.toString().includes('not installed')) throw new Error(r.stderr.toString())
}

/** The non-empty lines of a process's stderr, the rebuild notice left out */
export function reasonLines (stderr: string): string[] {
  return stderr.split('\n').filter(line => line.trim() !== '' && !BUILD_LINE.test(line))
}

/** This process's environment without `REALM_*` settings, which would change what the nodes do */
function inheritedEnv (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('REALM_')))
}

/** A CLI process and what it printed so far */
export class RealmProcess {
  stdout = ''
  stderr = ''
  /** exited, and all its output read */
  closed = false
  readonly exited: Promise<Exit>

  constructor (readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { this.stdout += d })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { this.stderr += d })
    this.exited = new Promise(resolve => {
      child.once('close', (code, signal) => {
        this.closed = true
        resolve({ code, signal })
      })
    })
  }

  /** Poll `check` (on this process's output) until truthy; fails at once if the process ends first */
  async waitFor<T> (check: () => T, what: string, deadlineMs = PROCESS_DEADLINE_MS): Promise<NonNullable<T>> {
    const end = Date.now() + deadlineMs
    for (;;) {
      const done = this.closed
      const value = check()
      if (value) return value as NonNullable<T>
      if (done) throw new Error(`the process ended before ${what} (${this.describe()})`)
      if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what} (${this.describe()})`)
      await sleep(50)
    }
  }

  get pid (): number {
    return this.child.pid ?? -1
  }

  get running (): boolean {
    return this.child.exitCode == null && this.child.signalCode == null
  }

  /** stdout as JSON lines, skipping a line still being written */
  jsonLines (): any[] {
    const lines = this.stdout.split('\n')
    lines.pop()
    return lines.filter(l => l.trim() !== '').map(l => JSON.parse(l))
  }

  /** signal it and wait for it to exit */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    if (this.running) this.child.kill(signal)
    return await this.exited
  }

  describe (): string {
    return `pid ${this.pid}; stdout: ${this.stdout.slice(-2000)}; stderr: ${this.stderr.slice(-2000)}`
  }
}

/** A `realm start` process with its data dir */
export class RealmNodeProcess extends RealmProcess {
  info?: NodeJson

  constructor (child: ChildProcess, readonly dataDir: string) {
    super(child)
  }

  /** node.json of this process, once it has started; throws if it exits first */
  async started (): Promise<NodeJson> {
    const file = path.join(this.dataDir, 'node.json')
    const end = Date.now() + PROCESS_DEADLINE_MS
    for (;;) {
      if (!this.running) throw new Error(`realm start --data ${this.dataDir} exited before it started (${this.describe()})`)
      const info = await fs.readFile(file, 'utf8').then(text => JSON.parse(text) as NodeJson, () => undefined)
      // the peer id line is printed just after node.json is written
      if (info?.pid === this.pid && this.stdout.includes(info.peerId)) {
        this.info = info
        return info
      }
      if (Date.now() > end) throw new Error(`realm start --data ${this.dataDir} did not start within ${PROCESS_DEADLINE_MS} ms (${this.describe()})`)
      await sleep(50)
    }
  }

  /** GET `route` on this node's gateway (200 expected) */
  async get (route: string): Promise<any> {
    if (this.info == null) throw new Error('not started')
    const res = await fetch(this.info.http + route, { signal: AbortSignal.timeout(10_000) })
    if (res.status !== 200) throw new Error(`${route} answered ${res.status}`)
    return await res.json()
  }
}

/** Starts CLI processes and temp dirs, and removes them all in `cleanup()` */
export class Processes {
  private readonly children = new Set<RealmProcess>()
  private readonly dirs = new Set<string>()

  async tempDir (prefix = 'realm-e2e-'): Promise<string> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
    this.dirs.add(dir)
    return dir
  }

  /** spawn `node bin/realm.js ...args` (or another script with `script`) */
  spawn (args: string[], init: { env?: NodeJS.ProcessEnv, script?: string } = {}): RealmProcess {
    const proc = new RealmProcess(this.spawnChild(args, init))
    this.track(proc)
    return proc
  }

  /** `realm start --data DIR` with the test flags and `extra` */
  start (dataDir: string, extra: string[] = []): RealmNodeProcess {
    const proc = new RealmNodeProcess(this.spawnChild(['start', '--data', dataDir, ...START_ARGS, ...extra], {}), dataDir)
    this.track(proc)
    return proc
  }

  /** run a command to its end (SIGKILLed past the deadline) */
  async run (args: string[], init: { env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
    const proc = this.spawn(args, init)
    const timer = setTimeout(() => { proc.child.kill('SIGKILL') }, PROCESS_DEADLINE_MS)
    const exit = await proc.exited
    clearTimeout(timer)
    return { ...exit, stdout: proc.stdout, stderr: proc.stderr }
  }

  /** SIGKILL every process still running, wait for them, remove the temp dirs */
  async cleanup (): Promise<void> {
    const procs = [...this.children]
    this.children.clear()
    await Promise.all(procs.map(async p => {
      if (p.running) p.child.kill('SIGKILL')
      await p.exited
    }))
    const dirs = [...this.dirs]
    this.dirs.clear()
    await Promise.all(dirs.map(async d => { await fs.rm(d, { recursive: true, force: true }) }))
  }

  private spawnChild (args: string[], init: { env?: NodeJS.ProcessEnv, script?: string }): ChildProcess {
    return spawn(process.execPath, [init.script ?? REALM_BIN, ...args], {
      cwd: ROOT,
      env: { ...inheritedEnv(), ...TEST_ENV, ...init.env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
  }

  private track (proc: RealmProcess): void {
    this.children.add(proc)
  }
}
