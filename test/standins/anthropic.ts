/**
 * Anthropic stand-in: speaks the Claude API (platform.claude.com/docs) for the routes the realm
 * uses — `GET /v1/models` (paginated), `POST /v1/messages` (JSON, or SSE named events when
 * `stream` is true) — with the `x-api-key` / `anthropic-version` headers checked and errors as
 * `{ type: "error", error: { type, message }, request_id }`. Fixtures: test/fixtures/anthropic/.
 */
import { DEFAULT_REPLY, Standin, splitTokens } from './base.js'
import type { GenerationRequest, ReplyFn, RequestContext, StandinInit, StandinMessage } from './base.js'

export interface AnthropicModelInit {
  id: string
  displayName?: string
  /** RFC 3339 */
  createdAt?: string
}

export interface AnthropicStandinInit extends StandinInit {
  /** listed by `/v1/models` (newest first, as the API lists them); default ANTHROPIC_DEFAULT_MODELS */
  models?: AnthropicModelInit[]
  /** the answer of `/v1/messages`; default a fixed sentence */
  reply?: ReplyFn
  /** when set, `x-api-key` must equal it; otherwise any non-empty key is accepted (the header is always required) */
  apiKey?: string
}

export const ANTHROPIC_DEFAULT_MODELS: AnthropicModelInit[] = [
  { id: 'claude-sonnet-4-20250514', displayName: 'Claude Sonnet 4', createdAt: '2025-05-22T00:00:00Z' },
  { id: 'claude-3-5-haiku-20241022', displayName: 'Claude Haiku 3.5', createdAt: '2024-10-22T00:00:00Z' }
]

/** `List Models` page size: default and range */
const DEFAULT_PAGE_LIMIT = 20
const MAX_PAGE_LIMIT = 1000
/** The Messages API's temperature range is 0..1 */
const MAX_TEMPERATURE = 1
const IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp']

type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'api_error' | 'overloaded_error'

export class AnthropicStandin extends Standin {
  reply: ReplyFn
  apiKey: string | undefined
  private models: Array<Required<AnthropicModelInit>> = []
  private counter = 0
  /** after this many streamed tokens, an `error` event (overloaded_error) ends the stream; null: off */
  private overloadAfter: number | null = null

  constructor (init: AnthropicStandinInit = {}) {
    super(init)
    this.reply = init.reply ?? (() => DEFAULT_REPLY)
    this.apiKey = init.apiKey
    this.setModels(init.models ?? ANTHROPIC_DEFAULT_MODELS)
  }

  setModels (models: AnthropicModelInit[]): void {
    this.models = models.map(m => ({ id: m.id, displayName: m.displayName ?? m.id, createdAt: m.createdAt ?? '2025-01-01T00:00:00Z' }))
  }

  /**
   * Streams end with the documented `event: error` (overloaded_error) after `afterTokens` tokens,
   * as the API does during high load; `null` turns it off
   */
  overloadMidStream (afterTokens: number | null): void {
    this.overloadAfter = afterTokens
  }

  protected override preflight (ctx: RequestContext): boolean {
    if (!ctx.path.startsWith('/v1/')) return false
    const key = ctx.req.headers['x-api-key']
    if (typeof key !== 'string' || key === '') {
      this.error(ctx, 401, 'authentication_error', 'x-api-key header is required')
      return true
    }
    if (this.apiKey !== undefined && key !== this.apiKey) {
      this.error(ctx, 401, 'authentication_error', 'invalid x-api-key')
      return true
    }
    if (ctx.req.headers['anthropic-version'] === undefined) {
      this.error(ctx, 400, 'invalid_request_error', 'anthropic-version: header is required')
      return true
    }
    return false
  }

  protected override async route (ctx: RequestContext): Promise<boolean> {
    if (ctx.method === 'GET' && ctx.path === '/v1/models') {
      this.listModels(ctx)
      return true
    }
    if (ctx.method === 'GET' && ctx.path.startsWith('/v1/models/')) {
      const id = decodeURIComponent(ctx.path.slice('/v1/models/'.length))
      const m = this.models.find(x => x.id === id)
      if (m === undefined) this.error(ctx, 404, 'not_found_error', `model: ${id}`)
      else this.sendJson(ctx, 200, this.modelInfo(m), this.requestHeaders())
      return true
    }
    if (ctx.method === 'POST' && ctx.path === '/v1/messages') {
      await this.messages(ctx)
      return true
    }
    return false
  }

