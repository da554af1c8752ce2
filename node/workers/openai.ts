/**
 * OpenAI-compatible adapter (llama.cpp server, vLLM, LM Studio, OpenAI itself): models from
 * `GET /v1/models`. A target whose path already ends in `/v1` (`http://host:8000/v1`) is used
 * as the API base as it is. Runs chat and generate (`/v1/chat/completions`, SSE), embed
 * (`/v1/embeddings`), transcribe (`/v1/audio/transcriptions`), speak (`/v1/audio/speech`) and
 * imagine (`/v1/images/generations`). API: github.com/openai/openai-openapi
 */
import { z } from 'zod'
import type { ModelInfo, TaskKind } from '../../protocol/kinds.js'
import { MAX_BASE64_CHARS } from '../../protocol/task.js'
import type { ChatMessage, Media, TaskOptions, TaskOutput, TaskSpec, Usage } from '../../protocol/task.js'
import { bytesToBase64 } from '../../protocol/bytes.js'
import { MAX_ERROR_MESSAGE_CHARS, OPENAI_DEFAULT_VOICE } from './constants.js'
import { BackendResponseError, ModelNotFoundError } from './errors.js'
import { requestJson } from './http.js'
import { finishModels } from './listing.js'
import type { Adapter, ListerComponents, Listing } from './listing.js'
import { audioExtension, audioMime, base64ImageMime, imageMime } from './media.js'
import { TextSink } from './session.js'
import type { BackendAnswer, ErrorAnswer, RunSession } from './session.js'
import type { Connection } from './spec.js'

/** Largest audio or image accepted from a backend: what fits in one base64 Media of a TaskOutput */
export const MAX_MEDIA_BYTES = Math.floor(MAX_BASE64_CHARS / 4) * 3

const ModelsSchema = z.looseObject({
  data: z.array(z.looseObject({ id: z.string() }))
})

/** Parses a `/v1/models` answer; throws BackendResponseError when it is not one */
export function parseOpenAIModels (body: unknown): string[] {
  const parsed = ModelsSchema.safeParse(body)
  if (!parsed.success) throw new BackendResponseError('/v1/models is not an OpenAI model list')
  return parsed.data.data.map(m => m.id)
}

/** The path of `/v1/models` under a connection's base */
export function openaiModelsPath (conn: Connection): string {
  return openaiPath(conn, '/models')
}

/** The path of an API route (`/chat/completions`) under a connection's base, `/v1` added unless the base has it */
export function openaiPath (conn: Connection, route: string): string {
  return /\/v1$/.test(conn.base) ? route : `/v1${route}`
}

/**
 * Kinds of an OpenAI model id: `embed` → embed, `whisper`/`transcribe` → transcribe,
 * `tts` → speak, `dall-e`/`gpt-image` → imagine, anything else chat + generate. `moderation`
 * models serve none of the realm's kinds (undefined).
 */
export function openaiKinds (id: string): TaskKind[] | undefined {
  const name = id.toLowerCase()
  if (name.includes('moderation')) return undefined
  if (name.includes('embed')) return ['embed']
  if (name.includes('whisper') || name.includes('transcribe')) return ['transcribe']
  if (name.includes('tts')) return ['speak']
  if (name.includes('dall-e') || name.includes('gpt-image')) return ['imagine']
  return ['chat', 'generate']
}

export class OpenAIAdapter implements Adapter {
  readonly kinds: readonly TaskKind[] = ['chat', 'generate', 'imagine', 'transcribe', 'speak', 'embed']

  constructor (private readonly components: ListerComponents) {}

  async run (task: TaskSpec, session: RunSession): Promise<TaskOutput> {
    return await runOpenAI(task, session)
  }

  async list (signal: AbortSignal): Promise<Listing> {
    const { conn, fetch } = this.components
    const ids = parseOpenAIModels(await requestJson(conn, openaiModelsPath(conn), { fetch, signal }))
    const candidates: ModelInfo[] = []
    for (const id of ids) {
      const kinds = openaiKinds(id)
      if (kinds !== undefined) candidates.push({ name: id, kinds })
    }
    return { models: finishModels(candidates, 'openai') }
  }
}

/** OpenAI's temperature range is 0..2 (the realm's is 0..5) */
const OPENAI_MAX_TEMPERATURE = 2

