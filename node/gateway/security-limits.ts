/**
 * Per-client limits of the gateway: a token bucket (request rate, events-WebSocket messages) and
 * a cap on open connections per client address. Memory stays bounded whatever the clients do.
 */
import type { Server } from 'node:net'
import type { Socket } from 'node:net'
import { MAX_TRACKED_CLIENTS, RATE_SWEEP_INTERVAL_MS } from './security-constants.js'
import { limitKey, unmapIPv4 } from './security-checks.js'

/** `ratePerS` tokens a second up to `burst`; each action takes one */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor (private readonly ratePerS: number, private readonly burst: number, now = Date.now()) {
    this.tokens = burst
    this.last = now
  }

  /** Takes a token: 0 when there was one, else the seconds until there is one (at least 1) */
  take (now = Date.now()): number {
    this.refill(now)
    if (this.tokens >= 1) {
      this.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - this.tokens) / this.ratePerS))
  }

  /** Full again (nothing to remember about this client) */
  full (now = Date.now()): boolean {
    this.refill(now)
    return this.tokens >= this.burst
  }

  private refill (now: number): void {
    const elapsedS = Math.max(0, now - this.last) / 1000
    this.last = now
    this.tokens = Math.min(this.burst, this.tokens + elapsedS * this.ratePerS)
  }
}

export interface RateLimiterInit {
  /** tokens per second per key; 0 turns the limiter off */
  ratePerS: number
  /** bucket size */
  burst: number
  /** keys remembered at most; default MAX_TRACKED_CLIENTS */
  maxKeys?: number
}

/** One token bucket per key (client address), swept lazily, at most `maxKeys` of them */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>()
  private readonly maxKeys: number
  private lastSweep = Date.now()

  constructor (private readonly init: RateLimiterInit) {
    this.maxKeys = init.maxKeys ?? MAX_TRACKED_CLIENTS
  }

  get enabled (): boolean {
    return this.init.ratePerS > 0
  }

  get size (): number {
    return this.buckets.size
  }

  /** 0 when `key` may go on, else the seconds it should wait (for `Retry-After`) */
  take (key: string, now = Date.now()): number {
    if (!this.enabled) return 0
    if (now - this.lastSweep > RATE_SWEEP_INTERVAL_MS) this.sweep(now)
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      // the map keeps insertion order: the first key is the longest idle one
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string)
      bucket = new TokenBucket(this.init.ratePerS, this.init.burst, now)
    } else {
      this.buckets.delete(key)
    }
    this.buckets.set(key, bucket)
    return bucket.take(now)
  }

  private sweep (now: number): void {
    this.lastSweep = now
    for (const [key, bucket] of this.buckets) if (bucket.full(now)) this.buckets.delete(key)
  }
}

export interface ConnectionLimiterInit {
  /** open connections per client address (IPv6: per /64) */
  maxPerClient: number
  /** addresses never counted (loopback unless `http.limit_loopback`) */
  exempt?: (address: string) => boolean
}

/** Closes a client's connection at once when it already holds `maxPerClient` */
export class ConnectionLimiter {
  private readonly open = new Map<string, number>()
  /** connections refused so far (for logs and tests) */
  refused = 0

  constructor (private readonly init: ConnectionLimiterInit) {}

  /** Count the connections of `server` (plain TCP or TLS: counted before the handshake) */
  attach (server: Server): void {
    server.on('connection', (socket: Socket) => { this.onConnection(socket) })
  }

  /** Open connections of the client at `address` */
  count (address: string): number {
    return this.open.get(limitKey(unmapIPv4(address))) ?? 0
  }

  private onConnection (socket: Socket): void {
    const address = unmapIPv4(socket.remoteAddress ?? 'unknown')
    if (this.init.exempt?.(address) === true) return
    const key = limitKey(address)
    const count = (this.open.get(key) ?? 0) + 1
    if (count > this.init.maxPerClient) {
      this.refused++
      socket.destroy()
      return
    }
    this.open.set(key, count)
    socket.once('close', () => {
      const left = (this.open.get(key) ?? 1) - 1
      if (left <= 0) this.open.delete(key)
      else this.open.set(key, left)
    })
  }
}
