/**
 * Text → speech with espeak-ng. The text goes on stdin (`--stdin`), never in the argument list
 * or a shell, so quotes, `$(…)`, newlines and a leading `-` are spoken, not obeyed. espeak-ng
 * writes a streaming WAV (placeholder sizes); it is re-headed here. mp3 goes through ffmpeg.
 */
import {
  ENGINE_PACKAGES, MAX_SPEAK_CHARS, MAX_SPEAK_OUTPUT_BYTES, TTS_BASE_WPM, TTS_MAX_WPM, TTS_MIN_WPM
} from './constants.js'
import type { SpeechEngines } from './engines.js'
import { SpeechEngineError, SpeechEngineMissingError, SpeechInputError, SpeechTooLargeError } from './errors.js'
import { runProcess, stderrReason } from './process.js'
import { encodeWav, parseWav, pcmSeconds } from './wav.js'

/** espeak-ng voice names: a language (`en`, `en-gb-x-rp`, `cmn`) with an optional `+variant` */
const VOICE = /^[a-z]{2,3}(?:-[a-z0-9]{1,8}){0,4}(?:\+[a-z0-9_-]{1,20})?$/i

export function isVoiceName (voice: string): boolean {
  return VOICE.test(voice)
}

/** espeak-ng words per minute for a speed factor (1 = espeak-ng's 175 wpm), clamped to what it accepts */
export function wordsPerMinute (speed: number | undefined): number {
  const wpm = Math.round(TTS_BASE_WPM * (speed ?? 1))
  return Math.min(TTS_MAX_WPM, Math.max(TTS_MIN_WPM, wpm))
}

export interface SynthOptions {
  voice: string
  speed?: number
  format?: 'wav' | 'mp3'
  signal?: AbortSignal
  timeoutMs: number
}

export interface Speech {
  data: Buffer
  mime: 'audio/wav' | 'audio/mpeg'
  /** length of the audio */
  seconds: number
}

export async function synthesize (text: string, engines: SpeechEngines, opts: SynthOptions): Promise<Speech> {
  if (text.length > MAX_SPEAK_CHARS) throw new SpeechTooLargeError('text', MAX_SPEAK_CHARS, 'characters')
  if (text.trim() === '') throw new SpeechInputError('nothing to say: the text is empty')
  if (!isVoiceName(opts.voice)) throw new SpeechInputError(`"${opts.voice.slice(0, 64)}" is not an espeak-ng voice name`)
  const tooLarge = (): Error => new SpeechTooLargeError('the spoken audio', MAX_SPEAK_OUTPUT_BYTES, 'bytes (ask for mp3 or a shorter text)')
  const result = await runProcess(engines.espeak, ['-v', opts.voice, '-s', String(wordsPerMinute(opts.speed)), '-b', '1', '--stdout', '--stdin'], {
    engine: 'espeak-ng',
    pkg: ENGINE_PACKAGES.espeak,
    input: Buffer.from(text, 'utf8'),
    timeoutMs: opts.timeoutMs,
    maxOutputBytes: MAX_SPEAK_OUTPUT_BYTES + 4096,
    tooLarge,
    ...(opts.signal !== undefined ? { signal: opts.signal } : {})
  })
  if (result.code !== 0) {
    const reason = stderrReason(result.stderr)
    if (/voice does not exist|failed to read voice/i.test(reason)) throw new SpeechInputError(`espeak-ng has no voice "${opts.voice}"`, { voice: opts.voice })
    throw new SpeechEngineError(`espeak-ng failed: ${reason || `exit ${String(result.code)}`}`)
  }
  let wav
  try {
    wav = parseWav(result.stdout)
  } catch {
    throw new SpeechEngineError('espeak-ng did not write a WAV stream')
  }
  if (wav.data.length > MAX_SPEAK_OUTPUT_BYTES) throw tooLarge()
  const pcm = wav.data.subarray(0, wav.data.length - (wav.data.length % 2))
  const seconds = pcmSeconds(pcm.length, wav.sampleRate)
  if (opts.format !== 'mp3') return { data: encodeWav(pcm, wav.sampleRate, wav.channels, wav.bitsPerSample), mime: 'audio/wav', seconds }
  return { data: await toMp3(pcm, wav.sampleRate, engines, opts), mime: 'audio/mpeg', seconds }
}

async function toMp3 (pcm: Buffer, sampleRate: number, engines: SpeechEngines, opts: SynthOptions): Promise<Buffer> {
  try {
    const result = await runProcess(engines.ffmpeg, [
      '-hide_banner', '-loglevel', 'error', '-nostats',
      '-f', 's16le', '-ar', String(sampleRate), '-ac', '1', '-i', 'pipe:0',
      '-codec:a', 'libmp3lame', '-b:a', '64k', '-f', 'mp3', 'pipe:1'
    ], {
      engine: 'ffmpeg',
      pkg: ENGINE_PACKAGES.ffmpeg,
      input: pcm,
      timeoutMs: opts.timeoutMs,
      maxOutputBytes: MAX_SPEAK_OUTPUT_BYTES,
      tooLarge: () => new SpeechTooLargeError('the spoken audio', MAX_SPEAK_OUTPUT_BYTES, 'bytes'),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {})
    })
    if (result.code !== 0 || result.stdout.length === 0) throw new SpeechEngineError(`ffmpeg could not encode mp3: ${stderrReason(result.stderr) || `exit ${String(result.code)}`}`)
    return result.stdout
  } catch (err) {
    if (err instanceof SpeechEngineMissingError) throw new SpeechEngineMissingError('ffmpeg', ENGINE_PACKAGES.ffmpeg, 'ffmpeg (needed for mp3; wav works without it)')
    throw err
  }
}
