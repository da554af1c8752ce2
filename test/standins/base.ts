/**
 * Shared machinery of the stand-in backends: a real HTTP server on loopback that records every
 * request (and how it ended: complete, closed by the client, cut by the stand-in), and run-time
 * fault modes (down, error, slow, hang, flaky, kill mid-stream). Each stand-in (ollama.ts,
 * openai.ts, a1111.ts, anthropic.ts, hf.ts, agent.ts) adds its routes and its API's own error shape.
 */
import { createServer } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** How a stand-in behaves right now */
export type StandinMode = 'ok' | 'down' | 'error' | 'slow' | 'hang'

/** Largest request body accepted (base64 images and audio clips fit well under it) */
export const MAX_BODY_BYTES = 64 * 1024 * 1024
/** Default delay before answering in `slow` mode */
export const SLOW_DELAY_MS = 2000
/** Default answer of the chat/generate routes */
export const DEFAULT_REPLY = 'The sky is blue because of Rayleigh scattering.'

export interface RecordedRequest {
  method: string
  /** path without the query string */
  path: string
  query: Record<string, string>
  headers: IncomingHttpHeaders
  /** parsed JSON body, multipart fields (see openai.ts), raw text, or undefined when empty */
  body: unknown
  /** ms since the epoch */
  time: number
  /**
   * how the exchange ended, once it has: `complete` (the whole answer was sent), `client-closed`
   * (the client closed the connection first, e.g. a cancelled task), `cut` (the stand-in cut it:
   * killMidStream, down, close). Undefined while it is open.
   */
  outcome?: 'complete' | 'client-closed' | 'cut'
}

/** One message of a generation request, whichever API it came through */
export interface StandinMessage {
  role: string
  content: string
  /** base64 images attached to the message */
  images?: string[]
}

/** What the reply function sees */
export interface GenerationRequest {
  route: 'chat' | 'generate'
  model: string
  messages: StandinMessage[]
  /** the prompt of `generate`; for `chat` the last user message */
  prompt: string
  /** every image of the request, base64 */
  images: string[]
  body: any
}

/** Decides the model's answer; returns the whole text, which the stand-in splits into tokens */
export type ReplyFn = (req: GenerationRequest) => string

export interface StandinInit {
  /** default '127.0.0.1' */
  host?: string
  /** default 0 (a free port) */
  port?: number
  /** pause between streamed tokens; default 0 */
  tokenDelayMs?: number
  /** pause before answering in `slow` mode; default SLOW_DELAY_MS */
  slowDelayMs?: number
}

/** Per-request context handed to the routes */
export interface RequestContext {
  req: IncomingMessage
  res: ServerResponse
  method: string
  path: string
  query: Record<string, string>
  raw: Buffer
  body: unknown
  /** aborted when the client goes away or the stand-in closes */
  signal: AbortSignal
  /** set when the stand-in itself cut the connection (see RecordedRequest.outcome) */
  cut?: boolean
}

/**
 * Splits text into tokens that join back to exactly the text: words with their leading
 * whitespace, and trailing whitespace as a last token.
 */
export function splitTokens (text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? []
}

/** Deterministic 32-bit hash of a string (FNV-1a) */
export function hash32 (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

/** A deterministic unit-length vector for a text, `dims` long */
export function embeddingFor (text: string, dims: number): number[] {
  let state = hash32(text) || 1
  const v: number[] = []
  for (let i = 0; i < dims; i++) {
    // xorshift32: cheap, deterministic, spread over [-1, 1)
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    v.push(state / 0x80000000 - 1)
  }
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1
  return v.map(x => Math.round((x / norm) * 1e7) / 1e7)
}

export class StandinAbortError extends Error {
  override name = 'StandinAbortError'
}

/** Resolves after `ms`, rejects with StandinAbortError when the signal aborts first */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) throw new StandinAbortError('aborted')
  if (ms <= 0) return
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(new StandinAbortError('aborted'))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Thrown by `Standin.tokenGate` when the stream must stop (client gone, killed, closed) */
export class StreamStopped extends Error {
  override name = 'StreamStopped'
}

