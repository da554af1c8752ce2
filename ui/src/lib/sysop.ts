/**
 * The sysop routes (DESIGN.md "Sysop"), as the panel calls them. The browser signs in once with
 * `POST /realm/sysop/session { token }`, which sets an HttpOnly session cookie; the tab keeps a
 * sessionStorage flag so the panel opens signed in until the tab closes. Without a valid
 * session every route answers 401. Answers are read defensively (normalizers below, tested in
 * test/unit/ui-views.test.ts).
 */
import { getJson, sendJson, type CallOptions } from './api.js'

export const SYSOP_FLAG_KEY = 'rah.sysop'

export interface BlockEntry {
  /** the peer id or CIDR: the key for DELETE */
  entry: string
  kind: 'peer' | 'cidr'
  /** `local` (this node's sysop) or the peer id of a followed publisher */
  source?: string
  reason?: string
  expiresAt?: string
  createdAt?: string
}

export interface SysopUser {
  id: string
  nickname?: string
  banned: boolean
  banReason?: string
  createdAt?: string
  lastSeenAt?: string
}

function str (v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

function listOf (body: unknown, ...keys: string[]): unknown[] {
  if (Array.isArray(body)) return body
  if (body != null && typeof body === 'object') {
    for (const k of keys) {
      const v = (body as Record<string, unknown>)[k]
      if (Array.isArray(v)) return v
    }
  }
  return []
}

export function normalizeBlocklist (body: unknown): BlockEntry[] {
  const out: BlockEntry[] = []
  for (const raw of listOf(body, 'entries', 'blocklist', 'blocked')) {
    if (raw == null || typeof raw !== 'object') continue
    const r = raw as Record<string, unknown>
    const peerId = str(r.peerId)
    const cidr = str(r.cidr)
    const entry = peerId ?? cidr ?? str(r.entry)
    if (entry === undefined) continue
    const e: BlockEntry = { entry, kind: peerId !== undefined ? 'peer' : cidr !== undefined || entry.includes('/') ? 'cidr' : 'peer' }
    const reason = str(r.reason)
    if (reason !== undefined) e.reason = reason
    const source = str(r.source)
    if (source !== undefined) e.source = source
    const expiresAt = str(r.expiresAt)
    if (expiresAt !== undefined) e.expiresAt = expiresAt
    const createdAt = str(r.createdAt) ?? str(r.addedAt) ?? str(r.time)
    if (createdAt !== undefined) e.createdAt = createdAt
    out.push(e)
  }
  return out
}

export function normalizeUsers (body: unknown): SysopUser[] {
  const out: SysopUser[] = []
  for (const raw of listOf(body, 'users')) {
    if (raw == null || typeof raw !== 'object') continue
    const r = raw as Record<string, unknown>
    const id = str(r.id)
    if (id === undefined) continue
    const u: SysopUser = { id, banned: r.banned === true }
    const nickname = str(r.nickname) ?? str(r.name)
    if (nickname !== undefined) u.nickname = nickname
    const banReason = str(r.banReason)
    if (banReason !== undefined) u.banReason = banReason
    const createdAt = str(r.createdAt) ?? str(r.firstSeen)
    if (createdAt !== undefined) u.createdAt = createdAt
    const lastSeenAt = str(r.lastSeenAt) ?? str(r.lastSeen)
    if (lastSeenAt !== undefined) u.lastSeenAt = lastSeenAt
    out.push(u)
  }
  return out
}

/**
 * Is the block form's text an address or range rather than a peer id? A CIDR has a `/`, an IPv4
 * address a `.`, an IPv6 one a `:`; a peer id (base58 or base32) has none of them. A bare address
 * is sent as a range: the node reads it as a single-address range (/32 or /128).
 */
export function isAddressTarget (target: string): boolean {
  return /[/.:]/.test(target.trim())
}

/** What the block form sends: an address or range (`cidr`), else a peer id */
export function blockBody (target: string, reason: string, expiresAt?: string): Record<string, string> {
  const t = target.trim()
  const body: Record<string, string> = isAddressTarget(t) ? { cidr: t } : { peerId: t }
  if (reason.trim() !== '') body.reason = reason.trim()
  if (expiresAt !== undefined && expiresAt !== '') body.expiresAt = expiresAt
  return body
}

export const sysopApi = {
  async signIn (token: string, opts?: CallOptions): Promise<void> {
    await sendJson('POST', '/realm/sysop/session', { token }, opts)
  },
  async blocklist (opts?: CallOptions): Promise<BlockEntry[]> {
    return normalizeBlocklist(await getJson('/realm/sysop/blocklist', opts))
  },
  async block (target: string, reason: string, expiresAt?: string, opts?: CallOptions): Promise<void> {
    await sendJson('POST', '/realm/sysop/blocklist', blockBody(target, reason, expiresAt), opts)
  },
  async unblock (entry: string, opts?: CallOptions): Promise<void> {
    await sendJson('DELETE', `/realm/sysop/blocklist/${encodeURIComponent(entry)}`, undefined, opts)
  },
  async users (opts?: CallOptions): Promise<SysopUser[]> {
    return normalizeUsers(await getJson('/realm/sysop/users', opts))
  },
  async setBanned (id: string, banned: boolean, opts?: CallOptions): Promise<void> {
    await sendJson(banned ? 'POST' : 'DELETE', `/realm/sysop/users/${encodeURIComponent(id)}/ban`, undefined, opts)
  },
  async setBenched (workerId: string, benched: boolean, opts?: CallOptions): Promise<void> {
    await sendJson(benched ? 'POST' : 'DELETE', `/realm/sysop/workers/${encodeURIComponent(workerId)}/bench`, undefined, opts)
  },
  async broadcast (message: string, opts?: CallOptions): Promise<void> {
    await sendJson('POST', '/realm/sysop/broadcast', { message }, opts)
  },
  /** a sysop may cancel any task */
  async cancelTask (id: string, opts?: CallOptions): Promise<void> {
    await sendJson('DELETE', `/realm/tasks/${encodeURIComponent(id)}`, undefined, opts)
  }
}

/** Running tasks the console has seen, for the sysop's cancel buttons: from `task.*` events */
export interface LiveTask {
  id: string
  requester?: string
  kind?: string
  model?: string
  peerId?: string
  state: 'submitted' | 'running'
  since: string
}

/** Most tasks the sysop panel tracks */
export const MAX_LIVE_TASKS = 500

export function applyLiveTask (tasks: LiveTask[], event: { type: string, time: string, [k: string]: unknown }): LiveTask[] {
  const id = str(event.id)
  if (id === undefined || !event.type.startsWith('task.')) return tasks
  if (event.type === 'task.done' || event.type === 'task.error') return tasks.filter(t => t.id !== id)
  const known = tasks.find(t => t.id === id)
  if (event.type === 'task.submitted') {
    if (known != null) return tasks
    const t: LiveTask = { id, state: 'submitted', since: event.time }
    const requester = str(event.requester)
    if (requester !== undefined) t.requester = requester
    const kind = str(event.kind)
    if (kind !== undefined) t.kind = kind
    const model = str(event.model)
    if (model !== undefined) t.model = model
    const next = [...tasks, t]
    return next.length > MAX_LIVE_TASKS ? next.slice(next.length - MAX_LIVE_TASKS) : next
  }
  if (event.type === 'task.started') {
    const peerId = str(event.peerId)
    if (known == null) return [...tasks, { id, state: 'running', since: event.time, requester: str(event.requester), peerId }]
    return tasks.map(t => t.id === id ? { ...t, state: 'running', peerId } : t)
  }
  return tasks
}
