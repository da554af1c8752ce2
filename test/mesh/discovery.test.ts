/**
 * Discovery through the DHT rendezvous: D is told only about B, yet finds C (which nobody told
 * it about) by looking up the realm's rendezvous key, connects to it directly and sees its
 * workers.
 */
import assert from 'node:assert/strict'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin } from '../standins/index.js'
import type { RealmNode } from '../../node/node.js'

function connectedTo (from: RealmNode, to: RealmNode): boolean {
  return from.libp2p.getConnections().some(c => c.remotePeer.toString() === to.peerId)
}

async function modelsOf (node: RealmNode): Promise<any[]> {
  const res = await fetch(node.url + '/realm/models')
  return (await res.json()).models
}

describe('mesh: discovery through the DHT rendezvous', function () {
  this.timeout(90_000)
  const cleanup = new Cleanup()
  after(async () => { await cleanup.run() })

  it('D, bootstrapped only to B, finds C through the rendezvous, connects to it and sees its workers', async () => {
    const ollama = await startOllamaStandin()
    cleanup.add(async () => { await ollama.close() })
    const b = cleanup.node(await startTestNode())
    const c = cleanup.node(await startTestNode({ bootstrap: [addrOf(b)], workers: [`ollama=${ollama.url}`] }))
    // C has announced itself under the rendezvous key before D arrives
    await waitFor(async () => (await c.rendezvous!.runRound()) >= 1, 'C to find B as a realm provider (and provide)')
    const d = cleanup.node(await startTestNode({ bootstrap: [addrOf(b)] }))

    const discovered = new Promise<void>((resolve) => {
      d.events.subscribe(e => { if (e.type === 'peer.discovered' && e.peerId === c.peerId && e.via === 'rendezvous') resolve() })
    })
    await waitFor(() => d.rendezvous!.found.has(c.peerId), 'D to find C as a provider of the rendezvous key', 45_000)
    await discovered
    await waitFor(() => connectedTo(d, c), 'D to connect directly to C', 45_000)
    assert.ok(!d.connector['init'].bootstrap.some((a: string) => a.includes(c.peerId)), 'D was never told about C')
    const model = await waitFor(async () => (await modelsOf(d)).find(m => m.name === 'llama3.2:1b'), "C's models on D")
    assert.deepEqual(model.peers, [c.peerId])
  })
})
