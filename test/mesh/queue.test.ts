/**
 * The fair queue across the mesh: three requesters on gateway A each queue 5 tasks for one
 * worker (one slot) on node C; they are served A1 B1 C1 A2 B2 C2 …, and every task is told
 * its position as it moves (a newcomer's first task may go ahead of someone's second), ending
 * at 0 just before it starts.
 */
import assert from 'node:assert/strict'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin } from '../standins/index.js'
import type { RealmNode } from '../../node/node.js'
import type { TaskEvent } from '../../node/tasks/types.js'

describe('mesh: fair queue', function () {
  this.timeout(120_000)
  const cleanup = new Cleanup()
  after(async () => { await cleanup.run() })

  it('serves 3 requesters round robin (A1 B1 C1 A2 …) and reports positions down to 0', async () => {
    // the blocker holds the only slot while the 15 tasks arrive
    const standin = await startOllamaStandin({
      tokenDelayMs: 20,
      reply: (req) => req.messages?.at(-1)?.content === 'block' ? Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ') : 'ok done'
    })
    cleanup.add(async () => { await standin.close() })
    const a = cleanup.node(await startTestNode())
    const c = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${standin.url}`] }))
    await waitFor(() => a.models().some(m => m.name === 'llama3.2:1b' && m.peers.includes(c.peerId)), 'C\'s model on A')

    const chat = (content: string) => ({ kind: 'chat' as const, model: 'llama3.2:1b', input: { messages: [{ role: 'user' as const, content }] } })
    const blocker = a.tasks.submit(chat('block'), { requester: 'X' })
    await waitFor(() => standin.requests.some(r => r.path === '/api/chat'), 'the blocker running on the backend')

    const labels: string[] = []
    for (const r of ['A', 'B', 'C']) for (let i = 1; i <= 5; i++) labels.push(`${r}${i}`)
    const positions = new Map<string, number[]>()
    const runs = []
    for (const label of labels) {
      const run = a.tasks.submit(chat(label), { requester: `user-${label[0]}` })
      positions.set(label, [])
      run.subscribe((e: TaskEvent) => { if (e.type === 'task.queued') positions.get(label)!.push(e.position) })
      // arrival order is the order of submission: wait until C has queued this one
      await run.accepted
      runs.push(run)
    }
    await blocker.result
    await Promise.all(runs.map(async r => await r.result))

    const served = standin.requests.filter(r => r.path === '/api/chat').map(r => (r.body as any).messages.at(-1).content).filter((l: string) => l !== 'block')
    assert.deepEqual(served, ['A1', 'B1', 'C1', 'A2', 'B2', 'C2', 'A3', 'B3', 'C3', 'A4', 'B4', 'C4', 'A5', 'B5', 'C5'])

    // the position each was given on arrival is its place in the fair order of the tasks then waiting
    const arrived: string[] = []
    for (const label of labels) {
      arrived.push(label)
      const order = [...arrived].sort((x, y) => Number(x.slice(1)) - Number(y.slice(1)) || x.charCodeAt(0) - y.charCodeAt(0))
      const seen = positions.get(label)!
      assert.equal(seen[0], order.indexOf(label), `${label} arrived at position ${seen[0]}, expected ${order.indexOf(label)} (${seen.join(',')})`)
      assert.equal(seen.at(-1), 0, `${label} was last told position ${String(seen.at(-1))} before it started: nothing was served between`)
    }
  })
})
