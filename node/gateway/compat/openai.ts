/**
 * OpenAI's API (github.com/openai/openai-openapi, platform.openai.com/docs/api-reference):
 * request schemas, their translation into tasks, and the answers in OpenAI's exact shapes.
 */
import { z } from 'zod'
import {
  ChatInputSchema, MAX_IMAGES, MAX_IMAGE_SIDE, TaskOptionsSchema,
  type ChatInput, type ChatMessage, type TaskOptions, type Usage
} from '../../../protocol/task.js'
import type { TaskError } from '../../tasks/types.js'
import { openaiErrorFor, openaiInvalid } from './errors.js'
import type { StreamFormat } from './task-stream.js'
import { paramOf } from './validate.js'
import { SSE_KEEPALIVE_MS } from './constants.js'

export const SSE_TYPE = 'text/event-stream; charset=utf-8'
/** `system_fingerprint` of every completion: the mesh has no single backend configuration */
export const SYSTEM_FINGERPRINT = 'fp_rentahal'
/** Largest seed passed on; larger ones wrap (OpenAI's seeds are 64-bit, ours 32) */
const SEED_RANGE = 2 ** 32
/** Smallest image side a task may ask for (protocol/task.ts ImagineInput) */
const MIN_IMAGE_SIDE = 64
/** Longest text `/v1/audio/speech` reads (OpenAI's limit) */
export const MAX_SPEECH_INPUT_CHARS = 4096
/** Longest image prompt (protocol/task.ts ImagineInput) */
const MAX_IMAGE_PROMPT_CHARS = 10_000
/** Most images one request makes (protocol/task.ts ImagineInput `count`) */
const MAX_IMAGES_PER_REQUEST = 4
/** Most stop sequences (OpenAI's limit) */
const MAX_STOP_SEQUENCES = 4

/** Optional fields may be sent as null, which means "not set" */
function opt<T extends z.ZodType> (schema: T): z.ZodOptional<z.ZodNullable<T>> {
  return schema.nullable().optional()
}

const ContentPartSchema = z.object({
  type: z.string(),
  text: z.string().optional(),
  refusal: z.string().optional(),
  image_url: z.object({ url: z.string(), detail: opt(z.string()) }).optional()
})

const MessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: opt(z.union([z.string(), z.array(ContentPartSchema)])),
  name: opt(z.string()),
  tool_calls: opt(z.array(z.unknown())),
  tool_call_id: opt(z.string())
})
type Message = z.output<typeof MessageSchema>

export const ChatRequestSchema = z.object({
  model: z.string(),
  messages: z.array(MessageSchema).min(1),
  stream: opt(z.boolean()),
  stream_options: opt(z.object({ include_usage: opt(z.boolean()) })),
  temperature: opt(z.number().min(0).max(2)),
  top_p: opt(z.number().min(0).max(1)),
  // not OpenAI's, but sent by clients of OpenAI-compatible servers (vLLM, llama.cpp)
  top_k: opt(z.number().int().min(0)),
  max_tokens: opt(z.number().int().min(1)),
  max_completion_tokens: opt(z.number().int().min(1)),
  seed: opt(z.number().int()),
  stop: opt(z.union([z.string(), z.array(z.string()).max(MAX_STOP_SEQUENCES)])),
  n: opt(z.number().int().min(1).max(128)),
  response_format: opt(z.object({ type: z.enum(['text', 'json_object', 'json_schema']) }))
  // frequency_penalty, presence_penalty, logit_bias, logprobs, tools, user, …: accepted, ignored
})
export type ChatRequest = z.output<typeof ChatRequestSchema>

export const EmbeddingsRequestSchema = z.object({
  model: z.string(),
  input: z.union([z.string(), z.array(z.string()), z.array(z.number()), z.array(z.array(z.number()))]),
  encoding_format: opt(z.enum(['float', 'base64'])),
  dimensions: opt(z.number().int().min(1)),
  user: opt(z.string())
})

export const ImagesRequestSchema = z.object({
  prompt: z.string().min(1).max(MAX_IMAGE_PROMPT_CHARS),
  model: opt(z.string()),
  n: opt(z.number().int().min(1).max(MAX_IMAGES_PER_REQUEST)),
  size: opt(z.string()),
  response_format: opt(z.enum(['url', 'b64_json'])),
  stream: opt(z.boolean())
  // quality, style, background, output_format, moderation, user: accepted, ignored
})

