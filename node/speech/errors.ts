/**
 * Errors of the speech engines. Run errors carry a code from TASK_ERROR_CODES (protocol/task.ts)
 * so the queue and the task protocol pass them on as they are; tests tell them apart by `name`.
 */
import { RealmError } from '../../protocol/errors.js'

/** `stt=URL` / `tts=URL` (an OpenAI-compatible speech server) is the openai adapter's job */
export class UnsupportedSpeechTargetError extends RealmError {
  override name = 'UnsupportedSpeechTargetError'
  constructor (backend: string, target: string) {
    super('UNSUPPORTED_BACKEND', `${backend}=${target.startsWith('http') ? 'URL' : target} is not served by the offline speech engines`, { details: { backend } })
  }
}

/** An engine binary or model is not installed; the message names the Debian package */
export class SpeechEngineMissingError extends RealmError {
  override name = 'SpeechEngineMissingError'
  constructor (engine: string, pkg: string, what?: string) {
    super('BACKEND_UNREACHABLE', `${what ?? engine} is not installed: apt-get install ${pkg}`, { details: { engine, package: pkg } })
  }
}

/** An engine ran but failed (exit status, unreadable output) */
export class SpeechEngineError extends RealmError {
  override name = 'SpeechEngineError'
  constructor (message: string, details?: Record<string, unknown>) {
    super('BACKEND_ERROR', message, { details })
  }
}

/** The task's input cannot be used: undecodable audio, unknown voice, phrases without known words, wrong kind */
export class SpeechInputError extends RealmError {
  override name = 'SpeechInputError'
  constructor (message: string, details?: Record<string, unknown>) {
    super('INVALID_TASK', message, { details })
  }
}

/** Audio or text over its limit (checked before any engine starts), or speech longer than a task frame holds */
export class SpeechTooLargeError extends RealmError {
  override name = 'SpeechTooLargeError'
  constructor (what: string, limit: number, unit: string) {
    super('INVALID_TASK', `${what} is over the limit of ${limit} ${unit}`, { details: { reason: 'too_large', limit, unit } })
  }
}

/** The task names a model this worker does not serve */
export class SpeechModelNotFoundError extends RealmError {
  override name = 'SpeechModelNotFoundError'
  constructor (model: string) {
    super('MODEL_NOT_FOUND', `model "${model}" not found`, { details: { model } })
  }
}

/** The task's signal aborted; the engine processes were killed */
export class SpeechCancelledError extends RealmError {
  override name = 'SpeechCancelledError'
  constructor () {
    super('CANCELLED', 'task cancelled')
  }
}

/** An engine ran past its time limit and was killed */
export class SpeechTimeoutError extends RealmError {
  override name = 'SpeechTimeoutError'
  constructor (engine: string, timeoutMs: number) {
    super('TIMEOUT', `${engine} did not finish within ${timeoutMs} ms`, { details: { engine, timeoutMs } })
  }
}
