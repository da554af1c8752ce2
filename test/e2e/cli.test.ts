/**
 * The `realm` CLI end to end: real `realm start` processes on loopback (a mesh of two, a
 * restart, signals, a repaired config, a rotating trace log, a locked data dir), the read
 * commands against them, and the one-line failures of bad flags and taken ports.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin, type OllamaStandin } from '../standins/index.js'
import { traceFiles } from '../../node/trace/index.js'
import { Processes, START_ARGS, buildOnce, reasonLines, type RealmNodeProcess } from './realm-cli.js'

/** Every test here waits on several processes; each wait has its own liveness deadline */
const TEST_TIMEOUT_MS = 150_000
/** Liveness deadline for peers to appear in each other's tables */
const MESH_DEADLINE_MS = 60_000
/** Liveness deadline for the worker outages that rotate the trace log twice */
const ROTATION_DEADLINE_MS = 90_000

const OLLAMA_MODELS = ['llama3.2:1b', 'llava:7b', 'nomic-embed-text:latest']

/** The trace log limits of the rotation test: tiny, so a few worker events rotate it */
const TRACE_MAX_BYTES = 2048
const TRACE_MAX_FILES = 3

/** A config.toml that does not parse, with good values among the garbage */
const BROKEN_CONFIG = `this line is garbage
[node]
name = "kept-name"
%% === more junk
[http]
listen = "127.0.0.1:0"
[presence]
interval_ms = "fast"
expire_intervals = 5
[[[ not a table
`

async function readEventsOf (file: string): Promise<any[]> {
  const text = await fs.readFile(file, 'utf8')
  return text.split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l))
}

/** Every event in a trace folder, oldest file first; throws if a file moves meanwhile (waitFor tries again) */
async function eventsIn (traceDir: string): Promise<any[]> {
  const events: any[] = []
  for (const f of await traceFiles(traceDir)) events.push(...await readEventsOf(f))
  return events
}

async function exists (file: string): Promise<boolean> {
  return await fs.access(file).then(() => true, () => false)
}

function parseJson (stdout: string, what: string): any {
  try {
    return JSON.parse(stdout)
  } catch {
    throw new Error(`${what} did not print JSON: ${stdout.slice(0, 500)}`)
  }
}

/** The one line a failed command printed on stderr */
function oneLineReason (result: { code: number | null, stderr: string }, what: string): string {
  assert.notEqual(result.code, 0, `${what} exited 0`)
  assert.notEqual(result.code, null, `${what} was killed instead of exiting (${result.stderr})`)
  const lines = reasonLines(result.stderr)
  assert.equal(lines.length, 1, `${what}: expected one line on stderr, got ${JSON.stringify(result.stderr)}`)
  return lines[0]
}

/** A port on 127.0.0.1 that this process holds until `close()` */
async function holdPort (): Promise<{ port: number, close: () => Promise<void> }> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve() })
  })
  const port = (server.address() as net.AddressInfo).port
  return { port, close: async () => { await new Promise(resolve => server.close(resolve)) } }
}

