/** Limits and fixed values shared by the Ollama and OpenAI compatibility routes */

/** Largest JSON body of a route that carries images or audio inline (chat, generate, transcription) */
export const MAX_MEDIA_BODY_BYTES = 32 * 1024 * 1024
/** Largest JSON body of a text-only route that may carry many inputs (embeddings) */
export const MAX_TEXT_BODY_BYTES = 8 * 1024 * 1024
/** Largest body of a route whose fields are all short (images, speech): prompts are ≤ 20 000 chars */
export const MAX_SMALL_BODY_BYTES = 1024 * 1024
/** Largest body of a control route (show, pull) */
export const MAX_CONTROL_BODY_BYTES = 64 * 1024
/** Largest audio file a transcription accepts: what fits one task's base64 payload (~12 MiB) */
export const MAX_AUDIO_FILE_BYTES = 12 * 1024 * 1024

/**
 * A streaming answer sends its headers with its first chunk, so a failure before any output still
 * gets a real HTTP status (as Ollama does). A task that waits longer than this in a queue gets its
 * headers anyway, so HTTP clients with a headers timeout (undici: 300 s) keep waiting.
 */
export const STREAM_HEADERS_AFTER_MS = 15_000
/** SSE comment sent this often while an OpenAI stream has nothing to say (NDJSON has no such line) */
export const SSE_KEEPALIVE_MS = 15_000

/** `Retry-After` when the task manager gives no hint, in seconds */
export const DEFAULT_RETRY_AFTER_S = 5

/** How long `/api/ps` says a loaded model stays loaded: Ollama's default keep_alive (5 min) */
export const OLLAMA_KEEP_ALIVE_MS = 5 * 60 * 1000
