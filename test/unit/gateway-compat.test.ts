/**
 * The gateway's Ollama and OpenAI facades, served by a real Gateway on loopback over a fake task
 * manager (deterministic events, scripted failures), checked with the official clients (ollama-js,
 * openai-node) and raw fetch against the API fixtures in test/fixtures/.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { Ollama } from 'ollama'
import OpenAI, { toFile } from 'openai'
import type { AddressInfo } from 'node:net'
import Koa, { type Context } from 'koa'
import { Gateway } from '../../node/gateway/index.js'
import type { GatewayComponents } from '../../node/gateway/types.js'
import { createEventBus } from '../../node/events/index.js'
import { meshModels } from '../../node/presence/mesh.js'
import { requesterOf } from '../../node/gateway/compat/requester.js'
import { startTask, streamTask } from '../../node/gateway/compat/task-stream.js'
import { sseFormat } from '../../node/gateway/compat/openai.js'
import {
  TaskError, type SubmitContext, type TaskEvent, type TaskManagerApi, type TaskRecord, type TaskRun,
  type TaskSubmission, type TaskTimings
} from '../../node/tasks/types.js'
import type { TaskKind, ModelInfo } from '../../protocol/kinds.js'
import type { TaskErrorCode, TaskOutput } from '../../protocol/task.js'
import type { WorkerAd } from '../../protocol/presence.js'
import {
  assertSameShape, assertStreamShape, fixtureJson, fixtureText, parseNdjson, parseSse, readSolidPng,
  silentMp3, solidPng, tonePcm, wavFromPcm
} from '../standins/index.js'
import { waitFor } from '../helpers/wait.js'

// ---------------------------------------------------------------------------------------------
// a fake task manager

const TOKENS = ['Hello', ' from', ' the', ' mesh', '.']
const TEXT = TOKENS.join('')
const TIMINGS: TaskTimings = { queueMs: 2, firstTokenMs: 3, runMs: 10, totalMs: 12 }
const TRANSCRIPT = 'the quick brown fox'

/** What the next submitted task does */
type Script =
  | { type: 'ok', tokens?: string[], output?: TaskOutput }
  /** submit throws at once */
  | { type: 'throw', code: TaskErrorCode, details?: Record<string, unknown> }
  /** accepted rejects */
  | { type: 'reject', code: TaskErrorCode, details?: Record<string, unknown> }
  /** tokens, then an error */
  | { type: 'fail', tokens: string[], code: TaskErrorCode, message: string }
  /** started, then nothing until cancelled */
  | { type: 'hang' }

interface Submitted {
  task: TaskSubmission
  ctx: SubmitContext
  run: FakeRun
}

class FakeRun implements TaskRun {
  readonly events: TaskEvent[] = []
  readonly accepted: Promise<void>
  readonly result: Promise<TaskOutput>
  cancelled = false
  private readonly listeners = new Set<(e: TaskEvent) => void>()
  private acceptedCtl!: { resolve: () => void, reject: (e: unknown) => void }
  private resultCtl!: { resolve: (o: TaskOutput) => void, reject: (e: unknown) => void }
  private ended = false

  constructor (readonly id: string) {
    this.accepted = new Promise((resolve, reject) => { this.acceptedCtl = { resolve, reject } })
    this.result = new Promise((resolve, reject) => { this.resultCtl = { resolve, reject } })
    this.accepted.catch(() => {})
    this.result.catch(() => {})
  }

  subscribe (listener: (event: TaskEvent) => void): () => void {
    for (const e of this.events) listener(e)
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  cancel (): void {
    this.cancelled = true
    this.fail('CANCELLED', 'cancelled by the client')
  }

  emit (event: TaskEvent): void {
    if (this.ended) return
    this.events.push(event)
    for (const l of [...this.listeners]) l(event)
  }

  accept (): void {
    this.emit({ type: 'task.queued', id: this.id, position: 0, etaMs: 0, peerId: 'peer-a' })
    this.acceptedCtl.resolve()
    this.emit({ type: 'task.started', id: this.id, peerId: 'peer-a', workerId: 'w1', attempt: 1 })
  }

  done (output: TaskOutput): void {
    this.emit({ type: 'task.done', id: this.id, output, peerId: 'peer-a', workerId: 'w1', timings: TIMINGS })
    this.ended = true
    this.resultCtl.resolve(output)
  }

  fail (code: TaskErrorCode, message: string): void {
    if (this.ended) return
    this.emit({ type: 'task.error', id: this.id, code, message, timings: TIMINGS })
    this.ended = true
    const err = new TaskError(code, message)
    this.acceptedCtl.reject(err)
    this.resultCtl.reject(err)
  }
}

const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

/** A deterministic output for each kind */
function defaultOutput (task: TaskSubmission): { tokens: string[], output: TaskOutput } {
  const input = task.input as any
  switch (task.kind) {
    case 'chat':
    case 'generate':
      return { tokens: TOKENS, output: { text: TEXT, doneReason: 'stop', usage: { promptTokens: 7, completionTokens: TOKENS.length } } }
    case 'embed': {
      const inputs: string[] = typeof input.input === 'string' ? [input.input] : input.input
      // unnormalised on purpose: /api/embed normalises as Ollama does
      return { tokens: [], output: { embeddings: inputs.map((s, i) => [3, 4, s.length, i]), usage: { promptTokens: 8 * inputs.length } } }
    }
    case 'imagine': {
      const count = input.count ?? 1
      const images = Array.from({ length: count }, (_, i) => ({ data: solidPng(input.width ?? 64, input.height ?? 64, [i * 40, 100, 200]).toString('base64'), mime: 'image/png' }))
      return { tokens: [], output: { images } }
    }
    case 'transcribe':
      return { tokens: [], output: { text: TRANSCRIPT, usage: { units: 2 } } }
    case 'speak': {
      const audio = input.format === 'wav' ? wavFromPcm(tonePcm(200)) : silentMp3(200)
      return { tokens: [], output: { audio: { data: audio.toString('base64'), mime: input.format === 'wav' ? 'audio/wav' : 'audio/mpeg' } } }
    }
  }
}

class FakeTasks implements TaskManagerApi {
  readonly submitted: Submitted[] = []
  /** scripts for the next submissions, in order; the default is `ok` */
  readonly scripts: Script[] = []
  private seq = 0

