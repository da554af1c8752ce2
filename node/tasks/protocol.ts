/**
 * `/rentahal/task/1.0.0` on both ends: the server runs requests from other nodes on this
 * node's workers; the client sends a task to another node and follows it. Both heartbeat every
 * second; a side silent for 5 s has lost the job. Every frame is validated and size-limited; a
 * peer that sends garbage gets an error frame and the stream is closed, the node carries on.
 *
 * One task per stream, as ever, but the client keeps a warm stream to each worker peer it uses,
 * opened and negotiated ahead of its task (opening one costs a round trip and a peer-store
 * write), so a task starts with its request frame. The server lets a few such streams per
 * connection wait IDLE_STREAM_DEADLINE_MS for their request; the client drops them sooner. The
 * frames are unchanged: a node that opens a stream per task and one that keeps them warm speak
 * the same protocol.
 */
import './lp-fastpath.js'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import type { Connection, Stream } from '@libp2p/interface'
import type { RealmLibp2p } from '../p2p/libp2p.js'
import type { Startable } from '../startable.js'
import type { EventBus } from '../events/index.js'
import type { ExecEvent, ExecTimings, LocalExecutor } from './executor.js'
import { isTaskCode } from './executor.js'
import { TaskError } from './types.js'
import { PROTOCOL_TASK } from '../../protocol/ids.js'
import {
  MAX_REQUESTER_FRAMES_PER_S, MAX_TASK_FRAME_BYTES, TASK_HEARTBEAT_MS, TASK_LEASE_MS,
  decodeRequesterFrame, decodeWorkerFrame, encodeFrame, type RequesterFrame, type WorkerFrame
} from '../../protocol/task-frames.js'
import { MAX_TEXT_CHARS, type TaskOutput, type TaskSpec } from '../../protocol/task.js'
import { RealmError, errorMessage } from '../../protocol/errors.js'

/** A signal's state read afresh (TypeScript narrows `.aborted` across awaits otherwise) */
function aborted (signal?: AbortSignal): boolean {
  return signal?.aborted === true
}

/** Most task streams one peer may have open with us at once */
export const MAX_TASK_STREAMS_PER_CONNECTION = 32
/**
 * Most task streams one peer may have open with us at once over all its connections, so more
 * connections do not buy more streams. Beyond it a stream is answered QUEUE_FULL and closed (an
 * honest client keeps to one connection, and to MAX_TASK_STREAMS_PER_CONNECTION on it)
 */
export const MAX_TASK_STREAMS_PER_PEER = 64
/** The request frame must arrive this soon after the stream opens (beyond the idle allowance below) */
const REQUEST_DEADLINE_MS = 5_000
/** A warm stream, opened ahead of its task, may wait this long for its request frame */
export const IDLE_STREAM_DEADLINE_MS = 60_000
/** Streams of one connection that may wait that long at once: a peer cannot hold more idle */
export const MAX_IDLE_STREAMS_PER_CONNECTION = 4
/**
 * Warm streams kept per worker peer, topped up when a task to it ends (not when it starts: the
 * worker's node then has that task to serve first); two, so back-to-back tasks always find one
 */
const WARM_STREAMS_PER_PEER = 2
/** A warm stream unused this long is dropped, well before the server's deadline ends it */
const WARM_STREAM_MAX_IDLE_MS = 50_000
/** A peer that cannot give us a negotiated task stream in this long is unreachable */
const OPEN_STREAM_TIMEOUT_MS = TASK_LEASE_MS * 2
/** The requester's close of a finished stream; one still pending then (the peer reads nothing) is aborted */
const REQUESTER_CLOSE_TIMEOUT_MS = 1_000

/** Close a stream's writable end; one that has not closed within `ms` (the peer reads nothing) is aborted */
async function closeStream (stream: Stream, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([
    stream.close().catch(() => { stream.abort(new Error('close failed')) }),
    new Promise<void>(resolve => {
      timer = setTimeout(() => { stream.abort(new Error('close timed out')); resolve() }, ms)
    })
  ])
  clearTimeout(timer)
}

function encodeOrError (frame: RequesterFrame | WorkerFrame): Uint8Array {
  try {
    return encodeFrame(frame)
  } catch (err) {
    return encodeFrame({ t: 'error', code: 'INTERNAL', message: errorMessage(err) })
  }
}

