/**
 * Offline speech: `stt=pocketsphinx` (transcribe) and `tts=espeak-ng` (speak) workers, the
 * engine checks `realm doctor` and the UI show, and a streaming voice session (wake word →
 * command → prompt) for the gateway's microphone WebSocket. The engines are Debian packages
 * (espeak-ng, pocketsphinx + pocketsphinx-en-us, ffmpeg, sox); a node without them keeps
 * working and its speech workers say what to install. See DESIGN.md "Task kinds and backends".
 *
 * Transcribe input (TranscribeInputSchema) picks the recogniser:
 * - no `phrases`: free dictation with the en-us language model (poor, but any words);
 * - one phrase: keyword spotting — `text` is the phrase when it was heard, else '' (the wake word:
 *   `phrases: ['computer']`);
 * - several phrases: a JSGF grammar of them — `text` is one of them, or '' when none matched.
 */
import { PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS, BACKOFF_BASE_MS, BACKOFF_MAX_MS } from '../workers/constants.js'
import { workerId } from '../workers/spec.js'
import type { Worker, WorkerInit } from '../workers/types.js'
import { KWS_THRESHOLD } from './constants.js'
import { resolveEngines } from './engines.js'
import type { SpeechEngines } from './engines.js'
import { InvalidWorkerSpecError } from '../workers/errors.js'
import { UnsupportedSpeechTargetError } from './errors.js'
import { SpeechWorker } from './worker.js'

export { checkSpeechEngines, resolveEngines } from './engines.js'
export type { EngineCheck, SpeechEngines, SpeechEnginesReport } from './engines.js'
export { SpeechSession, createSpeechSession } from './session.js'
export type { SpeechSessionEvent, SpeechSessionInit, SpeechSessionState } from './session.js'
export { SpeechWorker } from './worker.js'
export type { SpeechRunContext } from './worker.js'
export { encodeWav, parseWav, sniffAudio } from './wav.js'
export type { WavInfo } from './wav.js'
export * from './errors.js'
export * from './constants.js'

export interface SpeechWorkerSpec {
  backend: 'stt' | 'tts'
  /** `pocketsphinx` (stt) or `espeak-ng` (tts); an http(s) URL is the openai adapter's (UNSUPPORTED_BACKEND here) */
  target: string
}

export interface SpeechWorkerInit extends WorkerInit {
  /** engine binaries and the pocketsphinx model folder. Default: on PATH, /usr/share/pocketsphinx/model/en-us */
  engines?: Partial<SpeechEngines>
  /**
   * consecutive failed probes that bench the worker. Default 1, not WorkerInit's 2: a missing
   * engine does not come back by probing again soon
   */
  benchAfterFailures?: number
  /** keyword-spotting threshold of one-phrase transcribe tasks. Default 1e-40 (KWS_THRESHOLD) */
  kwsThreshold?: number
  /** time limit of each engine process of a run. Default: speak 60 s; transcribe 30 s + 2 s per second of audio */
  runTimeoutMs?: number
}

/** Engine names a speech target may give, per backend */
const ENGINES = { stt: 'pocketsphinx', tts: 'espeak-ng' } as const

/**
 * A worker for `stt=pocketsphinx` or `tts=espeak-ng`. Throws UnsupportedSpeechTargetError
 * (UNSUPPORTED_BACKEND) for `stt=URL` / `tts=URL` (the openai adapter serves those), and
 * InvalidWorkerSpecError (INVALID_WORKER_SPEC) for another engine name.
 */
export function createSpeechWorker (spec: SpeechWorkerSpec, init: SpeechWorkerInit = {}): Worker {
  const engine = ENGINES[spec.backend]
  if (engine === undefined) throw new InvalidWorkerSpecError(`not a speech backend: ${String(spec.backend)}`)
  if (/^https?:/i.test(spec.target)) throw new UnsupportedSpeechTargetError(spec.backend, spec.target)
  if (spec.target !== engine) throw new InvalidWorkerSpecError(`${spec.backend} takes ${engine} or an http(s) URL, not ${spec.target.slice(0, 64)}`)
  return new SpeechWorker({
    id: workerId({ backend: spec.backend, target: spec.target }),
    backend: spec.backend,
    target: spec.target,
    engines: resolveEngines(init.engines)
  }, {
    probeIntervalMs: init.probeIntervalMs ?? PROBE_INTERVAL_MS,
    probeTimeoutMs: init.probeTimeoutMs ?? PROBE_TIMEOUT_MS,
    benchAfterFailures: Math.max(1, init.benchAfterFailures ?? 1),
    backoffBaseMs: init.backoffBaseMs ?? BACKOFF_BASE_MS,
    backoffMaxMs: Math.max(init.backoffBaseMs ?? BACKOFF_BASE_MS, init.backoffMaxMs ?? BACKOFF_MAX_MS),
    kwsThreshold: init.kwsThreshold ?? KWS_THRESHOLD,
    ...(init.events !== undefined ? { events: init.events } : {}),
    ...(init.runTimeoutMs !== undefined ? { runTimeoutMs: init.runTimeoutMs } : {})
  })
}
