/**
 * The local grid launcher (`npm run grid`, i.e. dist/scripts/grid.js): three `realm start`
 * processes that mesh, and SIGINT to the launcher stops every one of them.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { sleep, waitFor } from '../helpers/wait.js'
import { Processes, ROOT, buildOnce, type RealmProcess } from './realm-cli.js'

const GRID_SCRIPT = path.join(ROOT, 'dist', 'scripts', 'grid.js')
const NODES = 3
/** The launcher starts the nodes one after the other, giving each 60 s */
const READY_DEADLINE_MS = NODES * 60_000 + 30_000
/** Liveness deadline for the nodes to find each other */
const MESH_DEADLINE_MS = 60_000
/** How long a launcher told to stop in cleanup may take to stop its nodes */
const STOP_GRACE_MS = 25_000

interface GridLine {
  index: number
  pid: number
  http: string
  peerId: string
  dataDir: string
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err.code === 'EPERM'
  }
}

describe('e2e: the grid launcher', function () {
  this.timeout(READY_DEADLINE_MS + 60_000)
  const procs = new Processes()
  let grid: RealmProcess | undefined
  let dir = ''
  let nodes: GridLine[] = []

  before(function () {
    this.timeout(600_000)
    buildOnce()
  })

  after(async () => {
    // a launcher still running stops its nodes itself; those it leaves (its children, not ours,
    // found in its output or their node.json) are SIGKILLed
    if (grid?.running === true) {
      grid.child.kill('SIGTERM')
      await Promise.race([grid.exited, sleep(STOP_GRACE_MS)])
    }
    const pids = new Set(nodes.map(n => n.pid))
    for (let i = 0; dir !== '' && i < NODES; i++) {
      const info = await fs.readFile(path.join(dir, `node-${i}`, 'node.json'), 'utf8').then(t => JSON.parse(t), () => undefined)
      if (typeof info?.pid === 'number') pids.add(info.pid)
    }
    for (const pid of pids) {
      if (alive(pid)) process.kill(pid, 'SIGKILL')
    }
    await procs.cleanup()
  })

  it(`starts ${NODES} nodes that mesh; SIGINT to the launcher stops them all and it exits 0`, async () => {
    dir = await procs.tempDir('realm-e2e-grid-')
    const launcher = grid = procs.spawn(['--nodes', String(NODES), '--json', '--dir', dir], { script: GRID_SCRIPT })
    await launcher.waitFor(() => launcher.jsonLines().some(l => l.ready === true), 'grid ready', READY_DEADLINE_MS)
    nodes = launcher.jsonLines().filter(l => l.ready !== true)
    assert.equal(nodes.length, NODES, launcher.stdout)
    assert.deepEqual(nodes.map(n => n.index), [0, 1, 2])
    assert.equal(new Set(nodes.map(n => n.peerId)).size, NODES, 'distinct peer ids')
    assert.equal(new Set(nodes.map(n => n.pid)).size, NODES, 'distinct processes')
    for (const n of nodes) {
      assert.ok(alive(n.pid), `node ${n.index} runs`)
      assert.ok(n.dataDir.startsWith(dir), n.dataDir)
      const info = JSON.parse(await fs.readFile(path.join(n.dataDir, 'node.json'), 'utf8'))
      assert.equal(info.pid, n.pid)
      assert.equal(info.peerId, n.peerId)
    }

    const peersOf = async (n: GridLine): Promise<string[]> => {
      const res = await fetch(n.http + '/realm/peers', { signal: AbortSignal.timeout(10_000) })
      assert.equal(res.status, 200)
      return (await res.json()).peers.map((p: any) => p.peerId).sort()
    }
    await waitFor(async () => {
      const tables = await Promise.all(nodes.map(peersOf))
      return nodes.every((n, i) => JSON.stringify(tables[i]) === JSON.stringify(nodes.filter(o => o !== n).map(o => o.peerId).sort()))
    }, 'every node to list the other two in /realm/peers', MESH_DEADLINE_MS)

    launcher.child.kill('SIGINT')
    const exit = await launcher.exited
    assert.deepEqual(exit, { code: 0, signal: null }, launcher.describe())
    for (const n of nodes) {
      assert.equal(alive(n.pid), false, `node ${n.index} (pid ${n.pid}) stopped`)
      await assert.rejects(fs.access(path.join(n.dataDir, 'node.json')), `node ${n.index} stopped cleanly (node.json removed)`)
    }
  })
})