  constructor (private readonly serves: () => Map<string, TaskKind[]>) {}

  hasModel (kind: TaskKind, model: string): boolean {
    return this.serves().get(model)?.includes(kind) ?? false
  }

  submit (task: TaskSubmission, ctx: SubmitContext): TaskRun {
    const script = this.scripts.shift() ?? { type: 'ok' }
    if (script.type === 'throw') throw new TaskError(script.code, `scripted ${script.code}`, script.details)
    const run = new FakeRun(`task${String(++this.seq).padStart(6, '0')}`)
    this.submitted.push({ task, ctx, run })
    ctx.signal?.addEventListener('abort', () => { run.cancel() })
    void this.play(run, task, script)
    return run
  }

  private async play (run: FakeRun, task: TaskSubmission, script: Script): Promise<void> {
    await tick()
    if (script.type === 'reject') {
      const err = new TaskError(script.code, `scripted ${script.code}`, script.details)
      run.fail(script.code, err.message)
      return
    }
    run.accept()
    if (script.type === 'hang') return
    const { tokens, output } = script.type === 'ok' && script.output !== undefined
      ? { tokens: script.tokens ?? [], output: script.output }
      : defaultOutput(task)
    const played = script.type === 'fail' ? script.tokens : (script.type === 'ok' && script.tokens !== undefined ? script.tokens : tokens)
    for (const text of played) {
      await tick()
      run.emit({ type: 'task.token', id: run.id, text })
    }
    await tick()
    if (script.type === 'fail') run.fail(script.code, script.message)
    else run.done(output)
  }

  async get (): Promise<TaskRecord | undefined> { return undefined }
  async list (): Promise<TaskRecord[]> { return [] }
  cancel (): boolean { return false }

  get last (): Submitted {
    const s = this.submitted[this.submitted.length - 1]
    assert.ok(s !== undefined, 'no task was submitted')
    return s
  }
}

// ---------------------------------------------------------------------------------------------
// the mesh the gateway sees

function info (name: string, kinds: TaskKind[], extra: Partial<ModelInfo> = {}): ModelInfo {
  return { name, kinds, ...extra }
}

const LOCAL_MODELS: ModelInfo[] = [
  info('llama3.2:latest', ['chat', 'generate'], { family: 'llama', parameterSize: '3.2B', quantization: 'Q4_K_M', context: 131072, size: 2019393189, loaded: true }),
  info('llava:latest', ['chat', 'generate'], { family: 'llama', parameterSize: '7B', quantization: 'Q4_0', context: 4096, vision: true, size: 4733363377 }),
  info('all-minilm:latest', ['embed'], { family: 'bert', parameterSize: '23M', quantization: 'F16', context: 512 }),
  info('codellama:code', ['generate'], { family: 'llama', parameterSize: '7B' })
]
const PEER_MODELS: ModelInfo[] = [
  info('gpt-4o-mini', ['chat']),
  info('text-embedding-3-small', ['embed']),
  info('sd-v1-5', ['imagine']),
  info('whisper-1', ['transcribe']),
  info('tts-1', ['speak']),
  info('org/model:q4', ['chat'], { loaded: true, size: 1000, family: 'qwen2' })
]

function worker (id: string, models: ModelInfo[]): WorkerAd {
  const kinds = [...new Set(models.flatMap(m => m.kinds))]
  return { id, backend: 'ollama', kinds, models, health: { state: 'ok', queueDepth: 0, inFlight: 0, concurrency: 1 } }
}

function components (tasks: FakeTasks | undefined, local: WorkerAd[], peerWorkers: WorkerAd[]): GatewayComponents {
  const peers = [{ peerId: '12D3KooWPeerA', multiaddrs: [], version: 'test', workers: peerWorkers, health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 1 } as any, blocked: false, lastSeen: Date.now(), firstSeen: 1_700_000_000_000 }]
  return {
    peerId: '12D3KooWSelf',
    version: 'test',
    startedAt: Date.now(),
    events: createEventBus(),
    multiaddrs: () => [],
    peers: () => peers,
    localWorkers: () => local,
    models: () => meshModels([{ peerId: '12D3KooWSelf', workers: local, firstSeen: 1_700_000_000_000 }, ...peers.map(p => ({ peerId: p.peerId, workers: p.workers, firstSeen: p.firstSeen }))]),
    connections: () => 1,
    tasks: tasks as FakeTasks
  }
}

async function post (url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body), signal })
}

/** `param` and `code` are `string | null` in OpenAI's Error schema */
const OPENAI_ERROR = { nullable: ['error.param', 'error.code'] }

