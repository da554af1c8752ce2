/**
 * What an acknowledged task costs in the database: the history record written as `POST
 * /realm/tasks` writes it before its 202 (one atomic batch: record, requester index, open-task
 * index), with and without `sync` (fsync before the write resolves), one at a time and 16 at
 * once (LevelDB commits concurrent writers as one group, one fsync for the group). Measured in
 * the same run on a temp dir of the given folder's file system.
 *
 *   node --import tsx --import ./node/shims.ts scripts/crash/sync-cost.ts [--writes 400] [--dir /tmp]
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { openDb, Bucket, type RealmDb } from '../../node/db/index.js'

/** Writes in flight at once in the concurrent rounds: one requester's share of the queue */
const CONCURRENCY = 16

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]
}

function record (): Record<string, unknown> {
  const id = randomBytes(12).toString('base64url')
  return { id, requester: 'ip:127.0.0.1', kind: 'chat', model: 'llama3.2:1b', status: 'queued', createdAt: new Date().toISOString(), attempts: 0 }
}

async function writeOne (db: RealmDb, sync: boolean): Promise<number> {
  const r = record()
  const t0 = performance.now()
  await db.batch([
    { type: 'put', bucket: Bucket.tasks, key: `t:${String(r.id)}`, value: r },
    { type: 'put', bucket: Bucket.tasks, key: `r:0123456789abcdef:${Date.now()}:${String(r.id)}`, value: '' },
    { type: 'put', bucket: Bucket.tasks, key: `o:${String(r.id)}`, value: '' }
  ], { sync })
  return performance.now() - t0
}

async function round (db: RealmDb, sync: boolean, writes: number, concurrency: number): Promise<{ perS: number, p50: number, p99: number }> {
  const latencies: number[] = []
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < writes) {
      next++
      latencies.push(await writeOne(db, sync))
    }
  }))
  const s = (performance.now() - t0) / 1000
  return { perS: writes / s, p50: pct(latencies, 50), p99: pct(latencies, 99) }
}

const { values } = parseArgs({ options: { writes: { type: 'string' }, dir: { type: 'string' } } })
const writes = Number(values.writes ?? 400)
const dir = await fs.mkdtemp(path.join(values.dir ?? os.tmpdir(), 'realm-sync-cost-'))
const db = await openDb({ path: path.join(dir, 'db') })
try {
  await round(db, false, 100, 1)
  console.log(`acknowledgement write (3-key batch), ${writes} writes per row, dir ${dir}`)
  console.log('mode                   writes/s      p50        p99')
  for (const concurrency of [1, CONCURRENCY]) {
    // interleave the two modes so machine noise hits both alike
    for (const sync of [false, true, false, true]) {
      const r = await round(db, sync, writes, concurrency)
      console.log(`${(sync ? 'sync' : 'no sync').padEnd(8)} x${String(concurrency).padEnd(3)}       ${r.perS.toFixed(0).padStart(8)}  ${r.p50.toFixed(3).padStart(7)} ms ${r.p99.toFixed(3).padStart(7)} ms`)
    }
  }
} finally {
  await db.close()
  await fs.rm(dir, { recursive: true, force: true })
}
