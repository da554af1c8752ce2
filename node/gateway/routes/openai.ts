/** OpenAI-compatible routes (https://platform.openai.com/docs/api-reference) */
import { Router } from '@koa/router'
import type { Context, Next } from 'koa'
import type { GatewayComponents } from '../types.js'
import { toErrorShape } from '../errors.js'

/** OpenAI's error form: `{ error: { message, type, param, code } }` */
export function openaiErrors () {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next()
    } catch (err) {
      const shape = toErrorShape(err)
      ctx.status = shape.status
      if (shape.headers != null) ctx.set(shape.headers)
      const type = shape.status === 429 ? 'rate_limit_exceeded' : shape.status >= 500 ? 'server_error' : 'invalid_request_error'
      ctx.body = { error: { message: shape.message, type, param: null, code: shape.code.toLowerCase() } }
    }
  }
}

export function openaiRoutes (c: GatewayComponents): Router {
  const router = new Router({ prefix: '/v1' })
  router.use(openaiErrors())

  router.get('/models', (ctx) => {
    ctx.body = {
      object: 'list',
      data: c.models().map(m => ({
        id: m.name,
        object: 'model',
        created: Math.floor(m.firstSeen / 1000),
        owned_by: m.peers.length === 1 ? m.peers[0] : 'realm'
      }))
    }
  })

  return router
}
