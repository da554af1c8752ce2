/**
 * Runs cases and keeps the score: stages reached, codes, findings (deduplicated, with their
 * reproduction), time, memory. Shared by the decoder and the HTTP fuzz.
 */
import v8 from 'node:v8'
import vm from 'node:vm'
import { Worker } from 'node:worker_threads'
import type { DecoderTarget, Finding, FuzzCase } from './targets.js'
import { preview } from './targets.js'

export interface TargetStats {
  target: string
  cases: number
  stages: readonly string[]
  stageCounts: Map<string, number>
  codeCounts: Map<string, number>
  kindCounts: Map<string, number>
  findings: Finding[]
  /** findings of the same kind and message seen again (not kept) */
  repeats: Map<string, number>
  ms: number
  slowestMs: number
  slowestIndex: number
}

export function newStats (target: string, stages: readonly string[]): TargetStats {
  return { target, cases: 0, stages, stageCounts: new Map(), codeCounts: new Map(), kindCounts: new Map(), findings: [], repeats: new Map(), ms: 0, slowestMs: 0, slowestIndex: -1 }
}

function bump (map: Map<string, number>, key: string, n = 1): void {
  map.set(key, (map.get(key) ?? 0) + n)
}

/** The same bug found by many cases: one key, numbers and quoted details left out */
export function findingKey (f: Pick<Finding, 'kind' | 'message' | 'target'>): string {
  return `${f.target}|${f.kind}|${f.message.replace(/"[^"]*"/g, '""').replace(/\d+/g, 'N').slice(0, 160)}`
}

/** Keeps the first few findings of each key; counts the rest */
export function addFinding (stats: TargetStats, f: Finding, keep = 3): void {
  const key = findingKey(f)
  const seen = stats.findings.filter(x => findingKey(x) === key).length
  if (seen < keep) stats.findings.push(f)
  else bump(stats.repeats, key)
}

export interface RunOptions {
  seed: number
  cases: number
  /** an async case slower than this is a hang; default 20 000 */
  caseTimeoutMs?: number
  /** a case slower than this is reported as slow; default 2 000 */
  slowMs?: number
  /** only this case index (a reproduction) */
  only?: number
  /** told of each case before it runs (the watchdog) */
  onCase?: (c: FuzzCase) => void
  /** progress every N cases */
  onProgress?: (done: number, stats: TargetStats) => void
  progressEvery?: number
}

async function withTimeout<T> (p: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<typeof TIMEOUT>(resolve => { timer = setTimeout(() => { resolve(TIMEOUT) }, ms) })
  try {
    return await Promise.race([p, t])
  } finally {
    clearTimeout(timer)
  }
}
const TIMEOUT = Symbol('timeout')

/** Runs `cases` cases of a decoder target */
export async function runDecoder (target: DecoderTarget, opts: RunOptions): Promise<TargetStats> {
  const stats = newStats(target.name, target.stages)
  await target.prepare()
  const t0 = performance.now()
  const first = opts.only ?? 0
  const last = opts.only !== undefined ? opts.only + 1 : opts.cases
  for (let i = first; i < last; i++) {
    const c = await target.generate(opts.seed, i)
    opts.onCase?.(c)
    const c0 = performance.now()
    const r = await withTimeout(target.execute(c), opts.caseTimeoutMs ?? 20_000)
    const ms = performance.now() - c0
    stats.cases++
    bump(stats.kindCounts, c.kind)
    if (ms > stats.slowestMs) {
      stats.slowestMs = ms
      stats.slowestIndex = i
    }
    const reproduce = (kind: Finding['kind'], message: string): Finding => ({ kind, target: target.name, seed: opts.seed, index: i, message, input: preview(c.bytes), notes: c.notes })
    if (r === TIMEOUT) {
      bump(stats.codeCounts, 'TIMEOUT')
      addFinding(stats, reproduce('hang', `no answer within ${opts.caseTimeoutMs ?? 20_000} ms`))
      continue
    }
    for (const s of r.stages) bump(stats.stageCounts, s)
    bump(stats.codeCounts, r.code)
    for (const f of r.findings) addFinding(stats, reproduce(f.kind, f.message))
    if (ms > (opts.slowMs ?? 2_000)) addFinding(stats, reproduce('slow', `one case took ${Math.round(ms)} ms`))
    if (opts.onProgress != null && (i + 1) % (opts.progressEvery ?? 1000) === 0) opts.onProgress(i + 1, stats)
  }
  stats.ms = performance.now() - t0
  return stats
}

