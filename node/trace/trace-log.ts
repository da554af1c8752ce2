import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import { errorMessage } from '../../protocol/errors.js'
import {
  CURRENT_TRACE_FILE, DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_MAX_BUFFER_BYTES, DEFAULT_MAX_BYTES,
  DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_FILES, FLUSH_HIGH_WATER_BYTES, ROTATE_RETRY_MS, WRITE_RETRY_MS
} from './constants.js'
import { encodeEvent, type EncodedLine } from './encode.js'
import { TraceCrashedError } from './errors.js'
import { deleteBeyond, pruneTrace, traceFileName, traceIndexes } from './files.js'
import type { TraceFailpoint, TraceLog, TraceLogInit, TraceLogStats } from './index.js'
import type { RealmEvent } from '../events/index.js'

const log = logger('realm:trace')

const NEWLINE = 0x0a

function isMissing (err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
}

export class DefaultTraceLog implements TraceLog {
  private readonly dir: string
  private readonly maxBytes: number
  private readonly maxFiles: number
  private readonly flushIntervalMs: number
  private readonly maxEventBytes: number
  private readonly maxBufferBytes: number
  private readonly retentionMs?: number
  private readonly redact?: TraceLogInit['redact']
  private readonly failpoint?: TraceLogInit['failpoint']

  private state: 'new' | 'started' | 'stopping' | 'stopped' = 'new'
  private crashed?: TraceCrashedError
  private handle?: fs.FileHandle
  /** bytes in the current file */
  private size = 0
  private queue: EncodedLine[] = []
  private queueBytes = 0
  /** the unwritten rest of a line whose start is already in the current file */
  private carry?: Buffer
  /** events dropped since the last one queued, reported by a `trace.dropped` line */
  private droppedRun = 0
  private timer?: ReturnType<typeof setTimeout>
  /** writes run one at a time, in order */
  private chain: Promise<void> = Promise.resolve()
  /** a flush queued on the chain and not started yet, which any new `flush()` can share */
  private nextFlush?: Promise<void>
  private rotateRetryAt = 0
  private readonly counters: TraceLogStats = { appended: 0, written: 0, truncated: 0, dropped: 0, rotations: 0, errors: 0 }

  constructor (init: TraceLogInit) {
    this.dir = init.dir
    this.maxBytes = init.maxBytes ?? DEFAULT_MAX_BYTES
    this.maxFiles = init.maxFiles ?? DEFAULT_MAX_FILES
    this.flushIntervalMs = init.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS
    this.maxEventBytes = init.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES
    this.maxBufferBytes = init.maxBufferBytes ?? DEFAULT_MAX_BUFFER_BYTES
    this.retentionMs = init.retentionMs
    this.redact = init.redact
    this.failpoint = init.failpoint
    if (!(this.maxBytes > 0)) throw new RangeError('maxBytes must be positive')
    if (!Number.isInteger(this.maxFiles) || this.maxFiles < 1) throw new RangeError('maxFiles must be an integer ≥ 1')
  }

  get stats (): TraceLogStats {
    return { ...this.counters }
  }

  async start (): Promise<void> {
    if (this.state !== 'new') return
    await fs.mkdir(this.dir, { recursive: true })
    // a kill between the rename and the delete of a rotation leaves one file too many
    await deleteBeyond(this.dir, this.maxFiles)
    await this.applyRetention()
    await this.openCurrent()
    this.state = 'started'
    if (this.queue.length > 0) this.schedule()
  }

