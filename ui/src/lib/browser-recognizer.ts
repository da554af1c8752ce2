/**
 * The browser's own speech recognition (Web Speech API), where the browser has it, speaking the
 * same events as the node's recogniser. Chromium's sends the audio to Google's servers: offline it
 * fails with `network`, and the voice falls back to the node (lib/voice.ts). While an answer is
 * spoken it does not listen at all (half-duplex; "stop" by voice needs the node's recogniser).
 */
import { parseDictation, readTranscript, type Expect, type HeardEvent } from './voice-text.js'
import type { ListenAs } from './voice.js'

/** No `start` from the recogniser within this long: it is not going to work here */
export const BROWSER_START_TIMEOUT_MS = 5_000

export type RecognizerEvent = HeardEvent

export interface BrowserRecognizerInit {
  lang?: string
  onReady: () => void
  onEvent: (event: RecognizerEvent) => void
  onError: (code: string, message: string) => void
}

interface SpeechRecognitionLike extends EventTarget {
  continuous: boolean
  interimResults: boolean
  lang: string
  start: () => void
  stop: () => void
  abort: () => void
}

type SpeechRecognitionCtor = new () => SpeechRecognitionLike

function recognitionCtor (): SpeechRecognitionCtor | undefined {
  const w = globalThis as unknown as { SpeechRecognition?: SpeechRecognitionCtor, webkitSpeechRecognition?: SpeechRecognitionCtor }
  return w.SpeechRecognition ?? w.webkitSpeechRecognition
}

/** Does this browser have its own speech recognition? */
export function browserRecognitionAvailable (): boolean {
  return recognitionCtor() !== undefined
}

export class BrowserRecognizer {
  private rec?: SpeechRecognitionLike
  private mode: ListenAs = 'idle'
  /** what is expected next in hands-free */
  private expect: Expect = 'wake'
  private pttText: string[] = []
  private running = false
  private closed = false
  private ready = false
  private startTimer?: ReturnType<typeof setTimeout>

  constructor (private readonly init: BrowserRecognizerInit) {}

  /** Starts listening (for nothing yet); `onReady` once the recogniser runs, `onError` if it cannot */
  start (): void {
    const Ctor = recognitionCtor()
    if (Ctor === undefined) {
      this.init.onError('unavailable', 'this browser has no speech recognition')
      return
    }
    const rec = new Ctor()
    rec.continuous = true
    rec.interimResults = false
    rec.lang = this.init.lang ?? navigator.language ?? 'en-US'
    rec.addEventListener('start', () => {
      this.running = true
      if (this.startTimer !== undefined) clearTimeout(this.startTimer)
      if (!this.ready) {
        this.ready = true
        this.init.onReady()
      }
    })
    rec.addEventListener('result', (ev) => { this.onResult(ev as unknown as { resultIndex: number, results: ArrayLike<ArrayLike<{ transcript: string }> & { isFinal: boolean }> }) })
    rec.addEventListener('error', (ev) => {
      const code = String((ev as unknown as { error?: string }).error ?? 'unknown')
      // silence and our own aborts are not failures
      if (code === 'no-speech' || code === 'aborted') return
      this.closeRec()
      this.init.onError(code, `the browser's speech recognition failed: ${code}`)
    })
    rec.addEventListener('end', () => {
      this.running = false
      // Chromium ends a continuous session after a while: go on while something is listened for
      if (!this.closed && this.rec === rec && (this.mode === 'wake' || this.mode === 'ptt')) this.restart()
    })
    this.rec = rec
    this.startTimer = setTimeout(() => {
      if (!this.ready && !this.closed) {
        this.closeRec()
        this.init.onError('no-start', 'the browser\'s speech recognition did not start')
      }
    }, BROWSER_START_TIMEOUT_MS)
    this.restart()
  }

  /** What to listen for: the wake word, a push to talk, or nothing (`stop`: the browser cannot single it out; nothing) */
  listen (as: ListenAs): void {
    this.mode = as
    this.expect = 'wake'
    this.pttText = []
    if (as === 'wake' || as === 'ptt') {
      if (!this.running) this.restart()
    } else if (this.running) {
      // half-duplex: not listening while the answer is said
      this.rec?.abort()
    }
  }

  /** Push to talk released: what was said is the prompt (the last words may still come in) */
  endPtt (): void {
    const rec = this.rec
    if (rec === undefined) return
    const finish = (): void => {
      rec.removeEventListener('end', finish)
      const text = this.pttText.join(' ').trim()
      this.pttText = []
      this.mode = 'idle'
      if (text === '') this.init.onEvent({ type: 'sleep', reason: 'not-understood' })
      else {
        const parsed = parseDictation(text)
        this.init.onEvent({ type: 'result', prompt: parsed.prompt, ...(parsed.mode !== undefined ? { mode: parsed.mode } : {}) })
      }
    }
    rec.addEventListener('end', finish)
    // stop (not abort): the words said so far are still delivered
    rec.stop()
  }

  close (): void {
    this.closed = true
    this.closeRec()
  }

  private closeRec (): void {
    if (this.startTimer !== undefined) clearTimeout(this.startTimer)
    const rec = this.rec
    this.rec = undefined
    this.running = false
    try {
      rec?.abort()
    } catch {
      // not started
    }
  }

  private restart (): void {
    try {
      this.rec?.start()
    } catch {
      // already started
    }
  }

  private onResult (ev: { resultIndex: number, results: ArrayLike<ArrayLike<{ transcript: string }> & { isFinal: boolean }> }): void {
    for (let i = ev.resultIndex; i < ev.results.length; i++) {
      const result = ev.results[i]
      if (result === undefined || !result.isFinal) continue
      const text = result[0]?.transcript ?? ''
      if (this.mode === 'ptt') {
        this.pttText.push(text)
        continue
      }
      if (this.mode !== 'wake') continue
      const read = readTranscript(text, this.expect)
      this.expect = read.expect
      for (const event of read.events) this.init.onEvent(event)
    }
  }
}