/**
 * Writes frames in order and never throws (a broken stream is the reader's news). Frames queued
 * while a write is under way leave together in the next one, and tokens among them merge into
 * one frame (Nagle-like: an idle writer sends at once; after a token it waits one turn of the
 * event loop for more). A write stalled for the lease (the peer reads nothing) ends the writer
 * when `check()` sees it on the heartbeat tick: one timer per stream, none per frame.
 */
class FrameWriter {
  closed = false
  private readonly queue: Array<RequesterFrame | WorkerFrame> = []
  private writing = false
  /** when the write under way started; 0 when none is */
  private writeSince = 0
  private readonly abort = new AbortController()
  private waiters: Array<() => void> = []

  constructor (private readonly lp: LengthPrefixedStream<Stream>) {}

  /** Resolves once the frame (and whatever was queued with it) is written, or the writer has closed */
  send (frame: RequesterFrame | WorkerFrame): Promise<void> {
    if (this.closed) return Promise.resolve()
    const last = this.queue[this.queue.length - 1]
    if (frame.t === 'token' && last?.t === 'token' && last.text.length + frame.text.length <= MAX_TEXT_CHARS) {
      last.text += frame.text
    } else if (frame.t !== 'heartbeat' || this.queue.length === 0) {
      // (a heartbeat behind other frames adds nothing: any frame says this side is alive)
      this.queue.push(frame.t === 'token' ? { t: 'token', text: frame.text } : frame)
    }
    if (!this.writing) void this.pump()
    return this.flushed()
  }

  /** Resolves when nothing is queued or being written */
  flushed (): Promise<void> {
    if (!this.writing) return Promise.resolve()
    return new Promise(resolve => { this.waiters.push(resolve) })
  }

  /** On the heartbeat tick: a write stalled for the lease ends the writer */
  check (now = Date.now()): void {
    if (this.writeSince !== 0 && now - this.writeSince > TASK_LEASE_MS) this.close()
  }

  /** No more frames; a write under way is abandoned */
  close (): void {
    this.closed = true
    this.queue.length = 0
    this.abort.abort()
  }

  private async pump (): Promise<void> {
    this.writing = true
    try {
      // frames sent in this same job leave together: `accepted` and `started` of a task that
      // finds a free slot, or `done` behind the last token, cost one write, not two
      await Promise.resolve()
      while (this.queue.length > 0 && !this.closed) {
        const frames = this.queue.splice(0)
        this.writeSince = Date.now()
        await this.lp.writeV(frames.map(encodeOrError), { signal: this.abort.signal })
        this.writeSince = 0
        // more tokens may follow in this turn of the event loop: they leave together
        if (frames[frames.length - 1].t === 'token') await new Promise(resolve => setImmediate(resolve))
      }
    } catch {
      this.closed = true
      this.queue.length = 0
    } finally {
      this.writing = false
      this.writeSince = 0
      const waiters = this.waiters
      this.waiters = []
      for (const resolve of waiters) resolve()
    }
  }
}

export interface TaskServerInit {
  executor: LocalExecutor
  events: EventBus
  /** refuse tasks from this peer (blocklist) */
  isBlocked?: (peerId: string) => boolean
  /** queue share of a peer (probation), 0..1 */
  weightOf?: (peerId: string) => number
  /** told how a peer's request went: followed to the end, or broke the protocol (reputation) */
  onRequester?: (peerId: string, outcome: 'submitted' | 'violation') => void
}

/** Serves task requests from other nodes */
export class TaskServer implements Startable {
  private readonly log = logger('realm:task-server')
  private readonly active = new Set<AbortController>()
  /** streams waiting for their request frame, per connection */
  private readonly waiting = new WeakMap<Connection, number>()
  /** open task streams per peer, over all its connections */
  private readonly perPeer = new Map<string, number>()
  private stopping = false
  readonly stats = { served: 0, rejectedFrames: 0 }

  constructor (private readonly libp2p: RealmLibp2p, private readonly init: TaskServerInit) {}

  async start (): Promise<void> {
    this.stopping = false
    await this.libp2p.handle(PROTOCOL_TASK, (stream, connection) => { void this.serve(stream, connection) }, {
      maxInboundStreams: MAX_TASK_STREAMS_PER_CONNECTION,
      maxOutboundStreams: MAX_TASK_STREAMS_PER_CONNECTION
    })
  }

