/**
 * The gateway's browser-facing protections (node/gateway/security.ts): Host checks against DNS
 * rebinding, Origin / Sec-Fetch-Site checks on state-changing requests and on the events
 * WebSocket, CORS for listed origins, security headers on every answer, per-client limits —
 * on real nodes on loopback, and the module alone on a Koa app. The official ollama and openai
 * clients still work.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import Koa from 'koa'
import { WebSocket } from 'ws'
import { Ollama } from 'ollama'
import OpenAI from 'openai'
import { Cleanup, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin } from '../standins/index.js'
import type { RealmNode } from '../../node/node.js'
import { GatewaySecurity, htmlSafeJson } from '../../node/gateway/security.js'
import { HostPolicy, OriginList, clientAddress, limitKey, normalizeOrigin } from '../../node/gateway/security-checks.js'
import { RateLimiter, TokenBucket } from '../../node/gateway/security-limits.js'
import { API_CSP } from '../../node/gateway/security-constants.js'
import { CSP as UI_CSP } from '../../node/gateway/ui.js'

interface RawAnswer {
  status: number
  headers: http.IncomingHttpHeaders
  text: string
  json: () => any
}

/** One request with full control of the headers (Host and Origin included) */
async function raw (base: string, route: string, init: { method?: string, headers?: Record<string, string>, body?: string, localAddress?: string } = {}): Promise<RawAnswer> {
  const url = new URL(route, base)
  return await new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method: init.method ?? 'GET',
      headers: init.headers,
      localAddress: init.localAddress,
      agent: false
    }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(init.body)
  })
}

interface WsAnswer {
  /** the HTTP status of a refused upgrade */
  status?: number
  body?: string
  ws?: WebSocket
  /** the first message of an accepted socket */
  first?: any
}

