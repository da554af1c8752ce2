/**
 * A node under attack: node A (with an Ollama stand-in worker) answers a loop of HTTP requests —
 * `GET /realm/status` and a small non-streamed `POST /api/chat` in turn — first idle, then while
 * an attacker process runs each attack, and prints the latency p50/p99 of each phase beside the
 * idle figures of the same run (goal: p99 under attack within 3× of idle).
 *
 * The attacker is a separate process (its crypto and gossip work would otherwise share A's one
 * thread and be counted as A's), and makes a fresh peer id whenever A has disconnected the last
 * one — the cheap-identity flood probation and scoring are meant to withstand:
 *   presence  signed, fresh beacons of its own as fast as it can
 *   garbage   malformed and oversized gossip, malformed and oversized task frames
 *   streams   300 task streams per identity, nothing sent on them
 *   liar      advertises the model A serves and fails every task it takes
 *
 *   npm run bench:hostile -- [--requests 300] [--warmup 30]
 */
import '../../node/shims.js'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { RealmNode } from '../../node/node.js'
import { startOllamaStandin } from '../../test/standins/ollama.js'
import { HostilePeer } from '../../test/helpers/hostile-peer.js'

const MODEL = 'llama3.2:1b'
const GOAL_P99_RATIO = 3
/** An attacker identity gives up on a connection it cannot open in this long */
const CONNECT_DEADLINE_MS = 5_000
/** An identity A has not dropped after this long is replaced anyway (the attack goes on) */
const IDENTITY_MAX_MS = 15_000
/** The attacker process must have its first identity attacking within this */
const ATTACKER_START_DEADLINE_MS = 60_000

type Attack = 'presence' | 'garbage' | 'streams' | 'liar'
const ATTACKS: Attack[] = ['presence', 'garbage', 'streams', 'liar']

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]
}

function ms (x: number): string {
  return `${x.toFixed(2).padStart(8)} ms`
}

// ---- the attacker process ----

async function attacker (mode: Attack, addr: string, target: string): Promise<void> {
  let identities = 0
  let stopping = false
  process.on('SIGTERM', () => { stopping = true })
  let attacking = false
  const report = (): void => { process.stdout.write(JSON.stringify({ identities, attacking }) + '\n') }
  while (!stopping) {
    const h = await HostilePeer.start()
    identities++
    const until = Date.now() + IDENTITY_MAX_MS
    const going = (): boolean => !stopping && Date.now() < until && h.connectedTo(target)
    try {
      await h.connect(addr, target, CONNECT_DEADLINE_MS)
      if (!attacking) {
        attacking = true
        report()
      }
      if (mode === 'presence') {
        while (going()) await h.floodPresence(50)
      } else if (mode === 'garbage') {
        while (going()) {
          await h.garbageGossip()
          await h.garbageTaskFrames(addr, 3)
        }
      } else if (mode === 'streams') {
        await h.streamFlood(addr, 300)
        while (going()) await new Promise(resolve => setTimeout(resolve, 100))
      } else {
        await h.failTasks('MODEL_NOT_FOUND')
        while (going()) {
          await h.publishBeacon(h.beacon([MODEL]))
          await new Promise(resolve => setTimeout(resolve, 500))
        }
      }
    } catch {
      // refused or cut off: the next identity tries
    }
    await h.stop().catch(() => {})
    report()
  }
  report()
  process.exit(0)
}

function startAttacker (mode: Attack, addr: string, target: string): { child: ChildProcess, identities: () => number, attacking: Promise<void> } {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], '--attacker', mode, '--addr', addr, '--target', target], { stdio: ['ignore', 'pipe', 'inherit'] })
  let identities = 0
  let buf = ''
  let started!: () => void
  const attacking = new Promise<void>((resolve, reject) => {
    started = resolve
    setTimeout(() => { reject(new Error(`the ${mode} attacker did not get going within ${ATTACKER_START_DEADLINE_MS} ms`)) }, ATTACKER_START_DEADLINE_MS).unref()
  })
  child.stdout?.on('data', (chunk: Buffer) => {
    buf += chunk.toString()
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      try {
        const m = JSON.parse(buf.slice(0, i))
        identities = m.identities
        if (m.attacking === true) started()
      } catch {}
      buf = buf.slice(i + 1)
    }
  })
  return { child, identities: () => identities, attacking }
}

