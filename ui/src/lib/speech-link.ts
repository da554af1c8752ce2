/**
 * The node's recogniser: the `/realm/speech` WebSocket (node/gateway/speech-ws.ts). Audio goes out
 * as binary 16 kHz mono 16-bit PCM; JSON events come back. `parseSpeechMessage` is pure (tested in
 * test/unit/ui-voice.test.ts); `SpeechLink` is the socket.
 */
import { VOICE_MODES, type VoiceMode } from './voice-text.js'

export type SpeechMessage =
  | { type: 'hello', stt: boolean, wakeWord: string | null, maxMessageBytes: number }
  | { type: 'listening', mode: 'wake' | 'ptt' | 'stop' }
  | { type: 'wake' }
  | { type: 'partial', mode: VoiceMode }
  | { type: 'result', prompt: string, heard: string, mode?: VoiceMode, ptt: boolean }
  | { type: 'stop' }
  | { type: 'sleep', reason: 'timeout' | 'not-understood' }
  | { type: 'error', code: string, message: string, fix?: string }
  | { type: 'pong' }

/** Close codes of the speech socket (node/gateway/speech-ws.ts, events-ws.ts) */
export const SPEECH_CLOSE = { banned: 4003, unavailable: 4004, tooSlow: 4008, replaced: 4009, tooLong: 4010 } as const
/** Longest text taken from a message (prompts are short; a bigger one is not the node's) */
const MAX_TEXT_CHARS = 4000
/** Audio waiting in the socket beyond this is dropped, not queued (the network cannot keep up) */
export const MAX_AUDIO_BUFFERED_BYTES = 256 * 1024

function text (v: unknown, max = MAX_TEXT_CHARS): string | undefined {
  return typeof v === 'string' ? v.slice(0, max) : undefined
}

function mode (v: unknown): VoiceMode | undefined {
  return typeof v === 'string' && (VOICE_MODES as readonly string[]).includes(v) ? v as VoiceMode : undefined
}

/** A message of the speech socket, checked; undefined for anything else */
export function parseSpeechMessage (data: string): SpeechMessage | undefined {
  let msg: Record<string, unknown>
  try {
    msg = JSON.parse(data)
  } catch {
    return undefined
  }
  if (msg == null || typeof msg !== 'object') return undefined
  switch (msg.type) {
    case 'hello': {
      const limits = (msg.limits ?? {}) as Record<string, unknown>
      return { type: 'hello', stt: msg.stt === true, wakeWord: text(msg.wakeWord, 64) ?? null, maxMessageBytes: typeof limits.maxMessageBytes === 'number' ? limits.maxMessageBytes : 64 * 1024 }
    }
    case 'listening':
      return msg.mode === 'wake' || msg.mode === 'ptt' || msg.mode === 'stop' ? { type: 'listening', mode: msg.mode } : undefined
    case 'wake': case 'stop': case 'pong':
      return { type: msg.type }
    case 'partial': {
      const m = mode(msg.mode)
      return m !== undefined ? { type: 'partial', mode: m } : undefined
    }
    case 'result': {
      const prompt = text(msg.prompt)
      if (prompt === undefined) return undefined
      const m = mode(msg.mode)
      return { type: 'result', prompt, heard: text(msg.heard) ?? prompt, ptt: msg.ptt === true, ...(m !== undefined ? { mode: m } : {}) }
    }
    case 'sleep':
      return { type: 'sleep', reason: msg.reason === 'timeout' ? 'timeout' : 'not-understood' }
    case 'error': {
      const fix = text(msg.fix, 300)
      return { type: 'error', code: text(msg.code, 64) ?? 'ERROR', message: text(msg.message, 500) ?? 'speech recognition failed', ...(fix !== undefined ? { fix } : {}) }
    }
    default:
      return undefined
  }
}

export interface SpeechLinkInit {
  onMessage: (msg: SpeechMessage) => void
  /** the socket closed (not by `close()`) */
  onClose: (code: number, reason: string) => void
}

export class SpeechLinkError extends Error {
  override name = 'SpeechLinkError'
  constructor (readonly code: string, message: string, readonly fix?: string) {
    super(message)
  }
}

export class SpeechLink {
  private ws?: WebSocket
  private closed = false
  /** what the node listens for now; audio is sent only while it listens */
  private listening: 'wake' | 'ptt' | 'stop' | undefined
  private maxMessageBytes = 64 * 1024

  constructor (private readonly init: SpeechLinkInit) {}

  /** Connects; resolves once the node said hello with a working recogniser, else rejects with its error */
  async open (): Promise<void> {
    const url = new URL('/realm/speech', location.href)
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const ws = new WebSocket(url)
    ws.binaryType = 'arraybuffer'
    this.ws = ws
    await new Promise<void>((resolve, reject) => {
      let settled = false
      let failure: SpeechLinkError | undefined
      ws.addEventListener('message', (ev) => {
        if (typeof ev.data !== 'string') return
        const msg = parseSpeechMessage(ev.data)
        if (msg === undefined) return
        if (!settled) {
          if (msg.type === 'hello') {
            this.maxMessageBytes = msg.maxMessageBytes
            if (msg.stt) {
              settled = true
              resolve()
            }
            return
          }
          if (msg.type === 'error') failure = new SpeechLinkError(msg.code, msg.message, msg.fix)
          return
        }
        this.init.onMessage(msg)
      })
      ws.addEventListener('close', (ev) => {
        if (!settled) {
          settled = true
          const code = ev.code === SPEECH_CLOSE.banned ? 'USER_BANNED' : 'DISCONNECTED'
          reject(failure ?? new SpeechLinkError(code, ev.code === SPEECH_CLOSE.banned ? 'this browser is banned' : 'the node\'s speech socket could not be opened'))
          return
        }
        if (this.ws === ws && !this.closed) this.init.onClose(ev.code, ev.reason)
      })
    })
  }

  /** Listen for the wake word, a push to talk, or "stop"; `phrases`: prompts to expect */
  start (mode: 'wake' | 'ptt' | 'stop', phrases?: string[]): void {
    this.listening = mode
    this.sendJson({ type: 'start', mode, ...(phrases !== undefined ? { phrases } : {}) })
  }

  /** ptt: transcribe what was said; otherwise: stop listening */
  end (): void {
    this.listening = undefined
    this.sendJson({ type: 'end' })
  }

  get isListening (): boolean {
    return this.listening !== undefined
  }

  /** A chunk of PCM; dropped while nothing is listened for, or when the socket is backed up */
  sendAudio (chunk: Uint8Array): void {
    const ws = this.ws
    if (ws === undefined || ws.readyState !== WebSocket.OPEN || this.listening === undefined) return
    if (ws.bufferedAmount > MAX_AUDIO_BUFFERED_BYTES || chunk.byteLength > this.maxMessageBytes) return
    ws.send(chunk)
  }

  close (): void {
    this.closed = true
    this.listening = undefined
    this.ws?.close(1000, 'bye')
    this.ws = undefined
  }

  private sendJson (msg: Record<string, unknown>): void {
    const ws = this.ws
    if (ws !== undefined && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg))
  }
}
