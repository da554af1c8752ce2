/**
 * Ollama stand-in: speaks the Ollama REST API (github.com/ollama/ollama docs/api.md) for the
 * routes the realm uses, with NDJSON streaming (`application/x-ndjson`) exactly as Ollama does.
 * Fixtures: test/fixtures/ollama/.
 */
import { createHash } from 'node:crypto'
import {
  DEFAULT_REPLY, Standin, embeddingFor, hash32, splitTokens
} from './base.js'
import type { GenerationRequest, ReplyFn, RequestContext, StandinInit, StandinMessage } from './base.js'

/** Version `GET /api/version` reports */
export const OLLAMA_STANDIN_VERSION = '0.12.3'
/** How long a model stays loaded after use, as Ollama's default keep_alive (5 min) */
const KEEP_ALIVE_MS = 5 * 60 * 1000
/** Length of the vectors `/api/embed` returns unless configured */
const DEFAULT_EMBEDDING_DIMS = 16

export interface OllamaModelInit {
  /** `name:tag`; a bare name gets `:latest` */
  name: string
  /** bytes on disk; default derived from the name */
  size?: number
  /** sha256 hex; default derived from the name */
  digest?: string
  /** ISO time; default a fixed date */
  modifiedAt?: string
  format?: string
  family?: string
  families?: string[]
  parameterSize?: string
  quantization?: string
  parentModel?: string
  /** `general.architecture` in `/api/show`; default the family */
  architecture?: string
  /** `<arch>.context_length` in `/api/show`; default 4096 */
  contextLength?: number
  /** `/api/show` capabilities; default ['completion'] (+ 'vision' if `clip` in families) */
  capabilities?: string[]
  /** loaded in memory (listed by `/api/ps`); `sizeVram` defaults to `size` */
  loaded?: boolean | { sizeVram?: number, expiresAt?: string }
}

export interface OllamaStandinInit extends StandinInit {
  /** the installed models; default OLLAMA_DEFAULT_MODELS */
  models?: OllamaModelInit[]
  /** the answer of chat/generate; default a fixed sentence */
  reply?: ReplyFn
  /** `/api/version`; default OLLAMA_STANDIN_VERSION */
  version?: string
  /** length of embedding vectors; default 16 */
  embeddingDims?: number
}

/** A small, realistic set: a chat model (loaded), a vision model, an embedding model */
export const OLLAMA_DEFAULT_MODELS: OllamaModelInit[] = [
  {
    name: 'llama3.2:1b',
    size: 1321098329,
    family: 'llama',
    parameterSize: '1.2B',
    quantization: 'Q8_0',
    contextLength: 131072,
    capabilities: ['completion', 'tools'],
    loaded: { sizeVram: 1_800_000_000 }
  },
  {
    name: 'llava:7b',
    size: 4733363377,
    family: 'llama',
    families: ['llama', 'clip'],
    parameterSize: '7B',
    quantization: 'Q4_0',
    contextLength: 32768,
    capabilities: ['completion', 'vision']
  },
  {
    name: 'nomic-embed-text:latest',
    size: 274302450,
    family: 'nomic-bert',
    parameterSize: '137M',
    quantization: 'F16',
    contextLength: 2048,
    capabilities: ['embedding']
  }
]

interface Model {
  name: string
  size: number
  digest: string
  modifiedAt: string
  details: {
    parent_model: string
    format: string
    family: string
    families: string[]
    parameter_size: string
    quantization_level: string
  }
  architecture: string
  contextLength: number
  capabilities: string[]
  loaded: { sizeVram: number, expiresAt: string } | null
}

function withTag (name: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1)
  return last.includes(':') ? name : `${name}:latest`
}

