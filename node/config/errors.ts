import { RealmError } from '../../protocol/errors.js'

/**
 * A configuration problem the node cannot repair by itself: a bad flag or environment value
 * (`INVALID_FLAG`, `INVALID_ENV`), a bad `HOST:PORT` (`INVALID_HOST_PORT`), or a data dir that
 * cannot be read or written (`CONFIG_UNREADABLE`, `CONFIG_UNWRITABLE`). Bad file *content* is
 * never an error: it is repaired.
 */
export class ConfigError extends RealmError {
  override name = 'ConfigError'
  constructor (code: string, message: string, options?: { cause?: unknown, details?: Record<string, unknown> }) {
    super(code, message, options)
  }
}
