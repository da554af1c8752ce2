/**
 * Several real nodes on 127.0.0.1 in this process: they mesh, learn each other's workers from
 * presence gossip, drop a silent peer, and reject a hand-made peer's bad beacons.
 */
import assert from 'node:assert/strict'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import WebSocket from 'ws'
import { Cleanup, TEST_PRESENCE_INTERVAL_MS, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin } from '../standins/index.js'
import { TOPIC_PRESENCE } from '../../protocol/ids.js'
import { encodeBeacon, type Beacon } from '../../protocol/presence.js'
import type { RealmNode } from '../../node/node.js'

async function getJson (node: RealmNode, route: string): Promise<any> {
  const res = await fetch(node.url + route)
  assert.equal(res.status, 200, `${route} answered ${res.status}`)
  return await res.json()
}

async function peerIds (node: RealmNode): Promise<string[]> {
  const { peers } = await getJson(node, '/realm/peers')
  return peers.map((p: any) => p.peerId).sort()
}

describe('mesh: presence across 3 nodes', function () {
  this.timeout(60_000)
  const cleanup = new Cleanup()
  let a: RealmNode, b: RealmNode, c: RealmNode
  let ollama: Awaited<ReturnType<typeof startOllamaStandin>>

  before(async () => {
    ollama = await startOllamaStandin()
    cleanup.add(async () => { await ollama.close() })
    a = cleanup.node(await startTestNode())
    b = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)] }))
    c = cleanup.node(await startTestNode({ bootstrap: [addrOf(b)], workers: [`ollama=${ollama.url}`] }))
  })
  after(async () => { await cleanup.run() })

  it('forms a mesh: every node has the other two in its peer table', async () => {
    await waitFor(async () => {
      const [pa, pb, pc] = await Promise.all([peerIds(a), peerIds(b), peerIds(c)])
      return JSON.stringify(pa) === JSON.stringify([b.peerId, c.peerId].sort()) &&
        JSON.stringify(pb) === JSON.stringify([a.peerId, c.peerId].sort()) &&
        JSON.stringify(pc) === JSON.stringify([a.peerId, b.peerId].sort())
    }, 'all three peer tables to be complete')
    const status = await getJson(a, '/realm/status')
    assert.equal(status.peerId, a.peerId)
    assert.equal(status.peers, 2)
    assert.ok(status.multiaddrs.length > 0)
    for (const m of status.multiaddrs) assert.ok(m.endsWith(`/p2p/${a.peerId}`), m)
  })

  it("C's worker appears in A's /realm/models and /api/tags, with details from the backend", async () => {
    const model = await waitFor(async () => {
      const { models } = await getJson(a, '/realm/models')
      return models.find((m: any) => m.name === 'llama3.2:1b')
    }, "C's model on A")
    assert.deepEqual(model.peers, [c.peerId])
    assert.deepEqual(model.kinds, ['chat', 'generate'])
    const { models } = await getJson(a, '/realm/models')
    assert.deepEqual(models.map((m: any) => m.name).sort(), ['llama3.2:1b', 'llava:7b', 'nomic-embed-text:latest'])
    assert.deepEqual(models.find((m: any) => m.name === 'nomic-embed-text:latest').kinds, ['embed'])

    const tags = await getJson(a, '/api/tags')
    const tag = tags.models.find((m: any) => m.name === 'llama3.2:1b')
    assert.equal(tag.model, 'llama3.2:1b')
    assert.equal(tag.size, 1321098329)
    assert.equal(tag.details.family, 'llama')
    assert.equal(tag.details.parameter_size, '1.2B')
    assert.equal(tag.details.quantization_level, 'Q8_0')
    assert.match(tag.digest, /^[0-9a-f]{64}$/)
    assert.ok(!Number.isNaN(Date.parse(tag.modified_at)))

    // the peer view carries C's worker health, from /api/ps
    const { peers } = await getJson(a, '/realm/peers')
    const pc = peers.find((p: any) => p.peerId === c.peerId)
    const worker = pc.capabilities.workers[0]
    assert.equal(worker.backend, 'ollama')
    assert.equal(pc.health.workers[worker.id].state, 'ok')
    assert.equal(pc.health.workers[worker.id].vramUsed, 1_800_000_000)
    assert.equal(worker.models.find((m: any) => m.name === 'llama3.2:1b').loaded, true)
    assert.ok(!Number.isNaN(Date.parse(pc.lastSeen)))
  })

  it('streams presence and peer events on /realm/events', async () => {
    const ws = new WebSocket(a.url.replace('http', 'ws') + '/realm/events?topics=presence,peers')
    const seen: any[] = []
    ws.on('message', (d) => seen.push(JSON.parse(d.toString())))
    cleanup.add(() => { ws.terminate() })
    await waitFor(() => seen.some(e => e.type === 'hello'), 'hello')
    assert.deepEqual(seen[0].topics.sort(), ['peers', 'presence'])
    // a worker going down changes C's advertisement: A streams the update
    ollama.setMode('down')
    await waitFor(() => seen.some(e => e.type === 'presence.update' && e.peerId === c.peerId &&
      e.workers.some((w: any) => w.health.state === 'benched')), 'presence.update with the benched worker')
    const { models } = await getJson(a, '/realm/models')
    assert.deepEqual(models, [], 'a benched worker\'s models leave the mesh')
    ollama.setMode('ok')
    await waitFor(async () => (await getJson(a, '/realm/models')).models.length === 3, 'models back after the backend returns')
    // bad subscription requests get coded errors; the socket stays usable
    ws.send('not json')
    ws.send(JSON.stringify({ type: 'subscribe', topics: ['system'] }))
    await waitFor(() => seen.filter(e => e.type === 'error').length >= 2, 'two error messages')
    assert.deepEqual(seen.filter(e => e.type === 'error').map(e => e.code), ['INVALID_MESSAGE', 'UNKNOWN_TOPIC'])
    ws.close()
  })

  it('drops a peer that falls silent within 3 beacon intervals', async () => {
    // C keeps its connections but stops publishing: only expiry can remove it
    await waitFor(async () => (await peerIds(a)).includes(c.peerId), 'C in A\'s table')
    ;(c.presence as any).publish = async () => {}
    const silentSince = Date.now()
    const leave = new Promise<number>((resolve) => {
      const off = a.events.subscribe(e => {
        if (e.type === 'peer.leave' && e.peerId === c.peerId) { off(); resolve(Date.now()) }
      })
    })
    await waitFor(async () => !(await peerIds(a)).includes(c.peerId), 'A to drop C', 3 * TEST_PRESENCE_INTERVAL_MS + 10_000)
    const at = await leave
    assert.ok(at - silentSince >= 2 * TEST_PRESENCE_INTERVAL_MS, 'not dropped before it was silent for long')
    const { models } = await getJson(a, '/realm/models')
    assert.deepEqual(models, [], "C's models left A's view")
  })

  it('a peer that stops cleanly is dropped at once by its leaving beacon', async () => {
    await waitFor(async () => (await peerIds(a)).includes(b.peerId), 'B in A\'s table')
    let reason: unknown
    a.events.subscribe(e => { if (e.type === 'peer.leave' && e.peerId === b.peerId) reason = e.reason })
    await b.stop()
    await waitFor(() => reason != null, 'B to leave A\'s table')
    assert.equal(reason, 'left')
  })
})

