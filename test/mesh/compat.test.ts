/**
 * The Ollama and OpenAI compatibility routes across a real mesh (A ← B ← C, C has the workers),
 * read with the official clients: chat and generate (streamed and whole), vision, images,
 * embeddings, the model routes, unknown models, a busy requester, a client that goes away,
 * chat trimming, and the per-requester task history.
 */
import assert from 'node:assert/strict'
import { Ollama } from 'ollama'
import OpenAI from 'openai'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import {
  OLLAMA_DEFAULT_MODELS, solidPng, startA1111Standin, startOllamaStandin, startOpenAIStandin,
  type A1111Standin, type GenerationRequest, type OllamaStandin, type OpenAIStandin, type RecordedRequest
} from '../standins/index.js'
import type { RealmNode } from '../../node/node.js'
import type { RealmEvent } from '../../node/events/index.js'
import { readSse } from '../helpers/sse.js'

/** Length of the embeddings each stand-in makes (not their default, so the test sees them pass through) */
const OLLAMA_EMBED_DIMS = 24
const OPENAI_EMBED_DIMS = 40
/** A chat model with a tiny context, so a long history must be trimmed */
const TINY_MODEL = 'tiny:latest'
const TINY_CONTEXT = 64
/** What `/api/chat` answers when the node's per-requester limit is reached (Ollama's own words) */
const OLLAMA_BUSY = 'server busy, please try again.  maximum pending requests exceeded'
/** config queue.per_requester's default */
const PER_REQUESTER = 16
/** Words of the long answer a disconnecting client abandons */
const LONG_WORDS = 60

const LONG_ANSWER = Array.from({ length: LONG_WORDS }, (_, i) => `word${i}`).join(' ')

function reply (req: GenerationRequest): string {
  if (req.images.length > 0) return `I see ${req.images.length} image(s), the first of ${Buffer.from(req.images[0], 'base64').length} bytes.`
  if (req.prompt.includes('long story')) return LONG_ANSWER
  return `You said: ${req.prompt}. The realm answers.`
}

/** POST /realm/tasks with SSE; every event once the task ends */
async function sseTask (node: RealmNode, body: unknown, headers: Record<string, string> = {}): Promise<any[]> {
  const res = await fetch(node.url + '/realm/tasks', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(60_000)
  })
  assert.equal(res.status, 200, await res.clone().text())
  return await readSse(res)
}

async function getJson (url: string, headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(url, { headers })
  assert.equal(res.status, 200, `${url}: ${res.status}`)
  return await res.json()
}

/** Width and height from a PNG's IHDR chunk, after checking its signature */
function pngSize (png: Buffer): { width: number, height: number } {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature')
  assert.equal(png.toString('ascii', 12, 16), 'IHDR')
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
}

/** The thrown error of a promise (fails when it resolves) */
async function rejection (p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (err) {
    return err
  }
  assert.fail('expected a rejection')
}

const CHAT = (content: string, model = 'llama3.2:1b'): unknown => ({ kind: 'chat', model, input: { messages: [{ role: 'user', content }] } })

