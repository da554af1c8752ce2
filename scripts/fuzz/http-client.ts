/**
 * A raw HTTP/1.1 client for the fuzz: writes exactly the bytes it is given (lying
 * Content-Length, broken chunking, odd methods and headers all go out as written) and reads
 * whatever comes back until the server closes, with a deadline.
 */
import net from 'node:net'

export interface RawExchange {
  /** the request's bytes on the wire */
  bytes: Uint8Array
  /** end our side once written (a client that stops sending) */
  halfClose?: boolean
  /** destroy the connection this many ms after the first response bytes (a client that goes away) */
  dropAfterFirstBytesMs?: number
  /** destroy the connection this many ms after writing (a client that goes away mid-request) */
  dropAfterWriteMs?: number
  /** a never-ending answer (`follow`): done once this many ms of it are read */
  streamGraceMs?: number
  localAddress?: string
}

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: Buffer
  /** no status line came back */
  noAnswer: boolean
  timedOut: boolean
  /** we ended the exchange on purpose (drop, stream grace) */
  dropped: boolean
  error?: string
  ms: number
}

function parseHead (text: string): { status: number, headers: Record<string, string> } | undefined {
  const lines = text.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')
  if (m === null) return undefined
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i > 0) {
      const k = line.slice(0, i).trim().toLowerCase()
      headers[k] = headers[k] === undefined ? line.slice(i + 1).trim() : `${headers[k]}, ${line.slice(i + 1).trim()}`
    }
  }
  return { status: Number(m[1]), headers }
}

/** The body of a chunked message, as far as it goes */
function dechunk (raw: Buffer): Buffer {
  const parts: Buffer[] = []
  let at = 0
  while (at < raw.length) {
    const eol = raw.indexOf('\r\n', at)
    if (eol < 0) break
    const size = parseInt(raw.subarray(at, eol).toString('latin1').split(';')[0], 16)
    if (!Number.isFinite(size) || size === 0) break
    parts.push(raw.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
  }
  return Buffer.concat(parts)
}

/** Splits what came back into the final response (skipping `100 Continue`) */
export function parseResponse (all: Buffer): { status: number, headers: Record<string, string>, body: Buffer } | undefined {
  let at = 0
  for (;;) {
    const end = all.indexOf('\r\n\r\n', at)
    if (end < 0) {
      const head = parseHead(all.subarray(at).toString('latin1'))
      return head === undefined ? undefined : { ...head, body: Buffer.alloc(0) }
    }
    const head = parseHead(all.subarray(at, end).toString('latin1'))
    if (head === undefined) return undefined
    const rest = all.subarray(end + 4)
    if (head.status === 100) {
      at = end + 4
      continue
    }
    let body = rest
    if ((head.headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) body = dechunk(rest)
    else if (head.headers['content-length'] !== undefined) body = rest.subarray(0, Number(head.headers['content-length']))
    return { ...head, body }
  }
}

export async function rawExchange (host: string, port: number, ex: RawExchange, timeoutMs: number): Promise<RawResponse> {
  const t0 = performance.now()
  return await new Promise<RawResponse>((resolve) => {
    const chunks: Buffer[] = []
    let timedOut = false
    let dropped = false
    let error: string | undefined
    let settled = false
    let firstBytes = false
    const socket = net.connect({ host, port, localAddress: ex.localAddress, allowHalfOpen: true })
    const finish = (): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const all = Buffer.concat(chunks)
      const parsed = parseResponse(all)
      resolve({
        status: parsed?.status ?? 0,
        headers: parsed?.headers ?? {},
        body: parsed?.body ?? Buffer.alloc(0),
        noAnswer: parsed === undefined,
        timedOut,
        dropped,
        error,
        ms: performance.now() - t0
      })
    }
    const timer = setTimeout(() => { timedOut = true; finish() }, timeoutMs)
    socket.on('data', (d: Buffer) => {
      chunks.push(d)
      if (!firstBytes) {
        firstBytes = true
        if (ex.dropAfterFirstBytesMs !== undefined) setTimeout(() => { dropped = true; finish() }, ex.dropAfterFirstBytesMs)
        if (ex.streamGraceMs !== undefined) setTimeout(() => { dropped = true; finish() }, ex.streamGraceMs)
      }
    })
    socket.on('end', finish)
    socket.on('close', finish)
    socket.on('error', (err) => { error = err.message })
    socket.write(ex.bytes, () => {
      if (ex.halfClose === true) socket.end()
      if (ex.dropAfterWriteMs !== undefined) setTimeout(() => { dropped = true; finish() }, ex.dropAfterWriteMs)
    })
  })
}
