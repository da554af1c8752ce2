/**
 * The crash harness: a `realm start` process with a stand-in Ollama worker, put under load by
 * clients submitting tasks (`POST /realm/tasks`) and remembering every acknowledged id, SIGKILLed
 * again and again — at random moments (a seeded PRNG) and at failpoints (`REALM_FAILPOINTS`: just
 * after a task is acknowledged, in the middle of a trace log rotation) — with a trace log so small
 * that it rotates every few events. After every kill the node is started again and must:
 *   - start (its database opens);
 *   - keep its peer id;
 *   - answer `GET /realm/tasks/:id` for every id ever acknowledged, with a final status (`done`,
 *     or `error`, `INTERRUPTED` for those the kill caught) — never missing, never still open;
 *   - have a config.toml that is valid TOML with the same values;
 *   - have a trace log `realm log --json` reads, with at most one torn line per kill.
 * Then a corrupt `node.key` (restored from `node.key.bak`) and a corrupt `config.toml` (repaired).
 *
 * Used by test/e2e/crash.test.ts (fewer kills) and scripts/crash/run.ts (more). Liveness waits only.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { readTrace } from '../../node/trace/index.js'
import { startOllamaStandin, type OllamaStandin } from '../../test/standins/index.js'
import { sleep } from '../../test/helpers/wait.js'
import { PROCESS_DEADLINE_MS, START_ARGS, type Processes, type RealmProcess } from '../../test/e2e/realm-cli.js'
import type { NodeJson } from '../../node/node.js'

/** Trace log limits: tiny, so the log rotates every few events and kills land in rotations */
export const CRASH_TRACE_MAX_BYTES = 4096
export const CRASH_TRACE_MAX_FILES = 3
/** Clients submitting at once (all one requester: the per-requester bound makes some wait) */
const CLIENTS = 3
/** A task's answer streams this slowly, so tasks are queued and running when the kill comes */
const TOKEN_DELAY_MS = 15
/** Random kills land this long after the load starts */
const KILL_MIN_MS = 200
const KILL_MAX_MS = 2_000
/** Pause of a client told to come back (429) or finding the node gone */
const CLIENT_BACKOFF_MS = 50
/** Statuses a task acknowledged before a kill may have after the restart */
const FINAL_STATUSES = new Set(['done', 'error'])

/** The failpoints a run goes through: `name@N` picks the N-th time the point is reached */
export const FAILPOINT_CASES = [
  'task.acknowledged',
  'trace.rotate:start',
  'trace.rotate:after-shift',
  'trace.rotate:after-rename',
  'trace.rotate:after-delete',
  'trace.rotate:done'
] as const

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface CrashRunInit {
  procs: Processes
  seed: number
  /** kills in all, failpoint ones included (at least `failpoints.length`) */
  kills: number
  /** failpoints to go through, one kill each (default all of FAILPOINT_CASES) */
  failpoints?: readonly string[]
  /** also corrupt node.key both ways (truncated, garbage) instead of once; default false */
  bothKeyCorruptions?: boolean
  /** progress lines */
  log?: (line: string) => void
}

export interface CrashReport {
  seed: number
  kills: number
  acknowledged: number
  done: number
  interrupted: number
  otherErrors: number
  tornLines: number
}

/** `realm start` on `dataDir` with the test flags, the worker, and `env` */
function startNode (procs: Processes, dataDir: string, workerUrl: string, env: NodeJS.ProcessEnv = {}): RealmProcess {
  return procs.spawn(['start', '--data', dataDir, ...START_ARGS, '--worker', `ollama=${workerUrl}`], { env })
}

