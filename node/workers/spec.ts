/**
 * `--worker BACKEND=TARGET` parsing, worker ids, and the one place that handles credentials in
 * a target URL (userinfo and secret-looking query parameters): `redactTarget` strips them for
 * logs and status, `connectionOf` turns them into request headers.
 */
import { createHash } from 'node:crypto'
import { BACKENDS, ModelNameSchema } from '../../protocol/kinds.js'
import type { Backend } from '../../protocol/kinds.js'
import { DEFAULT_TARGETS, MAX_SPEC_LENGTH } from './constants.js'
import { InvalidWorkerSpecError } from './errors.js'
import type { WorkerSpec } from './types.js'

/** Query parameters that carry secrets (Azure's `api-key`, signed URLs, tokens) */
const SECRET_PARAM = /^(api[-_]?key|key|token|access[-_]?token|secret|password|pass|auth|sig|signature)$/i
/** Engines `stt` / `tts` may name instead of a URL */
const ENGINES: Partial<Record<Backend, string>> = { stt: 'pocketsphinx', tts: 'espeak-ng' }

/** Removes `user:pass@` and secret query values from anything URL-like in a text */
export function redactText (text: string): string {
  return text
    .replace(/\/\/[^/?#\s@]*@/g, '//')
    .replace(/([?&])([^=&#\s]+)=([^&#\s]*)/g, (all, sep: string, name: string) => SECRET_PARAM.test(name) ? `${sep}${name}=***` : all)
}

/** The target with credentials stripped: userinfo removed, secret query parameters removed */
export function redactTarget (target: string): string {
  let url: URL
  try {
    url = new URL(target)
  } catch {
    return redactText(target)
  }
  url.username = ''
  url.password = ''
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) url.searchParams.delete(name)
  }
  return stripSlash(url)
}

/** `http://host:port/path?query` without the trailing slash of an empty path */
function stripSlash (url: URL): string {
  const auth = url.username !== '' || url.password !== '' ? `${url.username}${url.password !== '' ? `:${url.password}` : ''}@` : ''
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '')
  return `${url.protocol}//${auth}${url.host}${path}${url.search}`
}

/** Stable id: `${backend}-${first 8 hex of sha256(redacted target [+ '#' + model])}` */
export function workerId (spec: WorkerSpec): string {
  const key = redactTarget(spec.target) + (spec.model !== undefined ? `#${spec.model}` : '')
  return `${spec.backend}-${createHash('sha256').update(key).digest('hex').slice(0, 8)}`
}

function fail (input: string, reason: string): never {
  const shown = redactText(input)
  throw new InvalidWorkerSpecError(`invalid worker "${shown}": ${reason}`, { spec: shown })
}

function parseUrl (input: string, text: string, allowFragment: boolean): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    fail(input, 'TARGET must be an http(s) URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(input, `TARGET must be an http(s) URL, not ${url.protocol.slice(0, -1)}`)
  if (url.hostname === '') fail(input, 'TARGET URL has no host')
  if (url.hash !== '' && !allowFragment) fail(input, '#MODEL is only for agent=URL#model')
  return url
}

/**
 * Parses `BACKEND[=TARGET]`. `ollama`, `openai`, `sd` (and the paid `claude`, `hf`) may omit
 * `=TARGET` for their usual address; `agent=URL[#model]`; `stt=pocketsphinx|URL`,
 * `tts=espeak-ng|URL`. URLs must be http(s). Throws InvalidWorkerSpecError (INVALID_WORKER_SPEC)
 * with a one-line reason that never shows credentials.
 */
export function parseWorkerSpec (s: string): WorkerSpec {
  const input = String(s).trim()
  if (input === '') fail(input, 'empty; expected BACKEND=TARGET')
  if (input.length > MAX_SPEC_LENGTH) fail(input.slice(0, 40) + '…', `longer than ${MAX_SPEC_LENGTH} characters`)
  if (/\s/.test(input)) fail(input, 'contains whitespace')
  const eq = input.indexOf('=')
  const name = (eq < 0 ? input : input.slice(0, eq)).toLowerCase()
  if (!(BACKENDS as readonly string[]).includes(name)) fail(input, `unknown backend "${name}"; expected one of ${BACKENDS.join(', ')}`)
  const backend = name as Backend
  const rawTarget = eq < 0 ? undefined : input.slice(eq + 1)
  if (rawTarget === '') fail(input, 'empty TARGET after "="')

  if (rawTarget === undefined) {
    if (backend in DEFAULT_TARGETS) return { backend, target: DEFAULT_TARGETS[backend as keyof typeof DEFAULT_TARGETS] }
    if (backend === 'agent') fail(input, 'agent needs =URL#model')
    fail(input, `${backend} needs =${ENGINES[backend] ?? ''}|URL`)
  }

  const engine = ENGINES[backend]
  if (engine !== undefined && rawTarget === engine) return { backend, target: engine }
  if (engine !== undefined && !/^https?:/i.test(rawTarget)) fail(input, `${backend} takes ${engine} or an http(s) URL`)

  const url = parseUrl(input, rawTarget, backend === 'agent')
  if (backend === 'agent') {
    let model: string | undefined
    try {
      model = url.hash === '' ? undefined : decodeURIComponent(url.hash.slice(1))
    } catch {
      fail(input, 'bad %-escape in #model')
    }
    url.hash = ''
    if (model !== undefined && !ModelNameSchema.safeParse(model).success) fail(input, `"${model}" is not a model name (printable, at most 200 characters)`)
    return { backend, target: stripSlash(url), ...(model !== undefined ? { model } : {}) }
  }
  return { backend, target: stripSlash(url) }
}

/** How to reach a backend: base URL without credentials, headers carrying them, extra query */
export interface Connection {
  /** `protocol://host[:port][/path]`, no trailing slash */
  base: string
  /** query string (with `?`) appended to every request, or '' */
  search: string
  headers: Record<string, string>
}

/**
 * Turns a target into a connection. Credentials in the URL become headers: for `openai` (and
 * `claude`, `hf`) the password — or the user name when there is none — is a Bearer token
 * (`https://:sk-…@api.example.com`); for the others `user:pass` is HTTP Basic auth (A1111's
 * `--api-auth`, a reverse proxy in front of Ollama). Query parameters are kept on every request.
 */
export function connectionOf (spec: WorkerSpec): Connection {
  const url = new URL(spec.target)
  const headers: Record<string, string> = {}
  const user = decodeURIComponent(url.username)
  const pass = decodeURIComponent(url.password)
  if (user !== '' || pass !== '') {
    if (spec.backend === 'openai' || spec.backend === 'claude' || spec.backend === 'hf') {
      headers.authorization = `Bearer ${pass !== '' ? pass : user}`
    } else {
      headers.authorization = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64')
    }
  }
  url.username = ''
  url.password = ''
  const search = url.search
  url.search = ''
  return { base: stripSlash(url), search, headers }
}
