/**
 * HTTPS for the gateway: the certificate and key files (`--tls-cert` / `--tls-key`,
 * `REALM_TLS_CERT` / `REALM_TLS_KEY`, `http.tls_cert` / `http.tls_key`), read and checked before
 * anything listens, so a bad file is one line and a non-zero exit rather than a half-started node.
 */
import fs from 'node:fs'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import tls from 'node:tls'
import { RealmError } from '../../protocol/errors.js'
import type { RealmConfig } from '../config/index.js'

/** Largest certificate chain or key file read (real ones are a few KiB) */
export const MAX_TLS_FILE_BYTES = 1024 * 1024

export class TlsConfigError extends RealmError {
  override name = 'TlsConfigError'
}

/** What the HTTPS server is built with */
export interface TlsMaterial {
  /** PEM certificate, then any intermediates */
  cert: Buffer
  /** PEM private key (unencrypted) */
  key: Buffer
  certPath: string
  keyPath: string
  /** the leaf certificate's end of validity */
  validTo: Date
}

/** TLS paths given on the command line or in the environment (flag > environment) */
export interface TlsPaths {
  cert?: string
  key?: string
}

/** `--tls-cert` / `--tls-key` over `REALM_TLS_CERT` / `REALM_TLS_KEY`; empty values count as not given */
export function tlsPathsFrom (flags: TlsPaths, env: NodeJS.ProcessEnv): TlsPaths {
  const pick = (flag: string | undefined, name: string): string | undefined => {
    const value = (flag ?? env[name])?.trim()
    return value === undefined || value === '' ? undefined : value
  }
  return { cert: pick(flags.cert, 'REALM_TLS_CERT'), key: pick(flags.key, 'REALM_TLS_KEY') }
}

/** Put the given paths into the config (above the config file: flag > environment > file) */
export function applyTlsPaths (config: RealmConfig, paths: TlsPaths): void {
  if (paths.cert !== undefined) config.http.tls_cert = paths.cert
  if (paths.key !== undefined) config.http.tls_key = paths.key
}

/** The config's certificate and key, checked; undefined when neither is set (plain HTTP) */
export function tlsFromConfig (config: RealmConfig): TlsMaterial | undefined {
  const cert = config.http.tls_cert.trim()
  const key = config.http.tls_key.trim()
  if (cert === '' && key === '') return undefined
  return loadTlsFiles(cert, key)
}

/**
 * Read and check a certificate and its key: both given, readable, PEM, the key unencrypted and
 * belonging to the certificate. Throws `TlsConfigError` with a one-line reason:
 * `TLS_INCOMPLETE`, `TLS_FILE_NOT_FOUND`, `TLS_FILE_UNREADABLE`, `TLS_INVALID_CERT`,
 * `TLS_INVALID_KEY`, `TLS_KEY_ENCRYPTED`, `TLS_KEY_MISMATCH`.
 */
export function loadTlsFiles (certPath: string, keyPath: string): TlsMaterial {
  if (certPath === '' || keyPath === '') {
    const [has, lacks] = certPath === '' ? ['key (--tls-key, http.tls_key)', 'certificate (--tls-cert, http.tls_cert)'] : ['certificate (--tls-cert, http.tls_cert)', 'key (--tls-key, http.tls_key)']
    throw new TlsConfigError('TLS_INCOMPLETE', `a TLS ${has} is set but no ${lacks}: HTTPS needs both`)
  }
  const cert = readTlsFile(certPath, 'certificate')
  const key = readTlsFile(keyPath, 'key')

  let x509: X509Certificate
  try {
    x509 = new X509Certificate(cert)
  } catch {
    throw new TlsConfigError('TLS_INVALID_CERT', `TLS certificate ${certPath} is not a PEM certificate`)
  }
  let privateKey
  try {
    privateKey = createPrivateKey(key)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ERR_MISSING_PASSPHRASE' || /passphrase|encrypted/i.test((err as Error).message)) {
      throw new TlsConfigError('TLS_KEY_ENCRYPTED', `TLS key ${keyPath} is encrypted with a passphrase: the node needs it unencrypted (keep it mode 0600)`)
    }
    throw new TlsConfigError('TLS_INVALID_KEY', `TLS key ${keyPath} is not a PEM private key`)
  }
  if (privateKey.type !== 'private' || !x509.checkPrivateKey(privateKey)) {
    throw new TlsConfigError('TLS_KEY_MISMATCH', `TLS key ${keyPath} does not belong to the certificate ${certPath}`)
  }
  try {
    // what the server will do with them: catches a chain OpenSSL refuses
    tls.createSecureContext({ cert, key })
  } catch (err) {
    throw new TlsConfigError('TLS_INVALID_CERT', `TLS certificate ${certPath} and key ${keyPath} are refused: ${(err as Error).message.split('\n')[0]}`)
  }
  return { cert, key, certPath, keyPath, validTo: new Date(x509.validTo) }
}

function readTlsFile (file: string, what: 'certificate' | 'key'): Buffer {
  try {
    const stat = fs.statSync(file)
    if (stat.isDirectory()) throw new TlsConfigError('TLS_FILE_UNREADABLE', `TLS ${what} ${file} is a directory`)
    if (stat.size > MAX_TLS_FILE_BYTES) throw new TlsConfigError(what === 'key' ? 'TLS_INVALID_KEY' : 'TLS_INVALID_CERT', `TLS ${what} ${file} is over ${MAX_TLS_FILE_BYTES} bytes: not a PEM file`)
    return fs.readFileSync(file)
  } catch (err) {
    if (err instanceof TlsConfigError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new TlsConfigError('TLS_FILE_NOT_FOUND', `TLS ${what} ${file}: no such file`)
    if (code === 'EACCES' || code === 'EPERM') throw new TlsConfigError('TLS_FILE_UNREADABLE', `TLS ${what} ${file}: permission denied`)
    throw new TlsConfigError('TLS_FILE_UNREADABLE', `TLS ${what} ${file}: cannot read (${code ?? (err as Error).message})`)
  }
}
