import assert from 'node:assert/strict'
import OpenAI from 'openai'
import {
  DEFAULT_REPLY, assertSameShape, assertStreamShape, fixtureJson, fixtureText, parseNamedSse, parseNdjson, parseSse,
  readSolidPng, startAgentStandin, startAnthropicStandin, startHfStandin, startOpenAIStandin
} from '../standins/index.js'
import type { AgentStandin, AnthropicStandin, GenerationRequest, HfStandin, Standin } from '../standins/index.js'

/** the models the Anthropic docs' examples name, newest first as the API lists them */
const ANTHROPIC_DOC_MODELS = [
  { id: 'claude-opus-4-8', displayName: 'Claude Opus 4.8' },
  { id: 'claude-sonnet-4-5', displayName: 'Claude Sonnet 4.5' },
  { id: 'claude-sonnet-4-20250514', displayName: 'Claude Sonnet 4' },
  { id: 'claude-3-5-sonnet-20241022', displayName: 'Claude Sonnet 3.5' }
]
const ANTHROPIC_HEADERS = { 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' }
/** `error.param` and `error.code` are `string | null` in OpenAI's error schema */
const OPENAI_ERROR = { nullable: ['error.param', 'error.code'] }

async function post (url: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Response> {
  return await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) })
}

describe('stand-ins: Anthropic, HuggingFace, agents, OpenAI images', function () {
  this.timeout(20_000)

  describe('anthropic', () => {
    let anthropic: AnthropicStandin
    const seen: GenerationRequest[] = []

    beforeEach(async () => {
      seen.length = 0
      anthropic = await startAnthropicStandin({ models: ANTHROPIC_DOC_MODELS, apiKey: 'sk-ant-test', reply: req => { seen.push(req); return DEFAULT_REPLY } })
    })
    afterEach(async () => { await anthropic.close() })

    it('GET /v1/models has the documented shape and pages with limit / after_id', async () => {
      const res = await fetch(anthropic.url + '/v1/models', { headers: ANTHROPIC_HEADERS })
      assert.equal(res.status, 200)
      const body = await res.json()
      assertSameShape(body, fixtureJson('anthropic', 'models.json'), {}, '/v1/models')
      assert.deepEqual(body.data.map((m: any) => m.id), ANTHROPIC_DOC_MODELS.map(m => m.id))
      assert.equal(body.has_more, false)
      const first = await (await fetch(anthropic.url + '/v1/models?limit=1', { headers: ANTHROPIC_HEADERS })).json()
      assert.deepEqual([first.data.length, first.has_more, first.first_id, first.last_id], [1, true, 'claude-opus-4-8', 'claude-opus-4-8'])
      const next = await (await fetch(anthropic.url + `/v1/models?limit=2&after_id=${String(first.last_id)}`, { headers: ANTHROPIC_HEADERS })).json()
      assert.deepEqual(next.data.map((m: any) => m.id), ['claude-sonnet-4-5', 'claude-sonnet-4-20250514'])
      assert.equal(next.has_more, true)
    })

    it('POST /v1/messages with stream:true sends the documented named events, in the documented order', async () => {
      const res = await post(anthropic.url + '/v1/messages', fixtureJson('anthropic', 'messages-stream-request.json'), ANTHROPIC_HEADERS)
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
      const events = parseNamedSse(await res.text())
      const documented = parseNamedSse(fixtureText('anthropic', 'messages-stream.sse'))
      // the same sequence as the docs, with one content_block_delta per token
      const collapse = (names: string[]): string[] => names.filter((n, i) => n !== 'content_block_delta' || names[i - 1] !== 'content_block_delta')
      assert.deepEqual(collapse(events.map(e => e.event)), collapse(documented.map(e => e.event)))
      for (const event of events) {
        const like = documented.find(d => d.event === event.event)
        assert.ok(like !== undefined)
        assertSameShape(event.data, like.data, {}, event.event)
      }
      const deltas = events.filter(e => e.event === 'content_block_delta')
      assert.equal(deltas.map(e => e.data.delta.text).join(''), DEFAULT_REPLY)
      const last = events.find(e => e.event === 'message_delta')
      assert.equal(last?.data.usage.output_tokens, deltas.length)
      assert.equal(last?.data.delta.stop_reason, 'end_turn')
      assert.equal(seen[0].messages[0].content, 'Hello')
    })

    it('POST /v1/messages without stream answers the documented Message object', async () => {
      const res = await post(anthropic.url + '/v1/messages', fixtureJson('anthropic', 'messages-request.json'), ANTHROPIC_HEADERS)
      assert.equal(res.status, 200)
      assert.match(res.headers.get('request-id') ?? '', /^req_/)
      const body = await res.json()
      assertSameShape(body, fixtureJson('anthropic', 'message.json'), {}, 'message')
      assert.equal(body.content[0].text, DEFAULT_REPLY)
      assert.equal(body.usage.output_tokens, 8)
    })

    it('accepts the documented base64 image block and a top-level system prompt', async () => {
      const res = await post(anthropic.url + '/v1/messages', { ...fixtureJson('anthropic', 'messages-request-image.json'), system: 'Be brief.' }, ANTHROPIC_HEADERS)
      assert.equal(res.status, 200)
      assert.equal(seen[0].images.length, 1)
      assert.ok(seen[0].images[0].startsWith('iVBORw0KGgo'))
      assert.deepEqual(seen[0].messages.map(m => m.role), ['system', 'user'])
    })

    it('honours max_tokens (stop_reason max_tokens) and stop_sequences', async () => {
      const cut = await (await post(anthropic.url + '/v1/messages', { ...fixtureJson('anthropic', 'messages-request.json'), max_tokens: 2 }, ANTHROPIC_HEADERS)).json()
      assert.deepEqual([cut.content[0].text, cut.stop_reason], ['The sky', 'max_tokens'])
      const stop = await (await post(anthropic.url + '/v1/messages', { ...fixtureJson('anthropic', 'messages-request.json'), stop_sequences: [' because'] }, ANTHROPIC_HEADERS)).json()
      assert.deepEqual([stop.content[0].text, stop.stop_reason, stop.stop_sequence], ['The sky is blue', 'stop_sequence', ' because'])
    })

    it('answers errors in the documented shape: unknown model, key, version, fields, roles', async () => {
      const request = fixtureJson('anthropic', 'messages-request.json')
      const check = async (res: Response, status: number, type: string, message: RegExp): Promise<void> => {
        assert.equal(res.status, status)
        const body = await res.json()
        assertSameShape(body, fixtureJson('anthropic', 'error.json'), {}, `${status} error`)
        assert.equal(body.error.type, type)
        assert.match(body.error.message, message)
      }
      await check(await post(anthropic.url + '/v1/messages', { ...request, model: 'claude-nope' }, ANTHROPIC_HEADERS), 404, 'not_found_error', /model: claude-nope/)
      await check(await post(anthropic.url + '/v1/messages', request, { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }), 401, 'authentication_error', /x-api-key/)
      await check(await post(anthropic.url + '/v1/messages', request, { ...ANTHROPIC_HEADERS, 'x-api-key': 'sk-ant-other' }), 401, 'authentication_error', /invalid x-api-key/)
      await check(await post(anthropic.url + '/v1/messages', request, { 'content-type': 'application/json', 'x-api-key': 'sk-ant-test' }), 400, 'invalid_request_error', /anthropic-version/)
      await check(await post(anthropic.url + '/v1/messages', { ...request, max_tokens: undefined }, ANTHROPIC_HEADERS), 400, 'invalid_request_error', /max_tokens: Field required/)
      await check(await post(anthropic.url + '/v1/messages', { ...request, messages: [{ role: 'system', content: 'x' }] }, ANTHROPIC_HEADERS), 400, 'invalid_request_error', /top-level `system`/)
      await check(await post(anthropic.url + '/v1/messages', { ...request, temperature: 1.5 }, ANTHROPIC_HEADERS), 400, 'invalid_request_error', /temperature/)
      await anthropic.setMode('error')
      await check(await post(anthropic.url + '/v1/messages', request, ANTHROPIC_HEADERS), 500, 'api_error', /./)
    })

    it('sends the documented error event mid-stream when overloaded', async () => {
      anthropic.overloadMidStream(2)
      const res = await post(anthropic.url + '/v1/messages', fixtureJson('anthropic', 'messages-stream-request.json'), ANTHROPIC_HEADERS)
      const events = parseNamedSse(await res.text())
      const last = events[events.length - 1]
      const documented = parseNamedSse(fixtureText('anthropic', 'error-stream.sse'))[0]
      assert.equal(last.event, 'error')
      assertSameShape(last.data, documented.data, {}, 'error event')
      assert.deepEqual(last.data, documented.data)
      assert.equal(events.filter(e => e.event === 'content_block_delta').length, 2)
    })
  })

  describe('hf', () => {
    let hf: HfStandin
    const seen: GenerationRequest[] = []

    beforeEach(async () => {
      seen.length = 0
      hf = await startHfStandin({ apiKey: 'hf_test', reply: req => { seen.push(req); return DEFAULT_REPLY } })
    })
    afterEach(async () => { await hf.close() })
    const auth = { authorization: 'Bearer hf_test', 'content-type': 'application/json' }

    it('GET /v1/models has the OpenAI list shape the router answers', async () => {
      const body = await (await fetch(hf.url + '/v1/models', { headers: auth })).json()
      assertSameShape(body, fixtureJson('hf', 'models.json'), { subset: true }, '/v1/models')
      assert.deepEqual(body.data.map((m: any) => m.id), ['meta-llama/Llama-3.1-8B-Instruct', 'Qwen/Qwen2.5-VL-7B-Instruct'])
    })

    it('POST /v1/chat/completions streams chunks with the documented fields', async () => {
      const res = await post(hf.url + '/v1/chat/completions', { ...fixtureJson('hf', 'chat-request.json'), stream_options: { include_usage: true } }, auth)
      assert.equal(res.status, 200)
      const chunks = parseSse(await res.text()) as any[]
      assertStreamShape(chunks, parseSse(fixtureText('hf', 'chat-stream.sse')), { subset: true, optional: ['choices[].delta.role', 'choices[].delta.content'], nullable: ['choices[].finish_reason'] }, 'chat stream')
      assert.equal(chunks.map(c => c.choices[0]?.delta.content ?? '').join(''), DEFAULT_REPLY)
      assert.equal(chunks[chunks.length - 1].usage.completion_tokens, 8)
      assert.equal(seen[0].prompt, 'What is the capital of France?')
      // and the official OpenAI client, as the docs show it for the router
      const client = new OpenAI({ baseURL: hf.url + '/v1', apiKey: 'hf_test', maxRetries: 0 })
      let text = ''
      for await (const chunk of await client.chat.completions.create({ model: 'meta-llama/Llama-3.1-8B-Instruct', messages: [{ role: 'user', content: 'hi' }], stream: true })) text += chunk.choices[0]?.delta.content ?? ''
      assert.equal(text, DEFAULT_REPLY)
    })

    it('feature-extraction answers an array of arrays, one vector per input', async () => {
      const path = '/hf-inference/models/BAAI/bge-small-en-v1.5/pipeline/feature-extraction'
      const one = await (await post(hf.url + path, fixtureJson('hf', 'feature-extraction-request.json'), auth)).json()
      assertSameShape(one, fixtureJson('hf', 'feature-extraction.json'), {}, 'feature-extraction')
      assert.equal(one.length, 1)
      const two = await (await post(hf.url + path, { inputs: ['a', 'b'] }, auth)).json()
      assert.equal(two.length, 2)
      assert.deepEqual(two[0], (await (await post(hf.url + path, { inputs: 'a' }, auth)).json())[0], 'deterministic')
    })

    it('text-to-image answers PNG bytes of the asked size', async () => {
      const res = await post(hf.url + '/hf-inference/models/stabilityai/stable-diffusion-xl-base-1.0', fixtureJson('hf', 'text-to-image-request.json'), auth)
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-type'), 'image/png')
      assert.equal(readSolidPng(Buffer.from(await res.arrayBuffer())).width, 512)
      const sized = await post(hf.url + '/hf-inference/models/stabilityai/stable-diffusion-xl-base-1.0', { inputs: 'x', parameters: { width: 96, height: 64, seed: 0x0a0b0c } }, auth)
      assert.deepEqual(readSolidPng(Buffer.from(await sized.arrayBuffer())), { width: 96, height: 64, rgb: [0x0c, 0x0b, 0x0a] })
    })

    it('answers errors as the task API and the router do', async () => {
      const missing = await post(hf.url + '/hf-inference/models/BAAI/bge-small-en-v1.5x/pipeline/feature-extraction', { inputs: 'x' }, auth)
      assert.equal(missing.status, 404)
      const body = await missing.json()
      assertSameShape(body, fixtureJson('hf', 'error.json'))
      assert.deepEqual(body, fixtureJson('hf', 'error.json'))
      const router = await post(hf.url + '/v1/chat/completions', { model: 'moonshotai/Kimi-K2-Instruct', messages: [{ role: 'user', content: 'hi' }] }, auth)
      assert.equal(router.status, 400)
      assert.deepEqual(await router.json(), fixtureJson('hf', 'router-error.json'))
      const noKey = await post(hf.url + '/hf-inference/models/BAAI/bge-small-en-v1.5/pipeline/feature-extraction', { inputs: 'x' })
      assert.equal(noKey.status, 401)
      assertSameShape(await noKey.json(), fixtureJson('hf', 'error.json'))
      const wrongTask = await post(hf.url + '/hf-inference/models/stabilityai/stable-diffusion-xl-base-1.0/pipeline/feature-extraction', { inputs: 'x' }, auth)
      assert.equal(wrongTask.status, 400)
      await hf.setMode('error')
      const failed = await post(hf.url + '/hf-inference/models/BAAI/bge-small-en-v1.5/pipeline/feature-extraction', { inputs: 'x' }, auth)
      assert.equal(failed.status, 500)
      assertSameShape(await failed.json(), fixtureJson('hf', 'error.json'))
    })
  })

  describe('agent (realm contract)', () => {
    let agent: AgentStandin
    beforeEach(async () => { agent = await startAgentStandin({ models: [...fixtureJson('agent', 'models.json'), { name: 'utility', kinds: ['embed'] }] }) })
    afterEach(async () => { await agent.close() })

    it('GET /health and GET /models are as the contract shows them', async () => {
      assert.deepEqual(await (await fetch(agent.url + '/health')).json(), fixtureJson('agent', 'health.json'))
      const models = await (await fetch(agent.url + '/models')).json()
      assertSameShape(models, fixtureJson('agent', 'models.json'), { optional: ['[].context', '[].vision'] }, '/models')
    })

    it('POST /task streams WorkerEvents then done when NDJSON is accepted', async () => {
      const res = await post(agent.url + '/task', fixtureJson('agent', 'task-request.json'), { 'content-type': 'application/json', accept: 'application/x-ndjson, application/json' })
      assert.equal(res.headers.get('content-type'), 'application/x-ndjson')
      const lines = parseNdjson(await res.text()) as any[]
      assertStreamShape(lines, parseNdjson(fixtureText('agent', 'task-stream.ndjson')), { optional: ['output.text'] }, '/task stream')
      assert.equal(lines.slice(0, -1).map(l => l.text).join(''), DEFAULT_REPLY)
    })

    it('POST /task answers a JSON TaskOutput otherwise, and errors with a code', async () => {
      const res = await post(agent.url + '/task', fixtureJson('agent', 'task-request.json'))
      assertSameShape(await res.json(), fixtureJson('agent', 'task-output.json'), {}, 'TaskOutput')
      const missing = await post(agent.url + '/task', { ...fixtureJson('agent', 'task-request.json'), model: 'x' })
      assert.equal(missing.status, 404)
      assertSameShape(await missing.json(), fixtureJson('agent', 'error.json'))
      const invalid = await post(agent.url + '/task', { kind: 'chat' })
      assert.equal(invalid.status, 400)
      assert.equal((await invalid.json()).error.code, 'INVALID_TASK')
    })
  })

  describe('agent (original RentAHal worker contract)', () => {
    let agent: AgentStandin
    const seen: GenerationRequest[] = []
    beforeEach(async () => {
      seen.length = 0
      agent = await startAgentStandin({ contract: 'legacy', reply: req => { seen.push(req); return 'Neil Armstrong.' } })
    })
    afterEach(async () => { await agent.close() })

    it('GET /health and POST /predict/ answer as main.py does; /predict redirects like FastAPI', async () => {
      assert.deepEqual(await (await fetch(agent.url + '/health')).json(), fixtureJson('agent', 'legacy-health.json'))
      assert.equal((await fetch(agent.url + '/models')).status, 404)
      const redirect = await fetch(agent.url + '/predict', { method: 'POST', body: '{}', redirect: 'manual', headers: { 'content-type': 'application/json' } })
      assert.equal(redirect.status, 307)
      assert.equal(new URL(redirect.headers.get('location') ?? '').pathname, '/predict/')
      const res = await post(agent.url + '/predict/', fixtureJson('agent', 'legacy-predict-request.json'))
      assert.equal(res.status, 200)
      assertSameShape(await res.json(), fixtureJson('agent', 'legacy-predict.json'), {}, 'predict')
      assert.equal(seen[0].prompt, 'Who was the first man on the moon?')
      // fetch follows the 307 with the body, as aiohttp does for the original orchestrator
      assert.equal((await (await post(agent.url + '/predict', fixtureJson('agent', 'legacy-predict-request.json'))).json()).response, 'Neil Armstrong.')
    })

    it('vision takes the base64 image; without it FastAPI answers 422; failures are {detail}', async () => {
      const res = await post(agent.url + '/predict/', fixtureJson('agent', 'legacy-predict-request-vision.json'))
      assert.equal(res.status, 200)
      assert.deepEqual(seen[0].images, [fixtureJson('agent', 'legacy-predict-request-vision.json').image])
      const noImage = await post(agent.url + '/predict/', { ...fixtureJson('agent', 'legacy-predict-request-vision.json'), image: undefined })
      assert.equal(noImage.status, 422)
      assert.deepEqual((await noImage.json()).detail[0].loc, ['body', 'image'])
      const imagine = await (await post(agent.url + '/predict/', { ...fixtureJson('agent', 'legacy-predict-request.json'), type: 'imagine' })).json()
      assert.equal(readSolidPng(Buffer.from(imagine.response, 'base64')).width, 64)
      await agent.setMode('error')
      const failed = await post(agent.url + '/predict/', fixtureJson('agent', 'legacy-predict-request.json'))
      assert.equal(failed.status, 500)
      assertSameShape(await failed.json(), fixtureJson('agent', 'legacy-error.json'))
    })
  })

  describe('openai images', () => {
    const started: Standin[] = []
    afterEach(async () => {
      await Promise.all(started.map(async s => { await s.close() }))
      started.length = 0
    })

    it('POST /v1/images/generations answers the documented shape with real PNGs', async () => {
      const openai = await startOpenAIStandin({ models: ['gpt-image-1.5', 'dall-e-2', 'dall-e-3'] })
      started.push(openai)
      const res = await post(openai.url + '/v1/images/generations', fixtureJson('openai', 'images-request.json'))
      assert.equal(res.status, 200)
      const body = await res.json()
      assertSameShape(body, fixtureJson('openai', 'images.json'), {}, 'images (gpt-image)')
      assert.equal(readSolidPng(Buffer.from(body.data[0].b64_json, 'base64')).width, 1024)
      const dalle = await (await post(openai.url + '/v1/images/generations', { model: 'dall-e-2', prompt: 'x', n: 2, size: '256x256', response_format: 'b64_json' })).json()
      assertSameShape(dalle, fixtureJson('openai', 'images.json'), { optional: ['usage'] }, 'images (dall-e-2)')
      assert.equal(dalle.data.length, 2)
      const three = await (await post(openai.url + '/v1/images/generations', { model: 'dall-e-3', prompt: 'x', response_format: 'b64_json' })).json()
      assert.equal(three.data[0].revised_prompt, 'x')
      const url = await post(openai.url + '/v1/images/generations', { model: 'dall-e-2', prompt: 'x' })
      assert.equal(url.status, 400, 'the stand-in answers base64 only')
      assertSameShape(await url.json(), fixtureJson('openai', 'error.json'), OPENAI_ERROR)
      const client = new OpenAI({ baseURL: openai.url + '/v1', apiKey: 'sk-test', maxRetries: 0 })
      const generated = await client.images.generate({ model: 'dall-e-2', prompt: 'a fox', response_format: 'b64_json', size: '256x256' })
      assert.equal(readSolidPng(Buffer.from(generated.data?.[0].b64_json ?? '', 'base64')).height, 256)
    })
  })
})
