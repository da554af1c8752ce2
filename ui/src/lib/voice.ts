/**
 * The voice state machine: a pure `voiceStep(model, event, now)` that returns the next model and
 * the effects to run (open the microphone, tell the recogniser what to listen for, send a prompt,
 * say a sentence, silence the speech). The store (stores/voice.svelte.ts) runs the effects and
 * feeds back what happens. Tested in test/unit/ui-voice.test.ts.
 *
 * Hands-free:
 *   off ─toggle─▶ starting ─ready─▶ asleep ─"computer"─▶ awake ─"chat"─▶ command ─prompt─▶ sending
 *   sending ─first sentence─▶ speaking ─last sentence said─▶ asleep (listening again)
 * Push to talk (hold the button, or Space/Enter on it):
 *   off ─down─▶ starting ─ready─▶ ptt ─up─▶ transcribing ─result─▶ sending ─▶ speaking ─▶ off
 * Half-duplex: while an answer is awaited or spoken the recogniser listens only for "stop" (the
 * node's) or not at all (the browser's), and any wake word, mode or prompt it reports is dropped:
 * with echo cancellation off (the offline recogniser needs it off) the UI would otherwise hear its
 * own voice. "stop" heard while a sentence that itself says "stop" is playing is the UI's own voice.
 * Awake, command and transcribing fall back to listening after a while with nothing heard.
 * The browser's recogniser (Chromium's sends audio to Google: offline it fails with `network`)
 * falls back to the node's; a node without recognition leaves the voice unavailable, and typing
 * works as ever.
 */
import type { CatalogModel } from './models.js'
import { VOICE_MODES, WAKE_WORD, type VoiceMode } from './voice-text.js'

export { VOICE_MODES, type VoiceMode }

/** Who recognises: this node (`/realm/speech`, offline) or the browser's own recogniser */
export type Engine = 'node' | 'browser'
/** What the recogniser is to listen for */
export type ListenAs = 'wake' | 'ptt' | 'stop' | 'idle'

export type VoiceState =
  | 'off' | 'starting' | 'asleep' | 'awake' | 'command' | 'ptt' | 'transcribing' | 'sending' | 'speaking' | 'unavailable'

/** Awake or waiting for the prompt with nothing heard for this long → asleep (the node has its own, in audio time) */
export const AWAKE_TIMEOUT_MS = 12_000
/** A push to talk not transcribed after this long is given up (the node decodes near real time; a busy one needs more) */
export const TRANSCRIBE_TIMEOUT_MS = 60_000
/** A prompt with no answer to speak after this long is given up (the text may still come, on screen) */
export const ANSWER_TIMEOUT_MS = 180_000
/** Microphone and recogniser not up after this long: give up */
export const START_TIMEOUT_MS = 20_000

/** Browser recogniser errors after which the node's recogniser takes over */
export const BROWSER_FALLBACK_CODES: readonly string[] = ['network', 'service-not-allowed', 'language-not-supported', 'bad-grammar', 'audio-capture', 'no-start', 'unavailable']
/** Errors that leave the voice unavailable (nothing to fall back to) */
export const FATAL_CODES: readonly string[] = ['STT_UNAVAILABLE', 'MIC_DENIED', 'NO_MIC', 'not-allowed', 'START_TIMEOUT', 'USER_BANNED', 'IN_USE', 'NODE_UNREACHABLE']

export interface VoiceProblem {
  code: string
  message: string
  /** what to do about it (e.g. what the node's sysop should install) */
  fix?: string
}

export interface VoiceModel {
  state: VoiceState
  /** hands-free (wake word) is on */
  handsFree: boolean
  /** the push-to-talk button is held */
  pttHeld: boolean
  /** the microphone and recogniser are open (or opening) */
  capturing: boolean
  /** the recogniser in use, or to use next */
  engine: Engine
  /** why the browser's recogniser is not used (its error code) */
  browserFailed?: string
  /** the mode heard (or the prompt's) */
  mode?: VoiceMode
  /** the last prompt heard */
  heard?: string
  /** the last problem, shown until the next one or until things work again */
  problem?: VoiceProblem
  /** a passing remark (fallback to the node, nothing understood) */
  notice?: string
  /** sentences of the answer waiting to be said */
  queue: string[]
  /** the sentence being said */
  speaking?: string
  /** the sentence being said is audible (its audio started) */
  audible: boolean
  /** an answer is still coming: more sentences may follow */
  answering: boolean
  /** when the state was entered, ms */
  since: number
}

