/**
 * The fuzz harness (scripts/fuzz), a seeded sample of it: every protocol decoder, both WebSocket
 * client protocols and every HTTP route of a real in-process node get a few hundred (routes: a
 * dozen) inputs mutated from their schemas. No crash, no unhandled rejection, no uncoded error,
 * no 5xx; and the sample must show that the mutations reach the validators (cases past the JSON
 * parse, several error codes, valid cases accepted), so a mutator that degenerated into random
 * bytes, or never produced a valid message, fails here. Last, the harness itself must fail on a
 * decoder that throws a plain TypeError, and on a 500.
 *
 * FUZZ_SEED=N replays another seed; `npm run fuzz` is the full run (10 000 cases per decoder).
 */
import assert from 'node:assert/strict'
import { WorkerFrameSchema, decodeWorkerFrame } from '../../protocol/task-frames.js'
import { failures, formatReport, runFuzz, type FuzzReport } from '../../scripts/fuzz/fuzz.js'
import { frameTarget, workerFrameSeeds } from '../../scripts/fuzz/targets.js'
import { ROUTES, judge, type Prepared } from '../../scripts/fuzz/http.js'
import type { RawResponse } from '../../scripts/fuzz/http-client.js'
import type { TargetStats } from '../../scripts/fuzz/runner.js'

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : 4_2025_11
const DECODER_CASES = 200
const HTTP_CASES = 10

/** The stage a valid message reaches when its decoder accepts it */
const ACCEPTED: Record<string, string> = {
  beacon: 'accepted',
  blocklist: 'accepted',
  'requester-frame': 'accepted',
  'worker-frame': 'accepted',
  config: 'valid config',
  'events-ws': 'accepted',
  'speech-ws': 'accepted'
}
/**
 * The stage that shows a case reached the schema validators (past the bytes and the JSON parse),
 * and the least share of cases that must get there: random bytes would almost never
 */
const REACHED: Record<string, [string, number]> = {
  beacon: ['schema', 0.35],
  blocklist: ['schema', 0.35],
  'requester-frame': ['schema', 0.5],
  'worker-frame': ['schema', 0.5],
  config: ['whole-file parse', 0.2],
  'events-ws': ['json', 0.5],
  'speech-ws': ['json', 0.5]
}
/** Codes that mean "accepted" (a decoder's OK, a config that needed no repair, a WebSocket answer that is not an error) */
const isOk = (code: string): boolean => code === 'OK' || code.startsWith('OK:') || code === 'CLEAN'

describe('fuzz harness (seeded sample)', function () {
  let report: FuzzReport

  before(async function () {
    this.timeout(180_000)
    process.stdout.write(`      fuzz sample: seed ${SEED} (FUZZ_SEED=${SEED} replays it; npm run fuzz -- --seed ${SEED} runs it in full)\n`)
    report = await runFuzz({ seed: SEED, cases: DECODER_CASES, httpCases: HTTP_CASES })
  })

  const decoders = (): TargetStats[] => report.stats.filter(s => ACCEPTED[s.target] !== undefined)

  it('finds no crash, unhandled rejection, uncoded error, 5xx or hang', () => {
    const failed = failures(report)
    assert.equal(failed.length, 0, formatReport(report))
  })

  it('runs every decoder target, both WebSocket protocols and every HTTP route', () => {
    assert.deepEqual(decoders().map(s => s.target).sort(), Object.keys(ACCEPTED).sort())
    for (const s of decoders()) assert.equal(s.cases, DECODER_CASES, s.target)
    const routes = report.stats.filter(s => s.target.includes(' '))
    assert.deepEqual(routes.map(s => s.target).sort(), ROUTES.map(r => r.name).sort())
    for (const s of routes) assert.equal(s.cases, HTTP_CASES, s.target)
  })

  it('reaches the validators of every decoder: many cases get past the JSON parse, several codes, some accepted', () => {
    for (const s of decoders()) {
      const [stage, share] = REACHED[s.target]
      const reached = s.stageCounts.get(stage) ?? 0
      const accepted = s.stageCounts.get(ACCEPTED[s.target]) ?? 0
      const errors = [...s.codeCounts.keys()].filter(c => !isOk(c))
      const table = `${s.target}: stages ${JSON.stringify([...s.stageCounts])}, codes ${JSON.stringify([...s.codeCounts])}`
      // random bytes almost never parse: a mutator that degenerated into them fails here
      assert.ok(reached >= s.cases * share, `only ${reached} of ${s.cases} cases reached ${stage}; ${table}`)
      // a mutator that breaks every message never shows the decoder accepting one
      assert.ok(accepted >= s.cases * 0.03, `only ${accepted} of ${s.cases} cases were accepted; ${table}`)
      assert.ok(errors.length >= 2, `${errors.length} distinct error codes; ${table}`)
    }
  })

  it('reaches the schema checks of each signed message, past its signature envelope', () => {
    for (const [target, code] of [['beacon', 'BEACON_INVALID'], ['blocklist', 'BLOCKLIST_INVALID']]) {
      const s = report.stats.find(x => x.target === target)!
      assert.ok((s.codeCounts.get(code) ?? 0) >= s.cases * 0.2, `${target}: ${JSON.stringify([...s.codeCounts])}`)
      assert.ok((s.stageCounts.get('signature') ?? 0) > 0, `${target}: no case reached the signature check`)
    }
  })

  it('reaches every HTTP route past the Host/Origin checks, with several answers and a valid one accepted', () => {
    for (const s of report.stats.filter(x => x.target.includes(' '))) {
      const table = `${s.target}: stages ${JSON.stringify([...s.stageCounts])}, codes ${JSON.stringify([...s.codeCounts])}`
      assert.ok((s.stageCounts.get('past security') ?? 0) > 0, table)
      assert.ok(s.codeCounts.size >= 2, table)
    }
    const routes = report.stats.filter(x => x.target.includes(' '))
    const accepted = routes.filter(s => (s.stageCounts.get('accepted') ?? 0) > 0)
    assert.ok(accepted.length >= routes.length * 0.7, `only ${accepted.length} of ${routes.length} routes answered a 2xx: ${routes.filter(s => !accepted.includes(s)).map(s => s.target).join(', ')}`)
  })

})

