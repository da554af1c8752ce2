/**
 * Probation of new peer ids on a real mesh: on a worker's node, a new peer's tasks get a smaller
 * share of the queue than a proven peer's; on a requesting node, the router prefers a proven
 * worker over a new one that is faster, yet still gives the new one work when the proven one is
 * queued up (a penalty, not a ban).
 */
import assert from 'node:assert/strict'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin } from '../standins/index.js'
import type { RealmNode } from '../../node/node.js'

const MODEL = 'llama3.2:1b'
const chat = (content: string) => ({ kind: 'chat' as const, model: MODEL, input: { messages: [{ role: 'user' as const, content }] } })

async function runTask (node: RealmNode, requester = 'test'): Promise<string> {
  const run = node.tasks.submit(chat('go'), { requester })
  await run.result
  return (await node.tasks.get(run.id))!.peerId!
}

describe('mesh: probation of new peer ids', function () {
  this.timeout(180_000)
  const cleanup = new Cleanup()
  after(async () => { await cleanup.run() })

  it("a new peer's tasks get a smaller share of a worker's queue than a proven peer's", async () => {
    const standin = await startOllamaStandin({
      tokenDelayMs: 20,
      reply: (req) => req.messages?.at(-1)?.content === 'block' ? Array.from({ length: 150 }, (_, i) => `w${i}`).join(' ') : 'ok'
    })
    cleanup.add(async () => { await standin.close() })
    const w = cleanup.node(await startTestNode({ workers: [`ollama=${standin.url}`], config: c => { c.tasks.probation_tasks = 3 } }))
    const proven = cleanup.node(await startTestNode({ bootstrap: [addrOf(w)] }))
    const fresh = cleanup.node(await startTestNode({ bootstrap: [addrOf(w)] }))
    for (const n of [proven, fresh]) await waitFor(() => n.models().some(m => m.name === MODEL && m.peers.includes(w.peerId)), "W's model")

    // the proven peer has had 3 tasks served by W
    for (let i = 0; i < 3; i++) await runTask(proven)
    await waitFor(() => !w.reputation.onProbation(proven.peerId), 'the proven peer off probation on W')
    assert.equal(w.reputation.onProbation(fresh.peerId), true)

    const blocker = proven.tasks.submit(chat('block'), { requester: 'X' })
    await waitFor(() => standin.requests.some(r => (r.body as any)?.messages?.at(-1)?.content === 'block'), 'the blocker running')
    const runs = []
    for (let i = 1; i <= 8; i++) {
      for (const [node, tag] of [[proven, 'P'], [fresh, 'N']] as const) {
        const run = node.tasks.submit(chat(`${tag}${i}`), { requester: 'user' })
        await run.accepted
        runs.push(run)
      }
    }
    await blocker.result
    await Promise.all(runs.map(async r => await r.result))
    const served = standin.requests.filter(r => r.path === '/api/chat').map(r => (r.body as any).messages.at(-1).content as string).filter(l => /^[PN]\d$/.test(l))
    const firstTen = served.slice(0, 10)
    const p = firstTen.filter(l => l.startsWith('P')).length
    // equal shares would be 5 : 5; a weight of 0.25 gives the new peer about one turn in four rounds
    assert.ok(p >= 7, `the proven peer got ${p} of the first 10 turns: ${served.join(' ')}`)
    assert.ok(firstTen.some(l => l.startsWith('N')), `the new peer is served too (a share, not a ban): ${served.join(' ')}`)
  })

  it('the router prefers a proven worker to a faster new one, and still spills work to the new one', async () => {
    const s1 = await startOllamaStandin({ reply: () => 'a b c d e', tokenDelayMs: 20 })
    const s2 = await startOllamaStandin({ reply: () => 'a b c d e', tokenDelayMs: 2 })
    cleanup.add(async () => { await s1.close(); await s2.close() })
    // 10 tasks to prove a worker: a few picks of the new one (an RTT spike on a loaded machine) do not end its probation
    const a = cleanup.node(await startTestNode({ config: c => { c.tasks.probation_tasks = 10 } }))
    const w1 = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${s1.url}`] }))
    await waitFor(() => a.models().some(m => m.name === MODEL && m.peers.includes(w1.peerId)), "W1's model on A")
    for (let i = 0; i < 10; i++) assert.equal(await runTask(a), w1.peerId)
    assert.equal(a.reputation.onProbation(w1.peerId), false)

    const w2 = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${s2.url}`] }))
    await waitFor(() => a.models().find(m => m.name === MODEL)?.peers.length === 2, 'both workers on A')
    // A measures the new worker: two tasks while the proven one is down
    s1.setMode('down')
    await waitFor(() => a.models().find(m => m.name === MODEL)?.peers.join() === w2.peerId, 'only W2 serving')
    for (let i = 0; i < 2; i++) assert.equal(await runTask(a), w2.peerId)
    s1.setMode('ok')
    await waitFor(() => a.models().find(m => m.name === MODEL)?.peers.length === 2, 'W1 back')
    assert.equal(a.reputation.onProbation(w2.peerId), true)

    const picks: string[] = []
    for (let i = 0; i < 20; i++) picks.push(await runTask(a))
    const toProven = picks.filter(p => p === w1.peerId).length
    assert.ok(toProven >= 16, `the proven (slower) worker got ${toProven} of 20 sequential tasks: ${picks.map(p => p === w1.peerId ? 'P' : 'n').join('')} ${JSON.stringify(a.reputation.standing(w2.peerId))}`)

    // many at once: the proven worker's queue outweighs the penalty, the new one gets some
    const peers = await Promise.all(Array.from({ length: 40 }, async (_, i) => await runTask(a, `user-${i % 4}`)))
    const toNew = peers.filter(p => p === w2.peerId).length
    assert.ok(toNew >= 1, `the new worker got none of 40 concurrent tasks (proven ${peers.length - toNew})`)
  })
})
