/**
 * The gateway under fuzz: a real node in this process with stand-in workers (Ollama, an
 * OpenAI-compatible server, AUTOMATIC1111), and every HTTP route of it driven with requests as
 * the Ollama / OpenAI clients, the web UI and the sysop tools send them, then mutated: bodies
 * (schema-aware, as for the decoders), query strings, paths, headers, Content-Length lies,
 * chunking, methods, clients that go away. Each answer must come, in time, in the route's
 * documented error shape and with a 4xx for bad input — never a 500 — and the node must still
 * answer `/realm/status` after each batch.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { z } from 'zod'
import WebSocket from 'ws'
import { RealmNode } from '../../node/node.js'
import { TaskKindSchema } from '../../protocol/kinds.js'
import { TaskOptionsSchema, TASK_INPUT_SCHEMAS } from '../../protocol/task.js'
import * as ollamaCompat from '../../node/gateway/compat/ollama.js'
import * as openaiCompat from '../../node/gateway/compat/openai.js'
import { OLLAMA_PULL_NOT_FOUND } from '../../node/gateway/routes/ollama.js'
import { startA1111Standin, startOllamaStandin, startOpenAIStandin, solidPng, tonePcm, wavFromPcm, type Standin } from '../../test/standins/index.js'
import { Rng, caseSeed } from './rng.js'
import { jsonSchemaOf, type JsonSchema, type SchemaOverride } from './schema.js'
import { Doc, mutateBytes, mutateValue, randomBytes, randomString, NASTY_STRINGS } from './mutate.js'
import { rawExchange, type RawExchange, type RawResponse } from './http-client.js'
import { addFinding, newStats, type TargetStats } from './runner.js'
import { preview, stackTop, type Finding } from './targets.js'

const enc = new TextEncoder()
const PNG_B64 = solidPng(8, 8, [10, 120, 200]).toString('base64')
const WAV = wavFromPcm(tonePcm(200))

/**
 * encodeURIComponent, except that a lone surrogate (which it throws on) goes out as the three
 * bytes a careless encoder writes for it (`%ED%A0%80`): not UTF-8, so a nastier input still
 */
