/**
 * One fuzz run, as the script (`npm run fuzz`) and the CI sample (test/fuzz) both make it: the
 * decoder targets case by case in this process (a watchdog thread catches a case stuck in
 * synchronous code), then every HTTP route of a real node; unhandled rejections and uncaught
 * exceptions are recorded throughout. The report says, per target, how many cases reached each
 * stage and each error code, and lists the findings with how to replay each one.
 */
import type { DecoderTarget, Finding } from './targets.js'
import { decoderTargets } from './targets.js'
import { eventsWsTarget, speechWsTarget, startSpeechServer, type SpeechServer } from './ws.js'
import { ROUTES, runHttp, startFuzzNode, type FuzzNode } from './http.js'
import { addFinding, runDecoder, startWatchdog, trackUnhandled, type TargetStats, type Watchdog } from './runner.js'

/** Findings that only warn (a loaded machine makes them): everything else fails the run */
export const WARNING_KINDS: ReadonlySet<Finding['kind']> = new Set(['slow', 'memory'])

export interface FuzzOptions {
  seed: number
  /** cases per decoder target */
  cases: number
  /** cases per HTTP route (0: none) */
  httpCases: number
  /** only targets / routes whose name includes this (`http` selects every route) */
  target?: string
  /** only this case index (a reproduction) */
  only?: number
  /** told what is going on, for progress on long runs */
  progress?: (line: string) => void
  /** extra decoder targets (the test's deliberately broken one) */
  extraTargets?: DecoderTarget[]
  /** a case stuck this long in synchronous code kills the process with its reproduction; 0: no watchdog */
  hangMs?: number
  /** HTTP requests at once */
  concurrency?: number
}

export interface FuzzReport {
  seed: number
  stats: TargetStats[]
  /** findings about the run as a whole: unhandled rejections, a node that stopped answering */
  global: Finding[]
  ms: number
}

function selected (name: string, filter: string | undefined, http: boolean): boolean {
  if (filter === undefined) return true
  return name.includes(filter) || (http && filter === 'http')
}

export async function runFuzz (opts: FuzzOptions): Promise<FuzzReport> {
  const t0 = performance.now()
  const progress = opts.progress ?? (() => {})
  const unhandled = trackUnhandled()
  const watchdog: Watchdog | undefined = (opts.hangMs ?? 0) > 0 ? startWatchdog(opts.hangMs!) : undefined
  const routes = ROUTES.filter(r => selected(r.name, opts.target, true))
  let node: FuzzNode | undefined
  let speech: SpeechServer | undefined
  const stats: TargetStats[] = []
  const global: Finding[] = []
  try {
    const targets = [
      ...await decoderTargets(),
      eventsWsTarget(() => `ws://${node!.host}:${node!.port}`, () => node!.userCookie),
      speechWsTarget(() => speech!.url),
      ...(opts.extraTargets ?? [])
    ].filter(t => selected(t.name, opts.target, false))
    if (opts.cases > 0 && targets.some(t => t.name === 'speech-ws')) speech = await startSpeechServer()
    if ((opts.cases > 0 && targets.some(t => t.name === 'events-ws')) || (opts.httpCases > 0 && routes.length > 0)) {
      progress('starting a node with stand-in Ollama, OpenAI and AUTOMATIC1111 backends…')
      node = await startFuzzNode()
    }
    if (opts.cases > 0) {
      for (const target of targets) {
        const started = performance.now()
        const s = await runDecoder(target, {
          seed: opts.seed,
          cases: opts.cases,
          only: opts.only,
          onCase: c => {
            unhandled.current.value = `${c.target}#${c.index}`
            watchdog?.beat(`npm run fuzz -- --target ${c.target} --case ${c.index} --seed ${opts.seed}`)
          },
          progressEvery: Math.max(100, Math.floor(opts.cases / 10)),
          onProgress: (done) => { progress(`${target.name}: ${done}/${opts.cases} cases, ${Math.round((performance.now() - started) / 1000)} s`) }
        })
        watchdog?.idle()
        stats.push(s)
        progress(`${target.name}: ${s.cases} cases in ${(s.ms / 1000).toFixed(1)} s, ${s.findings.length} findings`)
      }
    }
    if (opts.httpCases > 0 && routes.length > 0 && node !== undefined) {
      const names = new Set(routes.map(r => r.name))
      const routeFilter = opts.target === undefined || opts.target === 'http' ? undefined : opts.target
      const r = await runHttp(node, {
        seed: opts.seed,
        cases: opts.httpCases,
        routes: routeFilter,
        only: opts.only,
        batch: Math.min(100, opts.httpCases),
        concurrency: opts.concurrency,
        onBatch: (route, done) => {
          unhandled.current.value = `${route}#${done}`
          if (route === routes[routes.length - 1].name) progress(`http: ${done}/${opts.httpCases} cases of each of ${names.size} routes, ${Math.round((performance.now() - t0) / 1000)} s`)
        }
      })
      stats.push(...r.stats)
      global.push(...r.global)
    }
  } finally {
    await watchdog?.stop()
    await node?.stop()
    await speech?.stop()
    // a rejection may land a moment after the case that caused it
    await new Promise(resolve => setTimeout(resolve, 50))
    unhandled.stop()
  }
  for (const u of unhandled.list) {
    const [target, index] = u.at.split('#')
    const f: Finding = { kind: 'unhandled', target: target ?? '', seed: opts.seed, index: Number(index ?? -1), message: `unhandled ${u.kind}: ${u.message}` }
    const s = stats.find(x => x.target === target)
    if (s !== undefined) addFinding(s, f)
    else global.push(f)
  }
  return { seed: opts.seed, stats, global, ms: performance.now() - t0 }
}

