/**
 * `GET /realm/speech`: the web UI's microphone, recognised on this node. The browser streams
 * 16 kHz mono 16-bit little-endian PCM in binary messages; the node runs a SpeechSession
 * (node/speech: pocketsphinx keyword spotting for the wake word, a grammar for the mode, dictation
 * for the prompt) in the gateway process itself and answers JSON events. Recognition is always
 * this node's own: the audio never leaves the machine and no task is queued for it. The node
 * must run the offline `stt` worker (`--worker stt=pocketsphinx`): that is the sysop's consent to
 * spend CPU on it, and its probe says whether the engine works.
 *
 * Client → node (JSON text, or binary audio):
 *   { type: 'start', mode: 'wake', phrases? }  hands-free: "computer" → mode → prompt, until the next start/end
 *   { type: 'start', mode: 'ptt', phrases?, commands? }  push to talk: what is said until `end` is one
 *                                              prompt, by free dictation (a leading mode word counts
 *                                              when dictation hears it); `commands: true`: it starts
 *                                              with a mode, found by the command grammar
 *   { type: 'start', mode: 'stop' }            while the UI speaks: only "stop" is listened for
 *   { type: 'end' }                            ptt: transcribe now; other modes: stop listening
 *   { type: 'ping' }
 *   binary: PCM (any chunk size); dropped while no mode is started
 * Node → client:
 *   hello { sampleRate, wakeWord, modes, limits }, listening { mode }, wake { word, start, end },
 *   partial { mode, text }, result { mode?, prompt, heard, ptt? }, stop, sleep { reason },
 *   pong, error { code, message, fix? }
 * `phrases` are prompts the client expects (its suggestions, its user's recent prompts): a
 * dictated prompt that differs from one only by a slip of the recogniser (similarity ≥ 0.85) is
 * taken as that phrase — dictation is poor, and this is how a known question comes out exact.
 *
 * Limits: message size, bytes of audio per second, one socket per user (a new one replaces the
 * old: a reloaded tab is not locked out), a socket's lifetime, its idle time, a push-to-talk's
 * length, clients at once; a slow reader is dropped, never allowed to grow memory.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type RawData, type WebSocket } from 'ws'
import { logger } from '@libp2p/logger'
import {
  STT_BYTES_PER_SECOND, STT_SAMPLE_RATE, WAKE_WORD, checkSpeechEngines, createSpeechSession,
  type SpeechEnginesReport, type SpeechSessionEvent, type SpeechSessionInit
} from '../speech/index.js'
import type { WorkerAd } from '../../protocol/presence.js'
import { errorMessage } from '../../protocol/errors.js'
import { WS_CLOSE_BANNED, WS_CLOSE_TOO_SLOW } from './events-ws.js'

/** The modes a prompt may be for (the UI's views); said after the wake word, or first in a push to talk */
export const SPEECH_MODES = ['chat', 'vision', 'imagine'] as const
export type SpeechMode = typeof SPEECH_MODES[number]
/** The word that silences the UI's speech (alone while it speaks, or after the wake word) */
export const STOP_WORD = 'stop'
/** Largest message: 2 s of audio (the UI sends ~100 ms at a time) */
export const SPEECH_WS_MAX_MESSAGE_BYTES = 64 * 1024
/** Audio a client may send per second: twice real time, so a late burst after a stall still passes */
export const SPEECH_WS_BYTES_PER_S = 2 * STT_BYTES_PER_SECOND
/** Audio a client may send at once before that rate applies: 10 s */
export const SPEECH_WS_BURST_BYTES = 10 * STT_BYTES_PER_SECOND
/** A socket lives this long, then is closed (SPEECH_CLOSE_TOO_LONG); the UI opens a new one */
export const SPEECH_WS_MAX_SESSION_MS = 60 * 60 * 1000
/** A socket that sends nothing (no audio, no message) for this long is closed (SPEECH_CLOSE_IDLE): a slot is not held by a silent client */
export const SPEECH_WS_IDLE_MS = 2 * 60 * 1000
/** A push to talk is transcribed once it holds this much audio, even if `end` has not come */
export const SPEECH_PTT_MAX_MS = 30_000
/** Sockets at once (each may run pocketsphinx processes) */
export const SPEECH_WS_MAX_CLIENTS = 32
/** A client with this much unsent data is too slow and is closed */
export const SPEECH_WS_MAX_BUFFERED_BYTES = 256 * 1024
/** Audio kept while a session is being opened (its first words): 2 s */
export const SPEECH_PENDING_MAX_BYTES = 2 * STT_BYTES_PER_SECOND
/** Most phrases a start may give, and their longest */
export const MAX_CLIENT_PHRASES = 100
export const MAX_CLIENT_PHRASE_CHARS = 200
/** A dictated prompt this similar to a phrase (1 − edit distance / length) is taken as the phrase */
export const PHRASE_SNAP_SIMILARITY = 0.85
/** JSON control messages a client may send per second (start, end, ping), and at once */
export const SPEECH_WS_CONTROL_PER_S = 5
export const SPEECH_WS_CONTROL_BURST = 20
/** "too fast" is said at most this often */
const RATE_ERROR_INTERVAL_MS = 1000
/** The engine check behind an STT_UNAVAILABLE answer is reused this long (it spawns processes) */
const ENGINE_CHECK_TTL_MS = 30_000