// ---------------------------------------------------------------------------------------------
// memory

let gcFn: (() => void) | undefined
/** A full GC when it can be had (`--expose-gc` turned on at run time) */
export function collectGarbage (): void {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc')
      gcFn = vm.runInNewContext('gc') as () => void
    } catch {
      gcFn = () => {}
    }
  }
  gcFn()
}

export interface MemorySample { label: string, rssMiB: number, heapMiB: number }

export function memorySample (label: string, gc = false): MemorySample {
  if (gc) collectGarbage()
  const m = process.memoryUsage()
  return { label, rssMiB: Math.round(m.rss / 2 ** 20), heapMiB: Math.round(m.heapUsed / 2 ** 20) }
}

// ---------------------------------------------------------------------------------------------
// unhandled rejections and exceptions

export interface Unhandled { kind: 'rejection' | 'exception', message: string, at: string }

/** Records unhandled rejections / uncaught exceptions while installed (each one is a finding) */
export function trackUnhandled (): { list: Unhandled[], current: { value: string }, stop: () => void } {
  const list: Unhandled[] = []
  const current = { value: '' }
  const describe = (err: unknown): string => err instanceof Error ? `${err.name}: ${err.message.slice(0, 300)}\n${(err.stack ?? '').split('\n').slice(1, 6).join('\n')}` : String(err)
  const onRejection = (reason: unknown): void => { list.push({ kind: 'rejection', message: describe(reason), at: current.value }) }
  const onException = (err: unknown): void => { list.push({ kind: 'exception', message: describe(err), at: current.value }) }
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  return {
    list,
    current,
    stop: () => {
      process.off('unhandledRejection', onRejection)
      process.off('uncaughtException', onException)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// watchdog: a case stuck in synchronous code (a regex, a loop) cannot be timed out from the same
// thread; a worker thread watches a heartbeat and kills the process with the reproduction

const WATCHDOG_SOURCE = `
const { workerData } = require('node:worker_threads')
const fs = require('node:fs')
const beat = new Float64Array(workerData.beat)
const info = new Uint8Array(workerData.info)
setInterval(() => {
  if (beat[0] === 0 || Date.now() - beat[0] < workerData.hangMs) return
  const len = new DataView(workerData.info).getUint32(0)
  const text = Buffer.from(info.subarray(4, 4 + len)).toString('utf8')
  fs.writeSync(2, '\\nFINDING hang: one case has run ' + (Date.now() - beat[0]) + ' ms in synchronous code; reproduction:\\n' + text + '\\n')
  process.kill(process.pid, 'SIGKILL')
}, 500)
`

export interface Watchdog {
  /** a case starts: what to print if it never ends */
  beat: (what: string) => void
  /** between cases (nothing to watch) */
  idle: () => void
  stop: () => Promise<void>
}

export function startWatchdog (hangMs: number): Watchdog {
  const beatBuf = new SharedArrayBuffer(8)
  const infoBuf = new SharedArrayBuffer(8192)
  const beat = new Float64Array(beatBuf)
  const info = new Uint8Array(infoBuf)
  const worker = new Worker(WATCHDOG_SOURCE, { eval: true, workerData: { beat: beatBuf, info: infoBuf, hangMs } })
  worker.unref()
  const enc = new TextEncoder()
  return {
    beat (what) {
      const bytes = enc.encode(what).subarray(0, 8188)
      new DataView(infoBuf).setUint32(0, bytes.length)
      info.set(bytes, 4)
      beat[0] = Date.now()
    },
    idle () { beat[0] = 0 },
    async stop () { await worker.terminate() }
  }
}
