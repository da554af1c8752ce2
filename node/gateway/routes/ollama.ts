/**
 * Ollama-compatible routes (https://github.com/ollama/ollama/blob/main/docs/api.md): every
 * generation is a task in the mesh; answers, streams and errors are Ollama's own, so Ollama
 * clients (the `ollama` CLI with OLLAMA_HOST, ollama-js, Open WebUI, …) work unchanged.
 */
import { Router } from '@koa/router'
import type { Context, Next } from 'koa'
import type { GatewayComponents } from '../types.js'
import type { MeshModel } from '../../presence/mesh.js'
import type { TaskKind } from '../../../protocol/kinds.js'
import { normalizeModelName } from '../../../protocol/kinds.js'
import { MAX_EMBED_INPUTS, MAX_TEXT_CHARS } from '../../../protocol/task.js'
import { toErrorShape } from '../errors.js'
import { readJsonBody } from '../compat/body.js'
import { MAX_CONTROL_BODY_BYTES, MAX_MEDIA_BODY_BYTES, MAX_TEXT_BODY_BYTES } from '../compat/constants.js'
import { OllamaHttpError, ollamaErrorFor, ollamaModelNotFound } from '../compat/errors.js'
import {
  ChatRequestSchema, EmbedRequestSchema, EmbeddingsRequestSchema, GenerateRequestSchema, NDJSON_TYPE,
  PullRequestSchema, ShowRequestSchema, chatInput, checkThink, createdAt, finalFromOutcome, generateInput,
  loadReason, ndjsonFormat, normalize, taskOptions
} from '../compat/ollama.js'
import { findMeshModel, modelDigest, ollamaDetails, ollamaPs, ollamaShow, resolveModel } from '../compat/models.js'
import { collectTask, startTask, streamTask } from '../compat/task-stream.js'
import { parseOllama } from '../compat/validate.js'

/** The Ollama version we answer with: new enough that current clients accept every route */
export const OLLAMA_COMPAT_VERSION = '0.6.4'

/** What Ollama's pull answers for a name its registry does not have (server/images.go PullModel) */
export const OLLAMA_PULL_NOT_FOUND = 'pull model manifest: file does not exist'
/** The progress lines of a pull that has nothing to download */
const PULL_STEPS = ['pulling manifest', 'verifying sha256 digest', 'writing manifest', 'success']

/** How each kind is named in Ollama's "does not support" answers */
const KIND_VERB: Record<TaskKind, string> = { chat: 'chat', generate: 'generate', embed: 'embeddings', imagine: 'image generation', transcribe: 'transcription', speak: 'speech' }

/** Ollama's error form: `{ "error": "message" }` */
export function ollamaErrors () {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next()
    } catch (err) {
      if (ctx.res.headersSent) {
        ctx.app.emit('error', err, ctx)
        return
      }
      const mapped = ollamaErrorFor(err, typeof ctx.state.compatModel === 'string' ? ctx.state.compatModel : '')
      if (mapped !== undefined) {
        ctx.status = mapped.status
        if (mapped.headers != null) ctx.set(mapped.headers)
        ctx.body = mapped.body
        return
      }
      const shape = toErrorShape(err)
      if (shape.status >= 500) ctx.app.emit('error', err, ctx)
      ctx.status = shape.status
      if (shape.headers != null) ctx.set(shape.headers)
      ctx.body = { error: shape.message }
    }
  }
}

/** `model`, or the deprecated `name` when `model` is empty */
function nameOf (body: { model?: string | null, name?: string | null }): string {
  return (body.model != null && body.model !== '' ? body.model : body.name ?? '').trim()
}

export function ollamaModelEntry (m: MeshModel): Record<string, unknown> {
  return {
    name: m.name,
    model: m.name,
    modified_at: new Date(m.firstSeen).toISOString(),
    size: m.info.size ?? 0,
    digest: modelDigest(m.name),
    details: ollamaDetails(m.info)
  }
}