export type VoiceEvent =
  /** the hands-free toggle */
  | { type: 'hands-free', on: boolean }
  /** the push-to-talk button pressed / released */
  | { type: 'ptt', down: boolean }
  /** microphone and recogniser are up */
  | { type: 'ready', engine: Engine }
  /** the recogniser heard the wake word */
  | { type: 'wake' }
  /** … then a mode */
  | { type: 'partial', mode: VoiceMode }
  /** … then the prompt (`mode` when one was said; else the mode heard before, else `viewMode`, the view on screen) */
  | { type: 'result', prompt: string, mode?: VoiceMode, viewMode: VoiceMode }
  /** nothing usable was heard in time, or it was not understood */
  | { type: 'sleep', reason: 'timeout' | 'not-understood' }
  /** silence: "stop" heard (`voice`), the button or Escape (`user`) */
  | { type: 'stop', source: 'voice' | 'user' }
  /** something failed: the recogniser, the microphone, the socket */
  | { type: 'error', engine: Engine, code: string, message: string, fix?: string }
  /** sentences of the answer, as they complete */
  | { type: 'answer', sentences: string[] }
  /** the answer has ended (its last sentences came before) */
  | { type: 'answer-end' }
  /** the sentence being said became audible / ended / could not be said */
  | { type: 'tts-start' }
  | { type: 'tts-end' }
  | { type: 'tts-error', message: string }
  /** time passes (timeouts) */
  | { type: 'tick' }

export type VoiceEffect =
  /** open (with `engine`; again if open: a restart) or close the microphone and the recogniser */
  | { type: 'capture', on: boolean, engine?: Engine }
  /** what the recogniser listens for */
  | { type: 'listen', as: ListenAs }
  /** push to talk released: transcribe what was said */
  | { type: 'end-ptt' }
  /** show the mode's view */
  | { type: 'go', mode: VoiceMode }
  /** send the prompt in its mode's view (chat: send; imagine: generate; vision: ask about the image) */
  | { type: 'submit', mode: VoiceMode, prompt: string }
  /** say one sentence (`next`: the one after, to prepare) */
  | { type: 'say', text: string, next?: string }
  /** cut the speech under way and drop what was to follow */
  | { type: 'silence' }

export interface VoiceStep {
  model: VoiceModel
  effects: VoiceEffect[]
}

export function initialVoice (opts: { engine?: Engine, browserFailed?: string } = {}, now = 0): VoiceModel {
  const model: VoiceModel = {
    state: 'off',
    handsFree: false,
    pttHeld: false,
    capturing: false,
    engine: opts.engine ?? 'node',
    queue: [],
    audible: false,
    answering: false,
    since: now
  }
  if (opts.browserFailed !== undefined) model.browserFailed = opts.browserFailed
  return model
}

/** The recogniser's instructions for a state (half-duplex: only "stop" while an answer is on its way) */
export function listenFor (model: VoiceModel): ListenAs {
  if (!model.capturing) return 'idle'
  switch (model.state) {
    case 'asleep': case 'awake': case 'command': return 'wake'
    case 'ptt': return 'ptt'
    case 'sending': case 'speaking': return model.handsFree ? 'stop' : 'idle'
    default: return 'idle'
  }
}

/** Whether microphone audio goes to the recogniser at all in this state */
export function micOpen (model: VoiceModel): boolean {
  return listenFor(model) !== 'idle'
}

/** Whether what the recogniser reports may be taken as a wake word, a mode or a prompt now */
export function hearing (model: VoiceModel): boolean {
  return ['asleep', 'awake', 'command', 'ptt', 'transcribing'].includes(model.state)
}

function enter (model: VoiceModel, state: VoiceState, now: number, patch: Partial<VoiceModel> = {}): VoiceModel {
  return { ...model, ...patch, state, since: now }
}

/** Back to what the user asked for: listening (hands-free) or off */
function settle (model: VoiceModel, now: number, effects: VoiceEffect[], patch: Partial<VoiceModel> = {}): VoiceStep {
  const base: VoiceModel = { ...model, ...patch, queue: [], answering: false, audible: false }
  delete base.speaking
  if (base.handsFree) {
    if (!base.capturing) return { model: enter({ ...base, capturing: true }, 'starting', now), effects: [...effects, { type: 'capture', on: true, engine: base.engine }] }
    return { model: enter(base, 'asleep', now), effects: [...effects, { type: 'listen', as: 'wake' }] }
  }
  const off = enter({ ...base, capturing: false }, 'off', now)
  return { model: off, effects: base.capturing ? [...effects, { type: 'capture', on: false }] : effects }
}

