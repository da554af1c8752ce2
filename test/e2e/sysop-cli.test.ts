/**
 * The sysop commands end to end against real `realm start` processes: `realm block` (a peer that
 * is connected, with a reason and a duration; a range), `realm blocklist --json`, `realm unblock`,
 * `realm blocklist --publish`, `realm sysop rotate-token` (the running node takes the new token at
 * once), and their one-line failures. A node bound to a non-loopback address warns on stderr.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { waitFor } from '../helpers/wait.js'
import { PROCESS_DEADLINE_MS, Processes, buildOnce, reasonLines, type RealmNodeProcess } from './realm-cli.js'

const TEST_TIMEOUT_MS = 150_000
/** Liveness deadline for peers to appear in, or leave, each other's tables */
const MESH_DEADLINE_MS = 60_000

function parseJson (stdout: string, what: string): any {
  try {
    return JSON.parse(stdout)
  } catch {
    throw new Error(`${what} did not print JSON: ${stdout.slice(0, 500)}`)
  }
}

function oneLineReason (result: { code: number | null, stderr: string }, what: string): string {
  assert.notEqual(result.code, 0, `${what} exited 0`)
  assert.notEqual(result.code, null, `${what} was killed instead of exiting (${result.stderr})`)
  const lines = reasonLines(result.stderr)
  assert.equal(lines.length, 1, `${what}: expected one line on stderr, got ${JSON.stringify(result.stderr)}`)
  return lines[0]
}

async function peerIds (node: RealmNodeProcess): Promise<string[]> {
  return (await node.get('/realm/peers')).peers.map((p: any) => p.peerId)
}