/** The findings that fail a run (of every target, and the run's own) */
export function failures (report: FuzzReport): Finding[] {
  return [...report.stats.flatMap(s => s.findings), ...report.global].filter(f => !WARNING_KINDS.has(f.kind))
}

function top (map: Map<string, number>, n: number): string {
  const entries = [...map.entries()].sort((a, b) => b[1] - a[1])
  const shown = entries.slice(0, n).map(([k, v]) => `${k} ${v}`).join(', ')
  return entries.length > n ? `${shown}, … ${entries.length - n} more` : shown
}

/** The report as text: per target its cases, time, stages reached, codes; then the findings */
export function formatReport (report: FuzzReport, verbose = false): string {
  const lines: string[] = []
  const decoders = report.stats.filter(s => !s.target.includes(' '))
  const http = report.stats.filter(s => s.target.includes(' '))
  lines.push(`fuzz: seed ${report.seed} (npm run fuzz -- --seed ${report.seed} repeats it), ${(report.ms / 1000).toFixed(1)} s`)
  if (decoders.length > 0) lines.push('', 'decoders (cases, time; how many cases reached each stage; error codes):')
  for (const s of decoders) {
    lines.push(`  ${s.target}: ${s.cases} cases, ${(s.ms / 1000).toFixed(1)} s, slowest case ${Math.round(s.slowestMs)} ms`)
    lines.push(`    stages: ${s.stages.map(st => `${st} ${s.stageCounts.get(st) ?? 0}`).join(' → ')}`)
    lines.push(`    codes (${s.codeCounts.size}): ${top(s.codeCounts, verbose ? 100 : 14)}`)
    if (verbose) lines.push(`    inputs: ${top(s.kindCounts, 20)}`)
  }
  if (http.length > 0) {
    const cases = http.reduce((n, s) => n + s.cases, 0)
    const ms = http.reduce((n, s) => n + s.ms, 0)
    lines.push('', `HTTP routes (${http.length} routes, ${cases} cases, ${(ms / 1000).toFixed(1)} s; answered / past the Host-Origin checks / body read / 2xx; status and code):`)
    for (const s of http) {
      const st = (k: string): number => s.stageCounts.get(k) ?? 0
      lines.push(`  ${s.target}: ${s.cases} cases, ${st('answered')}/${st('past security')}/${st('body read')}/${st('accepted')}; ${top(s.codeCounts, verbose ? 100 : 8)}`)
    }
  }
  const all = [...report.stats.flatMap(s => s.findings), ...report.global]
  const repeats = report.stats.reduce((n, s) => n + [...s.repeats.values()].reduce((a, b) => a + b, 0), 0)
  lines.push('', all.length === 0 ? 'findings: none' : `findings: ${all.length}${repeats > 0 ? ` (and ${repeats} more cases repeating them)` : ''}`)
  for (const f of all) {
    lines.push(`  ${WARNING_KINDS.has(f.kind) ? 'warning' : 'FAIL'} ${f.kind} in ${f.target} case ${f.index}: ${f.message}`)
    if (f.notes !== undefined && f.notes.length > 0) lines.push(`    made by: ${f.notes.slice(0, 6).join('; ').slice(0, 400)}`)
    if (f.input !== undefined) lines.push(`    input: ${f.input.slice(0, 400)}`)
    const target = f.target.includes(' ') ? JSON.stringify(f.target) : f.target
    if (f.index >= 0) lines.push(`    replay: npm run fuzz -- --seed ${f.seed} --target ${target} --case ${f.index}`)
  }
  return lines.join('\n')
}
