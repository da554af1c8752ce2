/**
 * Ollama's API (github.com/ollama/ollama docs/api.md, api/types.go, server/routes.go): request
 * schemas, their translation into tasks, and the answers in Ollama's exact shapes.
 */
import { z } from 'zod'
import {
  ChatInputSchema, GenerateInputSchema, MAX_IMAGES, TaskOptionsSchema,
  type ChatInput, type GenerateInput, type TaskOptions, type Usage
} from '../../../protocol/task.js'
import type { TaskError, TaskTimings } from '../../tasks/types.js'
import { OllamaHttpError, ollamaErrorFor } from './errors.js'
import type { DoneEvent, StreamFormat, TaskOutcome } from './task-stream.js'
import { paramOf } from './validate.js'

/** Ollama's NDJSON media type (server/routes.go streamResponse) */
export const NDJSON_TYPE = 'application/x-ndjson'
/** Largest seed passed on; larger ones wrap (Go's int seeds are 64-bit, ours 32) */
const SEED_RANGE = 2 ** 32

/** Go decodes JSON null into any field as its zero value: every optional field may be null */
function opt<T extends z.ZodType> (schema: T): z.ZodOptional<z.ZodNullable<T>> {
  return schema.nullable().optional()
}

const OptionsSchema = z.object({
  temperature: opt(z.number()),
  top_p: opt(z.number()),
  top_k: opt(z.number().int()),
  num_predict: opt(z.number().int()),
  seed: opt(z.number().int()),
  stop: opt(z.union([z.string(), z.array(z.string())]))
  // num_ctx, repeat_penalty, num_gpu, …: accepted and left to the backend's defaults
})
type OllamaOptions = z.output<typeof OptionsSchema>

/** `"json"`, `""` or a JSON schema */
const FormatSchema = opt(z.union([z.string(), z.record(z.string(), z.unknown())]))
/** a duration string (`"5m"`) or seconds; accepted and ignored (the mesh decides what stays loaded) */
const KeepAliveSchema = opt(z.union([z.string(), z.number()]))
const ThinkSchema = opt(z.union([z.boolean(), z.string()]))

const MessageSchema = z.object({
  role: z.string(),
  content: opt(z.string()),
  images: opt(z.array(z.string()))
  // thinking, tool_calls, tool_name: accepted, not passed on
})

export const ChatRequestSchema = z.object({
  model: opt(z.string()),
  messages: opt(z.array(MessageSchema)),
  stream: opt(z.boolean()),
  format: FormatSchema,
  options: opt(OptionsSchema),
  keep_alive: KeepAliveSchema,
  think: ThinkSchema,
  tools: opt(z.array(z.unknown()))
})
export type ChatRequest = z.output<typeof ChatRequestSchema>

export const GenerateRequestSchema = z.object({
  model: opt(z.string()),
  prompt: opt(z.string()),
  suffix: opt(z.string()),
  system: opt(z.string()),
  template: opt(z.string()),
  context: opt(z.array(z.number().int())),
  stream: opt(z.boolean()),
  raw: opt(z.boolean()),
  format: FormatSchema,
  images: opt(z.array(z.string())),
  options: opt(OptionsSchema),
  keep_alive: KeepAliveSchema,
  think: ThinkSchema
})
export type GenerateRequest = z.output<typeof GenerateRequestSchema>

export const EmbedRequestSchema = z.object({
  model: opt(z.string()),
  // Ollama checks the input's type itself ("invalid input type")
  input: z.unknown(),
  truncate: opt(z.boolean()),
  dimensions: opt(z.number().int()),
  options: opt(OptionsSchema),
  keep_alive: KeepAliveSchema
})

export const EmbeddingsRequestSchema = z.object({
  model: opt(z.string()),
  prompt: opt(z.string()),
  options: opt(OptionsSchema),
  keep_alive: KeepAliveSchema
})

export const ShowRequestSchema = z.object({
  model: opt(z.string()),
  name: opt(z.string()),
  verbose: opt(z.boolean()),
  system: opt(z.string()),
  template: opt(z.string()),
  options: opt(z.record(z.string(), z.unknown()))
})

