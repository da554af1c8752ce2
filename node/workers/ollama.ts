/**
 * Ollama adapter: models from `GET /api/tags`, loaded models and VRAM from `GET /api/ps`, context
 * size and capabilities from `POST /api/show` (once per model digest). Runs chat (`/api/chat`),
 * generate (`/api/generate`), both streamed as NDJSON, and embed (`/api/embed`).
 * API: github.com/ollama/ollama docs/api.md
 */
import { z } from 'zod'
import { logger } from '@libp2p/logger'
import type { ModelInfo, TaskKind } from '../../protocol/kinds.js'
import type { TaskOptions, TaskOutput, TaskSpec, Usage } from '../../protocol/task.js'
import { SHOW_LOOKUPS_PER_PROBE } from './constants.js'
import { BackendResponseError, ModelNotFoundError } from './errors.js'
import { requestJson } from './http.js'
import { finishModels, shortString } from './listing.js'
import type { Adapter, ListerComponents, Listing } from './listing.js'
import { TextSink } from './session.js'
import type { ErrorAnswer, RunSession } from './session.js'

const log = logger('realm:workers:ollama')

/** `details` of an Ollama model, as `/api/tags` and `/api/show` give it */
export interface OllamaDetails {
  parent_model?: string
  format?: string
  family?: string
  families?: string[] | null
  parameter_size?: string
  quantization_level?: string
}

const DetailsSchema = z.looseObject({
  family: z.string().optional().catch(undefined),
  families: z.array(z.string()).nullable().optional().catch(undefined),
  parameter_size: z.string().optional().catch(undefined),
  quantization_level: z.string().optional().catch(undefined)
})

const TagsSchema = z.looseObject({
  models: z.array(z.looseObject({
    name: z.string(),
    model: z.string().optional(),
    size: z.number().optional().catch(undefined),
    digest: z.string().optional().catch(undefined),
    details: DetailsSchema.optional().catch(undefined),
    capabilities: z.array(z.string()).optional().catch(undefined)
  })).nullable()
})
type Tags = z.infer<typeof TagsSchema>

const PsSchema = z.looseObject({
  models: z.array(z.looseObject({
    name: z.string().optional(),
    model: z.string().optional(),
    size_vram: z.number().optional().catch(undefined)
  })).nullable()
})

const ShowSchema = z.looseObject({
  model_info: z.record(z.string(), z.unknown()).nullable().optional().catch(undefined),
  capabilities: z.array(z.string()).nullable().optional().catch(undefined)
})

/** Parses an `/api/tags` answer; throws BackendResponseError when it is not one */
export function parseOllamaTags (body: unknown): Tags {
  const parsed = TagsSchema.safeParse(body)
  if (!parsed.success) throw new BackendResponseError('/api/tags is not an Ollama model list')
  return parsed.data
}

function lower (name: string, details?: OllamaDetails): string[] {
  return [name, details?.family ?? '', ...(details?.families ?? [])].map(s => s.toLowerCase())
}

/**
 * An embedding-only model: name or family contains `embed`, `bert` (nomic-bert, the BERT
 * family of all-minilm, mxbai, bge), `nomic` or `minilm`; or its capabilities say `embedding`
 * without `completion`.
 */
export function isEmbeddingModel (name: string, details?: OllamaDetails, capabilities?: string[]): boolean {
  if (capabilities !== undefined && capabilities.length > 0) return capabilities.includes('embedding') && !capabilities.includes('completion')
  return lower(name, details).some(s => /embed|bert|nomic|minilm/.test(s))
}

/**
 * A model that reads images: capabilities say `vision`, families include `clip` or `mllama`
 * (llava, bakllava, llama3.2-vision), or the name says so (moondream, minicpm-v, `vision`, `-vl`).
 */
export function isVisionModel (name: string, details?: OllamaDetails, capabilities?: string[]): boolean {
  if (capabilities?.includes('vision') === true) return true
  const families = (details?.families ?? []).map(f => f.toLowerCase())
  if (families.includes('clip') || families.includes('mllama')) return true
  const base = name.toLowerCase().slice(name.lastIndexOf('/') + 1)
  return /llava|moondream|vision|minicpm-v|-vl\b|vl:|qwen2\.5vl/.test(base)
}

/** The task kinds of an Ollama model (vision is `chat` with images: see isVisionModel) */
export function ollamaKinds (name: string, details?: OllamaDetails, capabilities?: string[]): TaskKind[] {
  if (capabilities !== undefined && capabilities.length > 0) {
    const kinds: TaskKind[] = []
    if (capabilities.includes('completion')) kinds.push('chat', 'generate')
    if (capabilities.includes('embedding')) kinds.push('embed')
    if (kinds.length > 0) return kinds
  }
  return isEmbeddingModel(name, details) ? ['embed'] : ['chat', 'generate']
}

interface ShowInfo { context?: number, capabilities?: string[] }

