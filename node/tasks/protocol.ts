/**
 * `/rentahal/task/1.0.0` on both ends: the server runs requests from other nodes on this
 * node's workers; the client sends a task to another node and follows it. Both heartbeat every
 * second; a side silent for 5 s has lost the job. Every frame is validated and size-limited; a
 * peer that sends garbage gets an error frame and the stream is closed, the node carries on.
 */
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
import type { TaskOutput, TaskSpec } from '../../protocol/task.js'
import { RealmError, errorMessage } from '../../protocol/errors.js'

/** A signal's state read afresh (TypeScript narrows `.aborted` across awaits otherwise) */
function aborted (signal?: AbortSignal): boolean {
  return signal?.aborted === true
}

/** Most task streams one peer may have open with us at once */
export const MAX_TASK_STREAMS_PER_CONNECTION = 32
/** The request frame must arrive this soon after the stream opens */
const REQUEST_DEADLINE_MS = 5_000

/** Writes frames in order, one at a time, and never throws (a broken stream is the reader's news) */
class FrameWriter {
  private chain: Promise<void> = Promise.resolve()
  closed = false
  constructor (private readonly lp: LengthPrefixedStream<Stream>) {}

  send (frame: RequesterFrame | WorkerFrame): Promise<void> {
    if (this.closed) return this.chain
    let bytes: Uint8Array
    try {
      bytes = encodeFrame(frame)
    } catch (err) {
      bytes = encodeFrame({ t: 'error', code: 'INTERNAL', message: errorMessage(err) })
    }
    this.chain = this.chain.then(async () => {
      if (this.closed) return
      await this.lp.write(bytes, { signal: AbortSignal.timeout(TASK_LEASE_MS) })
    }).catch(() => { this.closed = true })
    return this.chain
  }
}

export interface TaskServerInit {
  executor: LocalExecutor
  events: EventBus
  /** refuse tasks from this peer (blocklist) */
  isBlocked?: (peerId: string) => boolean
  /** queue share of a peer (probation), 0..1 */
  weightOf?: (peerId: string) => number
}

/** Serves task requests from other nodes */
export class TaskServer implements Startable {
  private readonly log = logger('realm:task-server')
  private readonly active = new Set<AbortController>()
  readonly stats = { served: 0, rejectedFrames: 0 }

  constructor (private readonly libp2p: RealmLibp2p, private readonly init: TaskServerInit) {}

  async start (): Promise<void> {
    await this.libp2p.handle(PROTOCOL_TASK, (stream, connection) => { void this.serve(stream, connection) }, {
      maxInboundStreams: MAX_TASK_STREAMS_PER_CONNECTION,
      maxOutboundStreams: MAX_TASK_STREAMS_PER_CONNECTION
    })
  }

  async stop (): Promise<void> {
    await this.libp2p.unhandle(PROTOCOL_TASK)
    for (const c of this.active) c.abort()
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const lp = lpStream(stream, { maxDataLength: MAX_TASK_FRAME_BYTES })
    const out = new FrameWriter(lp)
    const controller = new AbortController()
    this.active.add(controller)
    const fail = async (code: TaskError['code'], message: string): Promise<void> => {
      await out.send({ t: 'error', code, message })
      out.closed = true
      controller.abort()
      await stream.close().catch(() => { stream.abort(new Error(message)) })
    }
    try {
      if (this.init.isBlocked?.(peer) === true) {
        await fail('FORBIDDEN', 'this node does not serve your peer id')
        return
      }
      let first: RequesterFrame
      try {
        first = decodeRequesterFrame((await lp.read({ signal: AbortSignal.timeout(REQUEST_DEADLINE_MS) })).subarray())
      } catch (err) {
        this.stats.rejectedFrames++
        await fail('INVALID_TASK', `bad request frame: ${errorMessage(err)}`)
        return
      }
      if (first.t !== 'request') {
        this.stats.rejectedFrames++
        await fail('INVALID_TASK', 'the first frame must be a request')
        return
      }
      await this.run(first, peer, lp, out, controller, fail)
    } catch (err) {
      this.log('task stream from %s failed: %s', peer, errorMessage(err))
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.active.delete(controller)
    }
  }

