/**
 * Web UI users: every browser gets an anonymous identity in an HttpOnly cookie, with a nickname
 * it can set. The cookie holds a random 128-bit secret; the user's id is a hash of it, so the id
 * (which the sysop sees, and which names the requester `user:<id>` in task records, events and
 * the trace log) never lets anyone act as the user. Users live in the db (`Bucket.users`) and in
 * memory, so a request or a WebSocket upgrade finds its user without I/O.
 *
 * A banned user's requests get 403 `USER_BANNED`; `onBan` listeners close their sockets and
 * cancel their tasks.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Context, Next } from 'koa'
import { z } from 'zod'
import { logger } from '@libp2p/logger'
import { Bucket, type BucketStore, type RealmDb } from '../db/index.js'
import type { EventBus } from '../events/index.js'
import type { Startable } from '../startable.js'
import { Router } from '@koa/router'
import { HttpError } from './errors.js'
import { readRawBody } from './compat/body.js'

/** Name of the identity cookie */
export const USER_COOKIE = 'rah_user'
/** Bytes of randomness in the cookie secret (128 bits) */
export const USER_TOKEN_BYTES = 16
/** Longest nickname, in characters */
export const MAX_NICKNAME_CHARS = 32
/** The cookie lives this long (Chromium caps cookie lifetimes at 400 days) */
export const USER_COOKIE_MAX_AGE_MS = 400 * 24 * 3600 * 1000
/**
 * Most users one node keeps: beyond it no new identity is made (requests fall back to their
 * address as requester), so cookie-less request floods cannot grow the db without bound
 */
