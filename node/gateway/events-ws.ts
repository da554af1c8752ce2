/**
 * `GET /realm/events`: a WebSocket streaming the node's events as JSON. A client picks topics
 * with `?topics=presence,peers` or by sending `{ "type": "subscribe", "topics": [...] }`.
 * A slow reader is dropped, never allowed to grow memory.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { logger } from '@libp2p/logger'
import { topicOf, type EventBus, type EventTopic, type RealmEvent } from '../events/index.js'
import { TokenBucket } from './security-limits.js'
import { DEFAULT_WS_MESSAGES_PER_S, WS_MESSAGES_BURST } from './security-constants.js'

/** Topics anyone may read; the rest need a sysop session (hardening issue) */
export const PUBLIC_TOPICS: readonly EventTopic[] = ['presence', 'peers']
const ALL_TOPICS: readonly EventTopic[] = ['presence', 'peers', 'tasks', 'system']
/** Largest message a client may send */
export const WS_MAX_MESSAGE_BYTES = 4 * 1024
/** A client with this much unsent data is too slow and is closed */
export const WS_MAX_BUFFERED_BYTES = 1024 * 1024
/** Most clients at once */
export const WS_MAX_CLIENTS = 1024
/** Close code for a reader that cannot keep up (application range) */
export const WS_CLOSE_TOO_SLOW = 4008
/** Close code for a user the sysop banned (application range, as HTTP 403) */
export const WS_CLOSE_BANNED = 4003
/** Events every client gets whatever its topics: the sysop's messages to the node's UI users */
export const BROADCAST_EVENT_TYPES: readonly string[] = ['sysop.broadcast']

interface Client {
  ws: WebSocket
  topics: Set<EventTopic>
  /** what the client may still send (subscribe, unsubscribe, ping) */
  messages?: TokenBucket
  /** the web UI user of the socket (identity cookie): may read the `tasks` topic, own tasks only */
  user?: string
  /** a sysop session (sysop routes set it): every task, whoever's */
  sysop?: boolean
}

export interface EventsSocketInit {
  events: EventBus
  /** messages per second a client may send; default DEFAULT_WS_MESSAGES_PER_S (10) */
  messagesPerS?: number
  /** the web UI user of an upgrade request, from its identity cookie (gateway/users.ts) */
  userOf?: (req: IncomingMessage) => { id: string, banned?: boolean } | undefined
  /** is an upgrade request the sysop's (session cookie or token: sysop/auth.ts `isSysopRequest`); default: never */
  isSysop?: (req: IncomingMessage) => boolean
}

