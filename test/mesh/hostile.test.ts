/**
 * A hand-made hostile peer against a real node A on 127.0.0.1. One attack per peer id, each a
 * fresh identity: a presence flood, malformed and oversized gossip, malformed and oversized task
 * frames, replayed beacons, hundreds of streams, and a worker that advertises a model it does not
 * serve and fails the tasks it takes. Through each, A keeps answering HTTP (a liveness deadline,
 * not a speed goal) and serving an honest peer; it scores the hostile peer down — job outcomes
 * included — disconnects it, and refuses it when it dials again.
 */
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { GHOST_MODEL, HostilePeer } from '../helpers/hostile-peer.js'
import { startOllamaStandin, type OllamaStandin } from '../standins/index.js'
import { GRAYLIST_THRESHOLD } from '../../node/p2p/score-watch.js'
import type { RealmNode } from '../../node/node.js'
import type { RealmEvent } from '../../node/events/index.js'

/** Every status request during an attack must be answered within this (liveness, not speed) */
const LIVENESS_DEADLINE_MS = 10_000

/** Polls A's /realm/status while an attack runs: every answer must come, and in time */
function watchLiveness (node: RealmNode): { stop: () => Promise<{ answered: number, worstMs: number, failures: string[] }> } {
  let running = true
  let answered = 0
  let worstMs = 0
  const failures: string[] = []
  const loop = (async () => {
    while (running) {
      const t0 = Date.now()
      try {
        const res = await fetch(node.url + '/realm/status', { signal: AbortSignal.timeout(LIVENESS_DEADLINE_MS) })
        await res.arrayBuffer()
        if (res.status !== 200) failures.push(`HTTP ${res.status}`)
        else answered++
      } catch (err) {
        failures.push((err as Error).name)
      }
      worstMs = Math.max(worstMs, Date.now() - t0)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return { answered, worstMs, failures }
    }
  }
}

describe('mesh: a hand-made hostile peer', function () {
  this.timeout(180_000)
  const cleanup = new Cleanup()
  let a: RealmNode
  let b: RealmNode
  let standin: OllamaStandin
  const events: RealmEvent[] = []

  before(async () => {
    standin = await startOllamaStandin({ reply: () => 'fine thanks', tokenDelayMs: 5 })
    cleanup.add(async () => { await standin.close() })
    a = cleanup.node(await startTestNode({ workers: [`ollama=${standin.url}`] }))
    a.events.subscribe(e => { events.push(e) })
    // an honest peer that uses A's worker throughout
    b = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)] }))
    await waitFor(() => b.models().some(m => m.name === 'llama3.2:1b' && m.peers.includes(a.peerId)), "A's model on B")
  })
  after(async () => { await cleanup.run() })

  async function hostile (): Promise<HostilePeer> {
    const h = await HostilePeer.start()
    cleanup.add(async () => { await h.stop() })
    await h.connect(addrOf(a), a.peerId)
    return h
  }

  /** B's task on A's worker still completes */
  async function honestPeerServed (): Promise<void> {
    const run = b.tasks.submit({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'still there?' }] } }, { requester: 'honest' })
    const out = await run.result
    assert.equal(out.text, 'fine thanks')
  }

  /** A hung up on the peer, says so, and refuses it when it dials again */
  async function disconnected (h: HostilePeer): Promise<RealmEvent> {
    const ev = await waitFor(() => events.find(e => e.type === 'peer.graylisted' && e.peerId === h.peerId), 'A to disconnect the hostile peer')
    await waitFor(() => a.libp2p.getConnections().every(c => c.remotePeer.toString() !== h.peerId), 'no connection left between A and the hostile peer')
    assert.equal(a.presence.table.get(h.peerId), undefined, 'out of the peer table')
    const redial = await h.libp2p.dial(multiaddr(addrOf(a)), { signal: AbortSignal.timeout(5_000) }).then(() => 'connected', (err: Error) => err.name)
    // the gater refuses it once the handshake names it: the dial fails, or the connection dies at once
    await waitFor(() => !h.connectedTo(a.peerId), `the hostile peer kept out (redial: ${redial})`, 10_000)
    assert.equal(a.reputation.exiled(h.peerId), true)
    return ev
  }

  function checkLiveness (l: { answered: number, worstMs: number, failures: string[] }): void {
    assert.deepEqual(l.failures, [], `every status request answered (worst ${l.worstMs} ms)`)
    assert.ok(l.answered > 0)
  }

  it('a presence flood is rate-limited, rejected and scored down below the graylist; the peer is disconnected', async () => {
    const h = await hostile()
    const live = watchLiveness(a)
    await h.publishBeacon()
    await waitFor(() => a.presence.table.get(h.peerId), 'its first beacon accepted (a valid peer at first)')
    await h.floodPresence(300)
    const ev = await disconnected(h)
    checkLiveness(await live.stop())
    const codes = a.presence.stats.rejectedBy.get(h.peerId) ?? {}
    assert.ok((codes.BEACON_RATE_LIMITED ?? 0) > 0, JSON.stringify(codes))
    assert.ok((ev.score as number) < GRAYLIST_THRESHOLD || (ev.appScore as number) <= -8, JSON.stringify(ev))
    await honestPeerServed()
  })

  it('malformed and oversized gossip is rejected; the peer is graylisted and disconnected', async () => {
    const h = await hostile()
    const live = watchLiveness(a)
    await h.garbageGossip()
    await h.garbageGossip()
    await disconnected(h)
    checkLiveness(await live.stop())
    const codes = a.presence.stats.rejectedBy.get(h.peerId) ?? {}
    assert.ok(['BEACON_MALFORMED', 'BEACON_BAD_SIGNATURE', 'BEACON_TOO_LARGE'].every(c => (codes[c] ?? 0) > 0), JSON.stringify(codes))
    await honestPeerServed()
  })

  it('malformed and oversized task frames get coded errors and count against the peer until it is exiled', async () => {
    const h = await hostile()
    const live = watchLiveness(a)
    const codes = await h.garbageTaskFrames(addrOf(a), 6)
    assert.ok(codes.filter(c => c === 'INVALID_TASK').length >= 2, JSON.stringify(codes))
    await disconnected(h)
    checkLiveness(await live.stop())
    assert.ok((a.reputation.standing(h.peerId)?.violations ?? 0) >= 4)
    await honestPeerServed()
  })

  it('replayed beacons are ignored, the newest stays in the table, and the replays count against the peer', async () => {
    const h = await hostile()
    const live = watchLiveness(a)
    for (let i = 0; i < 5; i++) await h.publishBeacon()
    const newest = h.published.at(-1)!.seq
    await waitFor(() => a.presence.table.get(h.peerId)?.beacon.seq === newest, 'its newest beacon in A\'s table')
    await h.replayBeacons(20)
    await waitFor(() => (a.reputation.standing(h.peerId)?.violations ?? 0) >= 10, 'replays counted against it')
    assert.equal(a.presence.table.get(h.peerId)?.beacon.seq, newest, 'no replay replaced the newest beacon')
    assert.ok(a.presence.table.get(h.peerId)?.beacon.name === undefined)
    assert.ok(a.reputation.appScore(h.peerId) < 0)
    // replayed long enough, it is exiled like any other misbehaving peer
    await h.replayBeacons(30)
    await disconnected(h)
    checkLiveness(await live.stop())
    await honestPeerServed()
  })

  it('hundreds of streams: A serves a bounded few, refuses the rest, keeps serving, and drops the peer', async () => {
    const h = await hostile()
    const live = watchLiveness(a)
    const opened = h.streamFlood(addrOf(a), 300)
    // while the flood is on, an honest peer's task still completes
    await honestPeerServed()
    await opened
    await disconnected(h)
    checkLiveness(await live.stop())
    assert.ok((a.reputation.standing(h.peerId)?.violations ?? 0) >= 4, JSON.stringify(a.reputation.standing(h.peerId)))
  })

  it('more connections do not buy more task streams: beyond the per-peer bound they are answered QUEUE_FULL', async () => {
    const h = await hostile()
    const live = watchLiveness(a)
    // 4 connections × 24 streams: each connection is under its own bound (32), the peer is over its 64
    const codes = await h.streamsOverConnections(addrOf(a), 4, 24, 2_000)
    const full = codes.filter(c => c === 'QUEUE_FULL').length
    assert.ok(full >= 20, `${full} streams answered QUEUE_FULL: ${JSON.stringify(codes)}`)
    await honestPeerServed()
    // the streams it holds idle past the request deadline count against it until it is exiled
    await disconnected(h)
    checkLiveness(await live.stop())
  })

  it('a worker that advertises a model it does not serve and fails its tasks is scored down by job outcomes and disconnected', async () => {
    const h = await hostile()
    await h.failTasks('MODEL_NOT_FOUND')
    const live = watchLiveness(a)
    await h.publishBeacon(h.beacon([GHOST_MODEL]))
    await waitFor(() => a.models().some(m => m.name === GHOST_MODEL), 'the ghost model on A')
    const codes: string[] = []
    for (let i = 0; i < 6 && a.tasks.hasModel('chat', GHOST_MODEL); i++) {
      try {
        await a.tasks.submit({ kind: 'chat', model: GHOST_MODEL, input: { messages: [{ role: 'user', content: 'hi' }] } }, { requester: 'victim' }).result
        codes.push('done')
      } catch (err) {
        codes.push((err as any).code)
      }
    }
    assert.ok(!codes.includes('done'), JSON.stringify(codes))
    assert.ok(events.filter(e => e.type === 'task.attempt_failed' && e.peerId === h.peerId && e.code === 'MODEL_NOT_FOUND').length >= 3)
    await disconnected(h)
    checkLiveness(await live.stop())
    // its score sank through job outcomes alone: it sent no bad gossip
    assert.equal(a.presence.stats.rejectedBy.get(h.peerId), undefined)
    assert.ok((a.reputation.standing(h.peerId)?.lied ?? 0) >= 3)
    // what gossipsub weighs ×10 into its score: below the graylist threshold on job outcomes alone
    assert.ok(a.sysop.guard.appSpecificScore(h.peerId) * 10 < GRAYLIST_THRESHOLD, `app score ${a.sysop.guard.appSpecificScore(h.peerId)}`)
    // (gossipsub forgets a peer whose last cached score was positive when it left; one it kept is below 0)
    assert.ok(a.scoreWatch.scoreOf(h.peerId) <= 0, `gossip score ${a.scoreWatch.scoreOf(h.peerId)}`)
    await waitFor(() => !a.models().some(m => m.name === GHOST_MODEL), 'the ghost model gone from A')
    await honestPeerServed()
  })
})
