/**
 * `--worker BACKEND=TARGET` parsing, worker ids, and the one place that handles credentials in
 * a target URL (userinfo and secret-looking query parameters): `redactTarget` strips them for
 * logs and status, `connectionOf` turns them into request headers.
 */
import { createHash } from 'node:crypto'
import { BACKENDS, ModelNameSchema, TASK_KINDS } from '../../protocol/kinds.js'
import type { Backend, TaskKind } from '../../protocol/kinds.js'
import { ANTHROPIC_VERSION, DEFAULT_TARGETS, MAX_SPEC_LENGTH } from './constants.js'
import { InvalidWorkerSpecError } from './errors.js'
import type { SpecModel, WorkerSpec } from './types.js'

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

/** Stable id: `${backend}-${first 8 hex of sha256(redacted target [+ '#' + model(s)])}` */
export function workerId (spec: WorkerSpec): string {
  const models = spec.model ?? spec.models?.map(m => m.name).join(',')
  const key = redactTarget(spec.target) + (models !== undefined ? `#${models}` : '')
  return `${spec.backend}-${createHash('sha256').update(key).digest('hex').slice(0, 8)}`
}

/** Words a `#KIND=MODEL` fragment may use: the task kinds, and `vision` (chat that reads images) */
const FRAGMENT_KINDS = [...TASK_KINDS, 'vision'] as const

/**
 * One model of a `#fragment`: `MODEL`, or `KIND[+KIND…]=MODEL` where KIND is a task kind or
 * `vision` (`imagine=sdxl`, `chat+vision=llava`). A prefix that is not made of those words is part
 * of the name. Undefined when the name is not a model name.
 */
export function parseSpecModel (text: string): SpecModel | undefined {
  const eq = text.indexOf('=')
  const words = eq < 0 ? [] : text.slice(0, eq).toLowerCase().split('+')
  if (eq > 0 && words.every(w => (FRAGMENT_KINDS as readonly string[]).includes(w))) {
    const name = text.slice(eq + 1)
    if (!ModelNameSchema.safeParse(name).success) return undefined
    const vision = words.includes('vision')
    const kinds = TASK_KINDS.filter(k => words.includes(k) || (vision && (k === 'chat' || k === 'generate')))
    return { name, kinds: kinds as TaskKind[], ...(vision ? { vision } : {}) }
  }
  return ModelNameSchema.safeParse(text).success ? { name: text } : undefined
}

/** The models of a `#fragment` (comma separated), failing on one that is not a model name */
function fragmentModels (input: string, url: URL, many: boolean): SpecModel[] | undefined {
  if (url.hash === '' || url.hash === '#') return undefined
  let text: string
  try {
    text = decodeURIComponent(url.hash.slice(1))
  } catch {
    fail(input, 'bad %-escape in #model')
  }
  const parts = many ? text.split(',').map(p => p.trim()).filter(p => p !== '') : [text]
  const models: SpecModel[] = []
  for (const part of parts) {
    const model = parseSpecModel(part)
    if (model === undefined) fail(input, `"${part}" is not a model name (printable, at most 200 characters)`)
    if (!models.some(m => m.name === model.name)) models.push(model)
  }
  return models.length > 0 ? models : undefined
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
  if (url.hash !== '' && !allowFragment) fail(input, '#MODEL is only for agent=URL#model and hf=URL#MODEL,…')
  return url
}

/**
 * Parses `BACKEND[=TARGET]`. `ollama`, `openai`, `sd` (and the paid `claude`, `hf`) may omit
 * `=TARGET` for their usual address; `agent=URL[#model]`; `hf=URL#MODEL[,MODEL…]`;
 * `stt=pocketsphinx|URL`, `tts=espeak-ng|URL`. A model in a fragment may carry its kinds:
 * `agent=URL#imagine=sd-agent`, `hf=URL#embed=BAAI/bge-small-en-v1.5`. URLs must be http(s).
 * Throws InvalidWorkerSpecError (INVALID_WORKER_SPEC) with a one-line reason that never shows
 * credentials.
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

  const url = parseUrl(input, rawTarget, backend === 'agent' || backend === 'hf')
  if (backend === 'agent') {
    const [model] = fragmentModels(input, url, false) ?? []
    url.hash = ''
    if (model === undefined) return { backend, target: stripSlash(url) }
    return {
      backend,
      target: stripSlash(url),
      model: model.name,
      ...(model.kinds !== undefined ? { kinds: model.kinds } : {}),
      ...(model.vision === true ? { vision: true } : {})
    }
  }
  if (backend === 'hf') {
    const models = fragmentModels(input, url, true)
    url.hash = ''
    return { backend, target: stripSlash(url), ...(models !== undefined ? { models } : {}) }
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

/** The API key in a target's userinfo: the password, or the user name when there is none */
export function urlKey (target: string): string | undefined {
  let url: URL
  try {
    url = new URL(target)
  } catch {
    return undefined
  }
  const key = decodeURIComponent(url.password !== '' ? url.password : url.username)
  return key === '' ? undefined : key
}

/**
 * Turns a target into a connection. Credentials in the URL become headers: for `openai` and
 * `hf` the password — or the user name when there is none — is a Bearer token
 * (`https://:sk-…@api.example.com`), for `claude` it is Anthropic's `x-api-key` (every claude
 * request also names `anthropic-version`); for the others `user:pass` is HTTP Basic auth
 * (A1111's `--api-auth`, a reverse proxy in front of Ollama). `apiKey` is used when the URL
 * carries none. Query parameters are kept on every request.
 */
export function connectionOf (spec: WorkerSpec, apiKey?: string): Connection {
  const url = new URL(spec.target)
  const headers: Record<string, string> = {}
  const user = decodeURIComponent(url.username)
  const pass = decodeURIComponent(url.password)
  const key = urlKey(spec.target) ?? (apiKey !== undefined && apiKey !== '' ? apiKey : undefined)
  if (spec.backend === 'claude') {
    headers['anthropic-version'] = ANTHROPIC_VERSION
    if (key !== undefined) headers['x-api-key'] = key
  } else if (spec.backend === 'openai' || spec.backend === 'hf') {
    if (key !== undefined) headers.authorization = `Bearer ${key}`
  } else if (user !== '' || pass !== '') {
    headers.authorization = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64')
  }
  url.username = ''
  url.password = ''
  const search = url.search
  url.search = ''
  return { base: stripSlash(url), search, headers }
}
