/**
 * The WebSocket client messages under fuzz, as decoders: `/realm/events` of the real fuzz node,
 * and `/realm/speech` (the real SpeechSocket, served on its own port with a stand-in recogniser
 * session: pocketsphinx per case would fuzz pocketsphinx, not the socket's decoding). Each case
 * opens a socket, waits for its hello, sends a few frames (one or more mutated from the schema of
 * the client messages, or bad bytes), then pings until everything it caused has been answered:
 * every answer must be JSON, every error must carry a SNAKE_CASE code, a socket may only close
 * with a code that means "bad input", and it must never hang.
 */
import http from 'node:http'
import { z } from 'zod'
import WebSocket from 'ws'
import { SpeechSocket, type SpeechSessionLike } from '../../node/gateway/speech-ws.js'
import { WS_MAX_MESSAGE_BYTES } from '../../node/gateway/events-ws.js'
import type { SpeechSessionEvent } from '../../node/speech/index.js'
import { Rng, caseSeed } from './rng.js'
import { jsonSchemaOf, type JsonSchema } from './schema.js'
import { INVALID_UTF8, docBytes, mutateBytes, mutateValue, randomBytes, randomJson } from './mutate.js'
import type { CaseResult, DecoderTarget, FuzzCase } from './targets.js'

const enc = new TextEncoder()
const SNAKE_RE = /^[A-Z][A-Z0-9_]*$/
/** Close codes that mean "your input was bad" (or the socket's own limits): too big, not UTF-8, protocol error, policy */
const CLOSE_OK = new Set([1002, 1007, 1008, 1009, 4003, 4008, 4009, 4004, 4010, 4011])

interface Frame { data: Uint8Array, binary: boolean }

/** A case's frames travel in `params.frames`; `bytes` is the main (mutated) one, for the reproduction */
function framesOf (c: FuzzCase): Frame[] {
  return (c.params?.frames as Frame[] | undefined) ?? [{ data: c.bytes, binary: false }]
}

/** What the server makes of a text frame (Buffer → UTF-8 with U+FFFD, as `ws` hands it over) */
function parsedType (f: Frame): { json: boolean, type?: unknown } {
  if (f.binary) return { json: false }
  try {
    const msg = JSON.parse(Buffer.from(f.data).toString('utf8'))
    return { json: true, type: msg?.type }
  } catch {
    return { json: false }
  }
}

interface Exchange {
  /** everything the server sent for the case's frames (hello and the closing pongs left out) */
  replies: any[]
  /** raw answers that were not JSON */
  notJson: string[]
  close?: number
  hello: boolean
  timedOut: boolean
  error?: string
}

/**
 * Opens a socket, waits for hello, sends the frames, then a ping; once the pongs of the frames'
 * own pings and of that ping are in, one more ping: the server reads it in a later turn, so
 * whatever the frames started (a session opening, a push to talk ending) has been answered
 */
async function exchange (url: string, headers: Record<string, string>, frames: Frame[], timeoutMs: number): Promise<Exchange> {
  const ownPings = frames.filter(f => parsedType(f).type === 'ping').length
  return await new Promise<Exchange>((resolve) => {
    const out: Exchange = { replies: [], notJson: [], hello: false, timedOut: false }
    const ws = new WebSocket(url, { headers, handshakeTimeout: timeoutMs, maxPayload: 64 * 1024 * 1024 })
    let pongs = 0
    let settling = false
    let done = false
    const finish = (): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      ws.removeAllListeners()
      ws.on('error', () => {})
      ws.terminate()
      resolve(out)
    }
    const timer = setTimeout(() => { out.timedOut = true; finish() }, timeoutMs)
    ws.on('unexpected-response', (_req, res) => { out.error = `upgrade answered ${String(res.statusCode)}`; finish() })
    ws.on('error', (err) => { out.error ??= err.message.slice(0, 80) })
    ws.on('close', (code) => { out.close = code; finish() })
    ws.on('message', (raw, isBinary) => {
      const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : Buffer.concat(raw as Buffer[]).toString('utf8')
      let msg: any
      try {
        msg = JSON.parse(text)
      } catch {
        out.notJson.push(`${isBinary ? 'binary ' : ''}${text.slice(0, 80)}`)
        return
      }
      if (!out.hello && msg?.type === 'hello') {
        out.hello = true
        for (const f of frames) ws.send(f.data, { binary: f.binary })
        ws.send('{"type":"ping"}')
        return
      }
      if (msg?.type === 'pong') {
        pongs++
        if (!settling && pongs === ownPings + 1) {
          settling = true
          ws.send('{"type":"ping"}')
          return
        }
        if (settling && pongs === ownPings + 2) {
          finish()
          return
        }
      }
      out.replies.push(msg)
    })
  })
}

interface WsTargetSpec {
  name: string
  url: () => string
  headers?: () => Record<string, string>
  /** valid client messages */
  seeds: unknown[]
  schema: JsonSchema
  /** valid frames a case may start with (e.g. a push to talk), so later frames reach deeper states */
  prefixes: Frame[][]
  /** the answers to client messages (the rest are events the socket pushes anyway, not counted) */
  answers: readonly string[]
  /** the server's message size limit */
  maxMessageBytes: number
  timeoutMs?: number
}