  protected override sendError (ctx: RequestContext, status: number, kind: 'server' | 'not_found' | 'bad_request', message?: string): void {
    if (kind === 'server') this.error(ctx, status, 'api_error', message ?? 'Internal server error')
    else if (kind === 'not_found') this.error(ctx, status, 'not_found_error', message ?? 'Not found')
    else this.error(ctx, status, 'invalid_request_error', message ?? 'Invalid request')
  }

  private requestHeaders (): Record<string, string> {
    return { 'request-id': this.requestId() }
  }

  private requestId (): string {
    return `req_standin${String(++this.counter).padStart(8, '0')}`
  }

  private error (ctx: RequestContext, status: number, type: ErrorType, message: string): void {
    const requestId = this.requestId()
    this.sendJson(ctx, status, { type: 'error', error: { type, message }, request_id: requestId }, { 'request-id': requestId })
  }

  private modelInfo (m: Required<AnthropicModelInit>): Record<string, unknown> {
    return { created_at: m.createdAt, display_name: m.displayName, id: m.id, type: 'model' }
  }

  private listModels (ctx: RequestContext): void {
    const limit = ctx.query.limit === undefined ? DEFAULT_PAGE_LIMIT : Number(ctx.query.limit)
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
      this.error(ctx, 400, 'invalid_request_error', `limit: Input should be less than or equal to ${MAX_PAGE_LIMIT}`)
      return
    }
    let start = 0
    let end = this.models.length
    if (ctx.query.after_id !== undefined) start = this.models.findIndex(m => m.id === ctx.query.after_id) + 1
    if (ctx.query.before_id !== undefined) end = Math.max(0, this.models.findIndex(m => m.id === ctx.query.before_id))
    const page = ctx.query.before_id !== undefined ? this.models.slice(Math.max(start, end - limit), end) : this.models.slice(start, Math.min(end, start + limit))
    const hasMore = ctx.query.before_id !== undefined ? end - limit > start : start + limit < end
    this.sendJson(ctx, 200, {
      data: page.map(m => this.modelInfo(m)),
      first_id: page[0]?.id ?? null,
      has_more: hasMore,
      last_id: page[page.length - 1]?.id ?? null
    }, this.requestHeaders())
  }

  /** `messages[].content` as text and images, or a reason it is invalid */
  private toMessage (msg: any, i: number): StandinMessage | string {
    const role = msg?.role
    if (role !== 'user' && role !== 'assistant') {
      return role === 'system'
        ? 'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.'
        : `messages.${i}.role: Input should be 'user' or 'assistant'`
    }
    if (typeof msg.content === 'string') return { role, content: msg.content }
    if (!Array.isArray(msg.content)) return `messages.${i}.content: Input should be a valid list`
    const texts: string[] = []
    const images: string[] = []
    for (const block of msg.content) {
      if (block?.type === 'text') {
        if (typeof block.text !== 'string' || block.text === '') return 'messages: text content blocks must be non-empty'
        texts.push(block.text)
      } else if (block?.type === 'image') {
        const source = block.source
        if (source?.type !== 'base64' || typeof source.data !== 'string') return `messages.${i}.content: image source must be base64 here`
        if (!IMAGE_MEDIA_TYPES.includes(source.media_type)) return `messages.${i}.content.source.media_type: Input should be ${IMAGE_MEDIA_TYPES.map(t => `'${t}'`).join(', ')}`
        images.push(source.data)
      } else {
        return `messages.${i}.content: unsupported block type ${JSON.stringify(block?.type)} in this stand-in`
      }
    }
    return { role, content: texts.join('\n'), ...(images.length > 0 ? { images } : {}) }
  }

  private async messages (ctx: RequestContext): Promise<void> {
    const body = ctx.body as Record<string, any> | undefined
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.error(ctx, 400, 'invalid_request_error', 'There was an issue with the request body: expected a JSON object')
      return
    }
    for (const field of ['model', 'max_tokens', 'messages']) {
      if (body[field] === undefined) {
        this.error(ctx, 400, 'invalid_request_error', `${field}: Field required`)
        return
      }
    }
    if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) {
      this.error(ctx, 400, 'invalid_request_error', 'max_tokens: Input should be greater than or equal to 1')
      return
    }
    if (body.temperature !== undefined && (typeof body.temperature !== 'number' || body.temperature < 0 || body.temperature > MAX_TEMPERATURE)) {
      this.error(ctx, 400, 'invalid_request_error', `temperature: range: 0..${MAX_TEMPERATURE}`)
      return
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      this.error(ctx, 400, 'invalid_request_error', 'messages: at least one message is required')
      return
    }
    const model = this.models.find(m => m.id === body.model)
    if (model === undefined) {
      this.error(ctx, 404, 'not_found_error', `model: ${String(body.model)}`)
      return
    }
    const messages: StandinMessage[] = []
    if (typeof body.system === 'string' && body.system !== '') messages.push({ role: 'system', content: body.system })
    for (let i = 0; i < body.messages.length; i++) {
      const msg = this.toMessage(body.messages[i], i)
      if (typeof msg === 'string') {
        this.error(ctx, 400, 'invalid_request_error', msg)
        return
      }
      messages.push(msg)
    }
    const prompt = [...messages].reverse().find(m => m.role === 'user')?.content ?? ''
    const images = messages.flatMap(m => m.images ?? [])
    const request: GenerationRequest = { route: 'chat', model: body.model, messages, prompt, images, body }
    let text = this.reply(request)
    let stopReason = 'end_turn'
    let stopSequence: string | null = null
    for (const stop of Array.isArray(body.stop_sequences) ? body.stop_sequences as string[] : []) {
      const at = text.indexOf(stop)
      if (at >= 0) {
        text = text.slice(0, at)
        stopReason = 'stop_sequence'
        stopSequence = stop
      }
    }
    let tokens = splitTokens(text)
    if (tokens.length > body.max_tokens) {
      tokens = tokens.slice(0, body.max_tokens)
      stopReason = 'max_tokens'
      stopSequence = null
    }
    const inputTokens = Math.max(1, splitTokens(messages.map(m => m.content).join(' ')).length)
    const id = `msg_standin${String(++this.counter).padStart(8, '0')}`

    if (body.stream !== true) {
      if (this.killsBefore(tokens.length)) {
        this.cut(ctx)
        return
      }
      this.sendJson(ctx, 200, {
        content: [{ text: tokens.join(''), type: 'text' }],
        id,
        model: body.model,
        role: 'assistant',
        stop_reason: stopReason,
        stop_sequence: stopSequence,
        type: 'message',
        usage: { input_tokens: inputTokens, output_tokens: tokens.length }
      }, this.requestHeaders())
      return
    }

    const event = (data: Record<string, unknown>): string => `event: ${String(data.type)}\ndata: ${JSON.stringify(data)}\n\n`
    ctx.res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', ...this.requestHeaders() })
    ctx.res.flushHeaders()
    await this.write(ctx, event({
      type: 'message_start',
      message: { id, type: 'message', role: 'assistant', content: [], model: body.model, stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens, output_tokens: 1 } }
    }))
    await this.write(ctx, event({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }))
    await this.write(ctx, event({ type: 'ping' }))
    for (let i = 0; i < tokens.length; i++) {
      await this.tokenGate(ctx, i)
      if (this.overloadAfter !== null && i >= this.overloadAfter) {
        await this.write(ctx, event({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }))
        ctx.res.end()
        return
      }
      await this.write(ctx, event({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: tokens[i] } }))
    }
    await this.tokenGate(ctx, tokens.length)
    await this.write(ctx, event({ type: 'content_block_stop', index: 0 }))
    await this.write(ctx, event({ type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: stopSequence }, usage: { output_tokens: tokens.length } }))
    await this.write(ctx, event({ type: 'message_stop' }))
    ctx.res.end()
  }
}

/** Starts an Anthropic stand-in on `init.host`:`init.port` (default 127.0.0.1, a free port) */
export async function startAnthropicStandin (init: AnthropicStandinInit = {}): Promise<AnthropicStandin> {
  return await new AnthropicStandin(init).listen()
}
