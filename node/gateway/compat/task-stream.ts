/**
 * Running one request as a task: submit it (restart mode `splice`, so a failover after tokens
 * continues the answer instead of starting it again), cancel it when the client goes away, and
 * follow its events — collected for a whole answer, or written as a stream with backpressure.
 */
import type { ServerResponse } from 'node:http'
import type { Context } from 'koa'
import { logger } from '@libp2p/logger'
import {
  TaskError, type TaskEvent, type TaskManagerApi, type TaskRun, type TaskSubmission, type TaskTimings
} from '../../tasks/types.js'
import type { TaskOutput } from '../../../protocol/task.js'
import { errorMessage } from '../../../protocol/errors.js'
import { requesterOf } from './requester.js'
import { STREAM_HEADERS_AFTER_MS } from './constants.js'

const log = logger('realm:gateway:compat')

export type DoneEvent = Extract<TaskEvent, { type: 'task.done' }>

/** What a task produced, with how many token events carried its text */
export interface TaskOutcome {
  output: TaskOutput
  timings: TaskTimings
  /** the answer's text: the output's, else the tokens' */
  text: string
  /** token events seen (a stand-in for a completion token count the worker did not report) */
  tokenEvents: number
}

/**
 * Submits a task for this request and waits until a worker has it (queued or started). Throws a
 * TaskError for what fails before that (MODEL_NOT_FOUND, QUEUE_FULL, INVALID_TASK, …), so the
 * route can still answer with a real status. A client that disconnects cancels the task.
 */
export async function startTask (ctx: Context, tasks: TaskManagerApi, submission: TaskSubmission): Promise<TaskRun> {
  const controller = new AbortController()
  let run: TaskRun | undefined
  const res = ctx.res
  const onClose = (): void => {
    // `close` after the answer was fully written is the normal end, not a disconnect
    if (res.writableFinished) return
    controller.abort()
    run?.cancel()
  }
  res.once('close', onClose)
  // (the request stream itself is destroyed once its body was read: only the socket tells)
  if (res.destroyed || ctx.req.socket.destroyed) {
    res.off('close', onClose)
    throw new TaskError('CANCELLED', 'the client went away')
  }
  try {
    run = tasks.submit(submission, { requester: requesterOf(ctx), signal: controller.signal, restartMode: 'splice' })
  } catch (err) {
    res.off('close', onClose)
    throw err
  }
  // rejections are read through events or awaited below; never leave one unhandled
  run.result.catch(() => {})
  run.accepted.catch(() => {})
  await run.accepted
  return run
}

/** What the route writes as an answer streams */
type StreamItem =
  | { type: 'tokens', text: string, count: number }
  | { type: 'done', event: DoneEvent }
  | { type: 'error', error: TaskError }

/** The events of a run, as a queue that merges tokens a slow reader has not taken yet */
class TaskEventQueue {
  private readonly items: StreamItem[] = []
  private wake?: () => void
  private ended = false
  private interrupted = false
  private unsubscribe?: () => void

  constructor (run: TaskRun) {
    // `subscribe` replays past events at once, possibly the end: unsubscribe once it returns
    const unsubscribe = run.subscribe(event => { this.onEvent(event) })
    if (this.ended) unsubscribe()
    else this.unsubscribe = unsubscribe
    // a run whose result settles without a terminal event still ends the stream
    run.result.then(
      output => { setImmediate(() => { this.end({ type: 'done', event: { type: 'task.done', id: run.id, output, peerId: '', workerId: '', timings: { totalMs: 0 } } }) }) },
      err => { setImmediate(() => { this.end({ type: 'error', error: asTaskError(err) }) }) }
    )
  }

  private onEvent (event: TaskEvent): void {
    if (this.ended) return
    if (event.type === 'task.token') {
      const last = this.items[this.items.length - 1]
      if (last?.type === 'tokens') {
        last.text += event.text
        last.count++
      } else {
        this.items.push({ type: 'tokens', text: event.text, count: 1 })
      }
      this.notify()
    } else if (event.type === 'task.done') {
      this.end({ type: 'done', event })
    } else if (event.type === 'task.error') {
      this.end({ type: 'error', error: new TaskError(event.code, event.message) })
    }
    // queued / started / progress / restarted (splice: the stream simply continues) / media: not text
  }