describe('mesh: a hand-made peer sending bad beacons', function () {
  this.timeout(60_000)
  const cleanup = new Cleanup()
  after(async () => { await cleanup.run() })

  it('rejects malformed, wrongly signed and oversized beacons, keeps them out of the table and scores the peer down', async () => {
    const a = cleanup.node(await startTestNode())
    const key = await generateKeyPair('Ed25519')
    const hostile = await createLibp2p({
      privateKey: key,
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false, globalSignaturePolicy: 'StrictNoSign' }) }
    })
    cleanup.add(async () => { await hostile.stop() })
    hostile.services.pubsub.subscribe(TOPIC_PRESENCE)
    await hostile.dial(multiaddr(addrOf(a)))
    await waitFor(() => hostile.services.pubsub.getSubscribers(TOPIC_PRESENCE).some(p => p.toString() === a.peerId), 'A subscribed as seen by the hostile peer')

    const otherKey = await generateKeyPair('Ed25519')
    const real: Beacon = {
      v: 1, peerId: hostile.peerId.toString(), seq: Date.now(), time: new Date().toISOString(), intervalMs: 1000, version: '0.1.0',
      workers: [], health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 1 }
    }
    // a good beacon first: the validator is not just rejecting everything
    await hostile.services.pubsub.publish(TOPIC_PRESENCE, await encodeBeacon(real, key))
    await waitFor(() => a.presence.table.get(hostile.peerId.toString()), 'the good beacon in A\'s table')

    const bad = [
      new TextEncoder().encode('not json at all'),
      new TextEncoder().encode(JSON.stringify({ beacon: JSON.stringify({ ...real, seq: real.seq + 1 }), sig: 'AAAA' })),
      await encodeBeacon({ ...real, seq: real.seq + 2, name: 'forged' }, otherKey),
      new Uint8Array(70 * 1024).fill(0x20)
    ]
    for (const data of bad) await hostile.services.pubsub.publish(TOPIC_PRESENCE, data)

    await waitFor(() => a.presence.stats.rejected >= 4, 'four rejections on A')
    const codes = a.presence.stats.rejectedBy.get(hostile.peerId.toString())
    assert.deepEqual(Object.keys(codes ?? {}).sort(), ['BEACON_BAD_SIGNATURE', 'BEACON_MALFORMED', 'BEACON_TOO_LARGE'])
    // (once graylisted it is disconnected and dropped from the table: hostile.test.ts)
    const entry = a.presence.table.get(hostile.peerId.toString())
    if (entry != null) assert.equal(entry.beacon.seq, real.seq, 'no rejected beacon replaced the good one')
    assert.equal(entry?.beacon.name, undefined)
    const score = await waitFor(() => {
      const s = (a.libp2p.services.pubsub as any).score.score(hostile.peerId.toString())
      return s < 0 ? s : undefined
    }, 'a negative gossipsub score for the hostile peer')
    assert.ok(score < 0)
  })
})
