/**
 * Saying sentences out loud: with the mesh's `speak` model (a task on the node, e.g. espeak-ng;
 * its WAV played from a blob: URL, which the CSP's `media-src 'self' data: blob:` allows), or
 * the browser's own voices (`speechSynthesis`) where the mesh has none. The next sentence is made
 * while the current one plays. One sentence at a time; `silence` cuts it and forgets the rest.
 */
import { streamTask, type FetchLike } from './api.js'
import type { Media } from './types.js'

export interface SpeechOutputInit {
  /** the element the node's audio plays in */
  audio: () => HTMLAudioElement | undefined
  /** the mesh's speak model, if any (lib/voice.ts pickSpeakModel) */
  model: () => string | undefined
  onStart: () => void
  onEnd: () => void
  onError: (message: string) => void
  fetch?: FetchLike
}

/** Sentences made ahead of time, at most */
const PREPARED_MAX = 3
/** A sentence whose audio has not ended this long after its length is given up (a stalled element must not hang the voice) */
const PLAY_SLACK_MS = 5_000
/** …and when its length is unknown */
const PLAY_UNKNOWN_LENGTH_MS = 60_000
/** The browser's voice did not start this long after being asked: it has none that works */
const BROWSER_VOICE_START_MS = 5_000

/** The audio of a finished speak task as bytes */
function mediaBytes (media: Media): Uint8Array {
  const bin = atob(media.data)
  const bytes = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i)
  return bytes
}

export class SpeechOutput {
  private controller = new AbortController()
  /** sentence → blob: URL of its audio */
  private prepared = new Map<string, Promise<string>>()
  /** bumped by `silence`: callbacks of what was cut are dropped */
  private generation = 0
  private url?: string

  constructor (private readonly init: SpeechOutputInit) {}

  /** Which voice speaks: the node's, the browser's, or none (the answer is only shown) */
  get via (): 'node' | 'browser' | 'none' {
    if (this.init.model() !== undefined) return 'node'
    // a browser may have the API and no voice at all (headless Chromium)
    return typeof speechSynthesis !== 'undefined' && speechSynthesis.getVoices().length > 0 ? 'browser' : 'none'
  }

  /** Say one sentence; `next` is made meanwhile */
  say (text: string, next?: string): void {
    const generation = this.generation
    const via = this.via
    if (via === 'browser') {
      this.sayInBrowser(text, generation)
      return
    }
    if (via === 'none') {
      // nothing can speak: the sentence is only on screen
      queueMicrotask(() => { if (generation === this.generation) this.init.onEnd() })
      return
    }
    const audio = this.prepare(text)
    if (next !== undefined) void this.prepare(next).catch(() => {})
    void audio.then(async (url) => {
      if (generation !== this.generation) return
      this.prepared.delete(text)
      await this.play(url, generation)
    }).catch((err: unknown) => {
      this.prepared.delete(text)
      if (generation === this.generation) this.init.onError(err instanceof Error ? err.message : String(err))
    })
  }

  /** Stop speaking now and forget what was prepared */
  silence (): void {
    this.generation++
    this.controller.abort()
    this.controller = new AbortController()
    for (const url of this.prepared.values()) void url.then(u => { URL.revokeObjectURL(u) }).catch(() => {})
    this.prepared.clear()
    const audio = this.init.audio()
    if (audio != null) {
      audio.pause()
      audio.removeAttribute('src')
      audio.load()
    }
    this.revoke()
    if (typeof speechSynthesis !== 'undefined') speechSynthesis.cancel()
  }

  private prepare (text: string): Promise<string> {
    let url = this.prepared.get(text)
    if (url === undefined) {
      if (this.prepared.size >= PREPARED_MAX) {
        const oldest = this.prepared.keys().next().value as string
        void this.prepared.get(oldest)?.then(u => { URL.revokeObjectURL(u) }).catch(() => {})
        this.prepared.delete(oldest)
      }
      url = this.synthesize(text)
      this.prepared.set(text, url)
    }
    return url
  }

  private async synthesize (text: string): Promise<string> {
    const model = this.init.model()
    if (model === undefined) throw new Error('no voice in the realm')
    let audio: Media | undefined
    let failure: string | undefined
    await streamTask({ kind: 'speak', model, input: { text, format: 'wav' } }, {
      signal: this.controller.signal,
      ...(this.init.fetch !== undefined ? { fetch: this.init.fetch } : {}),
      onEvent: (event) => {
        if (event.type === 'task.audio') audio ??= event.audio
        else if (event.type === 'task.done') audio = event.output.audio ?? audio
        else if (event.type === 'task.error') failure = `${event.message} (${event.code})`
      }
    })
    if (audio === undefined) throw new Error(failure ?? 'the voice answered without audio')
    return URL.createObjectURL(new Blob([mediaBytes(audio) as BlobPart], { type: audio.mime }))
  }

  private async play (url: string, generation: number): Promise<void> {
    const audio = this.init.audio()
    if (audio == null) {
      URL.revokeObjectURL(url)
      this.init.onError('there is nothing to play the audio in')
      return
    }
    this.revoke()
    this.url = url
    let watchdog: ReturnType<typeof setTimeout> | undefined
    const done = (failed?: string): void => {
      audio.onended = null
      audio.onerror = null
      if (watchdog !== undefined) clearTimeout(watchdog)
      if (generation !== this.generation) return
      this.revoke()
      if (failed !== undefined) this.init.onError(failed)
      else this.init.onEnd()
    }
    audio.onended = () => { done() }
    audio.onerror = () => { done('the audio could not be played') }
    audio.src = url
    try {
      await audio.play()
      if (generation !== this.generation) return
      const lengthMs = Number.isFinite(audio.duration) ? audio.duration * 1000 : PLAY_UNKNOWN_LENGTH_MS
      watchdog = setTimeout(() => { done('the audio did not end') }, lengthMs + PLAY_SLACK_MS)
      this.init.onStart()
    } catch (err) {
      done(`the audio could not be played: ${err instanceof Error ? err.message : String(err)}`)
    }
  }

  private revoke (): void {
    if (this.url !== undefined) URL.revokeObjectURL(this.url)
    this.url = undefined
  }

  private sayInBrowser (text: string, generation: number): void {
    const utterance = new SpeechSynthesisUtterance(text)
    let settled = false
    const settle = (fn: () => void): void => {
      clearTimeout(watchdog)
      if (settled || generation !== this.generation) return
      settled = true
      fn()
    }
    const watchdog = setTimeout(() => {
      speechSynthesis.cancel()
      settle(() => { this.init.onError('the browser\'s voice did not start') })
    }, BROWSER_VOICE_START_MS)
    utterance.onstart = () => {
      clearTimeout(watchdog)
      if (generation === this.generation) this.init.onStart()
    }
    utterance.onend = () => { settle(() => { this.init.onEnd() }) }
    utterance.onerror = (ev) => {
      // `interrupted` / `canceled`: our own silence
      if (ev.error === 'interrupted' || ev.error === 'canceled') return
      settle(() => { this.init.onError(`the browser's voice failed: ${ev.error}`) })
    }
    speechSynthesis.speak(utterance)
  }
}