/** Start the microphone and recogniser, or use them if they are up */
function startListening (model: VoiceModel, now: number, as: 'wake' | 'ptt'): VoiceStep {
  const m: VoiceModel = { ...model }
  delete m.problem
  if (!m.capturing || m.state === 'off' || m.state === 'unavailable') {
    return { model: enter({ ...m, capturing: true }, 'starting', now), effects: [{ type: 'capture', on: true, engine: m.engine }] }
  }
  if (m.state === 'starting') return { model: m, effects: [] }
  return { model: enter(m, as === 'ptt' ? 'ptt' : 'asleep', now), effects: [{ type: 'listen', as }] }
}

/** Say the next queued sentence, if any and nothing is being said */
function sayNext (model: VoiceModel, now: number): VoiceStep {
  if (model.speaking !== undefined || model.queue.length === 0) return { model, effects: [] }
  const [text, ...rest] = model.queue
  const next = rest[0]
  const m = model.state === 'speaking' ? { ...model, queue: rest, speaking: text, audible: false } : enter(model, 'speaking', now, { queue: rest, speaking: text, audible: false })
  return { model: m, effects: [next !== undefined ? { type: 'say', text: text!, next } : { type: 'say', text: text! }] }
}

/** After a sentence ended (or failed): the next, or wait for more, or done */
function afterSentence (model: VoiceModel, now: number): VoiceStep {
  const m: VoiceModel = { ...model, audible: false }
  delete m.speaking
  if (m.queue.length > 0) return sayNext(m, now)
  if (m.answering) return { model: m, effects: [] }
  return settle(m, now, [])
}