/** A `data:` URL of a base64 image */
function imageUrl (data: string): string {
  return `data:${base64ImageMime(data)};base64,${data}`
}

/** A chat message in OpenAI's shape: text content, or text and `image_url` parts when it has images */
function openaiMessage (role: string, content: string, images?: string[]): Record<string, unknown> {
  if (images === undefined || images.length === 0) return { role, content }
  const parts: unknown[] = []
  if (content !== '') parts.push({ type: 'text', text: content })
  for (const image of images) parts.push({ type: 'image_url', image_url: { url: imageUrl(image) } })
  return { role, content: parts }
}

/** The messages of a chat or generate task, in OpenAI's shape (`tool` turns become `user` turns: no tool call ids here) */
export function chatMessages (task: TaskSpec & { kind: 'chat' | 'generate' }): Array<Record<string, unknown>> {
  if (task.kind === 'chat') {
    return task.input.messages.map((m: ChatMessage) => openaiMessage(m.role === 'tool' ? 'user' : m.role, m.content, m.images))
  }
  const messages: Array<Record<string, unknown>> = []
  if (task.input.system !== undefined) messages.push({ role: 'system', content: task.input.system })
  messages.push(openaiMessage('user', task.input.prompt, task.input.images))
  return messages
}

/** Chat completion parameters from the task's options (only those set) */
export function chatParams (options: TaskOptions | undefined, topK: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (options === undefined) return out
  if (options.temperature !== undefined) out.temperature = Math.min(options.temperature, OPENAI_MAX_TEMPERATURE)
  if (options.topP !== undefined) out.top_p = options.topP
  // top_k is a llama.cpp / vLLM extension; OpenAI itself refuses unknown parameters
  if (topK && options.topK !== undefined) out.top_k = options.topK
  if (options.maxTokens !== undefined) out.max_tokens = options.maxTokens
  if (options.seed !== undefined && options.seed >= 0) out.seed = options.seed
  if (options.stop !== undefined) out.stop = options.stop
  if (options.json === true) out.response_format = { type: 'json_object' }
  return out
}

/**
 * An unknown model: OpenAI (`model_not_found`), vLLM (404 "The model \`x\` does not exist"),
 * the HF router (400 "The requested model 'x' is not supported by any provider you have enabled")
 */
export function openaiModelMissing (answer: ErrorAnswer): boolean {
  if (answer.code === 'model_not_found' || answer.code === 'model_not_supported') return true
  if (answer.status === 404) return /model/i.test(answer.message) && /(does not exist|not found)/i.test(answer.message)
  return answer.status === 400 && /requested model .*(is not supported|does not exist)/i.test(answer.message)
}

function isOpenAIItself (conn: Connection): boolean {
  return /^https:\/\/api\.openai\.com(\/|$)/.test(conn.base)
}

const ChunkSchema = z.looseObject({
  error: z.unknown().optional(),
  choices: z.array(z.looseObject({
    index: z.number().optional(),
    delta: z.looseObject({ content: z.string().nullable().optional() }).nullable().optional(),
    finish_reason: z.string().nullable().optional()
  })).nullable().optional(),
  usage: z.looseObject({
    prompt_tokens: z.number().int().nonnegative().optional(),
    completion_tokens: z.number().int().nonnegative().optional()
  }).nullable().optional()
})

/** A finish reason as the realm reports it (`stop`, `length`, …), at most 32 characters */
export function doneReasonOf (reason: string | undefined): string {
  return (reason ?? 'stop').slice(0, 32)
}

export interface ChatStreamInit {
  path: string
  body: Record<string, unknown>
  model: string
  missing: (answer: ErrorAnswer) => boolean
}

/**
 * `/chat/completions` with `stream: true` and `stream_options.include_usage`: each chunk's
 * `delta.content` is a token, the usage chunk before `[DONE]` the usage.
 */