  async stop (): Promise<void> {
    this.stopping = true
    await this.libp2p.unhandle(PROTOCOL_TASK)
    for (const c of this.active) c.abort()
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const lp = lpStream(stream, { maxDataLength: MAX_TASK_FRAME_BYTES })
    const out = new FrameWriter(lp)
    const controller = new AbortController()
    this.active.add(controller)
    const open = (this.perPeer.get(peer) ?? 0) + 1
    this.perPeer.set(peer, open)
    const fail = async (code: TaskError['code'], message: string): Promise<void> => {
      if (code === 'INVALID_TASK') this.init.onRequester?.(peer, 'violation')
      await out.send({ t: 'error', code, message })
      out.close()
      controller.abort()
      await closeStream(stream, TASK_LEASE_MS)
    }
    try {
      if (this.init.isBlocked?.(peer) === true) {
        await fail('FORBIDDEN', 'this node does not serve your peer id')
        return
      }
      if (open > MAX_TASK_STREAMS_PER_PEER) {
        await fail('QUEUE_FULL', `more than ${MAX_TASK_STREAMS_PER_PEER} task streams from your peer id at once`)
        return
      }
      const first = await this.request(stream, connection, lp, controller, fail)
      if (first === undefined) return
      await this.run(first, peer, lp, out, controller, fail)
    } catch (err) {
      this.log('task stream from %s failed: %s', peer, errorMessage(err))
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.active.delete(controller)
      const n = (this.perPeer.get(peer) ?? 1) - 1
      if (n <= 0) this.perPeer.delete(peer)
      else this.perPeer.set(peer, n)
    }
  }

  /**
   * The stream's first frame, which must be a request: within IDLE_STREAM_DEADLINE_MS for the
   * first few streams of a connection waiting at once (warm ones), REQUEST_DEADLINE_MS beyond
   */
  private async request (
    stream: Stream, connection: Connection, lp: LengthPrefixedStream<Stream>, controller: AbortController,
    fail: (code: TaskError['code'], message: string) => Promise<void>
  ): Promise<Extract<RequesterFrame, { t: 'request' }> | undefined> {
    const waiting = this.waiting.get(connection) ?? 0
    this.waiting.set(connection, waiting + 1)
    const deadlineMs = waiting < MAX_IDLE_STREAMS_PER_CONNECTION ? IDLE_STREAM_DEADLINE_MS : REQUEST_DEADLINE_MS
    let late = false
    const deadline = setTimeout(() => { late = true; controller.abort() }, deadlineMs)
    let first: RequesterFrame
    try {
      first = decodeRequesterFrame((await lp.read({ signal: controller.signal })).subarray())
    } catch (err) {
      if (!late && !(err instanceof RealmError) && (this.stopping || stream.status !== 'open' || stream.remoteWriteStatus !== 'writable')) {
        // a warm stream its requester no longer needs, or this node stopping: nobody to answer
        controller.abort()
        await closeStream(stream, TASK_LEASE_MS)
        return undefined
      }
      this.stats.rejectedFrames++
      await fail('INVALID_TASK', late ? `no request frame within ${deadlineMs / 1000} s` : `bad request frame: ${errorMessage(err)}`)
      return undefined
    } finally {
      clearTimeout(deadline)
      const n = (this.waiting.get(connection) ?? 1) - 1
      if (n <= 0) this.waiting.delete(connection)
      else this.waiting.set(connection, n)
    }
    if (first.t !== 'request') {
      this.stats.rejectedFrames++
      await fail('INVALID_TASK', 'the first frame must be a request')
      return undefined
    }
    return first
  }