describe('e2e: sysop commands', function () {
  this.timeout(TEST_TIMEOUT_MS)
  const procs = new Processes()
  let a: RealmNodeProcess
  let b: RealmNodeProcess
  let aDir: string

  before(async function () {
    // two processes to start, each of which rebuilds dist/ first if the sources changed meanwhile
    this.timeout(2 * PROCESS_DEADLINE_MS + 60_000)
    buildOnce()
    aDir = await procs.tempDir()
    a = procs.start(aDir)
    const aInfo = await a.started()
    b = procs.start(await procs.tempDir(), ['--bootstrap', aInfo.multiaddrs.find(m => !m.includes('/ws'))!])
    const bInfo = await b.started()
    await waitFor(async () => (await peerIds(a)).includes(bInfo.peerId), 'B in A\'s table', MESH_DEADLINE_MS)
  })
  after(async () => { await procs.cleanup() })

  it('realm block cuts a connected peer; realm blocklist --json lists it; realm unblock lets it back', async () => {
    const peer = b.info!.peerId
    const blocked = await procs.run(['block', peer, '--reason', 'testing the CLI', '--for', '2h', '--data', aDir])
    assert.equal(blocked.code, 0, blocked.stderr)
    assert.match(blocked.stdout, new RegExp(`^blocked ${peer} until \\S+: testing the CLI\\n$`))
    await waitFor(async () => !(await peerIds(a)).includes(peer), 'B to leave A\'s table', MESH_DEADLINE_MS)

    const listed = await procs.run(['blocklist', '--json', '--data', aDir])
    assert.equal(listed.code, 0, listed.stderr)
    const list = parseJson(listed.stdout, 'realm blocklist --json')
    assert.equal(list.entries.length, 1)
    const entry = list.entries[0]
    assert.equal(entry.peerId, peer)
    assert.equal(entry.reason, 'testing the CLI')
    assert.equal(entry.source, 'local')
    const hours = (Date.parse(entry.expiresAt) - Date.now()) / 3_600_000
    assert.ok(hours > 1.9 && hours <= 2, `expires in ${hours} h`)

    const range = await procs.run(['block', '198.51.100.7/24', '--json', '--data', aDir])
    assert.equal(range.code, 0, range.stderr)
    assert.equal(parseJson(range.stdout, 'realm block --json').cidr, '198.51.100.0/24')
    const human = await procs.run(['blocklist', '--data', aDir])
    assert.equal(human.code, 0)
    assert.match(human.stdout, /198\.51\.100\.0\/24/)
    assert.match(human.stdout, new RegExp(peer))

    const unblocked = await procs.run(['unblock', peer, '--data', aDir])
    assert.equal(unblocked.code, 0, unblocked.stderr)
    assert.equal(unblocked.stdout, `unblocked ${peer}\n`)
    const unrange = await procs.run(['unblock', '198.51.100.0/24', '--json', '--data', aDir])
    assert.equal(unrange.code, 0, unrange.stderr)
    assert.equal(parseJson(unrange.stdout, 'realm unblock --json').removed, true)
    // B redials A (or A redials B)
    await waitFor(async () => (await peerIds(a)).includes(peer), 'B back in A\'s table', MESH_DEADLINE_MS)
    assert.deepEqual(parseJson((await procs.run(['blocklist', '--json', '--data', aDir])).stdout, 'blocklist').entries, [])
  })

  it('realm blocklist --publish publishes this node\'s entries', async () => {
    const published = await procs.run(['blocklist', '--publish', '--json', '--data', aDir])
    assert.equal(published.code, 0, published.stderr)
    const out = parseJson(published.stdout, 'realm blocklist --publish --json')
    assert.equal(out.published.publisher, a.info!.peerId)
    assert.equal(out.publishing, true)
  })

  it('fails in one line: a bad entry, a bad duration, nothing to unblock, no node', async () => {
    assert.match(oneLineReason(await procs.run(['block', 'not-a-peer', '--data', aDir]), 'block not-a-peer'), /^realm block: not a peer id/)
    assert.match(oneLineReason(await procs.run(['block', '10.0.0.0/40', '--data', aDir]), 'block bad range'), /^realm block: not an IP address or CIDR range/)
    const badFor = await procs.run(['block', b.info!.peerId, '--for', 'soon', '--data', aDir])
    assert.equal(badFor.code, 2)
    assert.match(oneLineReason(badFor, 'block --for soon'), /--for "soon": expected a duration/)
    assert.match(oneLineReason(await procs.run(['unblock', '10.9.9.0/24', '--data', aDir]), 'unblock nothing'), /is not on the blocklist/)
    assert.equal((await procs.run(['block', '--data', aDir])).code, 2, 'no entry given')
    const noNode = await procs.run(['blocklist', '--data', await procs.tempDir()])
    assert.match(oneLineReason(noNode, 'blocklist without a node'), /no node is running/)
  })

  it('realm sysop rotate-token: the running node takes the new token at once; the old one is refused', async () => {
    const file = path.join(aDir, 'sysop.token')
    const old = (await fs.readFile(file, 'utf8')).trim()
    const rotated = await procs.run(['sysop', 'rotate-token', '--data', aDir])
    assert.equal(rotated.code, 0, rotated.stderr)
    assert.match(rotated.stdout, /new sysop token written to .*sysop\.token \(mode 0600\)/)
    assert.match(rotated.stdout, new RegExp(`the running node \\(pid ${a.pid}\\) uses it now`))
    const fresh = (await fs.readFile(file, 'utf8')).trim()
    assert.match(fresh, /^[0-9a-f]{64}$/)
    assert.notEqual(fresh, old)
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600)
    const asked = async (token: string): Promise<number> => (await fetch(a.info!.http + '/realm/sysop/blocklist', { headers: { authorization: `Bearer ${token}` } })).status
    assert.equal(await asked(old), 401)
    assert.equal(await asked(fresh), 200)
    // the commands read the new one
    const listed = await procs.run(['blocklist', '--json', '--data', aDir])
    assert.equal(listed.code, 0, listed.stderr)
    assert.match(oneLineReason(await procs.run(['sysop', 'promote', '--data', aDir]), 'sysop promote'), /unknown sysop subcommand/)
  })

  it('warns on stderr when the gateway is bound to a non-loopback address', async () => {
    const dir = await procs.tempDir()
    const node = procs.start(dir, ['--http', '0.0.0.0:0'])
    await node.started()
    assert.match(node.stderr, /gateway: listening on 0\.0\.0\.0, reachable from other machines; sysop routes still require the token/)
    const status = await fetch(node.info!.http.replace('0.0.0.0', '127.0.0.1') + '/realm/sysop/blocklist')
    assert.equal(status.status, 401)
    await node.stop()
  })
})
