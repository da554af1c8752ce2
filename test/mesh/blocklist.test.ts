/**
 * The blocklist on real nodes (in this process, on loopback): a peer blocked on node A while it
 * runs A's task is cut at every layer at once — the task completes on the other worker, the peer
 * is disconnected, cannot reconnect or be dialled, its beacons stop reaching A (relayed ones are
 * counted and dropped), its workers leave A's models — and comes back when unblocked. The same
 * through a followed shared blocklist (B publishes, A follows B; a local override on A restores
 * the peer), and by address: peers on 127.0.0.2 and 127.0.0.3, `127.0.0.2/32` cuts only the first,
 * and the entry's expiry restores it.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { Cleanup, TEST_PRESENCE_INTERVAL_MS, addrOf, startTestNode } from '../helpers/nodes.js'
import { sleep, waitFor } from '../helpers/wait.js'
import { startOllamaStandin } from '../standins/index.js'
import { TOPIC_PRESENCE } from '../../protocol/ids.js'
import type { RealmNode } from '../../node/node.js'
import type { RealmEvent } from '../../node/events/index.js'
import { followTask } from '../helpers/sse.js'

const ANSWER = 'one two three four five six seven eight nine ten eleven twelve'
const CHAT = { kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'count' }] } }
/** Liveness deadline for a block to cut a peer (the goal is well under a second) */
const CUT_DEADLINE_MS = 5_000

async function tokenOf (node: RealmNode): Promise<string> {
  return (await fs.readFile(path.join(node.dataDir, 'sysop.token'), 'utf8')).trim()
}