export function percentEncode (text: string): string {
  let out = ''
  for (const ch of text) {
    const c = ch.codePointAt(0)!
    if (c >= 0xd800 && c <= 0xdfff) out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map(b => `%${b.toString(16).toUpperCase()}`).join('')
    else out += encodeURIComponent(ch)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// the node

export interface FuzzNode {
  node: RealmNode
  host: string
  port: number
  token: string
  /** a web UI user's cookie (`rah_user=…`) and id */
  userCookie: string
  userId: string
  /** a task of this client, for the `/realm/tasks/:id` routes */
  taskId: string
  workerIds: string[]
  /** errors the gateway logged as route errors (status 500 or after the headers went out) */
  routeErrors: Array<{ message: string, at: string }>
  stop: () => Promise<void>
}

/** Waits until `check` is true, polling */
async function until (what: string, check: () => boolean | Promise<boolean>, deadlineMs = 30_000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`fuzz setup: ${what} not within ${deadlineMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

export const FUZZ_MODELS = ['llama3.2:1b', 'llava:7b', 'nomic-embed-text:latest', 'v1-5-pruned-emaonly', 'whisper-1', 'tts-1', 'text-embedding-3-small']

/** A node on loopback with three stand-in backends, a sysop token, a web UI user and one finished task */
export async function startFuzzNode (): Promise<FuzzNode> {
  const standins: Standin[] = [await startOllamaStandin(), await startOpenAIStandin(), await startA1111Standin()]
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-fuzz-'))
  const node = await RealmNode.create({
    dataDir,
    flags: {
      http: '127.0.0.1:0',
      listen: ['/ip4/127.0.0.1/tcp/0'],
      worker: [`ollama=${standins[0].url}`, `openai=${standins[1].url}`, `sd=${standins[2].url}`],
      detect: false,
      mdns: false
    },
    env: {},
    warn: () => {},
    workerInit: { probeIntervalMs: 500 }
  })
  await node.start()
  const routeErrors: FuzzNode['routeErrors'] = []
  node.gateway.app.on('error', (err: unknown, ctx: any) => {
    const e = err as Error & { code?: unknown }
    // a request Node's HTTP parser refused after the answer went out, a client gone mid-body or
    // mid-stream: Koa reports the socket's error here, but it is the client's doing, not a route failing
    if (typeof e?.code === 'string' && (/^HPE_/.test(e.code) || ['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE'].includes(e.code))) return
    routeErrors.push({ message: `${e?.name}: ${String(e?.message).slice(0, 300)} @ ${stackTop(e?.stack ?? '')}`, at: String(ctx?.get?.('x-fuzz-case') ?? '') })
  })
  await until('the stand-ins\' models in the mesh', () => FUZZ_MODELS.every(n => node.models().some(m => m.name === n)))
  const url = new URL(node.url)
  const token = (await fs.readFile(path.join(dataDir, 'sysop.token'), 'utf8')).trim()
  const host = url.hostname
  const port = Number(url.port)
  const me = await rawExchange(host, port, { bytes: enc.encode(`GET /realm/me HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`) }, 10_000)
  const cookie = /rah_user=([^;]+)/.exec(me.headers['set-cookie'] ?? '')
  if (cookie === null) throw new Error('fuzz setup: no rah_user cookie from /realm/me')
  const userId = JSON.parse(me.body.toString('utf8')).id as string
  const body = JSON.stringify({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'hello' }] } })
  const task = await rawExchange(host, port, { bytes: enc.encode(`POST /realm/tasks HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`) }, 10_000)
  if (task.status !== 202) throw new Error(`fuzz setup: a first task answered ${task.status} ${task.body.toString('utf8').slice(0, 200)}`)
  const taskId = JSON.parse(task.body.toString('utf8')).id as string
  return {
    node,
    host,
    port,
    token,
    userCookie: `rah_user=${cookie[1]}`,
    userId,
    taskId,
    workerIds: node.workers.map(w => w.id),
    routeErrors,
    stop: async () => {
      await node.stop()
      for (const s of standins) await s.close()
      await fs.rm(dataDir, { recursive: true, force: true })
    }
  }
}

// ---------------------------------------------------------------------------------------------
// requests

type Family = 'realm' | 'sysop' | 'ollama' | 'openai' | 'ui'

export interface Part { name: string, filename?: string, type?: string, data: Uint8Array }

/** A request before it is written out */
export interface RequestModel {
  method: string
  path: string
  query: Array<[string, string]>
  headers: Array<[string, string]>
  json?: { value: unknown, schema: JsonSchema, overrides?: SchemaOverride[] }
  multipart?: Part[]
  /** the body, when already bytes (a mutation made it) */
  raw?: Uint8Array
}

export interface RouteSpec {
  name: string
  family: Family
  /** the valid requests of this route (one is picked per case) */
  valid: (f: FuzzNode) => RequestModel[]
  /** its answer may never end (`follow`): read a little of it */
  endless?: boolean
  /** it changes the node's state: restore after its batches */
  sysop?: boolean
  /** a WebSocket route */
  ws?: boolean
}

const OLLAMA_HEADERS: Array<[string, string]> = [['Content-Type', 'application/json'], ['Accept', 'application/json'], ['User-Agent', 'ollama-js/0.6.4 (x64 linux Node.js/v20.20.2)']]
const OPENAI_HEADERS: Array<[string, string]> = [
  ['Content-Type', 'application/json'], ['Accept', 'application/json'], ['Authorization', 'Bearer any'], ['User-Agent', 'OpenAI/JS 6.49.0'],
  ['X-Stainless-Lang', 'js'], ['X-Stainless-Package-Version', '6.49.0'], ['X-Stainless-Retry-Count', '0']
]
const BROWSER_HEADERS = (f: FuzzNode): Array<[string, string]> => [['Content-Type', 'application/json'], ['Accept', '*/*'], ['Origin', `http://${f.host}:${f.port}`], ['Sec-Fetch-Site', 'same-origin'], ['Cookie', f.userCookie]]
const SYSOP = (f: FuzzNode): Array<[string, string]> => [['Authorization', `Bearer ${f.token}`], ['Content-Type', 'application/json'], ['Accept', 'application/json']]

function get (p: string, headers: Array<[string, string]> = [], query: Array<[string, string]> = []): RequestModel {
  return { method: 'GET', path: p, query, headers }
}

function post (p: string, value: unknown, schema: JsonSchema, headers: Array<[string, string]>, overrides?: SchemaOverride[]): RequestModel {
  return { method: 'POST', path: p, query: [], headers, json: { value, schema, overrides } }
}

const S = {
  submit: jsonSchemaOf(z.object({ kind: TaskKindSchema, model: z.string().min(1).max(200), input: z.unknown(), options: TaskOptionsSchema.optional() }).strict()),
  inputs: Object.fromEntries(Object.entries(TASK_INPUT_SCHEMAS).map(([k, s]) => [k, jsonSchemaOf(s)])) as Record<string, JsonSchema>,
  me: jsonSchemaOf(z.object({ nickname: z.string().min(1).max(32).nullable() })),
  block: jsonSchemaOf(z.object({ peerId: z.string().max(200).optional(), cidr: z.string().max(200).optional(), reason: z.string().max(1000).optional(), expiresAt: z.string().max(64).optional(), allow: z.boolean().optional() }).strict()),
  reason: jsonSchemaOf(z.object({ reason: z.string().max(1000).optional() }).strict()),
  session: jsonSchemaOf(z.object({ token: z.string().max(4096).optional() }).strict()),
  broadcast: jsonSchemaOf(z.object({ message: z.string() }).strict()),
  oChat: jsonSchemaOf(ollamaCompat.ChatRequestSchema),
  oGenerate: jsonSchemaOf(ollamaCompat.GenerateRequestSchema),
  oEmbed: jsonSchemaOf(ollamaCompat.EmbedRequestSchema),
  oEmbeddings: jsonSchemaOf(ollamaCompat.EmbeddingsRequestSchema),
  oShow: jsonSchemaOf(ollamaCompat.ShowRequestSchema),
  oPull: jsonSchemaOf(ollamaCompat.PullRequestSchema),
  aChat: jsonSchemaOf(openaiCompat.ChatRequestSchema),
  aEmbed: jsonSchemaOf(openaiCompat.EmbeddingsRequestSchema),
  aImages: jsonSchemaOf(openaiCompat.ImagesRequestSchema),
  aSpeech: jsonSchemaOf(openaiCompat.SpeechRequestSchema)
}

function task (kind: string, model: string, input: unknown, options?: unknown): { value: unknown, overrides: SchemaOverride[] } {
  return { value: { kind, model, input, ...(options !== undefined ? { options } : {}) }, overrides: [{ path: ['input'], schema: S.inputs[kind] }] }
}

function taskPost (t: { value: unknown, overrides: SchemaOverride[] }, stream: boolean): RequestModel {
  return post('/realm/tasks', t.value, S.submit, [['Content-Type', 'application/json'], ['Accept', stream ? 'text/event-stream' : 'application/json']], t.overrides)
}

const TASKS = [
  task('chat', 'llama3.2:1b', { messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }] }, { temperature: 0.2, maxTokens: 64 }),
  task('chat', 'llava:7b', { messages: [{ role: 'user', content: 'what is this?', images: [PNG_B64] }] }),
  task('generate', 'llama3.2:1b', { prompt: 'why is the sky blue?', system: 'physicist' }),
  task('embed', 'nomic-embed-text:latest', { input: ['one', 'two'] }),
  task('imagine', 'v1-5-pruned-emaonly', { prompt: 'a red fox', width: 64, height: 64, steps: 2 }),
  task('speak', 'tts-1', { text: 'hello', voice: 'alloy', format: 'wav' }),
  task('transcribe', 'whisper-1', { audio: WAV.toString('base64'), mime: 'audio/wav', language: 'en' })
]

/** Every route of the gateway, with the requests its clients send */
export const ROUTES: RouteSpec[] = [
  { name: 'GET /realm/status', family: 'realm', valid: () => [get('/realm/status')] },
  { name: 'GET /realm/peers', family: 'realm', valid: () => [get('/realm/peers')] },
  { name: 'GET /realm/workers', family: 'realm', valid: () => [get('/realm/workers')] },
  { name: 'GET /realm/models', family: 'realm', valid: () => [get('/realm/models')] },
  { name: 'POST /realm/tasks', family: 'realm', valid: () => TASKS.flatMap(t => [taskPost(t, false), taskPost(t, true)]) },
  { name: 'GET /realm/tasks', family: 'realm', valid: () => [get('/realm/tasks', [], [['limit', '10']]), get('/realm/tasks')] },
  { name: 'GET /realm/tasks/:id', family: 'realm', valid: f => [get(`/realm/tasks/${f.taskId}`)] },
  { name: 'DELETE /realm/tasks/:id', family: 'realm', valid: f => [{ method: 'DELETE', path: `/realm/tasks/${f.taskId}`, query: [], headers: [] }] },
  { name: 'GET /realm/me', family: 'realm', valid: f => [get('/realm/me', BROWSER_HEADERS(f))] },
  { name: 'POST /realm/me', family: 'realm', valid: f => [post('/realm/me', { nickname: 'fuzzy' }, S.me, BROWSER_HEADERS(f)), post('/realm/me', { nickname: null }, S.me, BROWSER_HEADERS(f))] },
  { name: 'WS /realm/events', family: 'realm', ws: true, valid: () => [get('/realm/events', [], [['topics', 'presence,peers']])] },
  { name: 'POST /realm/sysop/session', family: 'sysop', sysop: true, valid: f => [post('/realm/sysop/session', { token: f.token }, S.session, [['Content-Type', 'application/json'], ['Origin', `http://${f.host}:${f.port}`]])] },
  { name: 'GET /realm/sysop/session', family: 'sysop', sysop: true, valid: f => [get('/realm/sysop/session', SYSOP(f))] },
  { name: 'DELETE /realm/sysop/session', family: 'sysop', sysop: true, valid: f => [{ method: 'DELETE', path: '/realm/sysop/session', query: [], headers: SYSOP(f) }] },
  { name: 'GET /realm/sysop/blocklist', family: 'sysop', sysop: true, valid: f => [get('/realm/sysop/blocklist', SYSOP(f))] },
  {
    name: 'POST /realm/sysop/blocklist',
    family: 'sysop',
    sysop: true,
    valid: f => [
      post('/realm/sysop/blocklist', { cidr: '10.0.0.0/8', reason: 'scanner', expiresAt: new Date(Date.now() + 3_600_000).toISOString() }, S.block, SYSOP(f)),
      post('/realm/sysop/blocklist', { peerId: '12D3KooWGRUVh6VLqyhxUBUZMVHiLGeNbDwVQVVqBtwPSbsYVhYu', reason: 'spam' }, S.block, SYSOP(f)),
      post('/realm/sysop/blocklist', { cidr: '2001:db8::/32', allow: true }, S.block, SYSOP(f))
    ]
  },
  { name: 'POST /realm/sysop/blocklist/publish', family: 'sysop', sysop: true, valid: f => [{ method: 'POST', path: '/realm/sysop/blocklist/publish', query: [], headers: SYSOP(f) }] },
  {
    name: 'DELETE /realm/sysop/blocklist/:entry',
    family: 'sysop',
    sysop: true,
    valid: f => [
      { method: 'DELETE', path: '/realm/sysop/blocklist/10.0.0.0%2F8', query: [], headers: SYSOP(f) },
      { method: 'DELETE', path: '/realm/sysop/blocklist/10.0.0.0/8', query: [], headers: SYSOP(f) },
      { method: 'DELETE', path: '/realm/sysop/blocklist/2001%3Adb8%3A%3A%2F32', query: [['allow', 'true']], headers: SYSOP(f) }
    ]
  },
  { name: 'GET /realm/sysop/users', family: 'sysop', sysop: true, valid: f => [get('/realm/sysop/users', SYSOP(f))] },
  { name: 'POST /realm/sysop/users/:id/ban', family: 'sysop', sysop: true, valid: f => [post(`/realm/sysop/users/${f.userId}/ban`, { reason: 'fuzz' }, S.reason, SYSOP(f))] },
  { name: 'DELETE /realm/sysop/users/:id/ban', family: 'sysop', sysop: true, valid: f => [{ method: 'DELETE', path: `/realm/sysop/users/${f.userId}/ban`, query: [], headers: SYSOP(f) }] },
  { name: 'POST /realm/sysop/workers/:id/bench', family: 'sysop', sysop: true, valid: f => f.workerIds.map(id => post(`/realm/sysop/workers/${encodeURIComponent(id)}/bench`, { reason: 'maintenance' }, S.reason, SYSOP(f))) },
  { name: 'DELETE /realm/sysop/workers/:id/bench', family: 'sysop', sysop: true, valid: f => f.workerIds.map(id => ({ method: 'DELETE', path: `/realm/sysop/workers/${encodeURIComponent(id)}/bench`, query: [], headers: SYSOP(f) })) },
  { name: 'POST /realm/sysop/broadcast', family: 'sysop', sysop: true, valid: f => [post('/realm/sysop/broadcast', { message: 'maintenance at noon' }, S.broadcast, SYSOP(f))] },
  { name: 'GET /realm/sysop/log', family: 'sysop', sysop: true, endless: true, valid: f => [get('/realm/sysop/log', SYSOP(f), [['since', new Date(Date.now() - 60_000).toISOString()]]), get('/realm/sysop/log', SYSOP(f), [['follow', 'true']])] },
  { name: 'GET /api/version', family: 'ollama', valid: () => [get('/api/version', OLLAMA_HEADERS)] },
  { name: 'GET /api/tags', family: 'ollama', valid: () => [get('/api/tags', OLLAMA_HEADERS)] },
  { name: 'GET /api/ps', family: 'ollama', valid: () => [get('/api/ps', OLLAMA_HEADERS)] },
  { name: 'POST /api/show', family: 'ollama', valid: () => [post('/api/show', { model: 'llama3.2:1b' }, S.oShow, OLLAMA_HEADERS), post('/api/show', { name: 'llava' }, S.oShow, OLLAMA_HEADERS)] },
  { name: 'POST /api/pull', family: 'ollama', valid: () => [post('/api/pull', { model: 'llama3.2:1b', stream: true }, S.oPull, OLLAMA_HEADERS), post('/api/pull', { model: 'llama3.2:1b', stream: false }, S.oPull, OLLAMA_HEADERS)] },
  {
    name: 'POST /api/chat',
    family: 'ollama',
    valid: () => [
      post('/api/chat', { model: 'llama3.2:1b', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }], stream: true, options: { temperature: 0.5, num_predict: 32, seed: 1, stop: ['\n'] }, keep_alive: '5m' }, S.oChat, OLLAMA_HEADERS),
      post('/api/chat', { model: 'llava:7b', messages: [{ role: 'user', content: 'what is this?', images: [PNG_B64] }], stream: false, format: 'json' }, S.oChat, OLLAMA_HEADERS)
    ]
  },
  {
    name: 'POST /api/generate',
    family: 'ollama',
    valid: () => [
      post('/api/generate', { model: 'llama3.2:1b', prompt: 'why is the sky blue?', stream: true, system: 'physicist', options: { top_k: 20, top_p: 0.9 } }, S.oGenerate, OLLAMA_HEADERS),
      post('/api/generate', { model: 'llava:7b', prompt: 'describe', images: [PNG_B64], stream: false }, S.oGenerate, OLLAMA_HEADERS)
    ]
  },
  { name: 'POST /api/embed', family: 'ollama', valid: () => [post('/api/embed', { model: 'nomic-embed-text', input: ['one', 'two'], truncate: true, dimensions: 8 }, S.oEmbed, OLLAMA_HEADERS), post('/api/embed', { model: 'nomic-embed-text', input: 'one' }, S.oEmbed, OLLAMA_HEADERS)] },
  { name: 'POST /api/embeddings', family: 'ollama', valid: () => [post('/api/embeddings', { model: 'nomic-embed-text', prompt: 'one' }, S.oEmbeddings, OLLAMA_HEADERS)] },
  { name: 'GET /v1/models', family: 'openai', valid: () => [get('/v1/models', OPENAI_HEADERS)] },
  { name: 'GET /v1/models/:id', family: 'openai', valid: () => [get('/v1/models/llama3.2:1b', OPENAI_HEADERS), get('/v1/models/text-embedding-3-small', OPENAI_HEADERS)] },
  {
    name: 'POST /v1/chat/completions',
    family: 'openai',
    valid: () => [
      post('/v1/chat/completions', { model: 'llama3.2:1b', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }], stream: true, stream_options: { include_usage: true }, temperature: 0.7, max_tokens: 64 }, S.aChat, OPENAI_HEADERS),
      post('/v1/chat/completions', { model: 'llava:7b', messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_B64}`, detail: 'low' } }] }], seed: 7, stop: ['END'], response_format: { type: 'json_object' } }, S.aChat, OPENAI_HEADERS)
    ]
  },
  { name: 'POST /v1/embeddings', family: 'openai', valid: () => [post('/v1/embeddings', { model: 'text-embedding-3-small', input: ['one', 'two'], encoding_format: 'float' }, S.aEmbed, OPENAI_HEADERS), post('/v1/embeddings', { model: 'nomic-embed-text:latest', input: 'one', encoding_format: 'base64', dimensions: 4 }, S.aEmbed, OPENAI_HEADERS)] },
  { name: 'POST /v1/images/generations', family: 'openai', valid: () => [post('/v1/images/generations', { model: 'v1-5-pruned-emaonly', prompt: 'a red fox', n: 1, size: '256x256', response_format: 'b64_json' }, S.aImages, OPENAI_HEADERS)] },
  { name: 'POST /v1/audio/speech', family: 'openai', valid: () => [post('/v1/audio/speech', { model: 'tts-1', input: 'hello there', voice: 'alloy', response_format: 'wav', speed: 1.25 }, S.aSpeech, OPENAI_HEADERS)] },
  {
    name: 'POST /v1/audio/transcriptions',
    family: 'openai',
    valid: () => [{
      method: 'POST',
      path: '/v1/audio/transcriptions',
      query: [],
      headers: OPENAI_HEADERS.filter(([k]) => k !== 'Content-Type'),
      multipart: [
        { name: 'file', filename: 'speech.wav', type: 'audio/wav', data: WAV },
        { name: 'model', data: enc.encode('whisper-1') },
        { name: 'response_format', data: enc.encode('verbose_json') },
        { name: 'language', data: enc.encode('en') }
      ]
    }]
  },
  { name: 'GET /', family: 'ui', valid: () => [get('/', [['Accept', 'text/html']])] }
]

// ---------------------------------------------------------------------------------------------
// mutation of a request

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'get', 'FOO', 'G\u00c9T', 'POST ', '']
const CONTENT_TYPES = [
  '', 'text/plain', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'application/x-www-form-urlencoded', 'multipart/form-data',
  'multipart/form-data; boundary=', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/json;;;', 'APPLICATION/JSON', '*/*',
  'application/' + 'x'.repeat(5000), 'text/event-stream'
]
const HEADER_VALUES: Array<[string, string[]]> = [
  ['Accept', ['text/event-stream', 'application/x-ndjson', '*/*', 'text/html', '', 'text/event-stream, application/json;q=0.9', 'x'.repeat(8000)]],
  ['Authorization', ['Bearer', 'Bearer ', 'Bearer ' + 'a'.repeat(5000), 'Basic Zm9vOmJhcg==', 'bearer x', 'Bearer \u00ff', 'Bearer a b']],
  ['Cookie', ['rah_user=', 'rah_user=' + 'A'.repeat(22), 'rah_user=%ZZ', 'realm_sysop=abc', 'rah_user=a; rah_user=b', ';;;', '=', 'a'.repeat(10_000)]],
  ['Origin', ['http://evil.example', 'null', 'http://127.0.0.1:1', 'file://', '\u00ff', '']],
  ['Host', ['evil.example', '', 'localhost', '127.0.0.1:1', '[::1]', 'a'.repeat(300), 'localhost:99999']],
  ['Sec-Fetch-Site', ['cross-site', 'same-site', 'none', 'CROSS-SITE']],
  ['Content-Encoding', ['gzip', 'br', 'identity', 'deflate, gzip', '']],
  ['Transfer-Encoding', ['chunked', 'gzip, chunked', 'identity', 'chunked, chunked']],
  ['Expect', ['100-continue', 'nonsense']],
  ['X-Forwarded-For', ['1.2.3.4', 'garbage', '::1, 10.0.0.1', '']],
  ['X-Forwarded-Host', ['evil.example']],
  ['Access-Control-Request-Method', ['POST']],
  ['Range', ['bytes=0-1', 'bytes=-1', 'bytes=99999999-']],
  ['If-None-Match', ['*', '"x"']]
]

export type MutationClass = 'valid' | 'body' | 'query' | 'path' | 'headers' | 'auth' | 'framing' | 'method' | 'random body' | 'disconnect'

export interface Prepared {
  model: RequestModel
  exchange: RawExchange
  cls: MutationClass
  notes: string[]
  authOk: boolean
  /** a sysop route asked without the sysop's token: it must never answer 2xx */
  tokenless: boolean
  /** the valid request it was made from */
  original: { method: string, path: string }
}

function bodyBytes (m: RequestModel, boundary: string): Uint8Array | undefined {
  if (m.raw !== undefined) return m.raw
  if (m.json !== undefined) return enc.encode(new Doc(m.json.value).text())
  if (m.multipart !== undefined) {
    const chunks: Uint8Array[] = []
    for (const p of m.multipart) {
      const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`
      chunks.push(enc.encode(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type !== undefined ? `Content-Type: ${p.type}\r\n` : ''}\r\n`), p.data, enc.encode('\r\n'))
    }
    chunks.push(enc.encode(`--${boundary}--\r\n`))
    return Buffer.concat(chunks)
  }
  return undefined
}

function encodeQuery (q: Array<[string, string]>): string {
  return q.length === 0 ? '' : '?' + q.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join('&')
}

/** The request on the wire; `framing` says how its body is framed */
function wire (f: FuzzNode, m: RequestModel, framing: string, rawQuery?: string): Uint8Array {
  const boundary = 'fuzzboundary7MA4YWxkTrZu0gW'
  const body = bodyBytes(m, boundary)
  const headers = [...m.headers]
  if (m.multipart !== undefined && !headers.some(([k]) => k.toLowerCase() === 'content-type')) headers.push(['Content-Type', `multipart/form-data; boundary=${boundary}`])
  if (!headers.some(([k]) => k.toLowerCase() === 'host')) headers.unshift(['Host', `${f.host}:${f.port}`])
  const target = m.path + (rawQuery ?? encodeQuery(m.query))
  let head = `${m.method} ${target} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}${headers.length > 0 ? '\r\n' : ''}`
  head += 'Connection: close\r\n'
  let payload: Uint8Array = body ?? new Uint8Array(0)
  switch (framing) {
    case 'chunked': {
      head += 'Transfer-Encoding: chunked\r\n'
      const n = Math.max(1, Math.ceil(payload.length / 3))
      const parts: Uint8Array[] = []
      for (let i = 0; i < payload.length; i += n) parts.push(enc.encode(`${(Math.min(n, payload.length - i)).toString(16)}\r\n`), payload.subarray(i, i + n), enc.encode('\r\n'))
      parts.push(enc.encode('0\r\n\r\n'))
      payload = Buffer.concat(parts)
      break
    }
    case 'chunked-bad': head += 'Transfer-Encoding: chunked\r\n'; payload = Buffer.concat([enc.encode('zz\r\n'), payload, enc.encode('\r\n0\r\n\r\n')]); break
    case 'cl-more': head += `Content-Length: ${payload.length + 10}\r\n`; break
    case 'cl-less': head += `Content-Length: ${Math.max(0, payload.length - 5)}\r\n`; break
    case 'cl-negative': head += 'Content-Length: -1\r\n'; break
    case 'cl-huge': head += 'Content-Length: 99999999999999999999\r\n'; break
    case 'cl-twice': head += `Content-Length: ${payload.length}\r\nContent-Length: ${payload.length + 1}\r\n`; break
    case 'cl-and-chunked': head += `Content-Length: ${payload.length}\r\nTransfer-Encoding: chunked\r\n`; break
    case 'no-cl': break
    case 'lf-only': return Buffer.concat([enc.encode(`${head}Content-Length: ${payload.length}\r\n\r\n`.replace(/\r\n/g, '\n')), payload])
    default: if (body !== undefined || m.method === 'POST') head += `Content-Length: ${payload.length}\r\n`
  }
  return Buffer.concat([enc.encode(head + '\r\n'), payload])
}

function setHeader (m: RequestModel, name: string, value: string | undefined): void {
  m.headers = m.headers.filter(([k]) => k.toLowerCase() !== name.toLowerCase())
  if (value !== undefined) m.headers.push([name, value])
}

/** One case of a route: a valid request, mutated one way */
export function prepareCase (f: FuzzNode, route: RouteSpec, seed: number, index: number): Prepared {
  const rng = new Rng(caseSeed(seed, route.name, index))
  const valid = rng.pick(route.valid(f))
  const m: RequestModel = { ...valid, query: [...valid.query], headers: [...valid.headers], multipart: valid.multipart?.map(p => ({ ...p })) }
  const hasBody = m.json !== undefined || m.multipart !== undefined
  const cls = rng.weighted<MutationClass>([
    ['valid', 8], ['body', hasBody ? 45 : 0], ['query', hasBody ? 6 : 25], ['path', route.name.includes(':') ? 12 : 5], ['headers', 15],
    ['auth', needsToken(route) ? 15 : 0], ['framing', 7], ['method', 3], ['random body', 5], ['disconnect', route.ws === true ? 0 : 2]
  ])
  const notes: string[] = []
  const exchange = { bytes: new Uint8Array(0) } as RawExchange
  let framing = 'normal'
  let rawQuery: string | undefined
  switch (cls) {
    case 'body':
      if (m.json !== undefined) {
        const doc = mutateValue(rng, m.json.value, m.json.schema, m.json.overrides)
        let bytes: Uint8Array = enc.encode(doc.text())
        notes.push(...doc.notes)
        if (rng.chance(0.15)) {
          const b = mutateBytes(rng, bytes)
          bytes = b.bytes
          notes.push(b.note)
        }
        m.raw = bytes
      } else if (m.multipart !== undefined) {
        mutateMultipart(rng, m, notes)
      }
      break
    case 'query': {
      const op = rng.int(5)
      if (op === 0) {
        rawQuery = rng.pick(['?%', '?%ZZ=1', '?a=%E0%A4%A', '?' + 'a=1&'.repeat(5000), '?limit=1&limit=2', '?=', '?&&&', '?limit', '?since=%00', '?follow&follow=1', '?topics=' + 'presence,'.repeat(2000), '?\u00ff=1'])
        notes.push(`raw query ${JSON.stringify(rawQuery.slice(0, 60))}`)
      } else {
        const key = rng.pick(['limit', 'since', 'follow', 'allow', 'topics', 'stream', 'model', randomString(rng, 10), '__proto__', 'constructor'])
        const value = rng.chance(0.5) ? rng.pick(['1e999', '-1', '0', 'NaN', 'Infinity', '9007199254740993', '', 'true', '1', 'x'.repeat(10_000), 'tasks,system', '2025-13-45', '-271821-04-20T00:00:00Z']) : rng.pick(NASTY_STRINGS)
        m.query = rng.chance(0.5) ? [...m.query, [key, value]] : [[key, value]]
        notes.push(`query ${key}=${JSON.stringify(value.slice(0, 60))}`)
      }
      break
    }
    case 'path': {
      const segs = m.path.split('/')
      const i = rng.range(1, segs.length - 1)
      const replacement = rng.pick(['%ZZ', '%', '%00', '..', '.', '', 'a'.repeat(3000), '%2F', '%252F', percentEncode(rng.pick(NASTY_STRINGS)), percentEncode(randomString(rng, 30)), '__proto__', 'constructor', '%E0%A4%A', '%C0%AF', segs[i].toUpperCase(), segs[i] + '/', segs[i] + '//x'])
      segs[i] = replacement
      m.path = segs.join('/')
      notes.push(`path segment ${i} → ${JSON.stringify(replacement.slice(0, 60))}`)
      break
    }
    case 'headers': {
      for (let n = rng.range(1, 2); n > 0; n--) {
        if (rng.chance(0.3) && hasBody) {
          const ct = rng.pick(CONTENT_TYPES)
          setHeader(m, 'Content-Type', ct === '' && rng.chance(0.5) ? undefined : ct)
          notes.push(`Content-Type ${JSON.stringify(ct.slice(0, 60))}`)
        } else if (rng.chance(0.15) && m.headers.length > 0) {
          const [k] = rng.pick(m.headers)
          setHeader(m, k, undefined)
          notes.push(`header ${k} removed`)
        } else if (rng.chance(0.1)) {
          const big = 'x'.repeat(rng.pick([8000, 20_000, 70_000]))
          m.headers.push(['X-Big', big])
          notes.push(`header of ${big.length} bytes`)
        } else {
          const [k, values] = rng.pick(HEADER_VALUES)
          const v = rng.pick(values)
          setHeader(m, k, v)
          notes.push(`${k}: ${JSON.stringify(v.slice(0, 60))}`)
        }
      }
      break
    }
    case 'auth': {
      // the sysop's token missing, wrong, or almost right: a 401 (or 429 once throttled), never the route
      const wrong = f.token.slice(0, -1) + (f.token.endsWith('A') ? 'B' : 'A')
      const [label, value] = rng.pick<[string, string | undefined]>([
        ['no Authorization', undefined], ['wrong token', `Bearer ${wrong}`], ['token cut short', `Bearer ${f.token.slice(0, -1)}`],
        ['token upper-cased', `Bearer ${f.token.toUpperCase()}`], ['token and more', `Bearer ${f.token}x`], ['token without the scheme', f.token],
        ['Basic scheme', `Basic ${Buffer.from(`sysop:${f.token}`).toString('base64')}`], ['empty bearer', 'Bearer '], ['token twice', `Bearer ${f.token} ${f.token}`]
      ])
      setHeader(m, 'Authorization', value)
      if (rng.chance(0.2)) m.query = [...m.query, ['token', f.token]]
      notes.push(`auth: ${label}${m.query.some(([k]) => k === 'token') ? ' (token in the query)' : ''}`)
      break
    }
    case 'framing':
      framing = rng.pick(['chunked', 'chunked-bad', 'cl-more', 'cl-less', 'cl-negative', 'cl-huge', 'cl-twice', 'cl-and-chunked', 'no-cl', 'lf-only'])
      notes.push(`framing ${framing}`)
      if (framing === 'cl-more') exchange.halfClose = true
      break
    case 'method':
      m.method = rng.pick(METHODS)
      notes.push(`method ${JSON.stringify(m.method)}`)
      break
    case 'random body': {
      const r = randomBytes(rng)
      m.raw = r.bytes
      if (m.method === 'GET') m.method = 'POST'
      notes.push(r.note)
      break
    }
    case 'disconnect':
      if (rng.chance(0.5)) exchange.dropAfterFirstBytesMs = rng.int(20)
      else { exchange.dropAfterWriteMs = rng.int(5); framing = 'cl-more' }
      notes.push(exchange.dropAfterFirstBytesMs !== undefined ? `client gone ${exchange.dropAfterFirstBytesMs} ms after the first answer bytes` : 'client gone mid-body')
      break
    default: notes.push('valid')
  }
  if (route.endless === true) exchange.streamGraceMs = 300
  // the sysop auth limiter counts failures per address: requests that may fail it come from others
  const auth = m.headers.find(([k]) => k.toLowerCase() === 'authorization')?.[1]
  const authOk = route.family !== 'sysop' || (auth === `Bearer ${f.token}` && !(route.name === 'POST /realm/sysop/session' && cls === 'body'))
  exchange.localAddress = authOk ? '127.0.0.1' : `127.0.0.${2 + rng.int(250)}`
  m.headers.push(['X-Fuzz-Case', `${route.name}#${index}`])
  exchange.bytes = wire(f, m, framing, rawQuery)
  return { model: m, exchange, cls, notes, authOk, original: { method: valid.method, path: valid.path }, tokenless: needsToken(route) && auth !== `Bearer ${f.token}` }
}

