/**
 * The long crash test: a `realm start` node under load, SIGKILLed 20 times (every failpoint once,
 * the rest at random moments), checked after each restart (see harness.ts). Prints its seed;
 * `--seed N` replays a run.
 *
 *   npm run crash -- [--kills 20] [--seed N]
 */
import '../../node/shims.js'
import { parseArgs } from 'node:util'
import { FAILPOINT_CASES, runCrashTest } from './harness.js'
import { Processes, buildOnce } from '../../test/e2e/realm-cli.js'

const DEFAULT_KILLS = 20

const { values } = parseArgs({ options: { kills: { type: 'string' }, seed: { type: 'string' } } })
const kills = Number(values.kills ?? DEFAULT_KILLS)
const seed = Number(values.seed ?? Math.floor(Math.random() * 2 ** 31))
if (!Number.isInteger(kills) || kills < FAILPOINT_CASES.length) {
  process.stderr.write(`crash: --kills must be an integer ≥ ${FAILPOINT_CASES.length} (one per failpoint)\n`)
  process.exit(2)
}
process.stdout.write(`crash test: ${kills} kills, seed ${seed} (--seed ${seed} replays it)\n`)
buildOnce()
const procs = new Processes()
const t0 = Date.now()
try {
  const report = await runCrashTest({ procs, seed, kills, bothKeyCorruptions: true, log: line => { process.stdout.write(line + '\n') } })
  process.stdout.write(`passed in ${Math.round((Date.now() - t0) / 1000)} s: ${JSON.stringify(report)}\n`)
} catch (err) {
  process.stdout.write(`FAILED (seed ${seed}): ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
} finally {
  await procs.cleanup()
}
