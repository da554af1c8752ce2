/**
 * The gateway's browser-facing protections (DESIGN.md "External contract"), one middleware in
 * front of every route and the same checks on the events WebSocket upgrade:
 * - `Host` must be a name the node answers to (DNS rebinding) → 421 `HOST_NOT_ALLOWED`;
 * - a browser's state-changing request (POST/PUT/PATCH/DELETE) and the WebSocket need the node's
 *   own origin or an allowed one, and are refused when `Sec-Fetch-Site: cross-site` → 403
 *   `ORIGIN_NOT_ALLOWED`. Requests without `Origin` (curl, SDKs, the ollama and openai clients)
 *   are not browsers' and pass;
 * - no CORS headers, except for `http.cors_origins` on the Ollama/OpenAI routes;
 * - every answer carries a Content-Security-Policy, `nosniff`, `no-referrer`, no framing, and
 *   HSTS over TLS; error bodies are JSON with `<`, `>`, `&` escaped;
 * - per-client limits: open connections, realm-route request rate (429 `RATE_LIMITED`).
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { hostname as machineHostname } from 'node:os'
import type { Context, Next } from 'koa'
import { logger } from '@libp2p/logger'
import type { RealmConfig } from '../config/index.js'
import { toErrorShape } from './errors.js'
import { CSP as UI_CSP } from './ui.js'
import {
  API_CSP, COMPAT_PREFIXES, CORS_ALLOW_METHODS, CORS_EXPOSE_HEADERS, CORS_MAX_AGE_S, DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
  DEFAULT_MAX_HEADER_BYTES, DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_S, DEFAULT_WS_MESSAGES_PER_S, HSTS_MAX_AGE_S,
  MAX_CORS_REQUEST_HEADERS_CHARS, REALM_PREFIX, STATE_CHANGING_METHODS
} from './security-constants.js'
import {
  HostPolicy, OriginList, clientAddress, isLoopbackIp, limitKey, normalizeOrigin, parseHost, requestHost, requestScheme
} from './security-checks.js'
import { ConnectionLimiter, RateLimiter } from './security-limits.js'
import { tlsFromConfig, type TlsMaterial } from './security-tls.js'

export { TlsConfigError, loadTlsFiles, type TlsMaterial } from './security-tls.js'

export interface GatewaySecurityInit {
  /** certificate and key: the gateway serves HTTPS (and sends HSTS). Default: plain HTTP */
  tls?: TlsMaterial
  /** trust `X-Forwarded-For` (last entry), `-Proto`, `-Host` from a reverse proxy. Default false */
  trustProxy?: boolean
  /** `http.allowed_hosts`: names served besides localhost and IP addresses. Default [] */
  allowedHosts?: string[]
  /** `http.allowed_origins`: origins besides the node's own that may change state. Default [] */
  allowedOrigins?: string[]
  /** `http.cors_origins`: origins given CORS access to the Ollama/OpenAI routes. Default [] */
  corsOrigins?: string[]
  /** Node's `maxHeaderSize`. Default DEFAULT_MAX_HEADER_BYTES (16 KiB) */
  maxHeaderBytes?: number
  /** open connections per client address. Default DEFAULT_MAX_CONNECTIONS_PER_CLIENT (64) */
  maxConnectionsPerClient?: number
  /** realm-route requests per second per client; 0: no limit. Default DEFAULT_RATE_LIMIT_PER_S (20) */
  rateLimitPerS?: number
  /** realm-route burst per client. Default DEFAULT_RATE_LIMIT_BURST (200) */
  rateLimitBurst?: number
  /** limit loopback clients too. Default false (this machine is trusted) */
  limitLoopback?: boolean
  /** events WebSocket messages per second per client. Default DEFAULT_WS_MESSAGES_PER_S (10) */
  wsMessagesPerS?: number
}

