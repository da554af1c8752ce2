/**
 * Gateway overhead: what a realm node and a mesh hop add to a streamed chat, next to what nginx
 * adds as a plain reverse proxy, all against one Ollama stand-in and measured in the same run.
 *
 * Paths (requests interleaved round-robin, one at a time, so noise hits every path alike):
 *   direct  POST /api/chat on the stand-in
 *   nginx   the same through nginx (proxy_buffering off, HTTP/1.1 upstream keepalive)
 *   node    node C's /api/chat, C has the worker
 *   mesh    node A's /api/chat, A has no worker and is connected to C (one hop)
 * Then scheduled tasks/s through node C with an instant backend: in process (`tasks.submit`),
 * with the real Ollama worker and with its `run` replaced by an in-process fake (scheduling
 * alone), and over HTTP, next to the same number of plain HTTP round trips to the stand-in.
 *
 * The stand-in runs in a child process of its own, as a backend does: its pacing is then the
 * same for every path, whatever the nodes (which share this process with the client) cost the
 * event loop. (In one process, every token's relay work delayed the stand-in's next timer, and a
 * path's throughput measured its CPU cost twice.)
 *
 * With an instant backend every token of an answer reaches the node in one burst, and the client
 * reads nothing until the burst is relayed, so TTFT there is the relay time of the whole answer.
 * The TTFT goals are judged on the paced run.
 *
 *   npm run bench:overhead -- [--requests 200] [--tokens 100] [--token-ms 5] [--tasks 2000] [--concurrency 32] [--slots N]
 */
import '../../node/shims.js'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { RealmNode } from '../../node/node.js'
import type { TaskOutput } from '../../protocol/task.js'
import type { RunContext, Worker } from '../../node/workers/index.js'
import { startOllamaStandin } from '../../test/standins/ollama.js'
import { NGINX_BIN, NGINX_PACKAGE, nginxAvailable, startNginx, type NginxProxy } from './nginx.js'

const MODEL = 'llama3.2:1b'
/** Requests per path before measuring: connections opened, code paths compiled */
const WARMUP_REQUESTS = 20
/** Tasks before each tasks/s measurement */
const WARMUP_TASKS = 200
/** How long the mesh may take to show C's worker on A */
const MESH_DEADLINE_MS = 60_000
/** Goals (DESIGN.md) */
const GOAL_GATEWAY_VS_NGINX = 3
const GOAL_HOP_MS = 2
const GOAL_THROUGHPUT_PCT = 95
const GOAL_TASKS_PER_S = 2_000

type PathName = 'direct' | 'nginx' | 'node' | 'mesh'

interface StreamSample {
  /** request sent → first token parsed */
  ttftMs: number
  /** request sent → last token parsed */
  lastMs: number
}

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]
}

function ms (x: number, digits = 2): string {
  return `${x.toFixed(digits).padStart(7)} ms`
}

function verdict (ok: boolean): string {
  return ok ? 'met' : 'MISSED'
}

function replyOf (tokens: number): string {
  return Array.from({ length: tokens }, (_, i) => ` t${i}`).join('')
}

/** What the bench tells the stand-in's process: how many tokens, how far apart */
interface StandinSettings { tokens: number, tokenDelayMs: number }

/** The stand-in in its child process, set over IPC */
interface RemoteStandin {
  url: string
  set: (settings: StandinSettings) => Promise<void>
  close: () => Promise<void>
}

/** Child side: an Ollama stand-in answering `replyOf(tokens)`, settings from the parent */
async function standinChild (): Promise<void> {
  let tokens = 1
  const standin = await startOllamaStandin({ reply: () => replyOf(tokens) })
  process.on('message', (msg: StandinSettings) => {
    tokens = msg.tokens
    standin.tokenDelayMs = msg.tokenDelayMs
    process.send?.('set')
  })
  process.on('disconnect', () => { void standin.close().finally(() => process.exit(0)) })
  process.send?.({ url: standin.url })
}

async function startStandinProcess (): Promise<RemoteStandin> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--child', 'standin'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (msg: { url: string }) => { resolve(msg.url) })
    child.once('exit', (code) => { reject(new Error(`the stand-in process exited (${String(code)})`)) })
  })
  return {
    url,
    set: async (settings) => {
      const ack = new Promise<void>(resolve => { child.once('message', () => { resolve() }) })
      child.send(settings)
      await ack
    },
    close: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
      child.disconnect()
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 5_000)
      await exited
      clearTimeout(timer)
    }
  }
}

