/**
 * The signed shared-blocklist codec (protocol/blocklist.ts): round trip, and every way a message
 * can be bad — tampered, signed by another key, unsigned, oversized, malformed — and the
 * freshness rules (stale, from the future, not newer).
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import {
  BLOCKLIST_MAX_AGE_MS, MAX_BLOCKLIST_BYTES, MAX_BLOCKLIST_ENTRIES_SHARED, checkBlocklistFresh, decodeBlocklist, encodeBlocklist,
  type SharedBlocklist
} from '../../protocol/blocklist.js'
import { encodeBeacon } from '../../protocol/presence.js'
import { GossipValidationError } from '../../protocol/verdict.js'
import { bytesToBase64, utf8Decode, utf8Encode } from '../../protocol/bytes.js'

const SOME_PEER = '12D3KooWGRUVh6VLqyhxUBUZMVHiLGeNbDwVQVVqBtwPSbsYVhYu'

function listFor (key: PrivateKey, over: Partial<SharedBlocklist> = {}): SharedBlocklist {
  return {
    v: 1,
    publisher: peerIdFromPrivateKey(key).toString(),
    seq: 1_000,
    time: new Date().toISOString(),
    entries: [
      { peerId: SOME_PEER, reason: 'spam' },
      { cidr: '10.0.0.0/8', expiresAt: new Date(Date.now() + 60_000).toISOString() }
    ],
    ...over
  }
}

async function expectVerdict (p: Promise<unknown> | (() => void), verdict: 'reject' | 'ignore', code: string): Promise<void> {
  const check = (err: any): boolean => {
    assert.ok(err instanceof GossipValidationError, `expected GossipValidationError, got ${err?.name}: ${err?.message}`)
    assert.equal(err.verdict, verdict)
    assert.equal(err.code, code)
    return true
  }
  if (typeof p === 'function') assert.throws(p, check)
  else await assert.rejects(p, check)
}

/** Edit the list text inside the envelope, keeping the old signature */
function tamper (data: Uint8Array, edit: (list: any) => void): Uint8Array {
  const envelope = JSON.parse(utf8Decode(data))
  const list = JSON.parse(envelope.list)
  edit(list)
  envelope.list = JSON.stringify(list)
  return utf8Encode(JSON.stringify(envelope))
}