export function ollamaRoutes (c: GatewayComponents): Router {
  const router = new Router({ prefix: '/api' })
  router.use(ollamaErrors())

  /** the mesh name serving `kind`, or Ollama's 404 / "does not support" 400 */
  const modelFor = (ctx: Context, kind: TaskKind, model: string): string => {
    ctx.state.compatModel = model
    const found = resolveModel(c, kind, model)
    if (found.found) return found.name
    if (found.other !== undefined) throw new OllamaHttpError(400, `${JSON.stringify(model)} does not support ${KIND_VERB[kind]}`)
    throw ollamaModelNotFound(model)
  }

  router.get('/version', (ctx) => {
    ctx.body = { version: OLLAMA_COMPAT_VERSION }
  })

  router.get('/tags', (ctx) => {
    ctx.body = { models: c.models().map(ollamaModelEntry) }
  })

  router.get('/ps', (ctx) => {
    ctx.body = { models: ollamaPs(c) }
  })

  router.post('/show', async (ctx) => {
    const body = parseOllama(ShowRequestSchema, await readJsonBody(ctx, MAX_CONTROL_BODY_BYTES), 'ShowRequest')
    const model = nameOf(body)
    if (model === '') throw new OllamaHttpError(400, 'model is required')
    const m = findMeshModel(c, model)
    // Ollama names the model in its canonical short form here (`x` → `x:latest`)
    if (m === undefined) throw new OllamaHttpError(404, `model '${normalizeModelName(model)}' not found`)
    ctx.body = ollamaShow(m)
  })

  router.post('/pull', async (ctx) => {
    const body = parseOllama(PullRequestSchema, await readJsonBody(ctx, MAX_CONTROL_BODY_BYTES), 'PullRequest')
    const model = nameOf(body)
    if (model === '') throw new OllamaHttpError(400, 'invalid model name')
    const served = findMeshModel(c, model) !== undefined
    if (body.stream === false) {
      // a non-streamed pull answers its last progress, or the error with status 500
      if (!served) throw new OllamaHttpError(500, OLLAMA_PULL_NOT_FOUND)
      ctx.body = { status: 'success' }
      return
    }
    ctx.type = NDJSON_TYPE
    const lines = served
      ? PULL_STEPS.map(status => ({ status }))
      : [{ status: 'pulling manifest' }, { error: OLLAMA_PULL_NOT_FOUND }]
    ctx.body = lines.map(l => JSON.stringify(l) + '\n').join('')
  })

  router.post('/chat', async (ctx) => {
    const body = parseOllama(ChatRequestSchema, await readJsonBody(ctx, MAX_MEDIA_BODY_BYTES), 'ChatRequest')
    const model = (body.model ?? '').trim()
    if (model === '') throw new OllamaHttpError(400, 'model is required')
    const name = modelFor(ctx, 'chat', model)
    const messages = body.messages ?? []
    if (messages.length === 0) {
      // no messages: Ollama loads (or with keep_alive 0 unloads) the model and says so
      ctx.body = { model, created_at: createdAt(), message: { role: 'assistant', content: '' }, done_reason: loadReason(body.keep_alive), done: true }
      return
    }
    checkThink(body.think, model)
    const input = chatInput(messages)
    const options = taskOptions(body.options, body.format)
    const run = await startTask(ctx, c.tasks, { kind: 'chat', model: name, input, ...(options !== undefined ? { options } : {}) })
    if (body.stream === false) {
      ctx.body = finalFromOutcome('chat', model, await collectTask(ctx, run))
      return
    }
    await streamTask(ctx, run, ndjsonFormat('chat', model))
  })

  router.post('/generate', async (ctx) => {
    const body = parseOllama(GenerateRequestSchema, await readJsonBody(ctx, MAX_MEDIA_BODY_BYTES), 'GenerateRequest')
    // Ollama answers a missing model on this route with its 404
    const model = (body.model ?? '').trim()
    const name = modelFor(ctx, 'generate', model)
    if (body.suffix != null && body.suffix !== '') throw new OllamaHttpError(400, `${JSON.stringify(model)} does not support insert`)
    if ((body.prompt ?? '') === '') {
      ctx.body = { model, created_at: createdAt(), response: '', done: true, done_reason: loadReason(body.keep_alive) }
      return
    }
    checkThink(body.think, model)
    const input = generateInput(body)
    const options = taskOptions(body.options, body.format)
    const run = await startTask(ctx, c.tasks, { kind: 'generate', model: name, input, ...(options !== undefined ? { options } : {}) })
    if (body.stream === false) {
      ctx.body = finalFromOutcome('generate', model, await collectTask(ctx, run))
      return
    }
    await streamTask(ctx, run, ndjsonFormat('generate', model))
  })

  router.post('/embed', async (ctx) => {
    const body = parseOllama(EmbedRequestSchema, await readJsonBody(ctx, MAX_TEXT_BODY_BYTES), 'EmbedRequest')
    const model = (body.model ?? '').trim()
    let inputs: string[]
    if (typeof body.input === 'string') {
      inputs = body.input === '' ? [] : [body.input]
    } else if (Array.isArray(body.input) && body.input.every(x => typeof x === 'string')) {
      inputs = body.input
    } else if (body.input == null) {
      inputs = []
    } else {
      throw new OllamaHttpError(400, 'invalid input type')
    }
    const name = modelFor(ctx, 'embed', model)
    if (inputs.length === 0) {
      ctx.body = { model, embeddings: [] }
      return
    }
    if (inputs.length > MAX_EMBED_INPUTS) throw new OllamaHttpError(400, `too many inputs: at most ${MAX_EMBED_INPUTS}`)
    if (inputs.some(s => s.length > MAX_TEXT_CHARS)) throw new OllamaHttpError(400, `input too long: at most ${MAX_TEXT_CHARS} characters each`)
    const run = await startTask(ctx, c.tasks, { kind: 'embed', model: name, input: { input: inputs } })
    const outcome = await collectTask(ctx, run)
    const dimensions = body.dimensions ?? 0
    const embeddings = (outcome.output.embeddings ?? []).map(v => {
      const unit = normalize(v)
      return dimensions > 0 && dimensions < unit.length ? normalize(unit.slice(0, dimensions)) : unit
    })
    const timings = outcome.timings
    ctx.body = {
      model,
      embeddings,
      total_duration: Math.max(1, Math.round(timings.totalMs * 1e6)),
      load_duration: Math.max(1, Math.round((timings.queueMs ?? 0) * 1e6)),
      prompt_eval_count: outcome.output.usage?.promptTokens ?? 0
    }
  })

  // the legacy single-prompt route, still used by older clients
  router.post('/embeddings', async (ctx) => {
    const body = parseOllama(EmbeddingsRequestSchema, await readJsonBody(ctx, MAX_TEXT_BODY_BYTES), 'EmbeddingRequest')
    const model = (body.model ?? '').trim()
    if (model === '') throw new OllamaHttpError(400, 'model is required')
    ctx.state.compatModel = model
    const found = resolveModel(c, 'embed', model)
    // this route's scheduler error words it differently (handleScheduleError)
    if (!found.found) throw new OllamaHttpError(404, `model ${JSON.stringify(model)} not found, try pulling it first`)
    const prompt = body.prompt ?? ''
    if (prompt === '') {
      ctx.body = { embedding: [] }
      return
    }
    if (prompt.length > MAX_TEXT_CHARS) throw new OllamaHttpError(400, `prompt too long: at most ${MAX_TEXT_CHARS} characters`)
    const run = await startTask(ctx, c.tasks, { kind: 'embed', model: found.name, input: { input: prompt } })
    const outcome = await collectTask(ctx, run)
    ctx.body = { embedding: outcome.output.embeddings?.[0] ?? [] }
  })

  return router
}
