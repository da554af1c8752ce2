/**
 * Sysop authentication. The sysop is whoever holds the token in `DIR/sysop.token`: sent as
 * `Authorization: Bearer <token>`, or exchanged once (`POST /realm/sysop/session`) for a browser
 * session cookie (HttpOnly, SameSite=Strict, Path=/, Secure over TLS) backed by a server-side
 * session that expires. Tokens are compared in constant time (SHA-256 of both, then
 * `timingSafeEqual`). Failed attempts are counted per client address: past 5 in a minute the
 * address is locked out (429 `TOO_MANY_ATTEMPTS`, Retry-After), even with the right token, until
 * the window has slid past them.
 *
 * The token file is the truth: it is checked for a change (inode, size, mtime) on every
 * authentication, so `realm sysop rotate-token` takes effect at once — the old token stops working
 * and every session ends. An unreadable or malformed file accepts no token (fails closed).
 */
import fs from 'node:fs'
import path from 'node:path'
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { logger } from '@libp2p/logger'
import type { EventBus } from '../events/index.js'
import type { Startable } from '../startable.js'
import { TooManyAttemptsError, UnauthorizedError } from './errors.js'
import {
  AUTH_MAX_FAILURES, AUTH_MAX_TRACKED_ADDRESSES, AUTH_WINDOW_MS, MAX_SESSIONS, SESSION_COOKIE,
  SESSION_ID_BYTES, SESSION_TTL_MS
} from './constants.js'

const TOKEN_RE = /^[0-9a-f]{64}$/
const BEARER_RE = /^Bearer[ \t]+(\S+)[ \t]*$/i
/** Longest credential looked at (anything longer is not ours) */
const MAX_CREDENTIAL_CHARS = 4096

export interface SysopAuthInit {
  /** the token file, `DIR/sysop.token` */
  tokenFile: string
  /** failed attempts per address within `windowMs` before a lockout; default 5 (AUTH_MAX_FAILURES) */
  maxFailures?: number
  /** window of the failure count, ms; default 60 000 (AUTH_WINDOW_MS) */
  windowMs?: number
  /** lifetime of a browser session, ms; default 12 h (SESSION_TTL_MS) */
  sessionTtlMs?: number
  /** where `sysop.auth_failed`, `sysop.locked_out`, `sysop.token_changed`, `sysop.session_*` go; default: none */
  events?: EventBus
  /** the clock; default `Date.now` */
  now?: () => number
}

/** The part of a request authentication reads (a Node IncomingMessage fits) */
export interface AuthRequest {
  headers: IncomingMessage['headers']
  socket: { remoteAddress?: string }
}

export type AuthMethod = 'token' | 'session'

export interface SessionInfo {
  /** the cookie value: only its hash is kept */
  id: string
  expiresAt: number
}

interface Session {
  expiresAt: number
}

interface FileStamp {
  ino: number
  size: number
  mtimeMs: number
}

