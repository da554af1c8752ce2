/**
 * OpenAI-compatible routes (https://platform.openai.com/docs/api-reference): every request is a
 * task in the mesh; answers, SSE streams and errors are OpenAI's own, so OpenAI clients
 * (openai-node, openai-python, LangChain, …) work unchanged with `baseURL` set to `<gateway>/v1`.
 */
import { Router } from '@koa/router'
import type { Context, Next } from 'koa'
import type { GatewayComponents } from '../types.js'
import type { MeshModel } from '../../presence/mesh.js'
import type { TaskKind } from '../../../protocol/kinds.js'
import { MAX_EMBED_INPUTS, MAX_TEXT_CHARS } from '../../../protocol/task.js'
import { toErrorShape } from '../errors.js'
import { readJsonBody, readMultipartBody } from '../compat/body.js'
import {
  MAX_AUDIO_FILE_BYTES, MAX_MEDIA_BODY_BYTES, MAX_SMALL_BODY_BYTES, MAX_TEXT_BODY_BYTES
} from '../compat/constants.js'
import { OpenAIHttpError, openaiErrorFor, openaiInvalid, openaiModelNotFound } from '../compat/errors.js'
import {
  ChatRequestSchema, EmbeddingsRequestSchema, ImagesRequestSchema, SPEECH_TYPES, SpeechRequestSchema,
  TRANSCRIPTION_FORMATS, audioTypeOf, chatInput, completionObject, embeddingBase64, imageSize, shorten,
  sseFormat, taskOptions, transcriptionAnswer, wavSeconds, type TranscriptionFormat
} from '../compat/openai.js'
import { findMeshModel, firstModelFor, resolveModel } from '../compat/models.js'
import { collectTask, startTask, streamTask } from '../compat/task-stream.js'
import { parseOpenAI } from '../compat/validate.js'

/** The model OpenAI uses when an image request names none (its API reference) */
const OPENAI_DEFAULT_IMAGE_MODEL = 'dall-e-2'

/** What a model of the wrong kind is told, per endpoint */
const WRONG_KIND: Record<TaskKind, string> = {
  chat: 'This is not a chat model and thus not supported in the v1/chat/completions endpoint.',
  generate: 'This model does not support text generation.',
  embed: 'This model does not support embeddings.',
  imagine: 'This model does not support image generation.',
  transcribe: 'This model does not support transcription.',
  speak: 'This model does not support speech.'
}

/** OpenAI's error form: `{ error: { message, type, param, code } }` */
export function openaiErrors () {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next()
    } catch (err) {
      if (ctx.res.headersSent) {
        ctx.app.emit('error', err, ctx)
        return
      }
      const mapped = openaiErrorFor(err, typeof ctx.state.compatModel === 'string' ? ctx.state.compatModel : '')
      if (mapped !== undefined) {
        ctx.status = mapped.status
        if (mapped.headers != null) ctx.set(mapped.headers)
        ctx.body = { error: mapped.error }
        return
      }
      const shape = toErrorShape(err)
      if (shape.status >= 500) ctx.app.emit('error', err, ctx)
      ctx.status = shape.status
      if (shape.headers != null) ctx.set(shape.headers)
      const type = shape.status === 429 ? 'requests' : shape.status >= 500 ? 'server_error' : 'invalid_request_error'
      ctx.body = { error: { message: shape.message, type, param: null, code: shape.code.toLowerCase() } }
    }
  }
}

function modelObject (m: MeshModel): Record<string, unknown> {
  return {
    id: m.name,
    object: 'model',
    created: Math.floor(m.firstSeen / 1000),
    owned_by: m.peers.length === 1 ? m.peers[0] : 'realm'
  }
}

/** The body as an object with a `model`, as OpenAI checks it first */
function requireModel (body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw openaiInvalid('We could not parse the JSON body of your request. (HINT: The OpenAI API expects a JSON object.)')
  }
  const model = (body as { model?: unknown }).model
  if (model === undefined || model === null || model === '') throw openaiInvalid('you must provide a model parameter')
}

