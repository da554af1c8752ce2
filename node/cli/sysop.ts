/**
 * Sysop commands: `realm block`, `realm unblock`, `realm blocklist`, `realm sysop rotate-token`.
 * They read the token from the data dir and talk to the running node through `DIR/node.json`
 * (rotate-token writes the file, which the node re-reads at once). Kept light: no libp2p, no
 * database, so they start fast.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { readNodeJson } from './client.js'
import { CliError } from './errors.js'
import { looksLikeCidr } from '../sysop/cidr.js'
import { SYSOP_TOKEN_FILE, newSysopToken } from '../sysop-token.js'
import { writeFileAtomic } from '../fs-util.js'

const REQUEST_TIMEOUT_MS = 10_000
const DURATION_RE = /^(\d{1,7})(s|m|h|d|w)$/
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

function print (s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n')
}

/** `30m`, `2h`, `7d` (also `s`, `w`) in ms. @throws CliError `INVALID_FLAG` */
export function parseDuration (text: string): number {
  const m = DURATION_RE.exec(text.trim())
  const ms = m == null ? NaN : Number(m[1]) * UNIT_MS[m[2]]
  if (!Number.isFinite(ms) || ms <= 0) throw new CliError('INVALID_FLAG', `--for "${text.slice(0, 40)}": expected a duration such as 30m, 2h or 7d`, 2)
  return ms
}

async function readToken (dataDir: string): Promise<string> {
  const file = path.join(dataDir, SYSOP_TOKEN_FILE)
  const token = (await fs.readFile(file, 'utf8').catch(() => '')).trim()
  if (token === '') throw new CliError('NO_SYSOP_TOKEN', `no sysop token at ${file} (it is created when the node first starts)`)
  return token
}

/** A sysop route of the running node, with the token from the data dir */
async function sysopRequest<T = any> (dataDir: string, method: string, route: string, body?: unknown, token?: string): Promise<T> {
  const info = await readNodeJson(dataDir)
  const bearer = token ?? await readToken(dataDir)
  let res: Response
  try {
    res = await fetch(info.http + route, {
      method,
      headers: { authorization: `Bearer ${bearer}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
    })
  } catch {
    throw new CliError('NODE_UNREACHABLE', `the node at ${info.http} (pid ${info.pid}) does not answer`)
  }
  const answer: any = await res.json().catch(() => undefined)
  if (!res.ok) {
    const retry = res.headers.get('retry-after')
    throw new CliError(answer?.error?.code ?? 'HTTP_ERROR', `${answer?.error?.message ?? res.statusText}${retry != null ? ` (retry in ${retry} s)` : ''}`)
  }
  return answer as T
}

function positional (values: { _?: string[] }, what: string, usage: string): string {
  const args = values._ ?? []
  if (args.length !== 1 || args[0] === '') throw new CliError('INVALID_ARGS', `expected one ${what}: ${usage}`, 2)
  return args[0]
}

function describeEntry (e: any): string {
  const target = e.entry ?? e.peerId ?? e.cidr
  const until = e.expiresAt != null ? ` until ${e.expiresAt}` : ''
  const reason = e.reason != null && e.reason !== '' ? `: ${e.reason}` : ''
  return `${target}${until}${reason}`
}

/** `realm block PEER|CIDR [--reason R] [--for DURATION]` */
export async function blockCommand (values: { _?: string[], reason?: string, for?: string, json?: boolean }, dataDir: string): Promise<number> {
  const target = positional(values, 'peer id or CIDR range', 'realm block PEER|CIDR [--reason R] [--for DURATION]')
  const body: Record<string, unknown> = looksLikeCidr(target) ? { cidr: target } : { peerId: target }
  if (values.reason !== undefined) body.reason = values.reason
  if (values.for !== undefined) body.expiresAt = new Date(Date.now() + parseDuration(values.for)).toISOString()
  const entry = await sysopRequest(dataDir, 'POST', '/realm/sysop/blocklist', body)
  print(values.json === true ? JSON.stringify(entry, null, 2) : `blocked ${describeEntry(entry)}`)
  return 0
}

/** `realm unblock ENTRY` */
export async function unblockCommand (values: { _?: string[], json?: boolean }, dataDir: string): Promise<number> {
  const entry = positional(values, 'peer id or CIDR range', 'realm unblock PEER|CIDR')
  const r = await sysopRequest(dataDir, 'DELETE', `/realm/sysop/blocklist/${encodeURIComponent(entry)}`)
  if (values.json === true) print(JSON.stringify(r, null, 2))
  else if (r.overridden === true) print(`unblocked ${r.entry}: a followed publisher still lists it, so a local allow entry now overrides it`)
  else print(`unblocked ${r.entry}`)
  return 0
}

/** `realm blocklist [--json] [--publish]` */
export async function blocklistCommand (values: { json?: boolean, publish?: boolean }, dataDir: string): Promise<number> {
  let published: any
  if (values.publish === true) published = await sysopRequest(dataDir, 'POST', '/realm/sysop/blocklist/publish')
  const list = await sysopRequest(dataDir, 'GET', '/realm/sysop/blocklist')
  if (values.json === true) {
    print(JSON.stringify(published != null ? { ...list, published } : list, null, 2))
    return 0
  }
  const lines: string[] = []
  if (published != null) lines.push(`published ${published.entries} local entr${published.entries === 1 ? 'y' : 'ies'} (seq ${published.seq}); republished every minute`)
  if (list.entries.length === 0 && list.allows.length === 0) lines.push('the blocklist is empty (block a peer with realm block PEER|CIDR)')
  for (const e of list.entries) {
    const source = e.source === 'local' ? 'local' : `from ${e.source}`
    lines.push(`${e.effective === true ? 'blocked ' : 'allowed '} ${describeEntry(e)}  [${e.kind}, ${source}]`)
  }
  for (const a of list.allows) lines.push(`allow    ${describeEntry(a)}  [${a.kind}, local override]`)
  if (list.follow?.length > 0) lines.push(`following ${list.follow.join(', ')}`)
  if (list.publishing === true && published == null) lines.push('this node publishes its local entries')
  print(lines.join('\n'))
  return 0
}

/** `realm sysop rotate-token`: a new token in `DIR/sysop.token` (atomic, mode 0600); the node re-reads it at once */
export async function sysopCommand (values: { _?: string[], json?: boolean }, dataDir: string): Promise<number> {
  const sub = positional(values, 'subcommand', 'realm sysop rotate-token')
  if (sub !== 'rotate-token') throw new CliError('INVALID_ARGS', `unknown sysop subcommand "${sub.slice(0, 40)}" (try: realm sysop rotate-token)`, 2)
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
  const file = path.join(dataDir, SYSOP_TOKEN_FILE)
  const token = newSysopToken()
  await writeFileAtomic(file, token + '\n', 0o600)
  // the running node, if any, takes the new token at once: check that it does
  let node: { pid: number, accepted: boolean } | undefined
  const info = await readNodeJson(dataDir).catch(() => undefined)
  if (info != null) {
    const r = await sysopRequest(dataDir, 'GET', '/realm/sysop/session', undefined, token).then(() => true, () => false)
    node = { pid: info.pid, accepted: r }
  }
  if (values.json === true) {
    print(JSON.stringify({ path: file, rotated: true, node: node ?? null }, null, 2))
  } else {
    print(`new sysop token written to ${file} (mode 0600); the old token and every sysop session no longer work`)
    if (node != null) print(node.accepted ? `the running node (pid ${node.pid}) uses it now` : `the running node (pid ${node.pid}) did not accept it yet`)
  }
  if (node != null && !node.accepted) return 1
  return 0
}