export const MAX_USERS = 100_000
/** `lastSeenAt` is written at most this often per user, so browsing is not a db write per request */
const LAST_SEEN_WRITE_MS = 10 * 60 * 1000
/** Domain separation: the id is a hash of the secret that is never reused for anything else */
const USER_ID_DOMAIN = 'rentahal/user-id/1\n'
/** A cookie secret: 16 random bytes, base64url */
const TOKEN_RE = /^[A-Za-z0-9_-]{22}$/
/** A user id: 128 bits of the hash, base64url */
export const USER_ID_RE = /^[A-Za-z0-9_-]{22}$/
/** Control and bidi-override characters, refused in nicknames (they can disguise text) */
const NICKNAME_FORBIDDEN_RE = /[\p{Cc}\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/u

export const UserRecordSchema = z.object({
  id: z.string().regex(USER_ID_RE),
  nickname: z.string().max(MAX_NICKNAME_CHARS * 2).optional(),
  createdAt: z.string(),
  lastSeenAt: z.string(),
  banned: z.boolean().optional(),
  bannedAt: z.string().optional()
}).strict()
export type UserRecord = z.infer<typeof UserRecordSchema>

/** What routes see in `ctx.state.user` */
export interface SessionUser {
  id: string
  nickname?: string
}

export class UserBannedError extends HttpError {
  override name = 'UserBannedError'
  constructor () {
    super(403, 'USER_BANNED', 'this browser\'s user has been banned by the node\'s sysop')
  }
}

export class InvalidNicknameError extends HttpError {
  override name = 'InvalidNicknameError'
  constructor (message: string) {
    super(400, 'INVALID_NICKNAME', message)
  }
}

/** The user id a cookie secret stands for */
export function userIdOf (token: string): string {
  return createHash('sha256').update(USER_ID_DOMAIN).update(token).digest('base64url').slice(0, 22)
}

/** A nickname as stored, or an InvalidNicknameError: trimmed, 1–32 characters, no control characters */
export function checkNickname (value: unknown): string {
  if (typeof value !== 'string') throw new InvalidNicknameError('nickname must be a string')
  const nickname = value.normalize('NFC').trim()
  const chars = [...nickname].length
  if (chars === 0) throw new InvalidNicknameError('nickname must not be empty')
  if (chars > MAX_NICKNAME_CHARS) throw new InvalidNicknameError(`nickname is ${chars} characters; the limit is ${MAX_NICKNAME_CHARS}`)
  if (NICKNAME_FORBIDDEN_RE.test(nickname)) throw new InvalidNicknameError('nickname must not contain control characters')
  return nickname
}

/** The value of one cookie in a `Cookie` header */
export function cookieValue (header: string | undefined, name: string): string | undefined {
  if (header == null) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

export type BanListener = (id: string, banned: boolean) => void

export interface UserDirectoryInit {
  db: RealmDb
  /** `user.created`, `user.banned`, `user.unbanned` go here (system topic: sysop only) */
  events?: EventBus
  /** default MAX_USERS */
  maxUsers?: number
  now?: () => number
}

/** Every user of this node's web UI: in memory, persisted in `Bucket.users` */
export class UserDirectory implements Startable {
  private readonly log = logger('realm:users')
  private readonly store: BucketStore<UserRecord>
  private readonly users = new Map<string, UserRecord>()
  private readonly banListeners = new Set<BanListener>()
  private readonly now: () => number
  private loaded = false

  constructor (private readonly init: UserDirectoryInit) {
    this.store = init.db.bucket(Bucket.users, UserRecordSchema)
    this.now = init.now ?? Date.now
  }

  async start (): Promise<void> {
    if (this.loaded) return
    for await (const [id, record] of this.store.entries()) this.users.set(id, record)
    this.loaded = true
  }

  stop (): void {
    this.banListeners.clear()
  }

  get size (): number {
    return this.users.size
  }

  get (id: string): UserRecord | undefined {
    return this.users.get(id)
  }

  /** Every user, oldest first */
  list (): UserRecord[] {
    return [...this.users.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt))
  }

  /** The user a cookie secret belongs to, without creating one */
  byToken (token: string | undefined): UserRecord | undefined {
    if (token == null || !TOKEN_RE.test(token)) return undefined
    return this.users.get(userIdOf(token))
  }

  /** The user of an HTTP request (e.g. a WebSocket upgrade), from its cookie */
  fromRequest (req: IncomingMessage): UserRecord | undefined {
    return this.byToken(cookieValue(req.headers.cookie, USER_COOKIE))
  }

  /**
   * The user a cookie secret stands for, created when new (a fresh secret, or one whose record
   * was lost). `undefined` when the secret is malformed or the directory is full.
   */
  async ensure (token: string): Promise<UserRecord | undefined> {
    if (!TOKEN_RE.test(token)) return undefined
    const id = userIdOf(token)
    const known = this.users.get(id)
    if (known != null) {
      this.touch(known)
      return known
    }
    if (this.users.size >= (this.init.maxUsers ?? MAX_USERS)) return undefined
    const time = new Date(this.now()).toISOString()
    const record: UserRecord = { id, createdAt: time, lastSeenAt: time }
    this.users.set(id, record)
    await this.store.put(id, record)
    this.init.events?.emit('user.created', { userId: id })
    return record
  }

  /** A new cookie secret (its user is made by `ensure`) */
  newToken (): string {
    return randomBytes(USER_TOKEN_BYTES).toString('base64url')
  }

  async setNickname (id: string, nickname: string | undefined): Promise<UserRecord> {
    const user = this.users.get(id)
    if (user == null) throw new HttpError(404, 'USER_NOT_FOUND', 'no such user')
    const updated: UserRecord = { ...user }
    if (nickname === undefined) delete updated.nickname
    else updated.nickname = checkNickname(nickname)
    await this.store.put(id, updated)
    this.users.set(id, updated)
    return updated
  }

  isBanned (id: string): boolean {
    return this.users.get(id)?.banned === true
  }

  /** Ban a user: effective at once (listeners close their sockets and cancel their tasks). False if unknown */
  async ban (id: string): Promise<boolean> {
    return await this.setBanned(id, true)
  }

  async unban (id: string): Promise<boolean> {
    return await this.setBanned(id, false)
  }

  /** Listen to bans and unbans; returns a function that stops listening */
  onBan (listener: BanListener): () => void {
    this.banListeners.add(listener)
    return () => { this.banListeners.delete(listener) }
  }

  private async setBanned (id: string, banned: boolean): Promise<boolean> {
    const user = this.users.get(id)
    if (user == null) return false
    const updated: UserRecord = { ...user }
    if (banned) {
      updated.banned = true
      updated.bannedAt = new Date(this.now()).toISOString()
    } else {
      delete updated.banned
      delete updated.bannedAt
    }
    // in memory first: the ban holds from this moment, whatever the write's timing
    this.users.set(id, updated)
    await this.store.put(id, updated)
    this.init.events?.emit(banned ? 'user.banned' : 'user.unbanned', { userId: id })
    for (const listener of [...this.banListeners]) {
      try {
        listener(id, banned)
      } catch (err) {
        this.log.error('ban listener failed: %s', (err as Error).message)
      }
    }
    return true
  }

  private touch (user: UserRecord): void {
    const now = this.now()
    if (now - Date.parse(user.lastSeenAt) < LAST_SEEN_WRITE_MS) return
    const updated = { ...user, lastSeenAt: new Date(now).toISOString() }
    this.users.set(user.id, updated)
    void this.store.put(user.id, updated).catch(err => { this.log.error('lastSeen: %s', (err as Error).message) })
  }
}

/**
 * Where a request without the cookie gets a new identity: the web UI page, `/realm/me`, and any
 * `/realm` route a browser calls (browsers send `Sec-Fetch-Site`; API clients such as curl or
 * Node's fetch do not, and keep their API-key or address requester).
 */
function issuesIdentity (ctx: Context): boolean {
  if (ctx.method === 'GET' && (ctx.path === '/' || ctx.path === '/index.html')) return true
  if (!ctx.path.startsWith('/realm/')) return false
  return ctx.path === '/realm/me' || ctx.get('sec-fetch-site') !== ''
}

/**
 * Koa middleware: `ctx.state.user = { id, nickname }` for a request with the identity cookie,
 * and a new identity (cookie set) where `issuesIdentity` says so. `requesterOf` then gives
 * `user:<id>`, so each user has their own history, queue share and costs.
 */
export function userIdentity (directory: UserDirectory) {
  return async (ctx: Context, next: Next): Promise<void> => {
    let token = ctx.cookies.get(USER_COOKIE)
    let user = await directoryUser(directory, token)
    if (user == null && issuesIdentity(ctx)) {
      token = directory.newToken()
      user = await directory.ensure(token)
      if (user != null) {
        ctx.cookies.set(USER_COOKIE, token, { httpOnly: true, sameSite: 'lax', path: '/', maxAge: USER_COOKIE_MAX_AGE_MS, overwrite: true })
      }
    }
    if (user != null) ctx.state.user = { id: user.id, nickname: user.nickname } satisfies SessionUser
    await next()
  }
}

async function directoryUser (directory: UserDirectory, token: string | undefined): Promise<UserRecord | undefined> {
  if (token == null) return undefined
  return directory.byToken(token) ?? await directory.ensure(token)
}

/** Koa middleware: a banned user's requests end in 403 `USER_BANNED` (thrown as an HttpError) */
export function bannedCheck (directory: UserDirectory) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const user = ctx.state.user as SessionUser | undefined
    if (user != null && directory.isBanned(user.id)) throw new UserBannedError()
    await next()
  }
}

