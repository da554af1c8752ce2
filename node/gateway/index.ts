/**
 * The gateway: the node's HTTP API (realm routes, Ollama and OpenAI facades), the events
 * WebSocket and the web UI, on Koa. Binds loopback unless told otherwise.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Koa from 'koa'
import { logger } from '@libp2p/logger'
import type { Startable } from '../startable.js'
import type { GatewayComponents } from './types.js'
import { realmErrors, HttpError } from './errors.js'
import { realmRoutes } from './routes/realm.js'
import { ollamaRoutes } from './routes/ollama.js'
import { openaiRoutes } from './routes/openai.js'
import { EventsSocket } from './events-ws.js'
import { uiMiddleware } from './ui.js'
import { RealmError, errorMessage } from '../../protocol/errors.js'

export type { GatewayComponents, PeerView } from './types.js'

export interface GatewayInit {
  host: string
  /** 0 picks a free port */
  port: number
  /** folder of the built web UI; default `ui/dist` of the package */
  uiDir?: string
}

export class GatewayListenError extends RealmError {
  override name = 'GatewayListenError'
}

export class Gateway implements Startable {
  private readonly log = logger('realm:gateway')
  readonly app = new Koa()
  readonly server: http.Server
  readonly eventsSocket: EventsSocket
  private address?: AddressInfo

  constructor (private readonly components: GatewayComponents, private readonly init: GatewayInit) {
    this.app.proxy = false
    this.app.silent = true
    this.app.on('error', (err) => { this.log.error('route error: %s', errorMessage(err)) })
    this.eventsSocket = new EventsSocket({ events: components.events })

    const realm = realmRoutes(components)
    const ollama = ollamaRoutes(components)
    const openai = openaiRoutes(components)
    this.app.use(async (ctx, next) => {
      ctx.set('X-Content-Type-Options', 'nosniff')
      await next()
    })
    this.app.use(async (ctx, next) => {
      if (ctx.path.startsWith('/realm/')) {
        await realmErrors()(ctx, async () => {
          await realm.routes()(ctx as any, async () => {
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

    this.server = http.createServer(this.app.callback())
    // headers and request timeouts bound what a slow client can hold
    this.server.headersTimeout = 20_000
    this.server.requestTimeout = 0
    this.server.keepAliveTimeout = 5_000
    this.server.on('upgrade', (req, socket, head) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname
      if (path === '/realm/events') {
        this.eventsSocket.handleUpgrade(req, socket, head)
      } else {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
      }
    })
  }

  async start (): Promise<void> {
    this.eventsSocket.start()
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
    await new Promise<void>((resolve) => {
      this.server.close(() => { resolve() })
      this.server.closeAllConnections()
    })
  }

  /** The gateway URL, e.g. `http://127.0.0.1:5000` */
  get url (): string {
    if (this.address == null) throw new Error('gateway not started')
    const host = this.address.family === 'IPv6' ? `[${this.address.address}]` : this.address.address
    return `http://${host}:${this.address.port}`
  }
}
