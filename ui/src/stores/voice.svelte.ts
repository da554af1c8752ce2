/**
 * The voice: push to talk, hands-free with the wake word, answers read out. A thin store around
 * the pure state machine (lib/voice.ts): it keeps the model in a rune, and runs the machine's
 * effects — the microphone and a recogniser (this node's over `/realm/speech`, or the browser's
 * own, falling back to the node's), the prompt sent to its view, the sentences said.
 */
import { AnswerReader, SUGGESTED_PROMPTS, voicePhrases } from '../lib/voice-text.js'
import {
  describeVoice, initialVoice, pickSpeakModel, voiceStep,
  type Engine, type ListenAs, type VoiceEffect, type VoiceEvent, type VoiceModel, type VoiceMode
} from '../lib/voice.js'
import { SpeechLink, SpeechLinkError, SPEECH_CLOSE, type SpeechMessage } from '../lib/speech-link.js'
import { BrowserRecognizer, browserRecognitionAvailable } from '../lib/browser-recognizer.js'
import { MicError, openMic, type Mic } from '../lib/mic.js'
import { SpeechOutput } from '../lib/speech-output.js'
import { snapshotFromCamera } from '../lib/camera.js'
import { modelsFor, pickModel } from '../lib/models.js'
import { load, save } from '../lib/storage.js'
import type { ChatImage } from '../lib/chat.js'
import type { TaskEvent } from '../lib/types.js'
import { chat } from './chat.svelte.js'
import { imagine } from './imagine.svelte.js'
import { realm } from './realm.svelte.js'
import { router } from './router.svelte.js'

/** Remembered: the browser's recogniser failed here (its error code), so the node's is used at once… */
const BROWSER_FAILED_KEY = 'rah.voice.browserFailed'
/** …for a day (the network may be back) */
const BROWSER_FAILED_FOR_MS = 24 * 3600 * 1000
/** Timeouts are checked this often */
const TICK_MS = 1000
/** Wait before opening the node's socket again after it dropped */
const RECONNECT_DELAY_MS = 1000

class VoiceStore {
  model = $state.raw<VoiceModel>(initialVoice(startingEngine()))
  view = $derived(describeVoice(this.model))
  /** this browser has its own recogniser */
  readonly browserCan = browserRecognitionAvailable()

  private link?: SpeechLink
  private mic?: Mic
  private browser?: BrowserRecognizer
  /** bumped whenever capture is opened or closed: late callbacks of an older one are dropped */
  private captureGeneration = 0
  /** bumped for each prompt sent: events of an older answer are dropped */
  private answerGeneration = 0
  private ticker?: ReturnType<typeof setInterval>
  private audioEl?: HTMLAudioElement
  private readonly output = new SpeechOutput({
    audio: () => this.audioEl,
    model: () => pickSpeakModel(realm.catalog),
    onStart: () => { this.dispatch({ type: 'tts-start' }) },
    onEnd: () => { this.dispatch({ type: 'tts-end' }) },
    onError: (message) => { this.dispatch({ type: 'tts-error', message }) }
  })

  /** The element the node's speech plays in (the voice controls render it) */
  attachAudio (el: HTMLAudioElement | undefined): void {
    this.audioEl = el
  }

  get speechVia (): 'node' | 'browser' | 'none' {
    return this.output.via
  }

  toggleHandsFree (): void {
    this.dispatch({ type: 'hands-free', on: !this.model.handsFree })
  }

  pttDown (): void {
    this.dispatch({ type: 'ptt', down: true })
  }

  pttUp (): void {
    this.dispatch({ type: 'ptt', down: false })
  }

  /** The button or Escape: silence the speech, stop listening for a prompt */
  stop (): void {
    this.dispatch({ type: 'stop', source: 'user' })
  }

  dispatch (event: VoiceEvent): void {
    const step = voiceStep(this.model, event, Date.now())
    this.model = step.model
    this.keepTicking()
    for (const effect of step.effects) this.run(effect)
  }

  private keepTicking (): void {
    const timed = ['starting', 'awake', 'command', 'transcribing', 'sending'].includes(this.model.state)
    if (timed && this.ticker === undefined) this.ticker = setInterval(() => { this.dispatch({ type: 'tick' }) }, TICK_MS)
    else if (!timed && this.ticker !== undefined) {
      clearInterval(this.ticker)
      this.ticker = undefined
    }
  }

