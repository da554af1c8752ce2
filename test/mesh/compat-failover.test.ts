/**
 * Failover on the compatibility routes: the chosen worker's backend dies mid-stream. When the
 * next worker gives the same answer, the client of `/api/chat` (ollama client) or
 * `/v1/chat/completions` (openai client) reads the complete answer with no gap and no repeat;
 * when it gives another answer, the stream ends with the API's own error form, never hangs,
 * and what was delivered is a prefix of the first worker's answer.
 */
import assert from 'node:assert/strict'
import { Ollama } from 'ollama'
import OpenAI from 'openai'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin, type OllamaStandin } from '../standins/index.js'
import type { RealmNode } from '../../node/node.js'

const ANSWER = 'one two three four five six seven eight nine ten eleven twelve'
const OTHER_ANSWER = 'uno dos tres cuatro cinco seis siete ocho nueve diez once doce'
/** Pause between the stand-ins' tokens, so the kill lands mid-stream */
const TOKEN_DELAY_MS = 60
/** Parts the client reads before the chosen worker's backend goes down */
const KILL_AFTER_PARTS = 3
/** Far above how long any of these streams takes: a stream still open then has hung */
const STREAM_DEADLINE_MS = 60_000

interface Side { standin: OllamaStandin, node: RealmNode, answer: string }

