/**
 * OpenAI-compatible stand-in: speaks the OpenAI API (github.com/openai/openai-openapi) for the
 * routes the realm uses — SSE streaming (`data: {chunk}\n\n` … `data: [DONE]\n\n`), errors as
 * `{ error: { message, type, param, code } }` — plus llama.cpp server's `GET /health`.
 * Fixtures: test/fixtures/openai/.
 */
import type { IncomingMessage } from 'node:http'
import { DEFAULT_REPLY, Standin, embeddingFor, hash32, splitTokens } from './base.js'
import type { GenerationRequest, ReplyFn, RequestContext, StandinInit, StandinMessage } from './base.js'
import { silentMp3, solidPng, speechDurationMs, tonePcm, wavDurationSeconds, wavFromPcm, PCM_SAMPLE_RATE } from './media.js'

/** Side of the images `/v1/images/generations` makes when no size is asked (dall-e-2's smallest) */
const DEFAULT_IMAGE_SIDE_PX = 256
/** Largest side the stand-in draws (the API's largest is 1792) */
const MAX_IMAGE_SIDE_PX = 1792

/** Default answer of `/v1/audio/transcriptions` */
export const DEFAULT_TRANSCRIPT = 'Hello from the stand-in transcriber.'
const DEFAULT_EMBEDDING_DIMS = 16
/** `created` of the listed models (a fixed time keeps answers deterministic) */
const MODEL_CREATED_S = 1_700_000_000
const SYSTEM_FINGERPRINT = 'fp_standin'

export interface OpenAIModelInit {
  id: string
  created?: number
  ownedBy?: string
}

export interface TranscribeRequest {
  model: string
  filename: string
  type: string
  bytes: Buffer
  language?: string
  prompt?: string
}

export interface OpenAIStandinInit extends StandinInit {
  /** listed by `/v1/models`; default OPENAI_DEFAULT_MODELS */
  models?: Array<string | OpenAIModelInit>
  /** the answer of chat completions; default a fixed sentence */
  reply?: ReplyFn
  /** the text of transcriptions; default DEFAULT_TRANSCRIPT */
  transcribe?: (req: TranscribeRequest) => string
  /** when set, every `/v1` route needs `Authorization: Bearer <apiKey>` */
  apiKey?: string
  /** when true (default), an unknown model is a 404 `model_not_found`; llama.cpp ignores the name */
  strictModels?: boolean
  /** length of embedding vectors; default 16 */
  embeddingDims?: number
}

/** A chat model, an embedding model, two transcription models and a speech model */
export const OPENAI_DEFAULT_MODELS: string[] = ['llama-3.2-1b-instruct', 'text-embedding-3-small', 'whisper-1', 'gpt-4o-mini-transcribe', 'tts-1']

interface MultipartFile { field: string, filename: string, type: string, size: number, data: Buffer }
/** How a multipart body is recorded and handed to routes */
export interface MultipartBody { fields: Record<string, string>, files: MultipartFile[] }

const SPEECH_TYPES: Record<string, string> = { mp3: 'audio/mpeg', wav: 'audio/wav', pcm: 'audio/pcm' }

export class OpenAIStandin extends Standin {
  reply: ReplyFn
  transcribe: (req: TranscribeRequest) => string
  apiKey: string | undefined
  strictModels: boolean
  embeddingDims: number
  private models: Required<OpenAIModelInit>[] = []
  private completions = 0

  constructor (init: OpenAIStandinInit = {}) {
    super(init)
    this.reply = init.reply ?? (() => DEFAULT_REPLY)
    this.transcribe = init.transcribe ?? (() => DEFAULT_TRANSCRIPT)
    this.apiKey = init.apiKey
    this.strictModels = init.strictModels ?? true
    this.embeddingDims = init.embeddingDims ?? DEFAULT_EMBEDDING_DIMS
    this.setModels(init.models ?? OPENAI_DEFAULT_MODELS)
  }

  setModels (models: Array<string | OpenAIModelInit>): void {
    this.models = models.map(m => {
      const init = typeof m === 'string' ? { id: m } : m
      return { id: init.id, created: init.created ?? MODEL_CREATED_S, ownedBy: init.ownedBy ?? 'organization-owner' }
    })
  }