const json = (v: unknown): Frame => ({ data: enc.encode(JSON.stringify(v)), binary: false })

function wsTarget (spec: WsTargetSpec): DecoderTarget {
  const name = spec.name
  return {
    name,
    stages: ['open', 'hello', 'utf8', 'json', 'type', 'answered', 'accepted'],
    async prepare () {},
    async generate (seed, index) {
      const rng = new Rng(caseSeed(seed, name, index))
      const base = rng.pick(spec.seeds)
      const prefix = rng.chance(0.3) ? rng.pick(spec.prefixes) : []
      const layer = rng.weighted([['value', 65], ['bytes', 10], ['invalid utf-8', 3], ['binary', 5], ['random json', 4], ['too large', 1], ['valid', 10], ['several', 2]] as const)
      let main: Frame
      const notes: string[] = prefix.length > 0 ? [`after ${prefix.length} valid frames`] : []
      switch (layer) {
        case 'value': {
          const doc = mutateValue(rng, base, spec.schema)
          main = { data: docBytes(doc), binary: false }
          notes.push(...doc.notes)
          break
        }
        case 'bytes': {
          const m = mutateBytes(rng, enc.encode(JSON.stringify(base)))
          main = { data: m.bytes, binary: false }
          notes.push(m.note)
          break
        }
        case 'invalid utf-8': {
          // a text frame that is not UTF-8: the socket must close (1007), not decode it
          const [label, seq] = rng.pick(INVALID_UTF8)
          main = { data: Uint8Array.from([0x7b, 0x22, 0x74, ...seq, 0x22, 0x7d]), binary: false }
          notes.push(`text frame with invalid UTF-8 (${label})`)
          break
        }
        case 'binary': {
          const r = rng.chance(0.5) ? randomBytes(rng) : { bytes: enc.encode(JSON.stringify(base)), note: 'a valid message as a binary frame' }
          main = { data: r.bytes.subarray(0, Math.min(r.bytes.length, spec.maxMessageBytes)), binary: true }
          notes.push(`binary: ${r.note}`)
          break
        }
        case 'random json':
          main = json(randomJson(rng, 4))
          notes.push('random JSON')
          break
        case 'too large': {
          const n = spec.maxMessageBytes + 1 + rng.int(1024)
          main = { data: new Uint8Array(n).fill(0x20), binary: rng.chance(0.5) }
          notes.push(`${n} bytes (limit ${spec.maxMessageBytes})`)
          break
        }
        case 'several': {
          const frames = Array.from({ length: rng.range(2, 6) }, () => json(rng.pick(spec.seeds)))
          main = frames[frames.length - 1]
          notes.push(`${frames.length} valid messages at once`)
          return { target: name, index, kind: layer, notes, bytes: main.data, params: { frames: [...prefix, ...frames] } }
        }
        default:
          main = json(base)
          notes.push('valid')
      }
      return { target: name, index, kind: layer, notes, bytes: main.data, params: { frames: [...prefix, main] } }
    },
    async execute (c): Promise<CaseResult> {
      const frames = framesOf(c)
      const main = frames[frames.length - 1]
      const findings: CaseResult['findings'] = []
      const stages = ['open']
      const r = await exchange(spec.url(), spec.headers?.() ?? {}, frames, spec.timeoutMs ?? 10_000)
      if (r.hello) stages.push('hello')
      const utf8 = main.binary || isUtf8(main.data)
      const parsed = parsedType(main)
      if (utf8) stages.push('utf8')
      if (parsed.json) stages.push('json')
      if (typeof parsed.type === 'string') stages.push('type')
      if (r.replies.length > 0 || r.close !== undefined) stages.push('answered')
      for (const t of r.notJson) findings.push({ kind: 'ws', message: `an answer that is not JSON: ${JSON.stringify(t)}` })
      for (const m of r.replies) {
        if (typeof m?.type !== 'string') findings.push({ kind: 'ws', message: `an answer without a type: ${JSON.stringify(m).slice(0, 120)}` })
        else if (m.type === 'error' && (typeof m.code !== 'string' || !SNAKE_RE.test(m.code) || typeof m.message !== 'string')) findings.push({ kind: 'uncoded', message: `an error without a code: ${JSON.stringify(m).slice(0, 160)}` })
      }
      if (r.timedOut) {
        findings.push({ kind: 'hang', message: `no answer within ${spec.timeoutMs ?? 10_000} ms (hello ${String(r.hello)}, ${r.replies.length} replies)` })
        return { stages, code: 'TIMEOUT', findings }
      }
      if (!r.hello) {
        findings.push({ kind: 'ws', message: `no hello: ${r.error ?? `closed ${String(r.close)}`}` })
        return { stages, code: 'NO_HELLO', findings }
      }
      if (r.close !== undefined) {
        if (!CLOSE_OK.has(r.close)) findings.push({ kind: 'ws', message: `closed with code ${r.close} (${r.error ?? 'no error'})` })
        return { stages, code: `CLOSE_${r.close}`, findings }
      }
      const error = r.replies.find(m => m?.type === 'error')
      if (error !== undefined) return { stages, code: String(error.code), findings }
      stages.push('accepted')
      const types = [...new Set(r.replies.map(m => String(m?.type)).filter(t => spec.answers.includes(t)))].sort()
      return { stages, code: `OK${types.length > 0 ? ':' + types.join('+') : ''}`, findings }
    }
  }
}

