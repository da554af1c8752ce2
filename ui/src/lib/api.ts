/**
 * The node's HTTP API as the UI calls it: JSON routes with `{ error: { code, message } }`
 * errors, and tasks streamed as SSE over a POST. Same origin only; cookies go with every call.
 */
import { readSse } from './sse.js'
import type { TaskEvent, TaskSubmission } from './types.js'

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

export class ApiError extends Error {
  override name = 'ApiError'
  constructor (readonly status: number, readonly code: string, message: string, readonly retryAfterS?: number) {
    super(message)
  }
}

/** Code of a stream that ended before its task did */
export const STREAM_CUT = 'STREAM_CUT'

/** The realm error a response carries, whatever its body */
export async function errorFromResponse (res: Response): Promise<ApiError> {
  const retry = Number(res.headers.get('retry-after'))
  const retryAfterS = Number.isFinite(retry) && retry > 0 ? retry : undefined
  let code = `HTTP_${res.status}`
  let message = res.statusText !== '' ? res.statusText : `HTTP ${res.status}`
  try {
    const body = await res.json() as { error?: { code?: unknown, message?: unknown } | string }
    if (typeof body.error === 'string') message = body.error
    else if (body.error != null) {
      if (typeof body.error.code === 'string') code = body.error.code
      if (typeof body.error.message === 'string') message = body.error.message
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, code, message, retryAfterS)
}

export interface CallOptions {
  fetch?: FetchLike
  signal?: AbortSignal
}

function fetchOf (opts?: CallOptions): FetchLike {
  return opts?.fetch ?? ((input, init) => globalThis.fetch(input, init))
}

/** `GET path` → JSON, or an ApiError */
export async function getJson<T> (path: string, opts?: CallOptions): Promise<T> {
  const res = await fetchOf(opts)(path, { headers: { accept: 'application/json' }, signal: opts?.signal })
  if (!res.ok) throw await errorFromResponse(res)
  return await res.json() as T
}

/** `METHOD path` with a JSON body → JSON (or `undefined` for an empty answer), or an ApiError */
export async function sendJson<T> (method: 'POST' | 'DELETE' | 'PUT', path: string, body?: unknown, opts?: CallOptions): Promise<T> {
  const init: RequestInit = { method, headers: { accept: 'application/json' }, signal: opts?.signal }
  if (body !== undefined) {
    init.headers = { accept: 'application/json', 'content-type': 'application/json' }
    init.body = JSON.stringify(body)
  }
  const res = await fetchOf(opts)(path, init)
  if (!res.ok) throw await errorFromResponse(res)
  const text = await res.text()
  return (text === '' ? undefined : JSON.parse(text)) as T
}

export interface StreamTaskOptions extends CallOptions {
  /** each event of the task, in order */
  onEvent: (event: TaskEvent) => void
}

/**
 * `POST /realm/tasks` with `Accept: text/event-stream`: hands every event to `onEvent` and
 * resolves with the task id once the task has ended (`task.done` or `task.error`). Rejects with
 * an ApiError when the node refuses the task (404 MODEL_NOT_FOUND, 429 QUEUE_FULL, …) or the
 * stream breaks before the end (STREAM_CUT); with an AbortError when `signal` aborts.
 */
export async function streamTask (task: TaskSubmission, opts: StreamTaskOptions): Promise<string> {
  const res = await fetchOf(opts)('/realm/tasks', {
    method: 'POST',
    headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
    body: JSON.stringify(task),
    signal: opts.signal
  })
  if (res.status !== 200) throw await errorFromResponse(res)
  if (res.body == null) throw new ApiError(0, STREAM_CUT, 'the node sent no stream')
  let id = res.headers.get('x-task-id') ?? ''
  let ended = false
  await readSse(res.body, (message) => {
    let event: TaskEvent
    try {
      event = JSON.parse(message.data) as TaskEvent
    } catch {
      return
    }
    if (typeof event?.type !== 'string') return
    if (id === '' && typeof event.id === 'string') id = event.id
    if (event.type === 'task.done' || event.type === 'task.error') ended = true
    opts.onEvent(event)
  })
  if (!ended) throw new ApiError(0, STREAM_CUT, 'the connection to the node was lost before the task ended')
  return id
}

/** Is this the rejection of an aborted fetch? */
export function isAbort (err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === 'AbortError'
}