  private async run (
    request: Extract<RequesterFrame, { t: 'request' }>, peer: string, lp: LengthPrefixedStream<Stream>, out: FrameWriter,
    controller: AbortController, fail: (code: TaskError['code'], message: string) => Promise<void>
  ): Promise<void> {
    const task = request.task
    let lastHeard = Date.now()
    // the one timer of the stream: heartbeats out, the requester's lease and a stalled write checked
    const heartbeat = setInterval(() => {
      const now = Date.now()
      if (now - lastHeard > TASK_LEASE_MS) {
        this.init.events.emit('task.lease_lost', { id: task.id, peerId: peer, side: 'worker' })
        controller.abort()
        return
      }
      out.check(now)
      void out.send({ t: 'heartbeat' })
    }, TASK_HEARTBEAT_MS)

    // the requester's side of the stream: heartbeats, cancel, nothing else
    const reader = (async () => {
      const window = { start: Date.now(), count: 0 }
      while (!controller.signal.aborted) {
        let frame: RequesterFrame
        try {
          const bytes = await lp.read({ signal: controller.signal })
          frame = decodeRequesterFrame(bytes.subarray())
        } catch (err) {
          if (controller.signal.aborted) return
          if (err instanceof RealmError) {
            this.stats.rejectedFrames++
            await fail('INVALID_TASK', `bad frame: ${err.message}`)
          } else {
            // the requester went away: its lease ends with the heartbeat check
            lastHeard = Math.min(lastHeard, Date.now() - TASK_LEASE_MS + TASK_HEARTBEAT_MS)
          }
          return
        }
        lastHeard = Date.now()
        if (lastHeard - window.start > 1000) { window.start = lastHeard; window.count = 0 }
        if (++window.count > MAX_REQUESTER_FRAMES_PER_S) {
          this.stats.rejectedFrames++
          await fail('INVALID_TASK', 'too many frames')
          return
        }
        if (frame.t === 'cancel') {
          controller.abort()
          return
        }
        if (frame.t === 'request') {
          this.stats.rejectedFrames++
          await fail('INVALID_TASK', 'one request per stream')
          return
        }
      }
    })()

    let accepted = false
    try {
      const requester = request.user != null ? `peer:${peer}/${request.user}` : `peer:${peer}`
      const { output, timings } = await this.init.executor.execute(task, {
        workerId: request.workerId,
        requester,
        weight: this.init.weightOf?.(peer),
        signal: controller.signal,
        onEvent: (e: ExecEvent) => {
          if (e.type === 'queued') {
            void out.send(accepted ? { t: 'queued', position: e.position, etaMs: e.etaMs } : { t: 'accepted', position: e.position, etaMs: e.etaMs })
            accepted = true
          } else if (e.type === 'started') {
            void out.send({ t: 'started', workerId: e.workerId })
          } else if (e.type === 'token') {
            // tokens that come while a write is under way leave as one frame (FrameWriter)
            void out.send({ t: 'token', text: e.text })
          } else if (e.type === 'progress') {
            void out.send({ t: 'progress', fraction: e.fraction, step: e.step, steps: e.steps, message: e.message })
          } else if (e.type === 'image') {
            void out.send({ t: 'image', image: e.image })
          } else if (e.type === 'audio') {
            void out.send({ t: 'audio', audio: e.audio })
          }
        }
      })
      this.stats.served++
      this.init.onRequester?.(peer, 'submitted')
      await out.send({ t: 'done', output, timings })
    } catch (err) {
      const code = err instanceof RealmError && isTaskCode(err.code) ? err.code : 'INTERNAL'
      if (controller.signal.aborted && code === 'CANCELLED') {
        // cancelled by the requester or a lost lease: tell it, if it still listens
        await out.send({ t: 'error', code: 'CANCELLED', message: 'task cancelled' })
      } else {
        await out.send({ t: 'error', code, message: errorMessage(err).slice(0, 1000) })
      }
    } finally {
      clearInterval(heartbeat)
      controller.abort()
      await reader.catch(() => {})
      await out.flushed()
      out.close()
      await closeStream(lp.unwrap(), TASK_LEASE_MS)
    }
  }
}

export interface RemoteRunOptions {
  workerId?: string
  user?: string
  signal?: AbortSignal
  /** every frame other than heartbeats and the final one */
  onFrame: (frame: WorkerFrame) => void
}

/** A task stream ready for its request */
interface TaskStream {
  stream: Stream
  lp: LengthPrefixedStream<Stream>
  /** opened ahead of the task (it may have ended meanwhile) */
  warm: boolean
}

interface WarmStream {
  stream: Stream
  lp: LengthPrefixedStream<Stream>
  dead: boolean
  /** stops watching it (listeners and timer) */
  release: () => void
}

/** A warm stream that ended before its task got a frame: the task is tried on a new stream */
class StaleStreamError extends Error {
  override name = 'StaleStreamError'
}

