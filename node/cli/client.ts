/** How the CLI finds and talks to the running node: `DIR/node.json`, then its HTTP API */
import fs from 'node:fs/promises'
import path from 'node:path'
import { CliError } from './errors.js'
import type { NodeJson } from '../node.js'

/** `NODE_JSON` of node.ts, not imported from there: node.js loads libp2p, seconds of startup for a read command */
const NODE_JSON = 'node.json'

const REQUEST_TIMEOUT_MS = 10_000

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err.code === 'EPERM'
  }
}

export async function readNodeJson (dataDir: string): Promise<NodeJson> {
  const file = path.join(dataDir, NODE_JSON)
  let info: NodeJson
  try {
    info = JSON.parse(await fs.readFile(file, 'utf8'))
  } catch {
    throw new CliError('NODE_NOT_RUNNING', `no node is running with data dir ${dataDir} (start one with: realm start --data ${dataDir})`)
  }
  if (typeof info?.http !== 'string' || typeof info.pid !== 'number' || !alive(info.pid)) {
    throw new CliError('NODE_NOT_RUNNING', `no node is running with data dir ${dataDir} (${NODE_JSON} is stale)`)
  }
  return info
}

export async function getJson<T = any> (dataDir: string, route: string): Promise<T> {
  const info = await readNodeJson(dataDir)
  let res: Response
  try {
    res = await fetch(info.http + route, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  } catch (err) {
    throw new CliError('NODE_UNREACHABLE', `the node at ${info.http} (pid ${info.pid}) does not answer`)
  }
  const body: any = await res.json().catch(() => undefined)
  if (!res.ok) {
    throw new CliError(body?.error?.code ?? 'HTTP_ERROR', `${route}: ${body?.error?.message ?? res.statusText}`)
  }
  return body as T
}
