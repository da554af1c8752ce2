/**
 * Presence convergence: for a mesh of N nodes on loopback (in this process), how long from a
 * worker appearing (and disappearing) on one node until every node's peer table shows it, and
 * how long until a node that dies silently is dropped everywhere. Also the RSS of one idle node
 * process. Each figure is printed beside its reference, measured in the same run.
 *
 *   npm run bench:presence -- [--nodes 10,30] [--rounds 5]
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
    }
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

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '10,30' }, rounds: { type: 'string', default: '5' }, 'no-rss': { type: 'boolean' } } })
for (const n of values.nodes.split(',').map(Number)) await meshBench(n, Number(values.rounds))
if (values['no-rss'] !== true) await idleRss()
process.exit(0)