function toModel (init: OllamaModelInit): Model {
  const name = withTag(init.name)
  const family = init.family ?? name.split(/[:/]/)[0].replace(/[\d.]+$/, '')
  const families = init.families ?? [family]
  const size = init.size ?? 1_000_000 + hash32(name) % 4_000_000_000
  let loaded: Model['loaded'] = null
  if (init.loaded !== undefined && init.loaded !== false) {
    const l = init.loaded === true ? {} : init.loaded
    loaded = { sizeVram: l.sizeVram ?? size, expiresAt: l.expiresAt ?? new Date(Date.now() + KEEP_ALIVE_MS).toISOString() }
  }
  return {
    name,
    size,
    digest: init.digest ?? createHash('sha256').update(name).digest('hex'),
    modifiedAt: init.modifiedAt ?? '2025-05-04T17:37:44.706015396-07:00',
    details: {
      parent_model: init.parentModel ?? '',
      format: init.format ?? 'gguf',
      family,
      families,
      parameter_size: init.parameterSize ?? '1B',
      quantization_level: init.quantization ?? 'Q4_K_M'
    },
    architecture: init.architecture ?? family,
    contextLength: init.contextLength ?? 4096,
    capabilities: init.capabilities ?? (families.includes('clip') ? ['completion', 'vision'] : ['completion']),
    loaded
  }
}

/** Go's time.Duration in ns, never 0 (Ollama omits zero durations) */
function ns (fromMs: number): number {
  return Math.max(1, Math.round((performance.now() - fromMs) * 1e6))
}

export class OllamaStandin extends Standin {
  reply: ReplyFn
  version: string
  embeddingDims: number
  private models: Model[] = []

  constructor (init: OllamaStandinInit = {}) {
    super(init)
    this.reply = init.reply ?? (() => DEFAULT_REPLY)
    this.version = init.version ?? OLLAMA_STANDIN_VERSION
    this.embeddingDims = init.embeddingDims ?? DEFAULT_EMBEDDING_DIMS
    this.setModels(init.models ?? OLLAMA_DEFAULT_MODELS)
  }

  /** replaces the installed models */
  setModels (models: OllamaModelInit[]): void {
    this.models = models.map(toModel)
  }

  /** marks a model loaded (listed by /api/ps) or unloaded */
  setLoaded (name: string, loaded: boolean | { sizeVram?: number, expiresAt?: string }): void {
    const model = this.find(name)
    if (model === undefined) throw new Error(`no model ${name}`)
    if (loaded === false) {
      model.loaded = null
    } else {
      const l = loaded === true ? {} : loaded
      model.loaded = { sizeVram: l.sizeVram ?? model.size, expiresAt: l.expiresAt ?? new Date(Date.now() + KEEP_ALIVE_MS).toISOString() }
    }
  }

  protected override async route (ctx: RequestContext): Promise<boolean> {
    const key = `${ctx.method} ${ctx.path}`
    switch (key) {
      case 'GET /':
      case 'HEAD /':
        this.sendText(ctx, 200, 'Ollama is running')
        return true
      case 'GET /api/version':
        this.sendJson(ctx, 200, { version: this.version })
        return true
      case 'GET /api/tags':
        this.sendJson(ctx, 200, { models: this.models.map(m => this.tag(m)) })
        return true
      case 'GET /api/ps':
        this.sendJson(ctx, 200, { models: this.models.filter(m => m.loaded !== null).map(m => this.ps(m)) })
        return true
      case 'POST /api/show':
        this.show(ctx)
        return true
      case 'POST /api/chat':
        await this.generate(ctx, 'chat')
        return true
      case 'POST /api/generate':
        await this.generate(ctx, 'generate')
        return true
      case 'POST /api/embed':
        this.embed(ctx)
        return true
      default:
        return false
    }
  }

  protected override sendError (ctx: RequestContext, status: number, kind: 'server' | 'not_found' | 'bad_request', message?: string): void {
    if (kind === 'not_found' && message === undefined) {
      // gin's answer for an unknown route
      this.sendText(ctx, 404, '404 page not found')
      return
    }
    const text = message ?? (kind === 'server' ? 'an error was encountered while running the model' : 'bad request')
    this.sendJson(ctx, status, { error: text })
  }

  private find (name: string): Model | undefined {
    const full = withTag(name)
    return this.models.find(m => m.name === full)
  }

  private tag (m: Model): Record<string, unknown> {
    return { name: m.name, model: m.name, modified_at: m.modifiedAt, size: m.size, digest: m.digest, details: m.details }
  }

