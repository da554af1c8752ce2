/**
 * Errors are classes told apart by `name`; each carries a SNAKE_CASE `code` that the
 * HTTP API and the wire protocol report, so a client can act on it without parsing text.
 */
export class RealmError extends Error {
  override name = 'RealmError'
  /** SNAKE_CASE code reported to clients */
  readonly code: string
  /** extra machine-readable details (never secrets) */
  readonly details?: Record<string, unknown>

  constructor (code: string, message: string, options?: { cause?: unknown, details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options?.details
  }
}

/** A message or request failed its schema */
export class InvalidMessageError extends RealmError {
  override name = 'InvalidMessageError'
  constructor (message: string, code = 'INVALID_MESSAGE', details?: Record<string, unknown>) {
    super(code, message, { details })
  }
}

/** A message or body is larger than its limit */
export class TooLargeError extends RealmError {
  override name = 'TooLargeError'
  constructor (message: string, code = 'TOO_LARGE', details?: Record<string, unknown>) {
    super(code, message, { details })
  }
}

/** A signature is missing or does not verify */
export class BadSignatureError extends RealmError {
  override name = 'BadSignatureError'
  constructor (message: string, code = 'BAD_SIGNATURE') {
    super(code, message)
  }
}

export function isRealmError (err: unknown): err is RealmError {
  return err instanceof RealmError
}

/** The message of any thrown value, for logs and one-line CLI errors */
export function errorMessage (err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
