/**
 * Users as the sysop sees them, behind a small interface, so the sysop routes do not depend on
 * how users are kept. The web UI's directory (node/gateway/users.ts: cookie identities in the db
 * bucket `users`) plugs in through `webUserDirectory`; `MemoryUserDirectory` serves tests and
 * nodes without one. Banning is effective at once: the directory's own ban listeners close the
 * user's sockets, and the node's `onBan` hook cancels the user's tasks.
 */
import { checkReason } from './blocklist.js'
import { SysopInputError, SysopNotFoundError } from './errors.js'

const USER_ID_RE = /^[A-Za-z0-9_-]{1,64}$/

export interface SysopUser {
  id: string
  /** the nickname the user chose, if any */
  name?: string
  banned: boolean
  /** ISO-8601 */
  bannedAt?: string
  banReason?: string
  /** ISO-8601 */
  firstSeen?: string
  lastSeen?: string
}

export interface UserDirectory {
  /** every user known, banned ones included */
  list (): Promise<SysopUser[]>
  get (id: string): Promise<SysopUser | undefined>
  /** ban a user; @throws SysopNotFoundError `USER_NOT_FOUND` for a user the directory does not know */
  ban (id: string, reason?: string): Promise<SysopUser>
  /** lift a ban; @throws SysopNotFoundError `USER_NOT_FOUND` */
  unban (id: string): Promise<SysopUser>
  /** synchronous, for the hot path (every request of a signed-in user) */
  isBanned (id: string): boolean
}

/** A user id as the sysop routes take it. @throws SysopInputError `INVALID_USER_ID` */
export function checkUserId (id: string): string {
  if (typeof id !== 'string' || !USER_ID_RE.test(id)) throw new SysopInputError('INVALID_USER_ID', 'a user id is 1 to 64 letters, digits, _ or -')
  return id
}

function notFound (id: string): SysopNotFoundError {
  return new SysopNotFoundError('USER_NOT_FOUND', `no user ${id}`)
}

/** Users in memory (tests, and nodes without web UI accounts) */
export class MemoryUserDirectory implements UserDirectory {
  private readonly users = new Map<string, SysopUser>()

  constructor (private readonly now: () => number = Date.now) {}

  /** Record that a user exists */
  add (id: string, name?: string): SysopUser {
    checkUserId(id)
    const time = new Date(this.now()).toISOString()
    const user: SysopUser = { ...this.users.get(id) ?? { id, banned: false, firstSeen: time }, lastSeen: time }
    if (name !== undefined) user.name = name
    this.users.set(id, user)
    return { ...user }
  }

  async list (): Promise<SysopUser[]> {
    return [...this.users.values()].map(u => ({ ...u })).sort((a, b) => a.id.localeCompare(b.id))
  }

  async get (id: string): Promise<SysopUser | undefined> {
    const u = this.users.get(id)
    return u == null ? undefined : { ...u }
  }

  async ban (id: string, reason?: string): Promise<SysopUser> {
    const user = this.users.get(checkUserId(id))
    if (user == null) throw notFound(id)
    user.banned = true
    user.bannedAt = new Date(this.now()).toISOString()
    user.banReason = checkReason(reason)
    return { ...user }
  }

  async unban (id: string): Promise<SysopUser> {
    const user = this.users.get(checkUserId(id))
    if (user == null) throw notFound(id)
    user.banned = false
    delete user.bannedAt
    delete user.banReason
    return { ...user }
  }

  isBanned (id: string): boolean {
    return this.users.get(id)?.banned === true
  }
}

/** What `webUserDirectory` needs of the web UI's directory (node/gateway/users.ts `UserDirectory`) */
export interface WebUsers {
  list (): Array<WebUserRecord>
  get (id: string): WebUserRecord | undefined
  /** false for an unknown user */
  ban (id: string): Promise<boolean>
  unban (id: string): Promise<boolean>
  isBanned (id: string): boolean
}

export interface WebUserRecord {
  id: string
  nickname?: string
  createdAt: string
  lastSeenAt: string
  banned?: boolean
  bannedAt?: string
}

/** The web UI's users as the sysop routes see them; ban reasons are kept in memory beside them */
export function webUserDirectory (web: WebUsers): UserDirectory {
  const reasons = new Map<string, string>()
  const view = (r: WebUserRecord): SysopUser => {
    const u: SysopUser = { id: r.id, banned: r.banned === true, firstSeen: r.createdAt, lastSeen: r.lastSeenAt }
    if (r.nickname !== undefined) u.name = r.nickname
    if (r.bannedAt !== undefined) u.bannedAt = r.bannedAt
    const reason = reasons.get(r.id)
    if (u.banned && reason !== undefined && reason !== '') u.banReason = reason
    return u
  }
  return {
    async list () { return web.list().map(view) },
    async get (id) {
      const r = web.get(id)
      return r == null ? undefined : view(r)
    },
    async ban (id, reason) {
      checkUserId(id)
      const r = checkReason(reason)
      if (!await web.ban(id)) throw notFound(id)
      reasons.set(id, r)
      return view(web.get(id)!)
    },
    async unban (id) {
      checkUserId(id)
      if (!await web.unban(id)) throw notFound(id)
      reasons.delete(id)
      return view(web.get(id)!)
    },
    isBanned: (id) => web.isBanned(id)
  }
}