export const PullRequestSchema = z.object({
  model: opt(z.string()),
  name: opt(z.string()),
  insecure: opt(z.boolean()),
  stream: opt(z.boolean()),
  username: opt(z.string()),
  password: opt(z.string())
})

/** Ollama's option names, for errors about the TaskOptions they became */
const OPTION_NAMES: Record<string, string> = { temperature: 'temperature', topP: 'top_p', topK: 'top_k', maxTokens: 'num_predict', seed: 'seed', stop: 'stop', json: 'format' }

function wrapSeed (seed: number): number {
  return seed >= -1 && seed <= SEED_RANGE ? seed : ((seed % SEED_RANGE) + SEED_RANGE) % SEED_RANGE
}

/** Sampling options and `format` as TaskOptions; 400 for values outside the task's bounds */
export function taskOptions (options: OllamaOptions | null | undefined, format: unknown): TaskOptions | undefined {
  const out: TaskOptions = {}
  const o = options ?? {}
  if (o.temperature != null) out.temperature = o.temperature
  if (o.top_p != null) out.topP = o.top_p
  if (o.top_k != null) out.topK = o.top_k
  // -1 (no limit) and -2 (fill the context) leave the length to the backend
  if (o.num_predict != null && o.num_predict > 0) out.maxTokens = o.num_predict
  if (o.seed != null) out.seed = wrapSeed(o.seed)
  if (o.stop != null) out.stop = typeof o.stop === 'string' ? [o.stop] : o.stop
  if (format === 'json' || (typeof format === 'object' && format !== null)) {
    // a JSON schema asks for JSON; the mesh passes no schema on (best effort)
    out.json = true
  } else if (typeof format === 'string' && format !== '') {
    throw new OllamaHttpError(400, `invalid format: ${JSON.stringify(format)}; expected "json" or a valid JSON schema`)
  }
  const parsed = TaskOptionsSchema.safeParse(out)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const key = String(issue.path[0] ?? '')
    throw new OllamaHttpError(400, `invalid option ${OPTION_NAMES[key] ?? key}${issue.path.length > 1 ? paramOf(issue.path.slice(1)) : ''}: ${issue.message}`)
  }
  return Object.keys(out).length > 0 ? out : undefined
}

/** Ollama's answer to `think` on a model that cannot (the mesh advertises no thinking models) */
export function checkThink (think: boolean | string | null | undefined, model: string): void {
  if (think === true || (typeof think === 'string' && think !== '' && think !== 'false')) {
    throw new OllamaHttpError(400, `${JSON.stringify(model)} does not support thinking`)
  }
}

const BASE64_CHAR_RE = /[^A-Za-z0-9+/=]/

/** Images as Ollama takes them: standard base64 (Go's decoder words the error) */
export function checkImages (images: string[], where: string): void {
  for (const image of images) {
    const bad = BASE64_CHAR_RE.exec(image)
    if (bad !== null) throw new OllamaHttpError(400, `illegal base64 data at input byte ${bad.index}`)
    const padding = image.indexOf('=')
    if (image.length % 4 !== 0 || (padding !== -1 && padding < image.length - 2)) {
      throw new OllamaHttpError(400, `illegal base64 data at input byte ${padding !== -1 ? padding : image.length}`)
    }
  }
  if (images.length > MAX_IMAGES) throw new OllamaHttpError(400, `too many images in ${where}: at most ${MAX_IMAGES}`)
}

function checkInput<T> (schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new OllamaHttpError(400, `invalid ${paramOf(issue.path) || 'request'}: ${issue.message}`)
  }
  return parsed.data
}

const CHAT_ROLES = new Set(['system', 'user', 'assistant', 'tool'])

