/**
 * Daily spend of the paid backends (claude, hf): what each task cost, added up per backend and
 * UTC day in a store (the db bucket `spend` in the node, memory in tests), and the cap check a
 * task passes before it starts.
 */
import { z } from 'zod'
import type { TaskOutput, TaskSpec, Usage } from '../../protocol/task.js'
import { CHARS_PER_TOKEN_ESTIMATE } from './constants.js'
import { SpendCapError } from './errors.js'

/** One backend's spend on one UTC day, as stored */
export const SpendRecordSchema = z.object({
  /** USD spent */
  usd: z.number().nonnegative().max(1e12),
  /** tasks counted */
  tasks: z.number().int().nonnegative().max(1e15)
}).strict()
export type SpendRecord = z.infer<typeof SpendRecordSchema>

/**
 * Where spend records live, keyed `${backend}:${YYYY-MM-DD}` (UTC). A `BucketStore<SpendRecord>`
 * of the node's db fits as it is: `db.bucket(Bucket.spend, SpendRecordSchema)`.
 */
export interface SpendStore {
  get (key: string): Promise<SpendRecord | undefined>
  put (key: string, value: SpendRecord): Promise<void>
}

/** A spend store in memory (tests, or a node without a db) */
export function memorySpendStore (): SpendStore & { readonly records: Map<string, SpendRecord> } {
  const records = new Map<string, SpendRecord>()
  return {
    records,
    async get (key) {
      const record = records.get(key)
      return record === undefined ? undefined : { ...record }
    },
    async put (key, value) {
      records.set(key, { ...value })
    }
  }
}

/** Prices of one paid backend */
export interface Prices {
  inputUsdPerMTok: number
  outputUsdPerMTok: number
  usdPerImage: number
}

const TOKENS_PER_MTOK = 1_000_000

/** USD a finished task cost: its tokens at the backend's prices, plus its images */
export function taskCost (usage: Usage | undefined, images: number, prices: Prices): number {
  const input = usage?.promptTokens ?? 0
  const output = usage?.completionTokens ?? 0
  return (input * prices.inputUsdPerMTok + output * prices.outputUsdPerMTok) / TOKENS_PER_MTOK + images * prices.usdPerImage
}

/** The text a token-priced task sends, for a token estimate */
function inputText (task: TaskSpec): string {
  switch (task.kind) {
    case 'chat': return task.input.messages.map(m => m.content).join('\n')
    case 'generate': return `${task.input.system ?? ''}\n${task.input.prompt}`
    case 'embed': return typeof task.input.input === 'string' ? task.input.input : task.input.input.join('\n')
    default: return ''
  }
}

/**
 * The usage a task is charged for: the backend's, with the token counts it left out estimated
 * from the text (a provider that reports no usage must not spend for free)
 */
export function billableUsage (task: TaskSpec, output: TaskOutput): Usage {
  const usage: Usage = { ...output.usage }
  // images and audio are priced per item, not per token
  if (task.kind !== 'chat' && task.kind !== 'generate' && task.kind !== 'embed') return usage
  if (usage.promptTokens === undefined) usage.promptTokens = Math.ceil(inputText(task).length / CHARS_PER_TOKEN_ESTIMATE)
  if (usage.completionTokens === undefined) usage.completionTokens = Math.ceil((output.text ?? '').length / CHARS_PER_TOKEN_ESTIMATE)
  return usage
}

/** `YYYY-MM-DD` of a time, in UTC */
export function utcDay (ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

/** Writes to one store are serialised, so two workers of one backend never lose each other's spend */
const storeLocks = new WeakMap<SpendStore, Promise<unknown>>()

function locked<T> (store: SpendStore, job: () => Promise<T>): Promise<T> {
  const previous = storeLocks.get(store) ?? Promise.resolve()
  const next = previous.catch(() => {}).then(job)
  storeLocks.set(store, next)
  return next
}

export interface SpendMeterInit {
  backend: string
  store: SpendStore
  capUsd: number
  now: () => number
}

/** One paid backend's daily spend: checks the cap before a task, adds its cost after */
export class SpendMeter {
  readonly backend: string
  readonly capUsd: number
  private readonly store: SpendStore
  private readonly now: () => number
  /** the last spend read or written, so `status()` can answer without I/O */
  private cache: { day: string, usd: number } = { day: '', usd: 0 }

  constructor (init: SpendMeterInit) {
    this.backend = init.backend
    this.store = init.store
    this.capUsd = init.capUsd
    this.now = init.now
  }

  /** today's key in the store */
  private key (day: string): string {
    return `${this.backend}:${day}`
  }

  /** today (UTC) */
  day (): string {
    return utcDay(this.now())
  }

  /** what the last read or write saw for today; 0 once the day has changed */
  cachedUsd (): number {
    return this.cache.day === this.day() ? this.cache.usd : 0
  }

  /** true when a task may not start: today's spend (as last seen) has reached the cap */
  capped (): boolean {
    return this.cachedUsd() >= this.capUsd
  }

  /** today's spend, read from the store */
  async spentUsd (): Promise<number> {
    const day = this.day()
    const record = await this.store.get(this.key(day))
    this.cache = { day, usd: record?.usd ?? 0 }
    return this.cache.usd
  }

  /** rejects with SpendCapError (SPEND_CAP) when today's spend has reached the cap */
  async check (): Promise<void> {
    const spent = await this.spentUsd()
    if (spent >= this.capUsd) throw new SpendCapError(this.backend, this.capUsd, spent)
  }

  /** adds one task's cost to today's spend */
  async record (usd: number): Promise<void> {
    const cost = Number.isFinite(usd) && usd > 0 ? usd : 0
    await locked(this.store, async () => {
      const day = this.day()
      const key = this.key(day)
      const record = await this.store.get(key) ?? { usd: 0, tasks: 0 }
      const next = { usd: record.usd + cost, tasks: record.tasks + 1 }
      await this.store.put(key, next)
      this.cache = { day, usd: next.usd }
    })
  }
}