describe('shared blocklist codec', () => {
  let key: PrivateKey
  let other: PrivateKey
  before(async () => {
    key = await generateKeyPair('Ed25519')
    other = await generateKeyPair('Ed25519')
  })

  it('round-trips a signed list', async () => {
    const list = listFor(key)
    assert.deepEqual(await decodeBlocklist(await encodeBlocklist(list, key)), list)
  })

  it('rejects a tampered list (entries, sequence number or publisher changed)', async () => {
    const good = await encodeBlocklist(listFor(key), key)
    await expectVerdict(decodeBlocklist(tamper(good, l => { l.entries.push({ cidr: '0.0.0.0/0' }) })), 'reject', 'BLOCKLIST_BAD_SIGNATURE')
    await expectVerdict(decodeBlocklist(tamper(good, l => { l.entries = [] })), 'reject', 'BLOCKLIST_BAD_SIGNATURE')
    await expectVerdict(decodeBlocklist(tamper(good, l => { l.seq++ })), 'reject', 'BLOCKLIST_BAD_SIGNATURE')
    await expectVerdict(decodeBlocklist(tamper(good, l => { l.publisher = peerIdFromPrivateKey(other).toString() })), 'reject', 'BLOCKLIST_BAD_SIGNATURE')
  })

  it('rejects a list signed by another key than its publisher\'s', async () => {
    const forged = await encodeBlocklist(listFor(key), other)
    await expectVerdict(decodeBlocklist(forged), 'reject', 'BLOCKLIST_BAD_SIGNATURE')
  })

  it('rejects an unsigned list, and a beacon signature reused for a list (domain separation)', async () => {
    const good = JSON.parse(utf8Decode(await encodeBlocklist(listFor(key), key)))
    await expectVerdict(decodeBlocklist(utf8Encode(JSON.stringify({ list: good.list, sig: '' }))), 'reject', 'BLOCKLIST_UNSIGNED')
    await expectVerdict(decodeBlocklist(utf8Encode(JSON.stringify({ list: good.list }))), 'reject', 'BLOCKLIST_MALFORMED')
    // a signature the same key made over the same text, for a beacon, is not one for a list
    const sigOverText = await key.sign(utf8Encode('rentahal/presence/1\n' + good.list))
    await expectVerdict(decodeBlocklist(utf8Encode(JSON.stringify({ list: good.list, sig: bytesToBase64(sigOverText) }))), 'reject', 'BLOCKLIST_BAD_SIGNATURE')
    // and a signed beacon is not a list at all
    const beacon = await encodeBeacon({ v: 1, peerId: peerIdFromPrivateKey(key).toString(), seq: 1, time: new Date().toISOString(), intervalMs: 2000, version: '0.1.0', workers: [], health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 1 } }, key)
    await expectVerdict(decodeBlocklist(beacon), 'reject', 'BLOCKLIST_MALFORMED')
  })

  it('rejects oversized messages and lists with too many entries, and refuses to make them', async () => {
    await expectVerdict(decodeBlocklist(new Uint8Array(MAX_BLOCKLIST_BYTES + 1)), 'reject', 'BLOCKLIST_TOO_LARGE')
    const tooMany = listFor(key, { entries: Array.from({ length: MAX_BLOCKLIST_ENTRIES_SHARED + 1 }, (_, i) => ({ cidr: `10.0.${i >> 8}.${i & 255}/32` })) })
    await assert.rejects(encodeBlocklist(tooMany, key))
    const envelope = JSON.parse(utf8Decode(await encodeBlocklist(listFor(key), key)))
    const list = JSON.parse(envelope.list)
    list.entries = tooMany.entries
    await expectVerdict(decodeBlocklist(utf8Encode(JSON.stringify({ list: JSON.stringify(list), sig: envelope.sig }))), 'reject', 'BLOCKLIST_INVALID')
  })

  it('rejects malformed messages and entries', async () => {
    await expectVerdict(decodeBlocklist(utf8Encode('not json')), 'reject', 'BLOCKLIST_MALFORMED')
    await expectVerdict(decodeBlocklist(new Uint8Array([0xff, 0xfe])), 'reject', 'BLOCKLIST_MALFORMED')
    const good = await encodeBlocklist(listFor(key), key)
    await expectVerdict(decodeBlocklist(tamper(good, l => { l.entries[0].cidr = '10.0.0.0/8' })), 'reject', 'BLOCKLIST_INVALID')
    await expectVerdict(decodeBlocklist(tamper(good, l => { l.entries[0] = { reason: 'neither' } })), 'reject', 'BLOCKLIST_INVALID')
    await expectVerdict(decodeBlocklist(tamper(good, l => { l.entries[0].reason = 'x'.repeat(201) })), 'reject', 'BLOCKLIST_INVALID')
    await expectVerdict(decodeBlocklist(tamper(good, l => { l.extra = true })), 'reject', 'BLOCKLIST_INVALID')
    await expectVerdict(decodeBlocklist(tamper(good, l => { l.v = 2 })), 'reject', 'BLOCKLIST_INVALID')
  })

  it('ignores stale, future and not-newer lists', async () => {
    const now = Date.now()
    const list = listFor(key, { time: new Date(now).toISOString(), seq: 50 })
    checkBlocklistFresh(list, now, undefined)
    checkBlocklistFresh(list, now, 49)
    await expectVerdict(() => { checkBlocklistFresh(list, now, 50) }, 'ignore', 'BLOCKLIST_STALE')
    await expectVerdict(() => { checkBlocklistFresh(list, now, 51) }, 'ignore', 'BLOCKLIST_STALE')
    await expectVerdict(() => { checkBlocklistFresh(list, now + BLOCKLIST_MAX_AGE_MS + 1, undefined) }, 'ignore', 'BLOCKLIST_STALE')
    await expectVerdict(() => { checkBlocklistFresh(list, now - 31_000, undefined) }, 'ignore', 'BLOCKLIST_FUTURE')
  })
})
