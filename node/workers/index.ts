/**
 * Workers: adapters that attach an AI backend on this machine (`--worker BACKEND=TARGET`),
 * probe its health, advertise its models and run tasks on it. See DESIGN.md "Task kinds and
 * backends" and "Routing, queue, health".
 */
import type { Backend } from '../../protocol/kinds.js'
import { AgentAdapter } from './agent.js'
import { ClaudeAdapter } from './claude.js'
import { UnsupportedBackendError } from './errors.js'
import { HfAdapter } from './hf.js'
import type { Adapter } from './listing.js'
import { OllamaAdapter } from './ollama.js'
import { OpenAIAdapter } from './openai.js'
import { isPaidBackend, paidApiKey, paidTerms } from './paid.js'
import { SdAdapter } from './sd.js'
import { connectionOf, parseSpecModel, redactTarget, workerId } from './spec.js'
import type { Connection } from './spec.js'
import { SpendMeter, memorySpendStore } from './spend.js'
import { ProbingWorker } from './worker.js'
import type { SpecModel, Worker, WorkerInit, WorkerSpec } from './types.js'

export type { DetectWorkersInit, PaidInit, RunContext, SpecModel, Worker, WorkerInit, WorkerSpec, WorkerState, WorkerStatus } from './types.js'
export { connectionOf, parseSpecModel, parseWorkerSpec, redactTarget, workerId } from './spec.js'
export type { Connection } from './spec.js'
export { detectWorkers } from './detect.js'
export { isEmbeddingModel, isVisionModel, ollamaKinds } from './ollama.js'
export type { OllamaDetails } from './ollama.js'
export { openaiKinds } from './openai.js'
export { hfKinds } from './hf.js'
export { legacyPrompt } from './agent.js'
export type { AgentContract } from './agent.js'
export { paidInitFromConfig } from './paid.js'
export { SpendRecordSchema, billableUsage, memorySpendStore, taskCost, utcDay } from './spend.js'
export type { SpendRecord, SpendStore } from './spend.js'
export * from './errors.js'
export * from './constants.js'

type AdapterFactory = (conn: Connection, fetch: typeof globalThis.fetch, spec: WorkerSpec, init: WorkerInit) => Adapter

const ADAPTERS: Partial<Record<Backend, AdapterFactory>> = {
  ollama: (conn, fetch) => new OllamaAdapter({ conn, fetch }),
  openai: (conn, fetch) => new OpenAIAdapter({ conn, fetch }),
  sd: (conn, fetch) => new SdAdapter({ conn, fetch }),
  claude: (conn, fetch) => new ClaudeAdapter({ conn, fetch }),
  hf: (conn, fetch, spec, init) => new HfAdapter({ conn, fetch, models: hfModels(spec, init) }),
  agent: (conn, fetch, spec) => new AgentAdapter({
    conn,
    fetch,
    ...(spec.model !== undefined ? { model: spec.model } : {}),
    ...(spec.kinds !== undefined ? { kinds: spec.kinds } : {}),
    ...(spec.vision === true ? { vision: true } : {})
  })
  // stt, tts: a later issue
}

/** The models of an hf worker: its spec's, else config `paid.hf_models` (entries that are not model names skipped) */
function hfModels (spec: WorkerSpec, init: WorkerInit): SpecModel[] {
  if (spec.models !== undefined && spec.models.length > 0) return spec.models
  return (init.paid?.hf?.models ?? []).map(parseSpecModel).filter((m): m is SpecModel => m !== undefined)
}

/**
 * A worker for one backend. Throws UnsupportedBackendError (UNSUPPORTED_BACKEND) for `stt` and
 * `tts`, which are not attached yet. Paid backends (`claude`, `hf`) take their key from the
 * worker URL, the environment or `init.paid`, and keep their daily spend in `init.spend`.
 */
export function createWorker (spec: WorkerSpec, init: WorkerInit = {}): Worker {
  const makeAdapter = ADAPTERS[spec.backend]
  if (makeAdapter === undefined) throw new UnsupportedBackendError(spec.backend)
  const url = new URL(spec.target)
  const secrets = [decodeURIComponent(url.username), decodeURIComponent(url.password), ...[...url.searchParams.values()]]
    .filter(s => s !== '' && !redactTarget(spec.target).includes(s))
  let apiKey: string | undefined
  let spend: ConstructorParameters<typeof ProbingWorker>[0]['spend']
  if (isPaidBackend(spec.backend)) {
    const paid = init.paid?.[spec.backend]
    apiKey = paidApiKey(spec, spec.backend, paid, init.env ?? process.env)
    if (apiKey !== undefined) secrets.push(apiKey)
    const { capUsd, prices } = paidTerms(spec.backend, paid)
    spend = { meter: new SpendMeter({ backend: spec.backend, store: init.spend ?? memorySpendStore(), capUsd, now: init.now ?? Date.now }), prices }
  }
  let conn = connectionOf(spec, apiKey)
  // hf serves the router's /v1 routes and the task API's /hf-inference routes from one host
  if (spec.backend === 'hf') conn = { ...conn, base: conn.base.replace(/\/v1$/, '') }
  const adapter = makeAdapter(conn, init.fetch ?? globalThis.fetch, spec, init)
  return new ProbingWorker({ id: workerId(spec), backend: spec.backend, target: redactTarget(spec.target), adapter, conn, secrets, ...(spend !== undefined ? { spend } : {}) }, init)
}