export async function streamChatCompletions (session: RunSession, init: ChatStreamInit): Promise<TaskOutput> {
  const res = await session.request(init.path, { json: { ...init.body, stream: true, stream_options: { include_usage: true } }, accept: 'text/event-stream' })
  if (!res.ok) {
    const answer = await session.errorAnswer(res)
    if (init.missing(answer)) throw new ModelNotFoundError(init.model, answer.message)
    throw session.httpError(init.path, answer)
  }
  const sink = new TextSink(session)
  let finish: string | undefined
  let usage: Usage | undefined
  let done = false
  for await (const event of session.sse(res)) {
    if (event.data === '[DONE]') {
      done = true
      break
    }
    let value: unknown
    try {
      value = JSON.parse(event.data)
    } catch {
      throw session.backendError(`${init.path} streamed an event that is not JSON`)
    }
    const chunk = ChunkSchema.safeParse(value)
    if (!chunk.success) throw session.backendError(`${init.path} streamed a chunk that is not a chat completion chunk`)
    if (chunk.data.error !== undefined && chunk.data.error !== null) {
      const error = chunk.data.error as { message?: unknown }
      throw session.backendError(`${init.path}: ${typeof error.message === 'string' ? error.message : JSON.stringify(error).slice(0, MAX_ERROR_MESSAGE_CHARS)}`)
    }
    for (const choice of chunk.data.choices ?? []) {
      if ((choice.index ?? 0) !== 0) continue
      sink.add(choice.delta?.content ?? '')
      if (choice.finish_reason != null) finish = choice.finish_reason
    }
    if (chunk.data.usage != null) {
      usage = {}
      if (chunk.data.usage.prompt_tokens !== undefined) usage.promptTokens = chunk.data.usage.prompt_tokens
      if (chunk.data.usage.completion_tokens !== undefined) usage.completionTokens = chunk.data.usage.completion_tokens
      usage.units = (usage.promptTokens ?? 0) + (usage.completionTokens ?? 0)
    }
  }
  // a server that ends the stream after the finish reason without [DONE] has still answered
  if (!done && finish === undefined) throw session.backendError(`${init.path} stream ended before [DONE]`)
  return { text: sink.text, doneReason: doneReasonOf(finish), ...(usage !== undefined ? { usage } : {}) }
}

const EmbeddingsSchema = z.looseObject({
  data: z.array(z.looseObject({ index: z.number().int().optional(), embedding: z.array(z.number()) })),
  usage: z.looseObject({ prompt_tokens: z.number().int().nonnegative().optional() }).optional()
})

const TranscriptionSchema = z.looseObject({
  text: z.string(),
  usage: z.looseObject({
    type: z.string().optional(),
    seconds: z.number().nonnegative().optional(),
    input_tokens: z.number().int().nonnegative().optional(),
    output_tokens: z.number().int().nonnegative().optional()
  }).optional()
})

const ImagesSchema = z.looseObject({
  data: z.array(z.looseObject({ b64_json: z.string().optional() })),
  usage: z.looseObject({
    input_tokens: z.number().int().nonnegative().optional(),
    output_tokens: z.number().int().nonnegative().optional()
  }).optional()
})