/** node.json of this process once it has started */
async function started (proc: RealmProcess, dataDir: string): Promise<NodeJson> {
  const end = Date.now() + PROCESS_DEADLINE_MS
  for (;;) {
    if (!proc.running) throw new Error(`realm start exited before it started (${proc.describe()})`)
    const info = await fs.readFile(path.join(dataDir, 'node.json'), 'utf8').then(t => JSON.parse(t) as NodeJson, () => undefined)
    if (info?.pid === proc.pid && proc.stdout.includes(info.peerId)) return info
    if (Date.now() > end) throw new Error(`realm start did not start within ${PROCESS_DEADLINE_MS} ms (${proc.describe()})`)
    await sleep(50)
  }
}

async function getJson (url: string): Promise<{ status: number, body: any }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(20_000) })
  return { status: res.status, body: await res.json() }
}

/** Clients submitting tasks until `signal` aborts; every id answered with 202 goes into `acked` */
function load (http: string, acked: Map<string, number>, cycle: number, signal: AbortSignal): Promise<void[]> {
  return Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
    for (let n = 0; !signal.aborted; n++) {
      const body = JSON.stringify({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: `cycle ${cycle} client ${client} task ${n}` }] } })
      try {
        const res = await fetch(http + '/realm/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal })
        if (res.status === 202) {
          const { id } = await res.json() as { id: string }
          acked.set(id, cycle)
          continue
        }
        await res.body?.cancel()
        if (res.status !== 429) throw new Error(`POST /realm/tasks answered ${res.status}`)
      } catch (err) {
        // the node is gone (refused, reset) or we stopped: the id was not given, nothing to remember
        if ((err as Error).message.startsWith('POST /realm/tasks answered')) throw err
      }
      await sleep(CLIENT_BACKOFF_MS)
    }
  }))
}

/** Every check a start after a kill must pass; returns the status counts of the acknowledged tasks */
async function checkAfterRestart (init: {
  procs: Processes
  dataDir: string
  info: NodeJson
  peerId: string
  config: unknown
  acked: Map<string, number>
  kills: number
}): Promise<{ done: number, interrupted: number, otherErrors: number, tornLines: number }> {
  const { info, acked } = init
  assert.equal(info.peerId, init.peerId, 'the peer id survives the kill')

  const config = parseToml(await fs.readFile(path.join(init.dataDir, 'config.toml'), 'utf8'))
  assert.deepEqual(config, init.config, 'config.toml is valid TOML with the same values')

  let done = 0
  let interrupted = 0
  let otherErrors = 0
  const ids = [...acked.keys()]
  // a few at a time: thousands of ids over loopback
  for (let i = 0; i < ids.length; i += 16) {
    await Promise.all(ids.slice(i, i + 16).map(async id => {
      const { status, body } = await getJson(`${info.http}/realm/tasks/${id}`)
      assert.equal(status, 200, `acknowledged task ${id} (cycle ${acked.get(id)}) is found after the restart: ${JSON.stringify(body)}`)
      assert.ok(FINAL_STATUSES.has(body.status), `task ${id} (cycle ${acked.get(id)}) is ${body.status} after the restart, not ended`)
      if (body.status === 'done') done++
      else if (body.error?.code === 'INTERRUPTED') interrupted++
      else otherErrors++
    }))
  }

  const log = await init.procs.run(['log', '--json', '--data', init.dataDir])
  assert.equal(log.code, 0, `realm log --json exits 0: ${log.stderr}`)
  const lines = log.stdout.split('\n').filter(l => l !== '')
  for (const line of lines) JSON.parse(line)
  let tornLines = 0
  for await (const _ of readTrace(path.join(init.dataDir, 'trace'), { onSkip: () => { tornLines++ } })) {}
  // each kill tears at most the line being written (rotation deletes the oldest files, and their torn lines)
  assert.ok(tornLines <= init.kills, `${tornLines} torn trace lines after ${init.kills} kills`)
  return { done, interrupted, otherErrors, tornLines }
}