function chatBody (stream: boolean): string {
  return JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Why is the sky blue?' }], stream })
}

/** One streamed `/api/chat`, read line by line as an Ollama client does */
async function streamChat (base: string, expected: string): Promise<StreamSample> {
  const t0 = performance.now()
  const res = await fetch(base + '/api/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody(true) })
  if (!res.ok || res.body == null) throw new Error(`${base}/api/chat: HTTP ${res.status} ${await res.text()}`)
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  let buf = ''
  let text = ''
  let first: number | undefined
  let last = t0
  let done = false
  for (;;) {
    const { value, done: end } = await reader.read()
    if (end) break
    buf += decoder.decode(value, { stream: true })
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      if (line === '') continue
      const obj = JSON.parse(line)
      if (obj.error !== undefined) throw new Error(`${base}/api/chat: ${String(obj.error)}`)
      const content: string = obj.message?.content ?? ''
      if (content !== '') {
        last = performance.now()
        first ??= last
        text += content
      }
      if (obj.done === true) done = true
    }
  }
  if (!done || text !== expected || first === undefined) throw new Error(`${base}/api/chat: incomplete stream (${text.length}/${expected.length} chars, done ${String(done)})`)
  return { ttftMs: first - t0, lastMs: last - t0 }
}

/** One non-streamed `/api/chat` with its own requester (a bearer key) */
async function plainChat (base: string, key: string): Promise<void> {
  const res = await fetch(base + '/api/chat', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: chatBody(false) })
  const body = await res.json() as { done?: boolean, error?: string }
  if (!res.ok || body.done !== true) throw new Error(`${base}/api/chat: HTTP ${res.status} ${body.error ?? ''}`)
}

/** `total` calls of `fn`, `concurrency` at a time; calls per second */
async function perSecond (total: number, concurrency: number, fn: (lane: number) => Promise<void>): Promise<number> {
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async (_, lane) => {
    while (next < total) {
      next++
      await fn(lane)
    }
  }))
  return total / ((performance.now() - t0) / 1000)
}

async function startNode (dir: string, bootstrap: string[], workers: string[], slots?: number): Promise<RealmNode> {
  const node = await RealmNode.create({
    dataDir: dir,
    flags: { http: '127.0.0.1:0', listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, worker: workers, detect: false, mdns: false },
    env: {},
    warn: () => {},
    configure: (config) => { if (slots !== undefined) config.workers.concurrency = slots }
  })
  await node.start()
  return node
}

