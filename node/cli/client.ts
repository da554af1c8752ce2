/** How the CLI finds and talks to the running node: `DIR/node.json`, then its HTTP API */
import fs from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
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

export interface NodeResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/**
 * One request to the running node. Over HTTPS the node's own certificate (named in node.json)
 * is the only one trusted, so a self-signed certificate works and nothing else is accepted.
 */
export async function requestNode (info: NodeJson, route: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<NodeResponse> {
  const url = new URL(route, info.http)
  const ca = url.protocol === 'https:' && info.tlsCert != null ? await fs.readFile(info.tlsCert).catch(() => undefined) : undefined
  return await new Promise((resolve, reject) => {
    const options: https.RequestOptions = { method: init.method ?? 'GET', headers: init.headers, timeout: REQUEST_TIMEOUT_MS }
    // a pinned certificate: its name need not match the address in node.json
    if (ca != null) Object.assign(options, { ca, checkServerIdentity: () => undefined })
    const req = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }) })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error('timed out')) })
    req.on('error', reject)
    req.end(init.body)
  })
}

export async function getJson<T = any> (dataDir: string, route: string): Promise<T> {
  const info = await readNodeJson(dataDir)
  let res: NodeResponse
  try {
    res = await requestNode(info, route)
  } catch (err) {
    throw new CliError('NODE_UNREACHABLE', `the node at ${info.http} (pid ${info.pid}) does not answer`)
  }
  let body: any
  try {
    body = JSON.parse(res.body.toString('utf8'))
  } catch {}
  if (res.status < 200 || res.status >= 300) {
    throw new CliError(body?.error?.code ?? 'HTTP_ERROR', `${route}: ${body?.error?.message ?? `HTTP ${res.status}`}`)
  }
  return body as T
}