/** Open the events WebSocket with these headers; resolves with the first message or the refusal */
async function openEvents (base: string, headers: Record<string, string> = {}, query = ''): Promise<WsAnswer> {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/realm/events${query}`, { headers })
  return await new Promise((resolve, reject) => {
    ws.once('message', (data) => { resolve({ ws, first: JSON.parse(data.toString()) }) })
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => { resolve({ status: res.statusCode, body }) })
    })
    ws.once('error', reject)
  })
}

function hostOf (node: RealmNode): string {
  return new URL(node.url).host
}

describe('gateway security', function () {
  this.timeout(60_000)

  describe('pure checks', () => {
    it('HostPolicy: loopback names and IPs, the bound address, listed names; never an unknown DNS name', () => {
      const loop = new HostPolicy({ boundHost: '127.0.0.1', allowedHosts: [], machineName: 'box' })
      for (const h of ['127.0.0.1:5000', 'localhost:5000', 'LOCALHOST', '[::1]:5000', '127.0.0.2:80', undefined, '']) assert.ok(loop.allows(h), String(h))
      for (const h of ['evil.example', 'evil.example:5000', '10.0.0.5:5000', 'box:5000', 'localhost.evil.example', 'user@localhost', '[::1', 'a b']) assert.ok(!loop.allows(h), h)

      const any = new HostPolicy({ boundHost: '0.0.0.0', allowedHosts: ['realm.example.com', '*.grid.example.org:8443'], machineName: 'box' })
      for (const h of ['203.0.113.7:5000', '[2001:db8::1]:80', 'box:5000', 'box.local', 'realm.example.com', 'Realm.Example.Com.:443', 'a.grid.example.org:8443']) assert.ok(any.allows(h), h)
      for (const h of ['evil.example', 'grid.example.org:8443', 'a.grid.example.org:443', 'realm.example.com.evil.example']) assert.ok(!any.allows(h), h)

      assert.ok(new HostPolicy({ boundHost: '127.0.0.1', allowedHosts: ['*'] }).allows('evil.example'))
    })

    it('OriginList and normalizeOrigin: exact origins, wildcards for a name part or a port, default ports dropped', () => {
      assert.equal(normalizeOrigin('HTTPS://Realm.Example.com:443'), 'https://realm.example.com')
      assert.equal(normalizeOrigin('null'), 'null')
      assert.equal(normalizeOrigin('https://a.example/path'), undefined)
      assert.equal(normalizeOrigin('javascript:alert(1)'), undefined)
      const list = new OriginList(['https://realm.example.com:443', 'http://localhost:*', 'https://*.example.org'])
      for (const o of ['https://realm.example.com', 'http://localhost:5173', 'http://localhost', 'https://app.example.org']) assert.ok(list.has(normalizeOrigin(o)!), o)
      for (const o of ['http://realm.example.com', 'http://localhost.evil.example', 'https://example.org.evil.example', 'null']) assert.ok(!list.has(normalizeOrigin(o)!), o)
      assert.ok(new OriginList(['*']).has('https://anything.example'))
    })

    it('client address: the socket peer, or the last X-Forwarded-For entry only behind a trusted proxy; IPv6 counted per /64', () => {
      const headers = { 'x-forwarded-for': '6.6.6.6, 198.51.100.9' }
      assert.equal(clientAddress('::ffff:127.0.0.1', headers, false), '127.0.0.1')
      assert.equal(clientAddress('127.0.0.1', headers, true), '198.51.100.9')
      assert.equal(limitKey('2001:db8:1:2:3:4:5:6'), '2001:0db8:0001:0002::/64')
      assert.equal(limitKey('2001:db8:1:2::9'), limitKey('2001:db8:1:2:ffff::1'))
      assert.equal(limitKey('192.0.2.1'), '192.0.2.1')
    })

    it('token buckets: a burst, then the rate, with the wait in whole seconds; memory bounded', () => {
      const bucket = new TokenBucket(2, 3, 0)
      assert.deepEqual([bucket.take(0), bucket.take(0), bucket.take(0)], [0, 0, 0])
      assert.equal(bucket.take(0), 1)
      assert.equal(bucket.take(500), 0)
      const limiter = new RateLimiter({ ratePerS: 1, burst: 1, maxKeys: 10 })
      for (let i = 0; i < 100; i++) limiter.take(`client-${i}`)
      assert.ok(limiter.size <= 10)
      assert.equal(new RateLimiter({ ratePerS: 0, burst: 1 }).take('x'), 0)
    })

    it('error JSON never carries raw <, > or &', () => {
      const text = htmlSafeJson({ error: "model '<script>alert(1)</script>&' not found" })
      assert.ok(!/[<>&]/.test(text), text)
      assert.equal(JSON.parse(text).error, "model '<script>alert(1)</script>&' not found")
    })
  })

  describe('a node with default settings', () => {
    const cleanup = new Cleanup()
    let node: RealmNode
    let ollamaBackend: Awaited<ReturnType<typeof startOllamaStandin>>

    before(async () => {
      ollamaBackend = await startOllamaStandin({ reply: (req) => `You said: ${req.messages?.at(-1)?.content ?? req.prompt}` })
      cleanup.add(async () => { await ollamaBackend.close() })
      node = cleanup.node(await startTestNode({ workers: [`ollama=${ollamaBackend.url}`] }))
      await waitFor(() => node.models().some(m => m.name === 'llama3.2:1b'), 'the stand-in\'s models')
    })
    after(async () => { await cleanup.run() })

    it('answers its own names and refuses a DNS-rebinding Host with 421 HOST_NOT_ALLOWED in each API\'s error form', async () => {
      const port = new URL(node.url).port
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
        assert.equal((await raw(node.url, '/realm/status', { headers: { host } })).status, 200, host)
      }
      const refused = await raw(node.url, '/realm/status', { headers: { host: 'evil.example' } })
      assert.equal(refused.status, 421)
      assert.equal(refused.json().error.code, 'HOST_NOT_ALLOWED')
      assert.ok(!refused.text.includes(node.peerId))

      const ollama = await raw(node.url, '/api/tags', { headers: { host: `evil.example:${port}` } })
      assert.equal(ollama.status, 421)
      assert.equal(typeof ollama.json().error, 'string')
      const openai = await raw(node.url, '/v1/models', { headers: { host: 'evil.example' } })
      assert.equal(openai.status, 421)
      assert.equal(openai.json().error.code, 'host_not_allowed')
      assert.equal(openai.json().error.type, 'invalid_request_error')
      const page = await raw(node.url, '/', { headers: { host: 'evil.example' } })
      assert.equal(page.status, 421)
      assert.ok(!page.text.includes('<'))
    })

    it('answers a compressed body on the realm routes with 415, not 500 (found by the fuzzer)', async () => {
      const body = JSON.stringify({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'hi' }] } })
      for (const encoding of ['gzip', '']) {
        const r = await raw(node.url, '/realm/tasks', { method: 'POST', body, headers: { 'content-type': 'application/json', 'content-encoding': encoding } })
        assert.equal(r.status, 415, `Content-Encoding ${JSON.stringify(encoding)}: ${r.text}`)
        assert.equal(r.json().error.code, 'UNSUPPORTED_MEDIA_TYPE')
      }
    })

    it('a state-changing browser request needs the node\'s own origin; requests without Origin (SDKs, curl) pass', async () => {
      const body = JSON.stringify({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [] } })
      const post = async (headers: Record<string, string>): Promise<RawAnswer> => await raw(node.url, '/realm/tasks', { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } })

      // the task is invalid on purpose: reaching the route (400) shows the request was let through
      assert.equal((await post({})).status, 400)
      assert.equal((await post({ origin: node.url })).status, 400)
      assert.equal((await post({ origin: node.url.replace('127.0.0.1', 'localhost'), host: hostOf(node).replace('127.0.0.1', 'localhost') })).status, 400)
      assert.equal((await post({ origin: node.url, 'sec-fetch-site': 'same-origin' })).status, 400)

      for (const origin of ['http://evil.example', 'null', node.url.replace('http:', 'https:'), node.url.replace(/:\d+$/, ':1')]) {
        const refused = await post({ origin })
        assert.equal(refused.status, 403, origin)
        assert.equal(refused.json().error.code, 'ORIGIN_NOT_ALLOWED')
      }
      const crossSite = await post({ 'sec-fetch-site': 'cross-site' })
      assert.equal(crossSite.status, 403)
      assert.equal(crossSite.json().error.code, 'ORIGIN_NOT_ALLOWED')

      const del = await raw(node.url, '/realm/tasks/abcdefgh12', { method: 'DELETE', headers: { origin: 'http://evil.example' } })
      assert.equal(del.status, 403)

      // the compatibility routes, in their own error forms
      const chat = await raw(node.url, '/api/chat', { method: 'POST', body: '{}', headers: { origin: 'http://evil.example' } })
      assert.equal(chat.status, 403)
      assert.match(chat.json().error, /evil\.example/)
      const completion = await raw(node.url, '/v1/chat/completions', { method: 'POST', body: '{}', headers: { 'sec-fetch-site': 'cross-site' } })
      assert.equal(completion.status, 403)
      assert.equal(completion.json().error.code, 'origin_not_allowed')

      // reading is not refused, but without CORS headers a cross-origin page cannot read the answer
      const read = await raw(node.url, '/realm/status', { headers: { origin: 'http://evil.example' } })
      assert.equal(read.status, 200)
      assert.equal(read.headers['access-control-allow-origin'], undefined)
      const preflight = await raw(node.url, '/api/chat', { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } })
      assert.equal(preflight.status, 403)
      assert.equal(preflight.headers['access-control-allow-origin'], undefined)
    })

    it('the events WebSocket opens for the node\'s own pages and for non-browser clients, never for another origin', async () => {
      const own = await openEvents(node.url, { origin: node.url })
      assert.equal(own.first?.type, 'hello')
      own.ws?.terminate()
      const plain = await openEvents(node.url)
      assert.equal(plain.first?.type, 'hello')
      plain.ws?.terminate()

      const cross = await openEvents(node.url, { origin: 'http://evil.example' })
      assert.equal(cross.status, 403)
      assert.equal(JSON.parse(cross.body!).error.code, 'ORIGIN_NOT_ALLOWED')
      const site = await openEvents(node.url, { 'sec-fetch-site': 'cross-site' })
      assert.equal(site.status, 403)
      const rebound = await openEvents(node.url, { host: 'evil.example', origin: 'http://evil.example' })
      assert.equal(rebound.status, 421)
      assert.equal(JSON.parse(rebound.body!).error.code, 'HOST_NOT_ALLOWED')
    })

    it('every answer carries CSP, nosniff, no-referrer and no framing: the UI, a 404 page, JSON routes, errors', async () => {
      const check = (res: RawAnswer, csp: string, what: string): void => {
        assert.equal(res.headers['content-security-policy'], csp, what)
        assert.equal(res.headers['x-content-type-options'], 'nosniff', what)
        assert.equal(res.headers['referrer-policy'], 'no-referrer', what)
        assert.equal(res.headers['x-frame-options'], 'DENY', what)
        assert.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/, what)
        assert.equal(res.headers['access-control-allow-origin'], undefined, what)
        assert.equal(res.headers['strict-transport-security'], undefined, `${what}: no HSTS over plain HTTP`)
      }
      const page = await raw(node.url, '/')
      assert.equal(page.status, 200)
      assert.match(String(page.headers['content-type']), /html/)
      check(page, UI_CSP, '/')
      check(await raw(node.url, '/no/such/page'), UI_CSP, '404 page')
      check(await raw(node.url, '/realm/status'), API_CSP, '/realm/status')
      check(await raw(node.url, '/realm/nope'), API_CSP, 'realm 404')
      check(await raw(node.url, '/api/tags'), API_CSP, '/api/tags')
      check(await raw(node.url, '/v1/models'), API_CSP, '/v1/models')
      check(await raw(node.url, '/api/chat', { method: 'POST', body: '{"model":"nope"}' }), API_CSP, 'ollama error')
      check(await raw(node.url, '/realm/status', { headers: { host: 'evil.example' } }), API_CSP, 'refusal')
    })

    it('refuses oversized request headers with 431', async () => {
      const res = await raw(node.url, '/realm/status', { headers: { 'x-padding': 'x'.repeat(20 * 1024) } })
      assert.equal(res.status, 431)
      assert.equal((await raw(node.url, '/realm/status', { headers: { 'x-padding': 'x'.repeat(8 * 1024) } })).status, 200)
    })

    it('error bodies quote input as JSON with <, >, & escaped', async () => {
      const res = await raw(node.url, '/api/show', { method: 'POST', body: JSON.stringify({ model: '<img src=x onerror=alert(1)>&' }) })
      assert.equal(res.status, 404)
      assert.match(String(res.headers['content-type']), /^application\/json/)
      assert.ok(!/[<>&]/.test(res.text), res.text)
      assert.match(res.json().error, /<img src=x onerror=alert\(1\)>&/)
      const openai = await raw(node.url, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: '<b>x</b>', messages: [{ role: 'user', content: 'hi' }] }) })
      assert.equal(openai.status, 404)
      assert.ok(!/[<>]/.test(openai.text), openai.text)
    })

    it('the official ollama and openai clients still work (they send no Origin)', async () => {
      const ollama = new Ollama({ host: node.url })
      assert.ok((await ollama.list()).models.some(m => m.name === 'llama3.2:1b'))
      const answer = await ollama.chat({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'hello realm' }] })
      assert.equal(answer.message.content, 'You said: hello realm')
      let streamed = ''
      for await (const part of await ollama.chat({ model: 'llama3.2:1b', stream: true, messages: [{ role: 'user', content: 'streaming' }] })) streamed += part.message.content
      assert.equal(streamed, 'You said: streaming')

      const openai = new OpenAI({ baseURL: `${node.url}/v1`, apiKey: 'any', maxRetries: 0 })
      const models = await openai.models.list()
      assert.ok(models.data.some(m => m.id === 'llama3.2:1b'))
      const completion = await openai.chat.completions.create({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'hi openai' }] })
      assert.equal(completion.choices[0].message.content, 'You said: hi openai')
    })
  })

  describe('a node with hosts, origins, CORS and limits configured', () => {
    const cleanup = new Cleanup()
    let node: RealmNode

    before(async () => {
      node = cleanup.node(await startTestNode({
        config: (config) => {
          config.http.allowed_hosts = ['realm.example.com']
          config.http.allowed_origins = ['https://realm.example.com']
          config.http.cors_origins = ['http://localhost:*']
          config.http.rate_limit_per_s = 0.5
          config.http.rate_limit_burst = 5
          config.http.limit_loopback = true
          config.http.max_connections_per_client = 4
          config.http.ws_messages_per_s = 1
        }
      }))
    })
    after(async () => { await cleanup.run() })

    it('serves a listed public name, and lets a listed origin change state', async () => {
      const ok = await raw(node.url, '/v1/models', { headers: { host: 'realm.example.com' } })
      assert.equal(ok.status, 200)
      assert.equal((await raw(node.url, '/v1/models', { headers: { host: 'other.example.com' } })).status, 421)
      const post = await raw(node.url, '/api/show', { method: 'POST', body: '{"model":"x"}', headers: { host: 'realm.example.com', origin: 'https://realm.example.com', 'sec-fetch-site': 'cross-site' } })
      assert.equal(post.status, 404, 'reached the route')
    })

    it('gives CORS to listed origins on the compatibility API only, with preflights answered', async () => {
      const origin = 'http://localhost:5173'
      const preflight = await raw(node.url, '/v1/chat/completions', {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-stainless-os' }
      })
      assert.equal(preflight.status, 204)
      assert.equal(preflight.headers['access-control-allow-origin'], origin)
      assert.equal(preflight.headers['access-control-allow-headers'], 'authorization, content-type, x-stainless-os')
      assert.match(String(preflight.headers['access-control-allow-methods']), /POST/)
      assert.equal(preflight.headers['access-control-allow-credentials'], undefined)

      const tags = await raw(node.url, '/api/tags', { headers: { origin } })
      assert.equal(tags.headers['access-control-allow-origin'], origin)
      assert.match(String(tags.headers.vary), /origin/i)
      const show = await raw(node.url, '/api/show', { method: 'POST', body: '{"model":"x"}', headers: { origin } })
      assert.equal(show.status, 404, 'a listed CORS origin may POST to the compat API')

      // not the realm API, not other origins
      const realm = await raw(node.url, '/realm/tasks', { method: 'POST', body: '{}', headers: { origin }, localAddress: '127.0.0.9' })
      assert.equal(realm.status, 403)
      assert.equal(realm.headers['access-control-allow-origin'], undefined)
      const other = await raw(node.url, '/api/tags', { headers: { origin: 'http://evil.example' } })
      assert.equal(other.headers['access-control-allow-origin'], undefined)
    })

    it('rate-limits the realm routes per client with 429 RATE_LIMITED and Retry-After; other clients and the compat API are unaffected', async () => {
      const from = '127.0.0.7'
      const statuses: number[] = []
      let limited: RawAnswer | undefined
      for (let i = 0; i < 8; i++) {
        const res = await raw(node.url, '/realm/status', { localAddress: from })
        statuses.push(res.status)
        if (res.status === 429) limited ??= res
      }
      assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200])
      assert.ok(limited !== undefined, statuses.join(','))
      assert.equal(limited.json().error.code, 'RATE_LIMITED')
      assert.ok(Number(limited.headers['retry-after']) >= 1, String(limited.headers['retry-after']))
      assert.equal((await raw(node.url, '/realm/status', { localAddress: '127.0.0.8' })).status, 200)
      assert.equal((await raw(node.url, '/api/tags', { localAddress: from })).status, 200)
      // the events WebSocket upgrade counts as a realm request
      const ws = new WebSocket(`${node.url.replace('http', 'ws')}/realm/events`, { localAddress: from })
      const status = await new Promise<number | undefined>((resolve) => {
        ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode); res.resume() })
        ws.once('open', () => { ws.terminate(); resolve(101) })
        ws.once('error', () => { resolve(undefined) })
      })
      assert.equal(status, 429)
    })

    it('caps open connections per client address', async () => {
      const from = '127.0.0.10'
      const sockets: net.Socket[] = []
      cleanup.add(() => { for (const s of sockets) s.destroy() })
      const port = Number(new URL(node.url).port)
      const connect = async (): Promise<net.Socket> => await new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port, localAddress: from }, () => { resolve(s) })
        s.once('error', reject)
        sockets.push(s)
      })
      for (let i = 0; i < 4; i++) await connect()
      const fifth = await connect()
      await new Promise<void>((resolve) => { fifth.once('close', () => { resolve() }) })
      sockets[0].destroy()
      await waitFor(() => node.gateway.security.connections.count(from) < 4, 'a slot to free up')
      const sixth = await connect()
      sixth.write(`GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
      const reply = await new Promise<string>((resolve) => {
        let text = ''
        sixth.on('data', (d) => { text += d.toString() })
        sixth.once('close', () => { resolve(text) })
      })
      assert.match(reply, /^HTTP\/1\.1 200/)
    })

    it('limits the messages one events client may send', async () => {
      const { ws, first } = await openEvents(node.url, {}, '')
      assert.equal(first?.type, 'hello')
      const errors: string[] = []
      ws!.on('message', (data) => {
        const msg = JSON.parse(data.toString())
        if (msg.type === 'error') errors.push(msg.code)
      })
      for (let i = 0; i < 40; i++) ws!.send(JSON.stringify({ type: 'ping' }))
      await waitFor(() => errors.includes('RATE_LIMITED'), 'a RATE_LIMITED answer')
      ws!.terminate()
    })

    it('refuses an events topic that is an object without throwing (found by the fuzzer: it ended the node)', async () => {
      const { ws, first } = await openEvents(node.url, {}, '')
      assert.equal(first?.type, 'hello')
      const answers: any[] = []
      ws!.on('message', (data) => { answers.push(JSON.parse(data.toString())) })
      ws!.send(JSON.stringify({ type: 'subscribe', topics: [{ toString: { polluted: true } }, 'presence'] }))
      await waitFor(() => answers.some(m => m.type === 'subscribed'), 'the subscription answer')
      const error = answers.find(m => m.type === 'error')
      assert.equal(error?.code, 'UNKNOWN_TOPIC')
      assert.match(error.message, /\(object\)/)
      assert.ok(answers.find(m => m.type === 'subscribed').topics.includes('presence'))
      ws!.terminate()
    })
  })

  describe('the middleware alone, behind a trusted proxy', () => {
    let server: http.Server
    let base: string

    before(async () => {
      const security = new GatewaySecurity('127.0.0.1', { trustProxy: true, rateLimitPerS: 1, rateLimitBurst: 2, allowedHosts: ['realm.example.com'] })
      const app = new Koa()
      app.proxy = true
      app.silent = true
      app.use(security.middleware())
      app.use((ctx) => {
        if (ctx.path === '/realm/boom') throw new Error('a bug')
        ctx.body = { ok: true, ip: ctx.ip }
      })
      server = http.createServer(app.callback())
      await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    })
    after(async () => {
      server.closeAllConnections()
      await new Promise((resolve) => { server.close(resolve) })
    })

    it('takes the public scheme and host from the proxy for the same-origin check', async () => {
      const headers = { host: '127.0.0.1', 'x-forwarded-host': 'realm.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.1' }
      assert.equal((await raw(base, '/x', { method: 'POST', headers: { ...headers, origin: 'https://realm.example.com' } })).status, 200)
      assert.equal((await raw(base, '/x', { method: 'POST', headers: { ...headers, origin: 'http://realm.example.com' } })).status, 403)
      assert.equal((await raw(base, '/x', { headers: { ...headers, 'x-forwarded-host': 'evil.example' } })).status, 421)
    })

    it('limits each forwarded client (the last X-Forwarded-For entry), not the proxy', async () => {
      const as = async (chain: string): Promise<number> => (await raw(base, '/realm/x', { headers: { 'x-forwarded-for': chain } })).status
      assert.deepEqual([await as('198.51.100.2'), await as('198.51.100.2'), await as('198.51.100.2')], [200, 200, 429])
      // a client cannot escape its bucket by claiming another address in front of the real one
      assert.equal(await as('1.1.1.1, 198.51.100.2'), 429)
      assert.equal(await as('198.51.100.3'), 200)
    })

    it('a route that throws still answers JSON with the security headers', async () => {
      const res = await raw(base, '/realm/boom', { headers: { 'x-forwarded-for': '198.51.100.4' } })
      assert.equal(res.status, 500)
      assert.deepEqual(res.json(), { error: { code: 'INTERNAL', message: 'internal error' } })
      assert.equal(res.headers['x-content-type-options'], 'nosniff')
      assert.equal(res.headers['content-security-policy'], API_CSP)
    })
  })
})
