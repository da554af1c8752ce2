/**
 * Presence convergence: for a mesh of N nodes on loopback, how long from a worker appearing (and
 * disappearing) on one node until every node's peer table shows it, and how long until a node
 * that dies silently is dropped everywhere. Also the RSS of one idle node process. Each figure
 * is printed beside its reference, measured in the same run.
 *
 * By default every node is its own `realm start` process, as deployed, and the times come from
 * the nodes' own trace logs (each records when it saw the change). `--in-process` runs all the
 * nodes in this one process instead (one event loop for all: slower per node at large N).
 *
 *   npm run bench:presence -- [--nodes 10,30] [--rounds 5] [--in-process]
 */
import '../../node/shims.js'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { RealmNode } from '../../node/node.js'
import { HEALTH_INTERVAL_MS } from '../../node/presence/service.js'
import type { RealmEvent } from '../../node/events/index.js'
import { startOllamaStandin } from '../../test/standins/ollama.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', ...(import.meta.url.includes('/dist/') ? ['..'] : []))

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]
}

function fmt (ms: number): string {
  return `${ms.toFixed(0).padStart(6)} ms`
}

/** progress on stderr, so a long run shows where it is (the figures go to stdout) */
function progress (line: string): void {
  process.stderr.write(`  [${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

async function startNode (dir: string, bootstrap: string[], workers: string[]): Promise<RealmNode> {
  const node = await RealmNode.create({
    dataDir: dir,
    flags: { http: '127.0.0.1:0', listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, worker: workers, detect: false, mdns: false },
    env: {},
    warn: () => {},
    // benched/restored quickly so the measurement starts soon after the backend changes
    workerInit: { probeIntervalMs: 200, backoffBaseMs: 100, backoffMaxMs: 200 }
  })
  await node.start()
  return node
}

/** Wait until `pred` has been true for every node in `nodes`, recording when each became true */
async function timesUntil (nodes: RealmNode[], t0: number, pred: (n: RealmNode, e: RealmEvent | undefined) => boolean, deadlineMs = 30_000): Promise<number[]> {
  const times = new Map<RealmNode, number>()
  const offs: Array<() => void> = []
  await new Promise<void>((resolve, reject) => {
    const check = (n: RealmNode, e?: RealmEvent): void => {
      if (!times.has(n) && pred(n, e)) times.set(n, performance.now() - t0)
      if (times.size === nodes.length) resolve()
    }
    for (const n of nodes) {
      check(n)
      offs.push(n.events.subscribe(e => { check(n, e) }))
    }
    const poll = setInterval(() => { for (const n of nodes) check(n) }, 20)
    offs.push(() => { clearInterval(poll) })
    setTimeout(() => { reject(new Error(`only ${times.size}/${nodes.length} nodes converged within ${deadlineMs} ms`)) }, deadlineMs).unref()
  }).finally(() => { for (const off of offs) off() })
  return [...times.values()]
}

function workerOk (n: RealmNode, peerId: string): boolean {
  const w = n.presence.table.get(peerId)?.beacon.workers[0]
  return w?.health.state === 'ok' && w.models.length > 0
}

async function meshBench (n: number, rounds: number): Promise<void> {
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-bench-presence-'))
  const ollama = await startOllamaStandin()
  const nodes: RealmNode[] = []
  try {
    // each node joins through up to two earlier nodes: a connected, not fully meshed graph
    for (let i = 0; i < n; i++) {
      const picks = nodes.length === 0 ? [] : [...new Set([nodes[Math.floor(Math.random() * nodes.length)], nodes[Math.floor(Math.random() * nodes.length)]])]
      const boot = picks.map(p => `${p.multiaddrs()[0]}`)
      nodes.push(await startNode(path.join(base, `n${i}`), boot, i === n - 1 ? [`ollama=${ollama.url}`] : []))
      progress(`node ${i + 1}/${n} started`)
    }
    progress('waiting for every node to see the worker')
    const origin = nodes[n - 1]
    const others = nodes.slice(0, -1)
    await timesUntil(others, performance.now(), (x) => workerOk(x, origin.peerId), 60_000)

    // reference: one libp2p ping between two connected nodes of this mesh
    const pings: number[] = []
    for (const x of others) {
      const conn = x.libp2p.getConnections()[0]
      if (conn == null) continue
      try {
        pings.push(await x.libp2p.services.ping.ping(conn.remotePeer))
      } catch {
        // a connection being pruned right now: skip it
      }
      if (pings.length >= 10) break
    }

    const appear: number[] = []
    const disappear: number[] = []
    for (let r = 0; r < rounds; r++) {
      progress(`round ${r + 1}/${rounds}`)
      // the backend dies: from the moment the origin benches it until every node sees that
      const benched = new Promise<number>(resolve => { const off = origin.events.subscribe(e => { if (e.type === 'worker.benched') { off(); resolve(performance.now()) } }) })
      ollama.setMode('down')
      const tb = await benched
      disappear.push(...await timesUntil(others, tb, (x) => !workerOk(x, origin.peerId)))
      const restored = new Promise<number>(resolve => { const off = origin.events.subscribe(e => { if (e.type === 'worker.restored') { off(); resolve(performance.now()) } }) })
      ollama.setMode('ok')
      const tr = await restored
      appear.push(...await timesUntil(others, tr, (x) => workerOk(x, origin.peerId)))
    }

    // a node that dies without a word: dropped after missing beacons
    const victim = nodes[Math.floor(n / 2)]
    const rest = nodes.filter(x => x !== victim)
    ;(victim.presence as any).publish = async () => {}
    await victim.libp2p.stop()
    const tk = performance.now()
    const expire = await timesUntil(rest, tk, (x) => x.presence.table.get(victim.peerId) == null, 60_000)

    console.log(`\nN = ${n} nodes (in one process), beacon interval ${HEALTH_INTERVAL_MS} ms, ${rounds} rounds`)
    console.log(`  worker appears    p50 ${fmt(pct(appear, 50))}   max ${fmt(Math.max(...appear))}   goal ≤ 2000 ms`)
    console.log(`  worker disappears p50 ${fmt(pct(disappear, 50))}   max ${fmt(Math.max(...disappear))}   goal ≤ ${3 * HEALTH_INTERVAL_MS} ms`)
    console.log(`  silent node gone  p50 ${fmt(pct(expire, 50))}   max ${fmt(Math.max(...expire))}   goal ≤ ${3 * HEALTH_INTERVAL_MS} ms (+1 interval of tick granularity)`)
    console.log(`  reference: libp2p ping between neighbours p50 ${fmt(pct(pings, 50))}   max ${fmt(Math.max(...pings))}`)
  } finally {
    await Promise.all(nodes.map(async x => { await x.stop().catch(() => {}) }))
    await ollama.close()
    await fs.rm(base, { recursive: true, force: true })
  }
}

async function rssOf (pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return kb / 1024
}

async function idleRss (): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-bench-rss-'))
  const node = spawn(process.execPath, [path.join(ROOT, 'bin', 'realm.js'), 'start', '--data', dir, '--no-detect', '--no-mdns', '--http', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'], { stdio: 'ignore' })
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
  try {
    for (let i = 0; i < 600; i++) {
      if (await fs.stat(path.join(dir, 'node.json')).then(() => true, () => false)) break
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    await new Promise(resolve => setTimeout(resolve, 10_000))
    console.log(`\nidle node RSS ${(await rssOf(node.pid!)).toFixed(0)} MB (goal ≤ 150 MB); reference: bare node process ${(await rssOf(bare.pid!)).toFixed(0)} MB`)
  } finally {
    node.kill('SIGTERM')
    bare.kill('SIGKILL')
    await new Promise(resolve => node.once('exit', resolve))
    await fs.rm(dir, { recursive: true, force: true })
  }
}

interface ProcNode { dir: string, child: ReturnType<typeof spawn>, peerId: string, http: string, addr: string }

async function readTraceEvents (dir: string): Promise<any[]> {
  const { readTrace } = await import('../../node/trace/index.js')
  const out: any[] = []
  for await (const e of readTrace(path.join(dir, 'trace'))) out.push(e)
  return out
}

async function startProc (dir: string, bootstrap: string[], workers: string[]): Promise<ProcNode> {
  await fs.mkdir(dir, { recursive: true })
  const args = [path.join(ROOT, 'bin', 'realm.js'), 'start', '--data', dir, '--no-detect', '--no-mdns', '--http', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0']
  for (const b of bootstrap) args.push('--bootstrap', b)
  for (const w of workers) args.push('--worker', w)
  // the bench measures the default interval; probes are fast so backend changes are seen at once
  const child = spawn(process.execPath, args, { stdio: 'ignore' })
  for (let i = 0; i < 2400; i++) {
    const info = await fs.readFile(path.join(dir, 'node.json'), 'utf8').then(t => JSON.parse(t), () => undefined)
    if (info?.pid === child.pid) return { dir, child, peerId: info.peerId, http: info.http, addr: info.multiaddrs[0] }
    if (child.exitCode != null) throw new Error(`node in ${dir} exited (${child.exitCode})`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`node in ${dir} did not start`)
}

async function until (what: string, check: () => Promise<boolean>, deadlineMs = 120_000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

async function processBench (n: number, rounds: number): Promise<void> {
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-bench-presence-'))
  const ollama = await startOllamaStandin()
  const nodes: ProcNode[] = []
  try {
    for (let i = 0; i < n; i++) {
      const picks = nodes.length === 0 ? [] : [...new Set([nodes[Math.floor(Math.random() * nodes.length)], nodes[Math.floor(Math.random() * nodes.length)]])]
      const dir = path.join(base, `n${i}`)
      // a fast probe on the worker node, written to its config before the first start
      if (i === n - 1) {
        await fs.mkdir(dir, { recursive: true })
        await fs.writeFile(path.join(dir, 'config.toml'), '[workers]\nprobe_interval_ms = 200\n')
      }
      nodes.push(await startProc(dir, picks.map(p => p.addr), i === n - 1 ? [`ollama=${ollama.url}`] : []))
      progress(`node ${i + 1}/${n} started (pid ${nodes[i].child.pid})`)
    }
    progress('waiting for every node to see the worker')
    const origin = nodes[n - 1]
    const others = nodes.slice(0, -1)
    const modelsOn = async (x: ProcNode): Promise<string[]> => (await (await fetch(x.http + '/realm/models')).json()).models.map((m: any) => m.name)
    await until('every node to see the worker', async () => (await Promise.all(others.map(modelsOn))).every(m => m.includes('llama3.2:1b')), 300_000)

    const marks: Array<{ kind: 'down' | 'up' }> = []
    for (let r = 0; r < rounds; r++) {
      progress(`round ${r + 1}/${rounds}`)
      ollama.setMode('down')
      marks.push({ kind: 'down' })
      await until('the worker to leave every node', async () => (await Promise.all(others.map(modelsOn))).every(m => !m.includes('llama3.2:1b')))
      ollama.setMode('ok')
      marks.push({ kind: 'up' })
      await until('the worker back on every node', async () => (await Promise.all(others.map(modelsOn))).every(m => m.includes('llama3.2:1b')))
    }
    const victim = nodes[Math.floor(n / 2)]
    const killedAt = Date.now()
    victim.child.kill('SIGKILL')
    const rest = nodes.filter(x => x !== victim)
    await until('the dead node to leave every table', async () => (await Promise.all(rest.map(async x => (await (await fetch(x.http + '/realm/peers')).json()).peers.map((p: any) => p.peerId)))).every(ps => !ps.includes(victim.peerId)))

    // the times, from each node's own trace log
    const originEvents = await readTraceEvents(origin.dir)
    const changes = originEvents.filter(e => e.type === 'worker.benched' || e.type === 'worker.restored').map(e => ({ up: e.type === 'worker.restored', at: Date.parse(e.time) }))
    const appear: number[] = []
    const disappear: number[] = []
    const expire: number[] = []
    for (const x of others) {
      const events = await readTraceEvents(x.dir)
      const views = events.filter(e => (e.type === 'presence.update' || e.type === 'peer.join') && e.peerId === origin.peerId)
        .map(e => ({ at: Date.parse(e.time), ok: e.workers?.[0]?.health?.state === 'ok' && e.workers[0].models.length > 0 }))
      for (const change of changes) {
        const seen = views.find(v => v.at >= change.at && v.ok === change.up)
        if (seen != null) (change.up ? appear : disappear).push(seen.at - change.at)
      }
      if (x !== victim) {
        const gone = events.find(e => e.type === 'peer.leave' && e.peerId === victim.peerId && Date.parse(e.time) >= killedAt)
        if (gone != null) expire.push(Date.parse(gone.time) - killedAt)
      }
    }
    const pings: number[] = []
    const alive = rest.filter(x => x !== origin)
    for (let i = 0; i < 20; i++) {
      const t = performance.now()
      await fetch(alive[i % alive.length].http + '/realm/status')
      pings.push(performance.now() - t)
    }
    console.log(`\nN = ${n} nodes (one process each), beacon interval ${HEALTH_INTERVAL_MS} ms, ${rounds} rounds, ${appear.length + disappear.length} observations`)
    console.log(`  worker appears    p50 ${fmt(pct(appear, 50))}   max ${fmt(Math.max(...appear))}   goal ≤ 2000 ms`)
    console.log(`  worker disappears p50 ${fmt(pct(disappear, 50))}   max ${fmt(Math.max(...disappear))}   goal ≤ ${3 * HEALTH_INTERVAL_MS} ms`)
    console.log(`  silent node gone  p50 ${fmt(pct(expire, 50))}   max ${fmt(Math.max(...expire))}   goal ≤ ${3 * HEALTH_INTERVAL_MS} ms`)
    console.log(`  reference: one HTTP round trip to a node in this mesh p50 ${fmt(pct(pings, 50))}   max ${fmt(Math.max(...pings))}; beacon interval ${HEALTH_INTERVAL_MS} ms`)
  } finally {
    for (const x of nodes) x.child.kill('SIGTERM')
    await Promise.all(nodes.map(async x => { if (x.child.exitCode == null && x.child.signalCode == null) await new Promise(resolve => x.child.once('exit', resolve)) }))
    await ollama.close()
    await fs.rm(base, { recursive: true, force: true })
  }
}

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '10,30' }, rounds: { type: 'string', default: '5' }, 'no-rss': { type: 'boolean' }, 'in-process': { type: 'boolean' } } })
for (const n of values.nodes.split(',').map(Number)) {
  if (values['in-process'] === true) await meshBench(n, Number(values.rounds))
  else await processBench(n, Number(values.rounds))
}
if (values['no-rss'] !== true) await idleRss()
process.exit(0)
