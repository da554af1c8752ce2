import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createEventBus } from '../../node/events/index.js'
import type { RealmEvent } from '../../node/events/index.js'
import { Bucket, openDb } from '../../node/db/index.js'
import { defaultConfig } from '../../node/config/spec.js'
import {
  SpendRecordSchema, UnsupportedBackendError, billableUsage, createWorker, taskCost, legacyPrompt, memorySpendStore, paidInitFromConfig, parseWorkerSpec, utcDay
} from '../../node/workers/index.js'
import type { RunContext, Worker, WorkerInit } from '../../node/workers/index.js'
import type { TaskKind } from '../../protocol/kinds.js'
import type { TaskSpec, WorkerEvent } from '../../protocol/task.js'
import {
  DEFAULT_REPLY, DEFAULT_TRANSCRIPT, readSolidPng, solidPng, startA1111Standin, startAgentStandin, startAnthropicStandin,
  startHfStandin, startOllamaStandin, startOpenAIStandin, tonePcm, wavDurationSeconds, wavFromPcm
} from '../standins/index.js'
import type { GenerationRequest, Standin } from '../standins/index.js'
import { waitFor } from '../helpers/wait.js'

/** a real 2×2 PNG, as a vision task carries it */
const PNG_B64 = solidPng(2, 2, [255, 0, 0]).toString('base64')
const CLAUDE_MODEL = 'claude-sonnet-4-20250514'
const HF_CHAT = 'meta-llama/Llama-3.1-8B-Instruct'
const HF_EMBED = 'BAAI/bge-small-en-v1.5'
const HF_IMAGE = 'stabilityai/stable-diffusion-xl-base-1.0'
const ANTHROPIC_KEY = 'sk-ant-test-SECRET-4c1d'
const HF_KEY = 'hf_test_SECRET_77e2'
/** probes that never come by themselves during a test */
const QUIET: WorkerInit = { probeIntervalMs: 60_000, probeTimeoutMs: 2000 }

let taskCounter = 0
function task<K extends TaskKind> (kind: K, model: string, input: unknown, options?: TaskSpec['options']): TaskSpec & { kind: K } {
  return { id: `task-${String(++taskCounter).padStart(6, '0')}`, kind, model, input, ...(options !== undefined ? { options } : {}) } as TaskSpec & { kind: K }
}

/** a run context that records every event */
function recorder (): { ctx: RunContext, events: WorkerEvent[], controller: AbortController, tokens: () => string } {
  const controller = new AbortController()
  const events: WorkerEvent[] = []
  return {
    ctx: { signal: controller.signal, emit: e => { events.push(e) } },
    events,
    controller,
    tokens: () => events.filter((e): e is WorkerEvent & { type: 'token' } => e.type === 'token').map(e => e.text).join('')
  }
}

/** asserts a run rejects with `code` (and the error's name), returning the error */
async function rejectsWith (promise: Promise<unknown>, code: string, name?: string): Promise<any> {
  let caught: any
  await assert.rejects(promise, (err: any) => {
    caught = err
    assert.equal(err.code, code, `expected ${code}, got ${String(err.code)}: ${String(err.message)}`)
    if (name !== undefined) assert.equal(err.name, name)
    return true
  })
  return caught
}

function chat (model: string, content = 'Why is the sky blue?', options?: TaskSpec['options']): TaskSpec {
  return task('chat', model, { messages: [{ role: 'user', content }] }, options)
}

function isPng (data: string): boolean {
  return Buffer.from(data, 'base64').subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
}