  private run (effect: VoiceEffect): void {
    switch (effect.type) {
      case 'capture':
        if (effect.on) void this.openCapture(effect.engine ?? this.model.engine)
        else this.closeCapture()
        return
      case 'listen':
        this.listen(effect.as)
        return
      case 'end-ptt':
        if (this.link !== undefined) this.link.end()
        else this.browser?.endPtt()
        return
      case 'go':
        if (router.view !== effect.mode) router.go(effect.mode)
        return
      case 'submit':
        void this.submit(effect.mode, effect.prompt)
        return
      case 'say':
        this.output.say(effect.text, effect.next)
        return
      case 'silence':
        this.answerGeneration++
        this.output.silence()
    }
  }

  // ---- microphone and recogniser ----

  private async openCapture (engine: Engine): Promise<void> {
    this.closeCapture()
    const generation = ++this.captureGeneration
    const current = (): boolean => generation === this.captureGeneration
    if (engine === 'browser') {
      const rec = new BrowserRecognizer({
        onReady: () => { if (current()) this.dispatch({ type: 'ready', engine: 'browser' }) },
        onEvent: (event) => {
          if (!current()) return
          if (event.type === 'result') this.dispatch({ ...event, viewMode: this.viewMode() })
          else this.dispatch(event)
        },
        onError: (code, message) => {
          if (!current()) return
          if (BROWSER_FALLBACK_REMEMBERED.includes(code)) save(BROWSER_FAILED_KEY, JSON.stringify({ code, at: Date.now() }))
          this.dispatch({ type: 'error', engine: 'browser', code, message })
        }
      })
      this.browser = rec
      rec.start()
      return
    }
    const link = new SpeechLink({
      onMessage: (msg) => { if (current()) this.onNodeMessage(msg) },
      onClose: (code) => {
        if (!current()) return
        this.link = undefined
        this.mic?.close()
        this.mic = undefined
        if (code === SPEECH_CLOSE.banned) this.dispatch({ type: 'error', engine: 'node', code: 'USER_BANNED', message: 'this browser is banned' })
        else if (code === SPEECH_CLOSE.replaced) this.dispatch({ type: 'error', engine: 'node', code: 'IN_USE', message: 'the voice is in use in another tab of this browser' })
        else setTimeout(() => { if (current()) this.dispatch({ type: 'error', engine: 'node', code: 'DISCONNECTED', message: 'the connection to the node\'s recogniser was lost' }) }, RECONNECT_DELAY_MS)
      }
    })
    this.link = link
    try {
      await link.open()
      if (!current()) return
      this.mic = await openMic({ onChunk: (chunk) => { if (current()) link.sendAudio(chunk) } })
      if (!current()) {
        this.mic.close()
        return
      }
      this.dispatch({ type: 'ready', engine: 'node' })
    } catch (err) {
      if (!current()) return
      const code = err instanceof SpeechLinkError || err instanceof MicError ? err.code : 'DISCONNECTED'
      const fix = err instanceof SpeechLinkError ? err.fix : undefined
      this.closeCapture()
      this.dispatch({ type: 'error', engine: 'node', code: code === 'DISCONNECTED' ? 'NODE_UNREACHABLE' : code, message: err instanceof Error ? err.message : String(err), ...(fix !== undefined ? { fix } : {}) })
    }
  }

  private closeCapture (): void {
    this.captureGeneration++
    this.mic?.close()
    this.mic = undefined
    this.link?.close()
    this.link = undefined
    this.browser?.close()
    this.browser = undefined
  }

  private listen (as: ListenAs): void {
    if (this.link !== undefined) {
      if (as === 'idle') this.link.end()
      else this.link.start(as, as === 'stop' ? undefined : this.phrases())
    }
    this.browser?.listen(as)
  }

  private onNodeMessage (msg: SpeechMessage): void {
    switch (msg.type) {
      case 'wake': case 'stop':
        this.dispatch(msg.type === 'stop' ? { type: 'stop', source: 'voice' } : { type: 'wake' })
        return
      case 'partial':
        this.dispatch({ type: 'partial', mode: msg.mode })
        return
      case 'result':
        this.dispatch({ type: 'result', prompt: msg.prompt, viewMode: this.viewMode(), ...(msg.mode !== undefined ? { mode: msg.mode } : {}) })
        return
      case 'sleep':
        this.dispatch({ type: 'sleep', reason: msg.reason })
        return
      case 'error':
        this.dispatch({ type: 'error', engine: 'node', code: msg.code, message: msg.message, ...(msg.fix !== undefined ? { fix: msg.fix } : {}) })
    }
  }

