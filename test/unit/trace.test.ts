import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  createTraceLog, pruneTrace, readTrace, traceFiles, TraceCrashedError,
  type ReadTraceOptions, type TraceFailpoint, type TraceLog, type TraceLogInit
} from '../../node/trace/index.js'
import type { RealmEvent } from '../../node/events/index.js'

const WRITER = fileURLToPath(new URL('./fixtures/trace-writer.ts', import.meta.url))
/** small files so a few hundred events rotate many times */
const SMALL_MAX_BYTES = 2048
/** liveness bound for a follower to see what was written (never a speed goal) */
const FOLLOW_DEADLINE_MS = 15_000

function tick (seq: number, extra: Record<string, unknown> = {}): RealmEvent {
  return { type: 'test.tick', time: new Date().toISOString(), seq, ...extra }
}

async function readAll (dir: string, options: ReadTraceOptions = {}): Promise<{ events: RealmEvent[], skipped: number }> {
  const events: RealmEvent[] = []
  const generator = readTrace(dir, options)
  for (;;) {
    const next = await generator.next()
    if (next.done === true) return { events, skipped: next.value.skipped }
    events.push(next.value)
  }
}

function seqs (events: RealmEvent[]): number[] {
  return events.map(event => event.seq as number)
}

function range (from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i)
}