  private ps (m: Model): Record<string, unknown> {
    return {
      name: m.name,
      model: m.name,
      size: m.size,
      digest: m.digest,
      details: m.details,
      expires_at: m.loaded?.expiresAt,
      size_vram: m.loaded?.sizeVram
    }
  }

  /** the body as an object, or a 400 like Ollama's for anything else */
  private objectBody (ctx: RequestContext): Record<string, any> | undefined {
    const body = ctx.body
    if (body === undefined) {
      this.sendError(ctx, 400, 'bad_request', 'missing request body')
      return undefined
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.sendError(ctx, 400, 'bad_request', 'invalid character in request body')
      return undefined
    }
    return body as Record<string, any>
  }

  /** the model named by the body, or a 400/404 as Ollama answers */
  private modelOf (ctx: RequestContext, body: Record<string, any>): Model | undefined {
    const name: unknown = body.model ?? body.name
    if (typeof name !== 'string' || name === '') {
      this.sendError(ctx, 400, 'bad_request', 'model is required')
      return undefined
    }
    const model = this.find(name)
    if (model === undefined) {
      this.sendError(ctx, 404, 'not_found', `model '${name}' not found`)
      return undefined
    }
    return model
  }

  private show (ctx: RequestContext): void {
    const body = this.objectBody(ctx)
    if (body === undefined) return
    const m = this.modelOf(ctx, body)
    if (m === undefined) return
    const arch = m.architecture
    this.sendJson(ctx, 200, {
      modelfile: `# Modelfile generated by "ollama show"\nFROM ${m.name}\n`,
      parameters: 'stop                           "<|eot_id|>"',
      template: '{{ .Prompt }}',
      details: m.details,
      model_info: {
        'general.architecture': arch,
        'general.file_type': 2,
        'general.parameter_count': 1_000_000_000,
        'general.quantization_version': 2,
        [`${arch}.context_length`]: m.contextLength,
        [`${arch}.embedding_length`]: 2048
      },
      capabilities: m.capabilities,
      modified_at: m.modifiedAt
    })
  }

  private touch (m: Model, keepAlive: unknown): void {
    if (keepAlive === 0 || keepAlive === '0' || keepAlive === '0s') {
      m.loaded = null
      return
    }
    m.loaded = { sizeVram: m.loaded?.sizeVram ?? m.size, expiresAt: new Date(Date.now() + KEEP_ALIVE_MS).toISOString() }
  }

