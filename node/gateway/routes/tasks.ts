/**
 * Realm task routes: `POST /realm/tasks` (202 `{ id }`, or the task's events as SSE with
 * `Accept: text/event-stream`), `GET /realm/tasks` (this requester's history, newest first),
 * `GET /realm/tasks/:id`, `DELETE /realm/tasks/:id` (cancel).
 */
import { Router } from '@koa/router'
import { PassThrough } from 'node:stream'
import { z } from 'zod'
import type { GatewayComponents } from '../types.js'
import { HttpError } from '../errors.js'
import { readRawBody } from '../compat/body.js'
import { requesterOf } from '../compat/requester.js'
import { TaskError, type TaskEvent } from '../../tasks/types.js'
import { taskStored } from '../../tasks/manager.js'
import { failpoint } from '../../watchdog/failpoints.js'
import { TaskKindSchema } from '../../../protocol/kinds.js'
import { TaskOptionsSchema } from '../../../protocol/task.js'

/** Largest task body: room for images and audio in base64 */
export const MAX_TASK_BODY_BYTES = 32 * 1024 * 1024
/** SSE comment sent this often while a task has nothing to say, so proxies keep the stream */
const SSE_KEEPALIVE_MS = 15_000
const ID_RE = /^[A-Za-z0-9_-]{8,64}$/

const SubmitSchema = z.object({
  kind: TaskKindSchema,
  model: z.string().min(1).max(200),
  input: z.unknown(),
  options: TaskOptionsSchema.optional()
}).strict()

const STATUS_BY_TASK_CODE: Record<string, number> = {
  INVALID_TASK: 400,
  MODEL_NOT_FOUND: 404,
  QUEUE_FULL: 429,
  FORBIDDEN: 403,
  NO_WORKER: 503
}

/** A TaskError thrown before the task started, as an HTTP error */
export function taskHttpError (err: TaskError): HttpError {
  const status = STATUS_BY_TASK_CODE[err.code] ?? 502
  const headers: Record<string, string> = {}
  if (err.code === 'QUEUE_FULL') headers['Retry-After'] = String(Math.max(1, Math.ceil(Number(err.details?.retryAfterS ?? 5))))
  return new HttpError(status, err.code, err.message, { headers })
}

/** Event fields a client gets: media travel whole, everything is JSON */
function sse (event: TaskEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`
}

export function taskRoutes (c: GatewayComponents): Router {
  const router = new Router()

  router.post('/tasks', async (ctx) => {
    const raw = await readRawBody(ctx, MAX_TASK_BODY_BYTES)
    let json: unknown
    try {
      json = JSON.parse(raw.toString('utf8'))
    } catch {
      throw new HttpError(400, 'INVALID_JSON', 'the body is not JSON')
    }
    const parsed = SubmitSchema.safeParse(json)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw new HttpError(400, 'INVALID_TASK', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`)
    }
    const stream = (ctx.get('accept') ?? '').includes('text/event-stream')
    const controller = new AbortController()
    let run
    try {
      run = c.tasks.submit(parsed.data, { requester: requesterOf(ctx), signal: stream ? controller.signal : undefined, restartMode: 'restart' })
    } catch (err) {
      if (err instanceof TaskError) throw taskHttpError(err)
      throw err
    }
    // a client that goes away cancels its task
    if (stream) ctx.req.on('close', () => { if (!ctx.res.writableEnded) controller.abort() })
    // acknowledged only once its record is in the database: a crash after this cannot lose it
    try {
      await taskStored(run)
    } catch (err) {
      run.cancel()
      throw new HttpError(500, 'INTERNAL', `the task could not be recorded: ${err instanceof Error ? err.message : String(err)}`)
    }
    if (!stream) {
      ctx.status = 202
      ctx.body = { id: run.id }
      ctx.res.once('finish', () => { failpoint('task.acknowledged') })
      return
    }
    ctx.res.on('close', () => { if (!ctx.res.writableFinished) controller.abort() })
    const body = new PassThrough()
    ctx.status = 200
    ctx.set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no', 'X-Task-Id': run.id })
    ctx.body = body
    const keepalive = setInterval(() => { body.write(': keepalive\n\n') }, SSE_KEEPALIVE_MS)
    const off = run.subscribe((event) => {
      body.write(sse(event))
      if (event.type === 'task.done' || event.type === 'task.error') {
        clearInterval(keepalive)
        body.end()
      }
    })
    body.on('close', () => { off(); clearInterval(keepalive) })
  })

  router.get('/tasks', async (ctx) => {
    const limit = Math.min(500, Math.max(1, Number(ctx.query.limit ?? 50) || 50))
    const tasks = await c.tasks.list(requesterOf(ctx), { limit })
    ctx.body = { tasks: tasks.map(({ requester, ...t }) => t) }
  })

  router.get('/tasks/:id', async (ctx) => {
    if (!ID_RE.test(ctx.params.id)) throw new HttpError(400, 'INVALID_ID', 'not a task id')
    const task = await c.tasks.get(ctx.params.id, requesterOf(ctx))
    if (task == null) throw new HttpError(404, 'TASK_NOT_FOUND', `no task ${ctx.params.id} of yours`)
    const { requester, ...rest } = task
    ctx.body = rest
  })

  router.delete('/tasks/:id', async (ctx) => {
    if (!ID_RE.test(ctx.params.id)) throw new HttpError(400, 'INVALID_ID', 'not a task id')
    // the sysop (token or session) may cancel any task
    const sysop = c.sysop?.auth.isSysopRequest(ctx.req, ctx.ip) === true
    if (!c.tasks.cancel(ctx.params.id, sysop ? undefined : requesterOf(ctx))) throw new HttpError(404, 'TASK_NOT_FOUND', `no running task ${ctx.params.id}${sysop ? '' : ' of yours'}`)
    ctx.body = { id: ctx.params.id, cancelled: true }
  })

  return router
}
