/**
 * One run's HTTP exchange with a backend: requests that share one abort (task cancelled, backend
 * idle too long, run finished), streamed bodies read as NDJSON lines or SSE events with the idle
 * timer reset on every chunk, and failures turned into the run's error codes:
 *
 * - the task's signal aborted → CANCELLED (whatever the request was doing)
 * - no byte for `idleTimeoutMs` → TIMEOUT
 * - a request that gets no answer (refused, reset, DNS) before any event was emitted → BACKEND_UNREACHABLE
 * - anything else that breaks after that (HTTP error, cut body, malformed stream) → BACKEND_ERROR,
 *   with `details.partial` true when events were already emitted
 */
import { logger } from '@libp2p/logger'
import { RealmError, errorMessage } from '../../protocol/errors.js'
import { MAX_TEXT_CHARS } from '../../protocol/task.js'
import type { WorkerEvent } from '../../protocol/task.js'
import { CANCEL_REQUEST_TIMEOUT_MS, MAX_ANSWER_BYTES, MAX_ERROR_BODY_BYTES, MAX_ERROR_MESSAGE_CHARS, MAX_STREAM_LINE_CHARS } from './constants.js'
import { BackendError, BackendUnreachableError, TaskCancelledError, TaskTimeoutError } from './errors.js'
import { fetchAnswer, httpRequest, type BackendAnswer } from './answer.js'
import type { Connection } from './spec.js'

export type { BackendAnswer } from './answer.js'

const log = logger('realm:workers:run')

/** Longest text a run collects (TaskOutput's limit) */
const MAX_OUTPUT_TEXT_CHARS = MAX_TEXT_CHARS * 4

export interface RunSessionInit {
  conn: Connection
  fetch: typeof fetch
  /** the task's signal */
  signal: AbortSignal
  emit: (event: WorkerEvent) => void
  idleTimeoutMs: number
}

export interface SessionRequestInit {
  method?: 'GET' | 'POST'
  /** sent as JSON */
  json?: unknown
  /** sent as multipart/form-data */
  form?: FormData
  /** extra headers (the connection's credentials are always sent) */
  headers?: Record<string, string>
  /** `Accept`; default application/json */
  accept?: string
  /**
   * follow one redirect to the same origin (FastAPI answers `/predict` with a 307 to
   * `/predict/`); any other redirect is an error, so credentials never leave the backend
   */
  followSameOrigin?: boolean
  /** a signal that aborts this request too (besides the run's) */
  signal?: AbortSignal
}

/** What an HTTP error answer says, whatever the API's error shape */
export interface ErrorAnswer {
  status: number
  message: string
  /** OpenAI `error.code`, agent `error.code` */
  code?: string
  /** OpenAI `error.type`, Anthropic `error.type` */
  type?: string
}

/** One server-sent event */
export interface SseEvent {
  /** `event:` field; 'message' when absent */
  event: string
  data: string
}

/** What a failed fetch says: Node's own reason (`connect ECONNREFUSED 127.0.0.1:11434`), never the URL */
export function networkReason (err: unknown): string {
  const cause = (err as { cause?: { code?: unknown, message?: unknown } } | undefined)?.cause
  if (typeof cause?.message === 'string' && cause.message !== '') return cause.message
  if (typeof cause?.code === 'string') return cause.code
  return errorMessage(err)
}

export class RunSession {
  readonly conn: Connection
  /** events emitted so far */
  emitted = 0
  private readonly init: RunSessionInit
  private readonly controller = new AbortController()
  private timer?: ReturnType<typeof setTimeout>
  private cancelled = false
  private timedOut = false
  private closed = false
  private readonly cancelHooks: Array<(signal: AbortSignal) => Promise<unknown>> = []
  private cancelling: Promise<unknown> = Promise.resolve()
  private readonly onAbort = (): void => { this.cancel() }
  /** token text held back while a chunk's lines are read: one network read, one token event */
  private pendingText = ''
  /** a chunk of a body is being consumed (see `chunks`) */
  private batching = false
  /** the first token has gone: it never waits for the rest of its chunk */
  private firstToken = true

  constructor (init: RunSessionInit) {
    this.init = init
    this.conn = init.conn
    if (init.signal.aborted) {
      this.cancelled = true
      this.controller.abort()
    } else {
      init.signal.addEventListener('abort', this.onAbort, { once: true })
      this.touch()
    }
  }