export abstract class Standin {
  readonly host: string
  /** the port, fixed once listening (kept while `down` so `up()` reuses it) */
  port: number
  /** every request received, oldest first */
  readonly requests: RecordedRequest[] = []
  tokenDelayMs: number
  slowDelayMs: number

  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private mode: StandinMode = 'ok'
  private flaky = false
  private flakyCount = 0
  private killAfter: number | null = null
  private closed = false
  private listening = false
  private readonly lifetime = new AbortController()
  /** exchanges not finished yet, so a `down` or `close` can mark them cut */
  private readonly live = new Set<RequestContext>()

  constructor (init: StandinInit = {}) {
    this.host = init.host ?? '127.0.0.1'
    this.port = init.port ?? 0
    this.tokenDelayMs = init.tokenDelayMs ?? 0
    this.slowDelayMs = init.slowDelayMs ?? SLOW_DELAY_MS
    this.server = createServer((req, res) => { void this.dispatch(req, res) })
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
    })
  }

  /** `http://host:port` */
  get url (): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host
    return `http://${host}:${this.port}`
  }

  /** the current fault mode */
  getMode (): StandinMode {
    return this.mode
  }

  /** starts listening; called by the `start…Standin` factories */
  async listen (): Promise<this> {
    if (this.closed) throw new Error('stand-in is closed')
    if (this.listening) return this
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err)
      this.server.once('error', onError)
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', onError)
        resolve()
      })
    })
    const address = this.server.address()
    if (address !== null && typeof address === 'object') this.port = address.port
    this.listening = true
    return this
  }

  /**
   * Switches the fault mode. `down` closes the listener and every open connection (connections
   * are refused); any other mode re-listens on the same port first if the stand-in was down.
   */
  async setMode (mode: StandinMode): Promise<void> {
    if (this.closed) throw new Error('stand-in is closed')
    this.mode = mode
    if (mode === 'down') {
      await this.stopListening()
    } else {
      await this.listen()
    }
  }

  /** back to `ok`, listening again on the same port */
  async up (): Promise<void> {
    await this.setMode('ok')
  }

  /** shorthand for `setMode('down')` */
  async down (): Promise<void> {
    await this.setMode('down')
  }

  /** when on, every other request fails with a 500 in the API's error shape (the 1st, 3rd, …) */
  setFlaky (on: boolean): void {
    this.flaky = on
    this.flakyCount = 0
  }

  /**
   * Destroys the connection after `afterTokens` streamed tokens (or image steps) of every
   * generation from now on; a non-streamed generation is cut without an answer. `null` turns
   * it off.
   */
  killMidStream (afterTokens: number | null): void {
    this.killAfter = afterTokens
  }

  /** the current kill point (see killMidStream) */
  get killPoint (): number | null {
    return this.killAfter
  }

  /** forgets the recorded requests */
  clearRequests (): void {
    this.requests.length = 0
  }

  /** requests to one path, in order */
  requestsTo (path: string): RecordedRequest[] {
    return this.requests.filter(r => r.path === path)
  }

  /** stops listening, destroys every open socket, cancels every pending timer */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.lifetime.abort()
    await this.stopListening()
  }

  /** the routes of this API; returns false when nothing matched */
  protected abstract route (ctx: RequestContext): Promise<boolean>
  /** answers an error in this API's shape */
  protected abstract sendError (ctx: RequestContext, status: number, kind: 'server' | 'not_found' | 'bad_request', message?: string): void

  /** called before the routes; a stand-in may answer (e.g. 401) and return true to stop */
  protected preflight (_ctx: RequestContext): boolean {
    return false
  }

  /** how a body is parsed; JSON by default, whatever the content type (as Ollama does) */
  protected async parseBody (raw: Buffer, _req: IncomingMessage): Promise<unknown> {
    if (raw.length === 0) return undefined
    const text = raw.toString('utf8')
    try {
      return JSON.parse(text)
    } catch {
      return text
    }
  }

  /**
   * Call before writing streamed token `index` (0-based). Waits `tokenDelayMs` (not before the
   * first), and throws StreamStopped when the client went away, or destroys the connection and
   * throws when the kill point is reached.
   */
  protected async tokenGate (ctx: RequestContext, index: number): Promise<void> {
    if (index > 0) {
      try {
        await sleep(this.tokenDelayMs, ctx.signal)
      } catch {
        throw new StreamStopped('client gone')
      }
    }
    if (ctx.signal.aborted) throw new StreamStopped('client gone')
    if (this.killAfter !== null && index >= this.killAfter) {
      this.cut(ctx)
      throw new StreamStopped('killed mid-stream')
    }
  }

  /** destroys the connection of an exchange, recording that the stand-in did it */
  protected cut (ctx: RequestContext): void {
    ctx.cut = true
    ctx.res.destroy()
  }

  /**
   * true when a non-streamed generation of `tokens` tokens must be cut: the same kill point
   * would have stopped its stream before the final chunk (see killMidStream)
   */
  protected killsBefore (tokens: number): boolean {
    return this.killAfter !== null && this.killAfter <= tokens
  }

  /** writes a chunk and waits until it is handed to the OS (so a kill right after is precise) */
  protected async write (ctx: RequestContext, chunk: string | Buffer): Promise<void> {
    if (ctx.res.destroyed || ctx.res.writableEnded) throw new StreamStopped('client gone')
    await new Promise<void>((resolve, reject) => {
      ctx.res.write(chunk, err => { if (err != null) reject(new StreamStopped(err.message)); else resolve() })
    })
  }

  protected sendJson (ctx: RequestContext, status: number, value: unknown, headers: Record<string, string> = {}): void {
    const body = JSON.stringify(value)
    ctx.res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      ...headers
    })
    ctx.res.end(body)
  }

  protected sendText (ctx: RequestContext, status: number, text: string, type = 'text/plain; charset=utf-8'): void {
    ctx.res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) })
    ctx.res.end(ctx.method === 'HEAD' ? undefined : text)
  }

  /** a signal for a job that must stop when the stand-in closes */
  protected get lifetimeSignal (): AbortSignal {
    return this.lifetime.signal
  }

  private async stopListening (): Promise<void> {
    if (!this.listening) return
    this.listening = false
    const closed = new Promise<void>(resolve => this.server.close(() => resolve()))
    for (const ctx of this.live) ctx.cut = true
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
    await closed
  }

  private async dispatch (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const controller = new AbortController()
    const abort = (): void => controller.abort()
    res.on('close', abort)
    this.lifetime.signal.addEventListener('abort', abort, { once: true })
    res.on('close', () => this.lifetime.signal.removeEventListener('abort', abort))

    const url = new URL(req.url ?? '/', 'http://standin')
    const query: Record<string, string> = {}
    for (const [k, v] of url.searchParams) query[k] = v
    let raw: Buffer
    try {
      raw = await readBody(req, MAX_BODY_BYTES)
    } catch {
      if (!res.headersSent) {
        res.writeHead(413, { Connection: 'close' })
        res.end()
      }
      return
    }
    const ctx: RequestContext = {
      req,
      res,
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      raw,
      body: undefined,
      signal: controller.signal
    }
    ctx.body = await this.parseBody(raw, req)
    const record: RecordedRequest = { method: ctx.method, path: ctx.path, query, headers: req.headers, body: ctx.body, time: Date.now() }
    this.requests.push(record)
    const ended = (): void => {
      this.live.delete(ctx)
      record.outcome = res.writableFinished ? 'complete' : ctx.cut === true ? 'cut' : 'client-closed'
    }
    if (res.closed) ended()
    else {
      this.live.add(ctx)
      res.on('close', ended)
    }

    try {
      if (this.mode === 'hang') return // accept and never answer; close() destroys the socket
      if (this.mode === 'slow') await sleep(this.slowDelayMs, ctx.signal)
      if (this.flaky) {
        const n = this.flakyCount++
        if (n % 2 === 0) {
          this.sendError(ctx, 500, 'server')
          return
        }
      }
      if (this.mode === 'error') {
        this.sendError(ctx, 500, 'server')
        return
      }
      if (this.preflight(ctx)) return
      const handled = await this.route(ctx)
      if (!handled) this.sendError(ctx, 404, 'not_found')
    } catch (err) {
      if (err instanceof StandinAbortError || err instanceof StreamStopped) {
        if (!res.destroyed && !res.writableEnded && res.headersSent) res.destroy()
        return
      }
      if (!res.headersSent && !res.destroyed) {
        this.sendError(ctx, 500, 'server', err instanceof Error ? err.message : String(err))
      } else {
        res.destroy()
      }
    }
  }
}

async function readBody (req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw new Error('body too large')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}