export function voiceStep (model: VoiceModel, event: VoiceEvent, now: number): VoiceStep {
  const none: VoiceStep = { model, effects: [] }
  switch (event.type) {
    case 'hands-free': {
      if (event.on === model.handsFree) return none
      if (event.on) {
        const m = { ...model, handsFree: true }
        if (['off', 'unavailable', 'starting'].includes(m.state)) return startListening(m, now, 'wake')
        // ptt, transcribing, sending, speaking: hands-free takes over once they are done (the microphone opens now)
        if (m.capturing) return { model: m, effects: [] }
        return { model: { ...m, capturing: true }, effects: [{ type: 'capture', on: true, engine: m.engine }] }
      }
      const m = { ...model, handsFree: false }
      switch (m.state) {
        case 'asleep': case 'awake': case 'command': return settle(m, now, [])
        case 'starting': return m.pttHeld ? { model: m, effects: [] } : settle(m, now, [])
        // the answer is still said; the microphone closes now
        case 'sending': case 'speaking': return { model: { ...m, capturing: false }, effects: m.capturing ? [{ type: 'capture', on: false }] : [] }
        default: return { model: m, effects: [] }
      }
    }

    case 'ptt': {
      if (event.down) {
        if (model.pttHeld) return none
        let m: VoiceModel = { ...model, pttHeld: true }
        const effects: VoiceEffect[] = []
        // pressing while an answer is said interrupts it
        if (m.state === 'sending' || m.state === 'speaking') {
          effects.push({ type: 'silence' })
          m = { ...m, queue: [], answering: false, audible: false }
          delete m.speaking
        }
        const step = startListening(m, now, 'ptt')
        return { model: step.model, effects: [...effects, ...step.effects] }
      }
      if (!model.pttHeld) return none
      const m = { ...model, pttHeld: false }
      if (m.state === 'ptt') return { model: enter(m, 'transcribing', now), effects: [{ type: 'end-ptt' }] }
      return { model: m, effects: [] }
    }

    case 'ready': {
      const m: VoiceModel = { ...model, engine: event.engine }
      delete m.problem
      if (m.state === 'starting') {
        if (m.pttHeld) return { model: enter(m, 'ptt', now), effects: [{ type: 'listen', as: 'ptt' }] }
        if (m.handsFree) return { model: enter(m, 'asleep', now), effects: [{ type: 'listen', as: 'wake' }] }
        // released before the microphone was up: nothing was recorded
        return settle({ ...m, notice: 'Hold the microphone button while you speak.' }, now, [])
      }
      // reconnected while listening
      if (m.state === 'asleep' || m.state === 'awake' || m.state === 'command') return { model: enter(m, 'asleep', now), effects: [{ type: 'listen', as: 'wake' }] }
      if (m.state === 'sending' || m.state === 'speaking') return { model: m, effects: [{ type: 'listen', as: listenFor(m) }] }
      return { model: m, effects: [] }
    }

    case 'wake': {
      if (model.state !== 'asleep' && model.state !== 'awake' && model.state !== 'command') return none
      const m = enter(model, 'awake', now)
      delete m.mode
      delete m.notice
      return { model: m, effects: [] }
    }

    case 'partial': {
      if (model.state !== 'asleep' && model.state !== 'awake' && model.state !== 'command') return none
      return { model: enter(model, 'command', now, { mode: event.mode }), effects: [{ type: 'go', mode: event.mode }] }
    }

    case 'result': {
      if (!hearing(model)) return none
      const prompt = event.prompt.trim()
      if (prompt === '') return voiceStep(model, { type: 'sleep', reason: 'not-understood' }, now)
      const mode = event.mode ?? (model.state === 'command' ? model.mode : undefined) ?? event.viewMode
      const m = enter(model, 'sending', now, { mode, heard: prompt, queue: [], answering: true, pttHeld: model.state === 'ptt' ? model.pttHeld : false })
      delete m.notice
      delete m.speaking
      // half-duplex from now until the answer has been said
      // push to talk alone: the microphone is not needed while the answer is said
      if (!m.handsFree && m.capturing) return { model: { ...m, capturing: false }, effects: [{ type: 'capture', on: false }, { type: 'submit', mode, prompt }] }
      return { model: m, effects: [{ type: 'listen', as: listenFor(m) }, { type: 'submit', mode, prompt }] }
    }

    case 'sleep': {
      if (model.state === 'awake' || model.state === 'command') {
        return { model: enter(model, 'asleep', now, event.reason === 'not-understood' ? { notice: `Not understood: say “${WAKE_WORD}” again.` } : {}), effects: [] }
      }
      if (model.state === 'transcribing' || model.state === 'ptt') return settle({ ...model, notice: 'Nothing was understood.' }, now, [])
      return none
    }

    case 'stop': {
      // the UI's own voice saying "stop" is not the user
      if (event.source === 'voice' && model.speaking !== undefined && /\bstop\b/i.test(model.speaking)) return none
      switch (model.state) {
        case 'sending': case 'speaking': return settle(model, now, [{ type: 'silence' }])
        case 'awake': case 'command': return { model: enter(model, 'asleep', now), effects: [] }
        case 'ptt': case 'transcribing': return settle({ ...model, pttHeld: false }, now, [{ type: 'listen', as: 'idle' }])
        default: return none
      }
    }

    case 'error': {
      const problem: VoiceProblem = { code: event.code, message: event.message, ...(event.fix !== undefined ? { fix: event.fix } : {}) }
      // the browser's recogniser cannot work here: the node's takes over
      if (event.engine === 'browser' && BROWSER_FALLBACK_CODES.includes(event.code)) {
        const m: VoiceModel = {
          ...model,
          engine: 'node',
          browserFailed: event.code,
          notice: `The browser's speech recognition failed (${event.code}); this node recognises speech instead.`
        }
        if (!m.capturing) return { model: m, effects: [] }
        return { model: enter(m, 'starting', now), effects: [{ type: 'capture', on: true, engine: 'node' }] }
      }
      if (FATAL_CODES.includes(event.code)) {
        const m = enter({ ...model, problem, handsFree: false, pttHeld: false, capturing: false, queue: [], answering: false, audible: false }, 'unavailable', now)
        delete m.speaking
        delete m.notice
        const effects: VoiceEffect[] = model.capturing ? [{ type: 'capture', on: false }] : []
        if (model.state === 'speaking' || model.state === 'sending') effects.unshift({ type: 'silence' })
        return { model: m, effects }
      }
      // the connection to the recogniser was lost: open it again where it is still wanted
      if (event.code === 'DISCONNECTED') {
        if (!model.capturing) return none
        const wanted = model.handsFree || model.state === 'ptt' || model.state === 'transcribing' || model.pttHeld
        if (model.state === 'sending' || model.state === 'speaking') {
          return { model: { ...model, problem }, effects: [{ type: 'capture', on: true, engine: model.engine }] }
        }
        if (!wanted) return settle({ ...model, problem }, now, [])
        return { model: enter({ ...model, problem, pttHeld: false }, 'starting', now), effects: [{ type: 'capture', on: true, engine: model.engine }] }
      }
      // anything else passes: shown, and listening goes on
      return { model: { ...model, problem }, effects: [] }
    }

    case 'answer': {
      if (!model.answering || (model.state !== 'sending' && model.state !== 'speaking')) return none
      const sentences = event.sentences.map(s => s.trim()).filter(s => s !== '')
      if (sentences.length === 0) return none
      return sayNext({ ...model, queue: [...model.queue, ...sentences] }, now)
    }

    case 'answer-end': {
      if (!model.answering) return none
      const m = { ...model, answering: false }
      if (m.speaking === undefined && m.queue.length === 0) return settle(m, now, [])
      return { model: m, effects: [] }
    }

    case 'tts-start':
      if (model.state !== 'speaking' || model.speaking === undefined) return none
      return { model: { ...model, audible: true }, effects: [] }

    case 'tts-end':
      if (model.state !== 'speaking') return none
      return afterSentence(model, now)

    case 'tts-error':
      if (model.state !== 'speaking') return none
      return afterSentence({ ...model, problem: { code: 'TTS_FAILED', message: event.message } }, now)

    case 'tick': {
      const age = now - model.since
      switch (model.state) {
        case 'awake': case 'command':
          return age >= AWAKE_TIMEOUT_MS ? { model: enter(model, 'asleep', now), effects: [] } : none
        case 'transcribing':
          return age >= TRANSCRIBE_TIMEOUT_MS ? settle({ ...model, problem: { code: 'TRANSCRIBE_TIMEOUT', message: 'The transcription took too long.' } }, now, [{ type: 'listen', as: 'idle' }]) : none
        case 'sending':
          return age >= ANSWER_TIMEOUT_MS ? settle({ ...model, problem: { code: 'ANSWER_TIMEOUT', message: 'No answer came to be spoken.' } }, now, [{ type: 'silence' }]) : none
        case 'starting':
          return age >= START_TIMEOUT_MS ? voiceStep(model, { type: 'error', engine: model.engine, code: 'START_TIMEOUT', message: 'The microphone or the recogniser did not start.' }, now) : none
        default:
          return none
      }
    }
  }
}

