import { RealmError } from '../../protocol/errors.js'
import { USD_ROUNDING } from './constants.js'

/** A `--worker BACKEND=TARGET` value that cannot be used; the message is one line */
export class InvalidWorkerSpecError extends RealmError {
  override name = 'InvalidWorkerSpecError'
  constructor (message: string, details?: Record<string, unknown>) {
    super('INVALID_WORKER_SPEC', message, { details })
  }
}

/** A backend this version cannot attach yet */
export class UnsupportedBackendError extends RealmError {
  override name = 'UnsupportedBackendError'
  constructor (backend: string) {
    super('UNSUPPORTED_BACKEND', `the ${backend} backend is not supported yet`, { details: { backend } })
  }
}

/** The backend could not be reached (connection refused, DNS, reset) */
export class BackendUnreachableError extends RealmError {
  override name = 'BackendUnreachableError'
  constructor (message: string, options?: { cause?: unknown }) {
    super('BACKEND_UNREACHABLE', message, options)
  }
}

/** The backend answered, but not as that backend answers (status, not JSON, wrong shape, too large) */
export class BackendResponseError extends RealmError {
  override name = 'BackendResponseError'
  constructor (message: string, details?: Record<string, unknown>) {
    super('BACKEND_BAD_RESPONSE', message, { details })
  }
}

/** The backend did not answer a probe in time */
export class ProbeTimeoutError extends RealmError {
  override name = 'ProbeTimeoutError'
  constructor (timeoutMs: number) {
    super('PROBE_TIMEOUT', `no answer within ${timeoutMs} ms`, { details: { timeoutMs } })
  }
}

/*
 * Errors a run rejects with. Each code is one of TASK_ERROR_CODES (protocol/task.ts), so the
 * queue and the task protocol pass it on as it is.
 */

/** The backend answered, but the run cannot succeed: HTTP error, malformed stream, connection cut after it answered */
export class BackendError extends RealmError {
  override name = 'BackendError'
  constructor (message: string, details?: Record<string, unknown>) {
    super('BACKEND_ERROR', message, { details })
  }
}

/** The backend says the model does not exist */
export class ModelNotFoundError extends RealmError {
  override name = 'ModelNotFoundError'
  constructor (model: string, message?: string) {
    super('MODEL_NOT_FOUND', message ?? `model "${model}" not found`, { details: { model } })
  }
}

/** The task was cancelled (its signal aborted); the backend request was closed */
export class TaskCancelledError extends RealmError {
  override name = 'TaskCancelledError'
  constructor () {
    super('CANCELLED', 'task cancelled')
  }
}

/** The backend sent nothing for `idleTimeoutMs` */
export class TaskTimeoutError extends RealmError {
  override name = 'TaskTimeoutError'
  constructor (idleTimeoutMs: number, partial = false) {
    super('TIMEOUT', `the backend sent nothing for ${idleTimeoutMs} ms`, { details: { idleTimeoutMs, partial } })
  }
}

/** A paid backend has spent its daily cap: no task starts before the next UTC day */
export class SpendCapError extends RealmError {
  override name = 'SpendCapError'
  constructor (backend: string, capUsd: number, spentUsd: number) {
    super('SPEND_CAP', `the ${backend} backend reached its daily spend cap of ${capUsd} USD`, { details: { backend, capUsd, spentUsd: Math.round(spentUsd * USD_ROUNDING) / USD_ROUNDING } })
  }
}

/** The task is not one this worker can run (kind not served, input that does not fit its schema) */
export class InvalidTaskError extends RealmError {
  override name = 'InvalidTaskError'
  constructor (message: string, details?: Record<string, unknown>) {
    super('INVALID_TASK', message, { details })
  }
}

/** A run failed inside the node, not at the backend (a bug, or a throwing event listener) */
export class WorkerInternalError extends RealmError {
  override name = 'WorkerInternalError'
  constructor (message: string, options?: { cause?: unknown }) {
    super('INTERNAL', message, options)
  }
}