export const SpeechRequestSchema = z.object({
  model: z.string(),
  input: z.string().min(1).max(MAX_SPEECH_INPUT_CHARS),
  voice: z.union([z.string().min(1).max(64), z.object({ id: z.string().min(1).max(64) })]),
  response_format: opt(z.enum(['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'])),
  speed: opt(z.number().min(0.25).max(4)),
  instructions: opt(z.string()),
  stream_format: opt(z.enum(['audio', 'sse']))
})

/** Media types of the speech formats this gateway produces */
export const SPEECH_TYPES: Record<string, string> = { mp3: 'audio/mpeg', wav: 'audio/wav' }

/** `response_format` of transcriptions */
export const TRANSCRIPTION_FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt'] as const
export type TranscriptionFormat = typeof TRANSCRIPTION_FORMATS[number]

/** The media type of an upload the client did not type, from its file name */
const AUDIO_TYPES_BY_EXTENSION: Record<string, string> = {
  wav: 'audio/wav', mp3: 'audio/mpeg', mpga: 'audio/mpeg', mpeg: 'audio/mpeg', m4a: 'audio/mp4', mp4: 'audio/mp4',
  webm: 'audio/webm', ogg: 'audio/ogg', oga: 'audio/ogg', flac: 'audio/flac'
}

export function audioTypeOf (filename: string, type: string): string {
  if (type !== '' && type !== 'application/octet-stream') return type.slice(0, 100)
  const ext = filename.slice(filename.lastIndexOf('.') + 1).toLowerCase()
  return AUDIO_TYPES_BY_EXTENSION[ext] ?? 'application/octet-stream'
}

const DATA_URL_RE = /^data:([^;,]*)((?:;[^;,]*)*?);base64,(.*)$/s

/** The base64 of an `image_url` that is a data: URL (this gateway fetches no remote images) */
function imageOf (url: string, param: string): string {
  const match = DATA_URL_RE.exec(url)
  if (match === null) {
    throw openaiInvalid(url.startsWith('data:')
      ? `Invalid '${param}': a data: URL must be base64 (data:image/png;base64,…).`
      : `Invalid '${param}': only data: URLs are supported (this server does not download remote images).`, param, 'invalid_image_url')
  }
  return match[3]
}

function textOf (message: Message, i: number): { text: string, images: string[] } {
  const content = message.content
  if (content == null) {
    // an assistant turn may carry only tool calls; every other turn needs content
    if (message.role === 'assistant') return { text: '', images: [] }
    throw openaiInvalid(`Missing required parameter: 'messages[${i}].content'.`, `messages[${i}].content`, 'missing_required_parameter')
  }
  if (typeof content === 'string') return { text: content, images: [] }
  const texts: string[] = []
  const images: string[] = []
  content.forEach((part, j) => {
    const param = `messages[${i}].content[${j}]`
    if (part.type === 'text') {
      if (part.text === undefined) throw openaiInvalid(`Missing required parameter: '${param}.text'.`, `${param}.text`, 'missing_required_parameter')
      texts.push(part.text)
    } else if (part.type === 'refusal' && part.refusal !== undefined) {
      texts.push(part.refusal)
    } else if (part.type === 'image_url') {
      if (part.image_url === undefined) throw openaiInvalid(`Missing required parameter: '${param}.image_url'.`, `${param}.image_url`, 'missing_required_parameter')
      images.push(imageOf(part.image_url.url, `${param}.image_url.url`))
    } else {
      throw openaiInvalid(`Invalid value: '${part.type.slice(0, 40)}'. Supported values are: 'text' and 'image_url'.`, `${param}.type`, 'invalid_value')
    }
  })
  return { text: texts.join('\n'), images }
}

const ROLES: Record<Message['role'], ChatMessage['role']> = {
  system: 'system', developer: 'system', user: 'user', assistant: 'assistant', tool: 'tool', function: 'tool'
}

/** The chat task of a request */
export function chatInput (messages: Message[]): ChatInput {
  let imageCount = 0
  const out = messages.map((m, i) => {
    const { text, images } = textOf(m, i)
    imageCount += images.length
    return { role: ROLES[m.role], content: text, ...(images.length > 0 ? { images } : {}) }
  })
  if (imageCount > MAX_IMAGES) throw openaiInvalid(`Too many images: at most ${MAX_IMAGES} in one request.`, 'messages', 'too_many_images')
  const parsed = ChatInputSchema.safeParse({ messages: out })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const param = paramOf(issue.path)
    throw openaiInvalid(`Invalid '${param}': ${issue.path.includes('images') ? 'not valid base64 image data' : issue.message}.`, param.replace(/\.images\[\d+\]$/, '.content'), 'invalid_value')
  }
  return parsed.data
}