async function until (what: string, pred: () => boolean, deadlineMs: number): Promise<void> {
  const t0 = performance.now()
  while (!pred()) {
    if (performance.now() - t0 > deadlineMs) throw new Error(`${what} not within ${deadlineMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

interface Variant {
  label: string
  tokens: number
  tokenMs: number
  /** judge the TTFT goals on this run */
  ttftGoals: boolean
}

async function ttftBench (standin: RemoteStandin, bases: Map<PathName, string>, variant: Variant, requests: number): Promise<void> {
  await standin.set({ tokens: variant.tokens, tokenDelayMs: variant.tokenMs })
  const expected = replyOf(variant.tokens)
  const paths = [...bases.keys()]
  for (let i = 0; i < WARMUP_REQUESTS; i++) {
    for (const p of paths) await streamChat(bases.get(p)!, expected)
  }
  const samples = new Map<PathName, StreamSample[]>(paths.map(p => [p, []]))
  for (let i = 0; i < requests; i++) {
    for (const p of paths) samples.get(p)!.push(await streamChat(bases.get(p)!, expected))
  }

  const ttft50 = (p: PathName): number => pct(samples.get(p)!.map(s => s.ttftMs), 50)
  const rate = (p: PathName): number => pct(samples.get(p)!.map(s => variant.tokens / (s.lastMs / 1000)), 50)
  console.log(`\n${variant.label}: ${variant.tokens} tokens, ${variant.tokenMs} ms apart; N = ${requests} sequential requests per path (+${WARMUP_REQUESTS} warm-up), interleaved`)
  console.log('  path      TTFT p50     TTFT p95     last token p50   tok/s p50 (tokens ÷ time to last token)')
  for (const p of paths) {
    const s = samples.get(p)!
    console.log(`  ${p.padEnd(7)} ${ms(ttft50(p))}   ${ms(pct(s.map(x => x.ttftMs), 95))}   ${ms(pct(s.map(x => x.lastMs), 50), 1)}       ${rate(p).toFixed(0).padStart(7)}`)
  }
  const direct = ttft50('direct')
  const nodeAdds = ttft50('node') - direct
  if (!variant.ttftGoals) {
    console.log('  (TTFT here is the relay time of the whole burst, see the header: TTFT goals judged on the paced run)')
  } else if (bases.has('nginx')) {
    const nginxAdds = ttft50('nginx') - direct
    // nginx's cost can drown in the noise of a busy machine: then only a node that adds nothing meets the goal
    const ok = nginxAdds > 0 ? nodeAdds <= GOAL_GATEWAY_VS_NGINX * nginxAdds : nodeAdds <= 0
    const ratio = nginxAdds > 0 ? `${(nodeAdds / nginxAdds).toFixed(1)}× nginx` : 'nginx below noise'
    console.log(`  gateway overhead on TTFT p50: node adds ${ms(nodeAdds)}, nginx adds ${ms(nginxAdds)} → ${ratio}   goal ≤ ${GOAL_GATEWAY_VS_NGINX}× nginx: ${verdict(ok)}`)
  } else {
    console.log(`  gateway overhead on TTFT p50: node adds ${ms(nodeAdds)} (no nginx reference: see above)`)
  }
  const hop = ttft50('mesh') - ttft50('node')
  if (variant.ttftGoals) console.log(`  mesh hop extra TTFT p50: ${ms(hop)}   goal ≤ ${GOAL_HOP_MS} ms: ${verdict(hop <= GOAL_HOP_MS)}`)
  for (const p of ['node', 'mesh'] as const) {
    const share = rate(p) / rate('direct') * 100
    console.log(`  throughput ${p.padEnd(4)} ${share.toFixed(1).padStart(5)} % of direct   goal ≥ ${GOAL_THROUGHPUT_PCT} %: ${verdict(share >= GOAL_THROUGHPUT_PCT)}`)
  }
}

/** The worker's run replaced by one that answers at once, in process: scheduling without HTTP */
function fakeRun (worker: Worker): () => void {
  const real = worker.run
  worker.run = async (_task, ctx: RunContext): Promise<TaskOutput> => {
    ctx.emit({ type: 'token', text: 'ok' })
    return { text: 'ok', doneReason: 'stop', usage: { promptTokens: 1, completionTokens: 1, units: 2 } }
  }
  return () => { worker.run = real }
}

async function tasksBench (standin: RemoteStandin, node: RealmNode, tasks: number, concurrency: number): Promise<void> {
  await standin.set({ tokens: 1, tokenDelayMs: 0 })
  const submit = async (lane: number): Promise<void> => {
    const run = node.tasks.submit({ kind: 'chat', model: MODEL, input: { messages: [{ role: 'user', content: 'hi' }] } }, { requester: `bench-${lane}` })
    await run.result
  }
  const measure = async (fn: (lane: number) => Promise<void>): Promise<number> => {
    await perSecond(WARMUP_TASKS, concurrency, fn)
    return await perSecond(tasks, concurrency, fn)
  }
  // scheduling alone first: the headline, measured before the other lines fill the database
  const restore = fakeRun(node.workers[0])
  let fake: number
  try {
    fake = await measure(submit)
  } finally {
    restore()
  }
  const inProcess = await measure(submit)
  const viaHttp = await measure(async lane => { await plainChat(node.url, `bench-${lane}`) })
  const httpRef = await measure(async lane => { await plainChat(standin.url, `bench-${lane}`) })

  const slots = node.config.workers.concurrency
  const ofRef = (x: number): string => `${(x / httpRef * 100).toFixed(0).padStart(3)} % of the reference`
  console.log(`\nScheduled tasks/s through node C, instant backend (1-token chat); N = ${tasks} tasks per line (+${WARMUP_TASKS} warm-up), ${concurrency} at a time from ${concurrency} requesters; worker concurrency ${slots} (--slots)`)
  console.log(`  tasks.submit, worker.run replaced by an in-process fake (scheduling only) ${fake.toFixed(0).padStart(6)} /s   goal ≥ ${GOAL_TASKS_PER_S}: ${verdict(fake >= GOAL_TASKS_PER_S)}`)
  console.log(`  tasks.submit, the Ollama worker → stand-in over HTTP                    ${inProcess.toFixed(0).padStart(6)} /s   goal ≥ ${GOAL_TASKS_PER_S}: ${verdict(inProcess >= GOAL_TASKS_PER_S)}; ${ofRef(inProcess)}`)
  console.log(`  HTTP POST /api/chat (stream:false) on the node                          ${viaHttp.toFixed(0).padStart(6)} /s   goal ≥ ${GOAL_TASKS_PER_S}: ${verdict(viaHttp >= GOAL_TASKS_PER_S)}; ${ofRef(viaHttp)}`)
  console.log(`  reference: the same HTTP POST /api/chat straight to the stand-in         ${httpRef.toFixed(0).padStart(6)} /s`)
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '200' },
      tokens: { type: 'string', default: '100' },
      'token-ms': { type: 'string', default: '5' },
      tasks: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '32' },
      slots: { type: 'string' },
      child: { type: 'string' }
    }
  })
  if (values.child === 'standin') {
    await standinChild()
    return
  }
  const requests = Number(values.requests)
  const tokens = Number(values.tokens)
  const tokenMs = Number(values['token-ms'])
  const tasks = Number(values.tasks)
  const concurrency = Number(values.concurrency)
  const slots = values.slots !== undefined ? Number(values.slots) : undefined
  for (const [name, v] of Object.entries({ requests, tokens, 'token-ms': tokenMs, tasks, concurrency, ...(slots !== undefined ? { slots } : {}) })) {
    if (!Number.isFinite(v) || v < (name === 'token-ms' ? 0 : 1)) throw new Error(`--${name}: not a valid number`)
  }

  const standin = await startStandinProcess()
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-bench-overhead-'))
  const nodes: RealmNode[] = []
  let nginx: NginxProxy | undefined
  const cleanup = async (): Promise<void> => {
    await Promise.all(nodes.map(async n => { await n.stop().catch(() => {}) }))
    await nginx?.stop().catch(() => {})
    await standin.close()
    await fs.rm(base, { recursive: true, force: true })
  }
  const onSignal = (): void => { void cleanup().finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    if (await nginxAvailable()) {
      nginx = await startNginx(standin.url)
    } else {
      console.log(`nginx not found at ${NGINX_BIN}: install the Debian package '${NGINX_PACKAGE}' (apt-get install -y --no-install-recommends ${NGINX_PACKAGE}); the nginx reference is skipped`)
    }
    const c = await startNode(path.join(base, 'c'), [], [`ollama=${standin.url}`], slots)
    nodes.push(c)
    const a = await startNode(path.join(base, 'a'), [c.multiaddrs()[0]], [])
    nodes.push(a)
    await until('worker on C', () => c.tasks.hasModel('chat', MODEL), MESH_DEADLINE_MS)
    await until("C's worker seen on A", () => a.tasks.hasModel('chat', MODEL), MESH_DEADLINE_MS)

    const bases = new Map<PathName, string>([['direct', standin.url]])
    if (nginx != null) bases.set('nginx', nginx.url)
    bases.set('node', c.url)
    bases.set('mesh', a.url)

    console.log(`Gateway overhead, node ${process.version}, ${os.cpus().length} cores (load average ${os.loadavg()[0].toFixed(1)}); client and nodes in this process, the Ollama stand-in in a child process; nginx ${nginx != null ? 'as a child process (1 worker)' : 'absent'}`)
    await ttftBench(standin, bases, { label: 'Paced', tokens, tokenMs, ttftGoals: tokenMs > 0 }, requests)
    if (tokenMs > 0) await ttftBench(standin, bases, { label: 'Instant', tokens, tokenMs: 0, ttftGoals: false }, requests)

    await tasksBench(standin, c, tasks, concurrency)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await cleanup()
  }
}

await main()
