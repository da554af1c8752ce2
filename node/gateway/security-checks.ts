/**
 * The pure parts of the gateway's browser-facing checks (security.ts): which `Host` the node
 * answers to, which `Origin` may change state, who the client is. No I/O, no state.
 */
import { isIP } from 'node:net'
import { IPV6_PREFIX_GROUPS, MAX_HOST_PATTERN_CHARS } from './security-constants.js'

/** A `Host` header value, parsed: lowercase name or IP (IPv6 without brackets), optional port */
export interface HostName {
  hostname: string
  port?: number
}

const HOST_RE = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9_.-]+))(?::(\d{1,5}))?$/
const MAX_PORT = 65535

/** `example.com:5000`, `[::1]:5000`, `127.0.0.1` → parts; anything else (userinfo, spaces, junk) → undefined */
export function parseHost (value: string): HostName | undefined {
  if (value.length > MAX_HOST_PATTERN_CHARS) return undefined
  const m = HOST_RE.exec(value.trim().toLowerCase())
  if (m === null) return undefined
  let hostname = m[1] ?? m[2]
  if (m[1] !== undefined && isIP(hostname) !== 6) return undefined
  // `example.com.` is the same name as `example.com`
  if (hostname.endsWith('.') && hostname.length > 1) hostname = hostname.slice(0, -1)
  if (m[3] === undefined) return { hostname }
  const port = Number(m[3])
  if (port > MAX_PORT) return undefined
  return { hostname, port }
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms */
export function isLoopbackIp (address: string): boolean {
  const a = unmapIPv4(address.toLowerCase())
  if (isIP(a) === 4) return a.startsWith('127.')
  return a === '::1' || a === '0:0:0:0:0:0:0:1'
}

/** 0.0.0.0 and :: (listening on every interface) */
export function isUnspecifiedIp (address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '0:0:0:0:0:0:0:0'
}

/** `::ffff:1.2.3.4` → `1.2.3.4`: an IPv4 client on a dual-stack socket is the same client */
export function unmapIPv4 (address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address
}

/** One entry of `http.allowed_hosts`: `*`, `name`, `name:port`, `*.example.com[:port]`, `[v6]:port` */
interface HostPattern {
  any: boolean
  /** exact hostname, or the suffix after `*.` */
  hostname: string
  subdomains: boolean
  port?: number
}

/** Parse an `http.allowed_hosts` entry; undefined when it is not one */
export function parseHostPattern (entry: string): HostPattern | undefined {
  const text = entry.trim().toLowerCase()
  if (text === '*') return { any: true, hostname: '', subdomains: false }
  const subdomains = text.startsWith('*.')
  const parsed = parseHost(subdomains ? text.slice(2) : text)
  if (parsed === undefined || parsed.hostname === '') return undefined
  return { any: false, hostname: parsed.hostname, subdomains, port: parsed.port }
}

export interface HostPolicyInit {
  /** the address the gateway listens on (`127.0.0.1`, `0.0.0.0`, `::`, a name) */
  boundHost: string
  /** `http.allowed_hosts` */
  allowedHosts: readonly string[]
  /** this machine's host name (`os.hostname()`), allowed with `.local` when not bound to loopback */
  machineName?: string
}

/**
 * Which `Host` headers the node answers (against DNS rebinding: a page on `evil.example` whose
 * name is re-pointed at this node still sends `Host: evil.example`):
 * - `localhost` and loopback IPs, and the bound address itself;
 * - when bound beyond loopback (`0.0.0.0`, `::`, a LAN address): any IP literal (a rebinding
 *   needs a DNS name; an address typed in the browser cannot be one) and the machine's name;
 * - the names in `http.allowed_hosts` (`*` allows every host).
 * Ports do not matter: a rebinding keeps the attacker's name whatever the port, while SSH
 * tunnels, container port maps and proxies legitimately change it. A request without `Host`
 * (HTTP/1.0) is not from a browser and is allowed.
 */
export class HostPolicy {
  private readonly patterns: HostPattern[]
  private readonly any: boolean
  private readonly builtIn = new Set<string>(['localhost'])
  private readonly beyondLoopback: boolean

  constructor (init: HostPolicyInit) {
    this.patterns = init.allowedHosts.map(parseHostPattern).filter((p): p is HostPattern => p !== undefined)
    this.any = this.patterns.some(p => p.any)
    const bound = init.boundHost.toLowerCase().replace(/^\[|\]$/g, '')
    this.builtIn.add(bound)
    this.beyondLoopback = bound !== 'localhost' && !isLoopbackIp(bound)
    const machine = init.machineName?.trim().toLowerCase()
    if (this.beyondLoopback && machine !== undefined && machine !== '') {
      this.builtIn.add(machine)
      this.builtIn.add(`${machine.split('.')[0]}.local`)
    }
  }

  /** Every host allowed (`http.allowed_hosts = ["*"]`) */
  get allowsAny (): boolean {
    return this.any
  }

  allows (host: string | undefined): boolean {
    if (host === undefined || host === '') return true
    if (this.any) return true
    const parsed = parseHost(host)
    if (parsed === undefined) return false
    const name = parsed.hostname
    if (this.builtIn.has(name)) return true
    if (isIP(name) !== 0 && (isLoopbackIp(name) || this.beyondLoopback)) return true
    return this.patterns.some(p => {
      if (p.port !== undefined && p.port !== parsed.port) return false
      return p.subdomains ? name.endsWith(`.${p.hostname}`) : name === p.hostname
    })
  }
}

/**
 * An origin as browsers serialise it: `scheme://host[:port]`, lowercase, default port dropped.
 * `null` stays `null`; undefined when it is not an origin.
 */
export function normalizeOrigin (value: string): string | undefined {
  const text = value.trim().toLowerCase()
  if (text === 'null') return 'null'
  if (text.length > MAX_HOST_PATTERN_CHARS || !/^[a-z][a-z0-9+.-]*:\/\/[^\s/?#]*$/.test(text)) return undefined
  try {
    const url = new URL(text)
    return `${url.protocol}//${url.host}`
  } catch {
    return undefined
  }
}

/**
 * A list of origins (`http.allowed_origins`, `http.cors_origins`): exact origins, `*` for any,
 * or patterns where `*` stands for part of a name or a port (`http://localhost:*`,
 * `https://*.example.com`), as Ollama's OLLAMA_ORIGINS reads them.
 */
export class OriginList {
  private readonly exact = new Set<string>()
  private readonly patterns: RegExp[] = []
  readonly any: boolean

  constructor (entries: readonly string[]) {
    let any = false
    for (const entry of entries) {
      const text = entry.trim().toLowerCase()
      if (text === '*') {
        any = true
      } else if (text.includes('*')) {
        // `*` never crosses into the path or the scheme: host labels and port digits only;
        // a port of `*` also matches no port (the scheme's default)
        const anyPort = text.endsWith(':*')
        const body = anyPort ? text.slice(0, -2) : text
        const source = body.split('*').map(part => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('[a-z0-9.-]*')
        this.patterns.push(new RegExp(`^${source}${anyPort ? '(?::\\d{1,5})?' : ''}$`))
      } else {
        const origin = normalizeOrigin(text)
        if (origin !== undefined) this.exact.add(origin)
      }
    }
    this.any = any
  }

  /** Nothing listed */
  get empty (): boolean {
    return !this.any && this.exact.size === 0 && this.patterns.length === 0
  }

  /** `origin` must already be normalised */
  has (origin: string): boolean {
    if (this.any) return true
    return this.exact.has(origin) || this.patterns.some(re => re.test(origin))
  }
}

/** The first value of a header that proxies may list several times (`a, b`) */
function firstValue (value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  const first = v?.split(',')[0]?.trim()
  return first === '' ? undefined : first
}

/** The last value of a comma-separated header: what the nearest proxy added */
function lastValue (value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value.at(-1) : value
  const last = v?.split(',').at(-1)?.trim()
  return last === '' ? undefined : last
}

type Headers = Record<string, string | string[] | undefined>

/** The host the client asked for: `Host`, or with a trusted proxy its `X-Forwarded-Host` */
export function requestHost (headers: Headers, trustProxy: boolean): string | undefined {
  const forwarded = trustProxy ? firstValue(headers['x-forwarded-host']) : undefined
  const host = forwarded ?? headers.host
  return typeof host === 'string' ? host : undefined
}

/** `https` when the node serves TLS itself, or a trusted proxy says so; else `http` */
export function requestScheme (headers: Headers, tls: boolean, trustProxy: boolean): 'http' | 'https' {
  if (tls) return 'https'
  if (trustProxy && firstValue(headers['x-forwarded-proto'])?.toLowerCase() === 'https') return 'https'
  return 'http'
}

/**
 * The client's address: the socket's peer, or with a trusted proxy the address that proxy saw
 * (the last `X-Forwarded-For` entry: earlier ones are whatever the client claimed).
 */
export function clientAddress (remoteAddress: string | undefined, headers: Headers, trustProxy: boolean): string {
  const forwarded = trustProxy ? lastValue(headers['x-forwarded-for']) : undefined
  return unmapIPv4(forwarded ?? remoteAddress ?? 'unknown')
}

/** The key limits are counted under: the IPv4 address, or the IPv6 /64 */
export function limitKey (address: string): string {
  if (isIP(address) !== 6) return address
  return `${expandIPv6(address).slice(0, IPV6_PREFIX_GROUPS).join(':')}::/64`
}

/** `2001:db8::1` → eight 4-digit groups (a trailing dotted IPv4 becomes two groups) */
function expandIPv6 (address: string): string[] {
  let text = address.toLowerCase().split('%')[0]
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number)
    text = text.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const middle = tail === undefined ? [] : new Array(8 - left.length - right.length).fill('0')
  return [...left, ...middle, ...right].map(g => g.padStart(4, '0'))
}