  append (event: RealmEvent): void {
    try {
      if (this.crashed != null || this.state === 'stopped') {
        this.counters.dropped++
        return
      }
      this.counters.appended++
      const line = encodeEvent(event, { maxEventBytes: this.maxEventBytes, redact: this.redact })
      if (line == null) return
      if (line.marker === 'truncated') this.counters.truncated++
      if (this.queueBytes + line.bytes > this.maxBufferBytes) {
        this.counters.dropped++
        this.droppedRun++
        return
      }
      if (this.droppedRun > 0) {
        const marker = encodeEvent({ type: 'trace.dropped', time: new Date().toISOString(), count: this.droppedRun }, { maxEventBytes: this.maxEventBytes })
        if (marker != null) this.enqueue(marker)
        this.droppedRun = 0
      }
      this.enqueue(line)
      this.schedule()
    } catch {
      // the hot path never throws; encodeEvent already guards the event itself
      this.counters.errors++
    }
  }

  flush (): Promise<void> {
    if (this.crashed != null) return Promise.reject(this.crashed)
    if (this.state === 'new' || this.state === 'stopped') return Promise.resolve()
    if (this.nextFlush == null) {
      const run = this.chain.then(async () => {
        this.nextFlush = undefined
        await this.writeQueued()
      })
      this.nextFlush = run
      this.chain = run.catch(() => {})
    }
    return this.nextFlush
  }

  async stop (): Promise<void> {
    if (this.state === 'new') this.state = 'stopped'
    if (this.state !== 'started') return
    this.state = 'stopping'
    try {
      await this.flush()
    } catch {
      // crashed: nothing more to write
    }
    await this.chain
    this.state = 'stopped'
    this.clearTimer()
    if (this.queue.length > 0) log.error('trace log stopped with %d events unwritten', this.queue.length)
    await this.closeHandle()
  }

  private enqueue (line: EncodedLine): void {
    this.queue.push(line)
    this.queueBytes += line.bytes
  }

  private schedule (): void {
    if (this.state !== 'started' && this.state !== 'stopping') return
    if (this.queueBytes >= FLUSH_HIGH_WATER_BYTES) {
      this.flush().catch(() => {})
      return
    }
    this.setTimer(this.flushIntervalMs)
  }

