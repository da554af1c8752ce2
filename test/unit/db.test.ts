import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { z } from 'zod'
import { Bucket, DB_SCHEMA_VERSION, openDb, type RealmDb } from '../../node/db/index.js'

const HOLDER = fileURLToPath(new URL('./fixtures/db-holder.ts', import.meta.url))
/** a child's open is slow under load; liveness bound, not a speed goal */
const CHILD_READY_TIMEOUT_MS = 20_000

function startHolder (dbPath: string, ...args: string[]): { child: ChildProcess, ready: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', HOLDER, dbPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const ready = new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => { reject(new Error(`child not ready: ${out}`)) }, CHILD_READY_TIMEOUT_MS)
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('\n')) {
        clearTimeout(timer)
        resolve(out.trim())
      }
    })
    child.once('exit', code => {
      clearTimeout(timer)
      reject(new Error(`child exited ${String(code)}: ${out}`))
    })
  })
  return { child, ready }
}

async function killed (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

describe('db', () => {
  let dir: string
  let dbPath: string
  let db: RealmDb | undefined
  const children: ChildProcess[] = []

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-db-'))
    dbPath = path.join(dir, 'db')
  })

  afterEach(async () => {
    for (const child of children.splice(0)) await killed(child)
    await db?.close()
    db = undefined
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('puts, gets and deletes per bucket, buckets isolated', async () => {
    db = await openDb({ path: dbPath })
    const peers = db.bucket<{ addr: string }>(Bucket.peers)
    const users = db.bucket<{ name: string }>(Bucket.users)
    await peers.put('a', { addr: '/ip4/1.2.3.4' })
    await users.put('a', { name: 'alice' })
    assert.deepEqual(await peers.get('a'), { addr: '/ip4/1.2.3.4' })
    assert.deepEqual(await users.get('a'), { name: 'alice' })
    assert.equal(await db.bucket(Bucket.tasks).get('a'), undefined)
    await peers.del('a')
    assert.equal(await peers.get('a'), undefined)
    assert.deepEqual(await users.get('a'), { name: 'alice' })
    // a scan of one bucket never reaches into its neighbours
    assert.deepEqual(await all(db.bucket(Bucket.blocklist).entries()), [])
    assert.deepEqual(await all(users.entries()), [['a', { name: 'alice' }]])
    // the schema version lives in meta, not in the others
    assert.deepEqual((await all(db.bucket(Bucket.meta).entries())).map(([k]) => k), ['schemaVersion'])
  })

  it('iterates in key order, with ranges, reverse and limit', async () => {
    db = await openDb({ path: dbPath })
    const tasks = db.bucket<number>(Bucket.tasks)
    for (const key of ['c', 'a', 'e', 'b', 'd']) await tasks.put(key, key.charCodeAt(0))
    await db.bucket(Bucket.ledger).put('a0', 1)
    await db.bucket(Bucket.blocklist).put('zz', 1)
    const keys = async (range?: Parameters<typeof tasks.entries>[0]): Promise<string[]> => (await all(tasks.entries(range))).map(([k]) => k)
    assert.deepEqual(await keys(), ['a', 'b', 'c', 'd', 'e'])
    assert.deepEqual(await keys({ gt: 'b', lt: 'e' }), ['c', 'd'])
    assert.deepEqual(await keys({ gte: 'b', lte: 'd' }), ['b', 'c', 'd'])
    assert.deepEqual(await keys({ reverse: true, limit: 2 }), ['e', 'd'])
    assert.deepEqual(await keys({ gt: 'a', reverse: true }), ['e', 'd', 'c', 'b'])
    assert.deepEqual(await all(tasks.entries({ limit: 1 })), [['a', 97]])
  })

  it('stops iterating early without leaking the iterator', async () => {
    db = await openDb({ path: dbPath })
    const tasks = db.bucket<number>(Bucket.tasks)
    for (let i = 0; i < 10; i++) await tasks.put(`k${i}`, i)
    for await (const [key] of tasks.entries()) {
      assert.equal(key, 'k0')
      break
    }
    await db.close()
    db = undefined
  })

  it('applies a batch across buckets atomically', async () => {
    db = await openDb({ path: dbPath })
    const ledger = db.bucket<{ amount: number }>(Bucket.ledger, z.object({ amount: z.number().int() }))
    const tasks = db.bucket<string>(Bucket.tasks)
    await tasks.put('t1', 'queued')
    await db.batch([
      ledger.putOp('e1', { amount: 5 }),
      { type: 'put', bucket: Bucket.users, key: 'u1', value: { credits: 5 } },
      tasks.delOp('t1')
    ])
    assert.deepEqual(await ledger.get('e1'), { amount: 5 })
    assert.deepEqual(await db.bucket(Bucket.users).get('u1'), { credits: 5 })
    assert.equal(await tasks.get('t1'), undefined)

    // one bad op: nothing of the batch is applied
    await assert.rejects(db.batch([
      { type: 'put', bucket: Bucket.ledger, key: 'e2', value: { amount: 1 } },
      { type: 'put', bucket: Bucket.users, key: 'u2', value: undefined }
    ]), { name: 'DbValueError', code: 'DB_VALUE_INVALID' })
    assert.equal(await ledger.get('e2'), undefined)
    assert.throws(() => ledger.putOp('e3', { amount: 1.5 }), { name: 'DbValueError' })
  })

  it('checks values against the bucket schema on write and read', async () => {
    db = await openDb({ path: dbPath })
    const Peer = z.object({ addr: z.string() })
    const peers = db.bucket(Bucket.peers, Peer)
    await assert.rejects(peers.put('p', { addr: 42 } as any), { name: 'DbValueError', code: 'DB_VALUE_INVALID' })
    await db.bucket(Bucket.peers).put('bad', { addr: 42 })
    await peers.put('good', { addr: 'x' })
    await assert.rejects(peers.get('bad'), (err: any) => err.name === 'DbValueError' && err.details.key === 'bad' && err.details.op === 'read')
    assert.deepEqual(await peers.get('good'), { addr: 'x' })
    await assert.rejects(all(peers.entries()), { name: 'DbValueError' })
  })

  it('writes the schema version to a new database and refuses a newer one', async () => {
    db = await openDb({ path: dbPath })
    assert.equal(db.schemaVersion, DB_SCHEMA_VERSION)
    assert.equal(await db.bucket(Bucket.meta).get('schemaVersion'), DB_SCHEMA_VERSION)
    await db.close()
    db = undefined

    // a future node wrote this database
    const raw = new Level<Buffer, unknown>(dbPath, { keyEncoding: 'buffer', valueEncoding: 'json' })
    await raw.put(Buffer.concat([Buffer.from([Bucket.meta]), Buffer.from('schemaVersion')]), DB_SCHEMA_VERSION + 1)
    await raw.close()
    await assert.rejects(openDb({ path: dbPath }), (err: any) => {
      assert.equal(err.name, 'DbVersionError')
      assert.equal(err.code, 'DB_VERSION_UNSUPPORTED')
      return true
    })
    // the refused open released the lock
    const again = new Level(dbPath)
    await again.open()
    await again.close()
  })

  it('reports an unopenable path as DbOpenError', async () => {
    await fs.writeFile(dbPath, 'not a folder')
    await assert.rejects(openDb({ path: dbPath }), { name: 'DbOpenError', code: 'DB_OPEN_FAILED' })
  })

  it('keeps data across close and reopen; close is idempotent', async () => {
    db = await openDb({ path: dbPath })
    await db.bucket(Bucket.users).put('u', { n: 1 })
    await Promise.all([db.close(), db.close()])
    await db.close()
    await assert.rejects(db.bucket(Bucket.users).get('u'))
    db = await openDb({ path: dbPath })
    assert.deepEqual(await db.bucket(Bucket.users).get('u'), { n: 1 })
  })

  it('refuses a database another process holds with DbLockedError', async () => {
    const holder = startHolder(dbPath, 'hold')
    children.push(holder.child)
    assert.equal(await holder.ready, 'ready')
    await assert.rejects(openDb({ path: dbPath }), (err: any) => {
      assert.equal(err.name, 'DbLockedError')
      assert.equal(err.code, 'DATA_DIR_LOCKED')
      assert.ok(err.message.includes(dbPath), err.message)
      return true
    })
    // and the other way round: while this process holds it, a child cannot open it
    await killed(holder.child)
    db = await openDb({ path: dbPath })
    const second = startHolder(dbPath, 'hold')
    children.push(second.child)
    assert.equal(await second.ready, 'error DATA_DIR_LOCKED')
  })

  it('keeps every acknowledged write of a process killed with SIGKILL', async () => {
    const count = 200
    const writer = startHolder(dbPath, 'write', String(count))
    children.push(writer.child)
    assert.equal(await writer.ready, 'ready')
    await killed(writer.child)
    db = await openDb({ path: dbPath })
    const entries = await all(db.bucket<{ n: number }>(Bucket.tasks).entries())
    assert.equal(entries.length, count)
    assert.deepEqual(entries.map(([, value]) => value.n), Array.from({ length: count }, (_, n) => n))
  })
})

async function all<T> (iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}
