/**
 * Agent stand-in: speaks either agent contract of docs/agent-contract.md.
 *
 * - `realm` (`rentahal-agent/1`): `GET /health` naming the contract, `GET /models` (unless
 *   `models: null`), `POST /task` with a TaskSpec answering NDJSON WorkerEvents and a `done` line
 *   (when the client accepts NDJSON and `stream` is on) or a JSON TaskOutput.
 * - `legacy`: the original RentAHal FastAPI worker (github.com/jimpames/rentahal `main.py`):
 *   `GET /health` → `{"status": "healthy"}`, `POST /predict/` → `{"response": …}`, and FastAPI's
 *   307 from `/predict` to `/predict/`; validation errors as FastAPI's 422 `{detail: [...]}`.
 *
 * Fixtures: test/fixtures/agent/.
 */
import { TaskSpecSchema } from '../../protocol/task.js'
import type { TaskSpec } from '../../protocol/task.js'
import { DEFAULT_REPLY, Standin, embeddingFor, hash32, splitTokens } from './base.js'
import type { GenerationRequest, ReplyFn, RequestContext, StandinInit, StandinMessage } from './base.js'
import { solidPng, speechDurationMs, tonePcm, wavFromPcm } from './media.js'
import { DEFAULT_TRANSCRIPT } from './openai.js'

export type AgentContractName = 'realm' | 'legacy'

export interface AgentModel {
  name: string
  kinds: string[]
  context?: number
  vision?: boolean
}

export interface AgentStandinInit extends StandinInit {
  /** which contract it speaks; default 'realm' */
  contract?: AgentContractName
  /** realm: listed by `GET /models`; `null`: no `/models` route (404). Default AGENT_DEFAULT_MODELS */
  models?: AgentModel[] | null
  /** realm: stream NDJSON when the client accepts it; false: always a JSON TaskOutput. Default true */
  stream?: boolean
  /** the text of chat / generate / vision answers; default a fixed sentence */
  reply?: ReplyFn
  /** realm: name the contract in `GET /health`; default true */
  announce?: boolean
}

export const AGENT_DEFAULT_MODELS: AgentModel[] = [
  { name: 'echo-agent', kinds: ['chat', 'generate'], context: 8192 },
  { name: 'painter-agent', kinds: ['imagine'] },
  { name: 'looker-agent', kinds: ['chat'], vision: true },
  { name: 'utility-agent', kinds: ['embed', 'transcribe', 'speak'] }
]

const CONTRACT = 'rentahal-agent/1'
/** Sampling steps of an imagine task that names none */
const DEFAULT_STEPS = 4
const EMBEDDING_DIMS = 8
/** Side of an imagine answer that names no size */
const DEFAULT_IMAGE_SIDE_PX = 64

export class AgentStandin extends Standin {
  contract: AgentContractName
  models: AgentModel[] | null
  stream: boolean
  reply: ReplyFn
  announce: boolean

  constructor (init: AgentStandinInit = {}) {
    super(init)
    this.contract = init.contract ?? 'realm'
    this.models = init.models === undefined ? AGENT_DEFAULT_MODELS : init.models
    this.stream = init.stream ?? true
    this.reply = init.reply ?? (() => DEFAULT_REPLY)
    this.announce = init.announce ?? true
  }

  protected override async route (ctx: RequestContext): Promise<boolean> {
    const key = `${ctx.method} ${ctx.path}`
    if (this.contract === 'legacy') {
      switch (key) {
        case 'GET /health':
          this.sendJson(ctx, 200, { status: 'healthy' })
          return true
        case 'POST /predict':
          // FastAPI's redirect_slashes: the route is /predict/
          ctx.res.writeHead(307, { Location: `http://${ctx.req.headers.host ?? '127.0.0.1'}/predict/`, 'Content-Length': 0 })
          ctx.res.end()
          return true
        case 'POST /predict/':
          this.predict(ctx)
          return true
        default:
          return false
      }
    }
    switch (key) {
      case 'GET /health':
        this.sendJson(ctx, 200, this.announce ? { status: 'ok', contract: CONTRACT } : { status: 'ok' })
        return true
      case 'GET /models':
        if (this.models === null) return false
        this.sendJson(ctx, 200, this.models)
        return true
      case 'POST /task':
        await this.task(ctx)
        return true
      default:
        return false
    }
  }

