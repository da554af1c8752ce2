/**
 * The local grid launcher: starts N realm nodes on loopback, each a `realm start` process with
 * its own data dir, the first one the bootstrap node of the others; Ctrl+C stops them all.
 *
 *   npm run grid -- --nodes 3 [--dir DIR] [--http-port 5100] [--worker ollama=http://…]
 *
 * `--worker` attaches backends to the last node. Prints each node's gateway and peer id, then
 * a line `grid ready` (with `--json`: one JSON object per node and `{"ready":true}`).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', ...(import.meta.url.includes('/dist/') ? ['..'] : []))
const REALM_BIN = path.join(ROOT, 'bin', 'realm.js')
/** How long one node may take to write its node.json */
const NODE_START_DEADLINE_MS = 60_000
const MAX_NODES = 200

export interface GridNode {
  index: number
  dataDir: string
  process: ChildProcess
  http: string
  peerId: string
  multiaddrs: string[]
}

export interface GridInit {
  nodes: number
  /** base folder of the data dirs (node-0, node-1, …); default a new temp folder */
  dir?: string
  /** gateway port of node 0 (then +1, …); default 0 (free ports) */
  httpPort?: number
  /** backends for the last node */
  workers?: string[]
  /** extra environment for every node */
  env?: NodeJS.ProcessEnv
  /** where node output goes; default ignored */
  stdio?: 'inherit' | 'ignore'
}

async function waitForNodeJson (dataDir: string, child: ChildProcess): Promise<{ http: string, peerId: string, multiaddrs: string[] }> {
  const file = path.join(dataDir, 'node.json')
  const end = Date.now() + NODE_START_DEADLINE_MS
  while (Date.now() < end) {
    if (child.exitCode != null || child.signalCode != null) throw new Error(`node in ${dataDir} exited (${child.exitCode ?? child.signalCode})`)
    try {
      const info = JSON.parse(await fs.readFile(file, 'utf8'))
      if (info.pid === child.pid) return info
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`node in ${dataDir} did not start within ${NODE_START_DEADLINE_MS} ms`)
}

export class Grid {
  readonly nodes: GridNode[] = []
  constructor (readonly dir: string) {}

  /** SIGTERM every node, then SIGKILL any still running after the deadline */
  async stop (deadlineMs = 20_000): Promise<void> {
    const alive = this.nodes.filter(n => n.process.exitCode == null && n.process.signalCode == null)
    await Promise.all(alive.map(async n => {
      const exited = new Promise<void>(resolve => n.process.once('exit', () => { resolve() }))
      n.process.kill('SIGTERM')
      const timer = setTimeout(() => { n.process.kill('SIGKILL') }, deadlineMs)
      await exited
      clearTimeout(timer)
    }))
  }
}

export async function startGrid (init: GridInit): Promise<Grid> {
  if (!Number.isInteger(init.nodes) || init.nodes < 1 || init.nodes > MAX_NODES) throw new Error(`--nodes must be 1..${MAX_NODES}`)
  const dir = init.dir ?? await fs.mkdtemp(path.join(os.tmpdir(), 'realm-grid-'))
  const grid = new Grid(dir)
  try {
    for (let i = 0; i < init.nodes; i++) {
      const dataDir = path.join(dir, `node-${i}`)
      await fs.mkdir(dataDir, { recursive: true })
      const args = [REALM_BIN, 'start', '--data', dataDir, '--no-detect', '--no-mdns',
        '--http', `127.0.0.1:${init.httpPort != null && init.httpPort > 0 ? init.httpPort + i : 0}`,
        '--listen', '/ip4/127.0.0.1/tcp/0', '--listen', '/ip4/127.0.0.1/tcp/0/ws']
      if (i > 0) args.push('--bootstrap', grid.nodes[0].multiaddrs[0])
      if (i === init.nodes - 1) for (const w of init.workers ?? []) args.push('--worker', w)
      const child = spawn(process.execPath, args, { stdio: ['ignore', init.stdio ?? 'ignore', init.stdio ?? 'ignore'], env: { ...process.env, ...init.env } })
      const info = await waitForNodeJson(dataDir, child)
      grid.nodes.push({ index: i, dataDir, process: child, ...info })
    }
  } catch (err) {
    await grid.stop()
    throw err
  }
  return grid
}

async function cli (): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '3' },
      dir: { type: 'string' },
      'http-port': { type: 'string' },
      worker: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' }
    }
  })
  const grid = await startGrid({
    nodes: Number(values.nodes),
    dir: values.dir,
    httpPort: values['http-port'] != null ? Number(values['http-port']) : undefined,
    workers: values.worker,
    stdio: values.verbose === true ? 'inherit' : 'ignore'
  })
  for (const n of grid.nodes) {
    if (values.json === true) process.stdout.write(JSON.stringify({ index: n.index, pid: n.process.pid, http: n.http, peerId: n.peerId, dataDir: n.dataDir }) + '\n')
    else process.stdout.write(`node ${n.index}  ${n.http}/  ${n.peerId}  (${n.dataDir})\n`)
  }
  process.stdout.write(values.json === true ? '{"ready":true}\n' : `grid ready: ${grid.nodes.length} nodes under ${grid.dir}; Ctrl+C stops them all\n`)
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    process.stderr.write('grid: stopping…\n')
    grid.stop().then(() => { process.exit(0) }, () => { process.exit(1) })
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  // a node that dies on its own is reported, the others keep running
  for (const n of grid.nodes) {
    n.process.once('exit', (code, signal) => {
      if (!stopping) process.stderr.write(`grid: node ${n.index} exited (${code ?? signal})\n`)
    })
  }
}

if (process.argv[1] != null && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  cli().catch((err) => {
    process.stderr.write(`grid: ${err.message}\n`)
    process.exit(1)
  })
}
