/**
 * A voice session over a stream of microphone audio (the gateway feeds it what the UI sends over
 * its WebSocket): listen for the wake word, then recognise a command and its prompt.
 *
 *   asleep ──"computer"──▶ awake ──"chat"──▶ prompt ──"what is the realm"──▶ result, asleep
 *   asleep ──"computer chat what is the realm" (one breath)──────────────────▶ result, asleep
 *
 * Audio is cut into utterances by a small energy VAD here (adaptive noise floor, end after
 * `endSilenceMs` of quiet); each utterance is decoded by one short pocketsphinx run, one at a
 * time, in order. The wake word is spotted as soon as the utterance holding it ends; its end
 * time tells where the command starts when everything is said in one breath. The command is
 * decoded with a grammar of the commands (and of the expected prompts, when given); without
 * prompt phrases the prompt is free dictation of the words after the command.
 */
import { logger } from '@libp2p/logger'
import { errorMessage } from '../../protocol/errors.js'
import {
  AWAKE_TIMEOUT_MS, DEFAULT_COMMANDS, END_SILENCE_MS, FOLLOW_ON_MIN_SPEECH_MS, KWS_THRESHOLD, MAX_PENDING_UTTERANCES, MAX_UTTERANCE_MS,
  MIN_SPEECH_MS, PRE_ROLL_MS, STT_BYTES_PER_SECOND, STT_SAMPLE_RATE, STT_TIMEOUT_BASE_MS, STT_TIMEOUT_PER_AUDIO_SECOND_MS,
  VAD_FRAME_MS, VAD_MARGIN_DB, VAD_MIN_DBFS, WAKE_WORD
} from './constants.js'
import { modelPaths, resolveEngines } from './engines.js'
import type { SpeechEngines } from './engines.js'
import { SpeechEngineError, SpeechInputError } from './errors.js'
import { jsgfGrammar, loadDictionary, phraseWords, preparePhrases } from './grammar.js'
import { recognize } from './recognizer.js'
import type { Recognition, RecognizeMode } from './recognizer.js'

const log = logger('realm:speech:session')

export interface SpeechSessionInit {
  /** the word (or short phrase) that wakes the session; `false`: always awake. Default 'computer' */
  wakeWord?: string | false
  /** what may follow the wake word; `[]`: the next utterance is the prompt. Default ['chat', 'vision', 'imagine', 'speech'] */
  commands?: readonly string[]
  /** prompts expected after a command (decoded with a grammar, recognised far better); default none: free dictation */
  phrases?: readonly string[]
  /** keyword-spotting threshold of the wake word. Default 1e-40 (KWS_THRESHOLD, see constants.ts) */
  kwsThreshold?: number
  /** quiet that ends an utterance. Default 700 ms */
  endSilenceMs?: number
  /** an utterance is cut at this length. Default 15000 ms */
  maxUtteranceMs?: number
  /** awake (or waiting for a prompt) with nothing said for this long, in stream time → asleep. Default 8000 ms */
  awakeTimeoutMs?: number
  /** engine binaries and model folder. Default: resolveEngines() */
  engines?: Partial<SpeechEngines>
}

export type SpeechSessionState = 'asleep' | 'awake' | 'prompt' | 'closed'

/** Times are seconds of audio since the session started */
export type SpeechSessionEvent =
  /** the wake word was heard */
  | { type: 'wake', word: string, start: number, end: number }
  /** the command was heard; its prompt comes next */
  | { type: 'partial', command: string, text: string }
  /** a command and its prompt (`command` absent when the session has no commands) */
  | { type: 'result', command?: string, text: string, start: number, end: number }
  /** back to listening for the wake word: nothing said in time, or what was said matched no command */
  | { type: 'sleep', reason: 'timeout' | 'not-understood' }
  /** a decode failed or audio was dropped; the session goes on */
  | { type: 'error', error: Error }

interface Utterance {
  pcm: Buffer
  /** stream time of its first sample */
  start: number
}