/** SHA-256 of a credential, the form in which credentials are kept and compared */
export function credentialHash (text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/** Constant-time comparison of a presented credential with a kept hash */
export function credentialMatches (presented: string, keptHash: Buffer | undefined): boolean {
  const h = credentialHash(presented)
  if (keptHash == null || keptHash.length !== h.length) {
    // same work either way
    timingSafeEqual(h, h)
    return false
  }
  return timingSafeEqual(h, keptHash)
}

/** The client address of a request (an IPv4 client on a dual-stack socket as plain IPv4) */
export function clientAddress (req: AuthRequest, address?: string): string {
  const a = address ?? req.socket.remoteAddress ?? 'unknown'
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice('::ffff:'.length) : a
}

/** The bearer credential of a request, if any */
export function bearerOf (req: AuthRequest): string | undefined {
  const h = req.headers.authorization
  if (typeof h !== 'string' || h.length > MAX_CREDENTIAL_CHARS + 16) return undefined
  return BEARER_RE.exec(h)?.[1]
}

/** The value of a cookie in a request, if any */
export function cookieOf (req: AuthRequest, name: string): string | undefined {
  const h = req.headers.cookie
  if (typeof h !== 'string' || h.length > 16 * 1024) return undefined
  for (const part of h.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

export class SysopAuth implements Startable {
  private readonly log = logger('realm:sysop-auth')
  private readonly now: () => number
  private readonly maxFailures: number
  private readonly windowMs: number
  private readonly sessionTtlMs: number
  private tokenHash?: Buffer
  private stamp?: FileStamp
  /** session id hash (hex) → session */
  private readonly sessions = new Map<string, Session>()
  /** client address → times of its recent failures, oldest first */
  private readonly failures = new Map<string, number[]>()
  private watcher?: fs.FSWatcher

  constructor (private readonly init: SysopAuthInit) {
    this.now = init.now ?? Date.now
    this.maxFailures = init.maxFailures ?? AUTH_MAX_FAILURES
    this.windowMs = init.windowMs ?? AUTH_WINDOW_MS
    this.sessionTtlMs = init.sessionTtlMs ?? SESSION_TTL_MS
  }

  /** Read the token and watch its file (so sessions end as soon as it is rotated) */
  start (): void {
    this.refresh()
    try {
      // the folder, not the file: an atomic rename replaces the file's inode
      const base = path.basename(this.init.tokenFile)
      this.watcher = fs.watch(path.dirname(this.init.tokenFile), { persistent: false }, (_event, name) => {
        if (name == null || name === base) this.refresh()
      })
      this.watcher.on('error', () => { this.watcher?.close(); this.watcher = undefined })
    } catch (err) {
      // every authentication checks the file anyway
      this.log('cannot watch the token file: %s', (err as Error).message)
    }
  }

  stop (): void {
    this.watcher?.close()
    this.watcher = undefined
    this.sessions.clear()
  }

  /** Re-read the token file if it changed; a change ends every session */
  refresh (): void {
    let stamp: FileStamp | undefined
    try {
      const st = fs.statSync(this.init.tokenFile)
      stamp = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs }
    } catch {
      stamp = undefined
    }
    const same = stamp != null && this.stamp != null && stamp.ino === this.stamp.ino && stamp.size === this.stamp.size && stamp.mtimeMs === this.stamp.mtimeMs
    if (same) return
    const first = this.stamp == null && this.tokenHash == null
    let token: string | undefined
    try {
      token = fs.readFileSync(this.init.tokenFile, 'utf8').trim()
    } catch {
      token = undefined
    }
    const nextHash = token != null && TOKEN_RE.test(token) ? credentialHash(token) : undefined
    const changed = this.tokenHash == null || nextHash == null || !timingSafeEqual(this.tokenHash, nextHash)
    this.stamp = stamp
    this.tokenHash = nextHash
    if (changed && !first) {
      this.sessions.clear()
      this.init.events?.emit('sysop.token_changed', { valid: nextHash != null })
    }
  }

  /**
   * Authenticate a request to a sysop route: a bearer token or a session cookie.
   * A wrong bearer token counts as a failed attempt; a missing or unknown session does not
   * (session ids are 256-bit random values, not guessable).
   *
   * @throws TooManyAttemptsError while the client's address is locked out (whatever it sends)
   * @throws UnauthorizedError without a valid token or session
   */
  authenticate (req: AuthRequest, address?: string): AuthMethod {
    const from = clientAddress(req, address)
    this.checkLockout(from)
    this.refresh()
    const bearer = bearerOf(req)
    if (bearer !== undefined) {
      if (credentialMatches(bearer, this.tokenHash)) return 'token'
      this.fail(from)
      throw new UnauthorizedError('wrong sysop token')
    }
    if (this.session(req) != null) return 'session'
    throw new UnauthorizedError()
  }

  /**
   * Is this request the sysop's? For the events WebSocket and other routes that serve everyone
   * but give the sysop more: never throws, counts no failures, false while locked out.
   */
  isSysopRequest (req: AuthRequest, address?: string): boolean {
    if (this.lockedFor(clientAddress(req, address)) > 0) return false
    this.refresh()
    const bearer = bearerOf(req)
    if (bearer !== undefined) return credentialMatches(bearer, this.tokenHash)
    return this.session(req) != null
  }

  /**
   * Exchange the token for a session (`POST /realm/sysop/session`). A wrong token counts as a
   * failed attempt.
   *
   * @throws TooManyAttemptsError, UnauthorizedError
   */
  login (req: AuthRequest, token: unknown, address?: string): SessionInfo {
    const from = clientAddress(req, address)
    this.checkLockout(from)
    this.refresh()
    if (typeof token !== 'string' || token.length > MAX_CREDENTIAL_CHARS || !credentialMatches(token, this.tokenHash)) {
      this.fail(from)
      throw new UnauthorizedError('wrong sysop token')
    }
    return this.newSession(req, from)
  }

  /** A new session for a request already authenticated */
  newSession (req: AuthRequest, address?: string): SessionInfo {
    const from = clientAddress(req, address)
    this.pruneSessions()
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!)
    const id = randomBytes(SESSION_ID_BYTES).toString('base64url')
    const expiresAt = this.now() + this.sessionTtlMs
    this.sessions.set(credentialHash(id).toString('hex'), { expiresAt })
    this.init.events?.emit('sysop.session_created', { address: from, expiresAt: new Date(expiresAt).toISOString() })
    return { id, expiresAt }
  }

  /** End the request's session, if it has one */
  logout (req: AuthRequest, address?: string): boolean {
    const id = cookieOf(req, SESSION_COOKIE)
    if (id === undefined) return false
    const ended = this.sessions.delete(credentialHash(id).toString('hex'))
    if (ended) this.init.events?.emit('sysop.session_ended', { address: clientAddress(req, address) })
    return ended
  }

  /** The request's live session, if any */
  session (req: AuthRequest): Session | undefined {
    const id = cookieOf(req, SESSION_COOKIE)
    if (id === undefined || id.length === 0 || id.length > 128) return undefined
    const key = credentialHash(id).toString('hex')
    const s = this.sessions.get(key)
    if (s == null) return undefined
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(key)
      return undefined
    }
    return s
  }

  /** The `Set-Cookie` value for a session (`secure` when the gateway speaks TLS) */
  sessionCookie (session: SessionInfo, secure: boolean): string {
    const maxAge = Math.max(0, Math.floor((session.expiresAt - this.now()) / 1000))
    return `${SESSION_COOKIE}=${session.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? '; Secure' : ''}`
  }

  /** The `Set-Cookie` value that removes the session cookie */
  clearCookie (secure: boolean): string {
    return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`
  }

  /** Live sessions (for tests and the status of the sysop tools) */
  get sessionCount (): number {
    this.pruneSessions()
    return this.sessions.size
  }

  /** Seconds an address must still wait, 0 when it is not locked out */
  lockedFor (address: string): number {
    const times = this.recentFailures(address)
    if (times.length < this.maxFailures) return 0
    const until = times[times.length - this.maxFailures] + this.windowMs
    return Math.max(1, Math.ceil((until - this.now()) / 1000))
  }

  private checkLockout (address: string): void {
    const wait = this.lockedFor(address)
    if (wait > 0) throw new TooManyAttemptsError(wait)
  }

  private recentFailures (address: string): number[] {
    const times = this.failures.get(address)
    if (times == null) return []
    const since = this.now() - this.windowMs
    while (times.length > 0 && times[0] <= since) times.shift()
    if (times.length === 0) this.failures.delete(address)
    return times
  }

  private fail (address: string): void {
    let times = this.failures.get(address)
    if (times == null) {
      if (this.failures.size >= AUTH_MAX_TRACKED_ADDRESSES) this.failures.delete(this.failures.keys().next().value!)
      times = []
      this.failures.set(address, times)
    }
    times.push(this.now())
    // only what the lockout needs is kept
    if (times.length > this.maxFailures) times.splice(0, times.length - this.maxFailures)
    this.init.events?.emit('sysop.auth_failed', { address, failures: times.length })
    if (times.length >= this.maxFailures) this.init.events?.emit('sysop.locked_out', { address, retryAfterS: this.lockedFor(address) })
  }

  private pruneSessions (): void {
    const now = this.now()
    for (const [k, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(k)
  }
}
