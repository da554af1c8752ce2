/**
 * Errors of the compatibility routes, answered in the form of the API each copies:
 * Ollama `{ "error": "message" }`, OpenAI `{ "error": { message, type, param, code } }`.
 * Task failures (TaskError codes) map onto what the real server answers in the same situation.
 */
import { HttpError } from '../errors.js'
import { RealmError } from '../../../protocol/errors.js'
import { TaskError } from '../../tasks/types.js'
import { DEFAULT_RETRY_AFTER_S } from './constants.js'

/** Why a request body could not be read; each API words it its own way */
export type RequestProblem = 'EMPTY_BODY' | 'INVALID_JSON' | 'TOO_LARGE' | 'UNSUPPORTED_MEDIA_TYPE' | 'INVALID_MULTIPART'

export class CompatRequestError extends RealmError {
  override name = 'CompatRequestError'
  declare readonly code: RequestProblem

  constructor (code: RequestProblem, message: string, details?: Record<string, unknown>) {
    super(code, message, { details })
  }
}

/** An answer in Ollama's error form: `status` + `{ "error": message }` */
export class OllamaHttpError extends HttpError {
  override name = 'OllamaHttpError'

  constructor (status: number, message: string, headers?: Record<string, string>) {
    super(status, 'OLLAMA_ERROR', message, { headers })
  }

  get body (): { error: string } {
    return { error: this.message }
  }
}

/** The `error` object of an OpenAI error answer */
export interface OpenAIErrorObject {
  message: string
  type: string
  param: string | null
  code: string | null
}

/** An answer in OpenAI's error form: `status` + `{ error: { message, type, param, code } }` */
export class OpenAIHttpError extends HttpError {
  override name = 'OpenAIHttpError'
  readonly type: string
  readonly param: string | null
  readonly apiCode: string | null

  constructor (status: number, error: OpenAIErrorObject, headers?: Record<string, string>) {
    super(status, 'OPENAI_ERROR', error.message, { headers })
    this.type = error.type
    this.param = error.param
    this.apiCode = error.code
  }

  get error (): OpenAIErrorObject {
    return { message: this.message, type: this.type, param: this.param, code: this.apiCode }
  }
}

/** Seconds a busy client should wait, from the task manager's hint */
export function retryAfterOf (err: TaskError): number {
  const hint = err.details?.retryAfterS
  return typeof hint === 'number' && Number.isFinite(hint) && hint > 0 ? Math.ceil(hint) : DEFAULT_RETRY_AFTER_S
}

/** Ollama's scheduler answer when its queue is full (server/sched.go `ErrMaxQueue`), 503 */
export const OLLAMA_BUSY_MESSAGE = 'server busy, please try again.  maximum pending requests exceeded'

/** Ollama's answer for a model it does not have (server/routes.go), 404 */
export function ollamaModelNotFound (model: string): OllamaHttpError {
  return new OllamaHttpError(404, `model '${model}' not found`)
}

/** Any error thrown in an Ollama route, as Ollama would answer it */
export function ollamaErrorFor (err: unknown, model = ''): OllamaHttpError | undefined {
  if (err instanceof OllamaHttpError) return err
  if (err instanceof CompatRequestError) {
    switch (err.code) {
      case 'EMPTY_BODY': return new OllamaHttpError(400, 'missing request body')
      case 'TOO_LARGE': return new OllamaHttpError(413, 'request body too large')
      case 'UNSUPPORTED_MEDIA_TYPE': return new OllamaHttpError(415, err.message)
      default: return new OllamaHttpError(400, err.message)
    }
  }
  if (err instanceof TaskError) {
    switch (err.code) {
      case 'MODEL_NOT_FOUND': return ollamaModelNotFound(model)
      case 'QUEUE_FULL': return new OllamaHttpError(503, OLLAMA_BUSY_MESSAGE, { 'Retry-After': String(retryAfterOf(err)) })
      case 'INVALID_TASK': return new OllamaHttpError(400, err.message)
      // what Ollama answers when the request's context is cancelled (handleScheduleError)
      case 'CANCELLED': return new OllamaHttpError(499, 'request canceled')
      case 'FORBIDDEN': return new OllamaHttpError(403, err.message)
      case 'SPEND_CAP': return new OllamaHttpError(429, err.message)
      case 'NO_WORKER': return new OllamaHttpError(503, err.message)
      // a model that failed: Ollama answers 500 with the runner's message
      default: return new OllamaHttpError(500, err.message)
    }
  }
  return undefined
}

/** OpenAI's answer for an unknown model (its API reference, ErrorResponse), 404 */
export function openaiModelNotFound (model: string): OpenAIHttpError {
  return new OpenAIHttpError(404, {
    message: `The model \`${model}\` does not exist or you do not have access to it.`,
    type: 'invalid_request_error',
    param: null,
    code: 'model_not_found'
  })
}

/** A 400 in OpenAI's form */
export function openaiInvalid (message: string, param: string | null = null, code: string | null = null): OpenAIHttpError {
  return new OpenAIHttpError(400, { message, type: 'invalid_request_error', param, code })
}

/** OpenAI's message when the body is not JSON */
export const OPENAI_BAD_JSON_MESSAGE = 'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)'

/** Any error thrown in an OpenAI route, as OpenAI would answer it */
export function openaiErrorFor (err: unknown, model = ''): OpenAIHttpError | undefined {
  if (err instanceof OpenAIHttpError) return err
  if (err instanceof CompatRequestError) {
    switch (err.code) {
      case 'EMPTY_BODY':
      case 'INVALID_JSON': return openaiInvalid(OPENAI_BAD_JSON_MESSAGE)
      case 'TOO_LARGE': return new OpenAIHttpError(413, { message: err.message, type: 'invalid_request_error', param: null, code: null })
      // OpenAI answers a wrong Content-Type with a 400
      default: return openaiInvalid(err.message)
    }
  }
  if (err instanceof TaskError) {
    switch (err.code) {
      case 'MODEL_NOT_FOUND': return openaiModelNotFound(model)
      case 'QUEUE_FULL': {
        const seconds = retryAfterOf(err)
        // OpenAI's rate-limit answer: type "requests", code "rate_limit_exceeded", a Retry-After
        return new OpenAIHttpError(429, {
          message: `Rate limit reached for requests on this node. Please try again in ${seconds}s.`,
          type: 'requests',
          param: null,
          code: 'rate_limit_exceeded'
        }, { 'Retry-After': String(seconds), 'retry-after-ms': String(seconds * 1000) })
      }
      // OpenAI's over-quota answer
      case 'SPEND_CAP': return new OpenAIHttpError(429, { message: err.message, type: 'insufficient_quota', param: null, code: 'insufficient_quota' })
      case 'INVALID_TASK': return openaiInvalid(err.message)
      case 'FORBIDDEN': return new OpenAIHttpError(403, { message: err.message, type: 'invalid_request_error', param: null, code: 'forbidden' })
      case 'CANCELLED': return new OpenAIHttpError(499, { message: 'Request was cancelled.', type: 'invalid_request_error', param: null, code: 'cancelled' })
      case 'NO_WORKER': return new OpenAIHttpError(503, { message: err.message, type: 'server_error', param: null, code: 'no_worker' })
      case 'TIMEOUT': return new OpenAIHttpError(504, { message: err.message, type: 'server_error', param: null, code: 'timeout' })
      default: return new OpenAIHttpError(500, { message: err.message, type: 'server_error', param: null, code: err.code.toLowerCase() })
    }
  }
  return undefined
}