/** The gateway's security settings from the node's config; reads and checks the TLS files */
export function securityInitFromConfig (config: RealmConfig): GatewaySecurityInit {
  const http = config.http
  return {
    tls: tlsFromConfig(config),
    trustProxy: http.trust_proxy,
    allowedHosts: http.allowed_hosts,
    allowedOrigins: http.allowed_origins,
    corsOrigins: http.cors_origins,
    maxHeaderBytes: http.max_header_bytes,
    maxConnectionsPerClient: http.max_connections_per_client,
    rateLimitPerS: http.rate_limit_per_s,
    rateLimitBurst: http.rate_limit_burst,
    limitLoopback: http.limit_loopback,
    wsMessagesPerS: http.ws_messages_per_s
  }
}

/** Why a request is refused */
export interface Refusal {
  status: number
  code: 'HOST_NOT_ALLOWED' | 'ORIGIN_NOT_ALLOWED' | 'RATE_LIMITED'
  message: string
  headers?: Record<string, string>
}

/** What the checks read from a request */
interface RequestFacts {
  method: string
  path: string
  host?: string
  origin?: string
  site?: string
  scheme: 'http' | 'https'
}

const STATUS_TEXT: Record<number, string> = { 403: 'Forbidden', 421: 'Misdirected Request', 429: 'Too Many Requests' }
/** Header names a preflight may ask for: tokens only, so nothing odd is echoed */
const HEADER_LIST_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/

/** JSON that can never be read as HTML: `<`, `>`, `&` (and JS line breaks) as \u escapes, as Go's encoder writes them */
export function htmlSafeJson (value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function isCompatPath (path: string): boolean {
  return COMPAT_PREFIXES.some(p => path.startsWith(p))
}

function isApiPath (path: string): boolean {
  return path.startsWith(REALM_PREFIX) || isCompatPath(path)
}

/** A refusal in the error form of the API the path belongs to */
export function refusalBody (path: string, refusal: Pick<Refusal, 'code' | 'message'>): unknown {
  if (path.startsWith('/api/')) return { error: refusal.message }
  if (path.startsWith('/v1/')) return { error: { message: refusal.message, type: 'invalid_request_error', param: null, code: refusal.code.toLowerCase() } }
  return { error: { code: refusal.code, message: refusal.message } }
}

function header (req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return typeof v === 'string' ? v : Array.isArray(v) ? v.join(', ') : undefined
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && (Object.getPrototypeOf(v) === Object.prototype || Array.isArray(v))
}

/** A short, printable quote of client input for a message (the JSON is escaped again on the way out) */
function quote (s: string): string {
  return JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s)
}

export class GatewaySecurity {
  private readonly log = logger('realm:gateway:security')
  readonly tls?: TlsMaterial
  readonly trustProxy: boolean
  readonly maxHeaderBytes: number
  readonly wsMessagesPerS: number
  readonly hosts: HostPolicy
  readonly connections: ConnectionLimiter
  readonly rate: RateLimiter
  private readonly allowedOrigins: OriginList
  private readonly corsOrigins: OriginList
  private readonly limitLoopback: boolean

  constructor (boundHost: string, init: GatewaySecurityInit = {}) {
    this.tls = init.tls
    this.trustProxy = init.trustProxy ?? false
    this.maxHeaderBytes = init.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES
    this.wsMessagesPerS = init.wsMessagesPerS ?? DEFAULT_WS_MESSAGES_PER_S
    this.limitLoopback = init.limitLoopback ?? false
    this.hosts = new HostPolicy({ boundHost, allowedHosts: init.allowedHosts ?? [], machineName: machineHostname() })
    this.allowedOrigins = new OriginList(init.allowedOrigins ?? [])
    this.corsOrigins = new OriginList(init.corsOrigins ?? [])
    this.connections = new ConnectionLimiter({
      maxPerClient: init.maxConnectionsPerClient ?? DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
      exempt: (address) => this.exempt(address)
    })
    this.rate = new RateLimiter({ ratePerS: init.rateLimitPerS ?? DEFAULT_RATE_LIMIT_PER_S, burst: init.rateLimitBurst ?? DEFAULT_RATE_LIMIT_BURST })
  }

  /** Options for `http.createServer` / `https.createServer` */
  serverOptions (): { maxHeaderSize: number, cert?: Buffer, key?: Buffer } {
    return this.tls === undefined
      ? { maxHeaderSize: this.maxHeaderBytes }
      : { maxHeaderSize: this.maxHeaderBytes, cert: this.tls.cert, key: this.tls.key }
  }

