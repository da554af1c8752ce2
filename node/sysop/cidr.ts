/**
 * IP addresses and CIDR ranges, IPv4 and IPv6, as numbers (bigint) so that matching is a shift
 * and a compare. Pure, no I/O. Parsing is strict: no octal-looking octets, no zone ids in a range,
 * no prefix beyond the family's width. An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) matches as
 * the IPv4 address it carries.
 */
import { SysopInputError } from './errors.js'

export type IpFamily = 4 | 6

export interface IpAddress {
  family: IpFamily
  /** the address as an unsigned 32- or 128-bit number */
  value: bigint
}

export interface Cidr {
  family: IpFamily
  /** the network address (host bits zero) */
  network: bigint
  /** prefix length: 0..32 (IPv4), 0..128 (IPv6) */
  prefix: number
}

const IPV4_OCTET_RE = /^(0|[1-9][0-9]{0,2})$/
const HEX_GROUP_RE = /^[0-9a-fA-F]{1,4}$/
/** Longest text taken as an address or range (an IPv6 range with an embedded IPv4 is 49) */
const MAX_TEXT_CHARS = 64

function bitsOf (family: IpFamily): number {
  return family === 4 ? 32 : 128
}

function parseIpv4 (text: string): bigint | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  let value = 0n
  for (const part of parts) {
    if (!IPV4_OCTET_RE.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    value = (value << 8n) | BigInt(n)
  }
  return value
}

function parseIpv6 (text: string): bigint | undefined {
  let t = text
  // an embedded IPv4 address (`::ffff:1.2.3.4`) stands for the last two groups
  const lastColon = t.lastIndexOf(':')
  const last = t.slice(lastColon + 1)
  if (last.includes('.')) {
    const v4 = parseIpv4(last)
    if (v4 === undefined) return undefined
    t = `${t.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`
  }
  const halves = t.split('::')
  if (halves.length > 2) return undefined
  const wordsOf = (part: string): number[] | undefined => {
    if (part === '') return []
    const out: number[] = []
    for (const g of part.split(':')) {
      if (!HEX_GROUP_RE.test(g)) return undefined
      out.push(parseInt(g, 16))
    }
    return out
  }
  const head = wordsOf(halves[0])
  const tail = halves.length === 2 ? wordsOf(halves[1]) : []
  if (head == null || tail == null) return undefined
  let words: number[]
  if (halves.length === 1) {
    if (head.length !== 8) return undefined
    words = head
  } else {
    // `::` stands for one or more zero groups
    const missing = 8 - head.length - tail.length
    if (missing < 1) return undefined
    words = [...head, ...new Array<number>(missing).fill(0), ...tail]
  }
  let value = 0n
  for (const w of words) value = (value << 16n) | BigInt(w)
  return value
}

/**
 * Parse an IP address (IPv4 dotted quad or IPv6 text; an IPv6 zone id `%eth0` is dropped).
 * An IPv4-mapped IPv6 address becomes IPv4. Returns `undefined` for anything else.
 */
export function parseIp (text: string): IpAddress | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT_CHARS) return undefined
  let t = text
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1)
  const zone = t.indexOf('%')
  if (zone >= 0 && t.includes(':')) t = t.slice(0, zone)
  if (!t.includes(':')) {
    const v4 = parseIpv4(t)
    return v4 === undefined ? undefined : { family: 4, value: v4 }
  }
  const v6 = parseIpv6(t)
  if (v6 === undefined) return undefined
  // ::ffff:a.b.c.d: the top 96 bits are 0…0ffff
  if ((v6 >> 32n) === 0xffffn) return { family: 4, value: v6 & 0xffffffffn }
  return { family: 6, value: v6 }
}

function maskOf (family: IpFamily, prefix: number): bigint {
  const bits = bitsOf(family)
  if (prefix === 0) return 0n
  return ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix)
}

/**
 * Parse a CIDR range: `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a single host: /32 or
 * /128). Host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
 *
 * @throws SysopInputError (`INVALID_CIDR`) when the text is not a range
 */
export function parseCidr (text: string): Cidr {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT_CHARS) throw invalidCidr(text)
  const slash = text.indexOf('/')
  const addrText = slash >= 0 ? text.slice(0, slash) : text
  if (addrText.includes('%') || addrText.startsWith('[')) throw invalidCidr(text)
  const addr = parseIp(addrText)
  if (addr == null) throw invalidCidr(text)
  // a mapped IPv4 written as IPv6 keeps its IPv6 prefix length meaning: ::ffff:0:0/104 → /8
  const writtenAsV6 = addrText.includes(':')
  const width = writtenAsV6 ? 128 : 32
  let prefix = width
  if (slash >= 0) {
    const p = text.slice(slash + 1)
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) throw invalidCidr(text)
    prefix = Number(p)
    if (prefix > width) throw invalidCidr(text)
  }
  if (writtenAsV6 && addr.family === 4) {
    if (prefix < 96) throw invalidCidr(text)
    prefix -= 96
  }
  return { family: addr.family, network: addr.value & maskOf(addr.family, prefix), prefix }
}

/** Is `ip` inside `cidr`? Addresses of the other family never are */
export function cidrContains (cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false
  return (ip.value & maskOf(cidr.family, cidr.prefix)) === cidr.network
}

/** Text of an address: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run as `::`) */
export function formatIp (ip: IpAddress): string {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map(s => String((ip.value >> s) & 0xffn)).join('.')
  }
  const words: number[] = []
  for (let i = 7; i >= 0; i--) words.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn))
  // the longest run of two or more zero words becomes `::` (the first one on a tie)
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = words.map(w => w.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/** Canonical text of a range: `10.0.0.0/8`, `2001:db8::/32` */
export function formatCidr (cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.network })}/${cidr.prefix}`
}

/** Does the text look like an address or range rather than a peer id? (Peer ids have no `.` or `:`) */
export function looksLikeCidr (text: string): boolean {
  return text.includes('.') || text.includes(':') || text.includes('/')
}

function invalidCidr (text: unknown): SysopInputError {
  return new SysopInputError('INVALID_CIDR', `not an IP address or CIDR range: ${JSON.stringify(String(text).slice(0, MAX_TEXT_CHARS))}`)
}
