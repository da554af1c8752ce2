/**
 * The blocklist store on a real LevelDB in a temp dir: entries and their checks, persistence
 * across a reopen, expiry on an injected clock (and on the real timer), followed publishers'
 * entries and the local overrides, events, and the schema on read.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Bucket, openDb, type RealmDb } from '../../node/db/index.js'
import { createEventBus, type RealmEvent } from '../../node/events/index.js'
import { Blocklist, parseTarget } from '../../node/sysop/blocklist.js'
import { waitFor } from '../helpers/wait.js'

async function newPeerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

describe('blocklist: the store', () => {
  let dir: string
  let db: RealmDb
  let now: number
  let events: RealmEvent[]
  let list: Blocklist
  let peer: string
  let other: string
  let publisher: string
  const bus = createEventBus()
  bus.subscribe(e => { if (e.type.startsWith('sysop.')) events.push(e) })

  async function open (): Promise<Blocklist> {
    db = await openDb({ path: path.join(dir, 'db') })
    const b = new Blocklist({ db, events: bus, now: () => now })
    await b.start()
    return b
  }

  async function reopen (): Promise<Blocklist> {
    list.stop()
    await db.close()
    return await open()
  }

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-blocklist-'))
    now = Date.parse('2030-01-01T00:00:00Z')
    events = []
    peer = await newPeerId()
    other = await newPeerId()
    publisher = await newPeerId()
    list = await open()
  })

  afterEach(async () => {
    list.stop()
    await db.close()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('blocks peers and ranges, checks input, and emits sysop.blocked / sysop.unblocked', async () => {
    await list.block(parseTarget(peer), { reason: 'spam' })
    await list.block(parseTarget('10.1.2.3/8'))
    assert.ok(list.isBlocked(peer))
    assert.ok(!list.isBlocked(other))
    assert.ok(list.isAddressBlocked('10.200.0.1'))
    assert.ok(list.isAddressBlocked('::ffff:10.0.0.1'))
    assert.ok(!list.isAddressBlocked('11.0.0.1'))
    assert.equal(list.matchAddress('10.0.0.9'), '10.0.0.0/8')
    assert.deepEqual(events.map(e => [e.type, e.entry, e.reason]), [['sysop.blocked', peer, 'spam'], ['sysop.blocked', '10.0.0.0/8', '']])

    await assert.rejects(list.block(parseTarget(other), { reason: 'x'.repeat(201) }), { code: 'INVALID_REASON' })
    await assert.rejects(list.block(parseTarget(other), { reason: 'bell\u0007' }), { code: 'INVALID_REASON' })
    await assert.rejects(list.block(parseTarget(other), { expiresAt: now - 1 }), { code: 'INVALID_EXPIRY' })
    await assert.rejects(list.block(parseTarget(other), { expiresAt: 'tomorrow' }), { code: 'INVALID_EXPIRY' })
    assert.throws(() => parseTarget('12D3KooWnotapeer'), { code: 'INVALID_PEER_ID' })
    assert.throws(() => parseTarget('10.0.0.0/40'), { code: 'INVALID_CIDR' })
    assert.ok(!list.isBlocked(other), 'refused entries block nothing')

    events.length = 0
    const r = await list.unblock('10.0.0.0/8')
    assert.equal(r.removed?.entry, '10.0.0.0/8')
    assert.ok(!list.isAddressBlocked('10.0.0.1'))
    assert.deepEqual(events.map(e => [e.type, e.entry, e.reason]), [['sysop.unblocked', '10.0.0.0/8', 'removed']])
    await assert.rejects(list.unblock('10.0.0.0/8'), { name: 'SysopNotFoundError', code: 'ENTRY_NOT_FOUND' })
  })

  it('a node never blocks itself', async () => {
    const self = await newPeerId()
    list.stop()
    await db.close()
    db = await openDb({ path: path.join(dir, 'db') })
    list = new Blocklist({ db, now: () => now, selfId: self })
    await list.start()
    await assert.rejects(list.block(parseTarget(self)), { code: 'INVALID_ENTRY' })
    await list.applyShared(publisher, { seq: 1, time: new Date(now).toISOString(), entries: [{ peerId: self }] })
    assert.ok(!list.isBlocked(self), 'not even by a followed list')
  })

  it('keeps entries across a reopen (the database is the truth)', async () => {
    await list.block(parseTarget(peer), { reason: 'kept', expiresAt: now + 3_600_000 })
    await list.block(parseTarget('2001:db8::/32'), { reason: 'v6' })
    await list.applyShared(publisher, { seq: 7, time: new Date(now).toISOString(), entries: [{ peerId: other, reason: 'theirs' }] })
    list = await reopen()
    assert.ok(list.isBlocked(peer))
    assert.ok(list.isBlocked(other))
    assert.ok(list.isAddressBlocked('2001:db8::42'))
    const view = list.view()
    assert.equal(view.entries.find(e => e.entry === peer)?.reason, 'kept')
    assert.equal(view.entries.find(e => e.entry === peer)?.expiresAt, new Date(now + 3_600_000).toISOString())
    assert.equal(view.entries.find(e => e.entry === other)?.source, publisher)
    assert.equal(list.publisher(publisher)?.seq, 7)
    assert.equal(events.filter(e => e.type === 'sysop.blocked').length, 3, 'loading is not news: no events at start')
  })

  it('expires entries on its clock: sysop.unblocked with reason expired, gone after a reopen too', async () => {
    await list.block(parseTarget(peer), { expiresAt: now + 60_000 })
    await list.block(parseTarget(other), { expiresAt: now + 120_000 })
    events.length = 0
    now += 59_999
    assert.equal(await list.expire(), 0)
    assert.ok(list.isBlocked(peer))
    now += 1
    assert.equal(await list.expire(), 1)
    assert.ok(!list.isBlocked(peer))
    assert.ok(list.isBlocked(other))
    assert.deepEqual(events.map(e => [e.type, e.entry, e.reason]), [['sysop.unblocked', peer, 'expired']])
    // an entry that expired while the node was down is gone at start
    now += 60_000
    list = await reopen()
    assert.ok(!list.isBlocked(other))
    assert.equal(list.view().entries.length, 0)
  })

  it('expires entries on the real timer', async () => {
    list.stop()
    await db.close()
    db = await openDb({ path: path.join(dir, 'db') })
    list = new Blocklist({ db, events: bus })
    await list.start()
    await list.block(parseTarget(peer), { expiresAt: Date.now() + 300 })
    assert.ok(list.isBlocked(peer))
    await waitFor(() => !list.isBlocked(peer), 'the entry to expire', 10_000)
    assert.ok(events.some(e => e.type === 'sysop.unblocked' && e.entry === peer && e.reason === 'expired'))
  })

  it('applies a followed publisher\'s newer lists only, replacing its previous entries', async () => {
    const time = new Date(now).toISOString()
    assert.equal(await list.applyShared(publisher, { seq: 10, time, entries: [{ peerId: peer }, { cidr: '192.0.2.0/24', reason: 'r' }] }), true)
    assert.ok(list.isBlocked(peer))
    assert.ok(list.isAddressBlocked('192.0.2.8'))
    assert.equal(await list.applyShared(publisher, { seq: 10, time, entries: [] }), false, 'same sequence number: not newer')
    assert.equal(await list.applyShared(publisher, { seq: 9, time, entries: [] }), false, 'older')
    assert.ok(list.isBlocked(peer))
    events.length = 0
    assert.equal(await list.applyShared(publisher, { seq: 11, time, entries: [{ peerId: other }, { peerId: 'garbage' }, { peerId: peer, expiresAt: new Date(now - 1).toISOString() }] }), true)
    assert.ok(!list.isBlocked(peer), 'gone from the newer list (and its new entry had expired)')
    assert.ok(list.isBlocked(other))
    assert.ok(!list.isAddressBlocked('192.0.2.8'))
    assert.deepEqual(events.map(e => [e.type, e.entry, e.reason]).sort(), [
      ['sysop.blocked', other, ''], ['sysop.unblocked', '192.0.2.0/24', 'publisher'], ['sysop.unblocked', peer, 'publisher']
    ].sort())
  })

  it('a local unblock overrides a followed entry (stored), and a local block takes it back', async () => {
    await list.applyShared(publisher, { seq: 1, time: new Date(now).toISOString(), entries: [{ peerId: peer }] })
    await list.block(parseTarget(peer), { reason: 'mine too' })
    events.length = 0
    // the local entry goes and the publisher's is overridden: unblocked once
    const r = await list.unblock(peer)
    assert.ok(r.removed != null && r.override != null)
    assert.ok(!list.isBlocked(peer))
    assert.deepEqual(events.map(e => [e.type, e.entry, e.reason]), [['sysop.unblocked', peer, 'overridden']])
    // a newer list from the publisher does not undo the override
    await list.applyShared(publisher, { seq: 2, time: new Date(now).toISOString(), entries: [{ peerId: peer }, { peerId: other }] })
    assert.ok(!list.isBlocked(peer))
    assert.ok(list.isBlocked(other))
    const view = list.view()
    assert.equal(view.entries.find(e => e.entry === peer)?.effective, false)
    assert.equal(view.allows.length, 1)
    list = await reopen()
    assert.ok(!list.isBlocked(peer), 'the override is stored')
    // removing the override lets the publisher's entry apply again
    await list.removeAllow(peer)
    assert.ok(list.isBlocked(peer))
    // an explicit allow, then a local block, which removes it
    await list.allow(parseTarget(other), { reason: 'friend' })
    assert.ok(!list.isBlocked(other))
    await list.block(parseTarget(other))
    assert.ok(list.isBlocked(other))
    assert.equal(list.view().allows.length, 0)
  })

  it('forgets publishers no longer followed', async () => {
    await list.applyShared(publisher, { seq: 1, time: new Date(now).toISOString(), entries: [{ peerId: peer }] })
    await list.block(parseTarget(other))
    events.length = 0
    await list.retainPublishers([])
    assert.ok(!list.isBlocked(peer))
    assert.ok(list.isBlocked(other), 'local entries stay')
    assert.equal(list.publisher(publisher), undefined)
    assert.deepEqual(events.map(e => [e.type, e.entry, e.reason]), [['sysop.unblocked', peer, 'unfollowed']])
  })

  it('publishes only live local entries', async () => {
    await list.applyShared(publisher, { seq: 1, time: new Date(now).toISOString(), entries: [{ peerId: other }] })
    await list.block(parseTarget(peer), { reason: 'r', expiresAt: now + 1000 })
    await list.block(parseTarget('10.0.0.0/8'))
    const entries = list.localEntries()
    assert.deepEqual(entries.map(e => e.peerId ?? e.cidr).sort(), ['10.0.0.0/8', peer].sort())
    assert.equal(entries.find(e => e.peerId === peer)?.reason, 'r')
  })

  it('validates records on read: a corrupt value fails the start with DB_VALUE_INVALID', async () => {
    list.stop()
    await db.batch([{ type: 'put', bucket: Bucket.blocklist, key: 'block/local/x', value: { t: 'block', kind: 'peer', entry: 'not a peer', reason: '', source: 'local', createdAt: new Date(now).toISOString() } }])
    await db.close()
    db = await openDb({ path: path.join(dir, 'db') })
    list = new Blocklist({ db, now: () => now })
    await assert.rejects(list.start(), { code: 'DB_VALUE_INVALID' })
  })
})
