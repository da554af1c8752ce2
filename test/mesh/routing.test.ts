/**
 * Routing by expected completion time, on a real mesh: a fast and a slow worker serve the same
 * model. Sequential tasks go mostly to the fast one; when their speeds swap the split follows;
 * many concurrent tasks spill over to the slow one once the fast one's queue makes it slower.
 */
import assert from 'node:assert/strict'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin, type OllamaStandin } from '../standins/index.js'
import type { RealmNode } from '../../node/node.js'

const REPLY = 'a b c d e'
const FAST_TOKEN_MS = 5
const SLOW_TOKEN_MS = 80

async function runTask (node: RealmNode, requester = 'test'): Promise<string> {
  const run = node.tasks.submit({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'go' }] } }, { requester })
  await run.result
  const done = (await node.tasks.get(run.id))
  assert.equal(done?.status, 'done')
  return done!.peerId!
}

describe('mesh: routing by latency and load', function () {
  this.timeout(180_000)
  const cleanup = new Cleanup()
  let a: RealmNode, w1: RealmNode, w2: RealmNode
  let s1: OllamaStandin, s2: OllamaStandin

  before(async () => {
    s1 = await startOllamaStandin({ reply: () => REPLY, tokenDelayMs: FAST_TOKEN_MS })
    s2 = await startOllamaStandin({ reply: () => REPLY, tokenDelayMs: SLOW_TOKEN_MS })
    cleanup.add(async () => { await s1.close(); await s2.close() })
    // latency and load alone: no probation penalty for either worker (see probation.test.ts)
    a = cleanup.node(await startTestNode({ config: c => { c.tasks.probation_tasks = 0 } }))
    w1 = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${s1.url}`] }))
    w2 = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${s2.url}`] }))
    await waitFor(() => a.models().find(m => m.name === 'llama3.2:1b')?.peers.length === 2, 'both workers on A')
  })
  after(async () => { await cleanup.run() })

  it('sends at least 80 % of 50 sequential tasks to the fast worker, and follows a swap of speeds within 10 tasks', async () => {
    const first: string[] = []
    for (let i = 0; i < 50; i++) first.push(await runTask(a))
    const fastShare = first.filter(p => p === w1.peerId).length / first.length
    assert.ok(fastShare >= 0.8, `fast worker got ${(fastShare * 100).toFixed(0)} % (${first.filter(p => p === w1.peerId).length}/50)`)

    s1.tokenDelayMs = SLOW_TOKEN_MS
    s2.tokenDelayMs = FAST_TOKEN_MS
    const after: string[] = []
    for (let i = 0; i < 30; i++) after.push(await runTask(a))
    const settled = after.slice(10)
    const newFastShare = settled.filter(p => p === w2.peerId).length / settled.length
    assert.ok(newFastShare >= 0.8, `after the swap, tasks 11-30 went ${(newFastShare * 100).toFixed(0)} % to the now fast worker: ${after.map(p => p === w2.peerId ? 'F' : 's').join('')}`)
  })

  it('spreads many concurrent tasks to the slow worker once the fast one is queued up', async () => {
    s1.tokenDelayMs = FAST_TOKEN_MS
    s2.tokenDelayMs = SLOW_TOKEN_MS
    // teach the router the current speeds again
    for (let i = 0; i < 10; i++) await runTask(a)
    const peers = await Promise.all(Array.from({ length: 24 }, async (_, i) => await runTask(a, `user-${i % 4}`)))
    const fast = peers.filter(p => p === w1.peerId).length
    const slow = peers.filter(p => p === w2.peerId).length
    assert.ok(slow >= 1, `the slow worker got none of 24 concurrent tasks (fast ${fast})`)
    assert.ok(fast > slow, `the fast worker should still get most: fast ${fast}, slow ${slow}`)
  })
})
