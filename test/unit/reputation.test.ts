/**
 * The peer reputation: probation of new peer ids (queue weight, routing penalty) until honest
 * tasks or good presence end it; job outcomes as a decaying, capped penalty that exiles a peer
 * that keeps failing but not an honest one after one bad run; kept across a restart.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { openDb } from '../../node/db/index.js'
import { createEventBus, type RealmEvent } from '../../node/events/index.js'
import {
  EXILE_APP_SCORE, PENALTY_CAP, PENALTY_HALF_LIFE_MS, PeerReputation, outcomeOfTaskEvent, type ReputationInit
} from '../../node/p2p/reputation.js'
import { Router, type RouteSource } from '../../node/tasks/router.js'
import { BLOCKED_APP_SCORE, PeerGuard, Blocklist } from '../../node/sysop/index.js'

const MINUTE = 60_000

function make (over: Partial<ReputationInit> = {}): { rep: PeerReputation, clock: { t: number } } {
  const clock = { t: 1_000_000 }
  const rep = new PeerReputation({
    probationTasks: 5,
    probationMs: 30 * MINUTE,
    probationWeight: 0.25,
    probationPenaltyMs: 2000,
    now: () => clock.t,
    ...over
  })
  return { rep, clock }
}

describe('peer reputation', () => {
  describe('probation', () => {
    it('a new peer id gets a small queue share and a routing penalty until it has served N tasks', () => {
      const { rep } = make()
      assert.equal(rep.onProbation('new'), true)
      assert.equal(rep.weightOf('new'), 0.25)
      assert.equal(rep.routePenaltyMs('new'), 2000)
      for (let i = 0; i < 4; i++) rep.record('new', 'served')
      assert.equal(rep.onProbation('new'), true)
      // the penalty shrinks as the peer proves itself
      assert.equal(rep.routePenaltyMs('new'), 400)
      rep.record('new', 'submitted')
      assert.equal(rep.onProbation('new'), false)
      assert.equal(rep.weightOf('new'), 1)
      assert.equal(rep.routePenaltyMs('new'), 0)
    })

    it('good presence for T minutes ends probation; gaps of absence do not count; misbehaviour holds it', () => {
      const { rep, clock } = make()
      rep.seen('p')
      // sightings two minutes apart are absence, not presence
      for (let i = 0; i < 20; i++) { clock.t += 2 * MINUTE; rep.seen('p') }
      assert.equal(rep.onProbation('p'), true)
      for (let i = 0; i < 60; i++) { clock.t += 30_000; rep.seen('p') }
      assert.equal(rep.onProbation('p'), false, '30 minutes present')
      // a peer that misbehaves is back on probation while the penalty lasts
      rep.record('p', 'violation')
      assert.equal(rep.onProbation('p'), true)
      clock.t += 10 * PENALTY_HALF_LIFE_MS
      assert.equal(rep.onProbation('p'), false)
    })

    it('exempt peers (this node, trusted ones) are never on probation; probation_tasks = 0 turns it off', () => {
      const { rep } = make({ isExempt: (id) => id === 'me' })
      assert.equal(rep.onProbation('me'), false)
      assert.equal(rep.onProbation('other'), true)
      assert.equal(make({ probationTasks: 0 }).rep.weightOf('anyone'), 1)
    })
  })

  describe('job outcomes in the app score', () => {
    it('one bad run of a proven peer does not exile it; a new peer that keeps lying is exiled', () => {
      const events: RealmEvent[] = []
      const bus = createEventBus()
      bus.subscribe(e => { events.push(e) })
      const { rep } = make({ events: bus })
      for (let i = 0; i < 5; i++) rep.record('honest', 'served')
      // its backend died mid-run: a few tasks fail or time out before the router moves on
      rep.record('honest', 'failed')
      rep.record('honest', 'failed')
      rep.record('honest', 'timeout')
      rep.record('honest', 'timeout')
      rep.record('honest', 'failed')
      assert.ok(rep.appScore('honest') < 0)
      assert.equal(rep.exiled('honest'), false, `app score ${rep.appScore('honest')}`)

      const exiledIds: string[] = []
      rep.onExile(id => exiledIds.push(id))
      rep.record('liar', 'lied')
      rep.record('liar', 'lied')
      assert.equal(rep.exiled('liar'), false)
      rep.record('liar', 'lied')
      assert.equal(rep.exiled('liar'), true)
      assert.ok(rep.appScore('liar') <= EXILE_APP_SCORE)
      rep.record('liar', 'lied')
      assert.deepEqual(exiledIds, ['liar'], 'told once')
      assert.equal(events.filter(e => e.type === 'peer.exiled').length, 1)
      assert.equal(rep.appScore('stranger'), 0)
    })

    it('the penalty decays and is capped (the floor): even the worst peer comes back', () => {
      const { rep, clock } = make()
      for (let i = 0; i < 200; i++) rep.record('bad', 'violation')
      assert.equal(rep.standing('bad')?.penalty, PENALTY_CAP)
      assert.equal(rep.appScore('bad'), -PENALTY_CAP)
      assert.equal(rep.exiled('bad'), true)
      clock.t += 2 * PENALTY_HALF_LIFE_MS
      assert.equal(rep.exiled('bad'), true)
      // log2(40 / 8) half-lives ≈ 2.3
      clock.t += 0.5 * PENALTY_HALF_LIFE_MS
      assert.equal(rep.exiled('bad'), false)
    })

    it('maps task events to outcomes: done served, lies, timeouts, failures; backpressure and cancels say nothing', () => {
      const ev = (type: string, code?: string): RealmEvent => ({ type, time: '', peerId: 'w', code })
      assert.deepEqual(outcomeOfTaskEvent(ev('task.done')), { peerId: 'w', outcome: 'served' })
      assert.equal(outcomeOfTaskEvent(ev('task.attempt_failed', 'MODEL_NOT_FOUND'))?.outcome, 'lied')
      assert.equal(outcomeOfTaskEvent(ev('task.attempt_failed', 'NO_WORKER'))?.outcome, 'lied')
      assert.equal(outcomeOfTaskEvent(ev('task.attempt_failed', 'LEASE_LOST'))?.outcome, 'timeout')
      assert.equal(outcomeOfTaskEvent(ev('task.attempt_failed', 'BACKEND_ERROR'))?.outcome, 'failed')
      assert.equal(outcomeOfTaskEvent(ev('task.attempt_failed', 'QUEUE_FULL')), undefined)
      assert.equal(outcomeOfTaskEvent(ev('task.attempt_failed', 'CANCELLED')), undefined)
      assert.equal(outcomeOfTaskEvent(ev('task.error', 'BACKEND_ERROR')), undefined)
      assert.equal(outcomeOfTaskEvent({ type: 'task.done', time: '' }), undefined)
    })

    it('the guard combines it with the blocklist: blocked peers far below, exiled peers refused by the gater', async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-rep-'))
      const db = await openDb({ path: path.join(dir, 'db') })
      try {
        const blocklist = new Blocklist({ db, events: createEventBus(), selfId: 'me' })
        await blocklist.start()
        const guard = new PeerGuard({ blocklist, selfId: 'me' })
        const { rep } = make()
        guard.useReputation(rep)
        rep.record('flaky', 'failed')
        assert.equal(guard.appSpecificScore('flaky'), -1)
        for (let i = 0; i < 10; i++) rep.record('flaky', 'lied')
        assert.equal(guard.isPeerShutOut('flaky'), true)
        assert.equal(guard.isPeerBlocked('flaky'), false, 'exiled is not blocked by the sysop')
        const blocked = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
        await blocklist.block({ kind: 'peer', entry: blocked })
        assert.equal(guard.appSpecificScore(blocked), BLOCKED_APP_SCORE)
        assert.equal(guard.isPeerShutOut(blocked), true)
        blocklist.stop()
      } finally {
        await db.close()
        await fs.rm(dir, { recursive: true, force: true })
      }
    })
  })

  it('survives a restart: records are written to the database and loaded again', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-rep-'))
    try {
      let db = await openDb({ path: path.join(dir, 'db') })
      const first = make({ db })
      await first.rep.load()
      for (let i = 0; i < 5; i++) first.rep.record('proven', 'served')
      for (let i = 0; i < 10; i++) first.rep.record('exiled', 'lied')
      first.rep.seen('newcomer')
      await first.rep.stop()
      await db.close()

      db = await openDb({ path: path.join(dir, 'db') })
      const second = make({ db })
      second.clock.t = first.clock.t
      await second.rep.load()
      assert.equal(second.rep.size, 3)
      assert.equal(second.rep.onProbation('proven'), false)
      assert.equal(second.rep.exiled('exiled'), true, 'a restart does not forgive')
      assert.equal(second.rep.onProbation('newcomer'), true)
      assert.equal(second.rep.standing('proven')?.served, 5)
      await db.close()
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })

  it('the router prefers a proven worker, but a new one still gets work the proven one is too busy for', () => {
    const { rep } = make()
    for (let i = 0; i < 5; i++) rep.record('proven', 'served')
    const router = new Router({ random: () => 0.5, rttMs: () => 10, peerPenaltyMs: rep.routePenaltyMs })
    const worker = (queueDepth: number): RouteSource['workers'][number] => ({
      id: 'w', backend: 'ollama', kinds: ['chat'], models: [{ name: 'm', kinds: ['chat'] } as any],
      health: { state: 'ok', queueDepth, inFlight: 0, concurrency: 1 }
    })
    const sources = (provenQueue: number): RouteSource[] => [
      { peerId: 'new', local: false, workers: [worker(0)] },
      { peerId: 'proven', local: false, workers: [worker(provenQueue)] }
    ]
    const ranked = router.rank(router.candidates(sources(0), { kind: 'chat', model: 'm' }))
    assert.equal(ranked[0].peerId, 'proven')
    // five tasks ahead on the proven worker (≈ 5 s) outweigh the probation penalty (2 s)
    const busy = router.rank(router.candidates(sources(5), { kind: 'chat', model: 'm' }))
    assert.equal(busy[0].peerId, 'new')
  })
})