  private async run (
    request: Extract<RequesterFrame, { t: 'request' }>, peer: string, lp: LengthPrefixedStream<Stream>, out: FrameWriter,
    controller: AbortController, fail: (code: TaskError['code'], message: string) => Promise<void>
  ): Promise<void> {
    const task = request.task
    let lastHeard = Date.now()
    const heartbeat = setInterval(() => {
      if (Date.now() - lastHeard > TASK_LEASE_MS) {
        this.init.events.emit('task.lease_lost', { id: task.id, peerId: peer, side: 'worker' })
        controller.abort()
        return
      }
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
        if (Date.now() - window.start > 1000) { window.start = Date.now(); window.count = 0 }
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
      await out.send({ t: 'heartbeat' }).catch(() => {})
      out.closed = true
      await lp.unwrap().close({ signal: AbortSignal.timeout(TASK_LEASE_MS) }).catch(() => { lp.unwrap().abort(new Error('close failed')) })
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

/**
 * Run a task on another node. Resolves with the output; rejects with TaskError: the worker's
 * own code, LEASE_LOST when it falls silent for 5 s, BACKEND_UNREACHABLE when the node cannot
 * be reached or the stream breaks, CANCELLED when `signal` aborts (the worker is told).
 */
export async function runRemote (libp2p: RealmLibp2p, peerId: string, task: TaskSpec, opts: RemoteRunOptions): Promise<{ output: TaskOutput, timings: Partial<ExecTimings> }> {
  if (opts.signal?.aborted === true) throw new TaskError('CANCELLED', 'task cancelled')
  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(peerIdFromString(peerId), PROTOCOL_TASK, { signal: AbortSignal.any([AbortSignal.timeout(TASK_LEASE_MS * 2), ...(opts.signal != null ? [opts.signal] : [])]) })
  } catch (err) {
    if (aborted(opts.signal)) throw new TaskError('CANCELLED', 'task cancelled')
    throw new TaskError('BACKEND_UNREACHABLE', `cannot open a task stream to ${peerId}: ${errorMessage(err)}`)
  }
  const lp = lpStream(stream, { maxDataLength: MAX_TASK_FRAME_BYTES })
  const out = new FrameWriter(lp)
  const local = new AbortController()
  const onAbort = (): void => {
    void out.send({ t: 'cancel', reason: 'requester cancelled' }).finally(() => { local.abort() })
  }
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  const heartbeat = setInterval(() => { void out.send({ t: 'heartbeat' }) }, TASK_HEARTBEAT_MS)
  try {
    await out.send({ t: 'request', task, workerId: opts.workerId, user: opts.user })
    for (;;) {
      let frame: WorkerFrame
      try {
        const bytes = await lp.read({ signal: AbortSignal.any([AbortSignal.timeout(TASK_LEASE_MS), local.signal]) })
        frame = decodeWorkerFrame(bytes.subarray())
      } catch (err) {
        if (aborted(opts.signal)) throw new TaskError('CANCELLED', 'task cancelled')
        if (err instanceof RealmError) throw new TaskError('BACKEND_ERROR', `bad frame from ${peerId}: ${err.message}`)
        if ((err as Error)?.name === 'TimeoutError' || (err as Error)?.name === 'AbortError') {
          throw new TaskError('LEASE_LOST', `${peerId} fell silent for ${TASK_LEASE_MS / 1000} s`)
        }
        throw new TaskError('BACKEND_UNREACHABLE', `task stream to ${peerId} broke: ${errorMessage(err)}`)
      }
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
    out.closed = true
    await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new Error('closing')) })
  }
}