  protected override sendError (ctx: RequestContext, status: number, kind: 'server' | 'not_found' | 'bad_request', message?: string): void {
    if (this.contract === 'legacy') {
      // FastAPI: {"detail": …}; the workers raise HTTPException(500, "Model prediction failed: …")
      const detail = message ?? (kind === 'server' ? 'Model prediction failed: stand-in error' : kind === 'not_found' ? 'Not Found' : 'Bad Request')
      this.sendJson(ctx, status, { detail })
      return
    }
    const code = kind === 'server' ? 'BACKEND_ERROR' : kind === 'not_found' ? 'NOT_FOUND' : 'INVALID_TASK'
    this.sendJson(ctx, status, { error: { code, message: message ?? (kind === 'server' ? 'the agent failed' : kind === 'not_found' ? 'no such route' : 'bad request') } })
  }

  private predict (ctx: RequestContext): void {
    const body = ctx.body as Record<string, any> | undefined
    const missing = (field: string): void => {
      this.sendJson(ctx, 422, { detail: [{ loc: ['body', field], msg: 'field required', type: 'value_error.missing' }] })
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.sendJson(ctx, 422, { detail: [{ loc: ['body'], msg: 'value is not a valid dict', type: 'type_error.dict' }] })
      return
    }
    if (typeof body.prompt !== 'string') {
      missing('prompt')
      return
    }
    const type = typeof body.type === 'string' ? body.type : 'chat'
    if (type === 'vision' && typeof body.image !== 'string') {
      missing('image')
      return
    }
    if (type === 'imagine') {
      const seed = hash32(body.prompt)
      const png = solidPng(DEFAULT_IMAGE_SIDE_PX, DEFAULT_IMAGE_SIDE_PX, [seed & 255, (seed >>> 8) & 255, (seed >>> 16) & 255])
      this.sendJson(ctx, 200, { response: png.toString('base64') })
      return
    }
    const images = type === 'vision' ? [String(body.image)] : []
    const messages: StandinMessage[] = [{ role: 'user', content: body.prompt, ...(images.length > 0 ? { images } : {}) }]
    const text = this.reply({ route: 'generate', model: String(body.model_name ?? ''), messages, prompt: body.prompt, images, body })
    if (this.killsBefore(splitTokens(text).length)) {
      this.cut(ctx)
      return
    }
    this.sendJson(ctx, 200, { response: text })
  }

  private taskError (ctx: RequestContext, status: number, code: string, message: string): void {
    this.sendJson(ctx, status, { error: { code, message } })
  }

  private async task (ctx: RequestContext): Promise<void> {
    const parsed = TaskSpecSchema.safeParse(ctx.body)
    if (!parsed.success) {
      this.taskError(ctx, 400, 'INVALID_TASK', parsed.error.issues[0]?.message ?? 'not a TaskSpec')
      return
    }
    const task = parsed.data as TaskSpec
    if (this.models !== null) {
      const model = this.models.find(m => m.name === task.model)
      if (model === undefined) {
        this.taskError(ctx, 404, 'MODEL_NOT_FOUND', `model "${task.model}" not found`)
        return
      }
      if (!model.kinds.includes(task.kind)) {
        this.taskError(ctx, 400, 'INVALID_TASK', `model "${task.model}" does not run ${task.kind} tasks`)
        return
      }
    }
    const lines = this.answer(task)
    const streaming = this.stream && (ctx.req.headers.accept ?? '').includes('application/x-ndjson')
    if (!streaming) {
      if (this.killsBefore(lines.length - 1)) {
        this.cut(ctx)
        return
      }
      const done = lines[lines.length - 1] as { output: unknown }
      this.sendJson(ctx, 200, done.output)
      return
    }
    ctx.res.writeHead(200, { 'Content-Type': 'application/x-ndjson' })
    ctx.res.flushHeaders()
    for (let i = 0; i < lines.length; i++) {
      await this.tokenGate(ctx, i)
      await this.write(ctx, JSON.stringify(lines[i]) + '\n')
    }
    ctx.res.end()
  }