/** Close codes (application range): replaced by the same user's newer socket; no recogniser; lived too long */
export const SPEECH_CLOSE_REPLACED = 4009
export const SPEECH_CLOSE_UNAVAILABLE = 4004
export const SPEECH_CLOSE_TOO_LONG = 4010
export const SPEECH_CLOSE_IDLE = 4011

export type SpeechListenMode = 'wake' | 'ptt' | 'stop'

/** Can this node recognise speech now; if not, why and what to do */
export type SttStatus = { ok: true } | { ok: false, message: string, fix?: string }

/** What the socket needs of a session (node/speech SpeechSession) */
export interface SpeechSessionLike {
  push: (chunk: Uint8Array) => void
  end: () => Promise<void>
  close: () => void
  on: (listener: (event: SpeechSessionEvent) => void) => () => void
}

export interface SpeechSocketInit {
  /** is there a working recogniser (this node's `stt` worker); see `localSttStatus` */
  sttStatus: () => SttStatus | Promise<SttStatus>
  /** the web UI user of an upgrade request (identity cookie); default none: the client address keys the socket */
  userOf?: (req: IncomingMessage) => { id: string, banned?: boolean } | undefined
  /** opens a session; default node/speech createSpeechSession */
  createSession?: (init: SpeechSessionInit) => Promise<SpeechSessionLike>
  /** session settings for every mode (engines, thresholds); tests shorten timeouts here */
  session?: Partial<SpeechSessionInit>
  /** default SPEECH_WS_BYTES_PER_S */
  bytesPerS?: number
  /** default SPEECH_WS_BURST_BYTES */
  burstBytes?: number
  /** default SPEECH_WS_MAX_SESSION_MS */
  maxSessionMs?: number
  /** default SPEECH_PTT_MAX_MS */
  pttMaxMs?: number
  /** default SPEECH_WS_IDLE_MS */
  idleMs?: number
  /** default SPEECH_WS_MAX_CLIENTS */
  maxClients?: number
}

export class SpeechProtocolError extends Error {
  override name = 'SpeechProtocolError'
  constructor (readonly code: string, message: string) {
    super(message)
  }
}

/**
 * This node's recogniser, from its own workers: a local `stt` worker (the offline engine) that
 * is `ok`. When there is none, the engine check says what to install.
 */
export async function localSttStatus (workers: WorkerAd[], check: () => Promise<SpeechEnginesReport> = checkSpeechEngines): Promise<SttStatus> {
  const stt = workers.filter(w => w.backend === 'stt')
  if (stt.some(w => w.health.state === 'ok')) return { ok: true }
  if (stt.some(w => w.health.state === 'starting')) return { ok: false, message: 'this node\'s speech recognition is starting; try again in a moment' }
  const engines = await check().catch(() => undefined)
  const ps = engines?.pocketsphinx
  const install = ps !== undefined && !ps.ok ? ps.fix ?? 'apt-get install pocketsphinx pocketsphinx-en-us' : undefined
  if (stt.length === 0) {
    return {
      ok: false,
      message: 'this node runs no speech recognition (it has no offline stt worker)',
      fix: `its sysop can start the node with --worker stt=pocketsphinx${install !== undefined ? ` after ${install}` : ''}`
    }
  }
  return {
    ok: false,
    message: `this node's speech recognition is benched${ps !== undefined && !ps.ok ? `: ${ps.error ?? 'pocketsphinx does not run'}` : ''}`,
    ...(install !== undefined ? { fix: install } : {})
  }
}

