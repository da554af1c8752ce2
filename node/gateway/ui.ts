/**
 * Serves the built web UI (`ui/dist`). Until it is built, `/` answers a small page that says
 * how to build it, so a node without the UI still tells its user what to do.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import serve from 'koa-static'
import type { Context, Next } from 'koa'

/** The package root, from either `node/gateway/` (sources) or `dist/node/gateway/` (built) */
export function packageRoot (): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir)
  return dir
}

/** The web UI's Content-Security-Policy (security.ts sends it on every page) */
export const CSP = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; connect-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

const FALLBACK = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RentAHal node</title></head>
<body><h1>RentAHal node</h1>
<p>This node is running. Its web UI is not built: run <code>npm run build</code> and reload.</p>
<p>API: <a href="/realm/status">/realm/status</a>, <a href="/realm/peers">/realm/peers</a>, <a href="/realm/models">/realm/models</a>.</p>
</body></html>`

export function uiMiddleware (uiDir?: string) {
  const dir = uiDir ?? path.join(packageRoot(), 'ui', 'dist')
  const staticFiles = serve(dir, { index: 'index.html', maxage: 0, gzip: false, brotli: false })
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return await next()
    ctx.set('Content-Security-Policy', CSP)
    ctx.set('X-Frame-Options', 'DENY')
    ctx.set('Referrer-Policy', 'no-referrer')
    if (fs.existsSync(path.join(dir, 'index.html'))) {
      await staticFiles(ctx, next)
      return
    }
    if (ctx.path === '/' || ctx.path === '/index.html') {
      ctx.type = 'html'
      ctx.body = FALLBACK
      return
    }
    await next()
  }
}
