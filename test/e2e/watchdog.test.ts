/**
 * The watchdog: (a) a frozen event loop restarts a `realm start` process (same peer id, a new
 * pid, `watchdog.restarted` in the trace log); (b) a run that holds a worker's slot without
 * progress while another task waits is cancelled, the slot freed and the task failed over;
 * (c) a dead backend is reported once per transition. (a) through real CLI processes, (b) and
 * (c) in-process. Failpoint parsing too.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { RealmNode } from '../../node/node.js'
import { topicOf, type RealmEvent } from '../../node/events/index.js'
import { readTrace } from '../../node/trace/index.js'
import { InvalidFailpointError, parseFailpoints, withoutTestHooks } from '../../node/watchdog/index.js'
import { TEST_PRESENCE_INTERVAL_MS, tempDir } from '../helpers/nodes.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { startOllamaStandin, type OllamaStandin } from '../standins/index.js'
import { PROCESS_DEADLINE_MS, Processes, START_ARGS, buildOnce } from './realm-cli.js'
import type { NodeJson } from '../../node/node.js'

/** The CLI test waits on two processes and a freeze; each wait has its own liveness deadline */
const TEST_TIMEOUT_MS = 240_000
/** The test node freezes this long after its watchdog starts… */
const FREEZE_AFTER_MS = 1_000
/** …and the watchdog calls it frozen after this long without a heartbeat */
const FREEZE_MS = 3_000
/** The stuck-run bound of the in-process test */
const STUCK_MS = 1_000
/** The in-process tests start nodes and stand-ins, and wait for probes and a stuck run */
const IN_PROCESS_TIMEOUT_MS = 60_000

const CHAT = { kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'hello' }] } }

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function readNodeJson (dir: string): Promise<NodeJson | undefined> {
  return await fs.readFile(path.join(dir, 'node.json'), 'utf8').then(t => JSON.parse(t) as NodeJson, () => undefined)
}

async function traceEvents (dir: string): Promise<RealmEvent[]> {
  const out: RealmEvent[] = []
  for await (const e of readTrace(path.join(dir, 'trace'))) out.push(e)
  return out
}

/** A node in this process as startTestNode makes one, with the watchdog's stuck checks left to the test */
async function startNode (workers: string[], watchdog: { stuckMs?: number, manualChecks?: boolean } = {}): Promise<RealmNode> {
  const node = await RealmNode.create({
    dataDir: await tempDir('realm-watchdog-'),
    flags: { http: '127.0.0.1:0', listen: ['/ip4/127.0.0.1/tcp/0'], worker: workers, detect: false, mdns: false },
    env: {},
    warn: () => {},
    // probes of a hung backend wait long, so it stays "ok" (a backend that answers nothing but its socket)
    workerInit: { probeIntervalMs: 200, probeTimeoutMs: 60_000, backoffBaseMs: 100, backoffMaxMs: 400 },
    configure: (config) => {
      config.presence.interval_ms = TEST_PRESENCE_INTERVAL_MS
      if (watchdog.stuckMs !== undefined) config.watchdog.stuck_ms = watchdog.stuckMs
    },
    watchdogInit: watchdog.manualChecks === true ? { stuckCheckMs: 3_600_000 } : undefined
  })
  await node.start()
  return node
}