const FRAME_BYTES = STT_SAMPLE_RATE * VAD_FRAME_MS / 1000 * 2
const PRE_ROLL_FRAMES = Math.round(PRE_ROLL_MS / VAD_FRAME_MS)
const MIN_SPEECH_FRAMES = Math.round(MIN_SPEECH_MS / VAD_FRAME_MS)
const FOLLOW_ON_FRAMES = Math.round(FOLLOW_ON_MIN_SPEECH_MS / VAD_FRAME_MS)
/** dB of a silent frame (log of 0) */
const FLOOR_DB = -100
/** How fast the noise floor follows quieter / louder non-speech frames, per frame */
const FLOOR_RISE = 0.05
/** …and how slowly it creeps up during speech, so a noise that never stops ends up as the floor */
const FLOOR_RISE_IN_SPEECH = 0.001

/**
 * Opens a session: checks the wake word and commands against the pronouncing dictionary
 * (SpeechInputError when a word is unknown), then takes audio with `push`.
 */
export async function createSpeechSession (init: SpeechSessionInit = {}): Promise<SpeechSession> {
  const engines = resolveEngines(init.engines)
  const dictionary = await loadDictionary(modelPaths(engines).dict).catch(() => {
    throw new SpeechInputError('the pocketsphinx dictionary cannot be read: apt-get install pocketsphinx-en-us')
  })
  let wakeWord: string | undefined
  if (init.wakeWord !== false) {
    const words = phraseWords(init.wakeWord ?? WAKE_WORD)
    const unknown = words.filter(w => !dictionary.has(w))
    if (words.length === 0 || unknown.length > 0) throw new SpeechInputError(`wake word "${String(init.wakeWord)}" has words the recognizer does not know: ${unknown.join(', ')}`)
    wakeWord = words.join(' ')
  }
  const commands = preparePhrases(init.commands ?? DEFAULT_COMMANDS, dictionary)
  if ((init.commands ?? DEFAULT_COMMANDS).length > 0 && commands.phrases.length === 0) throw new SpeechInputError('no command has a word the recognizer knows')
  const phrases = preparePhrases(init.phrases ?? [], dictionary)
  if ((init.phrases ?? []).length > 0 && phrases.phrases.length === 0) throw new SpeechInputError('no phrase has a word the recognizer knows')
  return new SpeechSession({ engines, wakeWord, commands: commands.phrases, phrases: phrases.phrases }, init)
}

export class SpeechSession {
  private readonly engines: SpeechEngines
  private readonly wakeWord?: string
  private readonly commands: string[]
  private readonly phrases: string[]
  private readonly kwsThreshold: number
  private readonly endSilenceFrames: number
  private readonly maxUtteranceFrames: number
  private readonly awakeTimeoutMs: number
  private readonly listeners = new Set<(event: SpeechSessionEvent) => void>()
  private readonly lifetime = new AbortController()

  private current: SpeechSessionState
  /** bytes of PCM taken so far (stream time) */
  private position = 0
  /** bytes not yet making a whole frame */
  private carry: Buffer = Buffer.alloc(0)
  /** a WAV header is still to be read from the first bytes */
  private headerPending = true
  private floorDb?: number
  private preRoll: Buffer[] = []
  private speechRun = 0
  private silenceRun = 0
  private utterance?: { frames: Buffer[], start: number }
  /** stream time (seconds) of the end of what woke the session or named the command */
  private awakeSince = 0
  private command?: string
  /** decodes run one after another */
  private chain: Promise<void> = Promise.resolve()
  private pending = 0

  /** use createSpeechSession, which checks the words first */
  constructor (parts: { engines: SpeechEngines, wakeWord: string | undefined, commands: string[], phrases: string[] }, init: SpeechSessionInit = {}) {
    this.engines = parts.engines
    if (parts.wakeWord !== undefined) this.wakeWord = parts.wakeWord
    this.commands = parts.commands
    this.phrases = parts.phrases
    this.kwsThreshold = init.kwsThreshold ?? KWS_THRESHOLD
    this.endSilenceFrames = Math.max(1, Math.round((init.endSilenceMs ?? END_SILENCE_MS) / VAD_FRAME_MS))
    this.maxUtteranceFrames = Math.max(1, Math.round((init.maxUtteranceMs ?? MAX_UTTERANCE_MS) / VAD_FRAME_MS))
    this.awakeTimeoutMs = init.awakeTimeoutMs ?? AWAKE_TIMEOUT_MS
    this.current = this.wakeWord === undefined ? 'awake' : 'asleep'
  }

  get state (): SpeechSessionState {
    return this.current
  }