  private async generate (ctx: RequestContext, route: 'chat' | 'generate'): Promise<void> {
    const started = performance.now()
    const body = this.objectBody(ctx)
    if (body === undefined) return
    const m = this.modelOf(ctx, body)
    if (m === undefined) return
    const modelName = String(body.model ?? body.name)
    if (!m.capabilities.includes('completion')) {
      this.sendError(ctx, 400, 'bad_request', `${JSON.stringify(modelName)} does not support ${route}`)
      return
    }
    const stream = body.stream !== false
    const createdAt = (): string => new Date().toISOString()

    let messages: StandinMessage[] = []
    let prompt = ''
    if (route === 'chat') {
      if (body.messages !== undefined && !Array.isArray(body.messages)) {
        this.sendError(ctx, 400, 'bad_request', 'messages must be an array')
        return
      }
      messages = (body.messages ?? []).map((msg: any) => ({
        role: String(msg?.role ?? ''),
        content: typeof msg?.content === 'string' ? msg.content : '',
        ...(Array.isArray(msg?.images) ? { images: msg.images.map(String) } : {})
      }))
      prompt = [...messages].reverse().find(msg => msg.role === 'user')?.content ?? ''
    } else {
      prompt = typeof body.prompt === 'string' ? body.prompt : ''
      if (typeof body.system === 'string') messages.push({ role: 'system', content: body.system })
      messages.push({ role: 'user', content: prompt, ...(Array.isArray(body.images) ? { images: body.images.map(String) } : {}) })
    }

    // an empty chat / prompt loads (or with keep_alive 0 unloads) the model, as Ollama does
    const empty = route === 'chat' ? messages.length === 0 : prompt === '' && body.images === undefined
    if (empty) {
      this.touch(m, body.keep_alive)
      const reason = m.loaded === null ? 'unload' : 'load'
      if (route === 'chat') {
        this.sendJson(ctx, 200, { model: modelName, created_at: createdAt(), message: { role: 'assistant', content: '' }, done_reason: reason, done: true })
      } else {
        this.sendJson(ctx, 200, { model: modelName, created_at: createdAt(), response: '', done: true, ...(reason === 'unload' ? { done_reason: reason } : {}) })
      }
      return
    }
    this.touch(m, body.keep_alive)

    const images = messages.flatMap(msg => msg.images ?? [])
    const request: GenerationRequest = { route, model: modelName, messages, prompt, images, body }
    let tokens = splitTokens(this.reply(request))
    let doneReason = 'stop'
    const numPredict = body.options?.num_predict
    if (typeof numPredict === 'number' && numPredict >= 0 && tokens.length > numPredict) {
      tokens = tokens.slice(0, numPredict)
      doneReason = 'length'
    }
    const promptEvalCount = Math.max(1, splitTokens(messages.map(msg => msg.content).join(' ')).length)
    const evalStarted = performance.now()
    const final = (text: string): Record<string, unknown> => {
      const evalDuration = ns(evalStarted)
      const head = route === 'chat'
        ? { model: modelName, created_at: createdAt(), message: { role: 'assistant', content: text } }
        : { model: modelName, created_at: createdAt(), response: text }
      return {
        ...head,
        done: true,
        done_reason: doneReason,
        ...(route === 'generate' && body.raw !== true ? { context: tokens.map((_, i) => i + 1) } : {}),
        total_duration: ns(started),
        load_duration: 1_000_000,
        prompt_eval_count: promptEvalCount,
        prompt_eval_duration: 1_000_000,
        eval_count: tokens.length,
        eval_duration: evalDuration
      }
    }

    if (!stream) {
      if (this.killsBefore(tokens.length)) {
        this.cut(ctx)
        return
      }
      this.sendJson(ctx, 200, final(tokens.join('')))
      return
    }

    ctx.res.writeHead(200, { 'Content-Type': 'application/x-ndjson' })
    ctx.res.flushHeaders()
    for (let i = 0; i < tokens.length; i++) {
      await this.tokenGate(ctx, i)
      const chunk = route === 'chat'
        ? { model: modelName, created_at: createdAt(), message: { role: 'assistant', content: tokens[i] }, done: false }
        : { model: modelName, created_at: createdAt(), response: tokens[i], done: false }
      await this.write(ctx, JSON.stringify(chunk) + '\n')
    }
    await this.tokenGate(ctx, tokens.length)
    await this.write(ctx, JSON.stringify(final('')) + '\n')
    ctx.res.end()
  }

  private embed (ctx: RequestContext): void {
    const started = performance.now()
    const body = this.objectBody(ctx)
    if (body === undefined) return
    const m = this.modelOf(ctx, body)
    if (m === undefined) return
    const input: unknown = body.input
    let inputs: string[]
    if (input === undefined) {
      inputs = []
    } else if (typeof input === 'string') {
      inputs = [input]
    } else if (Array.isArray(input) && input.every(x => typeof x === 'string')) {
      inputs = input
    } else {
      this.sendError(ctx, 400, 'bad_request', 'invalid input type')
      return
    }
    this.touch(m, body.keep_alive)
    const dims = typeof body.dimensions === 'number' && body.dimensions > 0 ? Math.floor(body.dimensions) : this.embeddingDims
    const promptEvalCount = inputs.reduce((n, text) => n + splitTokens(text).length, 0)
    this.sendJson(ctx, 200, {
      model: String(body.model),
      embeddings: inputs.map(text => embeddingFor(text, dims)),
      total_duration: ns(started),
      load_duration: 1_000_000,
      ...(promptEvalCount > 0 ? { prompt_eval_count: promptEvalCount } : {})
    })
  }
}

/** Starts an Ollama stand-in on `init.host`:`init.port` (default 127.0.0.1, a free port) */
export async function startOllamaStandin (init: OllamaStandinInit = {}): Promise<OllamaStandin> {
  return await new OllamaStandin(init).listen()
}
