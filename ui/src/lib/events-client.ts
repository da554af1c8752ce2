/**
 * The node's events WebSocket (`/realm/events`), reconnecting with backoff. Each message is
 * `{ type, time, ...fields }`; `hello`/`subscribed`/`pong`/`error` are the socket's own.
 */
import { reconnectDelay } from './reconnect.js'
import type { RealmEvent } from './types.js'

export type ConnectionState = 'connecting' | 'open' | 'closed'

export interface EventsClientInit {
  topics: string[]
  onEvent: (event: RealmEvent) => void
  onState?: (state: ConnectionState, detail?: { code?: number, reason?: string }) => void
  /** close codes after which it stays closed (e.g. 4003 banned) */
  finalCodes?: number[]
}

export class EventsClient {
  private ws?: WebSocket
  private attempt = 0
  private timer?: ReturnType<typeof setTimeout>
  private stopped = false

  constructor (private readonly init: EventsClientInit) {}

  start (): void {
    this.stopped = false
    this.connect()
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.ws?.close(1000, 'bye')
    this.ws = undefined
  }

  private connect (): void {
    if (this.stopped) return
    const url = new URL('/realm/events', location.href)
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
    url.searchParams.set('topics', this.init.topics.join(','))
    this.init.onState?.('connecting')
    const ws = new WebSocket(url)
    this.ws = ws
    ws.addEventListener('open', () => {
      this.attempt = 0
      this.init.onState?.('open')
    })
    ws.addEventListener('message', (msg) => {
      if (typeof msg.data !== 'string') return
      let event: RealmEvent
      try {
        event = JSON.parse(msg.data) as RealmEvent
      } catch {
        return
      }
      if (typeof event?.type === 'string') this.init.onEvent(event)
    })
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return
      this.ws = undefined
      this.init.onState?.('closed', { code: ev.code, reason: ev.reason })
      if (this.stopped || (this.init.finalCodes ?? []).includes(ev.code)) return
      this.timer = setTimeout(() => { this.connect() }, reconnectDelay(this.attempt++))
    })
  }
}