  /** Listens to the session's events; returns a function that stops listening */
  on (listener: (event: SpeechSessionEvent) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /**
   * Takes the next chunk of audio: 16-bit little-endian mono PCM at 16 kHz (in the browser,
   * `new AudioContext({ sampleRate: 16000 })` resamples the microphone), in chunks of any size.
   * The stream may start with a WAV header in that format. Throws SpeechInputError for a WAV
   * header in another format, and once the session is closed.
   */
  push (chunk: Uint8Array): void {
    if (this.current === 'closed') throw new SpeechInputError('the speech session is closed')
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.headerPending) {
      bytes = Buffer.concat([this.carry, bytes])
      this.carry = Buffer.alloc(0)
      if (bytes.length < 4 && bytes.length > 0 && 'RIFF'.startsWith(bytes.toString('latin1'))) {
        this.carry = bytes
        return
      }
      if (bytes.toString('latin1', 0, 4) === 'RIFF') {
        const data = wavDataOffset(bytes)
        if (data === undefined) {
          this.carry = bytes
          return
        }
        bytes = bytes.subarray(data)
      }
      this.headerPending = false
    }
    let buf = this.carry.length > 0 ? Buffer.concat([this.carry, bytes]) : bytes
    while (buf.length >= FRAME_BYTES) {
      this.frame(Buffer.from(buf.subarray(0, FRAME_BYTES)))
      buf = buf.subarray(FRAME_BYTES)
    }
    this.carry = Buffer.from(buf)
  }

  /** The stream has ended: the utterance under way is decoded; resolves when every decode is done */
  async end (): Promise<void> {
    if (this.current === 'closed') return
    if (this.utterance !== undefined) this.finishUtterance()
    await this.chain
  }

  /** Stops at once: decodes under way are killed, buffered audio dropped, no more events */
  close (): void {
    if (this.current === 'closed') return
    this.current = 'closed'
    this.lifetime.abort()
    this.utterance = undefined
    this.preRoll = []
    this.listeners.clear()
  }

  /** read through a method: TypeScript narrows a field across awaits as if nothing could change it */
  private isClosed (): boolean {
    return this.current === 'closed'
  }

  private frame (frame: Buffer): void {
    const db = frameDb(frame)
    this.floorDb ??= db
    const speech = db > Math.max(this.floorDb + VAD_MARGIN_DB, VAD_MIN_DBFS)
    if (db < this.floorDb) this.floorDb = db
    else this.floorDb += (db - this.floorDb) * (speech ? FLOOR_RISE_IN_SPEECH : FLOOR_RISE)
    const frameStart = this.position
    this.position += frame.length

    if (this.utterance === undefined) {
      this.preRoll.push(frame)
      if (this.preRoll.length > PRE_ROLL_FRAMES) this.preRoll.shift()
      this.speechRun = speech ? this.speechRun + 1 : 0
      if (this.speechRun >= MIN_SPEECH_FRAMES) {
        const frames = this.preRoll
        this.preRoll = []
        this.utterance = { frames, start: frameStart + frame.length - frames.length * FRAME_BYTES }
        this.silenceRun = 0
      } else if (this.speechRun === 0) {
        this.checkAwakeTimeout()
      }
      return
    }
    this.utterance.frames.push(frame)
    this.silenceRun = speech ? 0 : this.silenceRun + 1
    if (this.silenceRun >= this.endSilenceFrames || this.utterance.frames.length >= this.maxUtteranceFrames) this.finishUtterance()
  }

  /** Awake with nothing said (no utterance under way or waiting to be decoded) for awakeTimeoutMs of stream → asleep */
  private checkAwakeTimeout (): void {
    if (this.current !== 'awake' && this.current !== 'prompt') return
    if (this.wakeWord === undefined || this.pending > 0 || this.utterance !== undefined) return
    if ((this.position / STT_BYTES_PER_SECOND - this.awakeSince) * 1000 < this.awakeTimeoutMs) return
    this.sleep('timeout')
  }

