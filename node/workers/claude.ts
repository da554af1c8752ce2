/**
 * Anthropic (Claude) adapter: models from `GET /v1/models`, chat and generate through
 * `POST /v1/messages` with `stream: true`, read as Anthropic's named server-sent events
 * (message_start, content_block_start/delta/stop, message_delta, message_stop, ping, error).
 * Every request carries `x-api-key` and `anthropic-version`. System messages go to the top-level
 * `system`; images become base64 image blocks.
 * API: platform.claude.com/docs (Messages, Streaming Messages, Models, Errors)
 */
import { z } from 'zod'
import type { ModelInfo, TaskKind } from '../../protocol/kinds.js'
import type { ChatMessage, TaskOutput, TaskSpec, Usage } from '../../protocol/task.js'
import { CLAUDE_DEFAULT_MAX_TOKENS, CLAUDE_MAX_TEMPERATURE, CLAUDE_MODELS_MAX_PAGES, CLAUDE_MODELS_PAGE_LIMIT } from './constants.js'
import { BackendResponseError, ModelNotFoundError } from './errors.js'
import { requestJson } from './http.js'
import { finishModels } from './listing.js'
import type { Adapter, ListerComponents, Listing } from './listing.js'
import { base64ImageMime } from './media.js'
import { TextSink } from './session.js'
import type { ErrorAnswer, RunSession } from './session.js'

const ModelsPageSchema = z.looseObject({
  data: z.array(z.looseObject({ id: z.string() })),
  has_more: z.boolean().optional(),
  last_id: z.string().nullable().optional()
})

/** Image media types the Messages API takes */
const CLAUDE_IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp'])

/** Parses a `GET /v1/models` page; throws BackendResponseError when it is not one */
export function parseClaudeModels (body: unknown): z.infer<typeof ModelsPageSchema> {
  const parsed = ModelsPageSchema.safeParse(body)
  if (!parsed.success) throw new BackendResponseError('/v1/models is not an Anthropic model list')
  return parsed.data
}

/** `stop_reason` as the realm reports it: end_turn and stop_sequence → stop, max_tokens → length */
export function claudeDoneReason (reason: string | undefined): string {
  if (reason === undefined || reason === 'end_turn' || reason === 'stop_sequence') return 'stop'
  if (reason === 'max_tokens') return 'length'
  return reason.slice(0, 32)
}

/** Anthropic answers 404 `not_found_error` (`model: NAME`) for a model it does not have */
function claudeModelMissing (answer: ErrorAnswer): boolean {
  return answer.type === 'not_found_error' && /model/i.test(answer.message)
}

/** A message's content: a string, or image blocks then a text block */
function content (text: string, images: string[] | undefined): string | unknown[] {
  if (images === undefined || images.length === 0) return text
  const blocks: unknown[] = images.map(data => {
    const mime = base64ImageMime(data)
    return { type: 'image', source: { type: 'base64', media_type: CLAUDE_IMAGE_TYPES.has(mime) ? mime : 'image/png', data } }
  })
  // the API refuses empty text blocks
  if (text !== '') blocks.push({ type: 'text', text })
  return blocks
}

/** The Messages API body of a chat or generate task (without `stream`) */
export function claudeBody (task: TaskSpec & { kind: 'chat' | 'generate' }): Record<string, unknown> {
  const system: string[] = []
  const messages: unknown[] = []
  if (task.kind === 'chat') {
    for (const m of task.input.messages as ChatMessage[]) {
      if (m.role === 'system') system.push(m.content)
      // tool results without tool_use ids are plain user turns here
      else messages.push({ role: m.role === 'assistant' ? 'assistant' : 'user', content: content(m.content, m.images) })
    }
  } else {
    if (task.input.system !== undefined) system.push(task.input.system)
    messages.push({ role: 'user', content: content(task.input.prompt, task.input.images) })
  }
  const options = task.options ?? {}
  const body: Record<string, unknown> = {
    model: task.model,
    max_tokens: options.maxTokens ?? CLAUDE_DEFAULT_MAX_TOKENS,
    messages
  }
  if (system.length > 0) body.system = system.join('\n\n')
  if (options.temperature !== undefined) body.temperature = Math.min(options.temperature, CLAUDE_MAX_TEMPERATURE)
  if (options.topP !== undefined) body.top_p = options.topP
  if (options.topK !== undefined) body.top_k = options.topK
  if (options.stop !== undefined) body.stop_sequences = options.stop
  return body
}