// ---- the measuring side ----

interface Figures { status: number[], chat: number[], errors: number }

async function measure (base: string, requests: number): Promise<Figures> {
  const f: Figures = { status: [], chat: [], errors: 0 }
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: false })
  for (let i = 0; i < requests; i++) {
    try {
      let t0 = performance.now()
      const s = await fetch(base + '/realm/status')
      await s.arrayBuffer()
      f.status.push(performance.now() - t0)
      t0 = performance.now()
      const c = await fetch(base + '/api/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      await c.arrayBuffer()
      if (!c.ok) f.errors++
      f.chat.push(performance.now() - t0)
    } catch {
      f.errors++
    }
  }
  return f
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '300' },
      warmup: { type: 'string', default: '30' },
      attacker: { type: 'string' },
      addr: { type: 'string' },
      target: { type: 'string' }
    }
  })
  if (values.attacker !== undefined) {
    await attacker(values.attacker as Attack, values.addr!, values.target!)
    return
  }
  const requests = Number(values.requests)
  const standin = await startOllamaStandin({ reply: () => 'a short answer', tokenDelayMs: 0 })
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-bench-hostile-'))
  const node = await RealmNode.create({
    dataDir: dir,
    flags: { http: '127.0.0.1:0', listen: ['/ip4/127.0.0.1/tcp/0'], worker: [`ollama=${standin.url}`], detect: false, mdns: false },
    env: {},
    warn: () => {},
    configure: (config) => { config.p2p.dht = false }
  })
  await node.start()
  try {
    const addr = node.multiaddrs().find(a => a.includes('/tcp/') && !a.includes('/ws'))!
    const t0 = Date.now()
    while (!node.models().some(m => m.name === MODEL)) {
      if (Date.now() - t0 > 30_000) throw new Error('the worker never came up')
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    await measure(node.url, Number(values.warmup))
    const idle = await measure(node.url, requests)
    console.log(`\nnode A under attack: ${requests} × (GET /realm/status + POST /api/chat) per phase, one at a time, attacker in its own process`)
    const line = (label: string, f: Figures, extra = ''): void => {
      const sr = pct(f.status, 99) / pct(idle.status, 99)
      const cr = pct(f.chat, 99) / pct(idle.chat, 99)
      console.log(`  ${label.padEnd(9)} status p50 ${ms(pct(f.status, 50))} p99 ${ms(pct(f.status, 99))} (${sr.toFixed(2)}× idle)   chat p50 ${ms(pct(f.chat, 50))} p99 ${ms(pct(f.chat, 99))} (${cr.toFixed(2)}× idle)   errors ${f.errors}${extra}`)
      if (label !== 'idle') console.log(`  ${''.padEnd(9)} goal p99 ≤ ${GOAL_P99_RATIO}× idle: ${Math.max(sr, cr) <= GOAL_P99_RATIO ? 'met' : 'MISSED'}`)
    }
    line('idle', idle)
    for (const attack of ATTACKS) {
      const disconnectedBefore = node.scoreWatch.stats.disconnected
      const rejectedBefore = node.presence.stats.rejected
      const framesBefore = node.taskServer.stats.rejectedFrames
      const a = startAttacker(attack, addr, node.peerId)
      // measured once the attack is on (the attacker process takes a while to start)
      await a.attacking
      const f = await measure(node.url, requests)
      a.child.kill('SIGTERM')
      await new Promise(resolve => a.child.once('exit', resolve))
      line(attack, f, `   identities ${a.identities()}, disconnected by A ${node.scoreWatch.stats.disconnected - disconnectedBefore}, beacons rejected ${node.presence.stats.rejected - rejectedBefore}, task frames rejected ${node.taskServer.stats.rejectedFrames - framesBefore}`)
      // the next attack starts from a quiet node
      await new Promise(resolve => setTimeout(resolve, 1_000))
    }
    const idleAfter = await measure(node.url, requests)
    line('idle again', idleAfter)
  } finally {
    await node.stop()
    await standin.close()
    await fs.rm(dir, { recursive: true, force: true })
  }
}

main().then(() => { process.exit(0) }, (err) => {
  console.error(err)
  process.exit(1)
})