describe('gateway compatibility routes', function () {
  this.timeout(20_000)

  let gateway: Gateway
  let tasks: FakeTasks
  let url: string

  before(async () => {
    const local = [worker('w-local', LOCAL_MODELS)]
    const remote = [worker('w-remote', PEER_MODELS)]
    const c = components(undefined, local, remote)
    tasks = new FakeTasks(() => new Map(c.models().map(m => [m.name, m.kinds])))
    c.tasks = tasks
    gateway = new Gateway(c, { host: '127.0.0.1', port: 0 })
    await gateway.start()
    url = gateway.url
  })

  after(async () => {
    await gateway.stop()
  })

  beforeEach(() => {
    tasks.scripts.length = 0
  })

  // -------------------------------------------------------------------------------------------
  describe('ollama', () => {
    let ollama: Ollama

    before(() => {
      ollama = new Ollama({ host: url })
    })

    it('streams a chat with ollama-js: the text is the tokens, the task is a spliced chat', async () => {
      const parts: any[] = []
      for await (const part of await ollama.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true })) parts.push(part)
      assert.equal(parts.filter(p => !p.done).map(p => p.message.content).join(''), TEXT)
      const last = parts[parts.length - 1]
      assert.equal(last.done, true)
      assert.equal(last.done_reason, 'stop')
      assert.equal(last.eval_count, TOKENS.length)
      assert.equal(last.prompt_eval_count, 7)
      assert.equal(last.total_duration, 12_000_000)
      const { task, ctx } = tasks.last
      assert.equal(task.kind, 'chat')
      assert.equal(task.model, 'llama3.2:latest')
      assert.deepEqual(task.input, { messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(ctx.restartMode, 'splice')
      assert.ok(ctx.signal instanceof AbortSignal)
      assert.equal(ctx.requester, 'addr:127.0.0.1')
    })

    it('streams a chat as NDJSON lines shaped like the fixture', async () => {
      const res = await post(`${url}/api/chat`, fixtureJson('ollama', 'chat-request-history.json'))
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-type'), 'application/x-ndjson')
      const lines = parseNdjson(await res.text()) as any[]
      assertStreamShape(lines, parseNdjson(fixtureText('ollama', 'chat-stream.ndjson')))
      assert.equal(lines.slice(0, -1).map(l => l.message.content).join(''), TEXT)
      assert.equal(lines[0].model, 'llama3.2')
      assert.equal((tasks.last.task.input as any).messages.length, 3)
    })

    it('answers a non-streamed chat as one object shaped like the fixture', async () => {
      const res = await post(`${url}/api/chat`, { ...fixtureJson('ollama', 'chat-request-history.json'), stream: false })
      assert.equal(res.status, 200)
      const body = await res.json()
      assertSameShape(body, fixtureJson('ollama', 'chat.json'))
      assert.equal(body.message.content, TEXT)
      const viaClient = await ollama.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(viaClient.message.content, TEXT)
    })

    it('passes chat images and sampling options on', async () => {
      const request = fixtureJson('ollama', 'chat-request-images.json')
      const res = await post(`${url}/api/chat`, {
        ...request,
        stream: false,
        format: 'json',
        keep_alive: '10m',
        options: { temperature: 0.2, top_p: 0.9, top_k: 40, num_predict: 64, seed: 42, stop: ['\n\n'], num_ctx: 8192 },
        some_future_field: true
      })
      assert.equal(res.status, 200)
      const { task } = tasks.last
      assert.equal(task.model, 'llava:latest')
      assert.deepEqual((task.input as any).messages[0].images, request.messages[0].images)
      assert.deepEqual(task.options, { temperature: 0.2, topP: 0.9, topK: 40, maxTokens: 64, seed: 42, stop: ['\n\n'], json: true })
    })

    it('streams and answers generate shaped like the fixtures', async () => {
      const res = await post(`${url}/api/generate`, fixtureJson('ollama', 'generate-request.json'))
      const lines = parseNdjson(await res.text()) as any[]
      // `context` is deprecated in Ollama and the mesh keeps no token context
      assertStreamShape(lines, parseNdjson(fixtureText('ollama', 'generate-stream.ndjson')), { optional: ['context', 'done_reason'] })
      assert.equal(lines.slice(0, -1).map(l => l.response).join(''), TEXT)
      assert.deepEqual(tasks.last.task.input, { prompt: 'Why is the sky blue?' })

      const one = await post(`${url}/api/generate`, { model: 'codellama:code', prompt: 'def compute_gcd(a, b):', system: 'be brief', stream: false })
      const body = await one.json()
      assertSameShape(body, fixtureJson('ollama', 'generate.json'), { optional: ['context'] })
      assert.equal(body.response, TEXT)
      assert.deepEqual(tasks.last.task.input, { prompt: 'def compute_gcd(a, b):', system: 'be brief' })

      const viaClient = await ollama.generate({ model: 'llama3.2', prompt: 'hi' })
      assert.equal(viaClient.response, TEXT)
    })

    it('answers an empty prompt or chat by loading (or unloading) the model, as Ollama does', async () => {
      const before = tasks.submitted.length
      const gen = await (await post(`${url}/api/generate`, { model: 'llama3.2' })).json()
      assert.deepEqual({ ...gen, created_at: 'x' }, { model: 'llama3.2', created_at: 'x', response: '', done: true, done_reason: 'load' })
      const unload = await (await post(`${url}/api/generate`, { model: 'llama3.2', keep_alive: 0 })).json()
      assert.equal(unload.done_reason, 'unload')
      const chat = await (await post(`${url}/api/chat`, { model: 'llama3.2', messages: [] })).json()
      assert.deepEqual(chat.message, { role: 'assistant', content: '' })
      assert.equal(chat.done_reason, 'load')
      assert.equal(tasks.submitted.length, before, 'no task for a load')
      // an unknown model is still a 404
      assert.equal((await post(`${url}/api/generate`, { model: 'nope' })).status, 404)
    })

    it('embeds as /api/embed and the legacy /api/embeddings', async () => {
      const res = await post(`${url}/api/embed`, fixtureJson('ollama', 'embed-request.json'))
      assert.equal(res.status, 200)
      const body = await res.json()
      assertSameShape(body, fixtureJson('ollama', 'embed.json'))
      assert.equal(body.embeddings.length, 1)
      const [x, y] = body.embeddings[0]
      const norm = Math.hypot(...body.embeddings[0])
      assert.ok(Math.abs(norm - 1) < 1e-9, 'normalised as Ollama does')
      assert.ok(Math.abs(x / y - 0.75) < 1e-9)
      assert.deepEqual(tasks.last.task, { kind: 'embed', model: 'all-minilm:latest', input: { input: ['Why is the sky blue?'] } })

      const many = await ollama.embed({ model: 'all-minilm', input: ['a', 'bb', 'ccc'] })
      assert.equal(many.embeddings.length, 3)
      const short = await (await post(`${url}/api/embed`, { model: 'all-minilm', input: 'x', dimensions: 2 })).json()
      assert.equal(short.embeddings[0].length, 2)
      const empty = await (await post(`${url}/api/embed`, { model: 'all-minilm', input: [] })).json()
      assert.deepEqual(empty, { model: 'all-minilm', embeddings: [] })
      const bad = await post(`${url}/api/embed`, { model: 'all-minilm', input: [1, 2] })
      assert.equal(bad.status, 400)
      assert.deepEqual(await bad.json(), { error: 'invalid input type' })

      const legacy = await ollama.embeddings({ model: 'all-minilm', prompt: 'hello' })
      assert.deepEqual(legacy.embedding, [3, 4, 5, 0])
      const legacyMissing = await post(`${url}/api/embeddings`, { model: 'nope', prompt: 'x' })
      assert.equal(legacyMissing.status, 404)
      assert.deepEqual(await legacyMissing.json(), { error: 'model "nope" not found, try pulling it first' })
    })

    it('shows a mesh model like the fixture, and 404s an unknown one as Ollama words it', async () => {
      const res = await post(`${url}/api/show`, { model: 'llava' })
      assert.equal(res.status, 200)
      const body = await res.json()
      assertSameShape(body, fixtureJson('ollama', 'show.json'), { opaque: ['model_info'], optional: ['modified_at'] })
      assert.equal(body.model_info['general.architecture'], 'llama')
      assert.equal(body.model_info['llama.context_length'], 4096)
      assert.equal(body.model_info['general.parameter_count'], 7e9)
      assert.deepEqual(body.capabilities, ['completion', 'vision'])
      const viaClient = await ollama.show({ model: 'all-minilm' })
      assert.deepEqual(viaClient.capabilities, ['embedding'])
      assert.deepEqual((await ollama.show({ model: 'sd-v1-5' })).capabilities, ['image'])

      const missing = await post(`${url}/api/show`, { model: 'nope' })
      assert.equal(missing.status, 404)
      assert.deepEqual(await missing.json(), { error: "model 'nope:latest' not found" })
      const noModel = await post(`${url}/api/show`, {})
      assert.equal(noModel.status, 400)
      assert.deepEqual(await noModel.json(), { error: 'model is required' })
    })

    it('lists the models loaded anywhere in the mesh like the ps fixture', async () => {
      const res = await fetch(`${url}/api/ps`)
      const body = await res.json()
      assertSameShape(body, fixtureJson('ollama', 'ps.json'), { optional: ['models[].context_length'] })
      assert.deepEqual(body.models.map((m: any) => m.name), ['llama3.2:latest', 'org/model:q4'])
      assert.equal(body.models[0].context_length, 131072)
      assert.ok(Date.parse(body.models[0].expires_at) > Date.now())
      const viaClient = await ollama.ps()
      assert.equal(viaClient.models.length, 2)
    })

    it('pulls a mesh model as a success, and fails an unknown one with Ollama\'s pull error', async () => {
      const res = await post(`${url}/api/pull`, { model: 'llama3.2' })
      assert.equal(res.headers.get('content-type'), 'application/x-ndjson')
      const lines = parseNdjson(await res.text()) as any[]
      assert.equal(lines[0].status, 'pulling manifest')
      assert.deepEqual(lines[lines.length - 1], { status: 'success' })
      const statuses: string[] = []
      for await (const p of await ollama.pull({ model: 'org/model:q4', stream: true })) statuses.push(p.status)
      assert.equal(statuses[statuses.length - 1], 'success')
      assert.deepEqual(await ollama.pull({ model: 'llama3.2' }), { status: 'success' })

      const missing = parseNdjson(await (await post(`${url}/api/pull`, { model: 'nope' })).text())
      assert.deepEqual(missing, [{ status: 'pulling manifest' }, { error: 'pull model manifest: file does not exist' }])
      await assert.rejects(async () => {
        for await (const p of await ollama.pull({ model: 'nope', stream: true })) void p
      }, /pull model manifest: file does not exist/)
      const once = await post(`${url}/api/pull`, { model: 'nope', stream: false })
      assert.equal(once.status, 500)
      assert.deepEqual(await once.json(), { error: 'pull model manifest: file does not exist' })
    })

    it('answers an unknown model with a 404 before any streaming starts', async () => {
      const before = tasks.submitted.length
      const res = await post(`${url}/api/chat`, { model: 'nope', messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(res.status, 404)
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
      const body = await res.json()
      assertSameShape(body, fixtureJson('ollama', 'error.json'))
      assert.deepEqual(body, { error: "model 'nope' not found" })
      await assert.rejects(ollama.chat({ model: 'nope', messages: [{ role: 'user', content: 'hi' }], stream: true }),
        (err: any) => err.name === 'ResponseError' && err.status_code === 404 && err.error === "model 'nope' not found")
      assert.equal(tasks.submitted.length, before)

      // the task manager may learn it is gone between the check and the submit
      tasks.scripts.push({ type: 'throw', code: 'MODEL_NOT_FOUND' })
      const raced = await post(`${url}/api/generate`, { model: 'llama3.2', prompt: 'x' })
      assert.equal(raced.status, 404)
      assert.deepEqual(await raced.json(), { error: "model 'llama3.2' not found" })

      const wrongKind = await post(`${url}/api/chat`, { model: 'all-minilm', messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(wrongKind.status, 400)
      assert.deepEqual(await wrongKind.json(), { error: '"all-minilm" does not support chat' })
    })

    it('answers busy as Ollama does when its queue is full: 503', async () => {
      tasks.scripts.push({ type: 'throw', code: 'QUEUE_FULL', details: { retryAfterS: 7 } })
      const res = await post(`${url}/api/chat`, { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(res.status, 503)
      assert.equal(res.headers.get('retry-after'), '7')
      assert.deepEqual(await res.json(), { error: 'server busy, please try again.  maximum pending requests exceeded' })

      tasks.scripts.push({ type: 'reject', code: 'QUEUE_FULL' })
      await assert.rejects(ollama.generate({ model: 'llama3.2', prompt: 'x', stream: true }),
        (err: any) => err.status_code === 503 && /server busy/.test(err.error))
    })

    it('ends a stream that fails after tokens with an {"error"} line, and fails before tokens with a status', async () => {
      tasks.scripts.push({ type: 'fail', tokens: ['Hel', 'lo'], code: 'BACKEND_ERROR', message: 'the model failed to generate a response' })
      const res = await post(`${url}/api/chat`, { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(res.status, 200)
      const lines = parseNdjson(await res.text()) as any[]
      assert.equal(lines.slice(0, -1).map(l => l.message.content).join(''), 'Hello')
      assert.deepEqual(lines[lines.length - 1], fixtureJson('ollama', 'error.json'))

      tasks.scripts.push({ type: 'fail', tokens: ['Hi'], code: 'LEASE_LOST', message: 'the worker went away' })
      const seen: string[] = []
      await assert.rejects(async () => {
        for await (const p of await ollama.generate({ model: 'llama3.2', prompt: 'x', stream: true })) seen.push(p.response ?? '')
      }, /the worker went away/)
      assert.deepEqual(seen, ['Hi'])

      tasks.scripts.push({ type: 'fail', tokens: [], code: 'BACKEND_UNREACHABLE', message: 'no backend answered' })
      const early = await post(`${url}/api/generate`, { model: 'llama3.2', prompt: 'x' })
      assert.equal(early.status, 500)
      assert.deepEqual(await early.json(), { error: 'no backend answered' })

      tasks.scripts.push({ type: 'fail', tokens: ['a'], code: 'BACKEND_ERROR', message: 'boom' })
      const whole = await post(`${url}/api/generate`, { model: 'llama3.2', prompt: 'x', stream: false })
      assert.equal(whole.status, 500)
      assert.deepEqual(await whole.json(), { error: 'boom' })
    })

    it('cancels the task of a client that disconnects, streamed or not', async () => {
      for (const stream of [true, false]) {
        tasks.scripts.push({ type: 'hang' })
        const from = tasks.submitted.length
        const abort = new AbortController()
        const pending = post(`${url}/api/chat`, { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream }, {}, abort.signal)
        pending.catch(() => {})
        const submitted = await waitFor(() => tasks.submitted.slice(from).find(s => s.run.events.some(e => e.type === 'task.started')), 'a started task')
        assert.equal(submitted.run.cancelled, false)
        abort.abort()
        await assert.rejects(pending)
        await waitFor(() => submitted.run.cancelled && submitted.ctx.signal?.aborted === true, 'the task to be cancelled')
      }
      // the gateway still answers
      assert.equal((await fetch(`${url}/api/version`)).status, 200)
    })

    it('writes with backpressure: a reader that lags gets every token, merged into fewer lines', async () => {
      // more than loopback socket buffers hold, so the gateway's writes must wait for the reader
      const tokens = Array.from({ length: 3000 }, (_, i) => `${String(i).padStart(4, '0')}${'y'.repeat(8188)}`)
      tasks.scripts.push({ type: 'ok', tokens, output: { text: tokens.join(''), doneReason: 'stop' } })
      const from = tasks.submitted.length
      const text = await new Promise<string>((resolve, reject) => {
        const req = http.request(`${url}/api/generate`, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
          // read nothing until the task has emitted every token
          res.pause()
          waitFor(() => tasks.submitted[from]?.run.events.some(e => e.type === 'task.done'), 'every token').then(() => {
            let body = ''
            res.setEncoding('utf8')
            res.on('data', (chunk: string) => { body += chunk })
            res.on('end', () => { resolve(body) })
            res.resume()
          }, reject)
        })
        req.on('error', reject)
        req.end(JSON.stringify({ model: 'llama3.2', prompt: 'long' }))
      })
      const lines = parseNdjson(text) as any[]
      assert.equal(lines.slice(0, -1).map(l => l.response).join(''), tokens.join(''))
      assert.ok(lines.length < tokens.length, 'tokens the reader had not taken were merged')
      assert.equal(lines[lines.length - 1].eval_count, tokens.length)
    })

    it('answers bad bodies with 400s in Ollama\'s form', async () => {
      const cases: Array<[unknown, number, string | RegExp]> = [
        ['{"model": "llama3.2", ', 400, /^invalid JSON in request body/],
        ['', 400, 'missing request body'],
        [{ messages: [{ role: 'user', content: 'x' }] }, 400, 'model is required'],
        [{ model: 'llama3.2', messages: 'hi' }, 400, 'json: cannot unmarshal string into Go struct field ChatRequest.messages of type []interface {}'],
        [{ model: 'llama3.2', messages: [{ role: 'user', content: 5 }] }, 400, 'json: cannot unmarshal number into Go struct field ChatRequest.messages.content of type string'],
        [{ model: 'llama3.2', messages: [{ role: 'user', content: 'x', images: ['not base64!'] }] }, 400, /^illegal base64 data at input byte 3$/],
        [{ model: 'llama3.2', messages: [{ role: 'wizard', content: 'x' }] }, 400, /invalid role/],
        [{ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], options: { temperature: 'hot' } }, 400, /cannot unmarshal string/],
        [{ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], options: { temperature: 50 } }, 400, /^invalid option temperature/],
        [{ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], format: 'xml' }, 400, /^invalid format/],
        [{ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], think: true }, 400, '"llama3.2" does not support thinking'],
        [[1, 2], 400, 'json: cannot unmarshal array into Go value of type api.ChatRequest']
      ]
      for (const [body, status, message] of cases) {
        const res = await post(`${url}/api/chat`, body)
        assert.equal(res.status, status, JSON.stringify(body))
        const answer = await res.json()
        assert.deepEqual(Object.keys(answer), ['error'])
        if (typeof message === 'string') assert.equal(answer.error, message)
        else assert.match(answer.error, message)
      }
      const huge = await post(`${url}/api/show`, { model: 'x'.repeat(100 * 1024) })
      assert.equal(huge.status, 413)
      assert.deepEqual(Object.keys(await huge.json()), ['error'])
      assert.equal((await post(`${url}/api/generate`, {})).status, 404)
    })
  })

  // -------------------------------------------------------------------------------------------
  describe('openai', () => {
    let openai: OpenAI

    before(() => {
      openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-test-key', maxRetries: 0 })
    })

    it('answers a chat completion with the official client, shaped like the fixture', async () => {
      const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: 'hi' }] })
      assert.equal(completion.choices[0].message.content, TEXT)
      assert.equal(completion.choices[0].finish_reason, 'stop')
      assert.deepEqual(completion.usage?.completion_tokens, TOKENS.length)
      const { task, ctx } = tasks.last
      assert.deepEqual(task, { kind: 'chat', model: 'gpt-4o-mini', input: { messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }] } })
      assert.equal(ctx.restartMode, 'splice')
      assert.match(ctx.requester, /^key:[0-9a-f]{32}$/)
      assert.ok(!ctx.requester.includes('sk-test-key'))

      const res = await post(`${url}/v1/chat/completions`, { ...fixtureJson('openai', 'chat-request.json'), model: 'gpt-4o-mini' })
      assertSameShape(await res.json(), fixtureJson('openai', 'chat-completion.json'))
    })

    it('streams chat chunks: the client\'s text is the tokens, the framing is the fixture\'s', async () => {
      let text = ''
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true })
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
      assert.equal(text, TEXT)

      const res = await post(`${url}/v1/chat/completions`, { ...fixtureJson('openai', 'chat-request-stream.json'), model: 'gpt-4o-mini' })
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
      const chunks = parseSse(await res.text()) as any[]
      assertStreamShape(chunks, parseSse(fixtureText('openai', 'chat-stream.sse')))
      assert.equal(chunks.map(c => c.choices[0].delta.content ?? '').join(''), TEXT)
      assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' })
      assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, 'stop')

      const withUsage = await post(`${url}/v1/chat/completions`, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } })
      const usageChunks = parseSse(await withUsage.text()) as any[]
      assertStreamShape(usageChunks, parseSse(fixtureText('openai', 'chat-stream-usage.sse')), { nullable: ['usage'] })
      const last = usageChunks[usageChunks.length - 1]
      assert.deepEqual(last.choices, [])
      assert.equal(last.usage.total_tokens, 7 + TOKENS.length)
    })

    it('takes images as data: URLs and options as TaskOptions; refuses remote image URLs', async () => {
      const png = solidPng(8, 8, [1, 2, 3]).toString('base64')
      await openai.chat.completions.create({
        model: 'llava',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }],
        temperature: 0.5,
        top_p: 0.5,
        max_tokens: 300,
        seed: 7,
        stop: 'END',
        response_format: { type: 'json_object' }
      })
      const { task } = tasks.last
      assert.equal(task.model, 'llava:latest')
      assert.deepEqual(task.input, { messages: [{ role: 'user', content: 'what is this?', images: [png] }] })
      assert.deepEqual(task.options, { temperature: 0.5, topP: 0.5, maxTokens: 300, seed: 7, stop: ['END'], json: true })

      const remote = await post(`${url}/v1/chat/completions`, { ...fixtureJson('openai', 'chat-request-image.json'), model: 'llava' })
      assert.equal(remote.status, 400)
      const body = await remote.json()
      assertSameShape(body, fixtureJson('openai', 'error.json'), OPENAI_ERROR)
      assert.equal(body.error.param, 'messages[0].content[1].image_url.url')
    })

    it('lists models and answers one by id', async () => {
      const list = await openai.models.list()
      assert.ok(list.data.some(m => m.id === 'gpt-4o-mini'))
      const one = await openai.models.retrieve('org/model:q4')
      assert.equal(one.id, 'org/model:q4')
      assert.equal(one.object, 'model')
      await assert.rejects(openai.models.retrieve('nope'), (err: any) => err.status === 404 && err.code === 'model_not_found')
    })

    it('embeds: base64 by default in the client, floats when asked, shaped like the fixture', async () => {
      const viaClient = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['hello', 'hi'] })
      assert.deepEqual(viaClient.data.map(d => d.embedding), [[3, 4, 5, 0], [3, 4, 2, 1]])
      assert.equal(viaClient.usage.prompt_tokens, 16)

      const res = await post(`${url}/v1/embeddings`, { ...fixtureJson('openai', 'embeddings-request.json'), model: 'text-embedding-3-small' })
      const body = await res.json()
      assertSameShape(body, fixtureJson('openai', 'embeddings.json'))
      assert.equal(body.model, 'text-embedding-3-small')
      const short = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'x', dimensions: 2, encoding_format: 'float' })
      assert.equal(short.data[0].embedding.length, 2)
      const tokens = await post(`${url}/v1/embeddings`, { model: 'text-embedding-3-small', input: [1, 2, 3] })
      assert.equal(tokens.status, 400)
      assert.equal((await tokens.json()).error.param, 'input')
    })

    it('generates images as b64_json (or data: URLs when asked)', async () => {
      const res = await openai.images.generate({ model: 'sd-v1-5', prompt: 'a red square', n: 2, size: '256x128' })
      assert.equal(res.data?.length, 2)
      const png = readSolidPng(Buffer.from(res.data![0].b64_json!, 'base64'))
      assert.equal(png.width, 256)
      assert.equal(png.height, 128)
      assert.deepEqual(tasks.last.task, { kind: 'imagine', model: 'sd-v1-5', input: { prompt: 'a red square', width: 256, height: 128, count: 2 } })

      const url1 = await openai.images.generate({ prompt: 'a square', response_format: 'url' })
      assert.match(url1.data![0].url!, /^data:image\/png;base64,/)
      assert.equal(tasks.last.task.model, 'sd-v1-5', 'no model: the mesh\'s image model')

      const tooMany = await post(`${url}/v1/images/generations`, { model: 'sd-v1-5', prompt: 'x', n: 5 })
      assert.equal(tooMany.status, 400)
      assert.equal((await tooMany.json()).error.code, 'integer_above_max_value')
      const badSize = await post(`${url}/v1/images/generations`, { model: 'sd-v1-5', prompt: 'x', size: 'huge' })
      assert.equal((await badSize.json()).error.param, 'size')
    })

    it('transcribes a multipart upload in each response format', async () => {
      const wav = wavFromPcm(tonePcm(2000))
      const res = await openai.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(wav, 'speech.wav'), language: 'en' })
      assert.equal(res.text, TRANSCRIPT)
      assertSameShape(res, fixtureJson('openai', 'transcription-duration.json'))
      const { task } = tasks.last
      assert.equal(task.kind, 'transcribe')
      assert.deepEqual(task.input, { audio: wav.toString('base64'), mime: 'audio/wav', language: 'en' })

      const text = await openai.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(wav, 'speech.wav'), response_format: 'text' })
      assert.equal(String(text).trim(), TRANSCRIPT)
      const verbose: any = await openai.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(wav, 'speech.wav'), response_format: 'verbose_json' })
      assert.equal(verbose.text, TRANSCRIPT)
      assert.ok(Math.abs(verbose.duration - 2) < 0.01)
      assert.equal(verbose.segments.length, 1)

      const json = await post(`${url}/v1/audio/transcriptions`, { model: 'whisper-1' })
      assert.equal(json.status, 400)
      assert.match((await json.json()).error.message, /multipart\/form-data/)
      const form = new FormData()
      form.set('model', 'whisper-1')
      const noFile = await fetch(`${url}/v1/audio/transcriptions`, { method: 'POST', body: form })
      assert.equal(noFile.status, 400)
      assert.equal((await noFile.json()).error.code, 'missing_required_parameter')
    })

    it('speaks: audio bytes with their content type', async () => {
      const res = await openai.audio.speech.create({ model: 'tts-1', input: 'hello there', voice: 'alloy', response_format: 'wav', speed: 1.5 })
      assert.equal(res.headers.get('content-type'), 'audio/wav')
      const bytes = Buffer.from(await res.arrayBuffer())
      assert.equal(bytes.toString('ascii', 0, 4), 'RIFF')
      assert.deepEqual(tasks.last.task.input, { text: 'hello there', voice: 'alloy', format: 'wav', speed: 1.5 })
      const mp3 = await post(`${url}/v1/audio/speech`, fixtureJson('openai', 'speech-request.json') as any)
      assert.equal(mp3.status, 404, 'the fixture names a model the mesh lacks')
      const ok = await post(`${url}/v1/audio/speech`, { ...fixtureJson('openai', 'speech-request.json'), model: 'tts-1' })
      assert.equal(ok.headers.get('content-type'), 'audio/mpeg')
      assert.equal(Buffer.from(await ok.arrayBuffer()).length, silentMp3(200).length)
      const opus = await post(`${url}/v1/audio/speech`, { model: 'tts-1', input: 'x', voice: 'alloy', response_format: 'opus' })
      assert.equal(opus.status, 400)
      assert.equal((await opus.json()).error.param, 'response_format')
    })

    it('says what a bad speech voice should have been and what it was', async () => {
      const cases: Array<[unknown, string, string]> = [
        [5, "Invalid type for 'voice': expected a string or an object, but got an integer instead.", 'voice'],
        [{ id: 5 }, "Invalid type for 'voice.id': expected a string, but got an integer instead.", 'voice.id'],
        [{}, "Missing required parameter: 'voice.id'.", 'voice.id'],
        [undefined, "Missing required parameter: 'voice'.", 'voice']
      ]
      for (const [voice, message, param] of cases) {
        const res = await post(`${url}/v1/audio/speech`, { model: 'tts-1', input: 'x', voice })
        assert.equal(res.status, 400)
        const { error } = await res.json()
        assert.equal(error.message, message)
        assert.equal(error.param, param)
      }
    })

    it('answers an unknown model with a 404 before any streaming starts', async () => {
      const res = await post(`${url}/v1/chat/completions`, { model: 'nope', messages: [{ role: 'user', content: 'hi' }], stream: true })
      assert.equal(res.status, 404)
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
      const body = await res.json()
      assertSameShape(body, fixtureJson('openai', 'error.json'), OPENAI_ERROR)
      assert.deepEqual(body, { error: { message: 'The model `nope` does not exist or you do not have access to it.', type: 'invalid_request_error', param: null, code: 'model_not_found' } })
      await assert.rejects(openai.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }], stream: true }),
        (err: any) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found')
      const wrong = await post(`${url}/v1/chat/completions`, { model: 'text-embedding-3-small', messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(wrong.status, 404)
      assert.equal((await wrong.json()).error.param, 'model')
    })

    it('answers busy with a 429 and Retry-After, as OpenAI rate-limits', async () => {
      tasks.scripts.push({ type: 'throw', code: 'QUEUE_FULL', details: { retryAfterS: 3 } })
      await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), (err: any) => {
        assert.ok(err instanceof OpenAI.RateLimitError)
        assert.equal(err.status, 429)
        assert.equal(err.code, 'rate_limit_exceeded')
        assert.equal(err.headers.get('retry-after'), '3')
        return true
      })
      tasks.scripts.push({ type: 'reject', code: 'QUEUE_FULL' })
      const res = await post(`${url}/v1/chat/completions`, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true })
      assert.equal(res.status, 429)
      assert.ok(Number(res.headers.get('retry-after')) > 0)
      assertSameShape(await res.json(), fixtureJson('openai', 'error.json'), OPENAI_ERROR)
    })

    it('ends a stream that fails after tokens with an error event, which the client throws', async () => {
      tasks.scripts.push({ type: 'fail', tokens: ['Hel', 'lo'], code: 'BACKEND_ERROR', message: 'the model failed' })
      const res = await post(`${url}/v1/chat/completions`, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true })
      const events = parseSse(await res.text()) as any[]
      const last = events[events.length - 1]
      assertSameShape(last, fixtureJson('openai', 'error.json'), OPENAI_ERROR)
      assert.equal(last.error.message, 'the model failed')
      assert.equal(events.slice(0, -1).map(e => e.choices[0].delta.content ?? '').join(''), 'Hello')

      tasks.scripts.push({ type: 'fail', tokens: ['Hi'], code: 'BACKEND_ERROR', message: 'the model failed' })
      let text = ''
      await assert.rejects(async () => {
        const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true })
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
      }, (err: any) => err instanceof OpenAI.APIError && /the model failed/.test(err.message))
      assert.equal(text, 'Hi')

      tasks.scripts.push({ type: 'fail', tokens: [], code: 'BACKEND_ERROR', message: 'nothing came' })
      const early = await post(`${url}/v1/chat/completions`, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true })
      assert.equal(early.status, 500)
      assert.equal((await early.json()).error.type, 'server_error')
    })

    it('cancels the task of a client that aborts', async () => {
      tasks.scripts.push({ type: 'hang' })
      const from = tasks.submitted.length
      const abort = new AbortController()
      const pending = openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }, { signal: abort.signal })
      pending.catch(() => {})
      const submitted = await waitFor(() => tasks.submitted.slice(from).find(s => s.run.events.some(e => e.type === 'task.started')), 'a started task')
      assert.equal(submitted.run.cancelled, false)
      abort.abort()
      await assert.rejects(pending)
      await waitFor(() => submitted.run.cancelled, 'the task to be cancelled')
    })

    it('answers bad bodies with 400s in OpenAI\'s form', async () => {
      const cases: Array<[unknown, string | null, string | null]> = [
        ['{"model": ', null, null],
        [{ messages: [{ role: 'user', content: 'x' }] }, null, null],
        [{ model: 'gpt-4o-mini' }, 'messages', 'missing_required_parameter'],
        [{ model: 'gpt-4o-mini', messages: [] }, 'messages', 'empty_array'],
        [{ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 5 }] }, 'messages[0].content', 'invalid_type'],
        [{ model: 'gpt-4o-mini', messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role', 'invalid_value'],
        [{ model: 'gpt-4o-mini', messages: [{ role: 'user' }] }, 'messages[0].content', 'missing_required_parameter'],
        [{ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], temperature: 3 }, 'temperature', 'decimal_above_max_value'],
        [{ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, 'stream', 'invalid_type'],
        [{ model: 'gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'input_audio' }] }] }, 'messages[0].content[0].type', 'invalid_value']
      ]
      for (const [body, param, code] of cases) {
        const res = await post(`${url}/v1/chat/completions`, body)
        assert.equal(res.status, 400, JSON.stringify(body))
        const answer = await res.json()
        assertSameShape(answer, fixtureJson('openai', 'error.json'), OPENAI_ERROR)
        assert.equal(answer.error.type, 'invalid_request_error')
        assert.equal(answer.error.param, param, JSON.stringify(body))
        assert.equal(answer.error.code, code, JSON.stringify(body))
      }
      await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }), (err: any) => err instanceof OpenAI.BadRequestError)
      const huge = await post(`${url}/v1/images/generations`, { model: 'sd-v1-5', prompt: 'x'.repeat(2 * 1024 * 1024) })
      assert.equal(huge.status, 413)
    })
  })

  // -------------------------------------------------------------------------------------------
  describe('streamTask', () => {
    it('sends the headers of a stream that waits long, then streams on', async () => {
      const app = new Koa()
      app.use(async (ctx) => {
        const run = await startTask(ctx, tasks, { kind: 'generate', model: 'llama3.2:latest', input: { prompt: 'x' } })
        await streamTask(ctx, run, sseFormat({ id: 'chatcmpl-x', created: 1, model: 'm' }, false), 50)
      })
      const server = app.listen(0, '127.0.0.1')
      try {
        await new Promise(resolve => server.once('listening', resolve))
        const { port } = server.address() as AddressInfo
        tasks.scripts.push({ type: 'hang' })
        const from = tasks.submitted.length
        // the headers arrive while the task has produced nothing
        const res = await fetch(`http://127.0.0.1:${port}/`)
        assert.equal(res.status, 200)
        const { run } = tasks.submitted[from]
        run.emit({ type: 'task.token', id: run.id, text: 'late' })
        run.done({ text: 'late', doneReason: 'stop' })
        const chunks = parseSse(await res.text()) as any[]
        assert.deepEqual(chunks.map(c => c.choices[0].delta), [{ role: 'assistant', content: '' }, { content: 'late' }, {}])
      } finally {
        server.closeAllConnections()
        await new Promise(resolve => server.close(resolve))
      }
    })
  })

  // -------------------------------------------------------------------------------------------
  describe('requesterOf', () => {
    function fakeCtx (headers: Record<string, string>, remoteAddress = '::ffff:10.1.2.3', state: Record<string, unknown> = {}): Context {
      return { get: (name: string) => headers[name.toLowerCase()] ?? '', req: { socket: { remoteAddress } }, state } as unknown as Context
    }

    it('is the user, else a hash of the API key (never the key), else the address', () => {
      assert.equal(requesterOf(fakeCtx({}, '::ffff:10.1.2.3', { user: { id: 'u1' } })), 'user:u1')
      const a = requesterOf(fakeCtx({ authorization: 'Bearer sk-secret-a' }))
      const b = requesterOf(fakeCtx({ authorization: 'Bearer sk-secret-b' }))
      assert.match(a, /^key:[0-9a-f]{32}$/)
      assert.notEqual(a, b)
      assert.equal(a, requesterOf(fakeCtx({ authorization: 'bearer sk-secret-a' }, '192.168.1.1')))
      assert.ok(!a.includes('secret'))
      assert.equal(requesterOf(fakeCtx({})), 'addr:10.1.2.3')
      assert.equal(requesterOf(fakeCtx({ authorization: 'Basic abc' }, '::1')), 'addr:::1')
    })
  })
})
