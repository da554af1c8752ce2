/**
 * The gateway: the node's HTTP API (realm routes, Ollama and OpenAI facades), the events
 * WebSocket and the web UI, on Koa. Binds loopback unless told otherwise.
 */
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import Koa from 'koa'
import { logger } from '@libp2p/logger'
import type { Startable } from '../startable.js'
import type { GatewayComponents } from './types.js'
import { realmErrors, HttpError } from './errors.js'
import { realmRoutes } from './routes/realm.js'
import { ollamaRoutes } from './routes/ollama.js'
import { openaiRoutes } from './routes/openai.js'
import { isSysopPath, sysopRoutes } from './routes/sysop.js'
import { EventsSocket } from './events-ws.js'
import { SpeechSocket, localSttStatus, type SpeechSocketInit } from './speech-ws.js'
import { uiMiddleware } from './ui.js'
import { GatewaySecurity, type GatewaySecurityInit } from './security.js'
import { bannedCheck, userIdentity, type UserDirectory } from './users.js'
import { RealmError, errorMessage } from '../../protocol/errors.js'

export type { GatewayComponents, PeerView } from './types.js'

export interface GatewayInit {
  host: string
  /** 0 picks a free port */
  port: number
  /** folder of the built web UI; default `ui/dist` of the package */
  uiDir?: string
  /** TLS, Host/Origin checks, limits (security.ts); default: plain HTTP, loopback names, no CORS */
  security?: GatewaySecurityInit
  /** web UI users (cookie identity, nickname, bans); without it every requester is an API key or address */
  users?: UserDirectory
  /** `/realm/speech` (speech-ws.ts) settings over its defaults; recognition is this node's own `stt` worker's engine */
  speech?: Partial<SpeechSocketInit>
}

export class GatewayListenError extends RealmError {
  override name = 'GatewayListenError'
}

export class Gateway implements Startable {
  private readonly log = logger('realm:gateway')
  readonly app = new Koa()
  readonly server: http.Server
  readonly eventsSocket: EventsSocket
  readonly speechSocket: SpeechSocket
  readonly security: GatewaySecurity
  readonly users?: UserDirectory
  private address?: AddressInfo

