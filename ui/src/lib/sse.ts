/**
 * A Server-Sent Events parser (the WHATWG event-stream format) for streams read with `fetch`:
 * `POST /realm/tasks` answers SSE to a POST, which `EventSource` cannot send.
 */

export interface SseMessage {
  /** the `event:` field; `message` when absent */
  event: string
  /** `data:` lines joined with `\n` */
  data: string
  id?: string
  retry?: number
}

/** Longest buffered line: a peer that never ends a line cannot grow memory without bound (32 MiB: one image event) */
export const MAX_SSE_LINE_CHARS = 32 * 1024 * 1024

export class SseLineTooLongError extends Error {
  override name = 'SseLineTooLongError'
}

/** Incremental parser: feed text chunks in order; complete messages go to `onMessage` */
export class SseParser {
  private buffer = ''
  private data: string[] = []
  private event = ''
  private id: string | undefined
  private retry: number | undefined
  private first = true
  /** the previous chunk ended in `\r`: a `\n` starting the next one belongs to it */
  private pendingCr = false

  constructor (private readonly onMessage: (message: SseMessage) => void) {}

  push (chunk: string): void {
    if (this.first && chunk.length > 0) {
      this.first = false
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1)
    }
    if (this.pendingCr && chunk.startsWith('\n')) chunk = chunk.slice(1)
    this.pendingCr = false
    this.buffer += chunk
    let start = 0
    for (;;) {
      const cr = this.buffer.indexOf('\r', start)
      const lf = this.buffer.indexOf('\n', start)
      if (cr < 0 && lf < 0) break
      let end: number
      let next: number
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        end = cr
        if (cr + 1 === this.buffer.length) {
          this.pendingCr = true
          next = cr + 1
        } else {
          next = this.buffer[cr + 1] === '\n' ? cr + 2 : cr + 1
        }
      } else {
        end = lf
        next = lf + 1
      }
      this.line(this.buffer.slice(start, end))
      start = next
    }
    this.buffer = this.buffer.slice(start)
    if (this.buffer.length > MAX_SSE_LINE_CHARS) throw new SseLineTooLongError(`an SSE line is longer than ${MAX_SSE_LINE_CHARS} characters`)
  }

  /** The stream ended: a message not closed by a blank line is dropped, as the spec says */
  end (): void {
    this.buffer = ''
    this.data = []
    this.event = ''
  }

  private line (line: string): void {
    if (line === '') {
      this.dispatch()
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'data': this.data.push(value); break
      case 'event': this.event = value; break
      case 'id': if (!value.includes('\0')) this.id = value; break
      case 'retry': if (/^\d+$/.test(value)) this.retry = Number(value); break
      default: break
    }
  }

  private dispatch (): void {
    if (this.data.length === 0) {
      this.event = ''
      return
    }
    const message: SseMessage = { event: this.event === '' ? 'message' : this.event, data: this.data.join('\n') }
    if (this.id !== undefined) message.id = this.id
    if (this.retry !== undefined) message.retry = this.retry
    this.data = []
    this.event = ''
    this.onMessage(message)
  }
}

/** Read a byte stream to its end, handing each SSE message to `onMessage` */
export async function readSse (body: ReadableStream<Uint8Array>, onMessage: (message: SseMessage) => void): Promise<void> {
  const parser = new SseParser(onMessage)
  const decoder = new TextDecoder()
  const reader = body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      parser.push(decoder.decode(value, { stream: true }))
    }
    parser.push(decoder.decode())
    parser.end()
  } finally {
    reader.releaseLock()
  }
}