async function post (node: RealmNode, body: unknown): Promise<string> {
  const res = await fetch(node.url + '/realm/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  assert.equal(res.status, 202, await res.clone().text())
  return (await res.json() as { id: string }).id
}

function workerOf (node: RealmNode, standin: OllamaStandin): string {
  const w = node.workers.find(w => w.status().target.startsWith(standin.url))
  if (w == null) throw new Error(`no worker for ${standin.url}`)
  return w.id
}

describe('watchdog', function () {
  describe('failpoints (REALM_FAILPOINTS)', () => {
    it('parses NAME and NAME@N, refuses unknown points and bad counts with INVALID_ENV', () => {
      const armed = parseFailpoints(' task.acknowledged@3, trace.rotate:after-rename ')
      assert.deepEqual([...armed], [['task.acknowledged', { at: 3, hits: 0 }], ['trace.rotate:after-rename', { at: 1, hits: 0 }]])
      assert.equal(parseFailpoints(undefined).size, 0)
      for (const bad of ['nope', 'task.acknowledged@0', 'task.acknowledged@x', 'task.acknowledged@1@2', 'trace.rotate']) {
        assert.throws(() => parseFailpoints(bad), (err: any) => err instanceof InvalidFailpointError && err.code === 'INVALID_ENV', bad)
      }
    })

    it('a restarted node does not inherit test hooks', () => {
      assert.deepEqual(withoutTestHooks({ PATH: '/bin', REALM_DATA: '/d', REALM_TEST_FREEZE_AFTER_MS: '1', REALM_FAILPOINTS: 'task.acknowledged' }), { PATH: '/bin', REALM_DATA: '/d' })
    })
  })

  describe('in-process', function () {
    this.timeout(IN_PROCESS_TIMEOUT_MS)
    const cleanups: Array<() => Promise<unknown>> = []
    afterEach(async () => {
      for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {})
    })

    it('(b) a run without progress while a task waits: cancelled, the slot freed, the task fails over; watchdog.stuck_queue on topic system', async () => {
      const hung = await startOllamaStandin()
      const spare = await startOllamaStandin()
      cleanups.push(async () => { await hung.close() }, async () => { await spare.close() })
      // the spare backend is down at first, so both tasks go to the one that will hang
      await spare.down()
      const node = await startNode([`ollama=${hung.url}`, `ollama=${spare.url}`], { stuckMs: STUCK_MS, manualChecks: true })
      cleanups.push(async () => { await node.stop(); await fs.rm(node.dataDir, { recursive: true, force: true }) })
      const events: RealmEvent[] = []
      node.events.subscribe(e => { events.push(e) })
      const hungId = workerOf(node, hung)
      const spareId = workerOf(node, spare)
      await waitFor(() => node.workers.find(w => w.id === hungId)?.status().state === 'ok', 'the first worker up')

      await hung.setMode('hang')
      const a = await post(node, CHAT)
      await waitFor(async () => (await node.tasks.get(a))?.status === 'running', 'task A running on the hung backend')
      const b = await post(node, CHAT)
      await waitFor(() => node.executor.health(hungId)?.queueDepth === 1, 'task B waiting for the same worker')
      assert.deepEqual(node.watchdog.checkStuck(), [], 'nothing cancelled before a task has waited stuck_ms')

      await spare.up()
      await waitFor(() => node.workers.find(w => w.id === spareId)?.status().state === 'ok', 'the spare worker up')
      const cancelled = await waitFor(() => { const c = node.watchdog.checkStuck(); return c.length > 0 ? c : undefined }, 'the watchdog to cancel the stuck run')
      assert.equal(cancelled.length, 1)
      assert.equal(cancelled[0].taskId, a)
      assert.equal(cancelled[0].workerId, hungId)
      assert.ok(cancelled[0].idleMs >= STUCK_MS)

      const stuck = events.find(e => e.type === 'watchdog.stuck_queue')
      assert.ok(stuck != null, 'watchdog.stuck_queue emitted')
      assert.equal(topicOf(stuck.type), 'system')
      assert.equal(stuck.taskId, a)
      assert.equal(stuck.workerId, hungId)
      assert.equal(stuck.waiting, 1)

      // A failed over to the spare worker; B got the freed slot
      const doneA = await waitFor(async () => { const r = await node.tasks.get(a); return r?.status === 'done' ? r : undefined }, 'task A done after the failover')
      assert.equal(doneA.workerId, spareId)
      assert.equal(doneA.attempts, 2)
      const failed = events.find(e => e.type === 'task.attempt_failed' && e.id === a)
      assert.equal(failed?.code, 'TIMEOUT')
      assert.equal(failed?.workerId, hungId)
      await waitFor(async () => (await node.tasks.get(b))?.status === 'running', 'task B running in the freed slot')
      assert.ok(hung.requests.filter(r => r.path === '/api/chat').length >= 2, 'B reached the hung backend')

      // the event reached the trace log (what the sysop's console reads)
      await node.trace.flush()
      assert.ok((await traceEvents(node.dataDir)).some(e => e.type === 'watchdog.stuck_queue' && e.taskId === a))
    })

    it('(c) a dead backend: watchdog.backend_dead once per transition, backend_restored when it is back', async () => {
      const ollama = await startOllamaStandin()
      cleanups.push(async () => { await ollama.close() })
      const node = await startNode([`ollama=${ollama.url}`])
      cleanups.push(async () => { await node.stop(); await fs.rm(node.dataDir, { recursive: true, force: true }) })
      const events: RealmEvent[] = []
      node.events.subscribe(e => { if (e.type.startsWith('watchdog.backend')) events.push(e) })
      const id = node.workers[0].id
      const state = (): string => node.workers[0].status().state
      await waitFor(() => state() === 'ok', 'the worker up')

      await ollama.down()
      await waitFor(() => events.length === 1, 'watchdog.backend_dead')
      assert.equal(events[0].type, 'watchdog.backend_dead')
      assert.equal(events[0].workerId, id)
      assert.equal(events[0].backend, 'ollama')
      assert.equal(topicOf(events[0].type), 'system')
      // more failed probes while benched: still one event
      const failures = node.workers[0].status().failures
      await waitFor(() => node.workers[0].status().failures >= failures + 3, 'more failed probes')
      assert.deepEqual(events.map(e => e.type), ['watchdog.backend_dead'])

      await ollama.up()
      await waitFor(() => events.length === 2, 'watchdog.backend_restored')
      assert.equal(events[1].type, 'watchdog.backend_restored')
      await ollama.down()
      await waitFor(() => events.length === 3, 'a second watchdog.backend_dead')
      assert.deepEqual(events.map(e => e.type), ['watchdog.backend_dead', 'watchdog.backend_restored', 'watchdog.backend_dead'])
      await node.trace.flush()
      assert.equal((await traceEvents(node.dataDir)).filter(e => e.type === 'watchdog.backend_dead').length, 2)
    })
  })

  describe('a frozen event loop (realm start processes)', function () {
    this.timeout(TEST_TIMEOUT_MS)
    const procs = new Processes()
    let dataDir = ''

    before(function () {
      this.timeout(600_000)
      buildOnce()
    })

    after(async () => {
      // the restarted node is no child of this process: stop it by its pid
      const info = dataDir !== '' ? await readNodeJson(dataDir) : undefined
      if (info != null && alive(info.pid)) {
        process.kill(info.pid, 'SIGTERM')
        await waitFor(() => !alive(info.pid), 'the restarted node to stop', 30_000).catch(() => { process.kill(info.pid, 'SIGKILL') })
      }
      await procs.cleanup()
    })

    it('(a) freezes, is SIGKILLed from the watchdog thread and started again: same peer id, new pid, answers, watchdog.restarted in the trace log', async () => {
      dataDir = await procs.tempDir('realm-e2e-freeze-')
      await fs.writeFile(path.join(dataDir, 'config.toml'), `[watchdog]\nfreeze_ms = ${FREEZE_MS}\n`)
      const first = procs.spawn(['start', '--data', dataDir, ...START_ARGS], { env: { REALM_TEST_FREEZE_AFTER_MS: String(FREEZE_AFTER_MS) } })
      const info1 = await waitFor(async () => { const i = await readNodeJson(dataDir); return i?.pid === first.pid ? i : undefined }, 'the first node to start', PROCESS_DEADLINE_MS)

      // the freeze: the process does not stop by itself; the watchdog thread kills it
      const exit = await first.exited
      assert.equal(exit.signal, 'SIGKILL', first.describe())
      const info2 = await waitFor(async () => {
        const i = await readNodeJson(dataDir)
        return i != null && i.pid !== info1.pid && alive(i.pid) ? i : undefined
      }, 'the restarted node to write node.json', PROCESS_DEADLINE_MS)
      assert.equal(info2.peerId, info1.peerId, 'same peer id')
      const status = await (await fetch(info2.http + '/realm/status', { signal: AbortSignal.timeout(10_000) })).json() as any
      assert.equal(status.peerId, info1.peerId, 'the restarted node answers')

      const restarted = await waitFor(async () => (await traceEvents(dataDir)).find(e => e.type === 'watchdog.restarted'), 'watchdog.restarted in the trace log', PROCESS_DEADLINE_MS)
      assert.equal(restarted.previousPid, info1.pid)
      assert.equal(restarted.pid, info2.pid)
      assert.ok(Number(restarted.frozenMs) >= FREEZE_MS, `frozen ${String(restarted.frozenMs)} ms`)
      const log = await fs.readFile(path.join(dataDir, 'trace', 'restart.log'), 'utf8')
      assert.match(log, new RegExp(`event loop of pid ${info1.pid} has been frozen`))
      assert.match(log, new RegExp(`started the node again as pid ${info2.pid}`))

      // the test hook is not passed on, so the new node does not freeze in its turn
      const environ = await fs.readFile(`/proc/${info2.pid}/environ`, 'utf8').catch(() => '')
      if (environ !== '') assert.ok(!environ.includes('REALM_TEST_FREEZE_AFTER_MS'), 'the restarted node has no freeze hook')
      await sleep(FREEZE_AFTER_MS)
      assert.ok(alive(info2.pid), 'the restarted node keeps running')
    })
  })
})