  /** the lines of a task's streamed answer, `done` last */
  private answer (task: TaskSpec): unknown[] {
    switch (task.kind) {
      case 'chat':
      case 'generate': {
        const messages: StandinMessage[] = task.kind === 'chat'
          ? task.input.messages.map(m => ({ role: m.role, content: m.content, ...(m.images !== undefined ? { images: m.images } : {}) }))
          : [
              ...(task.input.system !== undefined ? [{ role: 'system', content: task.input.system }] : []),
              { role: 'user', content: task.input.prompt, ...(task.input.images !== undefined ? { images: task.input.images } : {}) }
            ]
        const prompt = [...messages].reverse().find(m => m.role === 'user')?.content ?? ''
        const request: GenerationRequest = { route: task.kind, model: task.model, messages, prompt, images: messages.flatMap(m => m.images ?? []), body: task }
        let tokens = splitTokens(this.reply(request))
        let doneReason = 'stop'
        const max = task.options?.maxTokens
        if (max !== undefined && tokens.length > max) {
          tokens = tokens.slice(0, max)
          doneReason = 'length'
        }
        const promptTokens = Math.max(1, splitTokens(messages.map(m => m.content).join(' ')).length)
        return [
          ...tokens.map(text => ({ type: 'token', text })),
          { type: 'done', output: { text: tokens.join(''), doneReason, usage: { promptTokens, completionTokens: tokens.length, units: promptTokens + tokens.length } } }
        ]
      }
      case 'imagine': {
        const steps = task.input.steps ?? DEFAULT_STEPS
        const seed = task.input.seed !== undefined && task.input.seed >= 0 ? task.input.seed : hash32(task.input.prompt)
        const count = task.input.count ?? 1
        const images = Array.from({ length: count }, (_, i) => ({
          data: solidPng(task.input.width ?? DEFAULT_IMAGE_SIDE_PX, task.input.height ?? DEFAULT_IMAGE_SIDE_PX, [(seed + i) & 255, ((seed + i) >>> 8) & 255, ((seed + i) >>> 16) & 255]).toString('base64'),
          mime: 'image/png'
        }))
        return [
          ...Array.from({ length: steps }, (_, i) => ({ type: 'progress', fraction: (i + 1) / steps, step: i + 1, steps })),
          ...images.map(image => ({ type: 'image', image })),
          { type: 'done', output: { images, doneReason: 'stop', seed, usage: { units: count } } }
        ]
      }
      case 'embed': {
        const inputs = typeof task.input.input === 'string' ? [task.input.input] : task.input.input
        const tokens = inputs.reduce((n, s) => n + Math.max(1, splitTokens(s).length), 0)
        return [{ type: 'done', output: { embeddings: inputs.map(s => embeddingFor(s, EMBEDDING_DIMS)), usage: { promptTokens: tokens, units: tokens } } }]
      }
      case 'transcribe':
        return [
          ...splitTokens(DEFAULT_TRANSCRIPT).map(text => ({ type: 'token', text })),
          { type: 'done', output: { text: DEFAULT_TRANSCRIPT, doneReason: 'stop' } }
        ]
      case 'speak': {
        const audio = { data: wavFromPcm(tonePcm(speechDurationMs(task.input.text))).toString('base64'), mime: 'audio/wav' }
        return [{ type: 'audio', audio }, { type: 'done', output: { audio, doneReason: 'stop', usage: { units: task.input.text.length } } }]
      }
    }
  }
}

/** Starts an agent stand-in on `init.host`:`init.port` (default 127.0.0.1, a free port) */
export async function startAgentStandin (init: AgentStandinInit = {}): Promise<AgentStandin> {
  return await new AgentStandin(init).listen()
}
