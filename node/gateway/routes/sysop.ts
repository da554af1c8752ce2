/**
 * Sysop routes, under `/realm/sysop`. Every one needs the sysop: `Authorization: Bearer <token>`
 * or a session cookie from `POST /realm/sysop/session` (the only route that takes the token in
 * its body). Without either: 401 `UNAUTHORIZED`, whatever the path (an unknown sysop path is a
 * 401 before it is a 404). An address with too many failed attempts: 429 `TOO_MANY_ATTEMPTS`.
 *
 * - `POST|GET|DELETE /session`: log in (sets the cookie), who am I, log out
 * - `GET /blocklist`, `POST /blocklist` `{ peerId | cidr, reason?, expiresAt?, allow? }` → 201,
 *   `DELETE /blocklist/:entry` (peer id or URL-encoded range; `?allow=true` removes an allow
 *   entry), `POST /blocklist/publish`
 * - `GET /users`, `POST|DELETE /users/:id/ban` `{ reason? }`
 * - `POST|DELETE /workers/:id/bench` `{ reason? }`
 * - `POST /broadcast` `{ message }` → a `sysop.broadcast` event every events client gets
 * - `GET /log?since=&follow=` → the trace log as NDJSON (`follow` keeps streaming)
 */
import { Router } from '@koa/router'
import { PassThrough } from 'node:stream'
import type { Context, Next } from 'koa'
import { z } from 'zod'
import { HttpError } from '../errors.js'
import { readRawBody } from '../compat/body.js'
import {
  BenchableWorker, MAX_BROADCAST_CHARS, SysopInputError, SysopNotFoundError, BlocklistFullError, TooManyAttemptsError,
  UnauthorizedError, checkUserId, parseCidr, formatCidr, parsePeerId, type BlockEntry, type SysopApi
} from '../../sysop/index.js'
import { readTrace } from '../../trace/index.js'
import { RealmError, errorMessage } from '../../../protocol/errors.js'

/** Largest body a sysop route reads */
export const MAX_SYSOP_BODY_BYTES = 16 * 1024
export const SYSOP_PREFIX = '/realm/sysop'

const BlockBodySchema = z.object({
  peerId: z.string().max(200).optional(),
  cidr: z.string().max(200).optional(),
  reason: z.string().max(1000).optional(),
  expiresAt: z.string().max(64).optional(),
  /** an allow entry instead: overrides followed publishers' entries for this target */
  allow: z.boolean().optional()
}).strict()

const ReasonBodySchema = z.object({ reason: z.string().max(1000).optional() }).strict()
const SessionBodySchema = z.object({ token: z.string().max(4096).optional() }).strict()
const BroadcastBodySchema = z.object({ message: z.string() }).strict()

/** Is this path one of the sysop routes' (they all need the sysop) */
export function isSysopPath (path: string): boolean {
  return path === SYSOP_PREFIX || path.startsWith(SYSOP_PREFIX + '/')
}

/** Sysop tool errors as HTTP errors */
function httpErrorOf (err: unknown): unknown {
  if (err instanceof HttpError) return err
  if (err instanceof UnauthorizedError) return new HttpError(401, 'UNAUTHORIZED', err.message, { headers: { 'WWW-Authenticate': 'Bearer realm="rentahal-sysop"' } })
  if (err instanceof TooManyAttemptsError) return new HttpError(429, 'TOO_MANY_ATTEMPTS', err.message, { headers: { 'Retry-After': String(err.retryAfterS) } })
  if (err instanceof SysopInputError) return new HttpError(400, err.code, err.message)
  if (err instanceof SysopNotFoundError) return new HttpError(404, err.code, err.message)
  if (err instanceof BlocklistFullError) return new HttpError(409, err.code, err.message)
  if (err instanceof RealmError && (err.code === 'TOO_LARGE' || err.code === 'UNSUPPORTED_MEDIA_TYPE')) {
    return new HttpError(err.code === 'TOO_LARGE' ? 413 : 415, err.code, err.message)
  }
  return err
}