describe('worker runs', function () {
  this.timeout(20_000)

  const standins: Standin[] = []
  const workers: Worker[] = []
  const closers: Array<() => Promise<void>> = []
  afterEach(async () => {
    await Promise.all(workers.map(async w => { await w.stop() }))
    await Promise.all(standins.map(async s => { await s.close() }))
    await Promise.all(closers.map(async c => { await c() }))
    workers.length = 0
    standins.length = 0
    closers.length = 0
  })
  function track<T extends Worker> (w: T): T {
    workers.push(w)
    return w
  }
  async function up<T extends Standin> (s: Promise<T>): Promise<T> {
    const standin = await s
    standins.push(standin)
    return standin
  }
  function lastBody (s: Standin, p: string): any {
    const r = s.requestsTo(p)
    assert.ok(r.length > 0, `no request to ${p}`)
    return r[r.length - 1].body
  }

  describe('ollama', () => {
    it('chat streams exactly the reply as tokens, with usage and done reason', async () => {
      const ollama = await up(startOllamaStandin({ tokenDelayMs: 1 }))
      const worker = track(createWorker({ backend: 'ollama', target: ollama.url }, QUIET))
      const r = recorder()
      const out = await worker.run(chat('llama3.2:1b'), r.ctx)
      assert.equal(r.tokens(), DEFAULT_REPLY)
      assert.ok(r.events.filter(e => e.type === 'token').length > 1, 'streamed, not one piece')
      assert.equal(out.text, DEFAULT_REPLY)
      assert.equal(out.doneReason, 'stop')
      assert.equal(out.usage?.completionTokens, 8)
      assert.ok((out.usage?.promptTokens ?? 0) > 0)
      assert.equal(out.usage?.units, (out.usage?.promptTokens ?? 0) + 8)
      assert.equal(lastBody(ollama, '/api/chat').stream, true)
    })

    it('chat sends images to a vision model and maps the options', async () => {
      const seen: GenerationRequest[] = []
      const ollama = await up(startOllamaStandin({ reply: req => { seen.push(req); return 'A red square.' } }))
      const worker = track(createWorker({ backend: 'ollama', target: ollama.url }, QUIET))
      const r = recorder()
      const out = await worker.run(task('chat', 'llava:7b', {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'What is this?', images: [PNG_B64] }
        ]
      }, { temperature: 0.2, topP: 0.9, topK: 40, maxTokens: 64, seed: 7, stop: ['\n\n'], json: true }), r.ctx)
      assert.equal(out.text, 'A red square.')
      assert.deepEqual(seen[0].images, [PNG_B64])
      const body = lastBody(ollama, '/api/chat')
      assert.deepEqual(body.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is this?', images: [PNG_B64] }])
      assert.deepEqual(body.options, { temperature: 0.2, top_p: 0.9, top_k: 40, num_predict: 64, seed: 7, stop: ['\n\n'] })
      assert.equal(body.format, 'json')
    })

    it('generate sends prompt, system and images; num_predict cuts with done reason "length"', async () => {
      const ollama = await up(startOllamaStandin())
      const worker = track(createWorker({ backend: 'ollama', target: ollama.url }, QUIET))
      const r = recorder()
      const out = await worker.run(task('generate', 'llava:7b', { prompt: 'Describe', system: 'You see.', images: [PNG_B64] }, { maxTokens: 3, seed: -1 }), r.ctx)
      assert.equal(out.text, 'The sky is')
      assert.equal(r.tokens(), 'The sky is')
      assert.equal(out.doneReason, 'length')
      const body = lastBody(ollama, '/api/generate')
      assert.equal(body.prompt, 'Describe')
      assert.equal(body.system, 'You see.')
      assert.deepEqual(body.images, [PNG_B64])
      assert.deepEqual(body.options, { num_predict: 3 }, 'seed -1 (random) is left out')
    })

    it('embed answers one vector per input, with usage', async () => {
      const ollama = await up(startOllamaStandin())
      const worker = track(createWorker({ backend: 'ollama', target: ollama.url }, QUIET))
      const out = await worker.run(task('embed', 'nomic-embed-text', { input: ['one', 'two words'] }), recorder().ctx)
      assert.equal(out.embeddings?.length, 2)
      assert.equal(out.embeddings?.[0].length, 16)
      assert.equal(out.usage?.promptTokens, 3)
      assert.deepEqual(lastBody(ollama, '/api/embed'), { model: 'nomic-embed-text', input: ['one', 'two words'] })
      const single = await worker.run(task('embed', 'nomic-embed-text', { input: 'one' }), recorder().ctx)
      assert.deepEqual(single.embeddings?.[0], out.embeddings?.[0])
    })

    it('an unknown model is MODEL_NOT_FOUND; a kind Ollama does not run is INVALID_TASK', async () => {
      const ollama = await up(startOllamaStandin())
      const worker = track(createWorker({ backend: 'ollama', target: ollama.url }, QUIET))
      const err = await rejectsWith(worker.run(chat('nope:1b'), recorder().ctx), 'MODEL_NOT_FOUND', 'ModelNotFoundError')
      assert.match(err.message, /nope/)
      await rejectsWith(worker.run(task('imagine', 'llama3.2:1b', { prompt: 'x' }), recorder().ctx), 'INVALID_TASK', 'InvalidTaskError')
      assert.equal(ollama.requestsTo('/api/generate').length, 0)
    })
  })

  describe('openai', () => {
    const MODELS = ['llama-3.2-1b-instruct', 'text-embedding-3-small', 'whisper-1', 'tts-1', 'dall-e-2', 'gpt-image-1']

    it('chat streams SSE tokens exactly, asks for the usage chunk, maps options', async () => {
      const openai = await up(startOpenAIStandin({ models: MODELS, tokenDelayMs: 1 }))
      const worker = track(createWorker({ backend: 'openai', target: openai.url }, QUIET))
      const r = recorder()
      const out = await worker.run(chat('llama-3.2-1b-instruct', 'hi', { temperature: 3, topP: 0.5, topK: 20, maxTokens: 100, seed: 3, stop: ['END'], json: true }), r.ctx)
      assert.equal(r.tokens(), DEFAULT_REPLY)
      assert.equal(out.text, DEFAULT_REPLY)
      assert.equal(out.doneReason, 'stop')
      assert.equal(out.usage?.completionTokens, 8)
      assert.equal(out.usage?.promptTokens, 1)
      const body = lastBody(openai, '/v1/chat/completions')
      assert.equal(body.stream, true)
      assert.deepEqual(body.stream_options, { include_usage: true })
      assert.equal(body.temperature, 2, 'clamped to OpenAI\'s range')
      assert.equal(body.top_p, 0.5)
      assert.equal(body.top_k, 20, 'sent to a server that is not OpenAI itself')
      assert.equal(body.max_tokens, 100)
      assert.equal(body.seed, 3)
      assert.deepEqual(body.stop, ['END'])
      assert.deepEqual(body.response_format, { type: 'json_object' })
    })

    it('generate is one user message after the system message; images travel as data URLs', async () => {
      const seen: GenerationRequest[] = []
      const openai = await up(startOpenAIStandin({ models: MODELS, reply: req => { seen.push(req); return 'ok' } }))
      const worker = track(createWorker({ backend: 'openai', target: `${openai.url}/v1` }, QUIET))
      const out = await worker.run(task('generate', 'llama-3.2-1b-instruct', { prompt: 'Look', system: 'Sys', images: [PNG_B64] }, { maxTokens: 1 }), recorder().ctx)
      assert.equal(out.text, 'ok')
      const body = lastBody(openai, '/v1/chat/completions')
      assert.deepEqual(body.messages, [
        { role: 'system', content: 'Sys' },
        { role: 'user', content: [{ type: 'text', text: 'Look' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_B64}` } }] }
      ])
      assert.deepEqual(seen[0].images, [PNG_B64])
    })

    it('embed, transcribe (multipart) and speak (audio bytes, default voice)', async () => {
      const openai = await up(startOpenAIStandin({ models: MODELS }))
      const worker = track(createWorker({ backend: 'openai', target: openai.url }, QUIET))
      const emb = await worker.run(task('embed', 'text-embedding-3-small', { input: ['a', 'b', 'c'] }), recorder().ctx)
      assert.equal(emb.embeddings?.length, 3)
      assert.equal(emb.usage?.promptTokens, 3)

      const wav = wavFromPcm(tonePcm(1000))
      const rt = recorder()
      const tr = await worker.run(task('transcribe', 'whisper-1', { audio: wav.toString('base64'), mime: 'audio/wav', language: 'en', phrases: ['computer', 'imagine'] }), rt.ctx)
      assert.equal(tr.text, DEFAULT_TRANSCRIPT)
      assert.equal(rt.tokens(), DEFAULT_TRANSCRIPT)
      assert.equal(tr.usage?.units, 1, 'whisper reports seconds')
      const form = lastBody(openai, '/v1/audio/transcriptions')
      assert.equal(form.fields.model, 'whisper-1')
      assert.equal(form.fields.language, 'en')
      assert.equal(form.fields.prompt, 'computer, imagine')
      assert.equal(form.files[0].field, 'file')
      assert.equal(form.files[0].filename, 'audio.wav')
      assert.ok(form.files[0].data.equals(wav), 'the audio bytes reach the backend')

      const rs = recorder()
      const sp = await worker.run(task('speak', 'tts-1', { text: 'Hello there', format: 'wav' }), rs.ctx)
      assert.equal(sp.audio?.mime, 'audio/wav')
      const audio = Buffer.from(sp.audio?.data ?? '', 'base64')
      assert.ok((wavDurationSeconds(audio) ?? 0) > 0, 'a playable WAV')
      assert.deepEqual(rs.events, [{ type: 'audio', audio: sp.audio }])
      assert.equal(lastBody(openai, '/v1/audio/speech').voice, 'alloy')
      const mp3 = await worker.run(task('speak', 'tts-1', { text: 'Hi', voice: 'nova' }), recorder().ctx)
      assert.equal(mp3.audio?.mime, 'audio/mpeg')
      assert.equal(lastBody(openai, '/v1/audio/speech').voice, 'nova')
      assert.equal(lastBody(openai, '/v1/audio/speech').response_format, 'mp3')
    })

    it('imagine with a dall-e model asks for b64_json and decodes PNGs', async () => {
      const openai = await up(startOpenAIStandin({ models: MODELS }))
      const worker = track(createWorker({ backend: 'openai', target: openai.url }, QUIET))
      const r = recorder()
      const out = await worker.run(task('imagine', 'dall-e-2', { prompt: 'a red fox', width: 256, height: 256, count: 2 }), r.ctx)
      assert.equal(out.images?.length, 2)
      for (const image of out.images ?? []) {
        assert.equal(image.mime, 'image/png')
        assert.deepEqual({ width: readSolidPng(Buffer.from(image.data, 'base64')).width, height: readSolidPng(Buffer.from(image.data, 'base64')).height }, { width: 256, height: 256 })
      }
      assert.deepEqual(r.events.map(e => e.type), ['image', 'image'])
      assert.deepEqual(lastBody(openai, '/v1/images/generations'), { model: 'dall-e-2', prompt: 'a red fox', n: 2, size: '256x256', response_format: 'b64_json' })
      // gpt-image models answer base64 always and refuse response_format
      const gpt = await worker.run(task('imagine', 'gpt-image-1', { prompt: 'x' }), recorder().ctx)
      assert.ok(isPng(gpt.images?.[0].data ?? ''))
      assert.equal(lastBody(openai, '/v1/images/generations').response_format, undefined)
      assert.ok((gpt.usage?.promptTokens ?? 0) > 0)
    })

    it('an unknown model is MODEL_NOT_FOUND', async () => {
      const openai = await up(startOpenAIStandin({ models: MODELS }))
      const worker = track(createWorker({ backend: 'openai', target: openai.url }, QUIET))
      await rejectsWith(worker.run(chat('gpt-9'), recorder().ctx), 'MODEL_NOT_FOUND')
      await rejectsWith(worker.run(task('embed', 'nope-embed', { input: 'x' }), recorder().ctx), 'MODEL_NOT_FOUND')
    })
  })

  describe('sd (AUTOMATIC1111)', () => {
    it('imagine maps the input, streams progress, returns decoded PNGs and the seed', async () => {
      const sd = await up(startA1111Standin({ tokenDelayMs: 25 }))
      const worker = track(createWorker({ backend: 'sd', target: sd.url }, QUIET))
      const r = recorder()
      const out = await worker.run(task('imagine', 'sd_xl_base_1.0', {
        prompt: 'a lighthouse', negativePrompt: 'fog', width: 64, height: 80, steps: 40, cfgScale: 6.5, seed: 0x010203, sampler: 'Euler a', count: 2
      }), r.ctx)
      const progress = r.events.filter(e => e.type === 'progress')
      assert.ok(progress.length >= 1, 'progress while it runs')
      for (const p of progress) {
        if (p.type !== 'progress') continue
        assert.ok(p.fraction > 0 && p.fraction <= 1)
        assert.equal(p.steps, 40)
      }
      assert.deepEqual(r.events.slice(-2).map(e => e.type), ['image', 'image'])
      assert.equal(out.images?.length, 2)
      assert.deepEqual(readSolidPng(Buffer.from(out.images?.[0].data ?? '', 'base64')), { width: 64, height: 80, rgb: [0x03, 0x02, 0x01] })
      assert.equal(out.images?.[0].mime, 'image/png')
      assert.equal(out.seed, 0x010203)
      assert.equal(out.usage?.units, 2)
      const body = lastBody(sd, '/sdapi/v1/txt2img')
      assert.deepEqual(body, {
        prompt: 'a lighthouse',
        negative_prompt: 'fog',
        seed: 0x010203,
        batch_size: 2,
        override_settings: { sd_model_checkpoint: 'sd_xl_base_1.0' },
        steps: 40,
        cfg_scale: 6.5,
        width: 64,
        height: 80,
        sampler_name: 'Euler a'
      })
      assert.equal(sd.requestsTo('/sdapi/v1/progress')[0].query.skip_current_image, 'true')
    })

    it('cancel interrupts the job and closes the request', async () => {
      const sd = await up(startA1111Standin({ tokenDelayMs: 50 }))
      const worker = track(createWorker({ backend: 'sd', target: sd.url }, QUIET))
      const r = recorder()
      const run = worker.run(task('imagine', 'v1-5-pruned-emaonly', { prompt: 'slow', width: 64, height: 64, steps: 150 }), r.ctx)
      await waitFor(() => r.events.some(e => e.type === 'progress'), 'a progress event')
      r.controller.abort()
      await rejectsWith(run, 'CANCELLED', 'TaskCancelledError')
      assert.equal(sd.requestsTo('/sdapi/v1/interrupt').length, 1, 'interrupt sent before the run rejects')
      await waitFor(() => sd.requestsTo('/sdapi/v1/txt2img')[0].outcome === 'client-closed', 'the stand-in to see the connection close')
    })

    it('an unknown checkpoint is MODEL_NOT_FOUND; a cut during the job is BACKEND_ERROR with partial', async () => {
      const sd = await up(startA1111Standin({ tokenDelayMs: 30 }))
      const worker = track(createWorker({ backend: 'sd', target: sd.url }, QUIET))
      await rejectsWith(worker.run(task('imagine', 'nope', { prompt: 'x' }), recorder().ctx), 'MODEL_NOT_FOUND')
      const r = recorder()
      const run = worker.run(task('imagine', 'v1-5-pruned-emaonly', { prompt: 'x', width: 64, height: 64, steps: 100 }), r.ctx)
      await waitFor(() => r.events.some(e => e.type === 'progress'), 'a progress event')
      sd.killMidStream(0)
      const err = await rejectsWith(run, 'BACKEND_ERROR', 'BackendError')
      assert.equal(err.details.partial, true)
    })

    it('refused is BACKEND_UNREACHABLE; a hung job is TIMEOUT', async () => {
      const sd = await up(startA1111Standin())
      const worker = track(createWorker({ backend: 'sd', target: sd.url }, { ...QUIET, idleTimeoutMs: 300 }))
      await sd.setMode('hang')
      await rejectsWith(worker.run(task('imagine', 'v1-5-pruned-emaonly', { prompt: 'x' }), recorder().ctx), 'TIMEOUT')
      await sd.setMode('down')
      await rejectsWith(worker.run(task('imagine', 'v1-5-pruned-emaonly', { prompt: 'x' }), recorder().ctx), 'BACKEND_UNREACHABLE')
    })
  })

  describe('claude (Anthropic)', () => {
    it('streams Messages API events into tokens and usage; system on top, images as base64 blocks, headers', async () => {
      const seen: GenerationRequest[] = []
      const anthropic = await up(startAnthropicStandin({ apiKey: ANTHROPIC_KEY, tokenDelayMs: 1, reply: req => { seen.push(req); return DEFAULT_REPLY } }))
      const worker = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: { ANTHROPIC_API_KEY: ANTHROPIC_KEY } }))
      const r = recorder()
      const out = await worker.run(task('chat', CLAUDE_MODEL, {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'What is this?', images: [PNG_B64] },
          { role: 'assistant', content: 'A square.' },
          { role: 'user', content: 'Colour?' }
        ]
      }, { temperature: 1.5, topP: 0.8, topK: 5, stop: ['STOP'] }), r.ctx)
      assert.equal(r.tokens(), DEFAULT_REPLY)
      assert.equal(out.text, DEFAULT_REPLY)
      assert.equal(out.doneReason, 'stop')
      assert.equal(out.usage?.completionTokens, 8, 'output_tokens of message_delta')
      assert.ok((out.usage?.promptTokens ?? 0) > 0, 'input_tokens of message_start')
      const req = anthropic.requestsTo('/v1/messages')[0]
      assert.equal(req.headers['x-api-key'], ANTHROPIC_KEY)
      assert.equal(req.headers['anthropic-version'], '2023-06-01')
      assert.equal(req.headers.authorization, undefined)
      const body = req.body as any
      assert.equal(body.stream, true)
      assert.equal(body.system, 'Be brief.')
      assert.equal(body.max_tokens, 4096, 'max_tokens is required: the default')
      assert.equal(body.temperature, 1, 'clamped to Anthropic\'s 0..1')
      assert.equal(body.top_p, 0.8)
      assert.equal(body.top_k, 5)
      assert.deepEqual(body.stop_sequences, ['STOP'])
      assert.deepEqual(body.messages[0], {
        role: 'user',
        content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } }, { type: 'text', text: 'What is this?' }]
      })
      assert.deepEqual(body.messages.slice(1), [{ role: 'assistant', content: 'A square.' }, { role: 'user', content: 'Colour?' }])
      assert.deepEqual(seen[0].images, [PNG_B64])
    })

    it('generate; max_tokens reached is done reason "length"; lists models from GET /v1/models', async () => {
      const anthropic = await up(startAnthropicStandin())
      const worker = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: { ANTHROPIC_API_KEY: 'any-key' } }))
      const out = await worker.run(task('generate', CLAUDE_MODEL, { prompt: 'Go', system: 'Sys' }, { maxTokens: 2 }), recorder().ctx)
      assert.equal(out.text, 'The sky')
      assert.equal(out.doneReason, 'length')
      const body = lastBody(anthropic, '/v1/messages')
      assert.equal(body.system, 'Sys')
      assert.deepEqual(body.messages, [{ role: 'user', content: 'Go' }])
      assert.equal(body.max_tokens, 2)
      const status = await worker.probe()
      assert.equal(status.state, 'ok', status.lastError)
      assert.deepEqual(status.models.map(m => [m.name, m.kinds, m.vision]), [
        ['claude-3-5-haiku-20241022', ['chat', 'generate'], true],
        [CLAUDE_MODEL, ['chat', 'generate'], true]
      ])
      assert.equal(anthropic.requestsTo('/v1/models')[0].query.limit, '1000')
    })

    it('an unknown model is MODEL_NOT_FOUND; an error event mid-stream is BACKEND_ERROR with partial', async () => {
      const anthropic = await up(startAnthropicStandin())
      const worker = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: { ANTHROPIC_API_KEY: 'k' } }))
      await rejectsWith(worker.run(chat('claude-9'), recorder().ctx), 'MODEL_NOT_FOUND')
      anthropic.overloadMidStream(3)
      const r = recorder()
      const err = await rejectsWith(worker.run(chat(CLAUDE_MODEL), r.ctx), 'BACKEND_ERROR')
      assert.match(err.message, /overloaded_error/)
      assert.equal(err.details.partial, true)
      assert.equal(r.tokens(), 'The sky is')
    })

    it('takes its key from the URL, else ANTHROPIC_API_KEY, else config; without one the probe says what to do', async () => {
      const anthropic = await up(startAnthropicStandin({ apiKey: ANTHROPIC_KEY }))
      const withUrl = `claude=${anthropic.url.replace('http://', `http://:${ANTHROPIC_KEY}@`)}`
      const fromUrl = track(createWorker(parseWorkerSpec(withUrl), { ...QUIET, env: { ANTHROPIC_API_KEY: 'env-key-wrong' }, paid: { claude: { apiKey: 'cfg-key-wrong' } } }))
      assert.equal((await fromUrl.probe()).state, 'ok')
      const fromEnv = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: { ANTHROPIC_API_KEY: ANTHROPIC_KEY }, paid: { claude: { apiKey: 'cfg-key-wrong' } } }))
      assert.equal((await fromEnv.probe()).state, 'ok')
      const config = defaultConfig()
      config.paid.claude_api_key = ANTHROPIC_KEY
      const fromConfig = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: {}, paid: paidInitFromConfig(config) }))
      assert.equal((await fromConfig.probe()).state, 'ok')
      const none = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: {} }))
      const status = await none.probe()
      assert.equal(status.failures, 1)
      assert.match(status.lastError ?? '', /401.*x-api-key header is required/)
    })
  })

  describe('hf (HuggingFace)', () => {
    const spec = (url: string): string => `hf=${url}#${HF_CHAT},embed=${HF_EMBED},imagine=${HF_IMAGE}`

    it('chat streams through the router; embed and imagine go to the task API', async () => {
      const hf = await up(startHfStandin({ apiKey: HF_KEY, tokenDelayMs: 1 }))
      const worker = track(createWorker(parseWorkerSpec(spec(hf.url)), { ...QUIET, env: { HF_TOKEN: HF_KEY } }))
      const status = await worker.probe()
      assert.equal(status.state, 'ok', status.lastError)
      assert.deepEqual(status.models.map(m => [m.name, m.kinds]), [[HF_EMBED, ['embed']], [HF_CHAT, ['chat', 'generate']], [HF_IMAGE, ['imagine']]])

      const r = recorder()
      const out = await worker.run(chat(HF_CHAT, 'hi', { maxTokens: 50, topK: 3 }), r.ctx)
      assert.equal(r.tokens(), DEFAULT_REPLY)
      assert.equal(out.usage?.completionTokens, 8)
      const body = lastBody(hf, '/v1/chat/completions')
      assert.equal(body.max_tokens, 50)
      assert.equal(body.top_k, undefined, 'not in the router\'s parameters')
      assert.equal(hf.requestsTo('/v1/chat/completions')[0].headers.authorization, `Bearer ${HF_KEY}`)
      await worker.run(task('chat', HF_CHAT, { messages: [{ role: 'user', content: 'What is it?', images: [PNG_B64] }] }), recorder().ctx)
      assert.deepEqual(lastBody(hf, '/v1/chat/completions').messages[0].content[1], { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_B64}` } })

      const emb = await worker.run(task('embed', HF_EMBED, { input: ['Today is a sunny day', 'x'] }), recorder().ctx)
      assert.equal(emb.embeddings?.length, 2)
      assert.ok((emb.usage?.promptTokens ?? 0) > 0, 'estimated from the text')
      assert.deepEqual(lastBody(hf, `/hf-inference/models/${HF_EMBED}/pipeline/feature-extraction`), { inputs: ['Today is a sunny day', 'x'] })

      const ri = recorder()
      const img = await worker.run(task('imagine', HF_IMAGE, { prompt: 'Astronaut riding a horse', width: 96, height: 64, steps: 20, cfgScale: 5, negativePrompt: 'blur', seed: 42, count: 2 }), ri.ctx)
      assert.equal(img.images?.length, 2)
      assert.deepEqual(readSolidPng(Buffer.from(img.images?.[1].data ?? '', 'base64')), { width: 96, height: 64, rgb: [43, 0, 0] })
      assert.deepEqual(ri.events.map(e => e.type), ['image', 'image'])
      assert.deepEqual(lastBody(hf, `/hf-inference/models/${HF_IMAGE}`), {
        inputs: 'Astronaut riding a horse',
        parameters: { negative_prompt: 'blur', width: 96, height: 64, num_inference_steps: 20, guidance_scale: 5, seed: 43 }
      })
    })

    it('unknown models are MODEL_NOT_FOUND on the router and on the task API', async () => {
      const hf = await up(startHfStandin())
      const worker = track(createWorker(parseWorkerSpec(spec(hf.url)), { ...QUIET, env: { HF_TOKEN: HF_KEY } }))
      await rejectsWith(worker.run(chat('moonshotai/Kimi-K2-Instruct'), recorder().ctx), 'MODEL_NOT_FOUND')
      await rejectsWith(worker.run(task('embed', 'nobody/nothing', { input: 'x' }), recorder().ctx), 'MODEL_NOT_FOUND')
      await rejectsWith(worker.run(task('imagine', 'nobody/nothing', { prompt: 'x' }), recorder().ctx), 'MODEL_NOT_FOUND')
    })

    it('a target ending in /v1 reaches the router and the task API alike', async () => {
      const hf = await up(startHfStandin())
      const worker = track(createWorker(parseWorkerSpec(`hf=${hf.url}/v1#${HF_CHAT},embed=${HF_EMBED}`), { ...QUIET, env: {} }))
      assert.equal((await worker.probe()).state, 'ok')
      assert.equal((await worker.run(chat(HF_CHAT), recorder().ctx)).text, DEFAULT_REPLY)
      assert.equal((await worker.run(task('embed', HF_EMBED, { input: 'x' }), recorder().ctx)).embeddings?.length, 1)
      assert.equal(worker.status().target, `${hf.url}/v1`)
    })

    it('serves the models of config paid.hf_models when the spec names none; none at all fails the probe', async () => {
      const hf = await up(startHfStandin())
      const config = defaultConfig()
      config.paid.hf_models = [HF_CHAT, `embed=${HF_EMBED}`, 'bad model name ']
      const worker = track(createWorker(parseWorkerSpec(`hf=${hf.url}`), { ...QUIET, env: {}, paid: paidInitFromConfig(config) }))
      assert.deepEqual((await worker.probe()).models.map(m => m.name), [HF_EMBED, HF_CHAT])
      const bare = track(createWorker(parseWorkerSpec(`hf=${hf.url}`), { ...QUIET, env: {} }))
      const status = await bare.probe()
      assert.equal(status.failures, 1)
      assert.match(status.lastError ?? '', /no models configured/)
    })
  })

  describe('agent', () => {
    it('realm contract: detected from /health, models from /models, NDJSON events for every kind', async () => {
      const agent = await up(startAgentStandin({ tokenDelayMs: 1 }))
      const worker = track(createWorker(parseWorkerSpec(`agent=${agent.url}`), QUIET))
      const status = await worker.probe()
      assert.deepEqual(status.models, [
        { name: 'echo-agent', kinds: ['chat', 'generate'], context: 8192 },
        { name: 'looker-agent', kinds: ['chat'], vision: true },
        { name: 'painter-agent', kinds: ['imagine'] },
        { name: 'utility-agent', kinds: ['transcribe', 'speak', 'embed'] }
      ])

      const r = recorder()
      const spec = chat('echo-agent', 'hi', { maxTokens: 100 })
      const out = await worker.run(spec, r.ctx)
      assert.equal(r.tokens(), DEFAULT_REPLY)
      assert.equal(out.text, DEFAULT_REPLY)
      assert.equal(out.usage?.completionTokens, 8)
      assert.deepEqual(lastBody(agent, '/task'), spec, 'the TaskSpec as it is')
      assert.match(String(agent.requestsTo('/task')[0].headers.accept), /application\/x-ndjson/)

      const ri = recorder()
      const img = await worker.run(task('imagine', 'painter-agent', { prompt: 'x', steps: 3, width: 64, height: 64 }), ri.ctx)
      assert.deepEqual(ri.events.map(e => e.type), ['progress', 'progress', 'progress', 'image'])
      assert.equal(readSolidPng(Buffer.from(img.images?.[0].data ?? '', 'base64')).width, 64)

      const emb = await worker.run(task('embed', 'utility-agent', { input: ['a', 'b'] }), recorder().ctx)
      assert.equal(emb.embeddings?.length, 2)
      const rs = recorder()
      const sp = await worker.run(task('speak', 'utility-agent', { text: 'hello' }), rs.ctx)
      assert.ok((wavDurationSeconds(Buffer.from(sp.audio?.data ?? '', 'base64')) ?? 0) > 0)
      assert.deepEqual(rs.events.map(e => e.type), ['audio'])

      await rejectsWith(worker.run(chat('ghost-agent'), recorder().ctx), 'MODEL_NOT_FOUND')
      await rejectsWith(worker.run(task('imagine', 'echo-agent', { prompt: 'x' }), recorder().ctx), 'INVALID_TASK')
    })

    it('realm contract: a whole JSON answer still reaches the client as events; /models alone marks the contract', async () => {
      const agent = await up(startAgentStandin({ stream: false, announce: false }))
      const worker = track(createWorker(parseWorkerSpec(`agent=${agent.url}#echo-agent`), QUIET))
      assert.deepEqual((await worker.probe()).models.map(m => m.name), ['echo-agent'], '#model keeps only that one')
      const r = recorder()
      const out = await worker.run(chat('echo-agent'), r.ctx)
      assert.equal(out.text, DEFAULT_REPLY)
      assert.deepEqual(r.events, [{ type: 'token', text: DEFAULT_REPLY }])
    })

    it('realm contract without /models: the spec names the model and its kinds', async () => {
      const agent = await up(startAgentStandin({ models: null }))
      const worker = track(createWorker(parseWorkerSpec(`agent=${agent.url}#chat+vision=my-agent`), QUIET))
      assert.deepEqual((await worker.probe()).models, [{ name: 'my-agent', kinds: ['chat', 'generate'], vision: true }])
      const out = await worker.run(chat('my-agent'), recorder().ctx)
      assert.equal(out.text, DEFAULT_REPLY)
    })

    it('original RentAHal contract: /predict with prompt, type, model_type, model_name, image; the 307 to /predict/ followed', async () => {
      const agent = await up(startAgentStandin({ contract: 'legacy', reply: req => `echo: ${req.prompt}` }))
      const worker = track(createWorker(parseWorkerSpec(`agent=${agent.url}#chat+vision=llava`), QUIET))
      assert.deepEqual((await worker.probe()).models, [{ name: 'llava', kinds: ['chat', 'generate'], vision: true }])

      const r = recorder()
      const out = await worker.run(chat('llava', 'Who was the first man on the moon?'), r.ctx)
      assert.equal(out.text, 'echo: Who was the first man on the moon?')
      assert.deepEqual(r.events, [{ type: 'token', text: out.text }])
      assert.equal(agent.requestsTo('/predict')[0].outcome, 'complete', 'the redirect')
      assert.deepEqual(lastBody(agent, '/predict/'), { prompt: 'Who was the first man on the moon?', type: 'chat', model_type: 'worker_node', model_name: 'llava' })

      await worker.run(task('chat', 'llava', { messages: [{ role: 'user', content: 'Describe this image in detail', images: [PNG_B64] }] }), recorder().ctx)
      assert.deepEqual(lastBody(agent, '/predict/'), { prompt: 'Describe this image in detail', type: 'vision', model_type: 'worker_node', model_name: 'llava', image: PNG_B64 })

      await worker.run(task('chat', 'llava', { messages: [
        { role: 'system', content: 'Be kind.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Bye' }
      ] }), recorder().ctx)
      assert.equal(lastBody(agent, '/predict/').prompt, 'Be kind.\n\nUser: Hi\nAssistant: Hello!\nUser: Bye\nAssistant:')

      await rejectsWith(worker.run(task('embed', 'llava', { input: 'x' }), recorder().ctx), 'INVALID_TASK')
    })

    it('original RentAHal contract: imagine answers a base64 image', async () => {
      const agent = await up(startAgentStandin({ contract: 'legacy' }))
      const worker = track(createWorker(parseWorkerSpec(`agent=${agent.url}#imagine=sd-worker`), QUIET))
      assert.deepEqual((await worker.probe()).models, [{ name: 'sd-worker', kinds: ['imagine'] }])
      const r = recorder()
      const out = await worker.run(task('imagine', 'sd-worker', { prompt: 'a castle' }), r.ctx)
      assert.equal(out.images?.[0].mime, 'image/png')
      assert.ok(isPng(out.images?.[0].data ?? ''))
      assert.deepEqual(r.events.map(e => e.type), ['image'])
      assert.deepEqual(lastBody(agent, '/predict/'), { prompt: 'a castle', type: 'imagine', model_type: 'worker_node', model_name: 'sd-worker' })
      // the 422 of a worker that wants an image it did not get is reported as it is
      await agent.setMode('error')
      const err = await rejectsWith(worker.run(task('imagine', 'sd-worker', { prompt: 'x' }), recorder().ctx), 'BACKEND_ERROR')
      assert.match(err.message, /Model prediction failed/)
    })

    it('legacyPrompt: one turn as it is, the system prompt first', () => {
      assert.equal(legacyPrompt(task('chat', 'm', { messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'Q' }] })), 'S\n\nQ')
      assert.equal(legacyPrompt(task('generate', 'm', { prompt: 'P' })), 'P')
    })
  })

  describe('failures, for every streaming backend', () => {
    interface Case {
      name: string
      start: (init: { tokenDelayMs?: number }) => Promise<Standin>
      worker: (url: string, init: WorkerInit) => Worker
      task: TaskSpec
      /** the path of the run's streaming request */
      path: string
    }
    const cases: Case[] = [
      {
        name: 'ollama',
        start: async init => await startOllamaStandin(init),
        worker: (url, init) => createWorker({ backend: 'ollama', target: url }, init),
        task: chat('llama3.2:1b'),
        path: '/api/chat'
      },
      {
        name: 'openai',
        start: async init => await startOpenAIStandin(init),
        worker: (url, init) => createWorker({ backend: 'openai', target: url }, init),
        task: chat('llama-3.2-1b-instruct'),
        path: '/v1/chat/completions'
      },
      {
        name: 'claude',
        start: async init => await startAnthropicStandin({ ...init, apiKey: ANTHROPIC_KEY }),
        worker: (url, init) => createWorker({ backend: 'claude', target: url }, { ...init, env: { ANTHROPIC_API_KEY: ANTHROPIC_KEY } }),
        task: chat(CLAUDE_MODEL),
        path: '/v1/messages'
      },
      {
        name: 'hf',
        start: async init => await startHfStandin(init),
        worker: (url, init) => createWorker(parseWorkerSpec(`hf=${url}#${HF_CHAT}`), { ...init, env: { HF_TOKEN: HF_KEY } }),
        task: chat(HF_CHAT),
        path: '/v1/chat/completions'
      },
      {
        name: 'agent',
        start: async init => await startAgentStandin(init),
        worker: (url, init) => createWorker(parseWorkerSpec(`agent=${url}`), init),
        task: chat('echo-agent'),
        path: '/task'
      }
    ]

    for (const c of cases) {
      describe(c.name, () => {
        it('cancel mid-stream closes the backend request and rejects CANCELLED', async () => {
          const standin = await up(c.start({ tokenDelayMs: 100 }))
          const worker = track(c.worker(standin.url, QUIET))
          if (c.name === 'agent') await worker.probe()
          const r = recorder()
          const run = worker.run(c.task, r.ctx)
          await waitFor(() => r.events.length > 0, 'the first token')
          r.controller.abort()
          await rejectsWith(run, 'CANCELLED', 'TaskCancelledError')
          const request = standin.requestsTo(c.path)[0]
          await waitFor(() => request.outcome === 'client-closed', 'the stand-in to see the connection close')
          const count = r.events.length
          assert.ok(count < 8, 'stopped before the end')
        })

        it('a backend killed mid-stream is BACKEND_ERROR with partial', async () => {
          const standin = await up(c.start({ tokenDelayMs: 1 }))
          const worker = track(c.worker(standin.url, QUIET))
          if (c.name === 'agent') await worker.probe()
          standin.killMidStream(2)
          const r = recorder()
          const err = await rejectsWith(worker.run(c.task, r.ctx), 'BACKEND_ERROR', 'BackendError')
          assert.equal(err.details.partial, true)
          assert.equal(r.tokens(), 'The sky', 'the tokens before the cut were streamed')
          await waitFor(() => standin.requestsTo(c.path)[0].outcome === 'cut', 'the stand-in to record its cut')
        })

        it('a refused connection is BACKEND_UNREACHABLE', async () => {
          const standin = await up(c.start({}))
          const worker = track(c.worker(standin.url, QUIET))
          if (c.name === 'agent') await worker.probe()
          await standin.setMode('down')
          const err = await rejectsWith(worker.run(c.task, recorder().ctx), 'BACKEND_UNREACHABLE', 'BackendUnreachableError')
          // refused, or a kept-alive connection the stand-in closed
          assert.match(err.message, /ECONNREFUSED|other side closed|socket/)
          assert.ok(!err.message.includes(standin.url), 'Node\'s reason, not the URL')
        })

        it('a backend that hangs is TIMEOUT after idleTimeoutMs', async () => {
          const standin = await up(c.start({}))
          const worker = track(c.worker(standin.url, { ...QUIET, idleTimeoutMs: 200 }))
          if (c.name === 'agent') await worker.probe()
          await standin.setMode('hang')
          const err = await rejectsWith(worker.run(c.task, recorder().ctx), 'TIMEOUT', 'TaskTimeoutError')
          assert.equal(err.details.partial, false)
          await waitFor(() => standin.requestsTo(c.path)[0]?.outcome === 'client-closed', 'the request closed')
        })
      })
    }

    it('a stream that stalls after some tokens is TIMEOUT with partial', async () => {
      const ollama = await up(startOllamaStandin({ tokenDelayMs: 10_000 }))
      const worker = track(createWorker({ backend: 'ollama', target: ollama.url }, { ...QUIET, idleTimeoutMs: 200 }))
      const r = recorder()
      const err = await rejectsWith(worker.run(chat('llama3.2:1b'), r.ctx), 'TIMEOUT')
      assert.equal(err.details.partial, true)
      assert.equal(r.tokens(), 'The')
    })

    it('a cut non-streamed answer (speech, images) is BACKEND_ERROR', async () => {
      const openai = await up(startOpenAIStandin({ models: ['tts-1', 'dall-e-2'] }))
      const worker = track(createWorker({ backend: 'openai', target: openai.url }, QUIET))
      openai.killMidStream(0)
      await rejectsWith(worker.run(task('speak', 'tts-1', { text: 'hello' }), recorder().ctx), 'BACKEND_ERROR')
      await rejectsWith(worker.run(task('imagine', 'dall-e-2', { prompt: 'x' }), recorder().ctx), 'BACKEND_ERROR')
    })

    it('an already cancelled task never reaches the backend', async () => {
      const ollama = await up(startOllamaStandin())
      const worker = track(createWorker({ backend: 'ollama', target: ollama.url }, QUIET))
      const r = recorder()
      r.controller.abort()
      await rejectsWith(worker.run(chat('llama3.2:1b'), r.ctx), 'CANCELLED')
      assert.equal(ollama.requests.length, 0)
    })

    it('a malformed task is INVALID_TASK', async () => {
      const ollama = await up(startOllamaStandin())
      const worker = track(createWorker({ backend: 'ollama', target: ollama.url }, QUIET))
      await rejectsWith(worker.run({ id: 'bad id!', kind: 'chat', model: 'x', input: { messages: [] } } as unknown as TaskSpec, recorder().ctx), 'INVALID_TASK')
    })

    it('a failed run makes the next probe come early, and never benches the worker by itself', async () => {
      const ollama = await up(startOllamaStandin())
      const worker = track(createWorker({ backend: 'ollama', target: ollama.url }, { ...QUIET, benchAfterFailures: 2 }))
      await worker.start()
      assert.equal(worker.status().state, 'ok')
      await ollama.setMode('down')
      await rejectsWith(worker.run(chat('llama3.2:1b'), recorder().ctx), 'BACKEND_UNREACHABLE')
      await waitFor(() => worker.status().failures === 1, 'an early probe (the interval is a minute)')
      const status = worker.status()
      assert.equal(status.state, 'ok', 'one run and one probe do not bench')
      assert.equal(status.models.length, 3)
      assert.match(status.lastError ?? '', /ECONNREFUSED/)
      // a model the backend does not have says nothing about its health
      await ollama.up()
      await worker.probe()
      await rejectsWith(worker.run(chat('nope:1b'), recorder().ctx), 'MODEL_NOT_FOUND')
      const probes = ollama.requestsTo('/api/tags').length
      await new Promise(resolve => setTimeout(resolve, 100))
      assert.equal(ollama.requestsTo('/api/tags').length, probes, 'no early probe after MODEL_NOT_FOUND')
    })

    it('stt and tts are not attached yet', () => {
      for (const spec of ['stt=pocketsphinx', 'tts=espeak-ng', 'stt=http://127.0.0.1:1']) {
        assert.throws(() => createWorker(parseWorkerSpec(spec)), (err: any) => err instanceof UnsupportedBackendError && err.code === 'UNSUPPORTED_BACKEND')
      }
    })
  })

  describe('daily spend cap', () => {
    /** one 8-token answer costs 0.6 USD at these prices */
    const PRICES = { inputUsdPerMTok: 0, outputUsdPerMTok: 75_000, dailyCapUsd: 1 }
    const DAY_MS = 24 * 60 * 60 * 1000

    it('claude stops serving past its cap, advertises no models, and serves again the next UTC day', async () => {
      const anthropic = await up(startAnthropicStandin())
      const store = memorySpendStore()
      let now = Date.UTC(2025, 5, 1, 23, 0, 0)
      const bus = createEventBus()
      const events: RealmEvent[] = []
      bus.subscribe(e => { if (e.type.startsWith('worker.')) events.push(e) })
      const worker = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: { ANTHROPIC_API_KEY: 'k' }, paid: { claude: PRICES }, spend: store, now: () => now, events: bus }))
      await worker.start()
      const changes: boolean[] = []
      worker.onChange(s => changes.push(s.spend?.capped ?? false))
      assert.equal(worker.status().models.length, 2)

      await worker.run(chat(CLAUDE_MODEL), recorder().ctx)
      assert.deepEqual(store.records.get('claude:2025-06-01'), { usd: 0.6, tasks: 1 })
      assert.equal(worker.status().spend?.capped, false)
      await worker.run(chat(CLAUDE_MODEL), recorder().ctx)
      assert.equal(store.records.get('claude:2025-06-01')?.tasks, 2)
      const capped = worker.status()
      assert.deepEqual(capped.spend, { day: '2025-06-01', usd: 1.2, capUsd: 1, capped: true })
      assert.deepEqual(capped.models, [], 'a capped worker advertises nothing')
      assert.deepEqual(capped.kinds, [])
      assert.equal(capped.state, 'ok', 'capped is not benched')
      assert.deepEqual(changes, [true])
      assert.ok(events.some(e => e.type === 'worker.spend' && e.capped === true))

      const requests = anthropic.requestsTo('/v1/messages').length
      const err = await rejectsWith(worker.run(chat(CLAUDE_MODEL), recorder().ctx), 'SPEND_CAP', 'SpendCapError')
      assert.equal(err.details.capUsd, 1)
      assert.equal(anthropic.requestsTo('/v1/messages').length, requests, 'refused before any request')

      // another worker of the same backend and store refuses too (the node's db store survives restarts)
      const twin = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: { ANTHROPIC_API_KEY: 'k' }, paid: { claude: PRICES }, spend: store, now: () => now }))
      await rejectsWith(twin.run(chat(CLAUDE_MODEL), recorder().ctx), 'SPEND_CAP')

      now += 2 * 60 * 60 * 1000 // 01:00 UTC the next day
      assert.equal(worker.status().spend?.capped, false)
      await worker.probe()
      assert.equal(worker.status().models.length, 2, 'models back the next day')
      assert.deepEqual(changes, [true, false])
      const out = await worker.run(chat(CLAUDE_MODEL), recorder().ctx)
      assert.equal(out.text, DEFAULT_REPLY)
      assert.deepEqual(store.records.get('claude:2025-06-02'), { usd: 0.6, tasks: 1 })
      assert.equal(utcDay(now + DAY_MS), '2025-06-03')
    })

    it('a cap of 0 refuses every task; hf counts images at its price per image', async () => {
      const hf = await up(startHfStandin())
      const store = memorySpendStore()
      const closed = track(createWorker(parseWorkerSpec(`hf=${hf.url}#${HF_CHAT}`), { ...QUIET, env: {}, paid: { hf: { dailyCapUsd: 0 } }, spend: store }))
      await rejectsWith(closed.run(chat(HF_CHAT), recorder().ctx), 'SPEND_CAP')
      assert.equal(hf.requestsTo('/v1/chat/completions').length, 0)

      const now = Date.UTC(2025, 0, 2, 12)
      const worker = track(createWorker(parseWorkerSpec(`hf=${hf.url}#imagine=${HF_IMAGE}`), { ...QUIET, env: {}, paid: { hf: { usdPerImage: 0.25, dailyCapUsd: 0.5 } }, spend: store, now: () => now }))
      await worker.run(task('imagine', HF_IMAGE, { prompt: 'x', width: 64, height: 64, count: 2 }), recorder().ctx)
      assert.deepEqual(store.records.get('hf:2025-01-02'), { usd: 0.5, tasks: 1 })
      await rejectsWith(worker.run(task('imagine', HF_IMAGE, { prompt: 'x' }), recorder().ctx), 'SPEND_CAP')
    })

    it('a backend that reports no usage is charged an estimate from the text; images by the piece', () => {
      const asked = task('chat', 'm', { messages: [{ role: 'user', content: 'x'.repeat(40) }] })
      assert.deepEqual(billableUsage(asked, { text: 'y'.repeat(20) }), { promptTokens: 10, completionTokens: 5 })
      assert.deepEqual(billableUsage(asked, { text: 'y', usage: { promptTokens: 3, completionTokens: 1 } }), { promptTokens: 3, completionTokens: 1 })
      assert.deepEqual(billableUsage(task('imagine', 'm', { prompt: 'a long prompt' }), { images: [] }), {})
      assert.equal(taskCost({ promptTokens: 1_000_000, completionTokens: 500_000 }, 2, { inputUsdPerMTok: 3, outputUsdPerMTok: 15, usdPerImage: 0.25 }), 3 + 7.5 + 0.5)
    })

    it('the db bucket `spend` is a spend store that survives a reopen', async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-spend-'))
      closers.push(async () => { await fs.rm(dir, { recursive: true, force: true }) })
      const anthropic = await up(startAnthropicStandin())
      const now = Date.UTC(2025, 2, 3, 4)
      let db = await openDb({ path: dir })
      try {
        const worker = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: { ANTHROPIC_API_KEY: 'k' }, paid: { claude: PRICES }, spend: db.bucket(Bucket.spend, SpendRecordSchema), now: () => now }))
        await worker.run(chat(CLAUDE_MODEL), recorder().ctx)
        await worker.run(chat(CLAUDE_MODEL), recorder().ctx)
      } finally {
        await db.close()
      }
      db = await openDb({ path: dir })
      try {
        assert.deepEqual(await db.bucket(Bucket.spend, SpendRecordSchema).get('claude:2025-03-03'), { usd: 1.2, tasks: 2 })
        const worker = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: { ANTHROPIC_API_KEY: 'k' }, paid: { claude: PRICES }, spend: db.bucket(Bucket.spend, SpendRecordSchema), now: () => now }))
        await rejectsWith(worker.run(chat(CLAUDE_MODEL), recorder().ctx), 'SPEND_CAP')
      } finally {
        await db.close()
      }
    })
  })

  describe('API keys never show', () => {
    function assertNoKey (key: string, ...things: unknown[]): void {
      for (const thing of things) {
        const text = thing instanceof Error ? `${thing.message} ${JSON.stringify((thing as any).details ?? {})} ${String(thing.stack)}` : JSON.stringify(thing)
        assert.ok(!text.includes(key), `the key shows in ${text.slice(0, 300)}`)
      }
    }

    it('claude: not in events, errors, status, target or bus events, whichever way the key came', async () => {
      const anthropic = await up(startAnthropicStandin({ apiKey: ANTHROPIC_KEY, reply: () => 'fine' }))
      const bus = createEventBus()
      const busEvents: RealmEvent[] = []
      bus.subscribe(e => busEvents.push(e))
      const inUrl = createWorker(parseWorkerSpec(`claude=${anthropic.url.replace('http://', `http://:${ANTHROPIC_KEY}@`)}`), { ...QUIET, env: {}, events: bus })
      const inEnv = createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: { ANTHROPIC_API_KEY: ANTHROPIC_KEY }, events: bus })
      const inConfig = createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: {}, paid: { claude: { apiKey: ANTHROPIC_KEY } }, events: bus })
      for (const worker of [inUrl, inEnv, inConfig]) {
        track(worker)
        await worker.start()
        const r = recorder()
        await worker.run(chat(CLAUDE_MODEL), r.ctx)
        const errors = [
          await worker.run(chat('claude-none'), recorder().ctx).catch((e: unknown) => e),
          await worker.run({ ...chat(CLAUDE_MODEL), kind: 'embed', input: { input: 'x' } } as TaskSpec, recorder().ctx).catch((e: unknown) => e)
        ]
        await anthropic.setMode('down')
        errors.push(await worker.run(chat(CLAUDE_MODEL), recorder().ctx).catch((e: unknown) => e))
        await worker.probe()
        await anthropic.up()
        assert.ok(errors.every(e => e instanceof Error))
        assertNoKey(ANTHROPIC_KEY, r.events, ...errors, worker.status(), worker.status().target)
      }
      assert.ok(busEvents.length > 0)
      assertNoKey(ANTHROPIC_KEY, busEvents)
      // and a wrong key: the 401 is reported without it
      const wrong = track(createWorker({ backend: 'claude', target: anthropic.url }, { ...QUIET, env: { ANTHROPIC_API_KEY: 'sk-ant-WRONG-9f3e1' } }))
      const err = await wrong.run(chat(CLAUDE_MODEL), recorder().ctx).catch((e: unknown) => e)
      assert.equal((err as any).code, 'BACKEND_ERROR')
      assertNoKey('sk-ant-WRONG-9f3e1', err, await wrong.probe())
    })

    it('a backend that echoes the key back in its error: the error is redacted', async () => {
      const server: Server = createServer((req, res) => {
        const echoed = `${req.headers.authorization ?? ''} ${String(req.headers['x-api-key'] ?? '')}`
        res.writeHead(500, { 'Content-Type': 'application/json' })
        res.end(JSON.stringify({ error: { message: `bad credentials: ${echoed}`, type: 'server_error' } }))
      })
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      closers.push(async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) })
      const port = (server.address() as { port: number }).port
      const openai = track(createWorker(parseWorkerSpec(`openai=http://:sk-openai-SECRET-1234@127.0.0.1:${port}`), QUIET))
      const e1 = await openai.run(chat('m'), recorder().ctx).catch((e: unknown) => e) as any
      assert.equal(e1.code, 'BACKEND_ERROR')
      assert.match(e1.message, /bad credentials: Bearer \*\*\*/)
      assertNoKey('sk-openai-SECRET-1234', e1, await openai.probe())
      const claude = track(createWorker({ backend: 'claude', target: `http://127.0.0.1:${port}` }, { ...QUIET, env: { ANTHROPIC_API_KEY: ANTHROPIC_KEY } }))
      const e2 = await claude.run(chat('m'), recorder().ctx).catch((e: unknown) => e)
      assertNoKey(ANTHROPIC_KEY, e2, await claude.probe())
      const hf = track(createWorker(parseWorkerSpec(`hf=http://127.0.0.1:${port}#org/m`), { ...QUIET, env: { HF_TOKEN: HF_KEY } }))
      const e3 = await hf.run(chat('org/m'), recorder().ctx).catch((e: unknown) => e)
      assertNoKey(HF_KEY, e3, await hf.probe())
    })
  })
})
