/** `realm start`: run a node until SIGINT/SIGTERM */
import fs from 'node:fs/promises'
import path from 'node:path'
import { RealmNode, NODE_JSON } from '../node.js'
import { defaultConfig, resolveConfig, type ConfigFlags } from '../config/index.js'
import { parseWorkerSpec } from '../workers/index.js'
import { isRealmError } from '../../protocol/errors.js'
import { CliError } from './errors.js'
import { applyTlsPaths, loadTlsFiles, tlsPathsFrom } from '../gateway/security-tls.js'
import { respawnCommandOfThisProcess } from '../watchdog/index.js'

export interface StartValues {
  http?: string
  listen?: string[]
  bootstrap?: string[]
  worker?: string[]
  'no-detect'?: boolean
  'no-mdns'?: boolean
  /** `--tls-cert FILE` (env REALM_TLS_CERT): serve HTTPS */
  'tls-cert'?: string
  /** `--tls-key FILE` (env REALM_TLS_KEY) */
  'tls-key'?: string
}

/** How long a clean stop may take before the process gives up on it */
const STOP_DEADLINE_MS = 15_000

export async function startCommand (values: StartValues, dataDir: string): Promise<number> {
  const flags: ConfigFlags = {
    http: values.http,
    listen: values.listen,
    bootstrap: values.bootstrap,
    worker: values.worker
  }
  if (values['no-detect'] === true) flags.detect = false
  if (values['no-mdns'] === true) flags.mdns = false
  // flag > environment; above the config file's http.tls_cert / http.tls_key
  const tls = tlsPathsFrom({ cert: values['tls-cert'], key: values['tls-key'] }, process.env)

  // bad flags are refused before anything touches the data dir
  try {
    const checked = resolveConfig({ file: defaultConfig(), env: process.env, flags })
    for (const w of checked.workers.list) parseWorkerSpec(w)
    // a missing, unreadable or mismatched certificate or key: one line, before anything listens
    if (tls.cert !== undefined && tls.key !== undefined) loadTlsFiles(tls.cert, tls.key)
  } catch (err) {
    if (isRealmError(err)) throw new CliError(err.code, err.message, 2)
    throw err
  }

  let node: RealmNode
  try {
    // this node owns its process: a frozen event loop restarts it with this command line (watchdog)
    node = await RealmNode.create({ dataDir, flags, env: process.env, respawn: respawnCommandOfThisProcess(), configure: (config) => { applyTlsPaths(config, tls) } })
  } catch (err) {
    if (isRealmError(err) && err.code === 'DATA_DIR_LOCKED') {
      const pid = await fs.readFile(path.join(dataDir, NODE_JSON), 'utf8').then(t => JSON.parse(t).pid, () => undefined)
      throw new CliError('DATA_DIR_LOCKED', `data dir ${dataDir} is in use by another node${pid != null ? ` (pid ${pid})` : ''}`)
    }
    throw err
  }

  // from here on a signal stops the node; a second one gives up waiting
  let stopping = false
  const done = new Promise<number>((resolve) => {
    const onSignal = (signal: string): void => {
      if (stopping) {
        process.stderr.write(`realm: ${signal} again, exiting without a clean stop\n`)
        process.exit(130)
      }
      stopping = true
      process.stderr.write(`realm: ${signal}, stopping…\n`)
      const deadline = setTimeout(() => {
        process.stderr.write('realm: clean stop took too long, exiting\n')
        process.exit(1)
      }, STOP_DEADLINE_MS)
      deadline.unref()
      node.stop().then(() => { resolve(0) }, () => { resolve(1) })
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })

  try {
    await node.start()
  } catch (err) {
    throw toStartError(err)
  }

  const workers = node.workers.map(w => `${w.backend} ${w.status().target}`)
  process.stdout.write([
    `RentAHal node ${node.peerId}`,
    `  gateway      ${node.url}/`,
    ...tlsLines(node),
    `  data dir     ${node.dataDir}`,
    `  sysop token  ${path.join(node.dataDir, 'sysop.token')}`,
    ...node.multiaddrs().map((a, i) => `  ${i === 0 ? 'p2p         ' : '            '} ${a}`),
    `  workers      ${workers.length === 0 ? 'none (attach one with --worker ollama=http://127.0.0.1:11434)' : workers.join(', ')}`,
    ''
  ].join('\n'))

  return await done
}

/** How libp2p lists each address it could not listen on: `  /ip4/…/tcp/9000: Error: listen EADDRINUSE: …` */
const FAILED_ADDR_RE = /^\s*(\/\S+): (?:[A-Za-z]*Error: )?(.+)$/gm

/** libp2p reports a taken port as a generic listen error (with stack traces inside): name the address */
function toStartError (err: unknown): unknown {
  if (isRealmError(err)) return err
  const e = err as any
  const message = String(e?.message ?? e)
  const text = `${e?.name ?? ''} ${message} ${e?.cause?.code ?? ''} ${e?.code ?? ''}`
  if (/EADDRINUSE|UnsupportedListenAddress|NoValidAddresses/i.test(text)) {
    const failed = [...message.matchAll(FAILED_ADDR_RE)].map(m => `${m[1]} (${m[2].trim()})`)
    return new CliError('P2P_PORT_IN_USE', failed.length > 0
      ? `cannot listen on the p2p address${failed.length === 1 ? '' : 'es'} ${failed.join(', ')}`
      : `cannot listen on the p2p addresses (port in use?): ${message.split('\n')[0]}`)
  }
  return err
}

/** The certificate an HTTPS gateway serves, and a warning when it has expired */
function tlsLines (node: RealmNode): string[] {
  const tls = node.gateway.security.tls
  if (tls === undefined) return []
  const expired = tls.validTo.getTime() < Date.now()
  return [`  tls          ${tls.certPath} (${expired ? 'EXPIRED on' : 'valid until'} ${tls.validTo.toISOString()})`]
}
