/** What every backend adapter produces from one probe, and the checks shared by all of them */
import { logger } from '@libp2p/logger'
import { ModelInfoSchema, TASK_KINDS } from '../../protocol/kinds.js'
import type { ModelInfo, TaskKind } from '../../protocol/kinds.js'
import { MAX_WORKER_MODELS } from '../../protocol/presence.js'
import type { TaskOutput, TaskSpec } from '../../protocol/task.js'
import type { RunSession } from './session.js'
import type { Connection } from './spec.js'

const log = logger('realm:workers')

/** One probe's result: the models (sorted by name) and memory where the backend reports it */
export interface Listing {
  models: ModelInfo[]
  vramUsed?: number
  vramTotal?: number
}

/** A backend adapter: lists what the backend serves. Rejects when the backend is not healthy */
export interface Lister {
  list (signal: AbortSignal): Promise<Listing>
}

export interface ListerComponents {
  conn: Connection
  fetch: typeof fetch
}

/** A backend adapter: lists what the backend serves (probes) and runs tasks on it */
export interface Adapter extends Lister {
  /** the task kinds this backend can run at all; others are INVALID_TASK before any request */
  readonly kinds: readonly TaskKind[]
  /** runs one task through the session, which maps failures to the run's codes (session.ts) */
  run (task: TaskSpec, session: RunSession): Promise<TaskOutput>
}

/**
 * Keeps the models that fit the beacon's schema, sorted by name, at most MAX_WORKER_MODELS.
 */
export function finishModels (candidates: ModelInfo[], backend: string): ModelInfo[] {
  const seen = new Set<string>()
  const models: ModelInfo[] = []
  for (const candidate of candidates) {
    const parsed = ModelInfoSchema.safeParse(candidate)
    if (!parsed.success) {
      log('%s: skipping model %j: %s', backend, candidate.name, parsed.error.issues[0]?.message)
      continue
    }
    if (seen.has(parsed.data.name)) continue
    seen.add(parsed.data.name)
    models.push(parsed.data)
  }
  models.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  if (models.length > MAX_WORKER_MODELS) log('%s: advertising %d of %d models', backend, MAX_WORKER_MODELS, models.length)
  return models.slice(0, MAX_WORKER_MODELS)
}

/** Union of the models' kinds, in TASK_KINDS order */
export function kindsOf (models: ModelInfo[]): TaskKind[] {
  const all = new Set(models.flatMap(m => m.kinds))
  return TASK_KINDS.filter(k => all.has(k))
}

/** A short string field, or undefined when absent or longer than `max` */
export function shortString (value: unknown, max: number): string | undefined {
  return typeof value === 'string' && value !== '' && value.length <= max ? value : undefined
}