const EventSchema = z.looseObject({
  type: z.string(),
  message: z.looseObject({
    usage: z.looseObject({
      input_tokens: z.number().int().nonnegative().optional(),
      output_tokens: z.number().int().nonnegative().optional()
    }).optional()
  }).optional(),
  content_block: z.looseObject({ type: z.string(), text: z.string().optional() }).optional(),
  delta: z.looseObject({
    type: z.string().optional(),
    text: z.string().optional(),
    stop_reason: z.string().nullable().optional()
  }).optional(),
  usage: z.looseObject({
    input_tokens: z.number().int().nonnegative().nullable().optional(),
    output_tokens: z.number().int().nonnegative().nullable().optional()
  }).nullable().optional(),
  error: z.looseObject({ type: z.string().optional(), message: z.string().optional() }).optional()
})

export class ClaudeAdapter implements Adapter {
  readonly kinds: readonly TaskKind[] = ['chat', 'generate']

  constructor (private readonly components: ListerComponents) {}

  /** every model of the account, chat + generate with vision (all current Claude models read images) */
  async list (signal: AbortSignal): Promise<Listing> {
    const { conn, fetch } = this.components
    const ids: string[] = []
    let after: string | undefined
    for (let page = 0; page < CLAUDE_MODELS_MAX_PAGES; page++) {
      const query = `?limit=${CLAUDE_MODELS_PAGE_LIMIT}${after !== undefined ? `&after_id=${encodeURIComponent(after)}` : ''}`
      const body = parseClaudeModels(await requestJson({ ...conn, search: '' }, `/v1/models${query}`, { fetch, signal }))
      ids.push(...body.data.map(m => m.id))
      if (body.has_more !== true || body.last_id == null) break
      after = body.last_id
    }
    const candidates: ModelInfo[] = ids.map(id => ({ name: id, kinds: ['chat', 'generate'], vision: true }))
    return { models: finishModels(candidates, 'claude') }
  }

  async run (task: TaskSpec, session: RunSession): Promise<TaskOutput> {
    if (task.kind !== 'chat' && task.kind !== 'generate') throw new Error(`unreachable: ${task.kind}`)
    const res = await session.request('/v1/messages', { json: { ...claudeBody(task), stream: true }, accept: 'text/event-stream' })
    if (!res.ok) {
      const answer = await session.errorAnswer(res)
      if (claudeModelMissing(answer)) throw new ModelNotFoundError(task.model, answer.message)
      throw session.httpError('/v1/messages', answer)
    }
    const sink = new TextSink(session)
    const usage: Usage = {}
    let stopReason: string | undefined
    for await (const sse of session.sse(res)) {
      let value: unknown
      try {
        value = JSON.parse(sse.data)
      } catch {
        throw session.backendError('/v1/messages streamed an event that is not JSON')
      }
      const parsed = EventSchema.safeParse(value)
      if (!parsed.success) throw session.backendError(`/v1/messages streamed a malformed ${sse.event} event`)
      const event = parsed.data
      switch (event.type) {
        case 'message_start': {
          const u = event.message?.usage
          if (u?.input_tokens !== undefined) usage.promptTokens = u.input_tokens
          if (u?.output_tokens !== undefined) usage.completionTokens = u.output_tokens
          break
        }
        case 'content_block_start':
          if (event.content_block?.type === 'text') sink.add(event.content_block.text ?? '')
          break
        case 'content_block_delta':
          // thinking, signature and tool input deltas are not part of the answer's text
          if (event.delta?.type === 'text_delta') sink.add(event.delta.text ?? '')
          break
        case 'message_delta':
          if (event.delta?.stop_reason != null) stopReason = event.delta.stop_reason
          // the counts in message_delta are cumulative
          if (event.usage?.output_tokens != null) usage.completionTokens = event.usage.output_tokens
          if (event.usage?.input_tokens != null) usage.promptTokens = event.usage.input_tokens
          break
        case 'message_stop':
          usage.units = (usage.promptTokens ?? 0) + (usage.completionTokens ?? 0)
          return { text: sink.text, doneReason: claudeDoneReason(stopReason), usage }
        case 'error':
          throw session.backendError(`/v1/messages: ${event.error?.type ?? 'error'}: ${event.error?.message ?? ''}`, { type: event.error?.type })
        default:
          // ping, content_block_stop, and event types added later
          break
      }
    }
    throw session.backendError('/v1/messages stream ended before message_stop')
  }
}
