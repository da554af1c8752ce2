/**
 * Agent adapter: a process in any language behind a small HTTP JSON contract
 * (docs/agent-contract.md). Two contracts, told apart at probe time:
 *
 * - realm (`rentahal-agent/1`): `GET /health` names the contract, optional `GET /models`,
 *   `POST /task` with a TaskSpec answering a TaskOutput (JSON) or WorkerEvents (NDJSON) ending
 *   with `{"type":"done","output":…}`.
 * - the original RentAHal worker: `GET /health`, `POST /predict` with
 *   `{prompt, type, model_type, model_name, image}` answering `{response}` (the llama/llava
 *   FastAPI workers of github.com/jimpames/rentahal main.py, as webgui.py calls them).
 */
import { z } from 'zod'
import { TASK_KINDS } from '../../protocol/kinds.js'
import type { ModelInfo, TaskKind } from '../../protocol/kinds.js'
import { MediaSchema, TASK_ERROR_CODES, TaskOutputSchema } from '../../protocol/task.js'
import type { ChatMessage, Media, TaskOutput, TaskSpec, WorkerEvent } from '../../protocol/task.js'
import { bytesToBase64 } from '../../protocol/bytes.js'
import { AGENT_CONTRACT, AGENT_DEFAULT_MODEL, MAX_ERROR_MESSAGE_CHARS } from './constants.js'
import { BackendResponseError, InvalidTaskError, ModelNotFoundError } from './errors.js'
import { requestJson } from './http.js'
import { finishModels } from './listing.js'
import type { Adapter, ListerComponents, Listing } from './listing.js'
import { imageMime } from './media.js'
import { TextSink } from './session.js'
import type { ErrorAnswer, RunSession } from './session.js'

/** Which contract an agent speaks */
export type AgentContract = 'realm' | 'legacy'

/** Longest progress message an agent may stream */
const MAX_PROGRESS_MESSAGE_CHARS = 500
/** Longest error code an agent may name (the realm's are under 32) */
const MAX_ERROR_CODE_CHARS = 64

/** Kinds the original worker contract has a `type` for: chat (and vision), imagine */
const LEGACY_KINDS: readonly TaskKind[] = ['chat', 'generate', 'imagine']

/** `model_type` the original web UI sends for a worker node */
const LEGACY_MODEL_TYPE = 'worker_node'

const HealthSchema = z.looseObject({ contract: z.string().optional() })

const AgentModelSchema = z.looseObject({
  name: z.string(),
  kinds: z.array(z.string()),
  context: z.number().int().positive().optional(),
  vision: z.boolean().optional()
})
const ModelsSchema = z.union([z.array(AgentModelSchema), z.looseObject({ models: z.array(AgentModelSchema) })])

const WorkerEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('token'), text: z.string() }),
  z.object({ type: z.literal('progress'), fraction: z.number().min(0).max(1), step: z.number().int().nonnegative().optional(), steps: z.number().int().nonnegative().optional(), message: z.string().max(MAX_PROGRESS_MESSAGE_CHARS).optional() }),
  z.object({ type: z.literal('image'), image: MediaSchema }),
  z.object({ type: z.literal('audio'), audio: MediaSchema })
])
const StreamLineSchema = z.union([
  WorkerEventSchema,
  z.object({ type: z.literal('done'), output: TaskOutputSchema }),
  z.object({ type: z.literal('error'), code: z.string().max(MAX_ERROR_CODE_CHARS).optional(), message: z.string().max(MAX_ERROR_MESSAGE_CHARS * 4).transform(m => m.slice(0, MAX_ERROR_MESSAGE_CHARS)).optional() })
])

const PredictSchema = z.looseObject({ response: z.string() })

export interface AgentAdapterComponents extends ListerComponents {
  /** `agent=URL#model` */
  model?: string
  /** `agent=URL#imagine=model` */
  kinds?: TaskKind[]
  /** `agent=URL#vision=model` */
  vision?: boolean
}