/** Lower-case words of a text, punctuation gone */
function normalise (text: string): string {
  return text.toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '').replace(/[^a-z0-9']+/g, ' ').trim()
}

/** Edit distance (insertions, deletions, substitutions) of two short strings */
export function editDistance (a: string, b: string): number {
  if (a === b) return 0
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length]!
}

/** The phrase (as given) that `text` was most likely meant to be, when it is that close; else `text` */
export function snapToPhrase (text: string, phrases: readonly string[], minSimilarity = PHRASE_SNAP_SIMILARITY): string {
  const heard = normalise(text)
  if (heard === '') return text
  let best: { phrase: string, similarity: number } | undefined
  for (const phrase of phrases) {
    const p = normalise(phrase)
    if (p === '') continue
    const similarity = 1 - editDistance(heard, p) / Math.max(heard.length, p.length)
    if (best === undefined || similarity > best.similarity) best = { phrase, similarity }
  }
  return best !== undefined && best.similarity >= minSimilarity ? best.phrase : text
}

/** A dictated text whose first word names a mode: that mode and the rest */
export function leadingMode (text: string): { mode?: SpeechMode, prompt: string } {
  const words = text.trim().split(/\s+/)
  const first = (words[0] ?? '').toLowerCase()
  if ((SPEECH_MODES as readonly string[]).includes(first) && words.length > 1) return { mode: first as SpeechMode, prompt: words.slice(1).join(' ') }
  return { prompt: text.trim() }
}

/** Audio bytes a client may still send: a token bucket counted in bytes */
class ByteBudget {
  private tokens: number
  private last = Date.now()
  constructor (private readonly perS: number, private readonly burst: number) {
    this.tokens = burst
  }

  take (bytes: number, now = Date.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + Math.max(0, now - this.last) / 1000 * this.perS)
    this.last = now
    if (this.tokens < bytes) return false
    this.tokens -= bytes
    return true
  }
}

interface Client {
  ws: WebSocket
  key: string
  mode?: SpeechListenMode
  session?: SpeechSessionLike
  /** a session is being opened: its audio waits here */
  pending?: Buffer[]
  /** resolves once the session being opened is open (or failed) */
  opening?: Promise<void>
  pendingBytes: number
  /** bumped at every start/end: events of an older session are dropped */
  generation: number
  phrases: string[]
  budget: ByteBudget
  control: ByteBudget
  lastRateError: number
  pttBytes: number
  /** ptt: results collected until `end` */
  heard: Array<{ mode?: string, text: string }>
  /** ptt: the command grammar finds the mode */
  pttCommands: boolean
  lifeTimer?: ReturnType<typeof setTimeout>
  idleTimer?: ReturnType<typeof setTimeout>
  closed: boolean
}

