/** JSON requests to a backend, bounded in size, with errors that say what went wrong */
import { MAX_LISTING_BYTES } from './constants.js'
import { BackendResponseError, BackendUnreachableError } from './errors.js'
import type { Connection } from './spec.js'

export interface RequestJsonInit {
  fetch: typeof fetch
  signal: AbortSignal
  method?: 'GET' | 'POST'
  body?: unknown
}

/** What a failed fetch says: Node's own reason (`connect ECONNREFUSED 127.0.0.1:11434`), never the URL */
function networkReason (err: unknown): string {
  const cause = (err as { cause?: { code?: unknown, message?: unknown } } | undefined)?.cause
  if (typeof cause?.message === 'string' && cause.message !== '') return cause.message
  if (typeof cause?.code === 'string') return cause.code
  return err instanceof Error ? err.message : String(err)
}

async function readLimited (res: Response, limit: number): Promise<string> {
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.length
    if (size > limit) {
      await reader.cancel().catch(() => {})
      throw new BackendResponseError(`answer larger than ${limit} bytes`)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Requests `conn.base + path` and parses the JSON answer. Rejects with BackendUnreachableError,
 * BackendResponseError (non-2xx, not JSON, too large), or the signal's reason when it aborts.
 */
export async function requestJson (conn: Connection, path: string, init: RequestJsonInit): Promise<unknown> {
  const url = conn.base + path + conn.search
  const headers: Record<string, string> = { accept: 'application/json', ...conn.headers }
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await init.fetch(url, {
      method: init.method ?? 'GET',
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
      // a redirect could carry the credentials elsewhere: a backend does not redirect its API
      redirect: 'manual'
    })
  } catch (err) {
    if (init.signal.aborted) throw init.signal.reason
    throw new BackendUnreachableError(`cannot reach the backend: ${networkReason(err)}`, { cause: err })
  }
  let text: string
  try {
    text = await readLimited(res, MAX_LISTING_BYTES)
  } catch (err) {
    if (init.signal.aborted) throw init.signal.reason
    if (err instanceof BackendResponseError) throw err
    throw new BackendUnreachableError(`connection lost while reading ${path}: ${networkReason(err)}`, { cause: err })
  }
  if (!res.ok) {
    throw new BackendResponseError(`${path} answered ${res.status}${errorText(text)}`, { status: res.status })
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new BackendResponseError(`${path} did not answer JSON`, { status: res.status })
  }
}

/** `: message` from an error body (Ollama's `{error}`, OpenAI's `{error:{message}}`, A1111's `{detail}`) */
function errorText (text: string): string {
  try {
    const body = JSON.parse(text)
    const message = typeof body?.error === 'string'
      ? body.error
      : typeof body?.error?.message === 'string'
        ? body.error.message
        : typeof body?.detail === 'string' ? body.detail : undefined
    return message === undefined ? '' : `: ${String(message).slice(0, 200)}`
  } catch {
    return ''
  }
}