/** The original worker takes one prompt: a single turn as it is, a longer chat as a transcript */
export function legacyPrompt (task: TaskSpec & { kind: 'chat' | 'generate' }): string {
  if (task.kind === 'generate') return task.input.system !== undefined ? `${task.input.system}\n\n${task.input.prompt}` : task.input.prompt
  const messages: ChatMessage[] = task.input.messages
  const system = messages.filter(m => m.role === 'system').map(m => m.content)
  const turns = messages.filter(m => m.role !== 'system')
  const head = system.length > 0 ? `${system.join('\n\n')}\n\n` : ''
  if (turns.length === 1) return head + turns[0].content
  const names: Record<string, string> = { user: 'User', assistant: 'Assistant', tool: 'Tool' }
  return head + turns.map(m => `${names[m.role] ?? m.role}: ${m.content}`).join('\n') + '\nAssistant:'
}

function imagesOf (task: TaskSpec & { kind: 'chat' | 'generate' }): string[] {
  if (task.kind === 'generate') return task.input.images ?? []
  return task.input.messages.flatMap(m => m.images ?? [])
}

export class AgentAdapter implements Adapter {
  readonly kinds: readonly TaskKind[] = TASK_KINDS
  /** the contract found by the last probe */
  contract?: AgentContract

  constructor (private readonly components: AgentAdapterComponents) {}

  /** `GET /health`, then the contract and models: `/health` naming the contract, or `GET /models` answering, means realm */
  async list (signal: AbortSignal): Promise<Listing> {
    const { conn, fetch } = this.components
    const health = HealthSchema.safeParse(await requestJson(conn, '/health', { fetch, signal }))
    let contract: AgentContract | undefined = health.success && health.data.contract === AGENT_CONTRACT ? 'realm' : undefined
    let listed: Array<z.infer<typeof AgentModelSchema>> | undefined
    try {
      const parsed = ModelsSchema.safeParse(await requestJson(conn, '/models', { fetch, signal }))
      if (parsed.success) {
        listed = Array.isArray(parsed.data) ? parsed.data : parsed.data.models
        contract = 'realm'
      } else if (contract === 'realm') {
        throw new BackendResponseError('/models is not a list of {name, kinds}')
      }
    } catch (err) {
      // no /models (404, 405): fine for both contracts
      const status = err instanceof BackendResponseError ? err.details?.status : undefined
      if (status !== 404 && status !== 405) throw err
    }
    this.contract = contract ?? 'legacy'
    return { models: finishModels(this.models(listed), 'agent') }
  }

  private models (listed: Array<z.infer<typeof AgentModelSchema>> | undefined): ModelInfo[] {
    const { model, kinds, vision } = this.components
    if (listed !== undefined) {
      const wanted = model === undefined ? listed : listed.filter(m => m.name === model)
      if (model !== undefined && wanted.length === 0) throw new BackendResponseError(`the agent does not list model "${model}"`)
      return wanted.map(m => {
        const info: ModelInfo = { name: m.name, kinds: TASK_KINDS.filter(k => m.kinds.includes(k)) }
        if (m.context !== undefined) info.context = m.context
        if (m.vision === true) info.vision = true
        return info
      }).filter(m => m.kinds.length > 0)
    }
    let served: TaskKind[] = kinds ?? ['chat', 'generate']
    if (this.contract === 'legacy') served = served.filter(k => LEGACY_KINDS.includes(k))
    if (served.length === 0) throw new BackendResponseError(`the RentAHal worker contract serves chat, vision and imagine, not ${(kinds ?? []).join(', ')}`)
    const info: ModelInfo = { name: model ?? AGENT_DEFAULT_MODEL, kinds: served }
    if (vision === true) info.vision = true
    return [info]
  }

  async run (task: TaskSpec, session: RunSession): Promise<TaskOutput> {
    if (this.contract === undefined) await this.list(session.signal)
    return this.contract === 'legacy' ? await this.runLegacy(task, session) : await this.runRealm(task, session)
  }

