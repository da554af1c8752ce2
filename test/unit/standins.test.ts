import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { Ollama } from 'ollama'
import OpenAI, { toFile } from 'openai'
import {
  DEFAULT_REPLY, DEFAULT_TRANSCRIPT, assertSameShape, assertStreamShape, fixtureJson, fixtureText,
  parseNdjson, parseSse, readSolidPng, startA1111Standin, startOllamaStandin, startOpenAIStandin,
  tonePcm, wavDurationSeconds, wavFromPcm
} from '../standins/index.js'
import type { A1111Standin, GenerationRequest, OllamaStandin, OpenAIStandin, Standin } from '../standins/index.js'

/** the docs' examples name these models; the stand-ins serve them so the documented requests run unchanged */
const OLLAMA_DOC_MODELS = [
  { name: 'llama3.2:latest', family: 'llama', parameterSize: '3.2B', quantization: 'Q4_K_M', contextLength: 131072, loaded: true },
  { name: 'llava:latest', family: 'llama', families: ['llama', 'clip'], parameterSize: '7B', quantization: 'Q4_0' },
  { name: 'all-minilm:latest', family: 'bert', parameterSize: '23M', quantization: 'F16', capabilities: ['embedding'] },
  { name: 'codellama:code', family: 'llama', parameterSize: '7B' }
]
const OPENAI_DOC_MODELS = ['gpt-4o-mini', 'gpt-5.4', 'text-embedding-ada-002', 'gpt-4o-transcribe', 'whisper-1', 'gpt-4o-mini-tts']
/** `param` and `code` are `string | null` in OpenAI's Error schema */
const OPENAI_ERROR = { nullable: ['error.param', 'error.code'] }

async function post (url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), ...init })
}

/** reads a body until the server cuts it; returns what arrived and whether it ended cleanly */
async function readUntilCut (res: Response): Promise<{ text: string, clean: boolean }> {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { text, clean: true }
      text += decoder.decode(value, { stream: true })
    }
  } catch {
    return { text, clean: false }
  }
}