  protected override async parseBody (raw: Buffer, req: IncomingMessage): Promise<unknown> {
    const type = req.headers['content-type'] ?? ''
    if (!type.startsWith('multipart/form-data')) return await super.parseBody(raw, req)
    const form = await new Response(Uint8Array.from(raw), { headers: { 'content-type': type } }).formData().catch(() => undefined)
    if (form === undefined) return undefined
    const body: MultipartBody = { fields: {}, files: [] }
    const entries: Array<[string, FormDataEntryValue]> = []
    form.forEach((value, field) => { entries.push([field, value]) })
    for (const [field, value] of entries) {
      if (typeof value === 'string') {
        body.fields[field] = value
      } else {
        const data = Buffer.from(await value.arrayBuffer())
        body.files.push({ field, filename: value.name, type: value.type, size: data.length, data })
      }
    }
    return body
  }

  protected override preflight (ctx: RequestContext): boolean {
    if (this.apiKey === undefined || !ctx.path.startsWith('/v1/')) return false
    const auth = ctx.req.headers.authorization ?? ''
    if (auth === `Bearer ${this.apiKey}`) return false
    const message = auth === ''
      ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
      : 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.'
    this.sendJson(ctx, 401, { error: { message, type: 'invalid_request_error', param: null, code: auth === '' ? null : 'invalid_api_key' } })
    return true
  }

  protected override async route (ctx: RequestContext): Promise<boolean> {
    const key = `${ctx.method} ${ctx.path}`
    switch (key) {
      case 'GET /health':
      case 'GET /v1/health':
        this.sendJson(ctx, 200, { status: 'ok' })
        return true
      case 'GET /v1/models':
        this.sendJson(ctx, 200, { object: 'list', data: this.models.map(m => this.modelObject(m)) })
        return true
      case 'POST /v1/chat/completions':
        await this.chat(ctx)
        return true
      case 'POST /v1/embeddings':
        this.embeddings(ctx)
        return true
      case 'POST /v1/audio/transcriptions':
        this.transcription(ctx)
        return true
      case 'POST /v1/audio/speech':
        this.speech(ctx)
        return true
      case 'POST /v1/images/generations':
        this.images(ctx)
        return true
    }
    if (ctx.method === 'GET' && ctx.path.startsWith('/v1/models/')) {
      const id = decodeURIComponent(ctx.path.slice('/v1/models/'.length))
      const m = this.models.find(x => x.id === id)
      if (m === undefined) this.modelNotFound(ctx, id)
      else this.sendJson(ctx, 200, this.modelObject(m))
      return true
    }
    return false
  }

