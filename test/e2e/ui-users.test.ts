/**
 * Web UI users through the HTTP API and the events socket (node/gateway/users.ts): a cookie
 * identity per browser, a nickname, each user's own history, the events socket's `tasks` topic
 * carrying only the caller's own tasks, and bans that are effective at once.
 */
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { Cleanup, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin } from '../standins/index.js'
import { USER_COOKIE, type UserDirectory } from '../../node/gateway/users.js'
import type { RealmNode } from '../../node/node.js'

/** A client holding one identity cookie, as a browser would */
class Client {
  cookie = ''
  constructor (private readonly node: RealmNode) {}

  async fetch (path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (this.cookie !== '') headers.set('cookie', this.cookie)
    const res = await fetch(this.node.url + path, { ...init, headers })
    const set = res.headers.getSetCookie().find(c => c.startsWith(`${USER_COOKIE}=`))
    if (set != null) this.cookie = set.split(';')[0]
    return res
  }

  async open (): Promise<string> {
    const res = await this.fetch('/')
    await res.text()
    const me = await (await this.fetch('/realm/me')).json()
    return me.id
  }

  /** POST /realm/tasks with SSE: every event once the task ends */
  async task (prompt: string): Promise<any[]> {
    const res = await this.fetch('/realm/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: prompt }] } })
    })
    assert.equal(res.status, 200, await res.clone().text())
    const text = await res.text()
    return text.split('\n\n').filter(b => b.includes('data: ')).map(b => JSON.parse(b.slice(b.indexOf('data: ') + 6)))
  }

  socket (topics: string): { ws: WebSocket, events: any[], closed: Promise<number> } {
    const url = this.node.url.replace('http:', 'ws:') + `/realm/events?topics=${topics}`
    const ws = new WebSocket(url, { headers: this.cookie !== '' ? { cookie: this.cookie } : {} })
    const events: any[] = []
    ws.on('message', (d) => { events.push(JSON.parse(d.toString())) })
    const closed = new Promise<number>((resolve) => { ws.on('close', (code) => { resolve(code) }) })
    ws.on('error', () => {})
    return { ws, events, closed }
  }
}

