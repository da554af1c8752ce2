/**
 * Crash safety through real `realm start` processes: SIGKILLed under load at random moments
 * (seeded; the seed is printed, `REALM_CRASH_SEED=N` replays it) and at failpoints, the node
 * loses no acknowledged task, keeps its key, config and a readable trace log; a corrupt key or
 * config is restored or repaired. scripts/crash/run.ts runs the same with more kills.
 */
import assert from 'node:assert/strict'
import { runCrashTest } from '../../scripts/crash/harness.js'
import { Processes, buildOnce } from './realm-cli.js'

/** Kills in this test: the three failpoints below and five at random moments */
const KILLS = 20
/** The failpoints this test goes through (the script goes through all of them) */
const FAILPOINTS = ['task.acknowledged', 'trace.rotate:after-rename', 'trace.rotate:after-shift']
/** Every step waits on processes with its own liveness deadline; this bounds the whole run */
const TEST_TIMEOUT_MS = 600_000

describe('e2e: crash safety (SIGKILL under load)', function () {
  this.timeout(TEST_TIMEOUT_MS)
  const procs = new Processes()

  before(function () {
    this.timeout(600_000)
    buildOnce()
  })

  after(async () => { await procs.cleanup() })

  it(`${KILLS} kills (failpoints: ${FAILPOINTS.join(', ')}; the rest at random): no acknowledged task lost, same peer id, config and trace log intact; corrupt key and config restored`, async () => {
    const seed = Number(process.env.REALM_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31))
    process.stdout.write(`      crash test seed ${seed} (REALM_CRASH_SEED=${seed} replays it)\n`)
    const report = await runCrashTest({ procs, seed, kills: KILLS, failpoints: FAILPOINTS, log: line => { process.stdout.write(`      ${line}\n`) } })
    assert.equal(report.kills, KILLS)
    assert.ok(report.acknowledged > 0, 'tasks were acknowledged')
    assert.ok(report.done > 0, 'tasks were done between kills')
    assert.equal(report.done + report.interrupted + report.otherErrors, report.acknowledged)
    process.stdout.write(`      ${JSON.stringify(report)}\n`)
  })
})