/** Largest `POST /realm/me` body */
const MAX_ME_BODY_BYTES = 4 * 1024

/** `GET /realm/me` (who this browser is) and `POST /realm/me { nickname }` (set or clear it) */
export function userRoutes (directory: UserDirectory): Router {
  const router = new Router()
  const current = (ctx: Context): UserRecord => {
    const id = (ctx.state.user as SessionUser | undefined)?.id
    const user = id === undefined ? undefined : directory.get(id)
    if (user == null) throw new HttpError(503, 'USERS_FULL', 'this node cannot give this browser an identity now')
    return user
  }
  const view = (user: UserRecord): Record<string, unknown> => ({ id: user.id, nickname: user.nickname ?? null, createdAt: user.createdAt })

  router.get('/me', (ctx) => {
    ctx.set('Cache-Control', 'no-store')
    ctx.body = view(current(ctx))
  })

  router.post('/me', async (ctx) => {
    const user = current(ctx)
    let body: unknown
    try {
      body = JSON.parse((await readRawBody(ctx, MAX_ME_BODY_BYTES)).toString('utf8'))
    } catch (err) {
      if (err instanceof SyntaxError) throw new HttpError(400, 'INVALID_JSON', 'the body is not JSON')
      throw err
    }
    if (typeof body !== 'object' || body == null || !('nickname' in body)) throw new InvalidNicknameError('expected { "nickname": string | null }')
    const nickname = (body as { nickname: unknown }).nickname
    const updated = await directory.setNickname(user.id, nickname === null ? undefined : checkNickname(nickname))
    ctx.state.user = { id: updated.id, nickname: updated.nickname } satisfies SessionUser
    ctx.set('Cache-Control', 'no-store')
    ctx.body = view(updated)
  })

  return router
}