  private async runRealm (task: TaskSpec, session: RunSession): Promise<TaskOutput> {
    const res = await session.request('/task', { json: task, accept: 'application/x-ndjson, application/json' })
    if (!res.ok) throw agentError(session, task.model, await session.errorAnswer(res))
    const type = (res.headers.get('content-type') ?? '').split(';', 1)[0].trim().toLowerCase()
    const sink = new TextSink(session)
    if (type !== 'application/x-ndjson') {
      const parsed = TaskOutputSchema.safeParse(await session.json(res, '/task'))
      if (!parsed.success) throw session.backendError('/task did not answer a TaskOutput')
      // a whole answer still reaches the client as events
      const output = parsed.data
      if (output.text !== undefined) sink.add(output.text)
      for (const image of output.images ?? []) session.emit({ type: 'image', image })
      if (output.audio !== undefined) session.emit({ type: 'audio', audio: output.audio })
      return output
    }
    for await (const value of session.ndjson(res, '/task')) {
      const line = StreamLineSchema.safeParse(value)
      if (!line.success) throw session.backendError('/task streamed a line that is not a WorkerEvent, done or error')
      const event = line.data
      if (event.type === 'done') {
        const output = event.output
        if (output.text === undefined && sink.text !== '') output.text = sink.text
        return output
      }
      if (event.type === 'error') throw agentError(session, task.model, { status: 200, message: event.message ?? 'error', code: event.code })
      if (event.type === 'token') sink.add(event.text)
      else session.emit(event as WorkerEvent)
    }
    throw session.backendError('/task stream ended before its done line')
  }

  private async runLegacy (task: TaskSpec, session: RunSession): Promise<TaskOutput> {
    if (task.kind !== 'chat' && task.kind !== 'generate' && task.kind !== 'imagine') {
      throw new InvalidTaskError(`a RentAHal worker (POST /predict) does not run ${task.kind} tasks`, { kind: task.kind })
    }
    const body: Record<string, unknown> = { model_type: LEGACY_MODEL_TYPE, model_name: task.model }
    if (task.kind === 'imagine') {
      body.prompt = task.input.prompt
      body.type = 'imagine'
    } else {
      body.prompt = legacyPrompt(task)
      const images = imagesOf(task)
      // the contract carries one image (base64, no data: prefix); a chat with one is a vision query
      body.type = images.length > 0 ? 'vision' : 'chat'
      if (images.length > 0) body.image = images[images.length - 1]
    }
    // FastAPI serves the route as /predict/ and redirects /predict to it
    const res = await session.request('/predict', { json: body, followSameOrigin: true })
    if (!res.ok) throw session.httpError('/predict', await session.errorAnswer(res))
    const parsed = PredictSchema.safeParse(await session.json(res, '/predict'))
    if (!parsed.success) throw session.backendError('/predict did not answer {response}')
    const response = parsed.data.response
    if (task.kind === 'imagine') {
      const bytes = Buffer.from(response.replace(/^data:[^,]*,/, ''), 'base64')
      const mime = imageMime(bytes)
      if (mime === undefined) throw session.backendError('/predict answered an imagine task with something that is not a base64 image')
      const image: Media = { data: bytesToBase64(bytes), mime }
      session.emit({ type: 'image', image })
      return { images: [image], doneReason: 'stop', usage: { units: 1 } }
    }
    const sink = new TextSink(session)
    sink.add(response)
    return { text: response, doneReason: 'stop' }
  }
}

/** An agent's error answer as a run error: its own code kept where it is one of TASK_ERROR_CODES */
function agentError (session: RunSession, model: string, answer: ErrorAnswer): Error {
  if (answer.code === 'MODEL_NOT_FOUND' || (answer.code === undefined && answer.status === 404 && /model/i.test(answer.message))) {
    return new ModelNotFoundError(model, answer.message)
  }
  if (answer.code === 'INVALID_TASK') return new InvalidTaskError(answer.message)
  const code = answer.code !== undefined && (TASK_ERROR_CODES as readonly string[]).includes(answer.code) ? answer.code : undefined
  return session.backendError(`/task failed${answer.status !== 200 ? ` (${answer.status})` : ''}: ${answer.message}`, { status: answer.status, ...(code !== undefined ? { agentCode: code } : {}) })
}