  /** aborted when the run must stop: cancelled, idle too long, or finished */
  get signal (): AbortSignal {
    return this.controller.signal
  }

  /** the error the run ends with whatever happened inside it (CANCELLED, TIMEOUT), if any */
  get stopped (): RealmError | undefined {
    if (this.cancelled) return new TaskCancelledError()
    if (this.timedOut) return new TaskTimeoutError(this.init.idleTimeoutMs, this.emitted > 0 || this.pendingText !== '')
    return undefined
  }

  /** resolves when the cancel hooks (e.g. A1111 `/interrupt`) have finished */
  async settled (): Promise<void> {
    await this.cancelling.catch(() => {})
  }

  /** forwards an event to the task (after the tokens held back, so the order stays) */
  emit (event: WorkerEvent): void {
    if (this.controller.signal.aborted) return
    this.flushTokens()
    this.emitted++
    this.init.emit(event)
  }

  /**
   * forwards a token: at once, or, while a chunk of the body is being read, with the other
   * tokens of that chunk as one event when the chunk is done (one event per network read, not
   * one per streamed line, all the way to the client). The first token of the run always goes
   * at once: the time to the first token never includes parsing the rest of its burst
   */
  emitToken (text: string): void {
    if (text === '' || this.controller.signal.aborted) return
    if (!this.batching || this.firstToken) {
      this.firstToken = false
      this.emitted++
      this.init.emit({ type: 'token', text })
      return
    }
    if (this.pendingText.length + text.length > MAX_TEXT_CHARS) this.flushTokens()
    this.pendingText += text
  }

  /** emits the tokens held back, as one event */
  flushTokens (): void {
    if (this.pendingText === '') return
    const text = this.pendingText
    this.pendingText = ''
    if (this.controller.signal.aborted) return
    this.emitted++
    this.init.emit({ type: 'token', text })
  }