/**
 * Warm task streams, negotiated ahead of their task: WARM_STREAMS_PER_PEER per worker peer,
 * opened in the background on a connection already open when a task to the peer ends. Anything
 * on a warm stream before its request (an error frame, a close, a reset) means the server has
 * dropped it: so does this pool, and the next task opens a new one.
 */
class TaskStreamPool {
  private readonly log = logger('realm:task-client')
  private readonly warm = new Map<string, WarmStream[]>()
  private readonly opening = new Set<string>()

  constructor (private readonly libp2p: RealmLibp2p) {}

  /** A task stream to `peerId`: a warm one unless `fresh`, else one opened now */
  async take (peerId: string, opts: { fresh: boolean, signal?: AbortSignal }): Promise<TaskStream> {
    if (!opts.fresh) {
      const list = this.warm.get(peerId) ?? []
      for (let w = list.shift(); w != null; w = list.shift()) {
        w.release()
        if (!w.dead && usable(w.stream)) {
          if (list.length === 0) this.warm.delete(peerId)
          return { stream: w.stream, lp: w.lp, warm: true }
        }
        w.stream.abort(new Error('stale warm stream'))
      }
      this.warm.delete(peerId)
    }
    const ctl = new AbortController()
    const timer = setTimeout(() => { ctl.abort() }, OPEN_STREAM_TIMEOUT_MS)
    try {
      const stream = await this.libp2p.dialProtocol(peerIdFromString(peerId), PROTOCOL_TASK, { signal: opts.signal != null ? AbortSignal.any([ctl.signal, opts.signal]) : ctl.signal })
      return { stream, lp: lpStream(stream, { maxDataLength: MAX_TASK_FRAME_BYTES }), warm: false }
    } finally {
      clearTimeout(timer)
    }
  }

  /** Tops up the warm streams to `peerId` in the background, if it is connected */
  refill (peerId: string): void {
    if (this.opening.has(peerId) || (this.warm.get(peerId)?.length ?? 0) >= WARM_STREAMS_PER_PEER) return
    const connection = this.libp2p.getConnections(peerIdFromString(peerId)).find(c => c.status === 'open')
    if (connection == null) return
    this.opening.add(peerId)
    const ctl = new AbortController()
    const timer = setTimeout(() => { ctl.abort() }, OPEN_STREAM_TIMEOUT_MS)
    connection.newStream(PROTOCOL_TASK, { signal: ctl.signal }).then(stream => {
      clearTimeout(timer)
      this.opening.delete(peerId)
      if (this.libp2p.status !== 'started') {
        stream.abort(new Error('stopping'))
        return
      }
      this.keep(peerId, stream)
      this.refill(peerId)
    }, (err: unknown) => {
      clearTimeout(timer)
      this.opening.delete(peerId)
      this.log('no warm stream to %s: %s', peerId, errorMessage(err))
    })
  }

  private keep (peerId: string, stream: Stream): void {
    const w: WarmStream = { stream, lp: lpStream(stream, { maxDataLength: MAX_TASK_FRAME_BYTES }), dead: false, release: () => {} }
    const drop = (): void => {
      if (w.dead) return
      w.dead = true
      w.release()
      const list = this.warm.get(peerId)
      const i = list?.indexOf(w) ?? -1
      if (list != null && i >= 0) list.splice(i, 1)
      if (list?.length === 0) this.warm.delete(peerId)
      stream.abort(new Error('warm stream dropped'))
    }
    const timer = setTimeout(drop, WARM_STREAM_MAX_IDLE_MS)
    timer.unref?.()
    stream.addEventListener('message', drop)
    stream.addEventListener('remoteCloseWrite', drop)
    stream.addEventListener('close', drop)
    w.release = () => {
      clearTimeout(timer)
      stream.removeEventListener('message', drop)
      stream.removeEventListener('remoteCloseWrite', drop)
      stream.removeEventListener('close', drop)
    }
    const list = this.warm.get(peerId)
    if (list == null) this.warm.set(peerId, [w])
    else list.push(w)
  }
}

/** Open both ways, nothing unread: a stream a request can go on */
function usable (stream: Stream): boolean {
  return stream.status === 'open' && stream.writeStatus === 'writable' && stream.readStatus === 'readable' &&
    stream.remoteWriteStatus === 'writable' && stream.readBufferLength === 0
}

const pools = new WeakMap<RealmLibp2p, TaskStreamPool>()

