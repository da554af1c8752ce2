/**
 * A speech worker: `stt=pocketsphinx` (transcribe) or `tts=espeak-ng` (speak). Its probe checks
 * that the engine runs and its model files are there; a missing engine benches the worker at
 * once (a binary does not come back by retrying soon), with `lastError` naming the Debian package
 * to install, and probes continue with backoff so installing it brings the worker back.
 */
import { logger } from '@libp2p/logger'
import type { Backend, ModelInfo, TaskKind } from '../../protocol/kinds.js'
import { errorMessage, isRealmError } from '../../protocol/errors.js'
import { SpeakInputSchema, TranscribeInputSchema } from '../../protocol/task.js'
import type { SpeakInput, TaskOutput, TaskSpec, TranscribeInput, WorkerEvent } from '../../protocol/task.js'
import type { EventBus } from '../events/index.js'
import { LATENCY_EWMA_ALPHA } from '../workers/constants.js'
import type { Worker, WorkerState, WorkerStatus } from '../workers/types.js'
import { decodeToPcm16k } from './audio.js'
import {
  ENGINE_PACKAGES, MAX_AUDIO_BYTES, MAX_SPEAK_CHARS, STT_BYTES_PER_SECOND, STT_MODEL, STT_TIMEOUT_BASE_MS,
  STT_TIMEOUT_PER_AUDIO_SECOND_MS, TTS_ADVERTISED_VOICES, TTS_DEFAULT_VOICE, TTS_TIMEOUT_MS
} from './constants.js'
import { checkEspeak, checkPocketsphinx, modelPaths } from './engines.js'
import type { SpeechEngines } from './engines.js'
import { SpeechCancelledError, SpeechInputError, SpeechModelNotFoundError, SpeechTooLargeError } from './errors.js'
import { jsgfGrammar, loadDictionary, phraseWords, preparePhrases } from './grammar.js'
import { runProcess } from './process.js'
import { recognize } from './recognizer.js'
import type { RecognizeMode } from './recognizer.js'
import { synthesize } from './synth.js'

const log = logger('realm:speech')

/** What a run is handed besides its task (node/workers/types.ts RunContext) */
export interface SpeechRunContext {
  signal: AbortSignal
  emit: (event: WorkerEvent) => void
}

export interface SpeechWorkerComponents {
  id: string
  backend: 'stt' | 'tts'
  target: string
  engines: SpeechEngines
}

export interface SpeechWorkerOptions {
  probeIntervalMs: number
  probeTimeoutMs: number
  benchAfterFailures: number
  backoffBaseMs: number
  backoffMaxMs: number
  events?: EventBus
  kwsThreshold: number
  runTimeoutMs?: number
}

/** OpenAI `/v1/audio/speech` voice names: spoken with the model's own voice */
const OPENAI_VOICES = new Set(['alloy', 'ash', 'ballad', 'coral', 'echo', 'fable', 'nova', 'onyx', 'sage', 'shimmer', 'verse'])

/** Stopping the worker cuts a probe under way; not a failure */
class StoppedError extends Error {
  override name = 'StoppedError'
}

class ProbeTimeout extends Error {
  override name = 'ProbeTimeout'
}

export class SpeechWorker implements Worker {
  readonly id: string
  readonly backend: Backend
  private readonly kind: TaskKind
  private readonly target: string
  private readonly engines: SpeechEngines
  private readonly opts: SpeechWorkerOptions

  private state: WorkerState = 'starting'
  private models: ModelInfo[] = []
  private failures = 0
  private benchedFailures = 0
  private nextDelayMs: number
  private latencyMs?: number
  private benchedUntil?: string
  private lastProbe?: string
  private lastError?: string
  /** espeak-ng's version and the voices it had, so `--voices` runs only when the version changes */
  private voices?: { version: string, models: ModelInfo[] }

  private running = false
  private timer?: ReturnType<typeof setTimeout>
  private inflight?: Promise<WorkerStatus>
  private lifetime = new AbortController()
  private readonly listeners = new Set<(status: WorkerStatus) => void>()

  constructor (components: SpeechWorkerComponents, opts: SpeechWorkerOptions) {
    this.id = components.id
    this.backend = components.backend
    this.kind = components.backend === 'stt' ? 'transcribe' : 'speak'
    this.target = components.target
    this.engines = components.engines
    this.opts = opts
    this.nextDelayMs = opts.probeIntervalMs
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.lifetime = new AbortController()
    await this.probe()
  }

  async stop (): Promise<void> {
    this.running = false
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.lifetime.abort(new StoppedError('worker stopped'))
    await this.inflight
  }