  protected override sendError (ctx: RequestContext, status: number, kind: 'server' | 'not_found' | 'bad_request', message?: string): void {
    if (kind === 'server') {
      this.sendJson(ctx, status, { error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } })
    } else if (kind === 'not_found') {
      this.sendJson(ctx, status, { error: { message: message ?? `Invalid URL (${ctx.method} ${ctx.path})`, type: 'invalid_request_error', param: null, code: null } })
    } else {
      this.invalid(ctx, message ?? 'Bad request', null)
    }
  }

  protected invalid (ctx: RequestContext, message: string, param: string | null, code: string | null = null): void {
    this.sendJson(ctx, 400, { error: { message, type: 'invalid_request_error', param, code } })
  }

  protected modelNotFound (ctx: RequestContext, id: string): void {
    this.sendJson(ctx, 404, { error: { message: `The model \`${id}\` does not exist or you do not have access to it.`, type: 'invalid_request_error', param: null, code: 'model_not_found' } })
  }

  private modelObject (m: Required<OpenAIModelInit>): Record<string, unknown> {
    return { id: m.id, object: 'model', created: m.created, owned_by: m.ownedBy, shutdown_date: null }
  }

  /** the JSON body's object, or a 400 as OpenAI answers */
  protected jsonBody (ctx: RequestContext): Record<string, any> | undefined {
    const body = ctx.body
    if (typeof body !== 'object' || body === null || Array.isArray(body) || 'files' in body) {
      this.invalid(ctx, 'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)', null)
      return undefined
    }
    return body as Record<string, any>
  }

  /** checks `model`: a 400 when missing, a 404 when unknown (strictModels) */
  protected checkModel (ctx: RequestContext, model: unknown): model is string {
    if (typeof model !== 'string' || model === '') {
      this.invalid(ctx, 'you must provide a model parameter', null)
      return false
    }
    if (this.strictModels && !this.models.some(m => m.id === model)) {
      this.modelNotFound(ctx, model)
      return false
    }
    return true
  }

  protected async chat (ctx: RequestContext): Promise<void> {
    const body = this.jsonBody(ctx)
    if (body === undefined || !this.checkModel(ctx, body.model)) return
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      this.invalid(ctx, body.messages === undefined ? "Missing required parameter: 'messages'." : "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'messages', body.messages === undefined ? 'missing_required_parameter' : 'empty_array')
      return
    }
    const messages: StandinMessage[] = body.messages.map((msg: any) => toMessage(msg))
    const prompt = [...messages].reverse().find(msg => msg.role === 'user')?.content ?? ''
    const images = messages.flatMap(msg => msg.images ?? [])
    const request: GenerationRequest = { route: 'chat', model: body.model, messages, prompt, images, body }
    let tokens = splitTokens(this.reply(request))
    let finishReason = 'stop'
    const max = body.max_completion_tokens ?? body.max_tokens
    if (typeof max === 'number' && max >= 0 && tokens.length > max) {
      tokens = tokens.slice(0, max)
      finishReason = 'length'
    }
    const promptTokens = Math.max(1, splitTokens(messages.map(msg => msg.content).join(' ')).length)
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: tokens.length,
      total_tokens: promptTokens + tokens.length,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 }
    }
    const id = `chatcmpl-standin${++this.completions}`
    const created = Math.floor(Date.now() / 1000)

    if (body.stream !== true) {
      if (this.killsBefore(tokens.length)) {
        this.cut(ctx)
        return
      }
      this.sendJson(ctx, 200, {
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [{
          index: 0,
          message: { role: 'assistant', content: tokens.join(''), refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: finishReason
        }],
        usage,
        service_tier: 'default',
        system_fingerprint: SYSTEM_FINGERPRINT
      })
      return
    }

    const includeUsage = body.stream_options?.include_usage === true
    const chunk = (delta: Record<string, unknown>, finish: string | null): string => {
      const value: Record<string, unknown> = {
        id,
        object: 'chat.completion.chunk',
        created,
        model: body.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }]
      }
      if (includeUsage) value.usage = null
      return `data: ${JSON.stringify(value)}\n\n`
    }
    ctx.res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' })
    ctx.res.flushHeaders()
    await this.write(ctx, chunk({ role: 'assistant', content: '' }, null))
    for (let i = 0; i < tokens.length; i++) {
      await this.tokenGate(ctx, i)
      await this.write(ctx, chunk({ content: tokens[i] }, null))
    }
    await this.tokenGate(ctx, tokens.length)
    await this.write(ctx, chunk({}, finishReason))
    if (includeUsage) {
      const last = { id, object: 'chat.completion.chunk', created, model: body.model, system_fingerprint: SYSTEM_FINGERPRINT, choices: [], usage }
      await this.write(ctx, `data: ${JSON.stringify(last)}\n\n`)
    }
    await this.write(ctx, 'data: [DONE]\n\n')
    ctx.res.end()
  }

  private embeddings (ctx: RequestContext): void {
    const body = this.jsonBody(ctx)
    if (body === undefined || !this.checkModel(ctx, body.model)) return
    const input: unknown = body.input
    let inputs: string[]
    if (typeof input === 'string' && input !== '') {
      inputs = [input]
    } else if (Array.isArray(input) && input.length > 0 && input.every(x => typeof x === 'string' && x !== '')) {
      inputs = input
    } else if (Array.isArray(input) && input.length > 0 && input.every(x => typeof x === 'number')) {
      inputs = [input.join(' ')]
    } else if (Array.isArray(input) && input.length > 0 && input.every(x => Array.isArray(x) && x.length > 0)) {
      inputs = input.map((x: number[]) => x.join(' '))
    } else {
      this.invalid(ctx, input === undefined ? "Missing required parameter: 'input'." : "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", 'input')
      return
    }
    const format = body.encoding_format ?? 'float'
    if (format !== 'float' && format !== 'base64') {
      this.invalid(ctx, `Invalid value for 'encoding_format': '${String(format)}'. Supported values are: 'float' and 'base64'.`, 'encoding_format', 'invalid_value')
      return
    }
    const dims = typeof body.dimensions === 'number' && body.dimensions > 0 ? Math.floor(body.dimensions) : this.embeddingDims
    const tokens = inputs.reduce((n, text) => n + Math.max(1, splitTokens(text).length), 0)
    this.sendJson(ctx, 200, {
      object: 'list',
      data: inputs.map((text, index) => {
        const vector = embeddingFor(text, dims)
        const embedding = format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector
        return { object: 'embedding', embedding, index }
      }),
      model: body.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens }
    })
  }

  private transcription (ctx: RequestContext): void {
    const body = ctx.body as MultipartBody | undefined
    if (body === undefined || typeof body !== 'object' || !('files' in body)) {
      this.invalid(ctx, 'Invalid Content-Type header (application/json), expected multipart/form-data. (HINT: If you\'re using curl, you can pass -F \'file=@<file_path>\')', null)
      return
    }
    const file = body.files.find(f => f.field === 'file')
    if (file === undefined) {
      this.invalid(ctx, "Missing required parameter: 'file'.", 'file', 'missing_required_parameter')
      return
    }
    if (!this.checkModel(ctx, body.fields.model)) return
    const model = body.fields.model
    const format = body.fields.response_format ?? 'json'
    if (format !== 'json' && format !== 'text') {
      // verbose_json, srt, vtt: not spoken by this stand-in
      this.invalid(ctx, `Unsupported response_format '${format}' (stand-in speaks 'json' and 'text').`, 'response_format', 'unsupported_value')
      return
    }
    const text = this.transcribe({
      model,
      filename: file.filename,
      type: file.type,
      bytes: file.data,
      ...(body.fields.language !== undefined ? { language: body.fields.language } : {}),
      ...(body.fields.prompt !== undefined ? { prompt: body.fields.prompt } : {})
    })
    if (format === 'text') {
      this.sendText(ctx, 200, `${text}\n`)
      return
    }
    const outputTokens = splitTokens(text).length
    const seconds = wavDurationSeconds(file.data) ?? Math.max(1, Math.round(file.size / PCM_SAMPLE_RATE))
    // whisper models are billed by duration, the gpt-4o transcribers by tokens
    const usage = model.includes('whisper')
      ? { type: 'duration', seconds: Math.ceil(seconds) }
      : {
          type: 'tokens',
          input_tokens: Math.ceil(seconds * 10),
          input_token_details: { text_tokens: 0, audio_tokens: Math.ceil(seconds * 10) },
          output_tokens: outputTokens,
          total_tokens: Math.ceil(seconds * 10) + outputTokens
        }
    this.sendJson(ctx, 200, { text, usage })
  }

  private speech (ctx: RequestContext): void {
    const body = this.jsonBody(ctx)
    if (body === undefined || !this.checkModel(ctx, body.model)) return
    if (typeof body.input !== 'string' || body.input === '') {
      this.invalid(ctx, "Missing required parameter: 'input'.", 'input', 'missing_required_parameter')
      return
    }
    if (body.voice === undefined) {
      this.invalid(ctx, "Missing required parameter: 'voice'.", 'voice', 'missing_required_parameter')
      return
    }
    const format = body.response_format ?? 'mp3'
    const type = SPEECH_TYPES[format]
    if (type === undefined) {
      // opus, aac, flac: valid for OpenAI, not produced by this stand-in
      this.invalid(ctx, `Unsupported response_format '${String(format)}' (stand-in produces mp3, wav and pcm).`, 'response_format', 'unsupported_value')
      return
    }
    const ms = speechDurationMs(body.input)
    const audio = format === 'mp3' ? silentMp3(ms) : format === 'wav' ? wavFromPcm(tonePcm(ms)) : tonePcm(ms)
    ctx.res.writeHead(200, { 'Content-Type': type, 'Content-Length': audio.length })
    if (this.killPoint !== null) {
      // audio has no tokens: any kill point cuts the body half way
      ctx.res.write(audio.subarray(0, audio.length >> 1), () => { this.cut(ctx) })
      return
    }
    ctx.res.end(audio)
  }

  /**
   * `/v1/images/generations`: `n` solid-colour PNGs of `size`, as `b64_json` (the stand-in does
   * not host files, so `response_format: "url"` is refused)
   */
  private images (ctx: RequestContext): void {
    const body = this.jsonBody(ctx)
    if (body === undefined || !this.checkModel(ctx, body.model)) return
    if (typeof body.prompt !== 'string' || body.prompt === '') {
      this.invalid(ctx, "Missing required parameter: 'prompt'.", 'prompt', 'missing_required_parameter')
      return
    }
    const gptImage = String(body.model).startsWith('gpt-image')
    const format = body.response_format ?? (gptImage ? 'b64_json' : 'url')
    if (gptImage && body.response_format !== undefined) {
      this.invalid(ctx, "Unknown parameter: 'response_format'.", 'response_format', 'unknown_parameter')
      return
    }
    if (format !== 'b64_json') {
      this.invalid(ctx, `Unsupported response_format '${String(format)}' (stand-in answers b64_json).`, 'response_format', 'unsupported_value')
      return
    }
    const n = body.n ?? 1
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 10) {
      this.invalid(ctx, `Invalid 'n': integer between 1 and 10 expected.`, 'n', 'invalid_value')
      return
    }
    let width = DEFAULT_IMAGE_SIDE_PX
    let height = DEFAULT_IMAGE_SIDE_PX
    if (body.size !== undefined && body.size !== 'auto') {
      const m = /^(\d+)x(\d+)$/.exec(String(body.size))
      if (m === null || Number(m[1]) < 1 || Number(m[2]) < 1 || Number(m[1]) > MAX_IMAGE_SIDE_PX || Number(m[2]) > MAX_IMAGE_SIDE_PX) {
        this.invalid(ctx, `Invalid value for 'size': '${String(body.size)}'.`, 'size', 'invalid_value')
        return
      }
      width = Number(m[1])
      height = Number(m[2])
    }
    // dall-e-3 rewrites prompts and says how (`revised_prompt`); the others do not
    const data = Array.from({ length: n }, (_, i) => ({
      b64_json: solidPng(width, height, promptColour(body.prompt, i)).toString('base64'),
      ...(String(body.model).startsWith('dall-e-3') ? { revised_prompt: body.prompt } : {})
    }))
    const answer: Record<string, unknown> = { created: Math.floor(Date.now() / 1000), data }
    if (gptImage) {
      const input = Math.max(1, splitTokens(body.prompt).length)
      answer.usage = { total_tokens: input + 50 * n, input_tokens: input, output_tokens: 50 * n, input_tokens_details: { text_tokens: input, image_tokens: 0 } }
    }
    if (this.killPoint !== null) {
      // an answer without tokens: any kill point cuts it half way
      const text = JSON.stringify(answer)
      ctx.res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) })
      ctx.res.write(text.slice(0, text.length >> 1), () => { this.cut(ctx) })
      return
    }
    this.sendJson(ctx, 200, answer)
  }
}