async function freePortIsFree (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

describe('stand-ins', function () {
  this.timeout(20_000)

  describe('ollama', () => {
    let ollama: OllamaStandin
    const seen: GenerationRequest[] = []

    beforeEach(async () => {
      seen.length = 0
      ollama = await startOllamaStandin({
        models: OLLAMA_DOC_MODELS,
        reply: req => { seen.push(req); return DEFAULT_REPLY }
      })
    })
    afterEach(async () => { await ollama.close() })

    it('answers GET / like Ollama', async () => {
      const res = await fetch(ollama.url + '/')
      assert.equal(res.status, 200)
      assert.equal(await res.text(), fixtureText('ollama', 'root.txt'))
    })

    it('GET /api/tags, /api/ps and /api/version have the documented shape', async () => {
      const tags = await (await fetch(ollama.url + '/api/tags')).json()
      assertSameShape(tags, fixtureJson('ollama', 'tags.json'), {}, '/api/tags')
      assert.deepEqual(tags.models.map((m: any) => m.name), OLLAMA_DOC_MODELS.map(m => m.name))
      const ps = await (await fetch(ollama.url + '/api/ps')).json()
      assertSameShape(ps, fixtureJson('ollama', 'ps.json'), {}, '/api/ps')
      assert.deepEqual(ps.models.map((m: any) => m.name), ['llama3.2:latest'])
      const version = await (await fetch(ollama.url + '/api/version')).json()
      assertSameShape(version, fixtureJson('ollama', 'version.json'), {}, '/api/version')
    })

    it('POST /api/show has the documented shape and the context length', async () => {
      const res = await post(ollama.url + '/api/show', { model: 'llama3.2' })
      assert.equal(res.status, 200)
      const show = await res.json()
      // model_info is a free-form map; modified_at is sent by the server (api/types.go ShowResponse)
      assertSameShape(show, fixtureJson('ollama', 'show.json'), { opaque: ['model_info'], optional: ['modified_at'] }, '/api/show')
      const arch = show.model_info['general.architecture']
      assert.equal(show.model_info[`${String(arch)}.context_length`], 131072)
    })

    it('POST /api/chat streams NDJSON exactly like the documented stream', async () => {
      const res = await post(ollama.url + '/api/chat', fixtureJson('ollama', 'chat-request-history.json'))
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-type'), 'application/x-ndjson')
      const lines = parseNdjson(await res.text()) as any[]
      assertStreamShape(lines, parseNdjson(fixtureText('ollama', 'chat-stream.ndjson')), {}, '/api/chat stream')
      assert.equal(lines.slice(0, -1).map(l => l.message.content).join(''), DEFAULT_REPLY)
      const last = lines[lines.length - 1]
      assert.equal(last.done, true)
      assert.equal(last.done_reason, 'stop')
      assert.equal(last.eval_count, lines.length - 1)
      assert.equal(seen[0].messages.length, 3)
    })

    it('POST /api/chat with stream:false answers one documented object', async () => {
      const res = await post(ollama.url + '/api/chat', { ...fixtureJson('ollama', 'chat-request-history.json'), stream: false })
      const body = await res.json()
      assertSameShape(body, fixtureJson('ollama', 'chat.json'), {}, '/api/chat')
      assert.equal(body.message.content, DEFAULT_REPLY)
    })

    it('POST /api/chat accepts base64 images for a vision model', async () => {
      const res = await post(ollama.url + '/api/chat', { ...fixtureJson('ollama', 'chat-request-images.json'), stream: false })
      assert.equal(res.status, 200)
      assertSameShape(await res.json(), fixtureJson('ollama', 'chat.json'), {}, '/api/chat (images)')
      assert.equal(seen[0].images.length, 1)
      assert.ok(seen[0].images[0].startsWith('iVBORw0KGgo'))
    })

    it('POST /api/generate streams and answers like the documented generate', async () => {
      const res = await post(ollama.url + '/api/generate', fixtureJson('ollama', 'generate-request.json'))
      assert.equal(res.headers.get('content-type'), 'application/x-ndjson')
      const lines = parseNdjson(await res.text()) as any[]
      // the doc's final object lacks done_reason, which the server sets on every final object
      assertStreamShape(lines, parseNdjson(fixtureText('ollama', 'generate-stream.ndjson')), { optional: ['done_reason'] }, '/api/generate stream')
      assert.equal(lines.slice(0, -1).map(l => l.response).join(''), DEFAULT_REPLY)

      const single = await (await post(ollama.url + '/api/generate', { ...fixtureJson('ollama', 'generate-request.json'), stream: false })).json()
      assertSameShape(single, fixtureJson('ollama', 'generate.json'), {}, '/api/generate')
      assert.equal(single.response, DEFAULT_REPLY)
    })

    it('honours options.num_predict with done_reason "length"', async () => {
      const body = await (await post(ollama.url + '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: false, options: { num_predict: 2 } })).json()
      assert.equal(body.message.content, 'The sky')
      assert.equal(body.done_reason, 'length')
    })

    it('POST /api/embed has the documented shape', async () => {
      const body = await (await post(ollama.url + '/api/embed', fixtureJson('ollama', 'embed-request.json'))).json()
      assertSameShape(body, fixtureJson('ollama', 'embed.json'), {}, '/api/embed')
      const again = await (await post(ollama.url + '/api/embed', { model: 'all-minilm', input: ['Why is the sky blue?', 'x'] })).json()
      assert.equal(again.embeddings.length, 2)
      assert.deepEqual(again.embeddings[0], body.embeddings[0], 'deterministic')
    })

    it('answers an unknown model with 404 {"error":"model \'x\' not found"}', async () => {
      const res = await post(ollama.url + '/api/chat', { model: 'nope', messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(res.status, 404)
      const body = await res.json()
      assertSameShape(body, fixtureJson('ollama', 'error.json'))
      assert.equal(body.error, "model 'nope' not found")
    })

    it('refuses chat on an embedding-only model as Ollama does', async () => {
      const res = await post(ollama.url + '/api/chat', { model: 'all-minilm', messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(res.status, 400)
      assert.deepEqual(await res.json(), { error: '"all-minilm" does not support chat' })
    })

    it('works with the official ollama client', async () => {
      const client = new Ollama({ host: ollama.url })
      const list = await client.list()
      assert.equal(list.models.length, OLLAMA_DOC_MODELS.length)
      let text = ''
      for await (const part of await client.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true })) {
        text += part.message.content
      }
      assert.equal(text, DEFAULT_REPLY)
      const embed = await client.embed({ model: 'all-minilm', input: 'x' })
      assert.equal(embed.embeddings[0].length, 16)
      await assert.rejects(client.chat({ model: 'nope', messages: [] }), /model 'nope' not found/)
    })

    it('records requests', async () => {
      await post(ollama.url + '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hello' }], stream: false })
      const [req] = ollama.requestsTo('/api/chat')
      assert.equal(req.method, 'POST')
      assert.deepEqual((req.body as any).messages, [{ role: 'user', content: 'hello' }])
    })
  })

  describe('openai', () => {
    let openai: OpenAIStandin
    const seen: GenerationRequest[] = []

    beforeEach(async () => {
      seen.length = 0
      openai = await startOpenAIStandin({ models: OPENAI_DOC_MODELS, reply: req => { seen.push(req); return DEFAULT_REPLY } })
    })
    afterEach(async () => { await openai.close() })

    it('GET /v1/models and GET /health have the documented shape', async () => {
      const models = await (await fetch(openai.url + '/v1/models')).json()
      assertSameShape(models, fixtureJson('openai', 'models.json'), {}, '/v1/models')
      assert.deepEqual(models.data.map((m: any) => m.id), OPENAI_DOC_MODELS)
      assertSameShape(await (await fetch(openai.url + '/health')).json(), fixtureJson('openai', 'health.json'))
    })

    it('POST /v1/chat/completions answers the documented chat completion object', async () => {
      const res = await post(openai.url + '/v1/chat/completions', { ...fixtureJson('openai', 'chat-request.json'), model: 'gpt-5.4' })
      assert.equal(res.status, 200)
      const body = await res.json()
      assertSameShape(body, fixtureJson('openai', 'chat-completion.json'), {}, 'chat.completion')
      assert.equal(body.choices[0].message.content, DEFAULT_REPLY)
      assert.equal(seen[0].messages[0].role, 'developer')
    })

    it('streams chat completion chunks as documented SSE, [DONE] last', async () => {
      const res = await post(openai.url + '/v1/chat/completions', { ...fixtureJson('openai', 'chat-request-stream.json'), model: 'gpt-4o-mini' })
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
      const chunks = parseSse(await res.text()) as any[]
      assertStreamShape(chunks, parseSse(fixtureText('openai', 'chat-stream.sse')), {}, 'chat stream')
      assert.equal(chunks.map(c => c.choices[0].delta.content ?? '').join(''), DEFAULT_REPLY)
      assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, 'stop')
    })

    it('adds the usage chunk with stream_options.include_usage', async () => {
      const res = await post(openai.url + '/v1/chat/completions', { model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] })
      const chunks = parseSse(await res.text()) as any[]
      assertStreamShape(chunks, parseSse(fixtureText('openai', 'chat-stream-usage.sse')), {}, 'chat stream with usage')
      const last = chunks[chunks.length - 1]
      assert.deepEqual(last.choices, [])
      assert.equal(last.usage.completion_tokens, chunks.length - 3)
    })

    it('accepts the documented image input', async () => {
      const res = await post(openai.url + '/v1/chat/completions', fixtureJson('openai', 'chat-request-image.json'))
      assert.equal(res.status, 200)
      assert.equal(seen[0].images.length, 1)
      assert.equal(seen[0].messages[0].content, 'What is in this image?')
    })

    it('POST /v1/embeddings has the documented shape, float and base64', async () => {
      const body = await (await post(openai.url + '/v1/embeddings', fixtureJson('openai', 'embeddings-request.json'))).json()
      assertSameShape(body, fixtureJson('openai', 'embeddings.json'), {}, '/v1/embeddings')
      const b64 = await (await post(openai.url + '/v1/embeddings', { ...fixtureJson('openai', 'embeddings-request.json'), encoding_format: 'base64' })).json()
      const floats = new Float32Array(Uint8Array.from(Buffer.from(b64.data[0].embedding, 'base64')).buffer)
      assert.equal(floats.length, body.data[0].embedding.length)
      floats.forEach((x, i) => assert.ok(Math.abs(x - body.data[0].embedding[i]) < 1e-6))
    })

    it('POST /v1/audio/transcriptions takes multipart and answers {text, usage}', async () => {
      const wav = wavFromPcm(tonePcm(1000))
      const form = (model: string, format?: string): FormData => {
        const f = new FormData()
        f.append('file', new Blob([Uint8Array.from(wav)], { type: 'audio/wav' }), 'audio.wav')
        f.append('model', model)
        if (format !== undefined) f.append('response_format', format)
        return f
      }
      const tokens = await (await fetch(openai.url + '/v1/audio/transcriptions', { method: 'POST', body: form('gpt-4o-transcribe') })).json()
      assertSameShape(tokens, fixtureJson('openai', 'transcription.json'), {}, 'transcription')
      assert.equal(tokens.text, DEFAULT_TRANSCRIPT)
      const duration = await (await fetch(openai.url + '/v1/audio/transcriptions', { method: 'POST', body: form('whisper-1') })).json()
      assertSameShape(duration, fixtureJson('openai', 'transcription-duration.json'), {}, 'whisper transcription')
      assert.equal(duration.usage.seconds, 1)
      const text = await fetch(openai.url + '/v1/audio/transcriptions', { method: 'POST', body: form('whisper-1', 'text') })
      assert.equal(await text.text(), DEFAULT_TRANSCRIPT + '\n')
      const [req] = openai.requestsTo('/v1/audio/transcriptions')
      assert.equal((req.body as any).files[0].filename, 'audio.wav')
      assert.equal((req.body as any).fields.model, 'gpt-4o-transcribe')
    })

    it('POST /v1/audio/speech returns audio bytes (mp3 by default, wav, pcm)', async () => {
      const mp3 = await post(openai.url + '/v1/audio/speech', fixtureJson('openai', 'speech-request.json'))
      assert.equal(mp3.status, 200)
      assert.equal(mp3.headers.get('content-type'), 'audio/mpeg')
      const bytes = Buffer.from(await mp3.arrayBuffer())
      assert.equal(bytes[0], 0xff)
      assert.equal(bytes[1] & 0xe0, 0xe0, 'MPEG frame sync')
      const wav = await post(openai.url + '/v1/audio/speech', { ...fixtureJson('openai', 'speech-request.json'), response_format: 'wav' })
      assert.equal(wav.headers.get('content-type'), 'audio/wav')
      const seconds = wavDurationSeconds(Buffer.from(await wav.arrayBuffer()))
      assert.ok(seconds !== undefined && seconds > 0)
    })

    it('answers errors in OpenAI\'s shape', async () => {
      const res = await post(openai.url + '/v1/chat/completions', { model: 'gpt-5-nonexistent', messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(res.status, 404)
      const body = await res.json()
      assertSameShape(body, fixtureJson('openai', 'error.json'))
      assert.equal(body.error.code, 'model_not_found')
      const missing = await post(openai.url + '/v1/chat/completions', { model: 'gpt-4o-mini' })
      assert.equal(missing.status, 400)
      assertSameShape(await missing.json(), fixtureJson('openai', 'error.json'), OPENAI_ERROR, 'missing messages')
      await openai.setMode('error')
      const failed = await post(openai.url + '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      assert.equal(failed.status, 500)
      const err = await failed.json()
      assertSameShape(err, fixtureJson('openai', 'error.json'), OPENAI_ERROR, '500')
      assert.equal(err.error.type, 'server_error')
    })

    it('checks the API key when one is set', async () => {
      const locked = await startOpenAIStandin({ apiKey: 'sk-test' })
      try {
        const res = await fetch(locked.url + '/v1/models')
        assert.equal(res.status, 401)
        assertSameShape(await res.json(), fixtureJson('openai', 'error.json'), OPENAI_ERROR)
        const ok = await fetch(locked.url + '/v1/models', { headers: { Authorization: 'Bearer sk-test' } })
        assert.equal(ok.status, 200)
      } finally {
        await locked.close()
      }
    })

    it('works with the official openai client', async () => {
      const client = new OpenAI({ baseURL: openai.url + '/v1', apiKey: 'sk-test', maxRetries: 0 })
      const models = await client.models.list()
      assert.equal(models.data.length, OPENAI_DOC_MODELS.length)
      let text = ''
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true })
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
      assert.equal(text, DEFAULT_REPLY)
      // the client asks for base64 and decodes it
      const emb = await client.embeddings.create({ model: 'text-embedding-ada-002', input: 'x' })
      assert.equal(emb.data[0].embedding.length, 16)
      const tr = await client.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(wavFromPcm(tonePcm(500)), 'a.wav') })
      assert.equal(tr.text, DEFAULT_TRANSCRIPT)
      await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }), (err: any) => err.status === 404 && err.code === 'model_not_found')
    })
  })

  describe('a1111', () => {
    let sd: A1111Standin

    beforeEach(async () => { sd = await startA1111Standin() })
    afterEach(async () => { await sd.close() })

    it('GET /sdapi/v1/sd-models and /options have the documented shape', async () => {
      const models = await (await fetch(sd.url + '/sdapi/v1/sd-models')).json()
      assertSameShape(models, fixtureJson('a1111', 'sd-models.json'), {}, 'sd-models')
      assert.deepEqual(models.map((m: any) => m.model_name), ['v1-5-pruned-emaonly', 'sd_xl_base_1.0'])
      const options = await (await fetch(sd.url + '/sdapi/v1/options')).json()
      assertSameShape(options, fixtureJson('a1111', 'options.json'), { subset: true }, 'options')
      assert.equal(options.sd_model_checkpoint, models[0].title)
    })

    it('POST /sdapi/v1/txt2img returns real PNGs honouring width, height and seed', async () => {
      const body = await (await post(sd.url + '/sdapi/v1/txt2img', fixtureJson('a1111', 'txt2img-request.json'))).json()
      assertSameShape(body, fixtureJson('a1111', 'txt2img.json'), { opaque: ['parameters'] }, 'txt2img')
      assertSameShape(JSON.parse(body.info), fixtureJson('a1111', 'txt2img-info.json'), {}, 'txt2img info')
      const png = readSolidPng(Buffer.from(body.images[0], 'base64'))
      assert.equal(png.width, 512)
      assert.equal(png.height, 512)

      const a = await (await post(sd.url + '/sdapi/v1/txt2img', { prompt: 'x', width: 64, height: 40, seed: 0x123456, steps: 2, batch_size: 2 })).json()
      assert.equal(a.images.length, 2)
      const first = readSolidPng(Buffer.from(a.images[0], 'base64'))
      assert.deepEqual(first, { width: 64, height: 40, rgb: [0x56, 0x34, 0x12] })
      assert.deepEqual(JSON.parse(a.info).all_seeds, [0x123456, 0x123457])
      const again = await (await post(sd.url + '/sdapi/v1/txt2img', { prompt: 'x', width: 64, height: 40, seed: 0x123456, steps: 2 })).json()
      assert.equal(again.images[0], a.images[0], 'same seed, same image')
    })

    it('GET /sdapi/v1/progress follows a running txt2img', async () => {
      const idle = await (await fetch(sd.url + '/sdapi/v1/progress')).json()
      assertSameShape(idle, fixtureJson('a1111', 'progress-idle.json'), {}, 'progress (idle)')
      sd.tokenDelayMs = 20
      const job = post(sd.url + '/sdapi/v1/txt2img', { prompt: 'slow', width: 8, height: 8, steps: 20 })
      let running: any
      const deadline = Date.now() + 10_000
      while (Date.now() < deadline) {
        running = await (await fetch(sd.url + '/sdapi/v1/progress')).json()
        if (running.state.sampling_step > 0) break
        await new Promise(resolve => setTimeout(resolve, 5))
      }
      assertSameShape(running, fixtureJson('a1111', 'progress-running.json'), {}, 'progress (running)')
      assert.equal(running.state.job, 'scripts_txt2img')
      assert.equal(running.state.sampling_steps, 20)
      assert.ok(running.progress > 0 && running.progress <= 1)
      assert.equal((await job).status, 200)
      const after = await (await fetch(sd.url + '/sdapi/v1/progress')).json()
      assert.equal(after.state.job_count, 0)
    })

    it('answers an unknown checkpoint like A1111', async () => {
      const res = await post(sd.url + '/sdapi/v1/txt2img', { prompt: 'x', override_settings: { sd_model_checkpoint: 'nope' } })
      assert.equal(res.status, 404)
      assertSameShape(await res.json(), fixtureJson('a1111', 'error.json'))
      const ok = await post(sd.url + '/sdapi/v1/options', { sd_model_checkpoint: 'sd_xl_base_1.0' })
      assert.equal(ok.status, 200)
      assert.match(sd.loadedCheckpoint, /^sd_xl_base_1\.0\.safetensors \[/)
    })

    it('needs Basic auth when configured', async () => {
      const locked = await startA1111Standin({ auth: { username: 'u', password: 'p' } })
      try {
        assert.equal((await fetch(locked.url + '/sdapi/v1/sd-models')).status, 401)
        const ok = await fetch(locked.url + '/sdapi/v1/sd-models', { headers: { Authorization: 'Basic ' + Buffer.from('u:p').toString('base64') } })
        assert.equal(ok.status, 200)
      } finally {
        await locked.close()
      }
    })
  })

  describe('fault modes', () => {
    const started: Standin[] = []
    afterEach(async () => {
      await Promise.all(started.map(async s => { await s.close() }))
      started.length = 0
    })
    async function ollama (init = {}): Promise<OllamaStandin> {
      const s = await startOllamaStandin(init)
      started.push(s)
      return s
    }

    it('down refuses connections; up() listens again on the same port', async () => {
      const s = await ollama()
      const port = s.port
      await s.setMode('down')
      await assert.rejects(fetch(s.url + '/api/tags'), (err: any) => err.cause?.code === 'ECONNREFUSED')
      await s.up()
      assert.equal(s.port, port)
      assert.equal((await fetch(s.url + '/api/tags')).status, 200)
    })

    it('error answers 500 in the API\'s shape', async () => {
      const s = await ollama()
      await s.setMode('error')
      const res = await fetch(s.url + '/api/tags')
      assert.equal(res.status, 500)
      assertSameShape(await res.json(), fixtureJson('ollama', 'error.json'))
      await s.setMode('ok')
      assert.equal((await fetch(s.url + '/api/tags')).status, 200)
    })

    it('hang accepts and never answers; close() still ends at once and frees the port', async () => {
      const s = await ollama()
      await s.setMode('hang')
      await assert.rejects(fetch(s.url + '/api/tags', { signal: AbortSignal.timeout(200) }), /TimeoutError|aborted/i)
      const pending = fetch(s.url + '/api/tags').then(() => 'answered', () => 'cut')
      while (s.requestsTo('/api/tags').length < 2) await new Promise(resolve => setTimeout(resolve, 5))
      await s.close()
      assert.equal(await pending, 'cut')
      assert.equal(await freePortIsFree(s.port), true)
    })

    it('slow answers, later', async () => {
      const s = await ollama({ slowDelayMs: 300 })
      await s.setMode('slow')
      await assert.rejects(fetch(s.url + '/api/tags', { signal: AbortSignal.timeout(20) }))
      assert.equal((await fetch(s.url + '/api/tags')).status, 200)
    })

    it('flaky fails every other request', async () => {
      const s = await ollama()
      s.setFlaky(true)
      const statuses = []
      for (let i = 0; i < 4; i++) statuses.push((await fetch(s.url + '/api/tags')).status)
      assert.deepEqual(statuses, [500, 200, 500, 200])
      s.setFlaky(false)
      assert.equal((await fetch(s.url + '/api/tags')).status, 200)
    })

    it('killMidStream cuts the connection after N tokens (ollama NDJSON, openai SSE, a1111 steps)', async () => {
      const s = await ollama({ tokenDelayMs: 1 })
      s.killMidStream(2)
      const res = await post(s.url + '/api/chat', { model: 'llama3.2:1b', messages: [{ role: 'user', content: 'hi' }] })
      const { text, clean } = await readUntilCut(res)
      assert.equal(clean, false)
      const lines = text.split('\n').filter(l => l !== '').map(l => JSON.parse(l))
      assert.deepEqual(lines.map(l => l.message.content), ['The', ' sky'])
      s.killMidStream(null)
      assert.equal((await (await post(s.url + '/api/chat', { model: 'llama3.2:1b', messages: [{ role: 'user', content: 'hi' }], stream: false })).json()).done, true)

      const o = await startOpenAIStandin()
      started.push(o)
      o.killMidStream(3)
      const sse = await readUntilCut(await post(o.url + '/v1/chat/completions', { model: 'llama-3.2-1b-instruct', stream: true, messages: [{ role: 'user', content: 'hi' }] }))
      assert.equal(sse.clean, false)
      assert.equal(sse.text.split('\n\n').filter(e => e.startsWith('data: {')).length, 4, 'role chunk + 3 tokens')
      assert.ok(!sse.text.includes('[DONE]'))

      const sd = await startA1111Standin()
      started.push(sd)
      sd.killMidStream(3)
      await assert.rejects(post(sd.url + '/sdapi/v1/txt2img', { prompt: 'x', width: 8, height: 8, steps: 10 }))
      sd.killMidStream(null)
      assert.equal((await post(sd.url + '/sdapi/v1/txt2img', { prompt: 'x', width: 8, height: 8, steps: 10 })).status, 200)
    })

    it('listens on a given host and port', async () => {
      const probe = await ollama()
      const port = probe.port
      await probe.close()
      const s = await ollama({ host: '127.0.0.1', port })
      assert.equal(s.port, port)
      assert.equal(s.url, `http://127.0.0.1:${port}`)
      assert.equal((await fetch(s.url + '/')).status, 200)
    })
  })
})