  private setTimer (ms: number): void {
    if (this.timer != null) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.flush().catch(() => {})
    }, ms)
    // the trace log alone must not keep a process alive; stop() writes what is left
    this.timer.unref()
  }

  private clearTimer (): void {
    if (this.timer == null) return
    clearTimeout(this.timer)
    this.timer = undefined
  }

  /** call a test failpoint; if it throws, the log is dead from here on, as if killed */
  private point (name: TraceFailpoint): void {
    if (this.failpoint == null) return
    try {
      this.failpoint(name)
    } catch (err) {
      throw new TraceCrashedError(name, err)
    }
  }

  private async writeQueued (): Promise<void> {
    if (this.crashed != null) throw this.crashed
    this.clearTimer()
    try {
      await this.drain()
    } catch (err) {
      if (err instanceof TraceCrashedError) {
        await this.crash(err)
        throw err
      }
      this.counters.errors++
      log.error('trace log write failed, retrying in %d ms: %s', WRITE_RETRY_MS, errorMessage(err))
      this.setTimer(WRITE_RETRY_MS)
    }
  }

  private async crash (err: TraceCrashedError): Promise<void> {
    this.crashed = err
    this.state = 'stopped'
    this.clearTimer()
    this.queue = []
    this.queueBytes = 0
    this.carry = undefined
    await this.closeHandle()
  }

  /** write every queued line, rotating at the size limit */
  private async drain (): Promise<void> {
    if (this.handle == null) await this.openCurrent()
    if (this.carry != null) {
      const carry = this.carry
      this.carry = undefined
      await this.writeBuffer(carry)
    }
    while (this.queue.length > 0) {
      const lines = this.queue
      this.queue = []
      this.queueBytes = 0
      let done = 0
      try {
        while (done < lines.length) {
          const canRotate = Date.now() >= this.rotateRetryAt
          if (canRotate && this.size > 0 && this.size + lines[done].bytes > this.maxBytes) await this.rotate()
          // one write for as many lines as fit before the limit (all of them while rotation waits)
          let end = done + 1
          let bytes = lines[done].bytes
          while (end < lines.length && (!canRotate || this.size + bytes + lines[end].bytes <= this.maxBytes)) {
            bytes += lines[end].bytes
            end++
          }
          let text = ''
          for (let i = done; i < end; i++) text += lines[i].text
          try {
            await this.writeBuffer(Buffer.from(text, 'utf8'))
          } finally {
            // a partly written chunk has its rest in `carry`: its lines count as written
            if (this.carry != null) done = end
          }
          this.counters.written += end - done
          done = end
        }
      } catch (err) {
        // put back what was not written, ahead of anything appended meanwhile
        const rest = lines.slice(done)
        this.queue = rest.concat(this.queue)
        for (const line of rest) this.queueBytes += line.bytes
        throw err
      }
    }
  }

  private async writeBuffer (buffer: Buffer): Promise<void> {
    const handle = this.handle
    if (handle == null) throw new Error('trace file not open')
    let offset = 0
    try {
      while (offset < buffer.length) {
        const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset, null)
        offset += bytesWritten
        this.size += bytesWritten
      }
    } catch (err) {
      if (offset > 0) this.carry = buffer.subarray(offset)
      throw err
    }
  }

  /** open `trace.log` for appending; close a torn last line left by a crash */
  private async openCurrent (): Promise<void> {
    const handle = await fs.open(path.join(this.dir, CURRENT_TRACE_FILE), 'a+')
    try {
      const { size } = await handle.stat()
      this.handle = handle
      this.size = size
      if (size > 0) {
        const last = Buffer.alloc(1)
        await handle.read(last, 0, 1, size - 1)
        // the fragment becomes a line of its own, which readers skip, instead of spoiling the next one
        if (last[0] !== NEWLINE) await this.writeBuffer(Buffer.from('\n'))
      }
    } catch (err) {
      this.handle = undefined
      await handle.close().catch(() => {})
      throw err
    }
  }

  private async closeHandle (): Promise<void> {
    const handle = this.handle
    this.handle = undefined
    if (handle == null) return
    try {
      await handle.close()
    } catch (err) {
      log.error('closing trace file failed: %s', errorMessage(err))
    }
  }

  /** see the order of renames in index.ts */
  private async rotate (): Promise<void> {
    this.counters.rotations++
    await this.closeHandle()
    this.point('rotate:start')
    try {
      const present = new Set(await traceIndexes(this.dir))
      let free = 1
      while (present.has(free)) free++
      for (let index = free - 1; index >= 1; index--) {
        try {
          await fs.rename(path.join(this.dir, traceFileName(index)), path.join(this.dir, traceFileName(index + 1)))
        } catch (err) {
          // deleted meanwhile (retention run by hand): its slot is simply free
          if (!isMissing(err)) throw err
        }
        this.point('rotate:after-shift')
      }
      await fs.rename(path.join(this.dir, CURRENT_TRACE_FILE), path.join(this.dir, traceFileName(1)))
      this.point('rotate:after-rename')
      await deleteBeyond(this.dir, this.maxFiles)
      this.point('rotate:after-delete')
      await this.applyRetention()
    } catch (err) {
      if (err instanceof TraceCrashedError) throw err
      // keep appending to whatever `trace.log` is now, past the limit, and try again later
      this.counters.errors++
      this.rotateRetryAt = Date.now() + ROTATE_RETRY_MS
      log.error('trace log rotation failed, retrying in %d ms: %s', ROTATE_RETRY_MS, errorMessage(err))
    }
    await this.openCurrent()
    this.point('rotate:done')
  }

  private async applyRetention (): Promise<void> {
    if (this.retentionMs == null) return
    try {
      await pruneTrace(this.dir, { olderThan: new Date(Date.now() - this.retentionMs) })
    } catch (err) {
      log.error('trace log retention failed: %s', errorMessage(err))
    }
  }
}