async function readBody<T> (ctx: Context, schema: z.ZodType<T>, optional = false): Promise<T> {
  const raw = await readRawBody(ctx, MAX_SYSOP_BODY_BYTES)
  const text = raw.toString('utf8')
  let json: unknown = {}
  if (text.trim() !== '') {
    try {
      json = JSON.parse(text)
    } catch {
      throw new HttpError(400, 'INVALID_JSON', 'the body is not JSON')
    }
  } else if (!optional) {
    throw new HttpError(400, 'INVALID_REQUEST', 'a JSON body is required')
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new HttpError(400, 'INVALID_REQUEST', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`)
  }
  return parsed.data
}

/** An entry as the API shows it */
function entryView (e: BlockEntry & { effective?: boolean }): Record<string, unknown> {
  return { ...(e.kind === 'peer' ? { peerId: e.entry } : { cidr: e.entry }), ...e }
}

/**
 * The sysop routes as one Koa middleware: authentication first (every path under
 * `/realm/sysop` except `POST /realm/sysop/session`), then the routes; `next` is the 404.
 */
export function sysopRoutes (s: SysopApi): (ctx: Context, next: Next) => Promise<void> {
  const router = new Router({ prefix: SYSOP_PREFIX })

  router.get('/session', (ctx) => {
    const session = s.auth.session(ctx.req)
    ctx.body = { sysop: true, via: ctx.state.sysop, ...(session != null ? { expiresAt: new Date(session.expiresAt).toISOString() } : {}) }
  })

  router.delete('/session', (ctx) => {
    const ended = s.auth.logout(ctx.req, ctx.ip)
    ctx.set('Set-Cookie', s.auth.clearCookie(ctx.secure))
    ctx.body = { loggedOut: ended }
  })

  router.get('/blocklist', (ctx) => {
    const view = s.blocklist.view()
    ctx.body = {
      entries: view.entries.map(entryView),
      allows: view.allows.map(a => ({ ...(a.kind === 'peer' ? { peerId: a.entry } : { cidr: a.entry }), ...a })),
      publishers: view.publishers,
      ...s.sharing()
    }
  })

  router.post('/blocklist', async (ctx) => {
    const body = await readBody(ctx, BlockBodySchema)
    if ((body.peerId === undefined) === (body.cidr === undefined)) throw new HttpError(400, 'INVALID_ENTRY', 'give exactly one of peerId and cidr')
    const target = body.peerId !== undefined
      ? { kind: 'peer' as const, entry: parsePeerId(body.peerId) }
      : { kind: 'cidr' as const, entry: formatCidr(parseCidr(body.cidr!)) }
    if (body.expiresAt !== undefined && Number.isNaN(Date.parse(body.expiresAt))) throw new HttpError(400, 'INVALID_EXPIRY', 'expiresAt must be an ISO-8601 time')
    const opts = { reason: body.reason, expiresAt: body.expiresAt }
    if (body.allow === true) {
      const allow = await s.blocklist.allow(target, opts)
      ctx.status = 201
      ctx.body = { ...(allow.kind === 'peer' ? { peerId: allow.entry } : { cidr: allow.entry }), ...allow, allow: true }
      return
    }
    const entry = await s.blocklist.block(target, opts)
    ctx.status = 201
    ctx.body = entryView({ ...entry, effective: true })
  })

  router.post('/blocklist/publish', async (ctx) => {
    ctx.body = await s.publish()
  })

  const unblock = async (ctx: Context, text: string): Promise<void> => {
    if (ctx.query.allow === 'true' || ctx.query.allow === '1') {
      const allow = await s.blocklist.removeAllow(text)
      ctx.body = { entry: allow.entry, kind: allow.kind, allowRemoved: true }
      return
    }
    const r = await s.blocklist.unblock(text)
    ctx.body = { entry: r.target.entry, kind: r.target.kind, removed: r.removed != null, overridden: r.override != null }
  }
  router.delete('/blocklist/:entry', async (ctx) => { await unblock(ctx, ctx.params.entry) })
  // a range whose `/` was not URL-encoded
  router.delete('/blocklist/:address/:prefix', async (ctx) => { await unblock(ctx, `${ctx.params.address}/${ctx.params.prefix}`) })

  router.get('/users', async (ctx) => {
    ctx.body = { users: await s.users().list() }
  })

  router.post('/users/:id/ban', async (ctx) => {
    const id = checkUserId(ctx.params.id)
    const { reason } = await readBody(ctx, ReasonBodySchema, true)
    const user = await s.users().ban(id, reason)
    const cancelled = s.onBan(id)
    s.events.emit('sysop.user_banned', { userId: id, cancelled })
    ctx.body = { user, cancelled }
  })

  router.delete('/users/:id/ban', async (ctx) => {
    const id = checkUserId(ctx.params.id)
    if (!s.users().isBanned(id)) throw new HttpError(404, 'USER_NOT_FOUND', `user ${id} is not banned`)
    const user = await s.users().unban(id)
    s.events.emit('sysop.user_unbanned', { userId: id })
    ctx.body = { user }
  })

  const benchable = (id: string): BenchableWorker => {
    const worker = s.workers().find(w => w.id === id)
    if (worker == null || !(worker instanceof BenchableWorker)) throw new HttpError(404, 'WORKER_NOT_FOUND', `no worker ${id.slice(0, 64)} on this node`)
    return worker
  }

  router.post('/workers/:id/bench', async (ctx) => {
    const worker = benchable(ctx.params.id)
    const { reason } = await readBody(ctx, ReasonBodySchema, true)
    const status = worker.bench(reason)
    s.events.emit('sysop.worker_benched', { workerId: worker.id, reason: worker.sysopBench?.reason ?? '' })
    ctx.body = { worker: status }
  })

  router.delete('/workers/:id/bench', (ctx) => {
    const worker = benchable(ctx.params.id)
    if (!worker.unbench()) throw new HttpError(404, 'NOT_BENCHED', `worker ${worker.id} is not benched by the sysop`)
    s.events.emit('sysop.worker_unbenched', { workerId: worker.id })
    ctx.body = { worker: worker.status() }
  })

  router.post('/broadcast', async (ctx) => {
    const { message } = await readBody(ctx, BroadcastBodySchema)
    const text = message.trim()
    if (text === '' || text.length > MAX_BROADCAST_CHARS) throw new HttpError(400, 'INVALID_MESSAGE', `a message is 1 to ${MAX_BROADCAST_CHARS} characters`)
    const event = s.events.emit('sysop.broadcast', { message: text })
    ctx.body = event
  })

  router.get('/log', (ctx) => {
    const sinceText = typeof ctx.query.since === 'string' ? ctx.query.since : undefined
    const since = sinceText !== undefined && sinceText !== '' ? new Date(sinceText) : undefined
    if (since != null && Number.isNaN(since.getTime())) throw new HttpError(400, 'INVALID_SINCE', 'since must be an ISO-8601 time')
    const follow = ctx.query.follow === 'true' || ctx.query.follow === '1' || ctx.query.follow === ''
    const controller = new AbortController()
    const body = new PassThrough()
    ctx.req.on('close', () => { controller.abort() })
    body.on('close', () => { controller.abort() })
    ctx.status = 200
    ctx.set({ 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' })
    ctx.body = body
    void (async () => {
      try {
        for await (const event of readTrace(s.traceDir, { since, follow, signal: controller.signal })) {
          if (!body.write(JSON.stringify(event) + '\n')) {
            await new Promise<void>(resolve => {
              const done = (): void => { body.off('drain', done); body.off('close', done); resolve() }
              body.once('drain', done)
              body.once('close', done)
            })
          }
          if (body.destroyed) break
        }
      } catch (err) {
        if ((err as Error)?.name !== 'AbortError') body.write(JSON.stringify({ type: 'log.error', time: new Date().toISOString(), message: errorMessage(err) }) + '\n')
      } finally {
        body.end()
      }
    })()
  })

  const routes = router.routes()
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      if (ctx.method === 'POST' && ctx.path === `${SYSOP_PREFIX}/session`) {
        // the token in the body; a body without one may still log in with a bearer token or session
        const token = await readBody(ctx, SessionBodySchema, true).then(b => b.token, () => undefined)
        // the client's address as the gateway knows it (behind a trusted proxy: the forwarded one)
        if (token === undefined) s.auth.authenticate(ctx.req, ctx.ip)
        const session = token === undefined ? s.auth.newSession(ctx.req, ctx.ip) : s.auth.login(ctx.req, token, ctx.ip)
        ctx.set('Set-Cookie', s.auth.sessionCookie(session, ctx.secure))
        ctx.set('Cache-Control', 'no-store')
        ctx.body = { sysop: true, expiresAt: new Date(session.expiresAt).toISOString() }
        return
      }
      ctx.state.sysop = s.auth.authenticate(ctx.req, ctx.ip)
      ctx.set('Cache-Control', 'no-store')
      await routes(ctx as any, next)
    } catch (err) {
      throw httpErrorOf(err)
    }
  }
}