  status (): WorkerStatus {
    const ok = this.state === 'ok'
    const status: WorkerStatus = {
      id: this.id,
      backend: this.backend,
      target: this.target,
      state: this.state,
      models: ok ? this.models.map(m => ({ ...m, kinds: [...m.kinds] })) : [],
      kinds: ok && this.models.length > 0 ? [this.kind] : [],
      failures: this.failures
    }
    if (this.latencyMs !== undefined) status.latencyMs = this.latencyMs
    if (this.benchedUntil !== undefined) status.benchedUntil = this.benchedUntil
    if (this.lastProbe !== undefined) status.lastProbe = this.lastProbe
    if (this.lastError !== undefined) status.lastError = this.lastError
    return status
  }

  probe (): Promise<WorkerStatus> {
    if (this.inflight !== undefined) return this.inflight
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const probe = this.runProbe().finally(() => {
      this.inflight = undefined
      this.schedule(this.nextDelayMs)
    })
    this.inflight = probe
    return probe
  }

  onChange (listener: (status: WorkerStatus) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /**
   * Runs one transcribe (stt) or speak (tts) task. Rejects with a RealmError whose code is one of
   * TASK_ERROR_CODES: INVALID_TASK (wrong kind, malformed or oversized input, undecodable audio,
   * unknown voice, phrases without known words), MODEL_NOT_FOUND, CANCELLED (signal aborted: the
   * engine processes are killed first), TIMEOUT, BACKEND_UNREACHABLE (engine not installed; the
   * message names the package), BACKEND_ERROR (engine failed).
   */
  async run (task: TaskSpec, ctx: SpeechRunContext): Promise<TaskOutput> {
    if (ctx.signal.aborted) throw new SpeechCancelledError()
    if (task.kind !== this.kind) throw new SpeechInputError(`a ${this.backend} worker runs ${this.kind} tasks, not ${String(task.kind)}`)
    try {
      if (task.kind === 'transcribe') return await this.transcribe(task.model, task.input, ctx)
      return await this.speak(task.model, task.input as SpeakInput, ctx)
    } catch (err) {
      if (isRealmError(err) && err.code === 'BACKEND_UNREACHABLE') this.schedule(0)
      if (ctx.signal.aborted && !(err instanceof SpeechCancelledError)) throw new SpeechCancelledError()
      throw err
    }
  }

  private async transcribe (model: string, raw: unknown, ctx: SpeechRunContext): Promise<TaskOutput> {
    if (!/^pocketsphinx(:(en-us|latest))?$/.test(model)) throw new SpeechModelNotFoundError(model)
    const audioField = (raw as { audio?: unknown } | null)?.audio
    // checked before the schema, so an oversized clip gets its own error and is never decoded
    if (typeof audioField === 'string' && base64Bytes(audioField) > MAX_AUDIO_BYTES) throw new SpeechTooLargeError('audio', MAX_AUDIO_BYTES, 'bytes')
    const parsed = TranscribeInputSchema.safeParse(raw)
    if (!parsed.success) throw new SpeechInputError(`invalid transcribe input: ${issueText(parsed.error.issues)}`)
    const input: TranscribeInput = parsed.data
    if (input.language !== undefined && !/^en(-us)?$/i.test(input.language)) {
      throw new SpeechInputError(`${STT_MODEL} transcribes English (en), not ${input.language}`, { language: input.language })
    }
    const audio = Buffer.from(input.audio, 'base64')
    if (audio.length === 0) throw new SpeechInputError('audio is empty')

    const pcm = await decodeToPcm16k(audio, input.mime, this.engines, { signal: ctx.signal, timeoutMs: this.opts.runTimeoutMs ?? STT_TIMEOUT_BASE_MS })
    const seconds = pcm.length / STT_BYTES_PER_SECOND
    const mode = await this.recognizeMode(input.phrases ?? [])
    if (ctx.signal.aborted) throw new SpeechCancelledError()
    let emitted = 0
    const result = await recognize(pcm, mode, this.engines, {
      signal: ctx.signal,
      timeoutMs: this.opts.runTimeoutMs ?? Math.round(STT_TIMEOUT_BASE_MS + STT_TIMEOUT_PER_AUDIO_SECOND_MS * seconds),
      onUtterance: text => {
        ctx.emit({ type: 'token', text: (emitted++ > 0 ? ' ' : '') + text })
      }
    })
    return { text: result.text, doneReason: 'stop', usage: { units: roundSeconds(seconds) } }
  }

  /**
   * The mode the phrases ask for: none → dictation; one phrase → keyword spotting (a grammar of
   * one phrase could only answer that phrase or nothing: the spotter answers the same question
   * without forcing a match); several → a grammar of them.
   */
  private async recognizeMode (phrases: readonly string[]): Promise<RecognizeMode> {
    if (phrases.length === 0) return { type: 'dictation' }
    const dictionary = await loadDictionary(modelPaths(this.engines).dict).catch(() => {
      throw new SpeechInputError('the pocketsphinx dictionary cannot be read: apt-get install pocketsphinx-en-us')
    })
    if (phrases.length === 1) {
      const words = phraseWords(phrases[0] ?? '')
      const unknown = words.filter(w => !dictionary.has(w))
      if (words.length === 0) throw new SpeechInputError('the keyword phrase has no words')
      if (unknown.length > 0) throw new SpeechInputError(`the keyword phrase has words ${STT_MODEL} does not know: ${unknown.join(', ')}`, { unknown })
      return { type: 'keyword', phrase: words.join(' '), threshold: this.opts.kwsThreshold }
    }
    const prepared = preparePhrases(phrases, dictionary)
    if (prepared.dropped.length > 0) log('%s: words not in the dictionary dropped: %s', this.id, prepared.dropped.join(' '))
    if (prepared.phrases.length === 0) throw new SpeechInputError(`no phrase has a word ${STT_MODEL} knows`, { dropped: prepared.dropped })
    // several phrases that normalise to one are the keyword question again
    if (prepared.phrases.length === 1) return { type: 'keyword', phrase: prepared.phrases[0] ?? '', threshold: this.opts.kwsThreshold }
    return { type: 'grammar', grammar: jsgfGrammar({ phrases: prepared.phrases }) }
  }

  private async speak (model: string, raw: SpeakInput, ctx: SpeechRunContext): Promise<TaskOutput> {
    const match = /^espeak-ng(?::(.+))?$/.exec(model)
    if (match === null) throw new SpeechModelNotFoundError(model)
    const text = (raw as { text?: unknown } | null)?.text
    if (typeof text === 'string' && text.length > MAX_SPEAK_CHARS) throw new SpeechTooLargeError('text', MAX_SPEAK_CHARS, 'characters')
    const parsed = SpeakInputSchema.safeParse(raw)
    if (!parsed.success) throw new SpeechInputError(`invalid speak input: ${issueText(parsed.error.issues)}`)
    const input = parsed.data
    const modelVoice = match[1] === undefined || match[1] === 'latest' ? TTS_DEFAULT_VOICE : match[1]
    const voice = input.voice === undefined || OPENAI_VOICES.has(input.voice.toLowerCase()) ? modelVoice : input.voice
    const speech = await synthesize(input.text, this.engines, {
      voice,
      ...(input.speed !== undefined ? { speed: input.speed } : {}),
      format: input.format ?? 'wav',
      signal: ctx.signal,
      timeoutMs: this.opts.runTimeoutMs ?? TTS_TIMEOUT_MS
    })
    const audio = { data: speech.data.toString('base64'), mime: speech.mime }
    ctx.emit({ type: 'audio', audio })
    return { audio, doneReason: 'stop', usage: { units: roundSeconds(speech.seconds) } }
  }

  private schedule (delayMs: number): void {
    if (!this.running) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.probe() }, delayMs)
    // the node's servers keep the process alive, not a probe timer
    this.timer.unref?.()
  }

  private async list (signal: AbortSignal): Promise<ModelInfo[]> {
    if (this.backend === 'stt') {
      await checkPocketsphinx(this.engines, signal)
      return [{ name: STT_MODEL, kinds: ['transcribe'] }]
    }
    const version = await checkEspeak(this.engines, signal)
    if (this.voices?.version !== version) this.voices = { version, models: await this.listVoices(signal) }
    return this.voices.models
  }

  /** `espeak-ng:<voice>` for the advertised voices espeak-ng has (`--voices` lists languages and aliases) */
  private async listVoices (signal: AbortSignal): Promise<ModelInfo[]> {
    const result = await runProcess(this.engines.espeak, ['--voices'], { engine: 'espeak-ng', pkg: ENGINE_PACKAGES.espeak, signal, timeoutMs: this.opts.probeTimeoutMs, maxOutputBytes: 1024 * 1024 })
    const have = new Set<string>()
    for (const line of result.stdout.toString('utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols[1] !== undefined) have.add(cols[1].toLowerCase())
      for (const alias of line.matchAll(/\(([a-z0-9-]+) \d+\)/gi)) have.add((alias[1] ?? '').toLowerCase())
    }
    const voices = TTS_ADVERTISED_VOICES.filter(v => have.has(v))
    // an espeak-ng without the advertised languages still speaks its own default
    if (voices.length === 0) return [{ name: `espeak-ng:${TTS_DEFAULT_VOICE}`, kinds: ['speak'] }]
    return voices.map(v => ({ name: `espeak-ng:${v}`, kinds: ['speak'] as TaskKind[] }))
  }

  private async runProbe (): Promise<WorkerStatus> {
    if (this.running && this.lifetime.signal.aborted) return this.status()
    const controller = new AbortController()
    const onStop = (): void => controller.abort(new StoppedError('worker stopped'))
    if (this.running) this.lifetime.signal.addEventListener('abort', onStop, { once: true })
    const timeout = setTimeout(() => controller.abort(new ProbeTimeout(`no answer within ${this.opts.probeTimeoutMs} ms`)), this.opts.probeTimeoutMs)
    const started = performance.now()
    try {
      const models = await this.list(controller.signal)
      this.healthy(models, performance.now() - started)
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : err
      if (reason instanceof StoppedError) return this.status()
      this.failed(reason)
    } finally {
      clearTimeout(timeout)
      this.lifetime.signal.removeEventListener('abort', onStop)
    }
    return this.status()
  }

  private healthy (models: ModelInfo[], roundTripMs: number): void {
    const wasBenched = this.state === 'benched'
    const stateChanged = this.state !== 'ok'
    const modelsChanged = JSON.stringify(models) !== JSON.stringify(this.models)
    this.state = 'ok'
    this.models = models
    this.failures = 0
    this.benchedFailures = 0
    this.benchedUntil = undefined
    this.lastError = undefined
    this.lastProbe = new Date().toISOString()
    const ewma = this.latencyMs === undefined ? roundTripMs : LATENCY_EWMA_ALPHA * roundTripMs + (1 - LATENCY_EWMA_ALPHA) * this.latencyMs
    this.latencyMs = Math.round(ewma * 100) / 100
    this.nextDelayMs = this.opts.probeIntervalMs
    if (wasBenched) {
      log('%s restored', this.id)
      this.emit('worker.restored', { models: this.models.map(m => m.name) })
    }
    if (modelsChanged) this.emit('worker.models', { models: this.models })
    if (stateChanged || modelsChanged) this.notify()
  }

  private failed (err: unknown): void {
    this.failures++
    this.lastProbe = new Date().toISOString()
    this.lastError = errorMessage(err)
    log('%s probe failed (%d): %s', this.id, this.failures, this.lastError)
    if (this.state === 'benched') {
      this.benchedFailures++
      this.setBackoff()
      return
    }
    if (this.failures < this.opts.benchAfterFailures) {
      this.nextDelayMs = this.opts.probeIntervalMs
      return
    }
    const hadModels = this.models.length > 0
    this.state = 'benched'
    this.models = []
    this.benchedFailures = 0
    this.setBackoff()
    log('%s benched: %s', this.id, this.lastError)
    this.emit('worker.benched', { error: this.lastError, failures: this.failures, benchedUntil: this.benchedUntil })
    if (hadModels) this.emit('worker.models', { models: [] })
    this.notify()
  }

  private setBackoff (): void {
    this.nextDelayMs = Math.min(this.opts.backoffBaseMs * 2 ** Math.min(this.benchedFailures, 30), this.opts.backoffMaxMs)
    this.benchedUntil = new Date(Date.now() + this.nextDelayMs).toISOString()
  }

  private emit (type: string, fields: Record<string, unknown>): void {
    this.opts.events?.emit(type, { id: this.id, backend: this.backend, target: this.target, ...fields })
  }

  private notify (): void {
    const status = this.status()
    for (const listener of [...this.listeners]) {
      try {
        listener(status)
      } catch (err) {
        log.error('%s change listener failed: %s', this.id, errorMessage(err))
      }
    }
  }
}

/** Bytes a base64 string decodes to */
function base64Bytes (b64: string): number {
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0
  return Math.floor(b64.length * 3 / 4) - padding
}

function roundSeconds (s: number): number {
  return Math.round(s * 100) / 100
}

function issueText (issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>, message: string }>): string {
  const first = issues[0]
  if (first === undefined) return 'malformed'
  const path = first.path.map(p => String(p)).join('.')
  return path === '' ? first.message : `${path}: ${first.message}`
}
