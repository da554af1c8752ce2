/** Realm routes: status, peers, models (DESIGN.md external contract) */
import { Router } from '@koa/router'
import type { GatewayComponents } from '../types.js'
import { taskRoutes } from './tasks.js'
import { userRoutes, type UserDirectory } from '../users.js'

export interface RealmRoutesInit {
  /** web UI users: `GET|POST /realm/me` when set */
  users?: UserDirectory
}

export function realmRoutes (c: GatewayComponents, init: RealmRoutesInit = {}): Router {
  const router = new Router({ prefix: '/realm' })

  router.get('/status', (ctx) => {
    const workers = c.localWorkers()
    ctx.body = {
      peerId: c.peerId,
      multiaddrs: c.multiaddrs(),
      version: c.version,
      uptimeS: Math.round((Date.now() - c.startedAt) / 1000),
      peers: c.peers().length,
      connections: c.connections(),
      workers: workers.length,
      workersOk: workers.filter(w => w.health.state === 'ok').length,
      models: c.models().length
    }
  })

  router.get('/peers', (ctx) => {
    ctx.body = {
      peers: c.peers().map(p => ({
        peerId: p.peerId,
        multiaddrs: p.multiaddrs,
        name: p.name,
        version: p.version,
        capabilities: {
          workers: p.workers.map(w => ({ id: w.id, backend: w.backend, kinds: w.kinds, models: w.models }))
        },
        health: {
          ...p.health,
          workers: Object.fromEntries(p.workers.map(w => [w.id, w.health]))
        },
        rttMs: p.rttMs,
        blocked: p.blocked,
        firstSeen: new Date(p.firstSeen).toISOString(),
        lastSeen: new Date(p.lastSeen).toISOString()
      }))
    }
  })

  router.get('/workers', (ctx) => {
    ctx.body = { workers: c.localWorkers() }
  })

  router.get('/models', (ctx) => {
    ctx.body = {
      models: c.models().map(m => ({
        name: m.name,
        kinds: m.kinds,
        peers: m.peers,
        context: m.info.context,
        family: m.info.family,
        parameterSize: m.info.parameterSize
      }))
    }
  })

  const tasks = taskRoutes(c)
  router.use(tasks.routes(), tasks.allowedMethods())

  if (init.users != null) {
    const me = userRoutes(init.users)
    router.use(me.routes(), me.allowedMethods())
  }

  return router
}