export class OllamaAdapter implements Adapter {
  readonly kinds: readonly TaskKind[] = ['chat', 'generate', 'embed']

  /** `/api/show` results by model digest (or name when there is none): a model's file never changes under its digest */
  private readonly shown = new Map<string, ShowInfo>()

  constructor (private readonly components: ListerComponents) {}

  async run (task: TaskSpec, session: RunSession): Promise<TaskOutput> {
    return await runOllama(task, session)
  }

  async list (signal: AbortSignal): Promise<Listing> {
    const { conn, fetch } = this.components
    const psRequest = requestJson(conn, '/api/ps', { fetch, signal }).then(body => PsSchema.parse(body), (err: unknown) => {
      // running-model info is a bonus: an Ollama without /api/ps is still healthy
      log('/api/ps: %s', err instanceof Error ? err.message : String(err))
      return undefined
    })
    const tags = parseOllamaTags(await requestJson(conn, '/api/tags', { fetch, signal }))
    const ps = await psRequest.catch(() => undefined)
    const entries = tags.models ?? []

    await this.lookUpNew(entries, signal)

    let vramUsed: number | undefined
    const loaded = new Set<string>()
    if (ps !== undefined) {
      vramUsed = 0
      for (const m of ps.models ?? []) {
        if (m.name !== undefined) loaded.add(m.name)
        if (m.model !== undefined) loaded.add(m.model)
        vramUsed += Math.max(0, m.size_vram ?? 0)
      }
    }

    const candidates: ModelInfo[] = entries.map(entry => {
      const details = entry.details
      const show = this.shown.get(entry.digest ?? entry.name)
      const capabilities = show?.capabilities ?? entry.capabilities
      const info: ModelInfo = { name: entry.name, kinds: ollamaKinds(entry.name, details, capabilities) }
      if (show?.context !== undefined) info.context = show.context
      if (isVisionModel(entry.name, details, capabilities)) info.vision = true
      if (entry.size !== undefined && Number.isSafeInteger(entry.size) && entry.size >= 0) info.size = entry.size
      if (ps !== undefined) info.loaded = loaded.has(entry.name) || (entry.model !== undefined && loaded.has(entry.model))
      const family = shortString(details?.family, 100)
      const parameterSize = shortString(details?.parameter_size, 50)
      const quantization = shortString(details?.quantization_level, 50)
      if (family !== undefined) info.family = family
      if (parameterSize !== undefined) info.parameterSize = parameterSize
      if (quantization !== undefined) info.quantization = quantization
      return info
    })
    return { models: finishModels(candidates, 'ollama'), ...(vramUsed !== undefined ? { vramUsed } : {}) }
  }

  /** `/api/show` for a few models not seen before: context size and capabilities */
  private async lookUpNew (entries: Tags['models'] & object, signal: AbortSignal): Promise<void> {
    const { conn, fetch } = this.components
    const fresh = entries.filter(e => !this.shown.has(e.digest ?? e.name)).slice(0, SHOW_LOOKUPS_PER_PROBE)
    for (const entry of fresh) {
      if (signal.aborted) return
      const key = entry.digest ?? entry.name
      try {
        const show = ShowSchema.parse(await requestJson(conn, '/api/show', { fetch, signal, method: 'POST', body: { model: entry.name } }))
        const info: ShowInfo = {}
        const modelInfo = show.model_info ?? {}
        const arch = modelInfo['general.architecture']
        const context = typeof arch === 'string' ? modelInfo[`${arch}.context_length`] : undefined
        if (typeof context === 'number' && Number.isSafeInteger(context) && context > 0 && context <= 10_000_000) info.context = context
        if (show.capabilities != null && show.capabilities.length > 0) info.capabilities = show.capabilities
        this.shown.set(key, info)
      } catch (err) {
        // an answer that is not a show (old Ollama, 404) is remembered; a lost connection is retried next probe
        if (err instanceof BackendResponseError || err instanceof z.ZodError) this.shown.set(key, {})
        log('/api/show %s: %s', entry.name, err instanceof Error ? err.message : String(err))
      }
    }
  }
}

/** Ollama `options` from the task's (only those set) */
export function ollamaOptions (options: TaskOptions | undefined): Record<string, unknown> | undefined {
  if (options === undefined) return undefined
  const out: Record<string, unknown> = {}
  if (options.temperature !== undefined) out.temperature = options.temperature
  if (options.topP !== undefined) out.top_p = options.topP
  if (options.topK !== undefined) out.top_k = options.topK
  if (options.maxTokens !== undefined) out.num_predict = options.maxTokens
  // -1 is "random", which is what leaving the seed out means to Ollama
  if (options.seed !== undefined && options.seed >= 0) out.seed = options.seed
  if (options.stop !== undefined) out.stop = options.stop
  return Object.keys(out).length > 0 ? out : undefined
}

