/**
 * The sysop routes on a real node (in this process): every route refuses a request without the
 * token or with a wrong one (401), a burst of wrong tokens from one address is throttled (429,
 * even for the right token), a session cookie works and is HttpOnly + SameSite=Strict, a rotated
 * token takes effect at once; then what each route does.
 *
 * Requests come from different loopback addresses (127.0.0.x) so that one check's failures do
 * not lock out the next: the limiter counts per client address.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import WebSocket from 'ws'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Cleanup, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin } from '../standins/index.js'
import { newSysopToken } from '../../node/sysop-token.js'
import { writeFileAtomic } from '../../node/fs-util.js'
import type { RealmNode } from '../../node/node.js'

interface Answer { status: number, headers: http.IncomingHttpHeaders, body: any, text: string }

/** One request, from a chosen loopback address */
async function call (node: RealmNode, method: string, route: string, opts: { token?: string, cookie?: string, body?: unknown, from?: string, headers?: Record<string, string> } = {}): Promise<Answer> {
  const url = new URL(node.url + route)
  const payload = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body)
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  if (opts.cookie !== undefined) headers.cookie = opts.cookie
  if (payload !== undefined) { headers['content-type'] = 'application/json'; headers['content-length'] = String(Buffer.byteLength(payload)) }
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers, localAddress: opts.from ?? '127.0.0.1', agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (d: string) => { text += d }).on('end', () => {
        let body: any
        try { body = JSON.parse(text) } catch { body = undefined }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text })
      })
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => { req.destroy(new Error('timeout')) })
    req.end(payload)
  })
}

/** Every sysop route (and an unknown one), each with a body it would take */
const ROUTES: Array<[string, string, unknown?]> = [
  ['GET', '/realm/sysop/blocklist'],
  ['POST', '/realm/sysop/blocklist', { cidr: '10.0.0.0/8' }],
  ['DELETE', '/realm/sysop/blocklist/10.0.0.0%2F8'],
  ['POST', '/realm/sysop/blocklist/publish'],
  ['GET', '/realm/sysop/users'],
  ['POST', '/realm/sysop/users/someone/ban', {}],
  ['DELETE', '/realm/sysop/users/someone/ban'],
  ['POST', '/realm/sysop/workers/ollama-1/bench', {}],
  ['DELETE', '/realm/sysop/workers/ollama-1/bench'],
  ['POST', '/realm/sysop/broadcast', { message: 'hello' }],
  ['GET', '/realm/sysop/log'],
  ['GET', '/realm/sysop/session'],
  ['DELETE', '/realm/sysop/session'],
  ['GET', '/realm/sysop/no-such-route'],
  ['GET', '/realm/sysop']
]