function wrapSeed (seed: number): number {
  return seed >= -1 && seed <= SEED_RANGE ? seed : ((seed % SEED_RANGE) + SEED_RANGE) % SEED_RANGE
}

/** The request's sampling options as TaskOptions */
export function taskOptions (body: ChatRequest): TaskOptions | undefined {
  const out: TaskOptions = {}
  if (body.temperature != null) out.temperature = body.temperature
  if (body.top_p != null) out.topP = body.top_p
  if (body.top_k != null) out.topK = body.top_k
  const max = body.max_completion_tokens ?? body.max_tokens
  if (max != null) out.maxTokens = max
  if (body.seed != null) out.seed = wrapSeed(body.seed)
  if (body.stop != null) out.stop = typeof body.stop === 'string' ? [body.stop] : body.stop
  // json_schema asks for JSON; the mesh passes no schema on (best effort)
  if (body.response_format != null && body.response_format.type !== 'text') out.json = true
  const parsed = TaskOptionsSchema.safeParse(out)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const names: Record<string, string> = { maxTokens: 'max_tokens', topK: 'top_k', topP: 'top_p' }
    const param = names[String(issue.path[0])] ?? paramOf(issue.path)
    throw openaiInvalid(`Invalid '${param}': ${issue.message}.`, param, 'invalid_value')
  }
  return Object.keys(out).length > 0 ? out : undefined
}

/** OpenAI's finish reasons; anything else a backend says is a normal stop */
export function finishReason (doneReason: string | undefined): string {
  return doneReason === 'length' || doneReason === 'content_filter' || doneReason === 'tool_calls' ? doneReason : 'stop'
}

export function usageObject (usage: Usage | undefined, tokenEvents: number): Record<string, unknown> {
  const prompt = usage?.promptTokens ?? 0
  const completion = usage?.completionTokens ?? tokenEvents
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 }
  }
}

export interface CompletionIdentity {
  id: string
  created: number
  model: string
}