  /** Prompts the node's recogniser should expect: the suggestions and this browser's recent prompts */
  private phrases (): string[] {
    const recent: string[] = []
    for (const conv of chat.conversations) for (const turn of conv.turns) if (turn.role === 'user') recent.push(turn.content)
    for (const item of imagine.gallery) recent.push(item.prompt)
    return voicePhrases(recent, SUGGESTED_PROMPTS)
  }

  /** The mode of the view on screen (a prompt said without a mode goes there) */
  private viewMode (): VoiceMode {
    const v = router.view
    return v === 'vision' || v === 'imagine' ? v : 'chat'
  }

  // ---- prompts and answers ----

  private async submit (mode: VoiceMode, prompt: string): Promise<void> {
    const generation = ++this.answerGeneration
    const current = (): boolean => generation === this.answerGeneration
    const answer = (sentences: string[]): void => { if (current() && sentences.length > 0) this.dispatch({ type: 'answer', sentences }) }
    const end = (): void => { if (current()) this.dispatch({ type: 'answer-end' }) }
    if (router.view !== mode) router.go(mode)
    try {
      if (mode === 'imagine') {
        await this.imagine(prompt, answer)
      } else {
        await this.ask(mode, prompt, answer)
      }
    } catch (err) {
      answer([`Sorry: ${err instanceof Error ? err.message : String(err)}`])
    }
    end()
  }

  private async ask (mode: 'chat' | 'vision', prompt: string, answer: (sentences: string[]) => void): Promise<void> {
    const model = pickModel(modelsFor(realm.catalog, mode), chat.chosenModel[mode])
    if (model === undefined) {
      answer([mode === 'vision' ? 'No vision model is available in the realm.' : 'No chat model is available in the realm.'])
      return
    }
    if (model !== chat.chosenModel[mode]) chat.setModel(mode, model)
    let images: ChatImage[] = chat.attachments[mode]
    if (mode === 'vision' && images.length === 0 && (chat.active(mode)?.turns.length ?? 0) === 0) {
      // nothing to look at yet: the camera's view
      try {
        images = [await snapshotFromCamera()]
      } catch (err) {
        answer([`Attach an image first: the camera gave none (${err instanceof Error ? err.message : String(err)}).`])
        return
      }
    }
    const reader = new AnswerReader()
    let ended = false
    await chat.send(mode, prompt, images, (event: TaskEvent) => {
      if (event.type === 'task.token') answer(reader.token(event.text))
      else if (event.type === 'task.restarted') reader.restart()
      else if (event.type === 'task.done') {
        ended = true
        answer(reader.done(event.output.text))
      } else if (event.type === 'task.error') {
        ended = true
        answer([...reader.done(), event.code === 'CANCELLED' ? 'Stopped.' : `Sorry, the answer failed: ${event.message}`])
      }
    })
    if (!ended) {
      const error = chat.active(mode)?.turns.at(-1)?.error
      answer([`Sorry, there was no answer${error !== undefined ? `: ${error.message}` : ''}.`])
    }
  }

  private async imagine (prompt: string, answer: (sentences: string[]) => void): Promise<void> {
    imagine.form.prompt = prompt
    const model = pickModel(modelsFor(realm.catalog, 'imagine'), imagine.model)
    if (model === undefined) {
      answer(['No image model is available in the realm.'])
      return
    }
    if (model !== imagine.model) imagine.setModel(model)
    await imagine.generate()
    answer([imagine.error !== undefined ? `The image failed: ${imagine.error}` : 'The image is ready.'])
  }
}

/** Browser recogniser failures worth remembering (they will happen again on this machine) */
const BROWSER_FALLBACK_REMEMBERED = ['network', 'service-not-allowed', 'language-not-supported', 'no-start', 'unavailable']

function startingEngine (): { engine: Engine, browserFailed?: string } {
  if (!browserRecognitionAvailable()) return { engine: 'node' }
  try {
    const failed = JSON.parse(load(BROWSER_FAILED_KEY) ?? 'null') as { code?: unknown, at?: unknown } | null
    if (typeof failed?.code === 'string' && typeof failed.at === 'number' && Date.now() - failed.at < BROWSER_FAILED_FOR_MS) return { engine: 'node', browserFailed: failed.code }
  } catch {
    // not ours: ignored
  }
  return { engine: 'browser' }
}

export const voice = new VoiceStore()