  /** Count and cap each client's open connections on `server` */
  attach (server: Server): void {
    this.connections.attach(server)
  }

  /** The middleware in front of every route */
  middleware () {
    return async (ctx: Context, next: Next): Promise<void> => {
      const path = ctx.path
      ctx.set('X-Content-Type-Options', 'nosniff')
      ctx.set('Referrer-Policy', 'no-referrer')
      ctx.set('X-Frame-Options', 'DENY')
      ctx.set('Content-Security-Policy', isApiPath(path) ? API_CSP : UI_CSP)
      const facts = this.facts(ctx.req, path)
      if (this.hsts(facts.host)) ctx.set('Strict-Transport-Security', `max-age=${HSTS_MAX_AGE_S}`)

      const refusal = this.check(facts, false) ?? this.cors(ctx, facts) ?? this.limit(ctx.req, path)
      if (refusal === null) return
      if (refusal !== undefined) {
        this.refuse(ctx, refusal)
        return
      }

      try {
        await next()
      } catch (err) {
        // whatever a route let through still gets these headers and a JSON body (Koa's own
        // error handler would drop every header set so far)
        if (ctx.res.headersSent) {
          ctx.app.emit('error', err, ctx)
          return
        }
        const shape = toErrorShape(err)
        if (shape.status >= 500) ctx.app.emit('error', err, ctx)
        ctx.status = shape.status
        if (shape.headers != null) ctx.set(shape.headers)
        ctx.body = refusalBody(path, { code: shape.code as Refusal['code'], message: shape.message })
      }
      if (ctx.res.headersSent) return
      if (typeof ctx.response.is('html') === 'string') ctx.set('Content-Security-Policy', UI_CSP)
      if (ctx.status >= 400 && isPlainObject(ctx.body)) {
        ctx.body = htmlSafeJson(ctx.body)
        ctx.type = 'application/json; charset=utf-8'
      }
    }
  }

