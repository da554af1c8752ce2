/**
 * Tasks across a real mesh: a request entering node A runs on the best worker anywhere,
 * streams back, queues fairly, fails over, and is never silently lost.
 */
import assert from 'node:assert/strict'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin } from '../standins/index.js'
import type { RealmNode } from '../../node/node.js'

/** POST /realm/tasks with SSE; resolves with every event once the task ends */
export async function sseTask (node: RealmNode, body: unknown, headers: Record<string, string> = {}): Promise<any[]> {
  const res = await fetch(node.url + '/realm/tasks', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify(body)
  })
  if (res.status !== 200) throw Object.assign(new Error(`status ${res.status}: ${await res.text()}`), { status: res.status })
  const text = await res.text()
  return text.split('\n\n').filter(b => b.includes('data: ')).map(b => JSON.parse(b.slice(b.indexOf('data: ') + 6)))
}

function tokens (events: any[]): string {
  return events.filter(e => e.type === 'task.token').map(e => e.text).join('')
}

describe('mesh: tasks', function () {
  this.timeout(90_000)
  const cleanup = new Cleanup()
  let a: RealmNode, b: RealmNode, c: RealmNode
  let ollama: Awaited<ReturnType<typeof startOllamaStandin>>

  before(async () => {
    ollama = await startOllamaStandin({ reply: (req) => `You said: ${req.messages?.at(-1)?.content ?? req.prompt}. The realm answers.` })
    cleanup.add(async () => { await ollama.close() })
    a = cleanup.node(await startTestNode())
    b = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)] }))
    c = cleanup.node(await startTestNode({ bootstrap: [addrOf(b)], workers: [`ollama=${ollama.url}`] }))
    await waitFor(async () => a.models().some(m => m.name === 'llama3.2:1b'), 'C\'s models on A')
  })
  after(async () => { await cleanup.run() })

  it('a chat through A runs on C\'s worker and streams back over SSE, then is in A\'s history', async () => {
    const events = await sseTask(a, { kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'hello realm' }] } })
    const types = events.map(e => e.type)
    assert.equal(types[0], 'task.submitted')
    assert.ok(types.includes('task.queued'), types.join(','))
    assert.equal(types.at(-1), 'task.done')
    const started = events.find(e => e.type === 'task.started')
    assert.equal(started.peerId, c.peerId)
    assert.equal(tokens(events), 'You said: hello realm. The realm answers.')
    const done = events.at(-1)
    assert.equal(done.output.text, 'You said: hello realm. The realm answers.')
    assert.equal(done.peerId, c.peerId)
    assert.ok(done.timings.totalMs >= 0)
    assert.ok(ollama.requests.some(r => r.path === '/api/chat' && JSON.stringify(r.body).includes('hello realm')))

    const history = await (await fetch(a.url + '/realm/tasks')).json()
    const rec = history.tasks.find((t: any) => t.id === done.id)
    assert.equal(rec.status, 'done')
    assert.equal(rec.peerId, c.peerId)
    assert.equal(rec.model, 'llama3.2:1b')
    assert.equal(rec.prompt, 'hello realm')
    const one = await (await fetch(`${a.url}/realm/tasks/${done.id}`)).json()
    assert.equal(one.output.text, 'You said: hello realm. The realm answers.')
  })

  it('answers 404 MODEL_NOT_FOUND and 400 INVALID_TASK before anything runs', async () => {
    const r1 = await fetch(a.url + '/realm/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'chat', model: 'nope:1b', input: { messages: [{ role: 'user', content: 'x' }] } }) })
    assert.equal(r1.status, 404)
    assert.equal((await r1.json()).error.code, 'MODEL_NOT_FOUND')
    const r2 = await fetch(a.url + '/realm/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [] } }) })
    assert.equal(r2.status, 400)
    assert.equal((await r2.json()).error.code, 'INVALID_TASK')
    const r3 = await fetch(a.url + '/realm/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' })
    assert.equal(r3.status, 400)
  })
})
