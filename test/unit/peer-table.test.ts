import assert from 'node:assert/strict'
import { PeerTable } from '../../node/presence/peer-table.js'
import { meshModels } from '../../node/presence/mesh.js'
import type { Beacon, WorkerAd } from '../../protocol/presence.js'

function beacon (peerId: string, seq: number, over: Partial<Beacon> = {}): Beacon {
  return { v: 1, peerId, seq, time: new Date().toISOString(), intervalMs: 1000, version: '0.1.0', workers: [], health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 0 }, ...over }
}

function worker (id: string, state: 'ok' | 'benched', models: Array<[string, Array<'chat' | 'generate' | 'embed' | 'imagine'>]>): WorkerAd {
  return { id, backend: 'ollama', kinds: [], models: models.map(([name, kinds]) => ({ name, kinds })), health: { state, queueDepth: 0, inFlight: 0, concurrency: 1 } }
}

describe('peer table', () => {
  it('joins, updates and keeps first/last seen', () => {
    const t = new PeerTable()
    assert.equal(t.apply(beacon('A', 1), 1000), 'join')
    assert.equal(t.apply(beacon('A', 2), 2000), 'update')
    const e = t.get('A')!
    assert.equal(e.firstSeen, 1000)
    assert.equal(e.lastSeen, 2000)
    assert.equal(e.beacon.seq, 2)
    assert.equal(t.lastSeq('A'), 2)
  })

  it('expires peers silent longer than the ttl, and only those', () => {
    const t = new PeerTable()
    t.apply(beacon('A', 1), 0)
    t.apply(beacon('B', 1), 2500)
    assert.deepEqual(t.expire(3000, 3000), [])
    assert.deepEqual(t.expire(3001, 3000), ['A'])
    assert.equal(t.size, 1)
    assert.deepEqual(t.expire(5501, 3000), ['B'])
    assert.equal(t.size, 0)
  })

  it('removes a peer that says it is leaving', () => {
    const t = new PeerTable()
    t.apply(beacon('A', 1), 0)
    assert.equal(t.apply(beacon('A', 2, { leaving: true }), 10), 'leave')
    assert.equal(t.get('A'), undefined)
    assert.equal(t.apply(beacon('B', 1, { leaving: true }), 10), undefined)
  })
})

describe('mesh models', () => {
  it('merges models across peers, with kinds and peers, sorted', () => {
    const models = meshModels([
      { peerId: 'P2', firstSeen: 5, workers: [worker('w1', 'ok', [['llama3.2:1b', ['chat', 'generate']], ['nomic-embed-text:latest', ['embed']]])] },
      { peerId: 'P1', firstSeen: 9, workers: [worker('w2', 'ok', [['llama3.2:1b', ['generate', 'chat']]]), worker('w3', 'ok', [['sd-v1-5', ['imagine']]])] }
    ])
    assert.deepEqual(models.map(m => [m.name, m.kinds, m.peers]), [
      ['llama3.2:1b', ['chat', 'generate'], ['P1', 'P2']],
      ['nomic-embed-text:latest', ['embed'], ['P2']],
      ['sd-v1-5', ['imagine'], ['P1']]
    ])
    assert.equal(models[0].firstSeen, 5)
  })

  it('leaves out the models of benched workers', () => {
    const models = meshModels([
      { peerId: 'P1', firstSeen: 0, workers: [worker('w1', 'benched', [['llava:latest', ['chat']]]), worker('w2', 'ok', [['phi3:latest', ['chat']]])] }
    ])
    assert.deepEqual(models.map(m => m.name), ['phi3:latest'])
  })
})
