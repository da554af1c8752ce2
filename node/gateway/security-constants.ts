/** Defaults and fixed values of the gateway's browser-facing protections (security.ts) */

/** Most header bytes of one request; Node answers 431 above it (Node's own default, made explicit) */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024
/** Open connections one client address may hold; a browser uses 6 per host, a busy SDK a few dozen */
export const DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 64
/** Realm-route requests per second one client address earns (the web UI polls about once a second) */
export const DEFAULT_RATE_LIMIT_PER_S = 20
/** Realm-route requests one client address may make at once before the rate applies */
export const DEFAULT_RATE_LIMIT_BURST = 200
/** Messages per second one events-WebSocket client may send (subscribe, unsubscribe, ping) */
export const DEFAULT_WS_MESSAGES_PER_S = 10
/** Messages an events-WebSocket client may send at once before that rate applies */
export const WS_MESSAGES_BURST = 20

/** Client addresses whose rate is remembered; past this the longest-idle are forgotten (bounded memory) */
export const MAX_TRACKED_CLIENTS = 65_536
/** How often idle rate buckets are swept, ms (lazily, on a request: no timer to stop) */
export const RATE_SWEEP_INTERVAL_MS = 60_000
/**
 * IPv6 clients are limited per /64: one host usually holds a whole /64, so per-address limits
 * would not limit it at all. 4 groups of 16 bits.
 */
export const IPV6_PREFIX_GROUPS = 4

/** `Strict-Transport-Security` max-age: one year, the value browsers' preload lists expect */
export const HSTS_MAX_AGE_S = 31_536_000

/**
 * CSP of every response that is not the web UI (JSON, NDJSON, SSE, errors): nothing may load,
 * run or frame it, should a browser ever render one as a document.
 */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/** Methods that change state: they need a same-origin (or allowed) browser request */
export const STATE_CHANGING_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Path prefixes of the Ollama and OpenAI compatibility APIs (where `http.cors_origins` applies) */
export const COMPAT_PREFIXES = ['/api/', '/v1/'] as const
/** Path prefix of the realm API (rate limited per client) */
export const REALM_PREFIX = '/realm/'

/** Methods a CORS preflight is told the compatibility API accepts */
export const CORS_ALLOW_METHODS = 'GET, HEAD, POST, DELETE, OPTIONS'
/** Response headers a cross-origin page may read (the busy answers' hints, the task id) */
export const CORS_EXPOSE_HEADERS = 'Retry-After, retry-after-ms, X-Task-Id'
/** How long a browser may cache a preflight answer, s */
export const CORS_MAX_AGE_S = 600
/** Longest `Access-Control-Request-Headers` echoed back (real ones are a few hundred bytes) */
export const MAX_CORS_REQUEST_HEADERS_CHARS = 2048

/** Longest host or origin pattern in a setting (a DNS name is at most 253 characters) */
export const MAX_HOST_PATTERN_CHARS = 300
