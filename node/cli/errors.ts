import { RealmError } from '../../protocol/errors.js'

/** A failure the CLI reports in one line, with its exit code */
export class CliError extends RealmError {
  override name = 'CliError'
  readonly exitCode: number

  constructor (code: string, message: string, exitCode = 1) {
    super(code, message)
    this.exitCode = exitCode
  }
}