function poolOf (libp2p: RealmLibp2p): TaskStreamPool {
  let pool = pools.get(libp2p)
  if (pool == null) {
    pool = new TaskStreamPool(libp2p)
    pools.set(libp2p, pool)
  }
  return pool
}

/**
 * Run a task on another node. Resolves with the output; rejects with TaskError: the worker's
 * own code, LEASE_LOST when it falls silent for 5 s, BACKEND_UNREACHABLE when the node cannot
 * be reached or the stream breaks, CANCELLED when `signal` aborts (the worker is told).
 */
export async function runRemote (libp2p: RealmLibp2p, peerId: string, task: TaskSpec, opts: RemoteRunOptions): Promise<{ output: TaskOutput, timings: Partial<ExecTimings> }> {
  if (aborted(opts.signal)) throw new TaskError('CANCELLED', 'task cancelled')
  const pool = poolOf(libp2p)
  for (let fresh = false; ; fresh = true) {
    let taken: TaskStream
    try {
      taken = await pool.take(peerId, { fresh, signal: opts.signal })
    } catch (err) {
      if (aborted(opts.signal)) throw new TaskError('CANCELLED', 'task cancelled')
      throw new TaskError('BACKEND_UNREACHABLE', `cannot open a task stream to ${peerId}: ${errorMessage(err)}`)
    }
    try {
      return await follow(taken, peerId, task, opts)
    } catch (err) {
      // a warm stream that ended just as it was taken: the task goes on a new one, unseen
      if (err instanceof StaleStreamError) {
        if (!fresh) continue
        throw new TaskError('BACKEND_UNREACHABLE', err.message)
      }
      throw err
    } finally {
      pool.refill(peerId)
    }
  }
}

/** One task on one stream: the request, then the worker's frames to the end */
async function follow (taken: TaskStream, peerId: string, task: TaskSpec, opts: RemoteRunOptions): Promise<{ output: TaskOutput, timings: Partial<ExecTimings> }> {
  const { stream, lp } = taken
  const out = new FrameWriter(lp)
  // every read aborts through this one controller: cancel, or the worker's lease lost
  const local = new AbortController()
  let lastHeard = Date.now()
  let leaseLost = false
  let heard = false
  const onAbort = (): void => {
    void out.send({ t: 'cancel', reason: 'requester cancelled' }).finally(() => { local.abort() })
  }
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  // the one timer of the task: heartbeats out, the worker's lease and a stalled write checked
  const heartbeat = setInterval(() => {
    const now = Date.now()
    if (now - lastHeard > TASK_LEASE_MS) {
      leaseLost = true
      local.abort()
      return
    }
    out.check(now)
    void out.send({ t: 'heartbeat' })
  }, TASK_HEARTBEAT_MS)
  try {
    await out.send({ t: 'request', task, workerId: opts.workerId, user: opts.user })
    for (;;) {
      let frame: WorkerFrame
      try {
        const bytes = await lp.read({ signal: local.signal })
        frame = decodeWorkerFrame(bytes.subarray())
      } catch (err) {
        if (aborted(opts.signal)) throw new TaskError('CANCELLED', 'task cancelled')
        if (err instanceof RealmError) throw new TaskError('BACKEND_ERROR', `bad frame from ${peerId}: ${err.message}`)
        if (leaseLost || (err as Error)?.name === 'TimeoutError' || (err as Error)?.name === 'AbortError') {
          throw new TaskError('LEASE_LOST', `${peerId} fell silent for ${TASK_LEASE_MS / 1000} s`)
        }
        if (taken.warm && !heard) throw new StaleStreamError(`task stream to ${peerId} broke before any frame: ${errorMessage(err)}`)
        throw new TaskError('BACKEND_UNREACHABLE', `task stream to ${peerId} broke: ${errorMessage(err)}`)
      }
      heard = true
      lastHeard = Date.now()
      if (frame.t === 'heartbeat') continue
      if (frame.t === 'done') return { output: frame.output, timings: frame.timings }
      if (frame.t === 'error') {
        throw new TaskError(isTaskCode(frame.code) ? frame.code : 'BACKEND_ERROR', frame.message)
      }
      opts.onFrame(frame)
    }
  } finally {
    clearInterval(heartbeat)
    opts.signal?.removeEventListener('abort', onAbort)
    out.close()
    void closeStream(stream, REQUESTER_CLOSE_TIMEOUT_MS)
  }
}
