/**
 * nginx as a plain streaming reverse proxy, for benchmarks: a child process with its own config,
 * pid, logs and temp folders in a temp dir, listening on 127.0.0.1 at a free port. It never reads
 * or writes the system's nginx config, logs or port 80.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'

/** Where Debian's `nginx` package puts the binary */
export const NGINX_BIN = '/usr/sbin/nginx'
/** The Debian package that provides it */
export const NGINX_PACKAGE = 'nginx'
/** How long nginx may take to answer its first request */
const START_DEADLINE_MS = 10_000
/** Idle upstream connections kept open, so nginx reuses them as the node's fetch does */
const UPSTREAM_KEEPALIVE = 32

export interface NginxProxy {
  /** `http://127.0.0.1:port` */
  url: string
  stop: () => Promise<void>
}

/** True when the nginx binary is installed */
export async function nginxAvailable (bin = NGINX_BIN): Promise<boolean> {
  return await fs.access(bin, fs.constants.X_OK).then(() => true, () => false)
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => { resolve(port) })
    })
  })
}

function config (dir: string, port: number, upstream: URL): string {
  return `# written by scripts/bench/nginx.ts for one benchmark run
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream backend {
    server ${upstream.host};
    keepalive ${UPSTREAM_KEEPALIVE};
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`
}

/** Starts nginx proxying everything to `upstream` (an `http://host:port` URL) */
export async function startNginx (upstream: string, bin = NGINX_BIN): Promise<NginxProxy> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-bench-nginx-'))
  const port = await freePort()
  const conf = path.join(dir, 'nginx.conf')
  await fs.writeFile(conf, config(dir, port, new URL(upstream)))
  // -e: the error log before the config is read (else nginx opens /var/log/nginx/error.log)
  const child: ChildProcess = spawn(bin, ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  let gone = false
  void exited.then(() => { gone = true })

  const stop = async (): Promise<void> => {
    if (!gone) {
      child.kill('SIGTERM')
      await exited
    }
    await fs.rm(dir, { recursive: true, force: true })
  }

  const url = `http://127.0.0.1:${port}`
  const deadline = performance.now() + START_DEADLINE_MS
  for (;;) {
    if (gone) {
      const log = await fs.readFile(path.join(dir, 'error.log'), 'utf8').catch(() => '')
      await stop()
      throw new Error(`nginx exited at start: ${(stderr + log).trim()}`)
    }
    const ok = await fetch(url + '/').then(async res => { await res.arrayBuffer(); return res.ok }, () => false)
    if (ok) return { url, stop }
    if (performance.now() > deadline) {
      await stop()
      throw new Error(`nginx did not answer within ${START_DEADLINE_MS} ms`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
