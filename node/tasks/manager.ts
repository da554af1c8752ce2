/**
 * The task manager on the requesting node: checks a task, trims a chat that outgrows the
 * model's context, routes it to the best worker (here or on a peer), follows it, fails over
 * (invisibly before the first token; with a `restarted` event, or a checked splice on the
 * compatibility routes, after), cancels it when the client goes, and keeps its history.
 * No accepted task is ever silently dropped: it ends `done` or `error`, always.
 */
import { createHash, randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import type { RealmLibp2p } from '../p2p/libp2p.js'
import type { EventBus } from '../events/index.js'
import type { LocalExecutor, ExecEvent } from './executor.js'
import { isTaskCode } from './executor.js'
import { runRemote } from './protocol.js'
import { candidateKey, type Candidate, type RouteSource, type Router } from './router.js'
import { TaskHistory, storedOutput } from './history.js'
import {
  TaskError, type RestartMode, type SubmitContext, type TaskEvent, type TaskManagerApi, type TaskRecord,
  type TaskRun, type TaskSubmission, type TaskTimings
} from './types.js'
import { TaskSpecSchema, type ChatMessage, type TaskOutput, type TaskSpec } from '../../protocol/task.js'
import type { TaskKind } from '../../protocol/kinds.js'
import type { WorkerFrame } from '../../protocol/task-frames.js'
import { RealmError, errorMessage } from '../../protocol/errors.js'

/** Workers tried before a task fails */
export const MAX_ATTEMPTS = 4
/** Events kept per task for late subscribers and GET /realm/tasks/:id */
export const MAX_KEPT_EVENTS = 20_000
/** Finished tasks kept in memory, so a read right after the end never races the database write */
const RECENT_TASKS = 1_000
/** Characters of the prompt kept in the history record */
const PROMPT_PREVIEW_CHARS = 200
/** A rough token count: ~4 characters per token, plus per-message overhead */
const CHARS_PER_TOKEN = 4
const TOKENS_PER_MESSAGE = 4
/** Share of the context a trimmed history may fill, the rest is left for the answer */
const CONTEXT_FILL = 0.75

export interface TaskManagerInit {
  selfId: string
  libp2p: RealmLibp2p
  executor: LocalExecutor
  router: Router
  /** this node's workers and every live peer's, as routing sees them */
  sources: () => RouteSource[]
  /** context size of a mesh model, where advertised */
  contextOf: (model: string) => number | undefined
  events: EventBus
  history: TaskHistory
  /** where this node's tasks may run */
  runOn: 'grid' | 'trusted' | 'local'
  trusted: string[]
  /** most tasks active at once on this node */
  maxActive: number
  /** most tasks active at once per requester */
  perRequester: number
  /** put the prompt in the task.submitted event (the trace log keeps it) */
  keepPrompts?: boolean
  /** is a peer blocked (never sent work) */
  isBlocked?: (peerId: string) => boolean
  now?: () => number
}

class Run implements TaskRun {
  readonly controller = new AbortController()
  readonly events: TaskEvent[] = []
  private readonly listeners = new Set<(e: TaskEvent) => void>()
  readonly accepted: Promise<void>
  readonly result: Promise<TaskOutput>
  acceptedResolve!: () => void
  acceptedReject!: (err: unknown) => void
  resultResolve!: (o: TaskOutput) => void
  resultReject!: (err: unknown) => void
  isAccepted = false
  ended = false
  /** text the client has been given */
  text = ''
  /** when the last attempt started running, and when it first produced output */
  startedAt?: number
  firstOutputAt?: number
  /** the first history write (the record is in the database once it resolves) */
  stored: Promise<void> = Promise.resolve()
  /** the last history write: each one starts after the one before, so the final record is the one kept */
  saved: Promise<void> = Promise.resolve()

  constructor (readonly id: string, readonly spec: TaskSpec, readonly ctx: SubmitContext, readonly record: TaskRecord, readonly submittedAt: number) {
    this.accepted = new Promise((resolve, reject) => { this.acceptedResolve = resolve; this.acceptedReject = reject })
    this.result = new Promise((resolve, reject) => { this.resultResolve = resolve; this.resultReject = reject })
    // a caller may never await one of them: unhandled rejections are not errors here
    this.accepted.catch(() => {})
    this.result.catch(() => {})
  }

  get mode (): RestartMode {
    return this.ctx.restartMode ?? 'restart'
  }

  emit (event: TaskEvent): void {
    if (this.events.length < MAX_KEPT_EVENTS || event.type !== 'task.token') this.events.push(event)
    for (const l of [...this.listeners]) {
      try { l(event) } catch {}
    }
  }

  subscribe (listener: (e: TaskEvent) => void): () => void {
    for (const e of this.events) {
      try { listener(e) } catch {}
    }
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  cancel (): void {
    this.controller.abort()
  }
}

export class TaskManager implements TaskManagerApi {
  private readonly log = logger('realm:tasks')
  private readonly runs = new Map<string, Run>()
  private readonly recent = new Map<string, TaskRecord>()
  private readonly perRequester = new Map<string, number>()
  private readonly now: () => number
  private index?: { sources: RouteSource[], served: Set<string>, vision: Set<string> }

  constructor (private readonly init: TaskManagerInit) {
    this.now = init.now ?? Date.now
  }

  get active (): number {
    return this.runs.size
  }

  hasModel (kind: TaskKind, model: string): boolean {
    return this.resolveModel(kind, model) != null
  }

  /** The mesh's name for a model a client named (a bare name means `:latest`) */
  resolveModel (kind: TaskKind, model: string): string | undefined {
    const { served } = this.modelIndex()
    if (served.has(`${kind}\n${model}`)) return model
    if (!model.includes(':') && served.has(`${kind}\n${model}:latest`)) return `${model}:latest`
    return undefined
  }

  private servesVision (kind: TaskKind, model: string): boolean {
    return this.modelIndex().vision.has(`${kind}\n${model}`)
  }

  /**
   * `kind\nmodel` of every healthy worker's models (and of those that take images), built again
   * only when `sources()` hands out a new array (the node's stays the same while nothing changed)
   */
  private modelIndex (): { served: Set<string>, vision: Set<string> } {
    const sources = this.init.sources()
    if (this.index?.sources === sources) return this.index
    const served = new Set<string>()
    const vision = new Set<string>()
    for (const source of sources) {
      for (const w of source.workers) {
        if (w.health.state !== 'ok') continue
        for (const m of w.models) {
          for (const kind of m.kinds) {
            served.add(`${kind}\n${m.name}`)
            if (m.vision === true) vision.add(`${kind}\n${m.name}`)
          }
        }
      }
    }
    this.index = { sources, served, vision }
    return this.index
  }

  submit (submission: TaskSubmission, ctx: SubmitContext): TaskRun {
    const id = newTaskId()
    const model = this.resolveModel(submission.kind, submission.model)
    const parsed = TaskSpecSchema.safeParse({ id, kind: submission.kind, model: model ?? submission.model, input: submission.input, options: submission.options })
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw new TaskError('INVALID_TASK', `${issue?.path.join('.') || 'task'}: ${issue?.message ?? 'invalid'}`)
    }
    if (model == null) throw new TaskError('MODEL_NOT_FOUND', `model '${submission.model}' not found`)
    const spec = parsed.data as TaskSpec
    if (hasImages(spec) && !this.servesVision(spec.kind, model)) {
      throw new TaskError('INVALID_TASK', `model '${model}' does not take images (no vision model by that name in the mesh)`)
    }
    const mine = this.perRequester.get(ctx.requester) ?? 0
    if (mine >= this.init.perRequester) {
      throw new TaskError('QUEUE_FULL', `you have ${mine} tasks running or waiting; the limit is ${this.init.perRequester}`, { retryAfterS: 2, reason: 'requester' })
    }
    if (this.runs.size >= this.init.maxActive) {
      throw new TaskError('QUEUE_FULL', `this node has ${this.runs.size} tasks running or waiting; the limit is ${this.init.maxActive}`, { retryAfterS: 5, reason: 'node' })
    }

    const createdAt = new Date(this.now()).toISOString()
    const record: TaskRecord = { id, requester: ctx.requester, kind: spec.kind, model: spec.model, status: 'queued', createdAt, attempts: 0, prompt: promptPreview(spec) }
    const run = new Run(id, spec, ctx, record, this.now())
    this.runs.set(id, run)
    this.perRequester.set(ctx.requester, mine + 1)
    if (ctx.signal != null) {
      if (ctx.signal.aborted) run.controller.abort()
      else ctx.signal.addEventListener('abort', () => { run.controller.abort() }, { once: true })
    }
    run.emit({ type: 'task.submitted', id, kind: spec.kind, model: spec.model })
    this.init.events.emit('task.submitted', { id, requester: ctx.requester, kind: spec.kind, model: spec.model, ...(this.init.keepPrompts === true ? { prompt: record.prompt } : {}) })
    // fsynced: a task whose id the client is given (`taskStored`) survives even a power loss
    run.stored = this.init.history.put({ ...record }, true, { sync: true })
    run.saved = run.stored.catch(err => { this.log.error('history: %s', errorMessage(err)) })
    void this.drive(run)
    return run
  }

  async get (id: string, requester?: string): Promise<TaskRecord | undefined> {
    const live = this.runs.get(id)
    const record = live != null
      ? { ...live.record, events: live.events.filter(e => e.type !== 'task.token'), text: live.text } as TaskRecord
      : this.recent.get(id) ?? await this.init.history.get(id)
    if (record == null) return undefined
    if (requester !== undefined && record.requester !== requester) return undefined
    return record
  }

  async list (requester: string, opts?: { limit?: number }): Promise<TaskRecord[]> {
    return await this.init.history.list(requester, opts?.limit)
  }

  cancel (id: string, requester?: string): boolean {
    const run = this.runs.get(id)
    if (run == null || (requester !== undefined && run.ctx.requester !== requester)) return false
    run.cancel()
    return true
  }

  /** Cancel every task of a requester (a banned user) */
  cancelRequester (requester: string): number {
    let n = 0
    for (const run of this.runs.values()) {
      if (run.ctx.requester === requester) { run.cancel(); n++ }
    }
    return n
  }

  /** Cancel everything (node stopping) and wait for the runs to end and their records to be written */
  async stop (): Promise<void> {
    const runs = [...this.runs.values()]
    for (const run of runs) run.cancel()
    await Promise.all(runs.map(async r => {
      await r.result.catch(() => {})
      await r.saved
    }))
  }

  private allow = (peerId: string, local: boolean): boolean => {
    if (this.init.isBlocked?.(peerId) === true) return false
    if (this.init.runOn === 'local') return local
    if (this.init.runOn === 'trusted') return local || this.init.trusted.includes(peerId)
    return true
  }

  private async drive (run: Run): Promise<void> {
    const { spec } = run
    const exclude = new Set<string>()
    // a stream that broke before any frame is tried once more on the same worker
    const unreachable = new Set<string>()
    let lastError: TaskError | undefined
    let delivered = ''
    try {
      this.trimChat(run)
      const needsVision = hasImages(spec)
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        if (run.controller.signal.aborted) throw new TaskError('CANCELLED', 'task cancelled')
        const ranked = this.init.router.rank(this.init.router.candidates(this.init.sources(), {
          kind: spec.kind, model: spec.model, needsVision, maxPrice: spec.options?.maxPrice, exclude, allow: this.allow
        }))
        const chosen = ranked[0]
        if (chosen == null) break
        this.init.router.chose(chosen, ranked)
        run.record.attempts = attempt
        run.record.peerId = chosen.peerId
        run.record.workerId = chosen.workerId
        if (delivered !== '' && run.mode === 'restart') {
          run.text = ''
          delivered = ''
          run.emit({ type: 'task.restarted', id: run.id, reason: lastError?.message ?? 'worker failed', attempt })
          this.init.events.emit('task.restarted', { id: run.id, requester: run.ctx.requester, attempt, reason: lastError?.code })
        }
        try {
          const output = await this.attempt(run, chosen, attempt, delivered)
          return this.finish(run, output, chosen)
        } catch (err) {
          const e = toTaskError(err)
          if (e.code === 'CANCELLED' && run.controller.signal.aborted) throw e
          this.init.router.finished(chosen, { failed: true })
          if (e.code === 'INVALID_TASK' || e.code === 'FORBIDDEN' && chosen.local) throw e
          if (e.details?.spliceMismatch === true) throw e
          const key = candidateKey(chosen)
          if (e.code === 'BACKEND_UNREACHABLE' && !chosen.local && !unreachable.has(key) && run.text === delivered) unreachable.add(key)
          else exclude.add(key)
          lastError = e
          delivered = run.text
          this.log('task %s attempt %d on %s failed: %s', run.id, attempt, candidateKey(chosen), e.message)
          this.init.events.emit('task.attempt_failed', { id: run.id, requester: run.ctx.requester, attempt, peerId: chosen.peerId, workerId: chosen.workerId, code: e.code, message: e.message })
        }
      }
      if (lastError != null) throw lastError
      throw new TaskError('NO_WORKER', `no live worker in the mesh serves ${spec.kind} with ${spec.model}${needsVision ? ' (with images)' : ''}`)
    } catch (err) {
      this.fail(run, toTaskError(err))
    }
  }

  /** One try on one worker; resolves with the output, rejects with TaskError */
  private async attempt (run: Run, c: Candidate, attempt: number, delivered: string): Promise<TaskOutput> {
    // aborted by the run's cancel or by this attempt (a failed splice); linked by hand, as
    // AbortSignal.any costs weak references and finalizers on every task
    const attemptCtl = new AbortController()
    const signal = attemptCtl.signal
    const onRunAbort = (): void => { attemptCtl.abort() }
    if (run.controller.signal.aborted) attemptCtl.abort()
    else run.controller.signal.addEventListener('abort', onRunAbort, { once: true })
    const startedAt = this.now()
    // splice: the new answer must start with what the client already has
    let matching = run.mode === 'splice' && delivered !== ''
    let pending = ''
    let spliceError: TaskError | undefined

    const onToken = (text: string): void => {
      run.firstOutputAt ??= this.now()
      if (!matching) {
        run.text += text
        run.emit({ type: 'task.token', id: run.id, text })
        return
      }
      pending += text
      if (pending.length < delivered.length) {
        if (!delivered.startsWith(pending)) spliceError ??= new TaskError('BACKEND_ERROR', 'the answer changed when the task moved to another worker', { spliceMismatch: true })
      } else if (pending.startsWith(delivered)) {
        matching = false
        const rest = pending.slice(delivered.length)
        if (rest !== '') onToken(rest)
      } else {
        spliceError ??= new TaskError('BACKEND_ERROR', 'the answer changed when the task moved to another worker', { spliceMismatch: true })
      }
      if (spliceError != null) attemptCtl.abort()
    }
    const onQueued = (position: number, etaMs: number): void => {
      run.emit({ type: 'task.queued', id: run.id, position, etaMs, peerId: c.peerId })
      this.accept(run)
    }
    const onStarted = (): void => {
      run.startedAt = this.now()
      run.firstOutputAt = undefined
      run.record.status = 'running'
      run.emit({ type: 'task.started', id: run.id, peerId: c.peerId, workerId: c.workerId, attempt })
      this.init.events.emit('task.started', { id: run.id, requester: run.ctx.requester, peerId: c.peerId, workerId: c.workerId, attempt })
      this.accept(run)
    }

    let output: TaskOutput
    let serviceMs: number | undefined
    try {
      if (c.local) {
        const r = await this.init.executor.execute(run.spec, {
          workerId: c.workerId,
          requester: run.ctx.requester,
          signal,
          onEvent: (e: ExecEvent) => {
            if (e.type === 'queued') onQueued(e.position, e.etaMs)
            else if (e.type === 'started') onStarted()
            else if (e.type === 'token') onToken(e.text)
            else if (e.type === 'progress') run.emit({ type: 'task.progress', id: run.id, fraction: e.fraction, step: e.step, steps: e.steps, message: e.message })
            else if (e.type === 'image') run.emit({ type: 'task.image', id: run.id, image: e.image })
            else if (e.type === 'audio') run.emit({ type: 'task.audio', id: run.id, audio: e.audio })
          }
        })
        output = r.output
        serviceMs = r.timings.runMs
      } else {
        const r = await runRemote(this.init.libp2p, c.peerId, run.spec, {
          workerId: c.workerId,
          user: userTag(run.ctx.requester),
          signal,
          onFrame: (f: WorkerFrame) => {
            if (f.t === 'accepted' || f.t === 'queued') onQueued(f.position, f.etaMs)
            else if (f.t === 'started') onStarted()
            else if (f.t === 'token') onToken(f.text)
            else if (f.t === 'progress') run.emit({ type: 'task.progress', id: run.id, fraction: f.fraction, step: f.step, steps: f.steps, message: f.message })
            else if (f.t === 'image') run.emit({ type: 'task.image', id: run.id, image: f.image })
            else if (f.t === 'audio') run.emit({ type: 'task.audio', id: run.id, audio: f.audio })
          }
        })
        output = r.output
        serviceMs = r.timings.runMs ?? this.now() - startedAt
      }
    } catch (err) {
      if (spliceError != null) throw spliceError
      throw err
    } finally {
      run.controller.signal.removeEventListener('abort', onRunAbort)
    }
    if (spliceError != null) throw spliceError
    if (matching) {
      // the new answer ended before reaching what the client has: it must be exactly that
      const full = output.text ?? pending
      if (full !== delivered) throw new TaskError('BACKEND_ERROR', 'the answer changed when the task moved to another worker', { spliceMismatch: true })
    }
    this.init.router.finished(c, { serviceMs })
    return output
  }

  private accept (run: Run): void {
    if (run.isAccepted) return
    run.isAccepted = true
    run.acceptedResolve()
  }

  private finish (run: Run, output: TaskOutput, c: Candidate): void {
    if (run.ended) return
    run.ended = true
    // the text of a streamed answer is what the client was given
    if (run.text !== '' && (output.text === undefined || output.text === '')) output = { ...output, text: run.text }
    const timings = this.timings(run)
    run.record.status = 'done'
    run.record.endedAt = new Date(this.now()).toISOString()
    run.record.timings = timings
    run.record.output = storedOutput(output)
    run.emit({ type: 'task.done', id: run.id, output, peerId: c.peerId, workerId: c.workerId, timings })
    this.init.events.emit('task.done', { id: run.id, requester: run.ctx.requester, peerId: c.peerId, workerId: c.workerId, timings, usage: output.usage, attempts: run.record.attempts })
    this.accept(run)
    run.resultResolve(output)
    this.end(run)
  }

  private fail (run: Run, err: TaskError): void {
    if (run.ended) return
    run.ended = true
    const timings = this.timings(run)
    run.record.status = err.code === 'CANCELLED' ? 'cancelled' : 'error'
    run.record.endedAt = new Date(this.now()).toISOString()
    run.record.timings = timings
    run.record.error = { code: err.code, message: err.message }
    run.emit({ type: 'task.error', id: run.id, code: err.code, message: err.message, timings })
    this.init.events.emit('task.error', { id: run.id, requester: run.ctx.requester, code: err.code, message: err.message, attempts: run.record.attempts, timings })
    if (!run.isAccepted) run.acceptedReject(err)
    run.resultReject(err)
    this.end(run)
  }

  private end (run: Run): void {
    this.runs.delete(run.id)
    this.recent.set(run.id, run.record)
    if (this.recent.size > RECENT_TASKS) this.recent.delete(this.recent.keys().next().value!)
    const n = (this.perRequester.get(run.ctx.requester) ?? 1) - 1
    if (n <= 0) this.perRequester.delete(run.ctx.requester)
    else this.perRequester.set(run.ctx.requester, n)
    const final = { ...run.record }
    // after the first write (which indexes the record, or failed to: then this one does)
    run.saved = run.stored.then(() => false, () => true)
      .then(async isNew => { await this.init.history.put(final, isNew) })
      .catch(err => { this.log.error('history: %s', errorMessage(err)) })
  }

  private timings (run: Run): TaskTimings {
    const now = this.now()
    const t: TaskTimings = { totalMs: now - run.submittedAt }
    if (run.startedAt != null) {
      t.queueMs = run.startedAt - run.submittedAt
      t.runMs = now - run.startedAt
      if (run.firstOutputAt != null) t.firstTokenMs = run.firstOutputAt - run.startedAt
    }
    return t
  }

  /**
   * A chat whose history outgrows the model's context loses its oldest turns (the system
   * prompt and the last message stay), and the task says so.
   */
  private trimChat (run: Run): void {
    if (run.spec.kind !== 'chat') return
    const context = this.init.contextOf(run.spec.model)
    if (context == null) return
    const budget = Math.floor(context * CONTEXT_FILL)
    const messages = run.spec.input.messages
    const cost = (m: ChatMessage): number => Math.ceil(m.content.length / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE
    let total = messages.reduce((a, m) => a + cost(m), 0)
    if (total <= budget) return
    const kept = [...messages]
    let dropped = 0
    for (let i = 0; i < kept.length - 1 && total > budget;) {
      if (kept[i].role === 'system') { i++; continue }
      total -= cost(kept[i])
      kept.splice(i, 1)
      dropped++
    }
    if (dropped === 0) return
    run.spec.input.messages = kept
    const reason = `the conversation (${messages.length} messages) outgrew ${run.spec.model}'s context of ${context} tokens`
    run.emit({ type: 'task.trimmed', id: run.id, dropped, reason })
    this.init.events.emit('task.trimmed', { id: run.id, requester: run.ctx.requester, dropped, context })
  }
}

/**
 * Resolves once the task's record is in the database, so the client may be given its id: a
 * crash after that cannot lose it (the next start closes it as INTERRUPTED if it had not ended).
 * Rejects when the write failed. Runs of other `TaskManagerApi`s resolve at once.
 */
export async function taskStored (run: TaskRun): Promise<void> {
  if (run instanceof Run) await run.stored
}

/** Random bytes drawn a block at a time: one call for many task ids */
const ID_BYTES = 12
let idPool = Buffer.alloc(0)
let idOffset = 0

/** A fresh task id: 12 random bytes, base64url (16 characters) */
function newTaskId (): string {
  if (idOffset + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * 256)
    idOffset = 0
  }
  const id = idPool.toString('base64url', idOffset, idOffset + ID_BYTES)
  idOffset += ID_BYTES
  return id
}

function toTaskError (err: unknown): TaskError {
  if (err instanceof TaskError) return err
  if (err instanceof RealmError && isTaskCode(err.code)) return new TaskError(err.code, err.message, err.details)
  return new TaskError('INTERNAL', errorMessage(err))
}

/**
 * The requester as a worker's node sees it: an opaque tag, so its queue is fair across the
 * users behind one gateway without learning who they are
 */
function userTag (requester: string): string {
  return createHash('sha256').update('rentahal/user-tag/1\n').update(requester).digest('base64url').slice(0, 22)
}

function hasImages (spec: TaskSpec): boolean {
  if (spec.kind === 'chat') return spec.input.messages.some(m => (m.images?.length ?? 0) > 0)
  if (spec.kind === 'generate') return (spec.input.images?.length ?? 0) > 0
  return false
}

function promptPreview (spec: TaskSpec): string | undefined {
  let text: string | undefined
  if (spec.kind === 'chat') text = [...spec.input.messages].reverse().find(m => m.role === 'user')?.content
  else if (spec.kind === 'generate' || spec.kind === 'imagine') text = spec.input.prompt
  else if (spec.kind === 'speak') text = spec.input.text
  return text?.slice(0, PROMPT_PREVIEW_CHARS)
}
