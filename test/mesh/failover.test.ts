/**
 * Failover: the worker's backend dies, or the worker's node is SIGKILLed, before the first token
 * and mid-stream. Before the first token the answer arrives complete from the other worker with
 * nothing shown; mid-stream the realm API shows exactly one `restarted` event, then the complete
 * answer. Nothing hangs.
 */
import assert from 'node:assert/strict'
import { Cleanup, addrOf, startTestNode, tempDir } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin, type OllamaStandin } from '../standins/index.js'
import { Processes, buildOnce, type RealmNodeProcess } from '../e2e/realm-cli.js'
import type { RealmNode } from '../../node/node.js'
import OpenAI from 'openai'
import { Ollama } from 'ollama'
import { followTask } from '../helpers/sse.js'

const ANSWER = 'one two three four five six seven eight nine ten eleven twelve'

interface Side { standin: OllamaStandin, proc: RealmNodeProcess, peerId: string }

const CHAT = { kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'count' }] } }

describe('mesh: failover', function () {
  this.timeout(180_000)
  const cleanup = new Cleanup()
  const procs = new Processes()
  let a: RealmNode

  before(async () => {
    buildOnce()
    a = cleanup.node(await startTestNode())
  })
  after(async () => {
    await procs.cleanup()
    await cleanup.run()
  })

  /** Two worker nodes (processes) with their own stand-in backends, both known to A */
  async function twoWorkers (): Promise<[Side, Side]> {
    const sides = await Promise.all([0, 1].map(async () => {
      const standin = await startOllamaStandin({ reply: () => ANSWER, tokenDelayMs: 60 })
      cleanup.add(async () => { await standin.close() })
      const proc = procs.start(await tempDir(), ['--bootstrap', addrOf(a), '--worker', `ollama=${standin.url}`])
      const info = await proc.started()
      return { standin, proc, peerId: info.peerId }
    }))
    await waitFor(() => sides.every(s => a.presence.table.get(s.peerId)?.beacon.workers[0]?.health.state === 'ok'), 'both workers on A')
    return sides as [Side, Side]
  }

  function other (sides: [Side, Side], peerId: string): Side {
    return sides[0].peerId === peerId ? sides[1] : sides[0]
  }

  async function check (kill: (side: Side) => void, when: 'before-first-token' | 'mid-stream'): Promise<void> {
    const sides = await twoWorkers()
    if (when === 'before-first-token') {
      // both answer only after a pause: the chosen one dies in it
      for (const s of sides) s.standin.setMode('slow')
    }
    let victim: Side | undefined
    let tokensSeen = 0
    const events = await followTask(a, CHAT, (e) => {
      if (e.type === 'task.started' && victim == null) {
        victim = sides.find(s => s.peerId === e.peerId)
        if (when === 'before-first-token') kill(victim!)
      }
      if (e.type === 'task.token' && when === 'mid-stream' && ++tokensSeen === 3) kill(victim!)
    })
    assert.ok(victim != null, 'the task started somewhere')
    const done = events.at(-1)
    assert.equal(done.type, 'task.done', JSON.stringify(events.filter(e => e.type !== 'task.token')))
    assert.equal(done.output.text, ANSWER)
    assert.equal(done.peerId, other(sides, victim.peerId).peerId, 'answered by the other worker')
    const restarted = events.filter(e => e.type === 'task.restarted')
    if (when === 'before-first-token') {
      assert.equal(restarted.length, 0, 'invisible before the first token')
      assert.equal(events.filter(e => e.type === 'task.token').map(e => e.text).join(''), ANSWER)
    } else {
      assert.equal(restarted.length, 1, 'exactly one restarted event')
      const after = events.slice(events.indexOf(restarted[0]) + 1)
      assert.equal(after.filter(e => e.type === 'task.token').map(e => e.text).join(''), ANSWER, 'the complete answer after the restart')
    }
    for (const s of sides) await s.proc.stop('SIGKILL')
  }

  it('backend killed before the first token: the other worker answers, invisibly', async () => {
    await check((s) => { s.standin.setMode('down') }, 'before-first-token')
  })

  it('backend killed mid-stream: one restarted event, then the complete answer', async () => {
    await check((s) => { s.standin.setMode('down') }, 'mid-stream')
  })

  it('worker node SIGKILLed before the first token: the other worker answers, invisibly', async () => {
    await check((s) => { s.proc.child.kill('SIGKILL') }, 'before-first-token')
  })

  it('worker node SIGKILLed mid-stream: one restarted event, then the complete answer', async () => {
    await check((s) => { s.proc.child.kill('SIGKILL') }, 'mid-stream')
  })

  /** Kill the worker node that runs the task after `afterParts` parts reach the client, via `read` */
  async function compatCase (read: (onPart: () => void) => Promise<string>): Promise<void> {
    const sides = await twoWorkers()
    let victim: Side | undefined
    const off = a.events.subscribe(e => {
      if (e.type === 'task.started' && victim == null) victim = sides.find(s => s.peerId === e.peerId)
    })
    let parts = 0
    try {
      const text = await read(() => { if (++parts === 3) victim!.proc.child.kill('SIGKILL') })
      assert.ok(victim != null)
      assert.equal(text, ANSWER, 'the complete answer, with no gap or repeat')
    } finally {
      off()
      for (const s of sides) await s.proc.stop('SIGKILL')
    }
  }

  it('worker node SIGKILLed mid-stream: /v1/chat/completions (openai client) delivers the complete answer', async () => {
    const client = new OpenAI({ baseURL: a.url + '/v1', apiKey: 'failover', maxRetries: 0, timeout: 60_000 })
    await compatCase(async (onPart) => {
      let text = ''
      const stream = await client.chat.completions.create({ model: 'llama3.2:1b', stream: true, messages: [{ role: 'user', content: 'count' }] })
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta?.content ?? ''
        if (delta !== '') { text += delta; onPart() }
      }
      return text
    })
  })

  it('worker node SIGKILLed mid-stream: /api/chat (ollama client) delivers the complete answer', async () => {
    const ollama = new Ollama({ host: a.url })
    await compatCase(async (onPart) => {
      let text = ''
      for await (const part of await ollama.chat({ model: 'llama3.2:1b', stream: true, messages: [{ role: 'user', content: 'count' }] })) {
        if (part.message.content !== '') { text += part.message.content; onPart() }
      }
      return text
    })
  })
})