/** Ollama says `model 'x' not found` (404) for a model it does not have */
function ollamaModelMissing (answer: ErrorAnswer): boolean {
  return answer.status === 404 && /not found/i.test(answer.message)
}

const StreamLineSchema = z.looseObject({
  error: z.string().optional(),
  message: z.looseObject({ content: z.string().optional() }).optional(),
  response: z.string().optional(),
  done: z.boolean().optional(),
  done_reason: z.string().optional(),
  prompt_eval_count: z.number().int().nonnegative().optional(),
  eval_count: z.number().int().nonnegative().optional()
})

const EmbedSchema = z.looseObject({
  embeddings: z.array(z.array(z.number())),
  prompt_eval_count: z.number().int().nonnegative().optional()
})

/** Runs one task on Ollama */
async function runOllama (task: TaskSpec, session: RunSession): Promise<TaskOutput> {
  const options = ollamaOptions(task.options)
  const format = task.options?.json === true ? { format: 'json' } : {}
  switch (task.kind) {
    case 'chat': {
      const messages = task.input.messages.map(m => ({
        role: m.role,
        content: m.content,
        ...(m.images !== undefined && m.images.length > 0 ? { images: m.images } : {})
      }))
      return await streamOllama(session, task.model, '/api/chat', { model: task.model, messages, stream: true, ...format, ...(options !== undefined ? { options } : {}) })
    }
    case 'generate': {
      const { prompt, system, images } = task.input
      return await streamOllama(session, task.model, '/api/generate', {
        model: task.model,
        prompt,
        ...(system !== undefined ? { system } : {}),
        ...(images !== undefined && images.length > 0 ? { images } : {}),
        stream: true,
        ...format,
        ...(options !== undefined ? { options } : {})
      })
    }
    case 'embed': {
      const res = await session.request('/api/embed', { json: { model: task.model, input: task.input.input } })
      if (!res.ok) throw notOk(session, task.model, '/api/embed', await session.errorAnswer(res))
      const parsed = EmbedSchema.safeParse(await session.json(res, '/api/embed'))
      if (!parsed.success) throw session.backendError('/api/embed did not answer embeddings')
      const promptTokens = parsed.data.prompt_eval_count
      return {
        embeddings: parsed.data.embeddings,
        ...(promptTokens !== undefined ? { usage: { promptTokens, units: promptTokens } } : {})
      }
    }
    default:
      throw new Error(`unreachable: ${task.kind}`)
  }
}

function notOk (session: RunSession, model: string, what: string, answer: ErrorAnswer): Error {
  if (ollamaModelMissing(answer)) return new ModelNotFoundError(model, answer.message)
  return session.httpError(what, answer)
}

/**
 * The text of a streamed line that is not the last one (`done: false`, no error, no counts),
 * when StreamLineSchema would accept it; undefined for any other line, which the schema reads
 */
function tokenLineText (value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const v = value as Record<string, unknown>
  if (v.done !== false || v.error !== undefined || v.prompt_eval_count !== undefined || v.eval_count !== undefined) return undefined
  if (v.done_reason !== undefined && typeof v.done_reason !== 'string') return undefined
  if (v.response !== undefined && typeof v.response !== 'string') return undefined
  const message = v.message
  if (message === undefined) return v.response ?? ''
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined
  const content = (message as Record<string, unknown>).content
  if (content !== undefined && typeof content !== 'string') return undefined
  return content ?? v.response ?? ''
}

/** `/api/chat` and `/api/generate` streamed: each line's content is a token, the last gives the usage */
async function streamOllama (session: RunSession, model: string, path: string, body: unknown): Promise<TaskOutput> {
  const res = await session.request(path, { json: body, accept: 'application/x-ndjson' })
  if (!res.ok) throw notOk(session, model, path, await session.errorAnswer(res))
  const sink = new TextSink(session)
  for await (const value of session.ndjson(res, path)) {
    // the lines before the last are checked by hand: the schema's verdict, without its cost per token
    const text = tokenLineText(value)
    if (text !== undefined) {
      sink.add(text)
      continue
    }
    const line = StreamLineSchema.safeParse(value)
    if (!line.success) throw session.backendError(`${path} streamed an object that is not Ollama's`)
    if (line.data.error !== undefined) throw session.backendError(`${path}: ${line.data.error}`)
    sink.add(line.data.message?.content ?? line.data.response ?? '')
    if (line.data.done === true) {
      const usage: Usage = {}
      if (line.data.prompt_eval_count !== undefined) usage.promptTokens = line.data.prompt_eval_count
      if (line.data.eval_count !== undefined) usage.completionTokens = line.data.eval_count
      usage.units = (usage.promptTokens ?? 0) + (usage.completionTokens ?? 0)
      return { text: sink.text, doneReason: line.data.done_reason ?? 'stop', usage }
    }
  }
  throw session.backendError(`${path} stream ended before its final object`)
}
