import { isIPv4, isIPv6 } from 'node:net'
import { DEFAULT_HOST } from './constants.js'
import { ConfigError } from './errors.js'

export interface HostPort {
  /** host name or IP address, IPv6 without brackets */
  host: string
  /** 0..65535; 0 asks the OS for a free port */
  port: number
}

const MAX_PORT = 65535
/** Longer than any host name (253) plus brackets and a port */
const MAX_HOST_PORT_LENGTH = 300
/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens */
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
const PORT_RE = /^\d{1,5}$/

/** What `HOST:PORT` expects, for error messages */
export const HOST_PORT_EXPECTED = 'expected HOST:PORT with a port 0-65535'

/**
 * Parse `HOST:PORT`, `[IPv6]:PORT`, `:PORT` or `PORT` (the last two mean `127.0.0.1`).
 * Throws a `ConfigError` with code `INVALID_HOST_PORT` on anything else.
 */
export function parseHostPort (s: string): HostPort {
  const parsed = readHostPort(s)
  if (typeof parsed === 'string') {
    throw new ConfigError('INVALID_HOST_PORT', `${HOST_PORT_EXPECTED}, got ${JSON.stringify(String(s).slice(0, MAX_HOST_PORT_LENGTH))} (${parsed})`)
  }
  return parsed
}

/** The address, or why it is not one */
export function readHostPort (s: string): HostPort | string {
  if (typeof s !== 'string' || s.length === 0) return 'empty'
  if (s.length > MAX_HOST_PORT_LENGTH) return 'too long'

  let host: string
  let portText: string
  if (s.startsWith('[')) {
    const close = s.indexOf(']')
    if (close < 0) return 'no closing "]"'
    host = s.slice(1, close)
    if (!isIPv6(host)) return 'not an IPv6 address inside [ ]'
    if (s[close + 1] !== ':') return 'no ":PORT" after "]"'
    portText = s.slice(close + 2)
  } else if (PORT_RE.test(s)) {
    host = DEFAULT_HOST
    portText = s
  } else {
    const colon = s.lastIndexOf(':')
    if (colon < 0) return 'no ":PORT"'
    host = s.slice(0, colon)
    portText = s.slice(colon + 1)
    if (host === '') {
      host = DEFAULT_HOST
    } else if (host.includes(':')) {
      return 'write an IPv6 address in brackets, e.g. [::1]:5000'
    } else if (/^[\d.]+$/.test(host) ? !isIPv4(host) : !HOSTNAME_RE.test(host)) {
      return 'not a valid host name or IPv4 address'
    }
  }
  if (!PORT_RE.test(portText)) return 'the port is not a number'
  const port = Number(portText)
  if (port > MAX_PORT) return 'the port is above 65535'
  return { host, port }
}
