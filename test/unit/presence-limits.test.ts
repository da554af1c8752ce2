/**
 * Per-peer gossip limits of the presence validator, with the clock stopped: a neighbour's
 * messages beyond its burst are ignored before any decoding (GOSSIP_RATE_LIMITED); a peer's own
 * beacons beyond theirs are rejected (BEACON_RATE_LIMITED) and reported as a flood.
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { createEventBus } from '../../node/events/index.js'
import { PresenceService, MAX_OWN_BEACONS_PER_S, MAX_RELAYED_PER_S } from '../../node/presence/service.js'
import { encodeBeacon, type Beacon } from '../../protocol/presence.js'

const NOW = Date.parse('2026-01-01T00:00:00Z')

async function setup (): Promise<{ validate: (source: any, data: Uint8Array) => Promise<TopicValidatorResult>, svc: PresenceService, flagged: string[] }> {
  const self = await generateKeyPair('Ed25519')
  const flagged: string[] = []
  const fakeLibp2p = { peerId: peerIdFromPrivateKey(self) } as any
  const svc = new PresenceService(fakeLibp2p, {
    privateKey: self,
    events: createEventBus(),
    localAd: () => ({ workers: [], health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 0 } }),
    onMisbehaviour: (peerId, what) => { flagged.push(`${peerId}:${what}`) },
    now: () => NOW
  })
  const validate = async (source: any, data: Uint8Array): Promise<TopicValidatorResult> => await (svc as any).validate(source, { data, topic: '/rentahal/1/presence' })
  return { validate, svc, flagged }
}

describe('presence: per-peer gossip limits', () => {
  it('ignores a neighbour\'s messages beyond its burst without decoding them', async () => {
    const { validate, svc } = await setup()
    const source = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const garbage = new TextEncoder().encode('not json')
    const results = []
    for (let i = 0; i < 600; i++) results.push(await validate(source, garbage))
    // the burst is decoded (and rejected as malformed); the rest is dropped unread
    const rejected = results.filter(r => r === TopicValidatorResult.Reject).length
    assert.ok(rejected >= MAX_RELAYED_PER_S && rejected < 600, `${rejected} decoded`)
    assert.equal(svc.stats.rateLimited, 600 - rejected)
    assert.equal(results.slice(rejected).every(r => r === TopicValidatorResult.Ignore), true)
  })

  it('rejects a peer\'s own beacons beyond its limit and reports the flood', async () => {
    const { validate, svc, flagged } = await setup()
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key)
    const beacon = (seq: number): Beacon => ({
      v: 1, peerId: peerId.toString(), seq, time: new Date(NOW).toISOString(), intervalMs: 1000, version: '0.1.0',
      workers: [], health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 1 }
    })
    const results = []
    for (let i = 1; i <= 100; i++) results.push(await validate(peerId, await encodeBeacon(beacon(i), key)))
    const accepted = results.filter(r => r === TopicValidatorResult.Accept).length
    assert.ok(accepted >= MAX_OWN_BEACONS_PER_S && accepted < 100, `${accepted} accepted`)
    assert.equal(svc.stats.rejectedBy.get(peerId.toString())?.BEACON_RATE_LIMITED, 100 - accepted)
    assert.equal(flagged.length, 100 - accepted)
    assert.ok(flagged.every(f => f === `${peerId.toString()}:flood`))
  })
})
