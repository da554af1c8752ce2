import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import {
  BEACON_MAX_AGE_MS, MAX_BEACON_BYTES, checkBeaconFresh, decodeBeacon, encodeBeacon, type Beacon
} from '../../protocol/presence.js'
import { GossipValidationError } from '../../protocol/verdict.js'
import { normalizeModelName } from '../../protocol/kinds.js'
import { base64ToBytes, bytesToBase64, utf8Decode } from '../../protocol/bytes.js'

function beaconFor (key: PrivateKey, over: Partial<Beacon> = {}): Beacon {
  return {
    v: 1,
    peerId: peerIdFromPrivateKey(key).toString(),
    seq: 1000,
    time: new Date().toISOString(),
    intervalMs: 2000,
    version: '0.1.0',
    workers: [{
      id: 'ollama-1234abcd',
      backend: 'ollama',
      kinds: ['chat', 'generate'],
      models: [{ name: 'llama3.2:1b', kinds: ['chat', 'generate'], context: 131072, family: 'llama' }],
      health: { state: 'ok', queueDepth: 0, inFlight: 0, concurrency: 1, latencyMs: 3.5 }
    }],
    health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 12 },
    ...over
  }
}

async function expectReject (p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.ok(err instanceof GossipValidationError, `expected GossipValidationError, got ${err?.name}`)
    assert.equal(err.verdict, 'reject')
    assert.equal(err.code, code)
    return true
  })
}

/** Re-sign nothing: edit the envelope's beacon text, keeping the old signature */
function tamper (data: Uint8Array, edit: (beacon: any) => void): Uint8Array {
  const envelope = JSON.parse(utf8Decode(data))
  const beacon = JSON.parse(envelope.beacon)
  edit(beacon)
  envelope.beacon = JSON.stringify(beacon)
  return new TextEncoder().encode(JSON.stringify(envelope))
}