  private finishUtterance (): void {
    const utterance = this.utterance
    this.utterance = undefined
    this.speechRun = 0
    this.silenceRun = 0
    if (utterance === undefined) return
    if (this.pending >= MAX_PENDING_UTTERANCES) {
      this.emit({ type: 'error', error: new SpeechEngineError('the recognizer is behind: an utterance was dropped') })
      return
    }
    const item: Utterance = { pcm: Buffer.concat(utterance.frames), start: utterance.start / STT_BYTES_PER_SECOND }
    this.pending++
    this.chain = this.chain
      .then(async () => { await this.decode(item) })
      .catch(err => {
        if (this.current !== 'closed') this.emit({ type: 'error', error: err instanceof Error ? err : new Error(errorMessage(err)) })
      })
      .finally(() => {
        this.pending--
        // audio pushed faster than it is decoded may already be past the timeout
        this.checkAwakeTimeout()
      })
  }

  private async decode (utterance: Utterance): Promise<void> {
    if (this.current === 'closed') return
    if (this.current === 'asleep') {
      const wake = await this.run(utterance.pcm, { type: 'keyword', phrase: this.wakeWord ?? '', threshold: this.kwsThreshold }, true)
      const spotted = wake.words.filter(w => w.word === (this.wakeWord ?? '').split(' ').at(-1))
      if (wake.text === '' || this.isClosed()) return
      const first = wake.words.find(w => w.word === (this.wakeWord ?? '').split(' ')[0])
      const last = spotted.at(-1)
      const start = utterance.start + (first?.start ?? 0)
      const end = utterance.start + (last?.end ?? utterance.pcm.length / STT_BYTES_PER_SECOND)
      this.emit({ type: 'wake', word: this.wakeWord ?? '', start: ms(start), end: ms(end) })
      this.becomeAwake('awake', utterance)
      // said in one breath: the command follows the wake word in the same utterance
      const cut = Math.round((end - utterance.start) * STT_SAMPLE_RATE) * 2
      const rest = utterance.pcm.subarray(Math.min(cut, utterance.pcm.length))
      if (speechFrames(rest, this.floorDb ?? FLOOR_DB) >= FOLLOW_ON_FRAMES) await this.decodeCommand({ pcm: rest, start: end })
      return
    }
    if (this.current === 'awake') {
      await this.decodeCommand(utterance)
      return
    }
    if (this.current === 'prompt') {
      const text = await this.decodePrompt(utterance.pcm)
      if (this.isClosed()) return
      if (text === '') this.sleep('not-understood')
      else this.finish(this.command, text, utterance)
    }
  }

  private async decodeCommand (utterance: Utterance): Promise<void> {
    if (this.commands.length === 0) {
      const text = await this.decodePrompt(utterance.pcm)
      if (this.isClosed()) return
      if (text === '') this.sleep('not-understood')
      else this.finish(undefined, text, utterance)
      return
    }
    let command: string | undefined
    let text = ''
    if (this.phrases.length > 0) {
      const heard = await this.run(utterance.pcm, { type: 'grammar', grammar: jsgfGrammar({ commands: this.commands, phrases: this.phrases }) }, false)
      command = this.commands.find(c => heard.text === c || heard.text.startsWith(c + ' '))
      text = command !== undefined ? heard.text.slice(command.length).trim() : heard.text
      if (command === undefined && text !== '') {
        // a prompt without a command: the client applies its default mode
        this.finish(undefined, text, utterance)
        return
      }
    } else {
      // the command by grammar (what follows is absorbed as silence), the prompt by dictation of the words after it
      const [heard, dictated] = await Promise.all([
        this.run(utterance.pcm, { type: 'grammar', grammar: jsgfGrammar({ commands: this.commands }) }, true),
        this.run(utterance.pcm, { type: 'dictation' }, true)
      ])
      command = this.commands.find(c => heard.text === c)
      const commandEnd = heard.words.at(-1)?.end ?? 0
      text = dictated.words.filter(w => w.start >= commandEnd).map(w => w.word).join(' ')
    }
    if (this.isClosed()) return
    if (command === undefined) {
      this.sleep('not-understood')
      return
    }
    if (text === '') {
      this.command = command
      this.emit({ type: 'partial', command, text: '' })
      this.becomeAwake('prompt', utterance)
      return
    }
    this.finish(command, text, utterance)
  }

  private async decodePrompt (pcm: Buffer): Promise<string> {
    const mode: RecognizeMode = this.phrases.length > 0
      ? { type: 'grammar', grammar: jsgfGrammar({ phrases: this.phrases }) }
      : { type: 'dictation' }
    return (await this.run(pcm, mode, false)).text
  }