describe('mesh: failover on the compatibility routes', function () {
  this.timeout(120_000)
  const cleanup = new Cleanup()
  let a: RealmNode
  let oc: Ollama
  let client: OpenAI

  before(async () => {
    a = cleanup.node(await startTestNode())
    oc = new Ollama({ host: a.url })
    client = new OpenAI({ baseURL: a.url + '/v1', apiKey: 'x', maxRetries: 0 })
  })
  after(async () => { await cleanup.run() })

  /** what each test starts, stopped after it */
  let local: Cleanup
  beforeEach(() => { local = new Cleanup() })
  afterEach(async () => { await local.run() })

  /** Two worker nodes known to A, each with its own Ollama stand-in answering `answers[i]` */
  async function twoWorkers (answers: [string, string]): Promise<[Side, Side]> {
    const sides = await Promise.all(answers.map(async (answer) => {
      const standin = await startOllamaStandin({ reply: () => answer, tokenDelayMs: TOKEN_DELAY_MS })
      local.add(async () => { await standin.close() })
      const node = local.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${standin.url}`] }))
      return { standin, node, answer }
    }))
    await waitFor(() => sides.every(s => a.presence.table.get(s.node.peerId)?.beacon.workers[0]?.health.state === 'ok'), 'both workers healthy on A')
    return sides as [Side, Side]
  }

  /**
   * Follows A's bus: the side the next task starts on, and a `kill` that takes that side's
   * backend down (once)
   */
  function watchFirstStart (sides: [Side, Side]): { victim: () => Side, kill: () => void, taskId: () => string } {
    let victim: Side | undefined
    let id: string | undefined
    let killed = false
    const off = a.events.subscribe(e => {
      if (e.type === 'task.started' && victim == null) {
        victim = sides.find(s => s.node.peerId === e.peerId)
        id = e.id as string
      }
    })
    local.add(off)
    return {
      victim: () => { assert.ok(victim != null, 'the task started on one of the workers'); return victim },
      taskId: () => { assert.ok(id != null); return id },
      kill: () => {
        if (killed) return
        killed = true
        assert.ok(victim != null, 'tokens before the task started')
        void victim.standin.setMode('down')
      }
    }
  }

  function other (sides: [Side, Side], side: Side): Side {
    return sides[0] === side ? sides[1] : sides[0]
  }

  async function record (id: string, headers: Record<string, string> = {}): Promise<any> {
    return await waitFor(async () => {
      const t = await (await fetch(`${a.url}/realm/tasks/${id}`, { headers })).json()
      return t.status === 'done' || t.status === 'error' ? t : undefined
    }, 'the task ended in A\'s history')
  }

  it('/api/chat (ollama client): the backend dies mid-stream, the other worker\'s same answer continues it exactly', async () => {
    const sides = await twoWorkers([ANSWER, ANSWER])
    const watch = watchFirstStart(sides)
    let text = ''
    let parts = 0
    let last: any
    for await (const part of await oc.chat({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'count' }], stream: true })) {
      text += part.message.content
      last = part
      if (part.message.content !== '' && ++parts === KILL_AFTER_PARTS) watch.kill()
    }
    assert.equal(text, ANSWER, 'the complete answer, no gap, no repeat')
    assert.equal(last.done, true)
    const victim = watch.victim()
    assert.equal(victim.standin.getMode(), 'down', 'the kill happened')
    const t = await record(watch.taskId())
    assert.equal(t.status, 'done')
    assert.equal(t.peerId, other(sides, victim).node.peerId, 'finished by the other worker')
    assert.equal(t.attempts, 2)
    assert.equal(other(sides, victim).standin.requestsTo('/api/chat').length, 1)
  })

  it('/v1/chat/completions (openai client): the backend dies mid-stream, the other worker\'s same answer continues it exactly', async () => {
    const sides = await twoWorkers([ANSWER, ANSWER])
    const watch = watchFirstStart(sides)
    const stream = await client.chat.completions.create({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'count' }], stream: true }, { signal: AbortSignal.timeout(STREAM_DEADLINE_MS) })
    let text = ''
    let parts = 0
    const finishes: string[] = []
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta?.content ?? ''
      text += content
      if (chunk.choices[0]?.finish_reason != null) finishes.push(chunk.choices[0].finish_reason)
      if (content !== '' && ++parts === KILL_AFTER_PARTS) watch.kill()
    }
    assert.equal(text, ANSWER, 'the complete answer, no gap, no repeat')
    assert.deepEqual(finishes, ['stop'])
    const victim = watch.victim()
    assert.equal(victim.standin.getMode(), 'down', 'the kill happened')
    const t = await record(watch.taskId(), { authorization: 'Bearer x' })
    assert.equal(t.status, 'done')
    assert.equal(t.peerId, other(sides, victim).node.peerId)
    assert.equal(t.attempts, 2)
  })

  it('/api/chat (ollama client): when the other worker answers differently the stream ends with Ollama\'s error, after a prefix of the first answer', async () => {
    const sides = await twoWorkers([ANSWER, OTHER_ANSWER])
    const watch = watchFirstStart(sides)
    let text = ''
    let parts = 0
    let sawDone = false
    let error: any
    try {
      for await (const part of await oc.chat({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'count' }], stream: true })) {
        text += part.message.content
        if (part.done) sawDone = true
        if (part.message.content !== '' && ++parts === KILL_AFTER_PARTS) watch.kill()
      }
    } catch (err) {
      error = err
    }
    assert.ok(error instanceof Error, 'the stream ended with an error')
    assert.match(error.message, /answer changed/)
    assert.equal(sawDone, false)
    const victim = watch.victim()
    assert.ok(text.length > 0 && victim.answer.startsWith(text), `${JSON.stringify(text)} is a prefix of ${JSON.stringify(victim.answer)}`)
    assert.ok(text.length < victim.answer.length)
    const t = await record(watch.taskId())
    assert.equal(t.status, 'error')
    assert.equal(t.error.code, 'BACKEND_ERROR')
  })

  it('/v1/chat/completions (openai client): when the other worker answers differently the stream ends with an APIError, after a prefix of the first answer', async () => {
    const sides = await twoWorkers([ANSWER, OTHER_ANSWER])
    const watch = watchFirstStart(sides)
    const stream = await client.chat.completions.create({ model: 'llama3.2:1b', messages: [{ role: 'user', content: 'count' }], stream: true }, { signal: AbortSignal.timeout(STREAM_DEADLINE_MS) })
    let text = ''
    let parts = 0
    const finishes: string[] = []
    let error: any
    try {
      for await (const chunk of stream) {
        const content = chunk.choices[0]?.delta?.content ?? ''
        text += content
        if (chunk.choices[0]?.finish_reason != null) finishes.push(chunk.choices[0].finish_reason)
        if (content !== '' && ++parts === KILL_AFTER_PARTS) watch.kill()
      }
    } catch (err) {
      error = err
    }
    assert.ok(error instanceof OpenAI.APIError, `an APIError, not ${String(error)}`)
    assert.match(error.message, /answer changed/)
    assert.equal(error.type, 'server_error')
    assert.deepEqual(finishes, [], 'no finish reason: the answer did not end normally')
    const victim = watch.victim()
    assert.ok(text.length > 0 && victim.answer.startsWith(text), `${JSON.stringify(text)} is a prefix of ${JSON.stringify(victim.answer)}`)
    assert.ok(text.length < victim.answer.length)
    const t = await record(watch.taskId(), { authorization: 'Bearer x' })
    assert.equal(t.status, 'error')
  })
})