/** The colour of a generated image: from its prompt and index, so answers are deterministic */
function promptColour (prompt: string, index: number): [number, number, number] {
  const h = hash32(`${prompt}#${index}`)
  return [h & 255, (h >>> 8) & 255, (h >>> 16) & 255]
}

function toMessage (msg: any): StandinMessage {
  const role = String(msg?.role ?? '')
  const content: unknown = msg?.content
  if (typeof content === 'string') return { role, content }
  if (!Array.isArray(content)) return { role, content: '' }
  const texts: string[] = []
  const images: string[] = []
  for (const part of content) {
    if (part?.type === 'text' && typeof part.text === 'string') texts.push(part.text)
    if (part?.type === 'image_url' && typeof part.image_url?.url === 'string') {
      const url: string = part.image_url.url
      const comma = url.indexOf(',')
      images.push(url.startsWith('data:') && comma > 0 ? url.slice(comma + 1) : url)
    }
  }
  return { role, content: texts.join('\n'), ...(images.length > 0 ? { images } : {}) }
}

/** Starts an OpenAI-compatible stand-in on `init.host`:`init.port` (default 127.0.0.1, a free port) */
export async function startOpenAIStandin (init: OpenAIStandinInit = {}): Promise<OpenAIStandin> {
  return await new OpenAIStandin(init).listen()
}
