/**
 * HTTPS end to end: `realm start --tls-cert … --tls-key …` with a self-signed certificate made at
 * test time serves the API and the events WebSocket over TLS with that certificate, prints an
 * https URL and sends HSTS; a missing, garbage or mismatched key file (flag, environment or
 * config file) is one line on stderr and a non-zero exit, before anything listens.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { X509Certificate, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import fs from 'node:fs/promises'
import https from 'node:https'
import path from 'node:path'
import { WebSocket } from 'ws'
import { Processes, START_ARGS, buildOnce, reasonLines, type RealmNodeProcess, type RunResult } from './realm-cli.js'

const TEST_TIMEOUT_MS = 150_000
const CERT_DAYS = 1

// ---------------------------------------------------------------------------------------------
// a self-signed certificate: openssl when installed, else a minimal X.509 builder on node:crypto

interface CertFiles {
  cert: string
  key: string
  certPem: string
}

function opensslAvailable (): boolean {
  return spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0
}

async function opensslCert (dir: string, name: string): Promise<CertFiles> {
  const cert = path.join(dir, `${name}.crt`)
  const key = path.join(dir, `${name}.key`)
  const r = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', String(CERT_DAYS), '-keyout', key, '-out', cert
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr.toString()}`)
  return { cert, key, certPem: await fs.readFile(cert, 'utf8') }
}

/** DER: tag, length, body */
function der (tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts)
  let len: Buffer
  if (body.length < 0x80) {
    len = Buffer.from([body.length])
  } else {
    const bytes: number[] = []
    for (let n = body.length; n > 0; n >>= 8) bytes.unshift(n & 0xff)
    len = Buffer.from([0x80 | bytes.length, ...bytes])
  }
  return Buffer.concat([Buffer.from([tag]), len, body])
}
const seq = (...parts: Buffer[]): Buffer => der(0x30, ...parts)
function oid (dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number)
  const bytes = [40 * a + b]
  for (const n of rest) {
    const chunk = [n & 0x7f]
    for (let v = n >> 7; v > 0; v >>= 7) chunk.unshift(0x80 | (v & 0x7f))
    bytes.push(...chunk)
  }
  return der(0x06, Buffer.from(bytes))
}
function utcTime (d: Date): Buffer {
  return der(0x17, Buffer.from(d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'))
}

/** An ECDSA P-256 self-signed certificate for localhost and 127.0.0.1, as `openssl req -x509` makes it */
function builtCert (validDays: number): { certPem: string, key: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'))
  const name = seq(der(0x31, seq(oid('2.5.4.3'), der(0x0c, Buffer.from('localhost')))))
  const now = Date.now()
  const san = seq(oid('2.5.29.17'), der(0x04, seq(der(0x82, Buffer.from('localhost')), der(0x87, Buffer.from([127, 0, 0, 1])))))
  const basicConstraints = seq(oid('2.5.29.19'), der(0x01, Buffer.from([0xff])), der(0x04, seq(der(0x01, Buffer.from([0xff])))))
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, Buffer.from([0x01, ...Array.from({ length: 8 }, () => Math.floor(Math.random() * 256))])),
    ecdsaSha256,
    name,
    seq(utcTime(new Date(now - 60_000)), utcTime(new Date(now + validDays * 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, seq(san, basicConstraints))
  )
  const signature = sign('sha256', tbs, privateKey)
  const cert = seq(tbs, ecdsaSha256, der(0x03, Buffer.from([0]), signature))
  const certPem = `-----BEGIN CERTIFICATE-----\n${cert.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`
  return { certPem, key: privateKey }
}

async function selfSigned (dir: string, name: string): Promise<CertFiles> {
  if (opensslAvailable()) return await opensslCert(dir, name)
  const { certPem, key } = builtCert(CERT_DAYS)
  const files = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`), certPem }
  await fs.writeFile(files.cert, certPem)
  await fs.writeFile(files.key, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  return files
}

// ---------------------------------------------------------------------------------------------

interface HttpsAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  fingerprint256: string
}

/** GET over HTTPS trusting only `ca` (the node's own certificate) */
async function httpsGet (url: string, ca?: string): Promise<HttpsAnswer> {
  return await new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: 10_000 }, (res) => {
      const fingerprint256 = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body, fingerprint256 }) })
    })
    req.on('timeout', () => { req.destroy(new Error('timeout')) })
    req.on('error', reject)
  })
}

/** Open the events WebSocket over wss; the first message, or the refusal's status */
async function openWss (url: string, ca: string, headers: Record<string, string> = {}): Promise<{ first?: any, status?: number }> {
  const ws = new WebSocket(url, { ca, headers })
  try {
    return await new Promise((resolve, reject) => {
      ws.once('message', (data) => { resolve({ first: JSON.parse(data.toString()) }) })
      ws.once('unexpected-response', (_req, res) => { res.resume(); resolve({ status: res.statusCode }) })
      ws.once('error', reject)
    })
  } finally {
    ws.terminate()
  }
}

/** The one line a failed `realm start` printed on stderr (config repairs aside) */
function failureLine (result: RunResult, what: string): string {
  assert.notEqual(result.code, 0, `${what} exited 0`)
  assert.notEqual(result.code, null, `${what} was killed instead of exiting (${result.stderr})`)
  const lines = reasonLines(result.stderr).filter(l => !l.startsWith('config: '))
  assert.equal(lines.length, 1, `${what}: expected one line on stderr, got ${JSON.stringify(result.stderr)}`)
  return lines[0]
}

async function exists (file: string): Promise<boolean> {
  return await fs.access(file).then(() => true, () => false)
}

describe('e2e: HTTPS gateway', function () {
  this.timeout(TEST_TIMEOUT_MS)
  const procs = new Processes()
  let certs: string
  let good: CertFiles
  let other: CertFiles
  let node: RealmNodeProcess
  let url: string

  before(async function () {
    this.timeout(600_000)
    buildOnce()
    certs = await procs.tempDir('realm-tls-certs-')
    good = await selfSigned(certs, 'node')
    other = await selfSigned(certs, 'other')
    node = procs.start(await procs.tempDir('realm-tls-'), ['--tls-cert', good.cert, '--tls-key', good.key])
    url = (await node.started()).http
  })
  after(async () => { await procs.cleanup() })

  it('the certificate builder used without openssl makes a certificate that verifies with its key', () => {
    const { certPem, key } = builtCert(CERT_DAYS)
    const x509 = new X509Certificate(certPem)
    assert.ok(x509.checkPrivateKey(key))
    assert.ok(x509.verify(x509.publicKey))
    assert.ok(x509.checkHost('localhost') === 'localhost' && x509.checkIP('127.0.0.1') === '127.0.0.1')
  })

  it('prints and records an https URL, and serves /realm/status with its certificate', async () => {
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/)
    assert.ok(node.stdout.includes(`gateway      ${url}/`), node.stdout)
    assert.match(node.stdout, /tls {10}.*node\.crt \(valid until /)

    const res = await httpsGet(`${url}/realm/status`, good.certPem)
    assert.equal(res.status, 200)
    assert.equal(JSON.parse(res.body).peerId, node.info!.peerId)
    assert.equal(res.fingerprint256, new X509Certificate(good.certPem).fingerprint256)
    assert.match(String(res.headers['strict-transport-security']), /^max-age=\d{7,}/)
    assert.equal(res.headers['x-content-type-options'], 'nosniff')

    // nobody else's certificate: a client trusting only the other one refuses it
    await assert.rejects(httpsGet(`${url}/realm/status`, other.certPem), /self[- ]signed|unable to verify|certificate/i)
  })

  it('serves the events WebSocket over wss, checking its origin (https, this host)', async () => {
    const events = `${url.replace(/^https/, 'wss')}/realm/events`
    assert.equal((await openWss(events, good.certPem)).first?.type, 'hello')
    assert.equal((await openWss(events, good.certPem, { origin: url })).first?.type, 'hello')
    // the same host over plain http is another origin
    assert.equal((await openWss(events, good.certPem, { origin: url.replace('https:', 'http:') })).status, 403)
  })

  it('the CLI talks to it over HTTPS, trusting the node\'s own certificate from node.json', async () => {
    assert.equal(typeof node.info!.tlsCert, 'string')
    const r = await procs.run(['status', '--data', node.dataDir, '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).peerId, node.info!.peerId)
  })

  it('stops cleanly', async () => {
    const exit = await node.stop('SIGTERM')
    assert.equal(exit.code, 0, node.describe())
  })

  it('a bad certificate or key is one line and a non-zero exit, before anything listens', async () => {
    const garbage = path.join(certs, 'garbage.key')
    await fs.writeFile(garbage, 'not a key\n')
    const cases: Array<{ what: string, args?: string[], env?: NodeJS.ProcessEnv, reason: RegExp }> = [
      { what: 'a key of another certificate', args: ['--tls-cert', good.cert, '--tls-key', other.key], reason: /TLS key .*other\.key does not belong to the certificate .*node\.crt/ },
      { what: 'a garbage key', args: ['--tls-cert', good.cert, '--tls-key', garbage], reason: /garbage\.key is not a PEM private key/ },
      { what: 'a missing certificate', args: ['--tls-cert', path.join(certs, 'missing.crt'), '--tls-key', good.key], reason: /missing\.crt: no such file/ },
      { what: 'a certificate without its key', args: ['--tls-cert', good.cert], reason: /HTTPS needs both/ },
      { what: 'the environment', env: { REALM_TLS_CERT: good.cert, REALM_TLS_KEY: other.key }, reason: /does not belong/ }
    ]
    for (const c of cases) {
      const dir = await procs.tempDir('realm-tls-bad-')
      const result = await procs.run(['start', '--data', dir, ...START_ARGS, ...(c.args ?? [])], { env: c.env })
      assert.match(failureLine(result, c.what), c.reason, c.what)
      assert.ok(!await exists(path.join(dir, 'node.json')), `${c.what}: node.json written`)
    }

    // the config file's http.tls_cert / http.tls_key
    const dir = await procs.tempDir('realm-tls-config-')
    await fs.writeFile(path.join(dir, 'config.toml'), `[http]\ntls_cert = ${JSON.stringify(good.cert)}\ntls_key = ${JSON.stringify(other.key)}\n`)
    const result = await procs.run(['start', '--data', dir, ...START_ARGS])
    assert.match(failureLine(result, 'config.toml'), /does not belong/)
    assert.ok(!await exists(path.join(dir, 'node.json')))
    assert.ok(createPrivateKey(await fs.readFile(other.key)).type === 'private')
  })
})