/** The `chat.completion` object of a whole answer */
export function completionObject (who: CompletionIdentity, text: string, doneReason: string | undefined, usage: Usage | undefined, tokenEvents: number): Record<string, unknown> {
  return {
    id: who.id,
    object: 'chat.completion',
    created: who.created,
    model: who.model,
    choices: [{
      index: 0,
      message: { role: 'assistant', content: text, refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: finishReason(doneReason)
    }],
    usage: usageObject(usage, tokenEvents),
    service_tier: 'default',
    system_fingerprint: SYSTEM_FINGERPRINT
  }
}

function event (value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`
}

/** OpenAI's stream terminator */
export const SSE_DONE = 'data: [DONE]\n\n'

/**
 * `chat.completion.chunk` events: the role first, one per token, one with the finish reason, a
 * usage chunk when `include_usage`, then `[DONE]`. A failure after the stream started is one
 * `data: {"error": {…}}` event (openai-node throws it as an APIError), then `[DONE]` as
 * OpenAI-compatible servers (vLLM) end it.
 */
export function sseFormat (who: CompletionIdentity, includeUsage: boolean): StreamFormat {
  const chunk = (delta: Record<string, unknown>, finish: string | null): string => event({
    id: who.id,
    object: 'chat.completion.chunk',
    created: who.created,
    model: who.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {})
  })
  return {
    contentType: SSE_TYPE,
    open: () => chunk({ role: 'assistant', content: '' }, null),
    tokens: (text) => chunk({ content: text }, null),
    done: (done, tokenEvents) => {
      let out = chunk({}, finishReason(done.output.doneReason))
      if (includeUsage) {
        out += event({
          id: who.id,
          object: 'chat.completion.chunk',
          created: who.created,
          model: who.model,
          system_fingerprint: SYSTEM_FINGERPRINT,
          choices: [],
          usage: usageObject(done.output.usage, tokenEvents)
        })
      }
      return out + SSE_DONE
    },
    error: (err: TaskError) => event({ error: openaiErrorFor(err, who.model)?.error ?? { message: err.message, type: 'server_error', param: null, code: null } }) + SSE_DONE,
    keepalive: { text: ': keep-alive\n\n', everyMs: SSE_KEEPALIVE_MS }
  }
}

/** `size` as width and height; `auto` (or none) leaves them to the worker */
export function imageSize (size: string | null | undefined): { width?: number, height?: number } {
  if (size == null || size === 'auto') return {}
  const match = /^(\d{1,5})x(\d{1,5})$/.exec(size)
  const width = Number(match?.[1])
  const height = Number(match?.[2])
  if (match === null || width < MIN_IMAGE_SIDE || height < MIN_IMAGE_SIDE || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw openaiInvalid(`Invalid value: '${size.slice(0, 40)}'. Supported values are: 'auto' and 'WIDTHxHEIGHT' with sides from ${MIN_IMAGE_SIDE} to ${MAX_IMAGE_SIDE}.`, 'size', 'invalid_value')
  }
  return { width, height }
}

/** Little-endian float32 bytes as base64: OpenAI's `encoding_format: "base64"` */
export function embeddingBase64 (vector: number[]): string {
  const bytes = Buffer.alloc(vector.length * 4)
  vector.forEach((v, i) => { bytes.writeFloatLE(v, i * 4) })
  return bytes.toString('base64')
}

/** `dimensions`: the first n components, normalised again (text-embedding-3's shortening) */
export function shorten (vector: number[], dimensions: number | null | undefined): number[] {
  if (dimensions == null || dimensions >= vector.length) return vector
  const head = vector.slice(0, dimensions)
  let sum = 0
  for (const v of head) sum += v * v
  const norm = 1 / Math.max(Math.sqrt(sum), 1e-12)
  return head.map(v => v * norm)
}

/** Duration of a PCM WAV file in seconds, from its header; undefined for anything else */
export function wavSeconds (data: Buffer): number | undefined {
  if (data.length < 12 || data.toString('ascii', 0, 4) !== 'RIFF' || data.toString('ascii', 8, 12) !== 'WAVE') return undefined
  let offset = 12
  let byteRate: number | undefined
  while (offset + 8 <= data.length) {
    const id = data.toString('ascii', offset, offset + 4)
    const size = data.readUInt32LE(offset + 4)
    if (id === 'fmt ' && offset + 16 <= data.length) byteRate = data.readUInt32LE(offset + 16)
    if (id === 'data') {
      if (byteRate === undefined || byteRate === 0) return undefined
      return Math.min(size, data.length - offset - 8) / byteRate
    }
    offset += 8 + size + (size % 2)
  }
  return undefined
}

function timestamp (seconds: number, separator: ',' | '.'): string {
  const ms = Math.max(0, Math.round(seconds * 1000))
  const h = Math.floor(ms / 3_600_000)
  const m = Math.floor(ms / 60_000) % 60
  const s = Math.floor(ms / 1000) % 60
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(ms % 1000, 3)}`
}

/** A transcription in one of OpenAI's `response_format`s (the mesh gives no segments: one covers it all) */
export function transcriptionAnswer (format: TranscriptionFormat, text: string, seconds: number | undefined, language: string | undefined): { type: string, body: string | Record<string, unknown> } {
  const duration = seconds ?? 0
  switch (format) {
    case 'text': return { type: 'text/plain; charset=utf-8', body: `${text}\n` }
    case 'srt': return { type: 'text/plain; charset=utf-8', body: `1\n${timestamp(0, ',')} --> ${timestamp(duration, ',')}\n${text}\n\n` }
    case 'vtt': return { type: 'text/plain; charset=utf-8', body: `WEBVTT\n\n${timestamp(0, '.')} --> ${timestamp(duration, '.')}\n${text}\n\n` }
    case 'verbose_json': return {
      type: 'application/json',
      body: {
        task: 'transcribe',
        language: language ?? 'unknown',
        duration,
        text,
        segments: [{ id: 0, seek: 0, start: 0, end: duration, text, tokens: [], temperature: 0, avg_logprob: 0, compression_ratio: 1, no_speech_prob: 0 }],
        ...(seconds !== undefined ? { usage: { type: 'duration', seconds: Math.ceil(seconds) } } : {})
      }
    }
    default: return {
      type: 'application/json',
      body: { text, ...(seconds !== undefined ? { usage: { type: 'duration', seconds: Math.ceil(seconds) } } : {}) }
    }
  }
}
