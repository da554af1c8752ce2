/** Ollama-compatible routes (https://github.com/ollama/ollama/blob/main/docs/api.md) */
import { createHash } from 'node:crypto'
import { Router } from '@koa/router'
import type { Context, Next } from 'koa'
import type { GatewayComponents } from '../types.js'
import type { MeshModel } from '../../presence/mesh.js'
import { toErrorShape } from '../errors.js'

/** The Ollama version we answer with: new enough that current clients accept every route */
export const OLLAMA_COMPAT_VERSION = '0.6.4'

/** Ollama's error form: `{ "error": "message" }` */
export function ollamaErrors () {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next()
    } catch (err) {
      const shape = toErrorShape(err)
      ctx.status = shape.status
      if (shape.headers != null) ctx.set(shape.headers)
      ctx.body = { error: shape.message }
    }
  }
}

export function ollamaModelEntry (m: MeshModel): Record<string, unknown> {
  const family = m.info.family ?? ''
  return {
    name: m.name,
    model: m.name,
    modified_at: new Date(m.firstSeen).toISOString(),
    size: m.info.size ?? 0,
    // the mesh has no blob digest for remote models: a stable digest of the name stands in
    digest: createHash('sha256').update(m.name).digest('hex'),
    details: {
      parent_model: '',
      format: 'gguf',
      family,
      families: family === '' ? null : [family],
      parameter_size: m.info.parameterSize ?? '',
      quantization_level: m.info.quantization ?? ''
    }
  }
}

export function ollamaRoutes (c: GatewayComponents): Router {
  const router = new Router({ prefix: '/api' })
  router.use(ollamaErrors())

  router.get('/version', (ctx) => {
    ctx.body = { version: OLLAMA_COMPAT_VERSION }
  })

  router.get('/tags', (ctx) => {
    ctx.body = { models: c.models().map(ollamaModelEntry) }
  })

  return router
}
