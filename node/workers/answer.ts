/**
 * A backend's answer as a run reads it: status, headers, and a body read once, chunk by chunk.
 * JSON and bodiless requests go over `node:http` / `node:https` with keep-alive agents shared by
 * every run (a streamed exchange costs markedly less CPU than through fetch, and starts sooner);
 * multipart bodies and an injected fetch go through fetch, whose `Response` is wrapped alike.
 */
import http from 'node:http'
import https from 'node:https'

/**
 * How long the rest of an answer left early (read up to Ollama's `done` line, say) is read for:
 * its end usually comes at once, and then the connection is kept; past this it is cut
 */
const DRAIN_MS = 250

export interface AnswerBody {
  /** the next chunk, undefined at the end; rejects when the connection breaks */
  read: () => Promise<Uint8Array | undefined>
  /** drops the rest of the body (the connection is kept when its end comes at once, else cut) */
  cancel: () => Promise<void>
}

export interface BackendAnswer {
  readonly ok: boolean
  readonly status: number
  readonly headers: { get: (name: string) => string | null }
  /** null when the answer has none */
  readonly body: AnswerBody | null
}

/** A fetch `Response` as a BackendAnswer */
export function fetchAnswer (res: Response): BackendAnswer {
  const stream = res.body
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  return {
    ok: res.ok,
    status: res.status,
    headers: res.headers,
    body: stream === null
      ? null
      : {
          read: async () => {
            reader ??= stream.getReader()
            const result = await reader.read()
            return result.done ? undefined : result.value
          },
          cancel: async () => {
            await (reader != null ? reader.cancel() : stream.cancel()).catch(() => {})
          }
        }
  }
}

const httpAgent = new http.Agent({ keepAlive: true })
const httpsAgent = new https.Agent({ keepAlive: true })

export interface HttpRequestInit {
  method: string
  headers: Record<string, string>
  body?: string
  /** aborts the request, and its body until that ends or is cancelled */
  signal: AbortSignal
}

/** A kept-alive connection the server had closed when it was reused: the request never reached it */
class StaleConnectionError extends Error {
  override name = 'StaleConnectionError'
}

/**
 * One request over `node:http(s)`: resolves with the answer once its head arrives, any status;
 * rejects when none comes (refused, reset, DNS, the signal) with Node's own error. A kept-alive
 * connection found closed by the server as it is reused is replaced once (Node's advice for
 * `reusedSocket`), unseen.
 */
export async function httpRequest (url: string, init: HttpRequestInit): Promise<BackendAnswer> {
  try {
    return await exchange(url, init)
  } catch (err) {
    if (!(err instanceof StaleConnectionError)) throw err
    return await exchange(url, init)
  }
}

async function exchange (url: string, init: HttpRequestInit): Promise<BackendAnswer> {
  return await new Promise((resolve, reject) => {
    if (init.signal.aborted) {
      reject(new Error('request aborted'))
      return
    }
    const target = new URL(url)
    const secure = target.protocol === 'https:'
    const headers = init.body === undefined ? init.headers : { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) }
    const req = (secure ? https : http).request(target, { method: init.method, headers, agent: secure ? httpsAgent : httpAgent })
    let answer: HttpAnswer | undefined
    const onAbort = (): void => {
      if (answer !== undefined) answer.abort()
      else req.destroy(new Error('request aborted'))
    }
    init.signal.addEventListener('abort', onAbort, { once: true })
    req.on('error', (err: NodeJS.ErrnoException) => {
      // once the head is in, a break is the body reader's news
      if (answer !== undefined) return
      init.signal.removeEventListener('abort', onAbort)
      if (req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE') && !init.signal.aborted) reject(new StaleConnectionError(err.message, { cause: err }))
      else reject(err)
    })
    req.on('response', (msg) => {
      answer = new HttpAnswer(req, msg, () => { init.signal.removeEventListener('abort', onAbort) })
      resolve(answer)
    })
    req.end(init.body)
  })
}

function headerValue (value: string | string[] | undefined): string | null {
  if (value === undefined) return null
  return Array.isArray(value) ? value.join(', ') : value
}

class HttpAnswer implements BackendAnswer, AnswerBody {
  readonly ok: boolean
  readonly status: number
  readonly headers: { get: (name: string) => string | null }
  readonly body: AnswerBody = this
  private iterator?: AsyncIterator<Buffer>
  /** read to its end, broken, dropped or aborted: the signal no longer concerns it */
  private done = false
  /** cut by the signal */
  private aborted = false

  constructor (private readonly req: http.ClientRequest, private readonly msg: http.IncomingMessage, private readonly release: () => void) {
    this.status = msg.statusCode ?? 0
    this.ok = this.status >= 200 && this.status < 300
    this.headers = { get: (name) => headerValue(msg.headers[name.toLowerCase()]) }
    // a break reaches the reader through its iterator; unread, it must not be an uncaught error
    msg.on('error', () => {})
  }

  async read (): Promise<Uint8Array | undefined> {
    if (this.aborted) throw new Error('request aborted')
    if (this.done) return undefined
    this.iterator ??= this.msg[Symbol.asyncIterator]()
    let result: IteratorResult<Buffer>
    try {
      result = await this.iterator.next()
    } catch (err) {
      this.finish()
      throw err
    }
    if (result.done === true) {
      // the connection has gone back to the agent: the signal must not cut it any more
      this.finish()
      return undefined
    }
    return result.value
  }

  async cancel (): Promise<void> {
    if (this.done) return
    this.finish()
    const iterator = this.iterator ?? this.msg[Symbol.asyncIterator]()
    const timer = setTimeout(() => { this.req.destroy() }, DRAIN_MS)
    void (async () => {
      try {
        while ((await iterator.next()).done !== true) {}
      } catch {
        // cut: the connection is not kept
      } finally {
        clearTimeout(timer)
      }
    })()
  }

  /** the signal aborted while the body was live: the connection is cut */
  abort (): void {
    if (this.done) return
    this.finish()
    this.aborted = true
    this.req.destroy(new Error('request aborted'))
  }

  private finish (): void {
    if (this.done) return
    this.done = true
    this.release()
  }
}