  private finish (command: string | undefined, text: string, utterance: Utterance): void {
    const end = utterance.start + utterance.pcm.length / STT_BYTES_PER_SECOND
    this.emit({ type: 'result', ...(command !== undefined ? { command } : {}), text, start: ms(utterance.start), end: ms(end) })
    this.command = undefined
    if (this.wakeWord === undefined) this.becomeAwake('awake', utterance)
    else this.current = 'asleep'
  }

  /** `since`: the utterance that made the change; the awake timeout counts from its end */
  private becomeAwake (state: 'awake' | 'prompt', since?: Utterance): void {
    this.current = state
    this.awakeSince = since !== undefined ? since.start + since.pcm.length / STT_BYTES_PER_SECOND : this.position / STT_BYTES_PER_SECOND
  }

  private sleep (reason: 'timeout' | 'not-understood'): void {
    this.command = undefined
    if (this.wakeWord === undefined) {
      this.becomeAwake('awake')
      if (reason === 'timeout') return
    } else {
      this.current = 'asleep'
    }
    this.emit({ type: 'sleep', reason })
  }

  private async run (pcm: Buffer, mode: RecognizeMode, times: boolean): Promise<Recognition> {
    const seconds = pcm.length / STT_BYTES_PER_SECOND
    return await recognize(pcm, mode, this.engines, {
      signal: this.lifetime.signal,
      timeoutMs: Math.round(STT_TIMEOUT_BASE_MS + STT_TIMEOUT_PER_AUDIO_SECOND_MS * seconds),
      times
    })
  }

  private emit (event: SpeechSessionEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event)
      } catch (err) {
        log.error('session listener failed: %s', errorMessage(err))
      }
    }
  }
}

/** Seconds rounded to the millisecond */
function ms (seconds: number): number {
  return Math.round(seconds * 1000) / 1000
}

/** Loudness of a frame of s16le samples, dBFS (FLOOR_DB for digital silence) */
function frameDb (frame: Buffer): number {
  let sum = 0
  const n = frame.length >> 1
  for (let i = 0; i < n; i++) {
    const s = frame.readInt16LE(i * 2)
    sum += s * s
  }
  const rms = Math.sqrt(sum / Math.max(1, n)) / 32768
  return rms > 0 ? Math.max(FLOOR_DB, 20 * Math.log10(rms)) : FLOOR_DB
}

/** Frames of a clip louder than the noise floor allows for quiet */
function speechFrames (pcm: Buffer, floorDb: number): number {
  let count = 0
  for (let off = 0; off + FRAME_BYTES <= pcm.length; off += FRAME_BYTES) {
    if (frameDb(pcm.subarray(off, off + FRAME_BYTES)) > Math.max(floorDb + VAD_MARGIN_DB, VAD_MIN_DBFS)) count++
  }
  return count
}

/**
 * Where the samples of a streamed WAV start, once its header is complete (undefined: need more
 * bytes). Throws SpeechInputError unless it is 16 kHz mono 16-bit PCM.
 */
function wavDataOffset (buf: Buffer): number | undefined {
  if (buf.length >= 12 && buf.toString('latin1', 8, 12) !== 'WAVE') throw new SpeechInputError('not a WAV stream')
  let offset = 12
  let fmtOk = false
  while (offset + 8 <= buf.length) {
    const id = buf.toString('latin1', offset, offset + 4)
    const size = buf.readUInt32LE(offset + 4)
    if (id === 'fmt ') {
      if (offset + 8 + 16 > buf.length) return undefined
      const format = buf.readUInt16LE(offset + 8)
      const channels = buf.readUInt16LE(offset + 10)
      const rate = buf.readUInt32LE(offset + 12)
      const bits = buf.readUInt16LE(offset + 22)
      if (!((format === 1 || format === 0xfffe) && channels === 1 && rate === STT_SAMPLE_RATE && bits === 16)) {
        throw new SpeechInputError(`a speech session takes 16 kHz mono 16-bit PCM, not ${rate} Hz ${channels} channel(s) ${bits}-bit (format ${format})`)
      }
      fmtOk = true
    } else if (id === 'data') {
      if (!fmtOk) throw new SpeechInputError('WAV data before its fmt chunk')
      return offset + 8
    }
    offset += 8 + size + (size % 2)
    // a header larger than this is not a streamed WAV
    if (offset > 64 * 1024) throw new SpeechInputError('WAV header too large')
  }
  return undefined
}
