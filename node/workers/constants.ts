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

/** A run whose backend sends no byte for this long fails with TIMEOUT (a model loading can take a minute) */
export const IDLE_TIMEOUT_MS = 120_000
/** Largest JSON or binary answer read from a backend in a run (4 images of ~16 MiB base64 each, with room) */
export const MAX_ANSWER_BYTES = 96 * 1024 * 1024
/** Longest NDJSON line or SSE event read from a stream (one image event of an agent fits) */
export const MAX_STREAM_LINE_CHARS = 24 * 1024 * 1024
/** A failed run makes the next probe happen after this, instead of waiting for the probe interval */
export const RUN_FAILURE_PROBE_DELAY_MS = 0
/** Time a best-effort request made while cancelling (A1111 `/interrupt`) has to answer */
export const CANCEL_REQUEST_TIMEOUT_MS = 2000

/** Largest error answer read from a backend (its message is all that is kept) */
export const MAX_ERROR_BODY_BYTES = 64 * 1024
/** Longest backend error message repeated in a run's error */
export const MAX_ERROR_MESSAGE_CHARS = 500
/** Spend is shown rounded to a millionth of a USD */
export const USD_ROUNDING = 1e6

/** AUTOMATIC1111: how often `/sdapi/v1/progress` is polled while txt2img runs */
export const SD_PROGRESS_POLL_MS = 250

/** The Anthropic API version the claude adapter speaks (sent as `anthropic-version`) */
export const ANTHROPIC_VERSION = '2023-06-01'
/** `max_tokens` is required by the Messages API: used when the task sets no maxTokens */
export const CLAUDE_DEFAULT_MAX_TOKENS = 4096
/** Models listed per `GET /v1/models` page (the API's maximum) */
export const CLAUDE_MODELS_PAGE_LIMIT = 1000
/** Pages of `GET /v1/models` followed per probe, so a probe stays short */
export const CLAUDE_MODELS_MAX_PAGES = 5
/** Anthropic's temperature range is 0..1 (the realm's is 0..5) */
export const CLAUDE_MAX_TEMPERATURE = 1

/** OpenAI `/v1/audio/speech` voice when the task names none */
export const OPENAI_DEFAULT_VOICE = 'alloy'

/** Environment variables paid backends read their API key from */
export const API_KEY_ENV_VARS = { claude: 'ANTHROPIC_API_KEY', hf: 'HF_TOKEN' } as const
/** Rough characters per token, to estimate input tokens where a backend reports none (HF embeddings) */
export const CHARS_PER_TOKEN_ESTIMATE = 4

/**
 * Defaults of the paid backends: a small daily cap (a key left in a config costs at most this a
 * day) and list prices per million tokens (Claude Sonnet; HF providers vary, set your own).
 */
export const PAID_DEFAULTS = {
  claude: { dailyCapUsd: 1, inputUsdPerMTok: 3, outputUsdPerMTok: 15, usdPerImage: 0 },
  hf: { dailyCapUsd: 1, inputUsdPerMTok: 1, outputUsdPerMTok: 1, usdPerImage: 0.05 }
} as const

/** The contract id a realm agent names in `GET /health` (docs/agent-contract.md) */
export const AGENT_CONTRACT = 'rentahal-agent/1'
/** The model an agent serves when `agent=URL` names none and it has no `GET /models` */
export const AGENT_DEFAULT_MODEL = 'agent'