/** What the indicator shows: an icon name, a short label, and a longer line */
export interface VoiceView {
  icon: 'off' | 'starting' | 'listening' | 'awake' | 'recording' | 'busy' | 'speaking' | 'unavailable'
  label: string
  detail: string
}

const MODE_LABELS: Record<VoiceMode, string> = { chat: 'Chat', vision: 'Vision', imagine: 'Imagine' }

export function describeVoice (model: VoiceModel): VoiceView {
  const via = model.engine === 'node' ? 'this node' : 'the browser'
  switch (model.state) {
    case 'off': return { icon: 'off', label: 'Voice off', detail: model.notice ?? 'Hold the microphone to talk, or turn on hands-free.' }
    case 'starting': return { icon: 'starting', label: 'Starting…', detail: `Opening the microphone (speech recognised by ${via})…` }
    case 'asleep': return { icon: 'listening', label: 'Listening', detail: model.notice ?? `Say “${WAKE_WORD}”, then chat, imagine or vision, then your prompt (recognised by ${via}).` }
    case 'awake': return { icon: 'awake', label: 'Awake', detail: `Heard “${WAKE_WORD}”: say chat, imagine or vision.` }
    case 'command': return { icon: 'awake', label: MODE_LABELS[model.mode ?? 'chat'], detail: `${MODE_LABELS[model.mode ?? 'chat']}: say your prompt.` }
    case 'ptt': return { icon: 'recording', label: 'Recording', detail: 'Speak now; release to send.' }
    case 'transcribing': return { icon: 'busy', label: 'Transcribing…', detail: `Recognising what you said (${via})…` }
    case 'sending': return { icon: 'busy', label: 'Waiting…', detail: `${MODE_LABELS[model.mode ?? 'chat']}: “${model.heard ?? ''}” — waiting for the answer.` }
    case 'speaking': return { icon: 'speaking', label: 'Speaking', detail: model.handsFree ? 'Say “stop” or press Escape to silence.' : 'Press Escape to silence.' }
    case 'unavailable': return { icon: 'unavailable', label: 'Voice unavailable', detail: model.problem !== undefined ? `${model.problem.message}${model.problem.fix !== undefined ? ` — ${model.problem.fix}` : ''}. Typing works as ever.` : 'Voice is unavailable here; typing works as ever.' }
  }
}

/**
 * The mesh's voice for speaking answers: espeak-ng's English where some node has it, else any
 * `speak` model, else none (the browser's own voices, where it has them).
 */
export function pickSpeakModel (catalog: CatalogModel[]): string | undefined {
  const speak = catalog.filter(m => m.kinds.includes('speak'))
  return (speak.find(m => m.name === 'espeak-ng:en') ?? speak.find(m => m.name.startsWith('espeak-ng:en')) ?? speak[0])?.name
}