/** The chat task of a request with messages */
export function chatInput (messages: NonNullable<ChatRequest['messages']>): ChatInput {
  let imageCount = 0
  const out = messages.map((m, i) => {
    // Ollama lowercases roles (api.Message.UnmarshalJSON)
    const role = m.role.toLowerCase()
    if (!CHAT_ROLES.has(role)) throw new OllamaHttpError(400, `invalid role ${JSON.stringify(m.role)} in messages[${i}]: expected system, user, assistant or tool`)
    const images = m.images ?? []
    checkImages(images, `messages[${i}]`)
    imageCount += images.length
    return { role: role as ChatInput['messages'][number]['role'], content: m.content ?? '', ...(images.length > 0 ? { images } : {}) }
  })
  if (imageCount > MAX_IMAGES) throw new OllamaHttpError(400, `too many images: at most ${MAX_IMAGES} in one chat`)
  return checkInput(ChatInputSchema, { messages: out })
}

/** The generate task of a request with a prompt */
export function generateInput (body: GenerateRequest): GenerateInput {
  const images = body.images ?? []
  checkImages(images, 'images')
  return checkInput(GenerateInputSchema, {
    prompt: body.prompt ?? '',
    ...(body.system != null && body.system !== '' ? { system: body.system } : {}),
    ...(images.length > 0 ? { images } : {})
  })
}

/** `keep_alive: 0` with nothing to run unloads the model in Ollama; anything else loads it */
export function loadReason (keepAlive: string | number | null | undefined): 'load' | 'unload' {
  return keepAlive === 0 || keepAlive === '0' || keepAlive === '0s' || keepAlive === '0m' ? 'unload' : 'load'
}

export function createdAt (): string {
  return new Date().toISOString()
}

/** Go durations in ns; Ollama omits zero durations, so we never send 0 (clients divide by them) */
function ns (ms: number): number {
  return Math.max(1, Math.round(ms * 1e6))
}

/** The metrics of a final object, from the task's timings and usage */
export function metrics (timings: TaskTimings, usage: Usage | undefined, tokenEvents: number): Record<string, number> {
  const queueMs = timings.queueMs ?? 0
  const firstTokenMs = timings.firstTokenMs ?? 0
  const runMs = timings.runMs ?? Math.max(0, timings.totalMs - queueMs)
  return {
    total_duration: ns(timings.totalMs),
    // the mesh's "loading" is the wait for a worker
    load_duration: ns(queueMs),
    prompt_eval_count: usage?.promptTokens ?? 0,
    prompt_eval_duration: ns(firstTokenMs),
    eval_count: usage?.completionTokens ?? tokenEvents,
    eval_duration: ns(Math.max(0, runMs - firstTokenMs))
  }
}

type Route = 'chat' | 'generate'

/** The object that ends an answer (`content` is the whole text when not streamed, '' at a stream's end) */
export function finalObject (route: Route, model: string, content: string, output: DoneEvent['output'], timings: TaskTimings, tokenEvents: number): Record<string, unknown> {
  const head = route === 'chat'
    ? { model, created_at: createdAt(), message: { role: 'assistant', content } }
    : { model, created_at: createdAt(), response: content }
  return { ...head, done: true, done_reason: output.doneReason ?? 'stop', ...metrics(timings, output.usage, tokenEvents) }
}

export function finalFromOutcome (route: Route, model: string, outcome: TaskOutcome): Record<string, unknown> {
  return finalObject(route, model, outcome.text, outcome.output, outcome.timings, outcome.tokenEvents)
}

function line (value: unknown): string {
  return JSON.stringify(value) + '\n'
}

/** Ollama's NDJSON stream: one object per token, a final object, or `{"error"}` on failure */
export function ndjsonFormat (route: Route, model: string): StreamFormat {
  return {
    contentType: NDJSON_TYPE,
    tokens: (text) => line(route === 'chat'
      ? { model, created_at: createdAt(), message: { role: 'assistant', content: text }, done: false }
      : { model, created_at: createdAt(), response: text, done: false }),
    done: (event, tokenEvents) => line(finalObject(route, model, '', event.output, event.timings, tokenEvents)),
    error: (err: TaskError) => line({ error: ollamaErrorFor(err, model)?.message ?? err.message })
  }
}

/** L2-normalises a vector, as Ollama's /api/embed does (idempotent) */
export function normalize (vector: number[]): number[] {
  let sum = 0
  for (const v of vector) sum += v * v
  const norm = 1 / Math.max(Math.sqrt(sum), 1e-12)
  return vector.map(v => v * norm)
}