describe('e2e: the realm CLI', function () {
  this.timeout(TEST_TIMEOUT_MS)
  const procs = new Processes()
  let ollama: OllamaStandin
  let traceOllama: OllamaStandin
  let a: RealmNodeProcess
  let b: RealmNodeProcess
  let repaired: RealmNodeProcess
  let traced: RealmNodeProcess
  const dirs: Record<'a' | 'b' | 'repaired' | 'traced', string> = { a: '', b: '', repaired: '', traced: '' }

  before(async function () {
    this.timeout(600_000)
    buildOnce()
    ollama = await startOllamaStandin()
    traceOllama = await startOllamaStandin()
    for (const name of Object.keys(dirs) as Array<keyof typeof dirs>) dirs[name] = await procs.tempDir(`realm-e2e-${name}-`)
    await fs.writeFile(path.join(dirs.repaired, 'config.toml'), BROKEN_CONFIG)
    // only some settings: the rest are added from the defaults on first start
    await fs.writeFile(path.join(dirs.traced, 'config.toml'),
      `[trace]\nmax_bytes = ${TRACE_MAX_BYTES}\nmax_files = ${TRACE_MAX_FILES}\n\n[workers]\nprobe_interval_ms = 200\n`)

    // the nodes start side by side; B needs A's address first
    a = procs.start(dirs.a)
    repaired = procs.start(dirs.repaired)
    traced = procs.start(dirs.traced, ['--worker', `ollama=${traceOllama.url}`])
    const infoA = await a.started()
    b = procs.start(dirs.b, ['--bootstrap', infoA.multiaddrs[0], '--worker', `ollama=${ollama.url}`])
    await Promise.all([b.started(), repaired.started(), traced.started()])
  })

  after(async () => {
    await procs.cleanup()
    await ollama?.close()
    await traceOllama?.close()
  })

  it('two nodes mesh: /realm/peers, realm peers, status and models (human and --json) show each other and B\'s worker', async () => {
    const idA = a.info!.peerId
    const idB = b.info!.peerId
    assert.notEqual(idA, idB)
    await waitFor(async () => {
      const [pa, pb] = await Promise.all([a.get('/realm/peers'), b.get('/realm/peers')])
      return pa.peers.some((p: any) => p.peerId === idB) && pb.peers.some((p: any) => p.peerId === idA)
    }, 'A and B in each other\'s /realm/peers', MESH_DEADLINE_MS)
    await waitFor(async () => (await a.get('/realm/models')).models.some((m: any) => m.name === 'llama3.2:1b'), 'B\'s models on A', MESH_DEADLINE_MS)

    const cli = async (command: string, dir: string, json: boolean): Promise<string> => {
      const r = await procs.run([command, '--data', dir, ...(json ? ['--json'] : [])])
      assert.equal(r.code, 0, `realm ${command}${json ? ' --json' : ''} exited ${r.code}: ${r.stderr}`)
      return r.stdout
    }
    const [peersA, peersAJson, peersB, peersBJson, status, statusJson, models, modelsJson] = await Promise.all([
      cli('peers', dirs.a, false), cli('peers', dirs.a, true), cli('peers', dirs.b, false), cli('peers', dirs.b, true),
      cli('status', dirs.a, false), cli('status', dirs.a, true), cli('models', dirs.a, false), cli('models', dirs.a, true)
    ])

    // realm peers: each lists the other (B with its worker and models)
    assert.deepEqual(parseJson(peersAJson, 'realm peers --json').peers.map((p: any) => p.peerId), [idB])
    assert.deepEqual(parseJson(peersBJson, 'realm peers --json').peers.map((p: any) => p.peerId), [idA])
    const peerB = parseJson(peersAJson, 'realm peers --json').peers[0]
    assert.equal(peerB.capabilities.workers[0].backend, 'ollama')
    assert.ok(!Number.isNaN(Date.parse(peerB.lastSeen)), 'lastSeen is an ISO time')
    assert.ok(peersA.startsWith(idB), peersA)
    assert.match(peersA, /^ {2}\S+ \[ok\] llama3\.2:1b, llava:7b, nomic-embed-text:latest$/m)
    assert.ok(peersB.startsWith(idA), peersB)
    assert.ok(!peersB.includes(idB), 'B does not list itself')

    // realm status
    const st = parseJson(statusJson, 'realm status --json')
    assert.equal(st.peerId, idA)
    assert.equal(st.peers, 1)
    assert.equal(st.workers, 0)
    assert.equal(typeof st.uptimeS, 'number')
    assert.ok(st.multiaddrs.length > 0)
    for (const m of st.multiaddrs) assert.ok(m.endsWith(`/p2p/${idA}`), m)
    assert.match(status, new RegExp(`^peer id +${idA}$`, 'm'))
    assert.match(status, /^peers +1 in the realm/m)
    for (const m of st.multiaddrs) assert.ok(status.includes(m), `status shows ${m}`)

    // realm models on A: B's models, served by B
    const ms = parseJson(modelsJson, 'realm models --json').models
    assert.deepEqual(ms.map((m: any) => m.name).sort(), OLLAMA_MODELS)
    for (const m of ms) assert.deepEqual(m.peers, [idB], m.name)
    assert.deepEqual(ms.find((m: any) => m.name === 'llama3.2:1b').kinds, ['chat', 'generate'])
    assert.match(models, /^llama3\.2:1b +chat,generate +1 peer$/m)
    assert.match(models, /^nomic-embed-text:latest +embed +1 peer$/m)
  })

  it('a second node on the same data dir exits non-zero with a one-line reason; the first keeps answering', async () => {
    const before = await fs.readFile(path.join(dirs.a, 'node.json'), 'utf8')
    const r = await procs.run(['start', '--data', dirs.a, ...START_ARGS])
    const reason = oneLineReason(r, 'a second node on A\'s data dir')
    assert.match(reason, /in use/)
    assert.ok(reason.includes(dirs.a), `the reason names the data dir: ${reason}`)
    assert.ok(reason.includes(String(a.pid)), `the reason names the running node's pid: ${reason}`)

    assert.ok(a.running, 'the first node is still running')
    assert.equal(await fs.readFile(path.join(dirs.a, 'node.json'), 'utf8'), before, 'node.json of the first node untouched')
    assert.equal((await a.get('/realm/status')).peerId, a.info!.peerId)
    const status = await procs.run(['status', '--data', dirs.a, '--json'])
    assert.equal(status.code, 0, status.stderr)
    assert.equal(parseJson(status.stdout, 'realm status --json').peerId, a.info!.peerId)
  })

  it('a restart keeps the peer id: SIGTERM exits 0 and removes node.json, the next start has the same id', async () => {
    const first = b.info!
    const exit = await b.stop('SIGTERM')
    assert.deepEqual(exit, { code: 0, signal: null }, b.describe())
    assert.equal(await exists(path.join(dirs.b, 'node.json')), false, 'node.json removed on a clean stop')

    b = procs.start(dirs.b, ['--bootstrap', a.info!.multiaddrs[0], '--worker', `ollama=${ollama.url}`])
    const again = await b.started()
    assert.equal(again.peerId, first.peerId)
    assert.notEqual(again.pid, first.pid)
    assert.ok(b.stdout.includes(`RentAHal node ${first.peerId}`), b.stdout)
    assert.match(b.stdout, /gateway +http:\/\/127\.0\.0\.1:\d+\//)
  })

  it('SIGINT and SIGTERM stop a node cleanly: exit code 0, node.json removed, node.stopped last in its trace', async () => {
    const [exitA, exitB] = await Promise.all([a.stop('SIGINT'), b.stop('SIGTERM')])
    assert.deepEqual(exitA, { code: 0, signal: null }, a.describe())
    assert.deepEqual(exitB, { code: 0, signal: null }, b.describe())
    assert.match(a.stderr, /SIGINT, stopping/)
    assert.match(b.stderr, /SIGTERM, stopping/)
    for (const dir of [dirs.a, dirs.b]) {
      assert.equal(await exists(path.join(dir, 'node.json')), false, `node.json removed in ${dir}`)
      const events = await readEventsOf(path.join(dir, 'trace', 'trace.log'))
      const types = events.map(e => e.type)
      assert.equal(types.at(-1), 'node.stopped', types.join(', '))
      assert.ok(types.lastIndexOf('node.stopping') > types.lastIndexOf('node.started'), types.join(', '))
    }
  })

  it('a corrupted config.toml is repaired on start: reported on stderr and in the trace, valid values kept, the old file kept', async () => {
    // the node started (before): its stderr so far is the repair report, one `config:` line each
    const lines = reasonLines(repaired.stderr)
    const report = lines.filter(l => l.startsWith('config: '))
    assert.ok(report.length >= 2, `the repair is reported on stderr: ${repaired.stderr}`)
    assert.deepEqual(lines.slice(0, report.length), report, 'the report comes first, one line each')
    assert.ok(report.some(l => l.includes('presence.interval_ms')), report.join('\n'))
    assert.ok(report.some(l => /did not parse/.test(l)), report.join('\n'))

    const file = path.join(dirs.repaired, 'config.toml')
    const config: any = parseToml(await fs.readFile(file, 'utf8'))
    assert.equal(config.http.listen, '127.0.0.1:0')
    assert.equal(config.node.name, 'kept-name')
    assert.equal(config.presence.expire_intervals, 5)
    assert.equal(config.presence.interval_ms, 2000, 'the bad value is back to its default')
    assert.equal(config.trace.max_files, 5, 'missing settings are added with their defaults')
    assert.equal(await fs.readFile(file + '.broken', 'utf8'), BROKEN_CONFIG)

    const r = await procs.run(['log', '--json', '--data', dirs.repaired])
    assert.equal(r.code, 0, r.stderr)
    const events = r.stdout.trim().split('\n').map(l => JSON.parse(l))
    const event = events.find(e => e.type === 'config.repaired')
    assert.ok(event != null, `config.repaired in the trace: ${r.stdout.slice(0, 1000)}`)
    assert.equal(event.path, file)
    assert.ok(event.repairs.some((x: string) => x.includes('presence.interval_ms')), JSON.stringify(event.repairs))
    assert.ok(events.some(e => e.type === 'node.started'))
    assert.ok(repaired.running, 'the node runs with the repaired config')
  })

  it('the trace log rotates at its size limit; realm log reads across the files in order; --follow sees new events and stops on SIGINT', async () => {
    const traceDir = path.join(dirs.traced, 'trace')
    const follow = procs.spawn(['log', '--follow', '--json', '--data', dirs.traced])
    await follow.waitFor(() => follow.jsonLines().some(e => e.type === 'node.started'), 'realm log --follow to print the events so far')
    const seenBefore = follow.jsonLines().length

    // each time the backend goes down and comes back the worker writes a few events (its model
    // list among them); stop once the log has rotated twice, well before the oldest file would go
    const workersOk = async (n: number): Promise<boolean> => (await traced.get('/realm/status')).workersOk === n
    const until = Date.now() + ROTATION_DEADLINE_MS
    for (let cycle = 0; !await exists(path.join(traceDir, 'trace.2.log')); cycle++) {
      assert.ok(cycle < 20 && Date.now() < until, `the trace log rotated twice within 20 worker outages (${cycle} so far) and ${ROTATION_DEADLINE_MS} ms`)
      await traceOllama.setMode('down')
      await waitFor(async () => await workersOk(0), 'the worker benched')
      await traceOllama.setMode('ok')
      await waitFor(async () => await workersOk(1), 'the worker back')
      // its events reach the files within the flush interval
      await waitFor(async () => (await eventsIn(traceDir)).filter(e => e.type === 'worker.restored').length > cycle, 'the worker events written')
    }

    const files = await traceFiles(traceDir)
    const rotated = files.filter(f => path.basename(f) !== 'trace.log')
    assert.ok(rotated.length >= 2 && rotated.length <= TRACE_MAX_FILES, `rotated files: ${files.map(f => path.basename(f)).join(', ')}`)
    for (const f of rotated) {
      const { size } = await fs.stat(f)
      assert.ok(size > 0 && size <= TRACE_MAX_BYTES, `${path.basename(f)} is ${size} bytes`)
    }
    // what the files hold, oldest first
    const inFiles = await eventsIn(traceDir)
    assert.equal((await readEventsOf(rotated[0]))[0].type, 'config.repaired', 'the oldest file starts at the first start')

    // --follow saw the outages happen, and printed exactly what the files hold
    await follow.waitFor(() => follow.jsonLines().length >= inFiles.length, 'realm log --follow to catch up')
    const followed = follow.jsonLines()
    assert.ok(followed.slice(seenBefore).some(e => e.type === 'worker.benched'), 'a new worker.benched seen while following')
    const followExit = await follow.stop('SIGINT')
    assert.deepEqual(followExit, { code: 0, signal: null }, follow.describe())
    assert.deepEqual(followed, inFiles.slice(0, followed.length))

    const r = await procs.run(['log', '--json', '--data', dirs.traced])
    assert.equal(r.code, 0, r.stderr)
    const logged = r.stdout.trim().split('\n').map(l => JSON.parse(l))
    assert.deepEqual(logged, inFiles.slice(0, logged.length), 'realm log prints every file, oldest first')
    assert.ok(logged.length >= followed.length)
    for (let i = 1; i < logged.length; i++) assert.ok(logged[i - 1].time <= logged[i].time, `events in time order at ${i}`)
    const started = logged.findIndex(e => e.type === 'node.started')
    assert.ok(started >= 0 && started < logged.findIndex(e => e.type === 'worker.benched'), 'the first node.started comes first')
    assert.equal(logged[started].peerId, traced.info!.peerId)

    // the human form: one line per event, time first
    const human = await procs.run(['log', '--data', dirs.traced])
    assert.equal(human.code, 0, human.stderr)
    const humanLines = human.stdout.trim().split('\n')
    assert.ok(humanLines.length >= logged.length)
    assert.ok(humanLines[0].startsWith(`${logged[0].time} config.repaired `), humanLines[0])
  })

  it('bad flags and taken ports exit non-zero with a one-line reason', async () => {
    const httpPort = await holdPort()
    const p2pPort = await holdPort()
    try {
      const fresh = async (): Promise<string> => await procs.tempDir('realm-e2e-fail-')
      const badDirs = [await fresh(), await fresh()]
      const [nope, badHttp, badWorker, httpInUse, p2pInUse] = await Promise.all([
        procs.run(['start', '--data', await fresh(), ...START_ARGS, '--nope']),
        procs.run(['start', '--data', badDirs[0], ...START_ARGS, '--http', 'notaport']),
        procs.run(['start', '--data', badDirs[1], ...START_ARGS, '--worker', 'nonsense']),
        procs.run(['start', '--data', await fresh(), ...START_ARGS, '--http', `127.0.0.1:${httpPort.port}`]),
        procs.run(['start', '--data', await fresh(), ...START_ARGS, '--listen', `/ip4/127.0.0.1/tcp/${p2pPort.port}`])
      ])
      assert.match(oneLineReason(nope, '--nope'), /--nope/)
      assert.match(oneLineReason(badHttp, '--http notaport'), /--http "notaport"/)
      assert.match(oneLineReason(badWorker, '--worker nonsense'), /nonsense/)
      for (const r of [nope, badHttp, badWorker]) assert.equal(r.code, 2, 'a usage error exits 2')
      for (const dir of badDirs) assert.deepEqual(await fs.readdir(dir), [], 'a bad flag is refused before the data dir is touched')
      const http = oneLineReason(httpInUse, 'a taken HTTP port')
      assert.ok(http.includes(`:${httpPort.port}`) && /in use/.test(http), http)
      const p2p = oneLineReason(p2pInUse, 'a taken p2p port')
      assert.ok(p2p.includes(`/tcp/${p2pPort.port}`) && /EADDRINUSE|in use/.test(p2p), p2p)
      assert.doesNotMatch(p2p, /\bat .*:\d+:\d+/, 'no stack trace in the reason')
    } finally {
      await httpPort.close()
      await p2pPort.close()
    }
  })

  it('realm status with no node running exits non-zero with a one-line message', async () => {
    const dir = await procs.tempDir('realm-e2e-none-')
    const r = await procs.run(['status', '--data', dir])
    assert.match(oneLineReason(r, 'realm status with no node'), /no node is running/)
    assert.equal(r.stdout, '')
  })
})