describe('sysop routes', function () {
  this.timeout(60_000)
  const cleanup = new Cleanup()
  let node: RealmNode
  let token: string
  let ollama: Awaited<ReturnType<typeof startOllamaStandin>>

  before(async () => {
    ollama = await startOllamaStandin({ tokenDelayMs: 200 })
    cleanup.add(async () => { await ollama.close() })
    node = cleanup.node(await startTestNode({ workers: [`ollama=${ollama.url}`] }))
    token = (await fs.readFile(path.join(node.dataDir, 'sysop.token'), 'utf8')).trim()
    await waitFor(() => node.workers[0].status().state === 'ok', 'the worker to be ok')
  })
  after(async () => { await cleanup.run() })

  it('answers 401 UNAUTHORIZED on every route without a token, and with a wrong one', async () => {
    for (const [method, route, body] of ROUTES) {
      const r = await call(node, method, route, { body })
      assert.equal(r.status, 401, `${method} ${route} without a token: ${r.text}`)
      assert.equal(r.body?.error?.code, 'UNAUTHORIZED')
    }
    let i = 10
    for (const [method, route, body] of ROUTES) {
      // one wrong try per address: below the lockout
      const r = await call(node, method, route, { body, token: newSysopToken(), from: `127.0.0.${i++}` })
      assert.equal(r.status, 401, `${method} ${route} with a wrong token: ${r.text}`)
      assert.equal(r.body?.error?.code, 'UNAUTHORIZED')
    }
    const login = await call(node, 'POST', '/realm/sysop/session', { body: { token: newSysopToken() }, from: '127.0.0.40' })
    assert.equal(login.status, 401)
    assert.equal(login.headers['set-cookie'], undefined)
    assert.equal((await call(node, 'POST', '/realm/sysop/session', { body: {}, from: '127.0.0.41' })).status, 401)
    assert.equal(node.sysop.blocklist.view().entries.length, 0, 'nothing was done')
  })

  it('throttles a burst of wrong tokens from one address (429 TOO_MANY_ATTEMPTS with Retry-After), even the right token', async () => {
    const from = '127.0.0.50'
    const statuses: number[] = []
    for (let i = 0; i < 7; i++) statuses.push((await call(node, 'GET', '/realm/sysop/blocklist', { token: newSysopToken(), from })).status)
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429])
    const right = await call(node, 'GET', '/realm/sysop/blocklist', { token, from })
    assert.equal(right.status, 429)
    assert.equal(right.body.error.code, 'TOO_MANY_ATTEMPTS')
    assert.ok(Number(right.headers['retry-after']) >= 1 && Number(right.headers['retry-after']) <= 60)
    const login = await call(node, 'POST', '/realm/sysop/session', { body: { token }, from })
    assert.equal(login.status, 429, 'logging in is throttled too')
    // another address is not affected
    assert.equal((await call(node, 'GET', '/realm/sysop/blocklist', { token, from: '127.0.0.51' })).status, 200)
  })

  it('gives a browser a session cookie (HttpOnly, SameSite=Strict) accepted on the routes and the events socket; logout ends it', async () => {
    const login = await call(node, 'POST', '/realm/sysop/session', { body: { token } })
    assert.equal(login.status, 200, login.text)
    const setCookie = login.headers['set-cookie']?.find(c => c.startsWith('realm_sysop='))
    assert.ok(setCookie != null, 'a session cookie')
    const attrs = setCookie.split(';').map(a => a.trim().toLowerCase())
    assert.ok(attrs.includes('httponly'))
    assert.ok(attrs.includes('samesite=strict'))
    assert.ok(attrs.includes('path=/'))
    assert.ok(!attrs.includes('secure'), 'not over plain HTTP')
    assert.ok(!setCookie.includes(token), 'the cookie is not the token')
    const cookie = setCookie.split(';')[0]
    const list = await call(node, 'GET', '/realm/sysop/blocklist', { cookie })
    assert.equal(list.status, 200)
    assert.equal((await call(node, 'GET', '/realm/sysop/session', { cookie })).body.via, 'session')

    // the events socket: a sysop session may read the sysop topics; others may not
    const topics = async (headers: Record<string, string>): Promise<string[]> => {
      const ws = new WebSocket(node.url.replace('http', 'ws') + '/realm/events?topics=system,tasks,peers', { headers })
      cleanup.add(() => { ws.terminate() })
      const hello = await new Promise<any>((resolve, reject) => {
        ws.once('message', d => { resolve(JSON.parse(d.toString())) })
        ws.once('error', reject)
      })
      ws.close()
      return hello.topics.sort()
    }
    assert.deepEqual(await topics({ cookie }), ['peers', 'system', 'tasks'])
    assert.deepEqual(await topics({}), ['peers'])

    const out = await call(node, 'DELETE', '/realm/sysop/session', { cookie })
    assert.equal(out.status, 200)
    assert.ok(out.headers['set-cookie']?.some(c => c.startsWith('realm_sysop=;') && /max-age=0/i.test(c)))
    assert.equal((await call(node, 'GET', '/realm/sysop/blocklist', { cookie })).status, 401)
  })

  it('blocklist routes: validated input, 201 with the entry, URL-encoded ranges, ENTRY_NOT_FOUND', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const bad = async (body: unknown, code: string): Promise<void> => {
      const r = await call(node, 'POST', '/realm/sysop/blocklist', { token, body })
      assert.equal(r.status, 400, JSON.stringify(body))
      assert.equal(r.body.error.code, code, JSON.stringify(body))
    }
    await bad({ peerId: '12D3KooWnotarealpeer' }, 'INVALID_PEER_ID')
    await bad({ cidr: '10.0.0.0/33' }, 'INVALID_CIDR')
    await bad({ cidr: '300.0.0.1' }, 'INVALID_CIDR')
    await bad({ peerId: peer, cidr: '10.0.0.0/8' }, 'INVALID_ENTRY')
    await bad({}, 'INVALID_ENTRY')
    await bad({ peerId: peer, reason: 'x'.repeat(201) }, 'INVALID_REASON')
    await bad({ peerId: peer, expiresAt: '2001-01-01T00:00:00Z' }, 'INVALID_EXPIRY')
    await bad({ peerId: peer, color: 'red' }, 'INVALID_REQUEST')
    await bad('{not json', 'INVALID_JSON')
    await bad({ peerId: node.peerId }, 'INVALID_ENTRY')

    const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
    const created = await call(node, 'POST', '/realm/sysop/blocklist', { token, body: { peerId: peer, reason: 'spam', expiresAt } })
    assert.equal(created.status, 201, created.text)
    assert.equal(created.body.peerId, peer)
    assert.equal(created.body.reason, 'spam')
    assert.equal(created.body.source, 'local')
    assert.equal(created.body.expiresAt, expiresAt)
    const range = await call(node, 'POST', '/realm/sysop/blocklist', { token, body: { cidr: '2001:DB8::7/32' } })
    assert.equal(range.status, 201)
    assert.equal(range.body.cidr, '2001:db8::/32')

    const list = (await call(node, 'GET', '/realm/sysop/blocklist', { token })).body
    assert.deepEqual(list.entries.map((e: any) => e.entry).sort(), ['2001:db8::/32', peer].sort())
    assert.deepEqual(list.follow, [])
    const peers = (await call(node, 'GET', '/realm/peers')).body
    assert.ok(Array.isArray(peers.peers))

    const del = await call(node, 'DELETE', `/realm/sysop/blocklist/${encodeURIComponent('2001:db8::/32')}`, { token })
    assert.equal(del.status, 200, del.text)
    assert.deepEqual(del.body, { entry: '2001:db8::/32', kind: 'cidr', removed: true, overridden: false })
    assert.equal((await call(node, 'DELETE', `/realm/sysop/blocklist/${encodeURIComponent('2001:db8::/32')}`, { token })).body.error.code, 'ENTRY_NOT_FOUND')
    assert.equal((await call(node, 'DELETE', `/realm/sysop/blocklist/${peer}`, { token })).status, 200)
    // a range whose `/` the client did not encode
    assert.equal((await call(node, 'POST', '/realm/sysop/blocklist', { token, body: { cidr: '192.0.2.0/24' } })).status, 201)
    assert.equal((await call(node, 'DELETE', '/realm/sysop/blocklist/192.0.2.0/24', { token })).body.entry, '192.0.2.0/24')
    assert.equal((await call(node, 'DELETE', '/realm/sysop/blocklist/not-a-peer', { token })).body.error.code, 'INVALID_PEER_ID')

    const published = await call(node, 'POST', '/realm/sysop/blocklist/publish', { token })
    assert.equal(published.status, 200, published.text)
    assert.equal(published.body.publisher, node.peerId)
    assert.equal(published.body.entries, 0)
    assert.equal((await call(node, 'GET', '/realm/sysop/blocklist', { token })).body.publishing, true)
  })

  it('benches and unbenches a local worker: its models leave the mesh and come back', async () => {
    const id = node.workers[0].id
    assert.ok((await call(node, 'GET', '/realm/models')).body.models.length > 0)
    const benched = await call(node, 'POST', `/realm/sysop/workers/${id}/bench`, { token, body: { reason: 'maintenance' } })
    assert.equal(benched.status, 200, benched.text)
    assert.equal(benched.body.worker.state, 'benched')
    assert.deepEqual((await call(node, 'GET', '/realm/models')).body.models, [])
    const refused = await call(node, 'POST', '/realm/tasks', { body: { kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'hi' }] } } })
    assert.equal(refused.status, 404, 'a benched worker gets no tasks')
    assert.equal((await call(node, 'POST', '/realm/sysop/workers/nope/bench', { token })).body.error.code, 'WORKER_NOT_FOUND')
    const back = await call(node, 'DELETE', `/realm/sysop/workers/${id}/bench`, { token })
    assert.equal(back.status, 200)
    assert.equal(back.body.worker.state, 'ok')
    assert.ok((await call(node, 'GET', '/realm/models')).body.models.length > 0)
    assert.equal((await call(node, 'DELETE', `/realm/sysop/workers/${id}/bench`, { token })).body.error.code, 'NOT_BENCHED')
  })

  it('lets the sysop cancel anyone\'s task', async () => {
    const submitted = await call(node, 'POST', '/realm/tasks', { body: { kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'a long answer please' }] } }, from: '127.0.0.60' })
    assert.equal(submitted.status, 202, submitted.text)
    const id = submitted.body.id
    assert.equal((await call(node, 'DELETE', `/realm/tasks/${id}`, { from: '127.0.0.61' })).status, 404, 'not another requester\'s')
    const cancelled = await call(node, 'DELETE', `/realm/tasks/${id}`, { token, from: '127.0.0.61' })
    assert.equal(cancelled.status, 200, cancelled.text)
    await waitFor(async () => (await node.tasks.get(id))?.status === 'cancelled', 'the task to end cancelled')
  })

  it('bans and unbans a web UI user: their requests are refused, then served', async () => {
    const me = await call(node, 'GET', '/realm/me', { headers: { 'sec-fetch-site': 'same-origin' } })
    assert.equal(me.status, 200, me.text)
    const userCookie = me.headers['set-cookie']!.find(c => c.startsWith('rah_user='))!.split(';')[0]
    const userId = me.body.id
    assert.ok((await call(node, 'GET', '/realm/sysop/users', { token })).body.users.some((u: any) => u.id === userId && u.banned === false))
    const ban = await call(node, 'POST', `/realm/sysop/users/${userId}/ban`, { token, body: { reason: 'abuse' } })
    assert.equal(ban.status, 200, ban.text)
    assert.equal(ban.body.user.banned, true)
    assert.equal(ban.body.user.banReason, 'abuse')
    assert.equal((await call(node, 'GET', '/realm/tasks', { cookie: userCookie })).status, 403)
    assert.equal((await call(node, 'POST', '/realm/sysop/users/nobody-at-all/ban', { token })).body.error.code, 'USER_NOT_FOUND')
    assert.equal((await call(node, 'DELETE', `/realm/sysop/users/${userId}/ban`, { token })).status, 200)
    assert.equal((await call(node, 'GET', '/realm/tasks', { cookie: userCookie })).status, 200)
    assert.equal((await call(node, 'DELETE', `/realm/sysop/users/${userId}/ban`, { token })).body.error.code, 'USER_NOT_FOUND')
  })

  it('broadcasts a message to every events client, and serves the trace log as NDJSON', async () => {
    const ws = new WebSocket(node.url.replace('http', 'ws') + '/realm/events')
    cleanup.add(() => { ws.terminate() })
    const seen: any[] = []
    ws.on('message', d => { seen.push(JSON.parse(d.toString())) })
    await waitFor(() => seen.some(e => e.type === 'hello'), 'hello')
    assert.equal((await call(node, 'POST', '/realm/sysop/broadcast', { token, body: { message: 'x'.repeat(501) } })).body.error.code, 'INVALID_MESSAGE')
    const sent = await call(node, 'POST', '/realm/sysop/broadcast', { token, body: { message: 'maintenance at noon' } })
    assert.equal(sent.status, 200)
    await waitFor(() => seen.some(e => e.type === 'sysop.broadcast' && e.message === 'maintenance at noon'), 'the broadcast on a public socket')
    ws.close()

    await node.trace.flush()
    const log = await call(node, 'GET', '/realm/sysop/log', { token })
    assert.equal(log.status, 200)
    assert.match(String(log.headers['content-type']), /application\/x-ndjson/)
    const events = log.text.trim().split('\n').map(l => JSON.parse(l))
    assert.ok(events.some(e => e.type === 'sysop.broadcast'))
    assert.ok(events.some(e => e.type === 'sysop.blocked'))
    assert.ok(!log.text.includes(token), 'the token never reaches the trace log')
    const since = new Date(Date.now() + 60_000).toISOString()
    assert.equal((await call(node, 'GET', `/realm/sysop/log?since=${encodeURIComponent(since)}`, { token })).text, '')
    assert.equal((await call(node, 'GET', '/realm/sysop/log?since=yesterday', { token })).body.error.code, 'INVALID_SINCE')
  })

  it('takes a rotated token at once: the old one is refused, the new one works, sessions end', async () => {
    const login = await call(node, 'POST', '/realm/sysop/session', { body: { token } })
    const cookie = login.headers['set-cookie']!.find(c => c.startsWith('realm_sysop='))!.split(';')[0]
    const fresh = newSysopToken()
    await writeFileAtomic(path.join(node.dataDir, 'sysop.token'), fresh + '\n', 0o600)
    assert.equal((await call(node, 'GET', '/realm/sysop/blocklist', { token, from: '127.0.0.70' })).status, 401)
    assert.equal((await call(node, 'GET', '/realm/sysop/blocklist', { token: fresh })).status, 200)
    assert.equal((await call(node, 'GET', '/realm/sysop/blocklist', { cookie })).status, 401)
    token = fresh
  })
})