export class EventsSocket {
  private readonly log = logger('realm:events-ws')
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_MESSAGE_BYTES })
  private readonly clients = new Set<Client>()
  private unsubscribe?: () => void

  constructor (private readonly init: EventsSocketInit) {}

  start (): void {
    this.unsubscribe = this.init.events.subscribe(event => { this.broadcast(event) })
  }

  stop (): void {
    this.unsubscribe?.()
    for (const client of this.clients) client.ws.terminate()
    this.clients.clear()
    this.wss.close()
  }

  get size (): number {
    return this.clients.size
  }

  /** Take over an HTTP upgrade on the events path */
  handleUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.clients.size >= WS_MAX_CLIENTS) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n{"error":{"code":"TOO_MANY_CLIENTS","message":"too many event clients"}}')
      return
    }
    if (this.init.userOf?.(req)?.banned === true) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n{"error":{"code":"USER_BANNED","message":"this browser\'s user has been banned by the node\'s sysop"}}')
      return
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => { this.onConnection(ws, req) })
  }

  /** Close every socket of a web UI user (banned) */
  closeUser (id: string): void {
    for (const client of this.clients) {
      if (client.user !== id) continue
      this.clients.delete(client)
      client.ws.close(WS_CLOSE_BANNED, 'banned')
      setTimeout(() => { client.ws.terminate() }, 1000).unref()
    }
  }

  private onConnection (ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const client: Client = { ws, topics: new Set(), user: this.init.userOf?.(req)?.id, sysop: this.init.isSysop?.(req) === true }
    const requested = url.searchParams.get('topics')
    const bad = this.subscribe(client, requested == null ? [...PUBLIC_TOPICS] : requested.split(','))
    this.clients.add(client)
    this.send(client, { type: 'hello', time: new Date().toISOString(), topics: [...client.topics] })
    if (bad.length > 0) this.sendError(client, 'UNKNOWN_TOPIC', `unknown or forbidden topics: ${bad.join(', ')}`)

    ws.on('message', (data, isBinary) => {
      client.messages ??= new TokenBucket(this.init.messagesPerS ?? DEFAULT_WS_MESSAGES_PER_S, WS_MESSAGES_BURST)
      if (client.messages.take() > 0) {
        this.sendError(client, 'RATE_LIMITED', 'too many messages: slow down')
        return
      }
      let msg: any
      try {
        if (isBinary) throw new Error('binary')
        msg = JSON.parse(data.toString())
      } catch {
        this.sendError(client, 'INVALID_MESSAGE', 'messages must be JSON text')
        return
      }
      if (msg?.type === 'subscribe' && Array.isArray(msg.topics) && msg.topics.length <= ALL_TOPICS.length) {
        const rejected = this.subscribe(client, msg.topics)
        if (rejected.length > 0) this.sendError(client, 'UNKNOWN_TOPIC', `unknown or forbidden topics: ${rejected.join(', ')}`)
        this.send(client, { type: 'subscribed', time: new Date().toISOString(), topics: [...client.topics] })
      } else if (msg?.type === 'unsubscribe' && Array.isArray(msg.topics) && msg.topics.length <= ALL_TOPICS.length) {
        for (const t of msg.topics) client.topics.delete(t)
        this.send(client, { type: 'subscribed', time: new Date().toISOString(), topics: [...client.topics] })
      } else if (msg?.type === 'ping') {
        this.send(client, { type: 'pong', time: new Date().toISOString() })
      } else {
        this.sendError(client, 'INVALID_MESSAGE', 'expected { type: "subscribe" | "unsubscribe", topics: [...] } or { type: "ping" }')
      }
    })
    ws.on('close', () => { this.clients.delete(client) })
    ws.on('error', (err) => {
      this.log('client error: %s', err.message)
      this.clients.delete(client)
    })
  }

  /** Returns the topics refused */
  private subscribe (client: Client, topics: unknown[]): string[] {
    const refused: string[] = []
    for (const t of topics) {
      if (typeof t === 'string' && (PUBLIC_TOPICS as readonly string[]).includes(t)) client.topics.add(t as EventTopic)
      // a web UI user follows their own tasks (filtered in `broadcast`)
      else if (t === 'tasks' && client.user != null) client.topics.add(t)
      // the sysop reads every topic
      else if (client.sysop === true && typeof t === 'string' && (ALL_TOPICS as readonly string[]).includes(t)) client.topics.add(t as EventTopic)
      // an object is not echoed: String() throws on one whose toString is not a function, and a
      // throw in a socket's message handler is an uncaught exception that ends the node
      else refused.push(t !== null && typeof t === 'object' ? '(object)' : String(t).slice(0, 32))
    }
    return refused
  }

  private broadcast (event: RealmEvent): void {
    if (this.clients.size === 0) return
    const topic = topicOf(event.type)
    const everyone = BROADCAST_EVENT_TYPES.includes(event.type)
    let text: string | undefined
    for (const client of this.clients) {
      if (!everyone && !client.topics.has(topic)) continue
      // task events reach a web UI user only for their own tasks: never another user's prompts or spending
      if (!everyone && topic === 'tasks' && client.sysop !== true && (client.user == null || event.requester !== `user:${client.user}`)) continue
      text ??= JSON.stringify(event)
      this.sendText(client, text)
    }
  }

  private send (client: Client, msg: Record<string, unknown>): void {
    this.sendText(client, JSON.stringify(msg))
  }

  private sendError (client: Client, code: string, message: string): void {
    this.send(client, { type: 'error', time: new Date().toISOString(), code, message })
  }

  private sendText (client: Client, text: string): void {
    if (client.ws.readyState !== client.ws.OPEN) return
    if (client.ws.bufferedAmount > WS_MAX_BUFFERED_BYTES) {
      this.clients.delete(client)
      client.ws.close(WS_CLOSE_TOO_SLOW, 'too slow')
      setTimeout(() => { client.ws.terminate() }, 1000).unref()
      return
    }
    client.ws.send(text)
  }
}