  constructor (private readonly components: GatewayComponents, private readonly init: GatewayInit) {
    this.security = new GatewaySecurity(init.host, init.security)
    // X-Forwarded-* are believed only behind a proxy the sysop declared (http.trust_proxy), last hop only
    this.app.proxy = this.security.trustProxy
    this.app.maxIpsCount = 1
    this.app.silent = true
    this.app.on('error', (err) => { this.log.error('route error: %s', errorMessage(err)) })
    this.users = init.users
    const users = init.users
    this.eventsSocket = new EventsSocket({ events: components.events, messagesPerS: this.security.wsMessagesPerS, userOf: users == null ? undefined : (req) => users.fromRequest(req), isSysop: components.sysop == null ? undefined : (req) => components.sysop!.auth.isSysopRequest(req) })
    // a ban is effective at once: the user's event sockets close (node.ts cancels their tasks)
    users?.onBan((id, banned) => { if (banned) this.eventsSocket.closeUser(id) })
    // the web UI's microphone, recognised by this node's own offline engine (its `stt` worker says it works)
    this.speechSocket = new SpeechSocket({
      sttStatus: async () => await localSttStatus(components.localWorkers(), async () => await this.speechSocket.engines()),
      userOf: users == null ? undefined : (req) => users.fromRequest(req),
      ...init.speech
    })
    users?.onBan((id, banned) => { if (banned) this.speechSocket.closeUser(id) })

    const realm = realmRoutes(components, { users })
    const ollama = ollamaRoutes(components)
    const openai = openaiRoutes(components)
    const sysop = components.sysop != null ? sysopRoutes(components.sysop) : undefined
    this.app.use(this.security.middleware())
    this.app.use(async (ctx, next) => {
      ctx.set('X-Content-Type-Options', 'nosniff')
      await next()
    })
    if (users != null) {
      this.app.use(userIdentity(users))
      const banned = bannedCheck(users)
      const bannedAnswer = realmErrors()
      this.app.use(async (ctx, next) => {
        // the UI's own files still load for a banned user, so the page can say why nothing works
        if (ctx.method === 'GET' && !/^\/(realm|api|v1)\//.test(ctx.path)) return await next()
        let allowed = false
        await bannedAnswer(ctx, async () => { await banned(ctx, async () => { allowed = true }) })
        if (allowed) await next()
      })
    }
    this.app.use(async (ctx, next) => {
      if (ctx.path.startsWith('/realm/')) {
        await realmErrors()(ctx, async () => {
          // every /realm/sysop path needs the sysop, unknown ones too (401 before 404)
          const routes = sysop != null && isSysopPath(ctx.path) ? sysop : realm.routes()
          await routes(ctx as any, async () => {
            throw new HttpError(404, 'NOT_FOUND', `no route ${ctx.method} ${ctx.path}`)
          })
        })
        return
      }
      await next()
    })
    this.app.use(ollama.routes())
    this.app.use(ollama.allowedMethods())
    this.app.use(openai.routes())
    this.app.use(openai.allowedMethods())
    this.app.use(uiMiddleware(init.uiDir))

    // the same app over HTTPS when a certificate is configured (checked before anything listens)
    this.server = this.security.tls === undefined
      ? http.createServer(this.security.serverOptions(), this.app.callback())
      : https.createServer(this.security.serverOptions(), this.app.callback())
    this.security.attach(this.server)
    // headers and request timeouts bound what a slow client can hold
    this.server.headersTimeout = 20_000
    this.server.requestTimeout = 0
    this.server.keepAliveTimeout = 5_000
    this.server.on('upgrade', (req, socket, head) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname
      if (path === '/realm/events') {
        if (!this.security.allowUpgrade(req, socket)) return
        this.eventsSocket.handleUpgrade(req, socket, head)
      } else if (path === '/realm/speech') {
        if (!this.security.allowUpgrade(req, socket)) return
        this.speechSocket.handleUpgrade(req, socket, head)
      } else {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
      }
    })
  }

  async start (): Promise<void> {
    this.eventsSocket.start()
    this.speechSocket.start()
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server.off('listening', onListening)
        if (err.code === 'EADDRINUSE') {
          reject(new GatewayListenError('HTTP_PORT_IN_USE', `HTTP port ${this.init.host}:${this.init.port} is already in use`))
        } else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
          reject(new GatewayListenError('HTTP_ADDRESS_UNAVAILABLE', `cannot listen on ${this.init.host}: ${err.code}`))
        } else if (err.code === 'EACCES') {
          reject(new GatewayListenError('HTTP_PORT_DENIED', `not allowed to listen on port ${this.init.port}`))
        } else {
          reject(new GatewayListenError('HTTP_LISTEN_FAILED', `cannot listen on ${this.init.host}:${this.init.port}: ${err.message}`))
        }
      }
      const onListening = (): void => {
        this.server.off('error', onError)
        resolve()
      }
      this.server.once('error', onError)
      this.server.once('listening', onListening)
      this.server.listen(this.init.port, this.init.host)
    })
    this.address = this.server.address() as AddressInfo
  }

  async stop (): Promise<void> {
    this.eventsSocket.stop()
    this.speechSocket.stop()
    await new Promise<void>((resolve) => {
      this.server.close(() => { resolve() })
      this.server.closeAllConnections()
    })
  }

  /** The gateway URL, e.g. `http://127.0.0.1:5000` */
  get url (): string {
    if (this.address == null) throw new Error('gateway not started')
    const host = this.address.family === 'IPv6' ? `[${this.address.address}]` : this.address.address
    return `${this.security.tls === undefined ? 'http' : 'https'}://${host}:${this.address.port}`
  }
}