/** Runs one task on an OpenAI-compatible server */
async function runOpenAI (task: TaskSpec, session: RunSession): Promise<TaskOutput> {
  const { conn } = session
  const notOk = async (res: BackendAnswer, what: string): Promise<Error> => {
    const answer = await session.errorAnswer(res)
    if (openaiModelMissing(answer)) return new ModelNotFoundError(task.model, answer.message)
    return session.httpError(what, answer)
  }
  switch (task.kind) {
    case 'chat':
    case 'generate':
      return await streamChatCompletions(session, {
        path: openaiPath(conn, '/chat/completions'),
        body: { model: task.model, messages: chatMessages(task), ...chatParams(task.options, !isOpenAIItself(conn)) },
        model: task.model,
        missing: openaiModelMissing
      })
    case 'embed': {
      const path = openaiPath(conn, '/embeddings')
      const res = await session.request(path, { json: { model: task.model, input: task.input.input, encoding_format: 'float' } })
      if (!res.ok) throw await notOk(res, path)
      const parsed = EmbeddingsSchema.safeParse(await session.json(res, path))
      if (!parsed.success) throw session.backendError(`${path} did not answer embeddings`)
      const data = [...parsed.data.data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0))
      const promptTokens = parsed.data.usage?.prompt_tokens
      return { embeddings: data.map(d => d.embedding), ...(promptTokens !== undefined ? { usage: { promptTokens, units: promptTokens } } : {}) }
    }
    case 'transcribe': {
      const path = openaiPath(conn, '/audio/transcriptions')
      const bytes = Buffer.from(task.input.audio, 'base64')
      const mime = task.input.mime ?? audioMime(bytes) ?? 'audio/wav'
      const form = new FormData()
      form.append('file', new Blob([Uint8Array.from(bytes)], { type: mime }), `audio.${audioExtension(mime)}`)
      form.append('model', task.model)
      form.append('response_format', 'json')
      if (task.input.language !== undefined) form.append('language', task.input.language)
      // the closest OpenAI has to a phrase list: a prompt the transcriber is guided by
      if (task.input.phrases !== undefined && task.input.phrases.length > 0) form.append('prompt', task.input.phrases.join(', '))
      const res = await session.request(path, { form })
      if (!res.ok) throw await notOk(res, path)
      const parsed = TranscriptionSchema.safeParse(await session.json(res, path))
      if (!parsed.success) throw session.backendError(`${path} did not answer a transcription`)
      const sink = new TextSink(session)
      sink.add(parsed.data.text)
      const u = parsed.data.usage
      const usage: Usage = {}
      if (u?.input_tokens !== undefined) usage.promptTokens = u.input_tokens
      if (u?.output_tokens !== undefined) usage.completionTokens = u.output_tokens
      if (u?.seconds !== undefined) usage.units = u.seconds
      else if (u?.input_tokens !== undefined || u?.output_tokens !== undefined) usage.units = (u.input_tokens ?? 0) + (u.output_tokens ?? 0)
      return { text: parsed.data.text, doneReason: 'stop', ...(Object.keys(usage).length > 0 ? { usage } : {}) }
    }
    case 'speak': {
      const path = openaiPath(conn, '/audio/speech')
      const format = task.input.format ?? 'mp3'
      const res = await session.request(path, {
        json: {
          model: task.model,
          input: task.input.text,
          voice: task.input.voice ?? OPENAI_DEFAULT_VOICE,
          response_format: format,
          ...(task.input.speed !== undefined ? { speed: task.input.speed } : {})
        },
        accept: 'audio/*'
      })
      if (!res.ok) throw await notOk(res, path)
      const bytes = await session.bytes(res, MAX_MEDIA_BYTES)
      if (bytes.length === 0) throw session.backendError(`${path} answered no audio`)
      const type = (res.headers.get('content-type') ?? '').split(';', 1)[0].trim()
      const audio: Media = { data: bytesToBase64(bytes), mime: type.startsWith('audio/') ? type : audioMime(bytes) ?? (format === 'wav' ? 'audio/wav' : 'audio/mpeg') }
      session.emit({ type: 'audio', audio })
      return { audio, doneReason: 'stop', usage: { units: task.input.text.length } }
    }
    case 'imagine': {
      const path = openaiPath(conn, '/images/generations')
      const { prompt, width, height, count } = task.input
      const res = await session.request(path, {
        json: {
          model: task.model,
          prompt,
          n: count ?? 1,
          ...(width !== undefined && height !== undefined ? { size: `${width}x${height}` } : {}),
          // dall-e answers URLs unless asked for base64; gpt-image models always answer base64 and refuse the parameter
          ...(/dall-e/i.test(task.model) ? { response_format: 'b64_json' } : {})
        }
      })
      if (!res.ok) throw await notOk(res, path)
      const parsed = ImagesSchema.safeParse(await session.json(res, path))
      if (!parsed.success) throw session.backendError(`${path} did not answer images`)
      const images: Media[] = []
      for (const item of parsed.data.data) {
        if (item.b64_json === undefined) throw session.backendError(`${path} answered an image without b64_json`)
        const bytes = Buffer.from(item.b64_json, 'base64')
        const mime = imageMime(bytes)
        if (mime === undefined) throw session.backendError(`${path} answered an image that is not PNG, JPEG, GIF or WebP`)
        const image = { data: bytesToBase64(bytes), mime }
        session.emit({ type: 'image', image })
        images.push(image)
      }
      const u = parsed.data.usage
      const usage: Usage = { units: images.length }
      if (u?.input_tokens !== undefined) usage.promptTokens = u.input_tokens
      if (u?.output_tokens !== undefined) usage.completionTokens = u.output_tokens
      return { images, doneReason: 'stop', usage }
    }
  }
}