  private end (item: StreamItem): void {
    if (this.ended) return
    this.ended = true
    this.items.push(item)
    this.unsubscribe?.()
    this.unsubscribe = undefined
    this.notify()
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** stops waiting (the client went away) */
  interrupt (): void {
    this.interrupted = true
    this.notify()
  }

  get isInterrupted (): boolean {
    return this.interrupted
  }

  close (): void {
    this.ended = true
    this.unsubscribe?.()
    this.unsubscribe = undefined
    this.notify()
  }

  /** the next item; undefined when `timeoutMs` passed first or the queue was interrupted */
  async next (timeoutMs?: number): Promise<StreamItem | undefined> {
    for (;;) {
      if (this.interrupted) return undefined
      const item = this.items.shift()
      if (item !== undefined) return item
      let timer: NodeJS.Timeout | undefined
      const timedOut = await new Promise<boolean>(resolve => {
        this.wake = () => { resolve(false) }
        if (timeoutMs !== undefined) timer = setTimeout(() => { resolve(true) }, timeoutMs)
      })
      if (timer !== undefined) clearTimeout(timer)
      this.wake = undefined
      if (timedOut) return undefined
    }
  }
}

export function asTaskError (err: unknown): TaskError {
  if (err instanceof TaskError) return err
  return new TaskError('INTERNAL', errorMessage(err))
}

/** Waits for the whole answer of an accepted run; throws its TaskError if it fails */
export async function collectTask (ctx: Context, run: TaskRun): Promise<TaskOutcome> {
  const queue = new TaskEventQueue(run)
  const onClose = (): void => { queue.interrupt() }
  ctx.res.once('close', onClose)
  let text = ''
  let tokenEvents = 0
  try {
    for (;;) {
      const item = await queue.next()
      if (item === undefined) throw new TaskError('CANCELLED', 'the client went away')
      if (item.type === 'tokens') {
        text += item.text
        tokenEvents += item.count
      } else if (item.type === 'done') {
        const output = item.event.output
        return { output, timings: item.event.timings, text: output.text ?? text, tokenEvents }
      } else {
        throw item.error
      }
    }
  } finally {
    ctx.res.off('close', onClose)
    queue.close()
  }
}

/** How one API frames a text stream */
export interface StreamFormat {
  /** Content-Type of the stream */
  contentType: string
  /** written right after the headers (OpenAI's role chunk) */
  open?: () => string
  /** a piece of the answer (tokens the reader had not taken yet arrive merged) */
  tokens: (text: string) => string
  /** the end of the answer, and whatever closes the stream */
  done: (event: DoneEvent, tokenEvents: number) => string
  /** a failure after the stream started, in the API's own form, and whatever closes the stream */
  error: (err: TaskError) => string
  /** a line the API's readers skip, sent while nothing else is (SSE comments); none for NDJSON */
  keepalive?: { text: string, everyMs: number }
}

/** Writes `text`, waiting for the socket to drain when its buffer is full. False once the client is gone */
export async function writeChunk (res: ServerResponse, text: string): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return false
  if (res.write(text)) return true
  await new Promise<void>(resolve => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
  return !res.destroyed
}

/**
 * Streams an accepted run. The headers go out with the first piece of the answer, so a failure
 * before any output is thrown (a TaskError) and answered with a real status, as Ollama does; a
 * run that waits longer than STREAM_HEADERS_AFTER_MS gets its headers then. After the headers a
 * failure is written in the API's stream form. Nothing is thrown once the headers are out.
 */
export async function streamTask (ctx: Context, run: TaskRun, format: StreamFormat, headersAfterMs = STREAM_HEADERS_AFTER_MS): Promise<void> {
  const res = ctx.res
  const queue = new TaskEventQueue(run)
  const onClose = (): void => { queue.interrupt() }
  res.once('close', onClose)
  let tokenEvents = 0
  let started = false

  const start = async (): Promise<boolean> => {
    started = true
    ctx.respond = false
    res.statusCode = 200
    res.setHeader('Content-Type', format.contentType)
    res.setHeader('Cache-Control', 'no-cache')
    res.setHeader('X-Accel-Buffering', 'no')
    res.flushHeaders()
    return format.open === undefined ? !res.destroyed : await writeChunk(res, format.open())
  }

  try {
    for (;;) {
      const waitMs = started ? format.keepalive?.everyMs : headersAfterMs
      const item = await queue.next(waitMs)
      if (res.destroyed || queue.isInterrupted) {
        // the client went away (startTask cancels the task)
        ctx.respond = false
        return
      }
      if (item === undefined) {
        // nothing yet: send the headers, or a keep-alive line
        if (!started) {
          if (!await start()) return
        } else if (format.keepalive !== undefined) {
          if (!await writeChunk(res, format.keepalive.text)) return
        }
        continue
      }
      if (item.type === 'error' && !started) throw item.error
      if (!started && !await start()) return
      if (item.type === 'tokens') {
        tokenEvents += item.count
        if (!await writeChunk(res, format.tokens(item.text))) return
      } else if (item.type === 'done') {
        await writeChunk(res, format.done(item.event, tokenEvents))
        res.end()
        return
      } else {
        await writeChunk(res, format.error(item.error))
        res.end()
        return
      }
    }
  } catch (err) {
    if (!started) throw err
    log.error('stream of task %s failed: %s', run.id, errorMessage(err))
    res.destroy()
  } finally {
    res.off('close', onClose)
    queue.close()
  }
}