describe('trace log', () => {
  let dir: string
  const logs: TraceLog[] = []

  function open (init: Partial<TraceLogInit> = {}): TraceLog {
    const log = createTraceLog({ dir, ...init })
    logs.push(log)
    return log
  }

  beforeEach(async () => {
    dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'realm-trace-')), 'trace')
  })

  afterEach(async () => {
    for (const log of logs.splice(0)) await log.stop()
    await fs.rm(path.dirname(dir), { recursive: true, force: true })
  })

  it('appends events and reads them back in order', async () => {
    const log = open()
    log.append(tick(0)) // before start: kept and written once started
    await log.start()
    for (let seq = 1; seq < 100; seq++) log.append(tick(seq, { note: `é ${seq} \n "quoted"` }))
    await log.stop()
    const { events, skipped } = await readAll(dir)
    assert.deepEqual(seqs(events), range(0, 100))
    assert.equal(events[5].note, 'é 5 \n "quoted"')
    assert.equal(events[0].type, 'test.tick')
    assert.equal(skipped, 0)
    assert.deepEqual(await traceFiles(dir), [path.join(dir, 'trace.log')])
    // one line per event
    assert.equal((await fs.readFile(path.join(dir, 'trace.log'), 'utf8')).split('\n').length, 101)
    // appended after stop: dropped, not thrown
    log.append(tick(100))
    assert.equal(log.stats.dropped, 1)
  })

  it('writes on its own within the flush interval', async () => {
    const log = open({ flushIntervalMs: 10 })
    await log.start()
    log.append(tick(0))
    const deadline = Date.now() + FOLLOW_DEADLINE_MS
    while ((await readAll(dir)).events.length === 0) {
      assert.ok(Date.now() < deadline, 'never written')
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  })

  it('rotates at maxBytes, keeps at most maxFiles rotated files, and reads across them in order', async () => {
    const log = open({ maxBytes: SMALL_MAX_BYTES, maxFiles: 3 })
    await log.start()
    for (let seq = 0; seq < 500; seq++) {
      log.append(tick(seq))
      if (seq % 7 === 0) await log.flush()
    }
    await log.flush()
    const files = await traceFiles(dir)
    assert.deepEqual(files.map(file => path.basename(file)), ['trace.3.log', 'trace.2.log', 'trace.1.log', 'trace.log'])
    for (const file of files) assert.ok((await fs.stat(file)).size <= SMALL_MAX_BYTES, file)
    assert.ok(log.stats.rotations > 10)
    const { events } = await readAll(dir)
    // the oldest files went; what is left is contiguous and ends with the last event
    const got = seqs(events)
    assert.ok(got[0] > 0)
    assert.deepEqual(got, range(got[0], 500))
  })

  it('loses nothing between rotated files while they are kept', async () => {
    const log = open({ maxBytes: SMALL_MAX_BYTES, maxFiles: 100 })
    await log.start()
    for (let seq = 0; seq < 600; seq++) log.append(tick(seq))
    await log.stop()
    assert.ok((await traceFiles(dir)).length > 10)
    assert.deepEqual(seqs((await readAll(dir)).events), range(0, 600))
  })

  it('follows new events, across rotations, without loss or duplicates', async () => {
    const log = open({ maxBytes: SMALL_MAX_BYTES, maxFiles: 100, flushIntervalMs: 1 })
    await log.start()
    for (let seq = 0; seq < 10; seq++) log.append(tick(seq))
    await log.flush()
    const controller = new AbortController()
    const seen: number[] = []
    const total = 400
    const following = (async () => {
      for await (const event of readTrace(dir, { follow: true, signal: controller.signal, pollMs: 5 })) {
        seen.push(event.seq as number)
        if (seen.length >= total) break
      }
    })()
    const timer = setTimeout(() => { controller.abort() }, FOLLOW_DEADLINE_MS)
    try {
      for (let seq = 10; seq < total; seq++) {
        log.append(tick(seq))
        // uneven bursts, so reads land before, during and after rotations
        if (seq % 13 === 0) await new Promise(resolve => setTimeout(resolve, 2))
      }
      await log.flush()
      await following
    } finally {
      clearTimeout(timer)
      controller.abort()
    }
    assert.ok(log.stats.rotations > 10)
    assert.deepEqual(seen, range(0, total))
  })

  it('follows a writer that writes every event as it comes, through many rotations', async () => {
    // one write per event: the follower often sits at the end of a file that is about to rotate
    const log = open({ maxBytes: 1024, maxFiles: 1000 })
    await log.start()
    const controller = new AbortController()
    const seen: number[] = []
    const total = 800
    const following = (async () => {
      for await (const event of readTrace(dir, { follow: true, signal: controller.signal, pollMs: 1 })) {
        seen.push(event.seq as number)
        if (seen.length >= total) break
      }
    })()
    const timer = setTimeout(() => { controller.abort() }, FOLLOW_DEADLINE_MS)
    try {
      for (let seq = 0; seq < total; seq++) {
        log.append(tick(seq))
        await log.flush()
      }
      await following
    } finally {
      clearTimeout(timer)
      controller.abort()
    }
    assert.deepEqual(seen, range(0, total))
  })

  it('follows from an empty folder and stops when the signal aborts', async () => {
    const controller = new AbortController()
    const seen: RealmEvent[] = []
    const following = (async () => {
      for await (const event of readTrace(dir, { follow: true, signal: controller.signal, pollMs: 5 })) {
        seen.push(event)
        controller.abort()
      }
    })()
    await new Promise(resolve => setTimeout(resolve, 30))
    const log = open({ flushIntervalMs: 1 })
    await log.start()
    log.append(tick(0))
    const timer = setTimeout(() => { controller.abort() }, FOLLOW_DEADLINE_MS)
    await following
    clearTimeout(timer)
    assert.deepEqual(seqs(seen), [0])
  })

  it('skips a torn last line, counting it, and a restarted log carries on after it', async () => {
    const first = open()
    await first.start()
    for (let seq = 0; seq < 5; seq++) first.append(tick(seq))
    await first.stop()
    // what a kill in the middle of a write leaves
    await fs.appendFile(path.join(dir, 'trace.log'), '{"type":"test.tick","time":"2024-')
    const skippedLines: string[] = []
    const before = await readAll(dir, { onSkip: line => skippedLines.push(line.reason) })
    assert.deepEqual(seqs(before.events), range(0, 5))
    assert.equal(before.skipped, 1)
    assert.deepEqual(skippedLines, ['unparseable'])

    const second = open()
    await second.start()
    for (let seq = 5; seq < 10; seq++) second.append(tick(seq))
    await second.stop()
    const after = await readAll(dir)
    assert.deepEqual(seqs(after.events), range(0, 10))
    assert.equal(after.skipped, 1)
  })

  it('skips lines that are not events', async () => {
    await fs.mkdir(dir, { recursive: true })
    await fs.writeFile(path.join(dir, 'trace.log'), [
      JSON.stringify(tick(0)), '[1,2]', '{"type":1,"time":"x"}', 'garbage', '', JSON.stringify(tick(1)), ''
    ].join('\n'))
    const { events, skipped } = await readAll(dir)
    assert.deepEqual(seqs(events), [0, 1])
    assert.equal(skipped, 3)
  })

  const FAILPOINTS: TraceFailpoint[] = ['rotate:start', 'rotate:after-shift', 'rotate:after-rename', 'rotate:after-delete', 'rotate:done']
  for (const name of FAILPOINTS) {
    it(`loses no complete line when killed at ${name}, and the next start carries on`, async () => {
      const maxFiles = 4
      let calls = 0
      const crashing = open({
        maxBytes: 1024,
        maxFiles,
        // crash on the third time through, when there are rotated files to shift and delete
        failpoint: point => { if (point === name && ++calls === 3) throw new Error('killed') }
      })
      await crashing.start()
      let seq = 0
      let crashed: unknown
      for (; seq < 1000; seq++) {
        crashing.append(tick(seq))
        try {
          await crashing.flush()
        } catch (err) {
          crashed = err
          break
        }
      }
      assert.ok(crashed instanceof TraceCrashedError, 'the failpoint was reached')
      assert.equal(crashed.code, 'TRACE_CRASHED')
      // the event whose write triggered the rotation was still in memory: a real kill loses it too
      const lost = seq
      const left = seqs((await readAll(dir)).events)
      assert.deepEqual(left, range(left[0], lost))

      const restarted = open({ maxBytes: 1024, maxFiles })
      await restarted.start()
      for (seq = lost; seq < lost + 60; seq++) restarted.append(tick(seq))
      await restarted.stop()
      const { events, skipped } = await readAll(dir)
      const got = seqs(events)
      assert.deepEqual(got, range(got[0], lost + 60))
      assert.ok(got[0] <= left[0] + 60, 'only the oldest files were rotated away')
      assert.equal(skipped, 0)
      const names = (await traceFiles(dir)).map(file => path.basename(file))
      assert.ok(names.length <= maxFiles + 1, names.join(' '))
      assert.ok(!names.some(file => Number(file.split('.')[1]) > maxFiles), names.join(' '))
    })
  }

  it('writes an oversized event as a truncated marker', async () => {
    const log = open()
    await log.start()
    log.append(tick(0))
    log.append(tick(1, { taskId: 't-1', image: 'x'.repeat(300 * 1024), nested: { a: 1 } }))
    const circular: any = tick(2)
    circular.self = circular
    log.append(circular)
    log.append(tick(3, { big: 10n }))
    log.append(tick(4))
    await log.stop()
    const { events } = await readAll(dir)
    assert.deepEqual(seqs(events), [0, 1, 2, 3, 4])
    const marker = events[1]
    assert.equal(marker.truncated, true)
    assert.equal(marker.type, 'test.tick')
    assert.equal(marker.taskId, 't-1')
    assert.ok((marker.bytes as number) > 300 * 1024)
    assert.equal(marker.image, undefined)
    assert.equal(marker.nested, undefined)
    assert.equal(events[2].unserializable, true)
    assert.equal(events[3].unserializable, true)
    assert.equal(log.stats.truncated, 1)
  })

  it('filters by since', async () => {
    const log = open()
    await log.start()
    const base = Date.parse('2025-01-01T00:00:00.000Z')
    for (let seq = 0; seq < 10; seq++) log.append({ type: 'test.tick', time: new Date(base + seq * 60_000).toISOString(), seq })
    await log.stop()
    assert.deepEqual(seqs((await readAll(dir, { since: new Date(base + 5 * 60_000) })).events), [5, 6, 7, 8, 9])
    assert.deepEqual(seqs((await readAll(dir, { since: '2025-01-01T00:08:00Z' })).events), [8, 9])
    await assert.rejects(readAll(dir, { since: 'yesterday-ish' }), { name: 'InvalidSinceError', code: 'INVALID_SINCE' })
  })

  it('applies redaction before writing', async () => {
    const log = open({
      redact: event => {
        if (event.type === 'test.drop') return undefined
        if (event.type === 'test.broken') throw new Error('oops')
        const { prompt, ...rest } = event
        return rest as RealmEvent
      }
    })
    await log.start()
    log.append(tick(0, { prompt: 'secret question' }))
    log.append({ type: 'test.drop', time: new Date().toISOString(), seq: 1 })
    log.append({ type: 'test.broken', time: new Date().toISOString(), seq: 2, prompt: 'secret' })
    await log.stop()
    const text = await fs.readFile(path.join(dir, 'trace.log'), 'utf8')
    assert.ok(!text.includes('secret'), text)
    const { events } = await readAll(dir)
    assert.equal(events.length, 2)
    assert.deepEqual(events[0], { type: 'test.tick', time: events[0].time, seq: 0 })
    assert.equal(events[1].type, 'test.broken')
    assert.equal(events[1].redactFailed, true)
    assert.equal(events[1].seq, undefined)
  })

  it('prunes rotated files older than the retention, oldest first, never the current file', async () => {
    await fs.mkdir(dir, { recursive: true })
    const day = 24 * 60 * 60 * 1000
    const now = Date.now()
    const at = (daysAgo: number, seq: number): string => JSON.stringify({ type: 'test.tick', time: new Date(now - daysAgo * day).toISOString(), seq }) + '\n'
    await fs.writeFile(path.join(dir, 'trace.3.log'), at(30, 0) + at(20, 1))
    await fs.writeFile(path.join(dir, 'trace.2.log'), at(15, 2) + at(10, 3) + '{"torn')
    await fs.writeFile(path.join(dir, 'trace.1.log'), at(9, 4) + at(1, 5))
    await fs.writeFile(path.join(dir, 'trace.log'), at(40, 6))
    const deleted = await pruneTrace(dir, { olderThan: new Date(now - 7 * day) })
    assert.deepEqual(deleted.map(file => path.basename(file)), ['trace.3.log', 'trace.2.log'])
    assert.deepEqual(seqs((await readAll(dir)).events), [4, 5, 6])

    // the same through the log's own option, at start
    const log = open({ retentionMs: 2 * day })
    await log.start()
    assert.deepEqual((await traceFiles(dir)).map(file => path.basename(file)), ['trace.1.log', 'trace.log'])
    await log.stop()
    const shorter = open({ retentionMs: day / 2 })
    await shorter.start()
    assert.deepEqual((await traceFiles(dir)).map(file => path.basename(file)), ['trace.log'])
  })

  it('loses no complete line and keeps order when the writing process is SIGKILLed', async function () {
    this.timeout(120_000)
    const rounds = 4
    const maxBytes = 8 * 1024
    const maxFiles = 40
    let next = 0
    for (let round = 0; round < rounds; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, String(next), String(maxBytes), String(maxFiles)], { stdio: ['ignore', 'pipe', 'inherit'] })
      const exited = new Promise(resolve => child.once('exit', resolve))
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.once('data', () => { resolve() })
          child.once('exit', code => { reject(new Error(`writer exited early: ${String(code)}`)) })
        })
        // kill it somewhere in its work: mid-write, mid-rotation, mid-delete
        await new Promise(resolve => setTimeout(resolve, 150 + Math.floor(Math.random() * 250)))
      } finally {
        child.kill('SIGKILL')
        await exited
      }
      const { events, skipped } = await readAll(dir)
      const got = seqs(events)
      assert.ok(got.length > 0, `round ${round}: nothing written`)
      assert.ok(got[got.length - 1] >= next, `round ${round}: no progress`)
      // contiguous from the oldest kept event: nothing lost in between, nothing repeated
      assert.deepEqual(got, range(got[0], got[0] + got.length), `round ${round}`)
      // at most one torn line per kill
      assert.ok(skipped <= round + 1, `round ${round}: ${skipped} lines skipped`)
      const names = (await traceFiles(dir)).map(file => path.basename(file))
      assert.ok(names.length <= maxFiles + 2, names.join(' '))
      next = got[got.length - 1] + 1
    }
  })
})