export function openaiRoutes (c: GatewayComponents): Router {
  const router = new Router({ prefix: '/v1' })
  router.use(openaiErrors())

  /** the mesh name serving `kind`, or OpenAI's 404 */
  const modelFor = (ctx: Context, kind: TaskKind, model: string): string => {
    ctx.state.compatModel = model
    const found = resolveModel(c, kind, model)
    if (found.found) return found.name
    if (found.other !== undefined) {
      throw new OpenAIHttpError(404, { message: WRONG_KIND[kind], type: 'invalid_request_error', param: 'model', code: null })
    }
    throw openaiModelNotFound(model)
  }

  router.get('/models', (ctx) => {
    ctx.body = { object: 'list', data: c.models().map(modelObject) }
  })

  // ids may hold slashes (`org/model`): the rest of the path is the id
  router.get('/models/*id', (ctx) => {
    let id: string
    try {
      id = decodeURIComponent(ctx.path.slice('/v1/models/'.length))
    } catch {
      throw openaiModelNotFound(ctx.path.slice('/v1/models/'.length))
    }
    const m = c.models().find(x => x.name === id) ?? findMeshModel(c, id)
    if (m === undefined) throw openaiModelNotFound(id)
    ctx.body = { ...modelObject(m), id }
  })

  router.post('/chat/completions', async (ctx) => {
    const raw = await readJsonBody(ctx, MAX_MEDIA_BODY_BYTES)
    requireModel(raw)
    const body = parseOpenAI(ChatRequestSchema, raw)
    const name = modelFor(ctx, 'chat', body.model)
    if (body.n != null && body.n > 1) throw openaiInvalid(`Invalid 'n': this server makes one choice per request (got ${body.n}).`, 'n', 'unsupported_value')
    const input = chatInput(body.messages)
    const options = taskOptions(body)
    const run = await startTask(ctx, c.tasks, { kind: 'chat', model: name, input, ...(options !== undefined ? { options } : {}) })
    const who = { id: `chatcmpl-${run.id}`, created: Math.floor(Date.now() / 1000), model: body.model }
    if (body.stream === true) {
      await streamTask(ctx, run, sseFormat(who, body.stream_options?.include_usage === true))
      return
    }
    const outcome = await collectTask(ctx, run)
    ctx.body = completionObject(who, outcome.text, outcome.output.doneReason, outcome.output.usage, outcome.tokenEvents)
  })

  router.post('/embeddings', async (ctx) => {
    const raw = await readJsonBody(ctx, MAX_TEXT_BODY_BYTES)
    requireModel(raw)
    const body = parseOpenAI(EmbeddingsRequestSchema, raw)
    const input = body.input
    let inputs: string[]
    if (typeof input === 'string') {
      inputs = [input]
    } else if (input.length > 0 && input.every(x => typeof x === 'string')) {
      inputs = input as string[]
    } else if (input.length === 0) {
      throw openaiInvalid("Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'input', 'empty_array')
    } else {
      throw openaiInvalid("Invalid 'input': token arrays are not supported by this server; send text.", 'input', 'unsupported_value')
    }
    if (inputs.some(s => s === '')) throw openaiInvalid("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.")
    if (inputs.length > MAX_EMBED_INPUTS) {
      throw openaiInvalid(`Invalid 'input': array too long. Expected an array with maximum length ${MAX_EMBED_INPUTS}, but got an array with length ${inputs.length} instead.`, 'input', 'array_above_max_length')
    }
    if (inputs.some(s => s.length > MAX_TEXT_CHARS)) throw openaiInvalid(`Invalid 'input': string too long. Expected a string with maximum length ${MAX_TEXT_CHARS}.`, 'input', 'string_above_max_length')
    const name = modelFor(ctx, 'embed', body.model)
    const run = await startTask(ctx, c.tasks, { kind: 'embed', model: name, input: { input: inputs } })
    const outcome = await collectTask(ctx, run)
    const base64 = body.encoding_format === 'base64'
    const tokens = outcome.output.usage?.promptTokens ?? 0
    ctx.body = {
      object: 'list',
      data: (outcome.output.embeddings ?? []).map((vector, index) => {
        const v = shorten(vector, body.dimensions)
        return { object: 'embedding', index, embedding: base64 ? embeddingBase64(v) : v }
      }),
      model: body.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens }
    }
  })

  /**
   * Images come back as `b64_json` (the default here: the gateway keeps no files to link to);
   * `response_format: "url"` answers a `data:` URL holding the same image.
   */
  router.post('/images/generations', async (ctx) => {
    const raw = await readJsonBody(ctx, MAX_SMALL_BODY_BYTES)
    const body = parseOpenAI(ImagesRequestSchema, raw)
    if (body.stream === true) throw openaiInvalid('Invalid \'stream\': streamed image generation is not supported by this server.', 'stream', 'unsupported_value')
    const requested = body.model ?? firstModelFor(c, 'imagine') ?? OPENAI_DEFAULT_IMAGE_MODEL
    const name = modelFor(ctx, 'imagine', requested)
    const size = imageSize(body.size)
    const n = body.n ?? 1
    const run = await startTask(ctx, c.tasks, { kind: 'imagine', model: name, input: { prompt: body.prompt, ...size, ...(n > 1 ? { count: n } : {}) } })
    const outcome = await collectTask(ctx, run)
    const images = outcome.output.images ?? []
    if (images.length === 0) throw new OpenAIHttpError(500, { message: 'The model produced no image.', type: 'server_error', param: null, code: null })
    ctx.body = {
      created: Math.floor(Date.now() / 1000),
      data: images.map(image => body.response_format === 'url'
        ? { url: `data:${image.mime};base64,${image.data}` }
        : { b64_json: image.data })
    }
  })

  router.post('/audio/speech', async (ctx) => {
    const raw = await readJsonBody(ctx, MAX_SMALL_BODY_BYTES)
    requireModel(raw)
    const body = parseOpenAI(SpeechRequestSchema, raw)
    const format = body.response_format ?? 'mp3'
    if (SPEECH_TYPES[format] === undefined) {
      throw openaiInvalid(`Invalid 'response_format': '${format}' is not produced by this server; use 'mp3' or 'wav'.`, 'response_format', 'unsupported_value')
    }
    if (body.stream_format === 'sse') throw openaiInvalid('Invalid \'stream_format\': \'sse\' is not supported by this server; use \'audio\'.', 'stream_format', 'unsupported_value')
    const name = modelFor(ctx, 'speak', body.model)
    const voice = typeof body.voice === 'string' ? body.voice : body.voice.id
    const input = { text: body.input, voice, format: format as 'mp3' | 'wav', ...(body.speed != null ? { speed: body.speed } : {}) }
    const run = await startTask(ctx, c.tasks, { kind: 'speak', model: name, input })
    const outcome = await collectTask(ctx, run)
    const audio = outcome.output.audio
    if (audio === undefined) throw new OpenAIHttpError(500, { message: 'The model produced no audio.', type: 'server_error', param: null, code: null })
    const bytes = Buffer.from(audio.data, 'base64')
    // the worker's own media type: a backend that can only make WAV says so
    ctx.type = audio.mime !== '' ? audio.mime : SPEECH_TYPES[format]
    ctx.length = bytes.length
    ctx.body = bytes
  })

  router.post('/audio/transcriptions', async (ctx) => {
    const form = await readMultipartBody(ctx, MAX_MEDIA_BODY_BYTES)
    const file = form.files.file
    if (file === undefined) throw openaiInvalid("Missing required parameter: 'file'.", 'file', 'missing_required_parameter')
    const model = form.fields.model ?? ''
    if (model === '') throw openaiInvalid('you must provide a model parameter')
    const format = (form.fields.response_format ?? 'json') as TranscriptionFormat
    if (!TRANSCRIPTION_FORMATS.includes(format)) {
      throw openaiInvalid(`Invalid value: '${format.slice(0, 40)}'. Supported values are: ${TRANSCRIPTION_FORMATS.map(f => `'${f}'`).join(', ')}.`, 'response_format', 'invalid_value')
    }
    if (form.fields.stream === 'true') throw openaiInvalid('Invalid \'stream\': streamed transcription is not supported by this server.', 'stream', 'unsupported_value')
    const language = form.fields.language
    if (language !== undefined && (language.length > 16 || !/^[A-Za-z-]*$/.test(language))) {
      throw openaiInvalid(`Invalid language '${language.slice(0, 40)}'. Language parameter must be specified in ISO-639-1 format.`, 'language', 'invalid_language_format')
    }
    if (file.data.length === 0) throw openaiInvalid('The audio file is empty.', 'file', 'empty_file')
    if (file.data.length > MAX_AUDIO_FILE_BYTES) {
      throw new OpenAIHttpError(413, { message: `Maximum content size limit (${MAX_AUDIO_FILE_BYTES}) exceeded (${file.data.length} bytes read)`, type: 'invalid_request_error', param: 'file', code: null })
    }
    const name = modelFor(ctx, 'transcribe', model)
    const input = {
      audio: file.data.toString('base64'),
      mime: audioTypeOf(file.filename, file.type),
      ...(language !== undefined && language !== '' ? { language } : {})
    }
    const run = await startTask(ctx, c.tasks, { kind: 'transcribe', model: name, input })
    const outcome = await collectTask(ctx, run)
    const units = outcome.output.usage?.units
    const seconds = wavSeconds(file.data) ?? (units !== undefined && units > 0 ? units : undefined)
    const answer = transcriptionAnswer(format, outcome.text, seconds, language)
    ctx.type = answer.type
    ctx.body = answer.body
  })

  return router
}