export class SpeechSocket {
  private readonly log = logger('realm:speech-ws')
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: SPEECH_WS_MAX_MESSAGE_BYTES })
  private readonly clients = new Map<string, Client>()
  private engineCheck?: { at: number, report: Promise<SpeechEnginesReport> }

  constructor (private readonly init: SpeechSocketInit) {}

  start (): void {}

  stop (): void {
    for (const client of [...this.clients.values()]) this.drop(client, 1001, 'node stopping')
    this.clients.clear()
    this.wss.close()
  }

  get size (): number {
    return this.clients.size
  }

  /** The engine check, reused for a while (for localSttStatus) */
  engines (): Promise<SpeechEnginesReport> {
    const now = Date.now()
    if (this.engineCheck === undefined || now - this.engineCheck.at > ENGINE_CHECK_TTL_MS) {
      this.engineCheck = { at: now, report: checkSpeechEngines() }
    }
    return this.engineCheck.report
  }

  /** Take over an HTTP upgrade on `/realm/speech` (Host/Origin already checked by the gateway's security) */
  handleUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.clients.size >= (this.init.maxClients ?? SPEECH_WS_MAX_CLIENTS)) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n{"error":{"code":"TOO_MANY_CLIENTS","message":"too many speech clients"}}')
      return
    }
    const user = this.init.userOf?.(req)
    if (user?.banned === true) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n{"error":{"code":"USER_BANNED","message":"this browser\'s user has been banned by the node\'s sysop"}}')
      return
    }
    const key = user !== undefined ? `user:${user.id}` : `addr:${req.socket.remoteAddress ?? 'unknown'}`
    this.wss.handleUpgrade(req, socket, head, (ws) => { void this.onConnection(ws, key) })
  }

  /** Close the socket of a web UI user (banned) */
  closeUser (id: string): void {
    const client = this.clients.get(`user:${id}`)
    if (client !== undefined) this.drop(client, WS_CLOSE_BANNED, 'banned')
  }

  private async onConnection (ws: WebSocket, key: string): Promise<void> {
    const client: Client = {
      ws,
      key,
      generation: 0,
      phrases: [],
      pendingBytes: 0,
      budget: new ByteBudget(this.init.bytesPerS ?? SPEECH_WS_BYTES_PER_S, this.init.burstBytes ?? SPEECH_WS_BURST_BYTES),
      control: new ByteBudget(SPEECH_WS_CONTROL_PER_S, SPEECH_WS_CONTROL_BURST),
      lastRateError: 0,
      pttBytes: 0,
      heard: [],
      pttCommands: false,
      closed: false
    }
    // one socket per user: the newer one wins (a reloaded tab, a second tab)
    const older = this.clients.get(key)
    if (older !== undefined) this.drop(older, SPEECH_CLOSE_REPLACED, 'replaced by a newer speech socket of this user')
    this.clients.set(key, client)
    ws.on('close', () => { this.forget(client) })
    ws.on('error', (err) => {
      this.log('client error: %s', err.message)
      this.forget(client)
    })
    // messages are taken from the start; they wait for the recogniser check below
    const ready = this.checkStt()
    ws.on('message', (data, isBinary) => { void ready.then(status => { if (status.ok) this.onMessage(client, data, isBinary) }) })
    const status = await ready
    if (client.closed) return
    this.send(client, {
      type: 'hello',
      sampleRate: STT_SAMPLE_RATE,
      wakeWord: this.init.session?.wakeWord === false ? null : (this.init.session?.wakeWord ?? WAKE_WORD),
      modes: [...SPEECH_MODES],
      stopWord: STOP_WORD,
      stt: status.ok,
      limits: {
        maxMessageBytes: SPEECH_WS_MAX_MESSAGE_BYTES,
        bytesPerS: this.init.bytesPerS ?? SPEECH_WS_BYTES_PER_S,
        maxSessionMs: this.init.maxSessionMs ?? SPEECH_WS_MAX_SESSION_MS,
        pttMaxMs: this.init.pttMaxMs ?? SPEECH_PTT_MAX_MS
      }
    })
    if (!status.ok) {
      this.sendError(client, 'STT_UNAVAILABLE', status.message, status.fix)
      this.drop(client, SPEECH_CLOSE_UNAVAILABLE, 'no speech recognition on this node')
      return
    }
    client.lifeTimer = setTimeout(() => {
      this.sendError(client, 'SESSION_TOO_LONG', 'this speech socket has lived its time; open a new one')
      this.drop(client, SPEECH_CLOSE_TOO_LONG, 'session too long')
    }, this.init.maxSessionMs ?? SPEECH_WS_MAX_SESSION_MS)
    client.lifeTimer.unref()
    client.idleTimer = setTimeout(() => { this.drop(client, SPEECH_CLOSE_IDLE, 'idle') }, this.init.idleMs ?? SPEECH_WS_IDLE_MS)
    client.idleTimer.unref()
  }

  private async checkStt (): Promise<SttStatus> {
    try {
      return await this.init.sttStatus()
    } catch (err) {
      return { ok: false, message: `speech recognition could not be checked: ${errorMessage(err)}` }
    }
  }

  private onMessage (client: Client, data: RawData, isBinary: boolean): void {
    if (client.closed) return
    client.idleTimer?.refresh()
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)
    if (isBinary) {
      this.onAudio(client, bytes)
      return
    }
    if (!client.control.take(1)) {
      this.sendError(client, 'RATE_LIMITED', 'too many messages: slow down')
      return
    }
    let msg: any
    try {
      msg = JSON.parse(bytes.toString('utf8'))
    } catch {
      this.sendError(client, 'INVALID_MESSAGE', 'text messages must be JSON')
      return
    }
    try {
      if (msg?.type === 'start') this.onStart(client, msg)
      else if (msg?.type === 'end') void this.onEnd(client)
      else if (msg?.type === 'ping') this.send(client, { type: 'pong' })
      else throw new SpeechProtocolError('INVALID_MESSAGE', 'expected { type: "start" | "end" | "ping" } or binary audio')
    } catch (err) {
      this.sendError(client, err instanceof SpeechProtocolError ? err.code : 'INVALID_MESSAGE', errorMessage(err))
    }
  }

  private onStart (client: Client, msg: { mode?: unknown, phrases?: unknown, commands?: unknown }): void {
    const mode = msg.mode
    if (mode !== 'wake' && mode !== 'ptt' && mode !== 'stop') throw new SpeechProtocolError('INVALID_MESSAGE', 'mode must be "wake", "ptt" or "stop"')
    if (msg.commands !== undefined && typeof msg.commands !== 'boolean') throw new SpeechProtocolError('INVALID_MESSAGE', 'commands must be true or false')
    client.pttCommands = mode === 'ptt' && msg.commands === true
    if (msg.phrases !== undefined) {
      if (!Array.isArray(msg.phrases) || msg.phrases.length > MAX_CLIENT_PHRASES || !msg.phrases.every(p => typeof p === 'string' && p.length <= MAX_CLIENT_PHRASE_CHARS)) {
        throw new SpeechProtocolError('INVALID_MESSAGE', `phrases: at most ${MAX_CLIENT_PHRASES} strings of at most ${MAX_CLIENT_PHRASE_CHARS} characters`)
      }
      client.phrases = msg.phrases as string[]
    }
    this.closeSession(client)
    client.opening = this.openSession(client, mode)
  }

  private sessionInit (mode: SpeechListenMode, pttCommands = false): SpeechSessionInit {
    const base = this.init.session ?? {}
    const pttMaxMs = this.init.pttMaxMs ?? SPEECH_PTT_MAX_MS
    switch (mode) {
      // not "stop" among the commands: the grammar took espeak-ng's "chat" for it
      case 'wake': return { ...base, commands: [...SPEECH_MODES] }
      // "stop" is the wake word; what would follow it is never listened to (the session is renewed)
      case 'stop': return { ...base, wakeWord: STOP_WORD, commands: [] }
      // one utterance, however long the pauses: all of it is the prompt (after its mode, with `commands`).
      // Free dictation by default: the command grammar always finds some mode, said or not
      case 'ptt': return { ...base, wakeWord: false, commands: pttCommands ? [...SPEECH_MODES] : [], endSilenceMs: pttMaxMs + 1000, maxUtteranceMs: pttMaxMs + 1000 }
    }
  }

  private async openSession (client: Client, mode: SpeechListenMode): Promise<void> {
    const generation = ++client.generation
    client.mode = mode
    client.pending = []
    client.pendingBytes = 0
    client.pttBytes = 0
    client.heard = []
    let session: SpeechSessionLike
    try {
      session = await (this.init.createSession ?? createSpeechSession)(this.sessionInit(mode, client.pttCommands))
    } catch (err) {
      if (generation !== client.generation) return
      client.mode = undefined
      client.pending = undefined
      this.sendError(client, 'RECOGNIZER_ERROR', errorMessage(err))
      return
    }
    if (generation !== client.generation || client.closed) {
      session.close()
      return
    }
    client.session = session
    session.on(event => { if (generation === client.generation) this.onSessionEvent(client, mode, event) })
    this.send(client, { type: 'listening', mode })
    const pending = client.pending ?? []
    client.pending = undefined
    client.pendingBytes = 0
    for (const chunk of pending) this.pushAudio(client, chunk)
  }

  private closeSession (client: Client): void {
    client.generation++
    client.session?.close()
    client.session = undefined
    client.pending = undefined
    client.pendingBytes = 0
    client.mode = undefined
  }

  private async onEnd (client: Client): Promise<void> {
    if (client.mode !== 'ptt') {
      this.closeSession(client)
      return
    }
    const generation = client.generation
    // no more audio for this push to talk (once only: `end` and the length limit may both come)
    client.mode = undefined
    // a session still opening: wait for it (its pending audio is pushed when it opens)
    await client.opening
    const session = client.session
    if (session === undefined || generation !== client.generation) return
    try {
      await session.end()
    } catch (err) {
      this.sendError(client, 'RECOGNIZER_ERROR', errorMessage(err))
    }
    if (generation !== client.generation) return
    const heard = client.heard.map(h => h.text).join(' ').trim()
    const said = client.heard.find(h => h.mode !== undefined)?.mode
    this.closeSession(client)
    if (heard === '') {
      this.send(client, { type: 'sleep', reason: 'not-understood' })
      return
    }
    const { mode, prompt } = said !== undefined ? { mode: said, prompt: heard } : leadingMode(heard)
    this.send(client, { type: 'result', ...(mode !== undefined ? { mode } : {}), prompt: snapToPhrase(prompt, client.phrases), heard, ptt: true })
  }

  private onAudio (client: Client, bytes: Buffer): void {
    if (client.mode === undefined) return
    if (!client.budget.take(bytes.length)) {
      const now = Date.now()
      if (now - client.lastRateError >= RATE_ERROR_INTERVAL_MS) {
        client.lastRateError = now
        this.sendError(client, 'AUDIO_TOO_FAST', `audio is sent faster than ${this.init.bytesPerS ?? SPEECH_WS_BYTES_PER_S} bytes/s: some was dropped`)
      }
      return
    }
    if (client.pending !== undefined) {
      if (client.pendingBytes + bytes.length <= SPEECH_PENDING_MAX_BYTES) {
        client.pending.push(bytes)
        client.pendingBytes += bytes.length
      }
      return
    }
    this.pushAudio(client, bytes)
  }

  private pushAudio (client: Client, bytes: Buffer): void {
    const session = client.session
    if (session === undefined) return
    try {
      session.push(bytes)
    } catch (err) {
      this.sendError(client, 'INVALID_AUDIO', errorMessage(err))
      this.closeSession(client)
      return
    }
    if (client.mode === 'ptt') {
      client.pttBytes += bytes.length
      if (client.pttBytes >= (this.init.pttMaxMs ?? SPEECH_PTT_MAX_MS) / 1000 * STT_BYTES_PER_SECOND) void this.onEnd(client)
    }
  }

  private onSessionEvent (client: Client, mode: SpeechListenMode, event: SpeechSessionEvent): void {
    switch (event.type) {
      case 'wake':
        if (mode === 'stop') {
          this.send(client, { type: 'stop' })
          // renewed: what follows "stop" must not be taken as a prompt
          this.closeSession(client)
          client.opening = this.openSession(client, 'stop')
          return
        }
        this.send(client, { type: 'wake', word: event.word, start: event.start, end: event.end })
        return
      case 'partial':
        // ptt with commands: a mode without words after it
        if (mode === 'ptt') {
          client.heard.push({ mode: event.command, text: '' })
          return
        }
        this.send(client, { type: 'partial', mode: event.command, text: event.text })
        return
      case 'result': {
        if (mode === 'ptt') {
          client.heard.push({ text: event.text, ...(event.command !== undefined ? { mode: event.command } : {}) })
          return
        }
        this.send(client, {
          type: 'result',
          ...(event.command !== undefined ? { mode: event.command } : {}),
          prompt: snapToPhrase(event.text, client.phrases),
          heard: event.text,
          start: event.start,
          end: event.end
        })
        return
      }
      case 'sleep':
        if (mode === 'wake') this.send(client, { type: 'sleep', reason: event.reason })
        return
      case 'error':
        this.sendError(client, 'RECOGNIZER_ERROR', event.error.message)
    }
  }

  private send (client: Client, msg: Record<string, unknown>): void {
    const ws = client.ws
    if (client.closed || ws.readyState !== ws.OPEN) return
    if (ws.bufferedAmount > SPEECH_WS_MAX_BUFFERED_BYTES) {
      this.drop(client, WS_CLOSE_TOO_SLOW, 'too slow')
      return
    }
    ws.send(JSON.stringify({ ...msg, time: new Date().toISOString() }))
  }

  private sendError (client: Client, code: string, message: string, fix?: string): void {
    this.send(client, { type: 'error', code, message, ...(fix !== undefined ? { fix } : {}) })
  }

  private forget (client: Client): void {
    if (client.closed) return
    client.closed = true
    this.closeSession(client)
    if (client.lifeTimer !== undefined) clearTimeout(client.lifeTimer)
    if (client.idleTimer !== undefined) clearTimeout(client.idleTimer)
    if (this.clients.get(client.key) === client) this.clients.delete(client.key)
  }

  private drop (client: Client, code: number, reason: string): void {
    const ws = client.ws
    this.forget(client)
    ws.close(code, reason)
    setTimeout(() => { ws.terminate() }, 1000).unref()
  }
}