  /**
   * The checks for a WebSocket upgrade on `/realm/events`: Host, Origin (always required to be
   * allowed when present: a WebSocket has no CORS), rate. A refusal is answered on the socket;
   * returns whether the upgrade may go on.
   */
  allowUpgrade (req: IncomingMessage, socket: Duplex): boolean {
    const facts = this.facts(req, new URL(req.url ?? '/', 'http://localhost').pathname)
    const refusal = this.check(facts, true) ?? this.limit(req, facts.path)
    if (refusal === undefined) return true
    this.log('upgrade refused: %s', refusal.code)
    const body = htmlSafeJson(refusalBody(facts.path, refusal))
    const extra = Object.entries(refusal.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('')
    socket.end(`HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\n${extra}\r\n${body}`)
    return false
  }

  /** Host and Origin checks; `upgrade`: a WebSocket handshake (a state change, whatever its method) */
  check (facts: RequestFacts, upgrade: boolean): Refusal | undefined {
    if (!this.hosts.allows(facts.host)) {
      return {
        status: 421,
        code: 'HOST_NOT_ALLOWED',
        message: `this node does not answer to the host ${quote(facts.host ?? '')}: its sysop lists the names it serves in http.allowed_hosts`
      }
    }
    if (!upgrade && !STATE_CHANGING_METHODS.has(facts.method)) return undefined
    if (facts.origin !== undefined) {
      if (this.originAllowed(facts.origin, facts)) return undefined
      return {
        status: 403,
        code: 'ORIGIN_NOT_ALLOWED',
        message: `requests from the web page at ${quote(facts.origin)} are refused: only the node's own pages (or origins in http.allowed_origins) may ${upgrade ? 'open this WebSocket' : 'do this'}`
      }
    }
    // an old browser that sends no Origin still says where the request comes from
    if (facts.site === 'cross-site') {
      return { status: 403, code: 'ORIGIN_NOT_ALLOWED', message: 'cross-site requests are refused' }
    }
    return undefined
  }

  /** Own origin (scheme + the Host asked for), `http.allowed_origins`, and on the compat API `http.cors_origins` */
  private originAllowed (value: string, facts: RequestFacts): boolean {
    const origin = normalizeOrigin(value)
    if (origin === undefined) return false
    if (origin !== 'null' && facts.host !== undefined && parseHost(facts.host) !== undefined) {
      const own = normalizeOrigin(`${facts.scheme}://${facts.host}`)
      if (own !== undefined && own === origin) return true
    }
    if (this.allowedOrigins.has(origin)) return true
    return isCompatPath(facts.path) && this.corsOrigins.has(origin)
  }

  /**
   * CORS on the compatibility routes for `http.cors_origins` (no credentials: the API is used
   * with keys, never cookies). A preflight is answered here: `null` when done, a refusal for an
   * origin not listed, undefined to go on.
   */
  private cors (ctx: Context, facts: RequestFacts): Refusal | null | undefined {
    // answers differ by Origin once some origins get CORS: caches must keep them apart
    if (!this.corsOrigins.empty && isCompatPath(facts.path)) ctx.vary('Origin')
    if (facts.origin === undefined) return undefined
    const preflight = ctx.method === 'OPTIONS' && ctx.get('access-control-request-method') !== ''
    const origin = normalizeOrigin(facts.origin)
    const listed = origin !== undefined && isCompatPath(facts.path) && this.corsOrigins.has(origin)
    if (!listed) {
      if (!preflight) return undefined
      return { status: 403, code: 'ORIGIN_NOT_ALLOWED', message: `cross-origin requests from ${quote(facts.origin)} are not allowed here (see http.cors_origins)` }
    }
    ctx.set('Access-Control-Allow-Origin', facts.origin.trim())
    ctx.set('Access-Control-Expose-Headers', CORS_EXPOSE_HEADERS)
    if (!preflight) return undefined
    ctx.set('Access-Control-Allow-Methods', CORS_ALLOW_METHODS)
    const asked = ctx.get('access-control-request-headers').trim()
    if (asked !== '' && asked.length <= MAX_CORS_REQUEST_HEADERS_CHARS && HEADER_LIST_RE.test(asked)) ctx.set('Access-Control-Allow-Headers', asked)
    ctx.set('Access-Control-Max-Age', String(CORS_MAX_AGE_S))
    ctx.status = 204
    return null
  }

  /** The realm routes' per-client rate */
  private limit (req: IncomingMessage, path: string): Refusal | undefined {
    if (!path.startsWith(REALM_PREFIX) || !this.rate.enabled) return undefined
    const address = clientAddress(req.socket.remoteAddress, req.headers, this.trustProxy)
    if (this.exempt(address)) return undefined
    const waitS = this.rate.take(limitKey(address))
    if (waitS === 0) return undefined
    return {
      status: 429,
      code: 'RATE_LIMITED',
      message: `too many requests from this address: try again in ${waitS} s`,
      headers: { 'Retry-After': String(waitS) }
    }
  }

  private exempt (address: string): boolean {
    return !this.limitLoopback && isLoopbackIp(address)
  }

  /** HSTS over TLS, except for `localhost`: browsers would pin every localhost port to HTTPS for a year */
  private hsts (host: string | undefined): boolean {
    if (this.tls === undefined) return false
    const name = host === undefined ? undefined : parseHost(host)?.hostname
    return name === undefined || (name !== 'localhost' && !name.endsWith('.localhost'))
  }

  private refuse (ctx: Context, refusal: Refusal): void {
    this.log('refused %s %s: %s', ctx.method, ctx.path, refusal.code)
    ctx.status = refusal.status
    if (refusal.headers != null) ctx.set(refusal.headers)
    ctx.body = htmlSafeJson(refusalBody(ctx.path, refusal))
    ctx.type = 'application/json; charset=utf-8'
  }

  private facts (req: IncomingMessage, path: string): RequestFacts {
    return {
      method: (req.method ?? 'GET').toUpperCase(),
      path,
      host: requestHost(req.headers, this.trustProxy),
      origin: header(req, 'origin'),
      site: header(req, 'sec-fetch-site')?.toLowerCase(),
      scheme: requestScheme(req.headers, this.tls !== undefined, this.trustProxy)
    }
  }
}
