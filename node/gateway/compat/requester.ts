/**
 * Who asks, for the fair queue (DESIGN.md "Routing, queue, health"): the signed-in user, else the
 * API key when one is sent (only a hash of it: keys are never kept or logged), else the client's
 * address.
 */
import { createHash } from 'node:crypto'
import type { Context } from 'koa'

/** Domain separation, so the hash of a key here matches nothing hashed for another purpose */
const API_KEY_HASH_DOMAIN = 'rentahal/requester/api-key/1\n'
/** Hex characters of the key hash kept (128 bits: unique enough, short in logs) */
const API_KEY_HASH_HEX_CHARS = 32
/** Longest bearer credential considered a key (anything longer is a client bug, not a requester) */
const MAX_API_KEY_CHARS = 4096

/** `user:<id>` | `key:<sha256 prefix>` | `addr:<ip>` */
export function requesterOf (ctx: Context): string {
  // set by the session middleware once users exist (hardening issue)
  const user = (ctx.state as { user?: { id?: unknown } } | undefined)?.user
  if (typeof user?.id === 'string' && user.id !== '') return `user:${user.id}`

  const auth = ctx.get('authorization')
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth)
  if (match !== null && match[1].length <= MAX_API_KEY_CHARS) {
    const hash = createHash('sha256').update(API_KEY_HASH_DOMAIN).update(match[1]).digest('hex')
    return `key:${hash.slice(0, API_KEY_HASH_HEX_CHARS)}`
  }

  // ctx.ip is the socket's address, or the client's behind a trusted proxy (http.trust_proxy)
  let address = (typeof ctx.ip === 'string' && ctx.ip !== '' ? ctx.ip : ctx.req.socket.remoteAddress) ?? 'unknown'
  // an IPv4 client on a dual-stack socket is the same requester as on an IPv4 socket
  if (address.startsWith('::ffff:') && address.includes('.')) address = address.slice('::ffff:'.length)
  return `addr:${address}`
}
