/**
 * `npm run fuzz`: every protocol decoder and WebSocket client message (10 000 cases each by
 * default) and every HTTP route of a real node (300 cases each), from inputs mutated field by
 * field from their schemas. Prints the seed, per target its cases and how many reached each
 * stage and error code; exits 1 on a crash, an unhandled rejection, an uncoded error, a 5xx, a
 * hang.
 *
 *   npm run fuzz -- [--seed N] [--cases N] [--http-cases N] [--target NAME] [--case I] [--verbose]
 *
 * `--target` keeps the targets and routes whose name includes NAME (`http`: every route);
 * `--case I` with the seed and target of a finding replays that one case.
 */
import { parseArgs } from 'node:util'
import { randomSeed } from './rng.js'
import { failures, formatReport, runFuzz } from './fuzz.js'

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    cases: { type: 'string' },
    'http-cases': { type: 'string' },
    target: { type: 'string' },
    case: { type: 'string' },
    verbose: { type: 'boolean' }
  }
})

function int (text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0) {
    process.stderr.write(`--${what} wants a whole number ≥ 0, not ${JSON.stringify(text)}\n`)
    process.exit(2)
  }
  return n
}

const seed = int(values.seed, randomSeed(), 'seed') >>> 0
const cases = int(values.cases, 10_000, 'cases')
const httpCases = int(values['http-cases'], values.cases !== undefined ? Math.max(1, Math.ceil(cases / 30)) : 300, 'http-cases')
const only = values.case !== undefined ? int(values.case, 0, 'case') : undefined

process.stdout.write(`fuzz: seed ${seed}, ${cases} cases per decoder, ${httpCases} per HTTP route${values.target !== undefined ? `, targets matching ${JSON.stringify(values.target)}` : ''}${only !== undefined ? `, case ${only} only` : ''}\n`)
const report = await runFuzz({
  seed,
  cases: only !== undefined ? only + 1 : cases,
  httpCases: only !== undefined ? only + 1 : httpCases,
  target: values.target,
  only,
  hangMs: 30_000,
  progress: line => { process.stderr.write(`  … ${line}\n`) }
})
process.stdout.write(formatReport(report, values.verbose === true) + '\n')
const failed = failures(report)
process.stdout.write(failed.length === 0 ? `fuzz: OK (seed ${seed})\n` : `fuzz: FAILED, ${failed.length} findings (seed ${seed})\n`)
process.exit(failed.length === 0 ? 0 : 1)