describe('mesh: compatibility routes through the official clients', function () {
  this.timeout(120_000)
  const cleanup = new Cleanup()
  let a: RealmNode, c: RealmNode
  let ollama: OllamaStandin
  let sd: A1111Standin
  let openaiBackend: OpenAIStandin
  /** task events on A's bus, oldest first */
  const busEvents: RealmEvent[] = []
  /** the official clients, pointed at A; the OpenAI one is requester `key:<hash of x>` */
  let oc: Ollama
  let client: OpenAI

  before(async () => {
    ollama = await startOllamaStandin({
      reply,
      embeddingDims: OLLAMA_EMBED_DIMS,
      models: [...OLLAMA_DEFAULT_MODELS, { name: TINY_MODEL, contextLength: TINY_CONTEXT, capabilities: ['completion'] }]
    })
    sd = await startA1111Standin({ tokenDelayMs: 40 })
    openaiBackend = await startOpenAIStandin({ embeddingDims: OPENAI_EMBED_DIMS })
    cleanup.add(async () => { await ollama.close(); await sd.close(); await openaiBackend.close() })
    a = cleanup.node(await startTestNode())
    const b = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)] }))
    c = cleanup.node(await startTestNode({
      bootstrap: [addrOf(b)],
      workers: [`ollama=${ollama.url}`, `sd=${sd.url}`, `openai=${openaiBackend.url}`]
    }))
    cleanup.add(a.events.subscribe(e => { if (e.type.startsWith('task.')) busEvents.push(e) }))
    const wanted = ['llama3.2:1b', 'llava:7b', 'nomic-embed-text:latest', TINY_MODEL, 'v1-5-pruned-emaonly', 'text-embedding-3-small', 'tts-1']
    await waitFor(() => wanted.every(n => a.models().some(m => m.name === n && m.peers.includes(c.peerId))), 'C\'s models on A')
    await waitFor(() => a.models().find(m => m.name === TINY_MODEL)?.info.context === TINY_CONTEXT, 'the tiny model\'s context on A')
    oc = new Ollama({ host: a.url })
    client = new OpenAI({ baseURL: a.url + '/v1', apiKey: 'x', maxRetries: 0 })
    // A reaches C's worker end to end (its first task opens the connection A → C)
    await waitFor(async () => (await sseTask(a, CHAT('warm up'))).at(-1)?.type === 'task.done', 'a first task through A done on C')
  })
  after(async () => { await cleanup.run() })

  /** the stand-in's requests to a path whose body holds `text` */
  function requestsWith (standin: { requests: RecordedRequest[] }, path: string, text: string): RecordedRequest[] {
    return standin.requests.filter(r => r.path === path && JSON.stringify(r.body).includes(text))
  }

  /** resolves with the id of the next task submitted on A */
  function nextTaskId (): () => Promise<string> {
    const from = busEvents.length
    return async () => await waitFor(() => busEvents.slice(from).find(e => e.type === 'task.submitted')?.id as string | undefined, 'a task submitted on A')
  }

  it('chat and generate run on C\'s worker and stream back through A\'s /api routes (ollama client)', async () => {
    const parts: string[] = []
    let last: any
    for await (const part of await oc.chat({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'hello ollama stream' }], stream: true })) {
      parts.push(part.message.content)
      last = part
    }
    assert.equal(parts.join(''), 'You said: hello ollama stream. The realm answers.')
    assert.ok(parts.filter(p => p !== '').length > 1, 'streamed in several parts')
    assert.equal(last.done, true)
    assert.equal(last.done_reason, 'stop')
    assert.equal(last.model, 'llama3.2:1b')
    assert.equal(requestsWith(ollama, '/api/chat', 'hello ollama stream').length, 1, 'the prompt reached the stand-in once')

    const whole = await oc.chat({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'hello ollama whole' }], stream: false })
    assert.equal(whole.message.content, 'You said: hello ollama whole. The realm answers.')
    assert.equal(whole.message.role, 'assistant')
    assert.equal(whole.done, true)
    assert.equal(requestsWith(ollama, '/api/chat', 'hello ollama whole').length, 1)

    const gen = await oc.generate({ model: 'llama3.2:1b', prompt: 'generate whole', stream: false })
    assert.equal(gen.response, 'You said: generate whole. The realm answers.')
    assert.equal(gen.done, true)
    const genParts: string[] = []
    for await (const part of await oc.generate({ model: 'llama3.2:1b', prompt: 'generate stream', stream: true })) genParts.push(part.response ?? '')
    assert.equal(genParts.join(''), 'You said: generate stream. The realm answers.')
    assert.equal(requestsWith(ollama, '/api/generate', 'generate whole').length, 1)
    assert.equal(requestsWith(ollama, '/api/generate', 'generate stream').length, 1)
  })

  it('chat runs on C\'s worker and streams back through A\'s /v1/chat/completions (openai client)', async () => {
    const stream = await client.chat.completions.create({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'hello openai stream' }], stream: true })
    let text = ''
    let chunks = 0
    let finish: string | null = null
    for await (const chunk of stream) {
      chunks++
      text += chunk.choices[0]?.delta?.content ?? ''
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    assert.equal(text, 'You said: hello openai stream. The realm answers.')
    assert.ok(chunks > 2, 'streamed in several chunks')
    assert.equal(finish, 'stop')
    assert.equal(requestsWith(ollama, '/api/chat', 'hello openai stream').length, 1)

    const whole = await client.chat.completions.create({ model: 'llama3.2:1b', messages: [{ role: 'system', content: 'be kind' }, { role: 'user', content: 'hello openai whole' }] })
    assert.equal(whole.object, 'chat.completion')
    assert.equal(whole.choices[0].message.content, 'You said: hello openai whole. The realm answers.')
    assert.equal(whole.choices[0].finish_reason, 'stop')
    const sent = requestsWith(ollama, '/api/chat', 'hello openai whole')
    assert.equal(sent.length, 1)
    assert.deepEqual((sent[0].body as any).messages.map((m: any) => m.role), ['system', 'user'])
  })

  it('vision: an image reaches the vision model intact; images for a text-only model are a clear error', async () => {
    const png = solidPng(8, 6, [200, 30, 60])
    const b64 = png.toString('base64')
    const expected = `I see 1 image(s), the first of ${png.length} bytes.`

    const viaOllama = await oc.chat({ model: 'llava:7b', messages: [{ role: 'user', content: 'what is in ollama picture', images: [b64] }] })
    assert.equal(viaOllama.message.content, expected)
    const r1 = requestsWith(ollama, '/api/chat', 'what is in ollama picture')
    assert.equal(r1.length, 1)
    assert.equal((r1[0].body as any).model, 'llava:7b')
    assert.deepEqual((r1[0].body as any).messages.at(-1).images, [b64], 'the image bytes arrived intact')

    const viaOpenAI = await client.chat.completions.create({
      model: 'llava:7b',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'what is in openai picture' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${b64}` } }] }]
    })
    assert.equal(viaOpenAI.choices[0].message.content, expected)
    const r2 = requestsWith(ollama, '/api/chat', 'what is in openai picture')
    assert.equal(r2.length, 1)
    assert.equal((r2[0].body as any).model, 'llava:7b')
    assert.deepEqual((r2[0].body as any).messages.at(-1).images, [b64])

    // images for a model that takes none: a clear 400 in each API's form, before anything runs
    const before = ollama.requests.length
    const e1 = await rejection(oc.chat({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'describe', images: [b64] }] }))
    assert.equal(e1.name, 'ResponseError')
    assert.equal(e1.status_code, 400)
    assert.match(e1.error, /does not take images/)
    const e2 = await rejection(client.chat.completions.create({
      model: 'llama3.2:1b',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'describe' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${b64}` } }] }]
    }))
    assert.ok(e2 instanceof OpenAI.APIError, String(e2))
    assert.equal(e2.status, 400)
    assert.match(e2.message, /does not take images/)
    assert.equal(ollama.requests.slice(before).filter(r => r.path === '/api/chat').length, 0, 'nothing reached a text-only model')
  })

  it('imagine: /v1/images/generations returns C\'s PNG of the asked size; the realm route streams progress then the image', async () => {
    const res = await client.images.generate({ model: 'v1-5-pruned-emaonly', prompt: 'a red fox in snow', size: '320x192' as any, response_format: 'b64_json' })
    assert.equal(res.data?.length, 1)
    const png = Buffer.from(res.data![0].b64_json!, 'base64')
    assert.deepEqual(pngSize(png), { width: 320, height: 192 })
    const sent = requestsWith(sd, '/sdapi/v1/txt2img', 'a red fox in snow')
    assert.equal(sent.length, 1)
    assert.equal((sent[0].body as any).width, 320)
    assert.equal((sent[0].body as any).height, 192)

    const events = await sseTask(a, { kind: 'imagine', model: 'v1-5-pruned-emaonly', input: { prompt: 'a blue lake', width: 128, height: 96, steps: 30 } })
    const types = events.map(e => e.type)
    assert.equal(types.at(-1), 'task.done', JSON.stringify(types))
    const firstProgress = types.indexOf('task.progress')
    const image = types.indexOf('task.image')
    assert.ok(firstProgress >= 0, `progress events: ${types.join(',')}`)
    assert.ok(image > firstProgress, `progress before the image: ${types.join(',')}`)
    const progress = events.filter(e => e.type === 'task.progress')
    for (const p of progress) assert.ok(p.fraction >= 0 && p.fraction <= 1)
    const img = events[image].image
    assert.equal(img.mime, 'image/png')
    assert.deepEqual(pngSize(Buffer.from(img.data, 'base64')), { width: 128, height: 96 })
    assert.equal(events.find(e => e.type === 'task.started').peerId, c.peerId)
  })

  it('embeddings: /api/embed (ollama client) and /v1/embeddings (openai client) return the stand-ins\' vectors', async () => {
    const e1 = await oc.embed({ model: 'nomic-embed-text', input: ['first text', 'second text'] })
    assert.equal(e1.embeddings.length, 2)
    for (const v of e1.embeddings) {
      assert.equal(v.length, OLLAMA_EMBED_DIMS)
      assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-6, 'unit length')
    }
    assert.notDeepEqual(e1.embeddings[0], e1.embeddings[1])
    assert.equal(requestsWith(ollama, '/api/embed', 'second text').length, 1)

    // the openai client asks for base64 and decodes it
    const e2 = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta', 'gamma'] })
    assert.equal(e2.data.length, 3)
    assert.deepEqual(e2.data.map(d => d.index), [0, 1, 2])
    for (const d of e2.data) assert.equal(d.embedding.length, OPENAI_EMBED_DIMS)
    assert.equal(requestsWith(openaiBackend, '/v1/embeddings', 'gamma').length, 1)
  })

  it('/api/tags, /api/show, /api/ps, /api/pull and /v1/models list the mesh\'s models', async () => {
    const tags = await oc.list()
    const names = tags.models.map(m => m.name)
    for (const n of ['llama3.2:1b', 'llava:7b', 'nomic-embed-text:latest', TINY_MODEL, 'v1-5-pruned-emaonly', 'text-embedding-3-small']) {
      assert.ok(names.includes(n), `${n} in /api/tags: ${names.join(', ')}`)
    }
    assert.equal(tags.models.find(m => m.name === 'llava:7b')?.details.parameter_size, '7B')

    const llava = await oc.show({ model: 'llava:7b' })
    assert.ok(llava.capabilities.includes('vision'), llava.capabilities.join(','))
    assert.ok(llava.capabilities.includes('completion'))
    assert.equal((llava.model_info as any)['llama.context_length'], 32768)
    const llama = await oc.show({ model: 'llama3.2:1b' })
    assert.ok(!llama.capabilities.includes('vision'))
    assert.equal((llama.model_info as any)['llama.context_length'], 131072)
    const e404 = await rejection(oc.show({ model: 'nope:1b' }))
    assert.equal(e404.status_code, 404)

    // the stand-in has llama3.2:1b loaded
    const ps = await oc.ps()
    assert.ok(ps.models.some(m => m.name === 'llama3.2:1b'), JSON.stringify(ps.models.map(m => m.name)))

    assert.equal((await oc.pull({ model: 'llama3.2:1b', stream: false })).status, 'success')
    const steps: string[] = []
    for await (const p of await oc.pull({ model: 'llava:7b', stream: true })) steps.push(p.status)
    assert.equal(steps.at(-1), 'success')
    const pullMissing = await rejection(oc.pull({ model: 'nope:1b', stream: false }))
    assert.equal(pullMissing.status_code, 500)
    assert.equal(pullMissing.error, 'pull model manifest: file does not exist')
    const pullStream = await rejection((async () => { for await (const p of await oc.pull({ model: 'nope:1b', stream: true })) void p })())
    assert.equal(pullStream.message, 'pull model manifest: file does not exist')

    const ids: string[] = []
    for await (const m of client.models.list()) ids.push(m.id)
    for (const n of ['llama3.2:1b', 'llava:7b', 'v1-5-pruned-emaonly', 'text-embedding-3-small', 'tts-1']) assert.ok(ids.includes(n), `${n} in /v1/models`)
    assert.deepEqual([...ids].sort(), a.models().map(m => m.name).sort())
  })

  it('an unknown model is a 404 before any streaming, in both APIs', async () => {
    const before = ollama.requests.length
    const e1 = await rejection(oc.chat({ model: 'no-such-model:1b', messages: [{ role: 'user', content: 'hi' }], stream: true }))
    assert.equal(e1.name, 'ResponseError')
    assert.equal(e1.status_code, 404)
    assert.equal(e1.error, 'model \'no-such-model:1b\' not found')
    const e2 = await rejection(oc.generate({ model: 'no-such-model:1b', prompt: 'hi', stream: false }))
    assert.equal(e2.status_code, 404)
    const e3 = await rejection(client.chat.completions.create({ model: 'no-such-model:1b', messages: [{ role: 'user', content: 'hi' }], stream: true }))
    assert.ok(e3 instanceof OpenAI.NotFoundError, String(e3))
    assert.equal(e3.code, 'model_not_found')
    const e4 = await rejection(client.chat.completions.create({ model: 'no-such-model:1b', messages: [{ role: 'user', content: 'hi' }] }))
    assert.ok(e4 instanceof OpenAI.NotFoundError)
    // (the worker's health probes go on meanwhile: count only generations)
    assert.equal(ollama.requests.slice(before).filter(r => r.path === '/api/chat' || r.path === '/api/generate').length, 0, 'nothing reached the backend')
  })

  it('busy: a requester past its limit is told to come back — realm 429, Ollama 503, OpenAI 429', async () => {
    ollama.tokenDelayMs = 30_000
    const controllers: AbortController[] = []
    const ids: string[] = []
    try {
      // one requester (this address) fills its share with open streams
      for (let i = 0; i < PER_REQUESTER; i++) {
        const ctl = new AbortController()
        controllers.push(ctl)
        const res = await fetch(a.url + '/realm/tasks', {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify(CHAT(`busy ${i}`)),
          signal: ctl.signal
        })
        assert.equal(res.status, 200)
        ids.push(res.headers.get('x-task-id') ?? '')
      }
      const realm = await fetch(a.url + '/realm/tasks', { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify(CHAT('one too many')) })
      assert.equal(realm.status, 429)
      assert.ok(Number(realm.headers.get('retry-after')) >= 1, `Retry-After: ${realm.headers.get('retry-after')}`)
      assert.equal((await realm.json()).error.code, 'QUEUE_FULL')

      const e1 = await rejection(oc.chat({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'one too many' }], stream: true }))
      assert.equal(e1.name, 'ResponseError')
      assert.equal(e1.status_code, 503)
      assert.equal(e1.error, OLLAMA_BUSY)

      // the same address: the client's Authorization header (which would make it a key requester) left out
      const e2 = await rejection(client.chat.completions.create(
        { model: 'llama3.2:1b', messages: [{ role: 'user', content: 'one too many' }], stream: true },
        { headers: { Authorization: null } }
      ))
      assert.ok(e2 instanceof OpenAI.RateLimitError, String(e2))
      assert.equal(e2.code, 'rate_limit_exceeded')
      assert.ok(Number(e2.headers?.get('retry-after')) >= 1)
      assert.equal(requestsWith(ollama, '/api/chat', 'one too many').length, 0)
    } finally {
      for (const ctl of controllers) ctl.abort()
      ollama.tokenDelayMs = 0
    }
    await waitFor(async () => {
      for (const id of ids) {
        const t = await getJson(`${a.url}/realm/tasks/${id}`)
        if (t.status !== 'cancelled') return false
      }
      return true
    }, 'every busy task cancelled')
    await waitFor(() => ollama.requests.every(r => r.outcome !== undefined), 'the stand-in\'s open exchanges closed')
  })

  it('a client that disconnects mid-stream cancels its task on the worker, which is free again at once', async () => {
    ollama.tokenDelayMs = 200
    try {
      // ollama client: read a few parts, then abort
      const submitted = nextTaskId()
      const stream = await oc.chat({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'tell a long story (ollama)' }], stream: true })
      let text = ''
      for await (const part of stream) {
        text += part.message.content
        if (text.split(' ').length >= 3) break
      }
      stream.abort()
      const id = await submitted()
      await waitFor(async () => (await getJson(`${a.url}/realm/tasks/${id}`)).status === 'cancelled', 'the ollama task cancelled')
      const [r1] = requestsWith(ollama, '/api/chat', 'tell a long story (ollama)')
      await waitFor(() => r1.outcome === 'client-closed', 'the stand-in to see its connection closed')

      // openai client: the chunk ids name the task
      const oStream = await client.chat.completions.create({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'tell a long story (openai)' }], stream: true })
      let oText = ''
      let chunkId = ''
      for await (const chunk of oStream) {
        chunkId = chunk.id
        oText += chunk.choices[0]?.delta?.content ?? ''
        if (oText.split(' ').length >= 3) break
      }
      oStream.controller.abort()
      assert.ok(LONG_ANSWER.startsWith(oText))
      const oid = chunkId.replace(/^chatcmpl-/, '')
      await waitFor(async () => (await getJson(`${a.url}/realm/tasks/${oid}`, { authorization: 'Bearer x' })).status === 'cancelled', 'the openai task cancelled')
      const [r2] = requestsWith(ollama, '/api/chat', 'tell a long story (openai)')
      await waitFor(() => r2.outcome === 'client-closed', 'the stand-in to see its connection closed')

      // C's worker runs one task at a time: the next one starts although the abandoned answers had far to go
      const events = await sseTask(a, CHAT('after the disconnects'))
      assert.equal(events.at(-1).type, 'task.done')
      assert.equal(events.at(-1).output.text, 'You said: after the disconnects. The realm answers.')
      assert.equal(events.find(e => e.type === 'task.started').peerId, c.peerId)
    } finally {
      ollama.tokenDelayMs = 0
    }
  })

  it('a chat that outgrows the model\'s context is trimmed: task.trimmed, system prompt and last message kept', async () => {
    const filler = (i: number): string => `message ${i} ` + 'lorem ipsum dolor sit amet '.repeat(8)
    const messages = [
      { role: 'system', content: 'You are terse.' },
      ...Array.from({ length: 10 }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: filler(i) })),
      { role: 'user', content: 'the last question' }
    ]
    const events = await sseTask(a, { kind: 'chat', model: 'tiny', input: { messages } })
    assert.equal(events.at(-1).type, 'task.done', JSON.stringify(events.at(-1)))
    const trimmed = events.find(e => e.type === 'task.trimmed')
    assert.ok(trimmed != null, events.map(e => e.type).join(','))
    assert.ok(trimmed.dropped > 0)
    assert.ok(events.indexOf(trimmed) < events.findIndex(e => e.type === 'task.started'), 'trimmed before it ran')
    const sent = requestsWith(ollama, '/api/chat', 'the last question')
    assert.equal(sent.length, 1)
    const got = (sent[0].body as any).messages
    assert.equal((sent[0].body as any).model, TINY_MODEL)
    assert.equal(got.length, messages.length - trimmed.dropped)
    assert.ok(got.length < messages.length)
    assert.deepEqual(got[0], { role: 'system', content: 'You are terse.' })
    assert.deepEqual(got.at(-1), { role: 'user', content: 'the last question' })
    assert.equal(events.at(-1).output.text, 'You said: the last question. The realm answers.')
  })

  it('GET /realm/tasks lists this requester\'s tasks newest first with model, worker, status and timings; another requester sees none', async () => {
    await oc.chat({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'history one' }] })
    await oc.generate({ model: 'llama3.2:1b', prompt: 'history two' })
    const { tasks } = await waitFor(async () => {
      const h = await getJson(a.url + '/realm/tasks')
      return h.tasks[0]?.prompt === 'history two' && h.tasks[0].status === 'done' ? h : undefined
    }, 'the latest task done in the history')
    assert.ok(tasks.length >= 2)
    const [two, one] = tasks
    assert.equal(one.prompt, 'history one')
    assert.equal(one.kind, 'chat')
    assert.equal(two.kind, 'generate')
    for (const t of [one, two]) {
      assert.equal(t.model, 'llama3.2:1b')
      assert.equal(t.peerId, c.peerId)
      assert.equal(t.status, 'done')
      assert.equal(t.requester, undefined, 'the requester is not shown')
      assert.ok(t.timings.totalMs >= 0 && t.timings.runMs >= 0 && t.timings.queueMs >= 0, JSON.stringify(t.timings))
      assert.ok(Date.parse(t.endedAt) >= Date.parse(t.createdAt))
    }
    for (let i = 1; i < tasks.length; i++) assert.ok(Date.parse(tasks[i - 1].createdAt) >= Date.parse(tasks[i].createdAt), 'newest first')
    // the busy and cancelled tasks of the tests before are this requester's too
    assert.ok(tasks.some((t: any) => t.status === 'cancelled'))

    const other = await getJson(a.url + '/realm/tasks', { authorization: 'Bearer other-key' })
    assert.deepEqual(other.tasks, [])
    const one404 = await fetch(`${a.url}/realm/tasks/${one.id}`, { headers: { authorization: 'Bearer other-key' } })
    assert.equal(one404.status, 404)
    // the openai client's tasks are its key's
    const keyed = await getJson(a.url + '/realm/tasks', { authorization: 'Bearer x' })
    assert.ok(keyed.tasks.length > 0)
    const mine = new Set(tasks.map((t: any) => t.id))
    assert.ok(keyed.tasks.every((t: any) => !mine.has(t.id)))
  })
})
