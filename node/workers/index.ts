/**
 * Workers: adapters that attach an AI backend on this machine (`--worker BACKEND=TARGET`),
 * probe its health and advertise its models. See DESIGN.md "Task kinds and backends" and
 * "Routing, queue, health".
 */
import type { Backend } from '../../protocol/kinds.js'
import type { Lister, ListerComponents } from './listing.js'
import { OllamaLister } from './ollama.js'
import { OpenAILister } from './openai.js'
import { SdLister } from './sd.js'
import { connectionOf, redactTarget, workerId } from './spec.js'
import { UnsupportedBackendError } from './errors.js'
import { ProbingWorker } from './worker.js'
import type { Worker, WorkerInit, WorkerSpec } from './types.js'

export type { DetectWorkersInit, Worker, WorkerInit, WorkerSpec, WorkerState, WorkerStatus } from './types.js'
export { connectionOf, parseWorkerSpec, redactTarget, workerId } from './spec.js'
export type { Connection } from './spec.js'
export { detectWorkers } from './detect.js'
export { isEmbeddingModel, isVisionModel, ollamaKinds } from './ollama.js'
export type { OllamaDetails } from './ollama.js'
export { openaiKinds } from './openai.js'
export * from './errors.js'
export * from './constants.js'

const LISTERS: Partial<Record<Backend, (components: ListerComponents) => Lister>> = {
  ollama: components => new OllamaLister(components),
  openai: components => new OpenAILister(components),
  sd: components => new SdLister(components)
  // claude, hf, agent, stt, tts: a later issue
}

/**
 * A worker for one backend. Throws UnsupportedBackendError (UNSUPPORTED_BACKEND) for `claude`,
 * `hf`, `agent`, `stt` and `tts`, which are not attached yet.
 */
export function createWorker (spec: WorkerSpec, init: WorkerInit = {}): Worker {
  const makeLister = LISTERS[spec.backend]
  if (makeLister === undefined) throw new UnsupportedBackendError(spec.backend)
  const lister = makeLister({ conn: connectionOf(spec), fetch: init.fetch ?? globalThis.fetch })
  const url = new URL(spec.target)
  const secrets = [decodeURIComponent(url.username), decodeURIComponent(url.password), ...[...url.searchParams.values()]]
    .filter(s => s !== '' && !redactTarget(spec.target).includes(s))
  return new ProbingWorker({ id: workerId(spec), backend: spec.backend, target: redactTarget(spec.target), lister, secrets }, init)
}