  /** the backend showed it is alive: restarts the idle timer */
  touch (): void {
    if (this.closed || this.controller.signal.aborted) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timedOut = true
      this.controller.abort()
    }, this.init.idleTimeoutMs)
  }

  /** runs `hook` when the task is cancelled, with a signal of its own (the run's is aborted) */
  onCancel (hook: (signal: AbortSignal) => Promise<unknown>): void {
    this.cancelHooks.push(hook)
  }

  /** ends the session: timers cleared, any connection still open closed */
  close (): void {
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.init.signal.removeEventListener('abort', this.onAbort)
    this.controller.abort()
  }

  private cancel (): void {
    if (this.closed || this.cancelled) return
    this.cancelled = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.cancelHooks.length > 0) {
      this.cancelling = Promise.allSettled(this.cancelHooks.map(async hook => {
        await hook(AbortSignal.timeout(CANCEL_REQUEST_TIMEOUT_MS))
      })).then(results => {
        for (const r of results) if (r.status === 'rejected') log('cancel hook failed: %s', errorMessage(r.reason))
      })
    }
    this.controller.abort()
  }

  /** The error a failure of the exchange means (see the module comment) */
  failure (err: unknown, phase: 'connect' | 'read'): RealmError {
    this.flushTokens()
    const stopped = this.stopped
    if (stopped !== undefined) return stopped
    if (err instanceof RealmError) return err
    if (phase === 'connect' && this.emitted === 0) {
      return new BackendUnreachableError(`cannot reach the backend: ${networkReason(err)}`, { cause: err })
    }
    return this.backendError(`connection lost ${this.emitted > 0 ? 'mid-stream' : 'before any output'}: ${networkReason(err)}`)
  }

  /** a BACKEND_ERROR carrying `partial` */
  backendError (message: string, details: Record<string, unknown> = {}): BackendError {
    // the tokens that came before the failure reach the client, and make it partial
    this.flushTokens()
    return new BackendError(message, { ...details, partial: this.emitted > 0 })
  }

  /**
   * Requests `conn.base + path + conn.search`; any HTTP status resolves, a network failure
   * rejects. Over `node:http(s)` with kept-alive connections; through fetch for a multipart body
   * or when the worker was given its own fetch
   */
  async request (path: string, init: SessionRequestInit = {}): Promise<BackendAnswer> {
    const headers: Record<string, string> = { accept: init.accept ?? 'application/json', ...this.conn.headers, ...init.headers }
    let body: string | FormData | undefined
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(init.json)
    } else if (init.form !== undefined) {
      body = init.form
    }
    let url = this.url(path)
    const signal = init.signal === undefined ? this.controller.signal : AbortSignal.any([this.controller.signal, init.signal])
    const method = init.method ?? (body === undefined ? 'GET' : 'POST')
    for (let hops = 0; ; hops++) {
      let res: BackendAnswer
      try {
        res = typeof body === 'object' || this.init.fetch !== globalThis.fetch
          ? fetchAnswer(await this.init.fetch(url, { method, headers, body, signal, redirect: 'manual' }))
          : await httpRequest(url, { method, headers, body, signal })
      } catch (err) {
        throw this.failure(err, 'connect')
      }
      this.touch()
      if (res.status >= 300 && res.status < 400 && res.status !== 304) {
        const location = res.headers.get('location')
        await res.body?.cancel().catch(() => {})
        const next = location === null ? undefined : new URL(location, url)
        if (init.followSameOrigin === true && hops === 0 && next !== undefined && next.origin === new URL(url).origin && (res.status === 307 || res.status === 308)) {
          url = next.href
          continue
        }
        throw this.backendError(`${path} answered a redirect (${res.status}), which a backend API does not do`, { status: res.status })
      }
      return res
    }
  }

  /**
   * A request outside the run's abort (a cancel hook's: the run's signal has aborted by then),
   * bounded by `signal`; its answer is read and dropped
   */
  async detachedRequest (path: string, init: { method?: 'GET' | 'POST', json?: unknown }, signal: AbortSignal): Promise<number> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.conn.headers }
    if (init.json !== undefined) headers['content-type'] = 'application/json'
    const res = await this.init.fetch(this.url(path), {
      method: init.method ?? 'POST',
      headers,
      body: init.json === undefined ? undefined : JSON.stringify(init.json),
      signal,
      redirect: 'manual'
    })
    await res.body?.cancel().catch(() => {})
    return res.status
  }

  /** `base + path + search`, the connection's query joined to one the path already has */
  private url (path: string): string {
    const search = this.conn.search
    if (search === '') return this.conn.base + path
    return this.conn.base + path + (path.includes('?') ? `&${search.slice(1)}` : search)
  }

  /** the whole body, at most `limit` bytes */
  async bytes (res: BackendAnswer, limit = MAX_ANSWER_BYTES): Promise<Buffer> {
    const chunks: Uint8Array[] = []
    let size = 0
    for await (const chunk of this.chunks(res)) {
      size += chunk.length
      if (size > limit) throw this.backendError(`answer larger than ${limit} bytes`)
      chunks.push(chunk)
    }
    return Buffer.concat(chunks)
  }

  /** the body parsed as JSON; BACKEND_ERROR when it is not JSON */
  async json (res: BackendAnswer, what: string, limit = MAX_ANSWER_BYTES): Promise<unknown> {
    const text = (await this.bytes(res, limit)).toString('utf8')
    try {
      return JSON.parse(text)
    } catch {
      throw this.backendError(`${what} did not answer JSON`)
    }
  }

  /**
   * the body chunk by chunk, touching the idle timer on each; read failures classified. The
   * tokens of a chunk (`emitToken`) leave as one event once the consumer asks for the next one
   */
  async * chunks (res: BackendAnswer): AsyncGenerator<Uint8Array> {
    const body = res.body
    if (body === null) return
    try {
      for (;;) {
        this.batching = false
        this.flushTokens()
        let chunk: Uint8Array | undefined
        try {
          chunk = await body.read()
        } catch (err) {
          throw this.failure(err, 'read')
        }
        if (chunk === undefined) return
        this.touch()
        this.batching = true
        yield chunk
      }
    } finally {
      this.batching = false
      this.flushTokens()
      // a reader left early (the final line, a parse error, an `error` line) drops the rest
      await body.cancel().catch(() => {})
    }
  }

  /** the body as text lines (`\n`, `\r\n` or `\r`), the last one even without a line break */
  async * lines (res: BackendAnswer): AsyncGenerator<string> {
    const decoder = new TextDecoder()
    let buffered = ''
    for await (const chunk of this.chunks(res)) {
      buffered += decoder.decode(chunk, { stream: true })
      let start = 0
      for (let i = 0; i < buffered.length; i++) {
        const c = buffered.charCodeAt(i)
        if (c !== 10 && c !== 13) continue
        // `\r\n` is one break; a `\r` at the very end waits for the next chunk to tell
        if (c === 13 && i + 1 === buffered.length) break
        yield buffered.slice(start, i)
        if (c === 13 && buffered.charCodeAt(i + 1) === 10) i++
        start = i + 1
      }
      buffered = buffered.slice(start)
      if (buffered.length > MAX_STREAM_LINE_CHARS) throw this.backendError(`a streamed line longer than ${MAX_STREAM_LINE_CHARS} characters`)
    }
    buffered += decoder.decode()
    if (buffered.endsWith('\r')) buffered = buffered.slice(0, -1)
    if (buffered !== '') yield buffered
  }

  /** NDJSON: one JSON value per non-empty line; BACKEND_ERROR on a line that is not JSON */
  async * ndjson (res: BackendAnswer, what: string): AsyncGenerator<unknown> {
    for await (const line of this.lines(res)) {
      if (line.trim() === '') continue
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch {
        throw this.backendError(`${what} streamed a line that is not JSON`)
      }
      yield value
    }
  }

  /** Server-sent events as the HTML standard parses them (comments and `id:`/`retry:` ignored) */
  async * sse (res: BackendAnswer): AsyncGenerator<SseEvent> {
    let event = ''
    let data: string[] = []
    for await (const line of this.lines(res)) {
      if (line === '') {
        if (data.length > 0) yield { event: event === '' ? 'message' : event, data: data.join('\n') }
        event = ''
        data = []
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      let value = colon < 0 ? '' : line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
      if (field === 'event') event = value
      else if (field === 'data') data.push(value)
    }
    // an event without its closing blank line is incomplete: dropped, as the standard says
  }

  /** reads an error answer: its message in whichever shape the API uses */
  async errorAnswer (res: BackendAnswer): Promise<ErrorAnswer> {
    let text = ''
    try {
      text = (await this.bytes(res, MAX_ERROR_BODY_BYTES)).toString('utf8')
    } catch (err) {
      const stopped = this.stopped
      if (stopped !== undefined) throw stopped
      if (!(err instanceof BackendError)) throw err
    }
    const answer: ErrorAnswer = { status: res.status, message: `HTTP ${res.status}` }
    let body: any
    try {
      body = JSON.parse(text)
    } catch {
      // a short plain-text answer is its own message; an HTML error page is not
      if (text.trim() !== '' && text.length <= MAX_ERROR_MESSAGE_CHARS && !/^\s*</.test(text)) answer.message = text.trim()
      return answer
    }
    const error = body?.error
    if (typeof error === 'string') {
      // A1111 (handle_exception): `error` is the exception's class, `detail` / `errors` the message
      const detail = typeof body.detail === 'string' && body.detail !== '' ? body.detail : typeof body.errors === 'string' && body.errors !== '' ? body.errors : undefined
      answer.message = detail ?? error
    } else if (error !== null && typeof error === 'object') {
      if (typeof error.message === 'string') answer.message = error.message
      if (typeof error.code === 'string') answer.code = error.code
      if (typeof error.type === 'string') answer.type = error.type
    } else if (typeof body?.detail === 'string') {
      answer.message = body.detail
    } else if (Array.isArray(body?.detail) && typeof body.detail[0]?.msg === 'string') {
      answer.message = `${String((body.detail[0].loc ?? []).join('.'))}: ${String(body.detail[0].msg)}`
    } else if (typeof body?.message === 'string') {
      answer.message = body.message
    }
    answer.message = answer.message.slice(0, MAX_ERROR_MESSAGE_CHARS)
    return answer
  }

  /** BACKEND_ERROR for an HTTP error answer */
  httpError (what: string, answer: ErrorAnswer): BackendError {
    return this.backendError(`${what} answered ${answer.status}: ${answer.message}`, { status: answer.status })
  }
}

/** Collects streamed text: each piece is added to the output, within its limit, and emitted as a token (those of one network read as one event) */
export class TextSink {
  private readonly parts: string[] = []
  private length = 0

  constructor (private readonly session: RunSession) {}

  add (text: string): void {
    if (text === '') return
    this.length += text.length
    if (this.length > MAX_OUTPUT_TEXT_CHARS) throw this.session.backendError(`answer longer than ${MAX_OUTPUT_TEXT_CHARS} characters`)
    this.parts.push(text)
    this.session.emitToken(text)
  }

  /** the whole text; the tokens held back are emitted first, so the events have it all too */
  get text (): string {
    this.session.flushTokens()
    return this.parts.join('')
  }
}