/** A sysop route of `node`, with its token */
async function sysop (node: RealmNode, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(node.url + route, {
    method,
    headers: { authorization: `Bearer ${await tokenOf(node)}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000)
  })
  const answer = await res.json()
  assert.ok(res.ok, `${method} ${route} answered ${res.status}: ${JSON.stringify(answer)}`)
  return answer
}

async function modelPeers (node: RealmNode): Promise<string[]> {
  const res = await fetch(node.url + '/realm/models')
  const { models } = await res.json() as any
  return models.find((m: any) => m.name === 'llama3.2:1b')?.peers ?? []
}

/** Does `node` hold a connection to `peer` (the blocking side's view: a refused dial may live a moment on the dialler's side) */
function holds (node: RealmNode, peer: RealmNode): boolean {
  return node.libp2p.getConnections(peer.libp2p.peerId).length > 0
}

/** A connection either way, as either side sees it */
function connected (a: RealmNode, b: RealmNode): boolean {
  return a.libp2p.getConnections(b.libp2p.peerId).length > 0 || b.libp2p.getConnections(a.libp2p.peerId).length > 0
}

/** A peer stays away from `node` for a few beacon intervals (a liveness check of an absence) */
async function staysAway (node: RealmNode, peer: RealmNode, intervals = 4): Promise<void> {
  const end = Date.now() + intervals * TEST_PRESENCE_INTERVAL_MS
  while (Date.now() < end) {
    assert.equal(node.presence.table.get(peer.peerId), undefined, 'the blocked peer is back in the table')
    assert.ok(!holds(node, peer), 'the blocked peer is connected again')
    await sleep(50)
  }
}

describe('mesh: blocklist', function () {
  this.timeout(120_000)

  describe('a peer blocked while it runs a task', () => {
    const cleanup = new Cleanup()
    let a: RealmNode
    let w1: RealmNode
    let w2: RealmNode
    const seen: RealmEvent[] = []

    before(async () => {
      a = cleanup.node(await startTestNode())
      a.events.subscribe(e => { if (e.type.startsWith('sysop.')) seen.push(e) })
      const standins = await Promise.all([0, 1].map(async () => {
        const s = await startOllamaStandin({ reply: () => ANSWER, tokenDelayMs: 100 })
        cleanup.add(async () => { await s.close() })
        return s
      }))
      w1 = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${standins[0].url}`] }))
      // w2 also joins through w1: a path on which w1's beacons still reach A once w1 is blocked
      w2 = cleanup.node(await startTestNode({ bootstrap: [addrOf(a), addrOf(w1)], workers: [`ollama=${standins[1].url}`] }))
      await waitFor(async () => (await modelPeers(a)).length === 2, 'both workers in A\'s models')
      await waitFor(() => connected(w1, w2), 'w1 and w2 connected')
    })
    after(async () => { await cleanup.run() })

    it('is cut at every layer at once; its running task completes on the other worker', async () => {
      let victim: RealmNode | undefined
      let blockedAt = 0
      let blocking: Promise<any> | undefined
      let doneAt = 0
      const events = await followTask(a, CHAT, (e) => {
        if (e.type === 'task.done') doneAt = Date.now()
        if (e.type === 'task.started' && victim == null) {
          victim = e.peerId === w1.peerId ? w1 : w2
          blockedAt = Date.now()
          blocking = sysop(a, 'POST', '/realm/sysop/blocklist', { peerId: victim.peerId, reason: 'test: cut mid-task' })
        }
      })
      assert.ok(victim != null && blocking != null, 'the task started on a worker')
      const entry = await blocking
      assert.equal(entry.peerId, victim.peerId)
      const other = victim === w1 ? w2 : w1
      const done = events.at(-1)
      assert.equal(done.type, 'task.done', JSON.stringify(events.filter(e => e.type !== 'task.token')))
      assert.equal(done.peerId, other.peerId, 'answered by the other worker')
      assert.equal(done.output.text, ANSWER)

      // disconnected, out of the table and the models, gossip score sunk
      await waitFor(() => !connected(a, victim!), 'the blocked peer to be disconnected', CUT_DEADLINE_MS, 10)
      // it was cut while the task still ran (the task then failed over), not after
      const cut = seen.find(e => e.type === 'sysop.disconnected' && e.peerId === victim!.peerId)
      assert.ok(cut != null, 'a sysop.disconnected event')
      assert.ok(Date.parse(cut.time) - blockedAt < CUT_DEADLINE_MS, 'cut within the liveness deadline')
      assert.ok(Date.parse(cut.time) <= doneAt, 'cut before the task ended')
      await waitFor(async () => a.presence.table.get(victim!.peerId) == null && JSON.stringify(await modelPeers(a)) === JSON.stringify([other.peerId]), 'its workers to leave A\'s models', CUT_DEADLINE_MS)
      // getMeshPeers exists at run time but not on the GossipSub type (shared/STACK.md)
      const meshPeers = (a.libp2p.services.pubsub as unknown as { getMeshPeers: (topic: string) => string[] }).getMeshPeers(TOPIC_PRESENCE)
      assert.ok(!meshPeers.includes(victim.peerId), 'not in A\'s gossip mesh')
      assert.ok(a.sysop.appSpecificScore(victim.peerId) < 0, 'its application score sinks')
      assert.ok(seen.some(e => e.type === 'sysop.blocked' && e.entry === victim!.peerId))
      const peers = (await (await fetch(a.url + '/realm/peers')).json() as any).peers
      assert.ok(!peers.some((p: any) => p.peerId === victim!.peerId))
    })

    it('cannot reconnect or be dialled, and its beacons stop reaching A', async () => {
      const victim = a.sysop.blocklist.isBlocked(w1.peerId) ? w1 : w2
      // A refuses to dial it
      await assert.rejects(a.libp2p.dial(victim.libp2p.peerId), (err: any) => /denied|gater|blocked/i.test(`${err.name} ${err.message}`))
      // it dials A: refused at the handshake (its dial may resolve and drop a moment later)
      await victim.libp2p.dial(multiaddr(addrOf(a)), { signal: AbortSignal.timeout(5_000) }).catch(() => {})
      await waitFor(() => !connected(a, victim), 'its dial to be dropped', CUT_DEADLINE_MS, 10)
      // its beacons still travel through the other worker, and A drops them (without penalising the relay)
      const before = a.presence.stats.blocked
      await waitFor(() => a.presence.stats.blocked > before, 'relayed beacons of the blocked peer to be dropped')
      await staysAway(a, victim)
      const other = victim === w1 ? w2 : w1
      assert.ok(connected(a, other), 'the relay is not punished')
      assert.ok(a.presence.table.get(other.peerId) != null)
    })

    it('comes back when unblocked', async () => {
      const victim = a.sysop.blocklist.isBlocked(w1.peerId) ? w1 : w2
      const r = await sysop(a, 'DELETE', `/realm/sysop/blocklist/${victim.peerId}`)
      assert.deepEqual(r, { entry: victim.peerId, kind: 'peer', removed: true, overridden: false })
      await waitFor(async () => (await modelPeers(a)).includes(victim.peerId), 'its workers back in A\'s models')
      // its beacons may come back through the other worker before the redial connects it
      await waitFor(() => holds(a, victim), 'A connected to it again')
      assert.ok(seen.some(e => e.type === 'sysop.unblocked' && e.entry === victim.peerId && e.reason === 'removed'))
      // and it gets work again
      const res = await fetch(a.url + '/realm/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CHAT) })
      assert.equal(res.status, 202)
    })
  })

  describe('a followed shared blocklist', () => {
    const cleanup = new Cleanup()
    let a: RealmNode
    let b: RealmNode
    let c: RealmNode

    before(async () => {
      const standin = await startOllamaStandin()
      cleanup.add(async () => { await standin.close() })
      b = cleanup.node(await startTestNode())
      a = cleanup.node(await startTestNode({ bootstrap: [addrOf(b)], config: (cfg) => { cfg.sysop.follow = [b.peerId] } }))
      c = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${standin.url}`] }))
      await waitFor(async () => (await modelPeers(a)).includes(c.peerId), 'C\'s worker in A\'s models')
      await waitFor(() => a.presence.table.get(b.peerId) != null, 'B in A\'s table')
    })
    after(async () => { await cleanup.run() })

    it('B publishes, A applies it: C is cut from A', async () => {
      await sysop(b, 'POST', '/realm/sysop/blocklist', { peerId: c.peerId, reason: 'shared: abuse' })
      const published = await sysop(b, 'POST', '/realm/sysop/blocklist/publish')
      assert.equal(published.entries, 1)
      await waitFor(() => a.sysop.isPeerBlocked(c.peerId), 'A to apply B\'s list', CUT_DEADLINE_MS)
      await waitFor(() => !connected(a, c), 'C disconnected from A', CUT_DEADLINE_MS, 10)
      await waitFor(async () => !(await modelPeers(a)).includes(c.peerId), 'C\'s worker gone from A\'s models', CUT_DEADLINE_MS)
      const list = await sysop(a, 'GET', '/realm/sysop/blocklist')
      const entry = list.entries.find((e: any) => e.entry === c.peerId)
      assert.equal(entry.source, b.peerId)
      assert.equal(entry.reason, 'shared: abuse')
      assert.equal(entry.effective, true)
      assert.deepEqual(list.follow, [b.peerId])
      assert.equal(list.publishers[0].publisher, b.peerId)
      await staysAway(a, c)
    })

    it('a local override on A restores C (and B\'s republished list does not undo it)', async () => {
      const r = await sysop(a, 'DELETE', `/realm/sysop/blocklist/${c.peerId}`)
      assert.deepEqual(r, { entry: c.peerId, kind: 'peer', removed: false, overridden: true })
      await waitFor(async () => (await modelPeers(a)).includes(c.peerId), 'C back in A\'s models')
      const applied = a.sysop.sharedBlocklists!.stats.applied
      await sysop(b, 'POST', '/realm/sysop/blocklist/publish')
      await waitFor(() => a.sysop.sharedBlocklists!.stats.applied > applied, 'A to get B\'s newer list')
      assert.ok(!a.sysop.isPeerBlocked(c.peerId))
      const list = await sysop(a, 'GET', '/realm/sysop/blocklist')
      assert.equal(list.entries.find((e: any) => e.entry === c.peerId).effective, false)
      assert.equal(list.allows[0].peerId, c.peerId)
      await waitFor(() => holds(a, c), 'A connected to C again')
    })

    it('lists from publishers A does not follow are ignored', async () => {
      // C publishes a list blocking B: A does not follow C
      await sysop(c, 'POST', '/realm/sysop/blocklist', { peerId: b.peerId })
      const ignored = a.sysop.sharedBlocklists!.stats.ignored
      await sysop(c, 'POST', '/realm/sysop/blocklist/publish')
      await waitFor(() => a.sysop.sharedBlocklists!.stats.ignored > ignored, 'A to ignore C\'s list')
      assert.equal(a.sysop.sharedBlocklists!.stats.lastCode, 'BLOCKLIST_NOT_FOLLOWED')
      assert.ok(!a.sysop.isPeerBlocked(b.peerId))
      assert.ok(connected(a, b))
    })
  })

  describe('a blocked address range', () => {
    const cleanup = new Cleanup()
    let a: RealmNode
    let c2: RealmNode
    let c3: RealmNode
    const seen: RealmEvent[] = []

    before(async () => {
      c2 = cleanup.node(await startTestNode({ host: '127.0.0.2' }))
      c3 = cleanup.node(await startTestNode({ host: '127.0.0.3' }))
      // A dials them, so its connections carry their addresses (a dial from 127.0.0.2 to 127.0.0.1 leaves from 127.0.0.1)
      a = cleanup.node(await startTestNode({ bootstrap: [addrOf(c2), addrOf(c3)] }))
      a.events.subscribe(e => { if (e.type.startsWith('sysop.')) seen.push(e) })
      await waitFor(() => a.presence.table.get(c2.peerId) != null && a.presence.table.get(c3.peerId) != null, 'both in A\'s table')
    })
    after(async () => { await cleanup.run() })

    it('127.0.0.2/32 cuts only the peer there, and its expiry restores it', async () => {
      const expiresAt = new Date(Date.now() + 3_000).toISOString()
      const entry = await sysop(a, 'POST', '/realm/sysop/blocklist', { cidr: '127.0.0.2/32', reason: 'range', expiresAt })
      assert.equal(entry.cidr, '127.0.0.2/32')
      await waitFor(() => !connected(a, c2) && a.presence.table.get(c2.peerId) == null, 'the peer on 127.0.0.2 cut', CUT_DEADLINE_MS, 10)
      assert.ok(connected(a, c3), 'the peer on 127.0.0.3 stays')
      assert.ok(a.presence.table.get(c3.peerId) != null)
      assert.ok(a.sysop.isPeerBlocked(c2.peerId), 'the peer met there is blocked by id too')
      // it cannot come back through a connection from another address
      await c2.libp2p.dial(multiaddr(addrOf(a)), { signal: AbortSignal.timeout(5_000) }).catch(() => {})
      await assert.rejects(a.libp2p.dial(multiaddr(addrOf(c2))))
      assert.ok(!holds(a, c2))
      await waitFor(() => a.presence.table.get(c3.peerId) != null && a.presence.table.get(c2.peerId) == null, 'the table: c3 only')

      // the entry expires: the peer comes back
      await waitFor(() => seen.some(e => e.type === 'sysop.unblocked' && e.entry === '127.0.0.2/32' && e.reason === 'expired'), 'the entry to expire', 10_000)
      assert.ok(!a.sysop.isPeerBlocked(c2.peerId))
      await waitFor(() => a.presence.table.get(c2.peerId) != null && connected(a, c2), 'the peer on 127.0.0.2 back')
      assert.equal(a.sysop.blocklist.view().entries.length, 0)
    })
  })
})