/** Every sysop route but the login itself wants the token (or the session it gives) */
function needsToken (route: RouteSpec): boolean {
  return route.family === 'sysop' && route.name !== 'POST /realm/sysop/session'
}

function mutateMultipart (rng: Rng, m: RequestModel, notes: string[]): void {
  const parts = m.multipart!
  const op = rng.int(7)
  const i = rng.int(parts.length)
  switch (op) {
    case 0: notes.push(`part ${parts[i].name} removed`); parts.splice(i, 1); break
    case 1: {
      const v = rng.pick(NASTY_STRINGS)
      parts[i].data = enc.encode(v)
      notes.push(`part ${parts[i].name} = ${JSON.stringify(v)}`)
      break
    }
    case 2: parts.push({ ...parts[i] }); notes.push(`part ${parts[i].name} twice`); break
    case 3: {
      const r = rng.bytes(rng.size(5000))
      parts[0] = { name: 'file', filename: rng.pick(['x.wav', 'x', '', '../../x.mp3', 'a'.repeat(500) + '.ogg']), type: rng.pick(['', 'audio/wav', 'text/plain', 'audio/' + 'x'.repeat(300)]), data: r }
      notes.push(`file of ${r.length} random bytes`)
      break
    }
    case 4: parts[0] = { ...parts[0], data: new Uint8Array(0) }; notes.push('empty file'); break
    case 5: {
      const body = bodyBytes(m, 'fuzzboundary7MA4YWxkTrZu0gW')!
      const b = mutateBytes(rng, body)
      m.raw = b.bytes
      notes.push(`multipart bytes: ${b.note}`)
      break
    }
    default: {
      const name = rng.pick(['response_format', 'language', 'stream', 'model', 'temperature', 'timestamp_granularities[]'])
      const v = rng.pick(['', 'srt', 'vtt', 'text', 'json', 'xml', 'true', 'x'.repeat(100), 'en-US', '1e999'])
      parts.push({ name, data: enc.encode(v) })
      notes.push(`field ${name}=${JSON.stringify(v)}`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the oracle

const SNAKE_RE = /^[A-Z][A-Z0-9_]*$/
/** Answers Node's HTTP parser gives before any route runs (no body of ours) */
const PARSER_STATUSES = new Set([400, 413, 414, 417, 431, 501, 505])

function jsonBody (r: RawResponse): any {
  try {
    return JSON.parse(r.body.toString('utf8'))
  } catch {
    return undefined
  }
}

/** The error code of an answer, for the table */
function answerCode (family: Family, r: RawResponse, body: any): string {
  if (r.status < 400) return String(r.status)
  if (family === 'ollama' && typeof body?.error === 'string') return `${r.status} ${body.error.replace(/"[^"]*"|'[^']*'|\d+/g, '…').split(/[:(]/)[0].slice(0, 40).trim()}`
  if (family === 'openai' && body?.error != null) return `${r.status} ${String(body.error.code ?? body.error.type)}`
  if (body?.error?.code != null) return `${r.status} ${String(body.error.code)}`
  return `${r.status} (no JSON error)`
}

export interface Verdict {
  code: string
  stages: string[]
  findings: Array<Pick<Finding, 'kind' | 'message'>>
}

/** Is this answer what the route documents for the request it was given */
export function judge (route: RouteSpec, p: Prepared, r: RawResponse): Verdict {
  const findings: Verdict['findings'] = []
  const stages = ['sent']
  const family = route.family
  const body = jsonBody(r)
  // a request whose path or method no longer names the route is answered by the router (404,
  // 405, 501 as text, like Ollama's own 404), not in the route's error shape
  const retargeted = p.model.path !== p.original.path || p.model.method !== p.original.method
  // (Node's parser answers header mutations too: 431 for headers that add up too big, 417 for an Expect)
  const shaped = retargeted || p.cls === 'framing' || p.cls === 'method' || p.cls === 'headers' || p.cls === 'query' || p.cls === 'path'
  if (r.timedOut) {
    findings.push({ kind: 'hang', message: `no complete answer within the deadline (${Math.round(r.ms)} ms; status so far ${r.status || 'none'})` })
    return { code: 'TIMEOUT', stages, findings }
  }
  if (r.noAnswer) {
    // a client that left, or a request so broken that Node closes the connection, gets nothing
    if (!r.dropped && p.cls !== 'disconnect' && p.cls !== 'framing' && p.cls !== 'method') findings.push({ kind: 'http-no-answer', message: `the connection closed without an answer${r.error !== undefined ? ` (${r.error})` : ''}` })
    return { code: r.dropped ? 'DROPPED' : 'NO ANSWER', stages, findings }
  }
  stages.push('answered')
  const code = answerCode(family, r, body)
  const refused = r.status === 421 || (r.status === 403 && /ORIGIN_NOT_ALLOWED|origin_not_allowed|cross-origin|are refused/.test(r.body.toString('utf8')))
  if (!refused) stages.push('past security')
  if (!refused && ![401, 413, 415, 429].includes(r.status) && !/INVALID_JSON|EMPTY_BODY|not JSON|parse the JSON|missing request body|invalid JSON|body cut short/i.test(code + r.body.toString('utf8').slice(0, 300))) stages.push('body read')
  if (r.status >= 200 && r.status < 300) stages.push('accepted')

  if (p.tokenless && r.status >= 200 && r.status < 300) findings.push({ kind: 'invariant', message: `a sysop route answered ${r.status} without the sysop token` })
  const parserAnswer = PARSER_STATUSES.has(r.status) && r.body.length === 0
  if (r.status >= 500 && !(parserAnswer && shaped) && !(retargeted && r.status === 501)) {
    const text = r.body.toString('utf8').slice(0, 300)
    const allowed =
      (r.status === 503 && /NO_WORKER|USERS_FULL|TOO_MANY_CLIENTS|no_worker|server busy|no worker|not serv/i.test(text)) ||
      (route.name === 'POST /api/pull' && r.status === 500 && body?.error === OLLAMA_PULL_NOT_FOUND) ||
      (r.status === 502 && /BACKEND_|LEASE_LOST/.test(text)) ||
      (r.status === 504 && /TIMEOUT|timeout/.test(text))
    if (!allowed) findings.push({ kind: 'http-5xx', message: `${r.status} ${text}` })
  }
  if (r.status >= 400 && !(parserAnswer && shaped) && !retargeted && route.ws !== true && p.model.method !== 'HEAD') {
    const shapeOk = family === 'ollama'
      ? body !== undefined && typeof body.error === 'string' && Object.keys(body).length === 1
      : family === 'openai'
        ? body?.error != null && typeof body.error.message === 'string' && typeof body.error.type === 'string' && 'param' in body.error && 'code' in body.error
        : family === 'ui'
          ? true
          : body?.error != null && typeof body.error.code === 'string' && SNAKE_RE.test(body.error.code) && typeof body.error.message === 'string'
    if (!shapeOk) findings.push({ kind: 'http-shape', message: `${r.status} answered ${JSON.stringify(r.body.toString('utf8').slice(0, 120))} (content-type ${r.headers['content-type'] ?? 'none'}), not the ${family} error shape` })
  }
  if (r.status >= 200 && r.status < 300 && (r.headers['content-type'] ?? '').startsWith('application/json') && body === undefined && !r.dropped && p.model.method !== 'HEAD') {
    findings.push({ kind: 'http-shape', message: `a ${r.status} JSON answer that does not parse: ${JSON.stringify(r.body.toString('utf8').slice(0, 120))}` })
  }
  return { code, stages, findings }
}

// ---------------------------------------------------------------------------------------------
// WebSocket

const WS_MESSAGES: unknown[] = [{ type: 'ping' }, { type: 'subscribe', topics: ['presence', 'peers'] }, { type: 'unsubscribe', topics: ['peers'] }, { type: 'subscribe', topics: ['tasks'] }]
const WS_SCHEMA: JsonSchema = {
  anyOf: [
    { type: 'object', properties: { type: { type: 'string', enum: ['ping', 'subscribe', 'unsubscribe'] }, topics: { type: 'array', maxItems: 4, items: { type: 'string', enum: ['presence', 'peers', 'tasks', 'system'] } } }, required: ['type'] }
  ]
}
/** Close codes a socket may end with for bad input: too big, not UTF-8, protocol error, too slow, banned */
const WS_CLOSE_OK = new Set([1000, 1002, 1005, 1006, 1007, 1009, 4003, 4008])

/** One WebSocket case: an upgrade (maybe mutated), then a few messages (mostly mutated) */
export async function wsCase (f: FuzzNode, seed: number, index: number, timeoutMs: number): Promise<{ verdict: Verdict, notes: string[], input: string }> {
  const rng = new Rng(caseSeed(seed, 'WS /realm/events', index))
  const notes: string[] = []
  const headers: Record<string, string> = { 'X-Fuzz-Case': `WS /realm/events#${index}` }
  let query = '?topics=presence,peers'
  const upgradeMutation = rng.chance(0.25)
  if (upgradeMutation) {
    const op = rng.int(3)
    if (op === 0) {
      query = '?topics=' + percentEncode(rng.pick(['tasks', 'system', 'tasks,system,presence', '', ',,,', 'x'.repeat(3000), rng.pick(NASTY_STRINGS), 'presence,'.repeat(500)]))
      notes.push(`query ${query.slice(0, 60)}`)
    } else if (op === 1) {
      const [k, values] = rng.pick(HEADER_VALUES.filter(([k]) => ['Origin', 'Host', 'Cookie', 'Sec-Fetch-Site', 'Authorization'].includes(k)))
      headers[k] = rng.pick(values)
      notes.push(`${k}: ${JSON.stringify(headers[k].slice(0, 60))}`)
    } else {
      headers.Cookie = f.userCookie
      notes.push('with the web user cookie')
    }
  }
  const findings: Verdict['findings'] = []
  const stages = ['sent']
  const sent: string[] = []
  const result = await new Promise<string>((resolve) => {
    const ws = new WebSocket(`ws://${f.host}:${f.port}/realm/events${query}`, { headers, handshakeTimeout: timeoutMs })
    const deadline = setTimeout(() => { findings.push({ kind: 'ws', message: `no progress within ${timeoutMs} ms (sent ${sent.length} messages)` }); ws.terminate(); resolve('TIMEOUT') }, timeoutMs)
    let replies = 0
    let hello = false
    const end = (code: string): void => { clearTimeout(deadline); ws.terminate(); resolve(code) }
    ws.on('unexpected-response', (_req, res) => {
      stages.push('answered')
      const status = res.statusCode ?? 0
      if (status >= 500 && status !== 503) findings.push({ kind: 'ws', message: `upgrade answered ${status}` })
      end(`upgrade ${status}`)
    })
    ws.on('error', (err) => { if (!hello) end(`error ${err.message.slice(0, 40)}`) })
    ws.on('close', (code) => {
      if (!WS_CLOSE_OK.has(code)) findings.push({ kind: 'ws', message: `closed with code ${code}` })
      end(`closed ${code}`)
    })
    const next = (): void => {
      if (sent.length >= 3 || rng.chance(0.2)) {
        end(hello ? 'OK' : 'NO HELLO')
        return
      }
      let data: string | Buffer
      let binary = false
      const op = rng.weighted([['valid', 2], ['mutated', 6], ['binary', 1], ['too big', 0.5], ['bad utf8', 0.5], ['burst', 0.3]] as const)
      if (op === 'valid') data = JSON.stringify(rng.pick(WS_MESSAGES))
      else if (op === 'mutated') {
        const doc = mutateValue(rng, rng.pick(WS_MESSAGES), WS_SCHEMA)
        data = doc.text()
        notes.push(...doc.notes)
      } else if (op === 'binary') { data = Buffer.from(rng.bytes(rng.size(100))); binary = true } else if (op === 'too big') data = 'x'.repeat(5000)
      else if (op === 'bad utf8') data = Buffer.from([0x7b, 0xff, 0xc0, 0xaf, 0x7d])
      else {
        for (let i = 0; i < 30; i++) ws.send('{"type":"ping"}')
        data = '{"type":"ping"}'
      }
      notes.push(`message ${op}`)
      sent.push(typeof data === 'string' ? data.slice(0, 80) : `bytes ${data.toString('hex').slice(0, 40)}`)
      ws.send(data, { binary })
    }
    ws.on('message', (raw) => {
      let msg: any
      try {
        msg = JSON.parse(raw.toString())
      } catch {
        findings.push({ kind: 'ws', message: `a message that is not JSON: ${raw.toString().slice(0, 80)}` })
      }
      if (msg?.type === 'hello') {
        hello = true
        stages.push('answered', 'past security', 'accepted')
      } else {
        replies++
        if (typeof msg?.type !== 'string' || typeof msg?.time !== 'string') findings.push({ kind: 'ws', message: `a message without type/time: ${raw.toString().slice(0, 80)}` })
        if (msg?.type === 'error' && (typeof msg.code !== 'string' || !SNAKE_RE.test(msg.code))) findings.push({ kind: 'ws', message: `an error without a code: ${raw.toString().slice(0, 80)}` })
      }
      // the hello may come with an error (unknown topics); each message sent gets at least one reply
      if (hello && replies >= sent.length) setImmediate(next)
    })
  })
  return { verdict: { code: result, stages, findings }, notes, input: `query ${query.slice(0, 100)} headers ${JSON.stringify(headers).slice(0, 200)} messages ${JSON.stringify(sent)}` }
}

// ---------------------------------------------------------------------------------------------
// the run

export interface HttpRunOptions {
  seed: number
  /** cases per route */
  cases: number
  /** cases of one route before the next route's batch (and the health check) */
  batch?: number
  concurrency?: number
  /** an answer slower than this is a hang; default 30 000 (streams may wait 15 s for headers) */
  timeoutMs?: number
  /** only routes whose name includes this */
  routes?: string
  /** one case (a reproduction) */
  only?: number
  onBatch?: (route: string, done: number) => void
  /** every finding at once, as it is found */
  onFinding?: (f: Finding) => void
}

export interface HttpRunResult {
  stats: TargetStats[]
  /** findings about the node as a whole (it stopped answering) */
  global: Finding[]
  ms: number
}

async function health (f: FuzzNode): Promise<RawResponse> {
  return await rawExchange(f.host, f.port, { bytes: enc.encode(`GET /realm/status HTTP/1.1\r\nHost: ${f.host}:${f.port}\r\nConnection: close\r\n\r\n`) }, 10_000)
}

async function sysopCall (f: FuzzNode, method: string, p: string): Promise<any> {
  const r = await rawExchange(f.host, f.port, { bytes: enc.encode(`${method} ${p} HTTP/1.1\r\nHost: ${f.host}:${f.port}\r\nAuthorization: Bearer ${f.token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`), localAddress: '127.0.0.1' }, 10_000)
  return jsonBody(r)
}

/** Undo what sysop routes did: bench, blocks, allows, bans */
export async function restoreState (f: FuzzNode): Promise<void> {
  for (const id of f.workerIds) await sysopCall(f, 'DELETE', `/realm/sysop/workers/${encodeURIComponent(id)}/bench`)
  const list = await sysopCall(f, 'GET', '/realm/sysop/blocklist')
  for (const e of list?.entries ?? []) await sysopCall(f, 'DELETE', `/realm/sysop/blocklist/${percentEncode(String(e.entry))}`)
  for (const a of list?.allows ?? []) await sysopCall(f, 'DELETE', `/realm/sysop/blocklist/${percentEncode(String(a.entry))}?allow=true`)
  const users = await sysopCall(f, 'GET', '/realm/sysop/users')
  for (const u of users?.users ?? []) if (u.banned === true) await sysopCall(f, 'DELETE', `/realm/sysop/users/${encodeURIComponent(String(u.id))}/ban`)
}

export const HTTP_STAGES = ['sent', 'answered', 'past security', 'body read', 'accepted']

/** Runs `cases` cases of every route, batch by batch, round robin over the routes */
export async function runHttp (f: FuzzNode, opts: HttpRunOptions): Promise<HttpRunResult> {
  const routes = ROUTES.filter(r => opts.routes === undefined || r.name.includes(opts.routes))
  const batch = opts.batch ?? 100
  const lanes = opts.concurrency ?? 4
  const timeoutMs = opts.timeoutMs ?? 30_000
  const stats = new Map(routes.map(r => [r.name, newStats(r.name, HTTP_STAGES)]))
  const global: Finding[] = []
  const t0 = performance.now()
  const first = opts.only ?? 0
  const total = opts.only !== undefined ? opts.only + 1 : opts.cases
  for (let start = first; start < total; start += batch) {
    for (const route of routes) {
      const s = stats.get(route.name)!
      const errorsBefore = f.routeErrors.length
      let next = start
      const end = Math.min(start + batch, total)
      const b0 = performance.now()
      await Promise.all(Array.from({ length: route.ws === true ? 2 : lanes }, async () => {
        while (next < end) {
          const index = next++
          let verdict: Verdict
          let notes: string[]
          let input: string
          if (route.ws === true) {
            const w = await wsCase(f, opts.seed, index, timeoutMs)
            verdict = w.verdict
            notes = w.notes
            input = w.input
          } else {
            const p = prepareCase(f, route, opts.seed, index)
            const r = await rawExchange(f.host, f.port, p.exchange, timeoutMs)
            verdict = judge(route, p, r)
            notes = [p.cls, ...p.notes]
            input = `${preview(p.exchange.bytes, 800)} → ${r.status} ${r.body.toString('utf8').slice(0, 200)}`
          }
          s.cases++
          for (const st of verdict.stages) s.stageCounts.set(st, (s.stageCounts.get(st) ?? 0) + 1)
          s.codeCounts.set(verdict.code, (s.codeCounts.get(verdict.code) ?? 0) + 1)
          s.kindCounts.set(notes[0], (s.kindCounts.get(notes[0]) ?? 0) + 1)
          for (const v of verdict.findings) {
            const finding: Finding = { kind: v.kind, target: route.name, seed: opts.seed, index, message: v.message, input, notes: notes.slice(0, 8) }
            addFinding(s, finding)
            opts.onFinding?.(finding)
          }
        }
      }))
      s.ms += performance.now() - b0
      // route errors the gateway logged (a 500, or an error after the answer started)
      for (const e of f.routeErrors.slice(errorsBefore)) {
        const index = Number(/#(\d+)$/.exec(e.at)?.[1] ?? -1)
        const finding: Finding = { kind: 'http-route-error', target: route.name, seed: opts.seed, index, message: e.message }
        addFinding(s, finding)
        opts.onFinding?.(finding)
      }
      if (route.sysop === true) await restoreState(f)
      const h = await health(f)
      if (h.status !== 200) {
        const finding: Finding = { kind: 'http-dead', target: route.name, seed: opts.seed, index: end - 1, message: `/realm/status answered ${h.status || (h.timedOut ? 'nothing in 10 s' : 'nothing')} after cases ${start}–${end - 1} of ${route.name}` }
        global.push(finding)
        opts.onFinding?.(finding)
      }
      opts.onBatch?.(route.name, end)
    }
  }
  return { stats: [...stats.values()], global, ms: performance.now() - t0 }
}