/** Run the whole crash test; throws (an assertion) at the first broken guarantee */
export async function runCrashTest (init: CrashRunInit): Promise<CrashReport> {
  const say = init.log ?? (() => {})
  const random = prng(init.seed)
  const failpoints = init.failpoints ?? FAILPOINT_CASES
  assert.ok(init.kills >= failpoints.length, 'at least one kill per failpoint')
  const procs = init.procs
  const ollama: OllamaStandin = await startOllamaStandin({ tokenDelayMs: TOKEN_DELAY_MS })
  const acked = new Map<string, number>()
  const report: CrashReport = { seed: init.seed, kills: 0, acknowledged: 0, done: 0, interrupted: 0, otherErrors: 0, tornLines: 0 }
  try {
    const dataDir = await procs.tempDir('realm-crash-')
    await fs.writeFile(path.join(dataDir, 'config.toml'),
      `[trace]\nmax_bytes = ${CRASH_TRACE_MAX_BYTES}\nmax_files = ${CRASH_TRACE_MAX_FILES}\n\n[workers]\nprobe_interval_ms = 500\n`)

    // the first start writes the whole config and the key
    let proc = startNode(procs, dataDir, ollama.url)
    let info = await started(proc, dataDir)
    const peerId = info.peerId
    const config = parseToml(await fs.readFile(path.join(dataDir, 'config.toml'), 'utf8'))
    say(`node ${peerId} started (pid ${info.pid}), data dir ${dataDir}`)

    // the kinds of kill, in an order the seed decides
    const cases: Array<string | undefined> = [...failpoints, ...Array.from({ length: init.kills - failpoints.length }, () => undefined)]
    for (let i = cases.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[cases[i], cases[j]] = [cases[j], cases[i]]
    }

    for (let cycle = 0; cycle < cases.length; cycle++) {
      const point = cases[cycle]
      let up: NodeJson | undefined = info
      if (point !== undefined) {
        // started again (after a clean stop) with the failpoint armed, at its 1st to 4th hit
        const clean = await proc.stop('SIGTERM')
        assert.deepEqual(clean, { code: 0, signal: null }, `a clean stop exits 0 (${proc.describe()})`)
        const armed = `${point}@${1 + Math.floor(random() * 4)}`
        proc = startNode(procs, dataDir, ollama.url, { REALM_FAILPOINTS: armed })
        // a rotation may come while the node starts: then it dies before it is up
        up = await started(proc, dataDir).catch(async (err: unknown) => {
          if ((await proc.exited).signal === 'SIGKILL') return undefined
          throw err
        })
        say(`cycle ${cycle + 1}/${cases.length}: failpoint ${armed}${up == null ? ' (reached while starting)' : ''}`)
      } else {
        say(`cycle ${cycle + 1}/${cases.length}: random kill`)
      }

      const stop = new AbortController()
      let clients: Promise<unknown> = Promise.resolve()
      if (up != null) {
        await workerUp(up.http)
        clients = load(up.http, acked, cycle, stop.signal)
        if (point === undefined) {
          await sleep(KILL_MIN_MS + Math.floor(random() * (KILL_MAX_MS - KILL_MIN_MS)))
          proc.child.kill('SIGKILL')
        }
      }
      const exit = await Promise.race([proc.exited, sleep(PROCESS_DEADLINE_MS).then(() => undefined)])
      stop.abort()
      await clients
      assert.ok(exit != null, `the node reached failpoint ${String(point)} within ${PROCESS_DEADLINE_MS} ms (${proc.describe()})`)
      assert.equal(exit.signal, 'SIGKILL', `killed by SIGKILL (${proc.describe()})`)
      if (point !== undefined) assert.match(proc.stderr, /failpoint .* reached/, 'it died at its failpoint')
      report.kills++

      proc = startNode(procs, dataDir, ollama.url)
      info = await started(proc, dataDir)
      const counts = await checkAfterRestart({ procs, dataDir, info, peerId, config, acked, kills: report.kills })
      Object.assign(report, counts, { acknowledged: acked.size })
      say(`  restarted (pid ${info.pid}): ${acked.size} acknowledged so far, ${counts.done} done, ${counts.interrupted} interrupted, ${counts.otherErrors} other errors, ${counts.tornLines} torn trace lines`)
    }

    // node.key torn or overwritten: restored from node.key.bak, reported on stderr and in the trace log
    const keyFile = path.join(dataDir, 'node.key')
    const corruptions: Array<[string, (text: string) => string]> = [['truncated', text => text.slice(0, Math.floor(text.length / 2))]]
    if (init.bothKeyCorruptions === true) corruptions.push(['garbage', text => Buffer.from(Array.from({ length: text.length }, (_, i) => (i * 131 + 7) % 256)).toString('latin1')])
    for (const [how, corrupt] of corruptions) {
      proc.child.kill('SIGKILL')
      await proc.exited
      await fs.writeFile(keyFile, corrupt(await fs.readFile(keyFile, 'utf8')))
      proc = startNode(procs, dataDir, ollama.url)
      info = await started(proc, dataDir)
      assert.equal(info.peerId, peerId, `a ${how} node.key is restored from node.key.bak`)
      assert.match(proc.stderr, /node key: .* restored from its backup/, 'the restore is reported on stderr')
      const restored = await waitForEvent(dataDir, e => e.type === 'key.restored' && e.peerId === peerId)
      assert.ok(restored, 'key.restored in the trace log')
      say(`node.key ${how}: restored from node.key.bak`)
    }

    // config.toml torn mid-write and followed by junk: repaired, the values before the tear kept
    proc.child.kill('SIGKILL')
    await proc.exited
    const configFile = path.join(dataDir, 'config.toml')
    const text = await fs.readFile(configFile, 'utf8')
    const cut = text.indexOf('[p2p]')
    assert.ok(cut > 0, 'config.toml has a [p2p] section')
    await fs.writeFile(configFile, text.slice(0, cut + 20) + '\u0000\u0000\u00ff garbage = = [[\n')
    proc = startNode(procs, dataDir, ollama.url)
    info = await started(proc, dataDir)
    assert.match(proc.stderr, /config: /, 'the repair is reported on stderr')
    const repaired = parseToml(await fs.readFile(configFile, 'utf8')) as any
    const before = config as any
    assert.deepEqual(repaired.node, before.node, 'settings before the tear are kept')
    assert.deepEqual(repaired.http, before.http, 'settings before the tear are kept')
    assert.ok(await waitForEvent(dataDir, e => e.type === 'config.repaired'), 'config.repaired in the trace log')
    say('config.toml torn: repaired')

    // everything acknowledged is still there after all that, and a clean stop is still clean
    const final = await checkAfterRestart({ procs, dataDir, info, peerId, config: repaired, acked, kills: report.kills + corruptions.length + 1 })
    Object.assign(report, final, { acknowledged: acked.size })
    const exit = await proc.stop('SIGTERM')
    assert.deepEqual(exit, { code: 0, signal: null }, `a clean stop after the crashes exits 0 (${proc.describe()})`)
    return report
  } finally {
    await ollama.close()
  }
}

/** Wait until the node's worker serves the model (its first probe passed), so tasks are accepted */
async function workerUp (http: string): Promise<void> {
  const end = Date.now() + PROCESS_DEADLINE_MS
  while (Date.now() < end) {
    const { body } = await getJson(`${http}/realm/models`).catch(() => ({ body: undefined }))
    if (body?.models?.some((m: any) => m.name === 'llama3.2:1b') === true) return
    await sleep(50)
  }
  throw new Error(`the worker did not come up within ${PROCESS_DEADLINE_MS} ms`)
}

/** Wait for an event in the trace log (written within ~100 ms of happening) */
async function waitForEvent (dataDir: string, match: (e: any) => boolean): Promise<boolean> {
  const end = Date.now() + PROCESS_DEADLINE_MS
  while (Date.now() < end) {
    for await (const e of readTrace(path.join(dataDir, 'trace'))) if (match(e)) return true
    await sleep(100)
  }
  return false
}
