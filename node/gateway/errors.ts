/**
 * HTTP errors. Realm routes answer `{ error: { code, message } }`; the compatibility routes
 * answer in the shape of the API they copy (their own middleware maps errors).
 */
import type { Context, Next } from 'koa'
import { RealmError, errorMessage } from '../../protocol/errors.js'

export class HttpError extends RealmError {
  override name = 'HttpError'
  readonly status: number
  readonly headers?: Record<string, string>

  constructor (status: number, code: string, message: string, options?: { headers?: Record<string, string>, details?: Record<string, unknown> }) {
    super(code, message, { details: options?.details })
    this.status = status
    this.headers = options?.headers
  }
}

/** Status for errors thrown by lower layers that carry only a code */
const STATUS_BY_CODE: Record<string, number> = {
  INVALID_MESSAGE: 400,
  INVALID_REQUEST: 400,
  // the bounded body readers (compat/body.ts), also used by realm routes
  INVALID_JSON: 400,
  EMPTY_BODY: 400,
  INVALID_MULTIPART: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_LARGE: 413,
  MODEL_NOT_FOUND: 404,
  NOT_FOUND: 404,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  QUEUE_FULL: 429,
  RATE_LIMITED: 429
}

export interface ErrorShape {
  status: number
  code: string
  message: string
  headers?: Record<string, string>
}

/** Normalise anything thrown in a route into status + code + message (no stack traces out) */
export function toErrorShape (err: unknown): ErrorShape {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message, headers: err.headers }
  if (err instanceof RealmError) return { status: STATUS_BY_CODE[err.code] ?? 500, code: err.code, message: err.message }
  const e = err as any
  // koa / bodyparser errors carry a status (413 too large, 400 bad JSON, 415 type)
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    const code = e.status === 413 ? 'BODY_TOO_LARGE' : e.status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'INVALID_REQUEST'
    return { status: e.status, code, message: e.expose === true ? errorMessage(err) : 'invalid request' }
  }
  return { status: 500, code: 'INTERNAL', message: 'internal error' }
}

/** Realm-route error middleware: `{ error: { code, message } }` */
export function realmErrors () {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next()
    } catch (err) {
      const shape = toErrorShape(err)
      if (shape.status >= 500) ctx.app.emit('error', err, ctx)
      ctx.status = shape.status
      if (shape.headers != null) ctx.set(shape.headers)
      ctx.body = { error: { code: shape.code, message: shape.message } }
    }
  }
}
