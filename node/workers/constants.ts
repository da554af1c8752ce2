/** Defaults of the worker adapters (see WorkerInit in types.ts) */

/** How often a healthy worker probes its backend */
export const PROBE_INTERVAL_MS = 5000
/** A probe with no complete answer within this is a failure */
export const PROBE_TIMEOUT_MS = 3000
/** Consecutive failed probes that bench a worker */
export const BENCH_AFTER_FAILURES = 2
/** First retry delay of a benched worker; doubles on each further failure */
export const BACKOFF_BASE_MS = 1000
/** Longest retry delay of a benched worker */
export const BACKOFF_MAX_MS = 60_000
/** Weight of the newest probe round trip in the latency EWMA */
export const LATENCY_EWMA_ALPHA = 0.3
/** A model listing larger than this is not a backend's answer (Ollama's list of 100 models is ~40 KB) */
export const MAX_LISTING_BYTES = 8 * 1024 * 1024
/** New Ollama models whose context size is looked up (`/api/show`) per probe, so a probe stays short */
export const SHOW_LOOKUPS_PER_PROBE = 4

/** `detectWorkers`: time each usual port has to answer */
export const DETECT_TIMEOUT_MS = 500
export const DETECT_HOST = '127.0.0.1'
/** Usual local ports: Ollama, llama.cpp server (OpenAI-compatible), AUTOMATIC1111 */
export const DEFAULT_PORTS = { ollama: 11434, openai: 8080, sd: 7860 } as const

/** Targets of the backends that may omit `=TARGET` */
export const DEFAULT_TARGETS = {
  ollama: `http://127.0.0.1:${DEFAULT_PORTS.ollama}`,
  openai: `http://127.0.0.1:${DEFAULT_PORTS.openai}`,
  sd: `http://127.0.0.1:${DEFAULT_PORTS.sd}`,
  claude: 'https://api.anthropic.com',
  hf: 'https://router.huggingface.co'
} as const

/** Longest `--worker` value accepted */
export const MAX_SPEC_LENGTH = 2048