describe('e2e: web UI users (API and events socket)', function () {
  this.timeout(60_000)
  const cleanup = new Cleanup()
  let node: RealmNode
  let users: UserDirectory
  let ollama: Awaited<ReturnType<typeof startOllamaStandin>>

  before(async () => {
    ollama = await startOllamaStandin({ reply: (req) => `You said: ${req.prompt}` })
    cleanup.add(async () => { await ollama.close() })
    node = cleanup.node(await startTestNode({ workers: [`ollama=${ollama.url}`] }))
    users = node.gateway.users!
    await waitFor(() => node.models().some(m => m.name === 'llama3.2:1b'), 'the worker\'s models')
  })
  after(async () => { await cleanup.run() })

  it('gives a browser an HttpOnly, SameSite cookie identity on its first visit to /', async () => {
    const res = await fetch(node.url + '/')
    const cookie = res.headers.getSetCookie().find(c => c.startsWith(`${USER_COOKIE}=`))
    assert.ok(cookie != null, 'an identity cookie')
    assert.match(cookie, /;\s*httponly/i)
    assert.match(cookie, /;\s*samesite=(lax|strict)/i)
    assert.match(cookie, /;\s*path=\//i)
    const token = /^rah_user=([^;]+)/.exec(cookie)![1]
    assert.match(token, /^[A-Za-z0-9_-]{22}$/, '128 random bits')
    const me = await (await fetch(node.url + '/realm/me', { headers: { cookie: `${USER_COOKIE}=${token}` } })).json()
    assert.match(me.id, /^[A-Za-z0-9_-]{22}$/)
    assert.notEqual(me.id, token, 'the id shown is not the secret')
    assert.equal(me.nickname, null)
  })

  it('API clients without the cookie keep their address (or key) as requester; browsers calling /realm get an identity', async () => {
    const before = users.size
    const api = await fetch(node.url + '/realm/status')
    assert.equal(api.headers.getSetCookie().length, 0)
    assert.equal(users.size, before)
    const browser = await fetch(node.url + '/realm/models', { headers: { 'sec-fetch-site': 'same-origin' } })
    assert.ok(browser.headers.getSetCookie().some(c => c.startsWith(`${USER_COOKIE}=`)))
    assert.equal(users.size, before + 1)
  })

  it('sets and checks a nickname (≤ 32 characters, no control characters; HTML is just text)', async () => {
    const c = new Client(node)
    await c.open()
    const post = async (body: unknown): Promise<Response> => await c.fetch('/realm/me', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const ok = await post({ nickname: '  <b>Ann</b> ' })
    assert.equal(ok.status, 200)
    assert.equal((await ok.json()).nickname, '<b>Ann</b>')
    for (const bad of [{ nickname: 'x'.repeat(33) }, { nickname: '' }, { nickname: 'a\u0007' }, { nickname: 5 }, { name: 'x' }]) {
      const res = await post(bad)
      assert.equal(res.status, 400, JSON.stringify(bad))
      assert.equal((await res.json()).error.code, 'INVALID_NICKNAME')
    }
    const bad = await c.fetch('/realm/me', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' })
    assert.equal(bad.status, 400)
    assert.equal((await (await c.fetch('/realm/me')).json()).nickname, '<b>Ann</b>')
  })

  it('keeps each user\'s history, tasks and events apart', async () => {
    const a = new Client(node)
    const b = new Client(node)
    const aId = await a.open()
    const bId = await b.open()
    assert.notEqual(aId, bId)
    const aSocket = a.socket('tasks,peers')
    const bSocket = b.socket('tasks,peers')
    const anon = new Client(node).socket('tasks')
    await waitFor(() => aSocket.events.some(e => e.type === 'hello') && bSocket.events.some(e => e.type === 'hello') && anon.events.some(e => e.type === 'hello'), 'sockets open')
    assert.deepEqual(aSocket.events.find(e => e.type === 'hello').topics.sort(), ['peers', 'tasks'])
    assert.ok(anon.events.some(e => e.type === 'error' && e.code === 'UNKNOWN_TOPIC'), 'a socket without an identity cannot read tasks')

    const events = await a.task('secret plans of A')
    const done = events.at(-1)
    assert.equal(done.type, 'task.done')
    assert.equal(done.output.text, 'You said: secret plans of A')

    const aHistory = (await (await a.fetch('/realm/tasks')).json()).tasks
    assert.ok(aHistory.some((t: any) => t.id === done.id))
    const bHistory = (await (await b.fetch('/realm/tasks')).json()).tasks
    assert.ok(!bHistory.some((t: any) => t.id === done.id))
    assert.equal((await a.fetch(`/realm/tasks/${done.id}`)).status, 200)
    const bOne = await b.fetch(`/realm/tasks/${done.id}`)
    assert.equal(bOne.status, 404)
    assert.equal((await bOne.json()).error.code, 'TASK_NOT_FOUND')
    assert.equal((await b.fetch(`/realm/tasks/${done.id}`, { method: 'DELETE' })).status, 404)

    await waitFor(() => aSocket.events.some(e => e.type === 'task.done' && e.id === done.id), 'A sees its own task on the socket')
    const aTaskEvents = aSocket.events.filter(e => e.type.startsWith('task.'))
    assert.ok(aTaskEvents.every(e => e.requester === `user:${aId}`))
    // give B's socket the same time to (wrongly) receive anything
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.deepEqual(bSocket.events.filter(e => e.type.startsWith('task.')), [], 'B sees none of A\'s task events')
    assert.ok(!JSON.stringify(bSocket.events).includes(aId), 'nor A\'s identity')
    for (const s of [aSocket, bSocket, anon]) s.ws.close()
  })

  it('queues fairly across users: another user\'s task does not wait behind all of this user\'s', async () => {
    const a = new Client(node)
    const b = new Client(node)
    await a.open()
    await b.open()
    ollama.tokenDelayMs = 100
    try {
      const a1 = a.task('first of A')
      await waitFor(() => ollama.requestsTo('/api/chat').some(r => r.outcome === undefined), 'A\'s first task to run')
      const a2 = a.task('second of A')
      const a3 = a.task('third of A')
      await waitFor(async () => (await (await a.fetch('/realm/tasks')).json()).tasks.filter((t: any) => t.status === 'queued').length === 2, 'A\'s two tasks to wait')
      const b1 = await b.task('first of B')
      const queued = b1.find(e => e.type === 'task.queued')
      // first come, first served would put B behind both (position 2); across users it is not
      assert.ok(queued != null && queued.position <= 1, `B's position: ${String(queued?.position)}`)
      await Promise.all([a1, a2, a3])
    } finally {
      ollama.tokenDelayMs = 0
    }
  })

  it('a ban is effective at once: 403 USER_BANNED, sockets closed, tasks cancelled; unban restores', async () => {
    const c = new Client(node)
    const id = await c.open()
    const socket = c.socket('tasks')
    await waitFor(() => socket.events.some(e => e.type === 'hello'), 'socket open')
    ollama.tokenDelayMs = 200
    const pending = c.task('a long answer please')
    await waitFor(() => socket.events.some(e => e.type === 'task.started'), 'the task runs')
    assert.equal(await users.ban(id), true)
    assert.equal(await socket.closed, 4003)
    const events = await pending
    ollama.tokenDelayMs = 0
    const last = events.at(-1)
    assert.equal(last.type, 'task.error')
    assert.equal(last.code, 'CANCELLED')
    const refused = await c.fetch('/realm/tasks')
    assert.equal(refused.status, 403)
    assert.equal((await refused.json()).error.code, 'USER_BANNED')
    const upgrade = c.socket('peers')
    await upgrade.closed
    assert.ok(!upgrade.events.some(e => e.type === 'hello'), 'a banned user cannot open the events socket')
    const page = await c.fetch('/')
    assert.equal(page.status, 200, 'the page still loads, so it can say why nothing works')
    await users.unban(id)
    assert.equal((await c.fetch('/realm/tasks')).status, 200)
  })
})