describe('presence beacon codec', () => {
  let key: PrivateKey
  let other: PrivateKey
  before(async () => {
    key = await generateKeyPair('Ed25519')
    other = await generateKeyPair('Ed25519')
  })

  it('round-trips a signed beacon', async () => {
    const beacon = beaconFor(key)
    const decoded = await decodeBeacon(await encodeBeacon(beacon, key))
    assert.deepEqual(decoded, beacon)
  })

  it('checks the author against the beacon peer id', async () => {
    const data = await encodeBeacon(beaconFor(key), key)
    await decodeBeacon(data, peerIdFromPrivateKey(key).toString())
    await expectReject(decodeBeacon(data, peerIdFromPrivateKey(other).toString()), 'BEACON_WRONG_AUTHOR')
  })

  it('rejects a beacon whose content changed after signing', async () => {
    const data = tamper(await encodeBeacon(beaconFor(key), key), b => { b.workers[0].models[0].name = 'evil:latest' })
    await expectReject(decodeBeacon(data), 'BEACON_BAD_SIGNATURE')
  })

  it('rejects a beacon signed by another key than its peer id', async () => {
    const data = await encodeBeacon(beaconFor(key), other)
    await expectReject(decodeBeacon(data), 'BEACON_BAD_SIGNATURE')
  })

  it('rejects an unsigned beacon and a garbage signature', async () => {
    const good = JSON.parse(utf8Decode(await encodeBeacon(beaconFor(key), key)))
    const unsigned = new TextEncoder().encode(JSON.stringify({ beacon: good.beacon }))
    await expectReject(decodeBeacon(unsigned), 'BEACON_MALFORMED')
    const badSig = new TextEncoder().encode(JSON.stringify({ beacon: good.beacon, sig: '!!not base64!!' }))
    await expectReject(decodeBeacon(badSig), 'BEACON_BAD_SIGNATURE')
    const emptySig = new TextEncoder().encode(JSON.stringify({ beacon: good.beacon, sig: '' }))
    await expectReject(decodeBeacon(emptySig), 'BEACON_BAD_SIGNATURE')
  })

  it('rejects malformed bytes, JSON and schema violations with codes', async () => {
    await expectReject(decodeBeacon(new Uint8Array([0xff, 0xfe, 0x00])), 'BEACON_MALFORMED')
    await expectReject(decodeBeacon(new TextEncoder().encode('[]')), 'BEACON_MALFORMED')
    await expectReject(decodeBeacon(new TextEncoder().encode('{"beacon":"{","sig":""}')), 'BEACON_MALFORMED')
    const good = await encodeBeacon(beaconFor(key), key)
    await expectReject(decodeBeacon(tamper(good, b => { b.seq = -1 })), 'BEACON_INVALID')
    await expectReject(decodeBeacon(tamper(good, b => { b.workers[0].backend = 'mystery' })), 'BEACON_INVALID')
    await expectReject(decodeBeacon(tamper(good, b => { b.extra = true })), 'BEACON_INVALID')
    await expectReject(decodeBeacon(tamper(good, b => { delete b.health })), 'BEACON_INVALID')
    await expectReject(decodeBeacon(tamper(good, b => { b.workers[0].models[0].name = 'bell\u0007' })), 'BEACON_INVALID')
    await expectReject(decodeBeacon(tamper(good, b => { b.peerId = '0OIl' })), 'BEACON_INVALID')
  })

  it('rejects oversized messages before parsing, and refuses to encode one', async () => {
    await expectReject(decodeBeacon(new Uint8Array(MAX_BEACON_BYTES + 1)), 'BEACON_TOO_LARGE')
    const models = Array.from({ length: 256 }, (_, i) => ({ name: `model-with-a-rather-long-name-${i}:latest`, kinds: ['chat' as const, 'generate' as const], family: 'x'.repeat(90), parameterSize: '7B', quantization: 'Q4_K_M' }))
    const workers = [1, 2, 3].map(i => ({ id: `w${i}`, backend: 'ollama' as const, kinds: ['chat' as const], models, health: { state: 'ok' as const, queueDepth: 0, inFlight: 0, concurrency: 1 } }))
    const big = beaconFor(key, { workers })
    await expectReject(encodeBeacon(big, key), 'BEACON_TOO_LARGE')
  })

  it('ignores stale, future and replayed beacons', () => {
    const now = Date.now()
    const at = (t: number, seq = 5): Beacon => ({ ...beaconFor(key), time: new Date(t).toISOString(), seq })
    checkBeaconFresh(at(now), now, undefined)
    checkBeaconFresh(at(now - BEACON_MAX_AGE_MS + 1000), now, 4)
    for (const [beacon, last, code] of [
      [at(now - BEACON_MAX_AGE_MS - 1), undefined, 'BEACON_STALE'],
      [at(now + BEACON_MAX_AGE_MS + 1), undefined, 'BEACON_FUTURE'],
      [at(now, 5), 5, 'BEACON_REPLAY'],
      [at(now, 4), 5, 'BEACON_REPLAY']
    ] as const) {
      assert.throws(() => { checkBeaconFresh(beacon, now, last) }, (err: any) => err.verdict === 'ignore' && err.code === code)
    }
  })
})

describe('protocol helpers', () => {
  it('normalizes bare model names to :latest as Ollama does', () => {
    assert.equal(normalizeModelName('llava'), 'llava:latest')
    assert.equal(normalizeModelName('llama3.2:1b'), 'llama3.2:1b')
    assert.equal(normalizeModelName('hf.co/org/model:Q4'), 'hf.co/org/model:Q4')
    assert.equal(normalizeModelName('org/model'), 'org/model:latest')
  })

  it('base64 decoding is strict', () => {
    assert.deepEqual(base64ToBytes(bytesToBase64(new Uint8Array([1, 2, 3]))), new Uint8Array([1, 2, 3]))
    assert.throws(() => base64ToBytes('abc'))
    assert.throws(() => base64ToBytes('ab$='))
  })

  it('UTF-8 decoding is strict', () => {
    assert.throws(() => utf8Decode(new Uint8Array([0xc3, 0x28])))
  })
})