function isUtf8 (bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    return true
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// /realm/events

const TOPIC = z.enum(['presence', 'peers', 'tasks', 'system'])
const EventsClientSchema = z.union([
  z.object({ type: z.literal('ping') }).strict(),
  z.object({ type: z.literal('subscribe'), topics: z.array(TOPIC).max(4) }).strict(),
  z.object({ type: z.literal('unsubscribe'), topics: z.array(TOPIC).max(4) }).strict()
])

/** The events socket of a running node, as the web UI uses it (`base` is its `ws://host:port`) */
export function eventsWsTarget (base: () => string, cookie?: () => string): DecoderTarget {
  return wsTarget({
    name: 'events-ws',
    url: () => `${base()}/realm/events?topics=presence,peers`,
    headers: (): Record<string, string> => (cookie !== undefined ? { Cookie: cookie() } : {}),
    seeds: [{ type: 'ping' }, { type: 'subscribe', topics: ['presence', 'peers'] }, { type: 'unsubscribe', topics: ['peers'] }, { type: 'subscribe', topics: ['tasks'] }, { type: 'subscribe', topics: ['system'] }],
    schema: jsonSchemaOf(EventsClientSchema),
    prefixes: [[json({ type: 'subscribe', topics: ['tasks'] })], [json({ type: 'unsubscribe', topics: ['presence', 'peers'] })]],
    answers: ['pong', 'subscribed', 'error'],
    maxMessageBytes: WS_MAX_MESSAGE_BYTES
  })
}

// ---------------------------------------------------------------------------------------------
// /realm/speech

const SpeechClientSchema = z.union([
  z.object({ type: z.literal('start'), mode: z.enum(['wake', 'ptt', 'stop']), phrases: z.array(z.string().max(200)).max(100).optional(), commands: z.boolean().optional() }).strict(),
  z.object({ type: z.literal('end') }).strict(),
  z.object({ type: z.literal('ping') }).strict()
])

/** A recogniser session that hears "what is the realm" in whatever it is given */
class StandinSession implements SpeechSessionLike {
  private readonly listeners = new Set<(e: SpeechSessionEvent) => void>()
  private bytes = 0
  push (chunk: Uint8Array): void {
    this.bytes += chunk.byteLength
    if (this.bytes > 32_000) {
      this.bytes = 0
      this.emit({ type: 'wake', word: 'computer', start: 0, end: 1 })
    }
  }

  async end (): Promise<void> { this.emit({ type: 'result', text: 'chat what is the realm', start: 0, end: 1 }) }
  close (): void { this.listeners.clear() }
  on (l: (e: SpeechSessionEvent) => void): () => void { this.listeners.add(l); return () => { this.listeners.delete(l) } }
  private emit (e: SpeechSessionEvent): void { for (const l of this.listeners) l(e) }
}

export interface SpeechServer { url: string, stop: () => Promise<void> }

/** The node's SpeechSocket on its own loopback port, with stand-in sessions */
export async function startSpeechServer (): Promise<SpeechServer> {
  const socket = new SpeechSocket({ sttStatus: () => ({ ok: true }), createSession: async () => new StandinSession() })
  const server = http.createServer((_req, res) => { res.statusCode = 404; res.end() })
  server.on('upgrade', (req, sock, head) => { socket.handleUpgrade(req, sock, head) })
  socket.start()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `ws://127.0.0.1:${port}/realm/speech`,
    stop: async () => {
      socket.stop()
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  }
}

const PCM = (ms: number): Frame => ({ data: new Uint8Array(32 * ms), binary: true })

export function speechWsTarget (url: () => string): DecoderTarget {
  return wsTarget({
    name: 'speech-ws',
    url,
    seeds: [
      { type: 'start', mode: 'wake' },
      { type: 'start', mode: 'ptt', phrases: ['what is the realm', 'tell me a joke'], commands: true },
      { type: 'start', mode: 'ptt' },
      { type: 'start', mode: 'stop' },
      { type: 'end' },
      { type: 'ping' }
    ],
    schema: jsonSchemaOf(SpeechClientSchema),
    prefixes: [
      [json({ type: 'start', mode: 'ptt' }), PCM(200)],
      [json({ type: 'start', mode: 'wake' }), PCM(1200)],
      [json({ type: 'start', mode: 'ptt', commands: true }), PCM(100), json({ type: 'end' })]
    ],
    answers: ['pong', 'listening', 'wake', 'partial', 'result', 'sleep', 'stop', 'error'],
    maxMessageBytes: 64 * 1024
  })
}
