/**
 * Runs an engine as a child process without a shell: arguments as an array, input on stdin, a
 * time limit, the task's signal, and a bound on what is read back. The event loop never waits on
 * the child; a child that outlives its welcome is killed (SIGTERM, then SIGKILL).
 */
import { spawn } from 'node:child_process'
import { logger } from '@libp2p/logger'
import { KILL_GRACE_MS, MAX_STDERR_BYTES } from './constants.js'
import { SpeechCancelledError, SpeechEngineError, SpeechEngineMissingError, SpeechTimeoutError } from './errors.js'

const log = logger('realm:speech')

export interface RunProcessOptions {
  /** engine name for messages (`espeak-ng`) */
  engine: string
  /** Debian package(s) named when the binary is missing */
  pkg: string
  /** written to stdin, which is then closed. Default: stdin closed at once */
  input?: Uint8Array | string
  /** aborting kills the child; the call rejects with SpeechCancelledError once it has exited */
  signal?: AbortSignal
  /** the child is killed after this; the call rejects with SpeechTimeoutError */
  timeoutMs: number
  /** most stdout bytes kept; more kills the child and rejects with `tooLarge()` */
  maxOutputBytes: number
  /** the error when stdout passes maxOutputBytes. Default: SpeechEngineError */
  tooLarge?: () => Error
  /** sees each stdout chunk as it arrives (for engines that print results as they go) */
  onStdout?: (chunk: Buffer) => void
}

export interface ProcessResult {
  /** exit status, null when killed by a signal */
  code: number | null
  stdout: Buffer
  /** the last MAX_STDERR_BYTES of stderr */
  stderr: string
}

/** Runs `bin args…`; resolves whatever the exit status (callers judge it), rejects on spawn failure, abort, timeout, overflow */
export async function runProcess (bin: string, args: readonly string[], opts: RunProcessOptions): Promise<ProcessResult> {
  if (opts.signal?.aborted === true) throw new SpeechCancelledError()
  return await new Promise<ProcessResult>((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false, windowsHide: true })
    const chunks: Buffer[] = []
    let outBytes = 0
    let stderr = ''
    let failure: Error | undefined
    let killTimer: ReturnType<typeof setTimeout> | undefined
    let settled = false

    const kill = (why: Error): void => {
      if (failure !== undefined) return
      failure = why
      child.kill('SIGTERM')
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS)
      killTimer.unref()
    }
    const onAbort = (): void => kill(new SpeechCancelledError())
    const timer = setTimeout(() => kill(new SpeechTimeoutError(opts.engine, opts.timeoutMs)), opts.timeoutMs)
    timer.unref()
    opts.signal?.addEventListener('abort', onAbort, { once: true })

    const finish = (err: Error | undefined, result?: ProcessResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (killTimer !== undefined) clearTimeout(killTimer)
      opts.signal?.removeEventListener('abort', onAbort)
      if (err !== undefined) reject(err)
      else resolve(result as ProcessResult)
    }

    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') finish(new SpeechEngineMissingError(opts.engine, opts.pkg, bin === opts.engine ? bin : `${bin} (${opts.engine})`))
      else if (err.code === 'EACCES') finish(new SpeechEngineError(`${bin} cannot be run: ${err.code}`))
      else if (failure === undefined) finish(new SpeechEngineError(`${opts.engine} failed: ${err.message}`))
    })
    child.stdout.on('data', (chunk: Buffer) => {
      if (failure !== undefined) return
      outBytes += chunk.length
      if (outBytes > opts.maxOutputBytes) {
        kill(opts.tooLarge?.() ?? new SpeechEngineError(`${opts.engine} wrote more than ${opts.maxOutputBytes} bytes`))
        return
      }
      chunks.push(chunk)
      try {
        opts.onStdout?.(chunk)
      } catch (err) {
        kill(err instanceof Error ? err : new Error(String(err)))
      }
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-MAX_STDERR_BYTES)
    })
    // a child that exits without reading all its input closes the pipe: EPIPE is not our failure
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') log('%s stdin: %s', opts.engine, err.message)
    })
    // 'close' comes after the exit and after stdout/stderr are drained, so the child is reaped
    child.on('close', (code: number | null) => {
      if (failure !== undefined) finish(failure)
      else finish(undefined, { code, stdout: Buffer.concat(chunks), stderr })
    })
    if (opts.input === undefined) child.stdin.end()
    else child.stdin.end(opts.input)
  })
}

/** The lines of an engine's stderr worth showing: errors first, else the last non-empty line */
export function stderrReason (stderr: string): string {
  const lines = stderr.split('\n').map(l => l.trim()).filter(l => l !== '')
  const errors = lines.filter(l => /\b(error|fatal|failed|invalid|not found|does not exist)\b/i.test(l) && !/^INFO:/.test(l))
  const picked = errors.length > 0 ? errors.slice(-2).join('; ') : (lines.at(-1) ?? '')
  return picked.length > 300 ? picked.slice(0, 300) + '…' : picked
}
