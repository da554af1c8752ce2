import { RealmError } from '../../protocol/errors.js'

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