describe('fuzz harness (it can fail)', () => {
  it('fails on a decoder that throws a plain TypeError', async function () {
    this.timeout(60_000)
    // a careless decoder: takes every valid frame for a token (most have no `text`: TypeError)
    const careless = (bytes: Uint8Array): ReturnType<typeof decodeWorkerFrame> => {
      const frame = decodeWorkerFrame(bytes)
      if ((frame as any).text.length > 100_000) throw new RangeError('token too long')
      return frame
    }
    const broken = frameTarget('broken-frame', WorkerFrameSchema, workerFrameSeeds, careless)
    const r = await runFuzz({ seed: SEED, cases: 60, httpCases: 0, target: 'broken-frame', extraTargets: [broken] })
    const failed = failures(r)
    assert.ok(failed.length > 0, 'the harness passed a decoder that throws TypeError')
    assert.ok(failed.every(f => f.kind === 'uncoded' && f.target === 'broken-frame'), formatReport(r))
    assert.match(failed[0].message, /TypeError/)
    assert.ok((r.stats[0].codeCounts.get('CRASH:TypeError') ?? 0) > 0, formatReport(r))
  })

  it('fails on a 500, on an error outside the route\'s error shape, and on a sysop answer without the token', () => {
    const route = (name: string): (typeof ROUTES)[number] => ROUTES.find(r => r.name === name)!
    const prepared = (over: Partial<Prepared> = {}): Prepared => ({ model: { method: 'POST', path: '/', query: [], headers: [] }, exchange: { bytes: new Uint8Array() }, cls: 'body', notes: [], authOk: true, tokenless: false, original: { method: 'POST', path: '/' }, ...over })
    const answer = (status: number, body: string): RawResponse => ({ status, headers: { 'content-type': 'application/json' }, body: Buffer.from(body), noAnswer: false, timedOut: false, dropped: false, ms: 1 })
    const v500 = judge(route('POST /realm/tasks'), prepared(), answer(500, '{"error":{"code":"INTERNAL","message":"boom"}}'))
    assert.ok(v500.findings.some(f => f.kind === 'http-5xx'))
    const shape = judge(route('POST /api/chat'), prepared(), answer(400, '{"error":{"code":"X"}}'))
    assert.ok(shape.findings.some(f => f.kind === 'http-shape'))
    const open = judge(route('GET /realm/sysop/blocklist'), prepared({ cls: 'auth', tokenless: true, authOk: false }), answer(200, '{"entries":[]}'))
    assert.ok(open.findings.some(f => f.kind === 'invariant'))
    const ok = judge(route('POST /realm/tasks'), prepared(), answer(400, '{"error":{"code":"INVALID_REQUEST","message":"no"}}'))
    assert.deepEqual(ok.findings, [])
  })
})
