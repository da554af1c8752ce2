/**
 * Any audio a client sends → 16 kHz mono 16-bit little-endian PCM, what pocketsphinx's model
 * wants. WAV already in that form is used as it is; anything else goes through ffmpeg (which
 * reads what browsers record: webm/opus, ogg, mp4, mp3, flac) or, for WAV, sox when ffmpeg is
 * absent.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ENGINE_PACKAGES, MAX_AUDIO_SECONDS, STT_BYTES_PER_SECOND, STT_SAMPLE_RATE } from './constants.js'
import type { SpeechEngines } from './engines.js'
import { SpeechEngineMissingError, SpeechInputError, SpeechTooLargeError } from './errors.js'
import { runProcess, stderrReason } from './process.js'
import { parseWav, sniffAudio } from './wav.js'

export interface DecodeOptions {
  signal?: AbortSignal
  timeoutMs: number
  /** Default MAX_AUDIO_SECONDS */
  maxSeconds?: number
}

/**
 * ffmpeg resampling through libsoxr (Debian's ffmpeg has it), as sox does, on float samples:
 * the spotter's score is that sensitive — espeak-ng's 22.05 kHz "computer" resampled by
 * ffmpeg's default swr was missed at 1e-40, through soxr it was caught; and soxr writing 16-bit
 * itself dithers at random (the same clip gave different answers run to run).
 */
const SOXR = ['-af', `aformat=sample_fmts=flt,aresample=${STT_SAMPLE_RATE}:resampler=soxr`]
const SWR = ['-af', `aformat=sample_fmts=flt,aresample=${STT_SAMPLE_RATE}`]

/** The audio, as 16 kHz mono s16le PCM. Throws SpeechInputError for audio the converters cannot read */
export async function decodeToPcm16k (audio: Buffer, mime: string | undefined, engines: SpeechEngines, opts: DecodeOptions): Promise<Buffer> {
  const maxSeconds = opts.maxSeconds ?? MAX_AUDIO_SECONDS
  const maxBytes = maxSeconds * STT_BYTES_PER_SECOND
  const container = sniffAudio(audio)
  const isWav = container === 'wav' || (container === undefined && /^audio\/(x-)?(wav|wave)\b/i.test(mime ?? ''))
  if (isWav) {
    const wav = parseWav(audio)
    if (wav.format === 1 && wav.channels === 1 && wav.sampleRate === STT_SAMPLE_RATE && wav.bitsPerSample === 16) {
      if (wav.data.length > maxBytes) throw new SpeechTooLargeError('audio', maxSeconds, 'seconds')
      // an odd trailing byte is half a sample
      return wav.data.subarray(0, wav.data.length - (wav.data.length % 2))
    }
  }
  const tooLarge = (): Error => new SpeechTooLargeError('audio', maxSeconds, 'seconds')
  const common = { signal: opts.signal, timeoutMs: opts.timeoutMs, maxOutputBytes: maxBytes, tooLarge }
  const shownMime = /^[\w.+-]{1,40}\/[\w.+-]{1,40}$/.test((mime ?? '').split(';')[0] ?? '') ? ` as ${(mime ?? '').split(';')[0] ?? ''}` : ''
  // from a file, not a pipe: mp4/m4a (Safari) keep their index at the end, which a pipe cannot seek to
  const dir = await mkdtemp(join(tmpdir(), 'realm-speech-'))
  try {
    const input = join(dir, 'input')
    await writeFile(input, audio)
    const args = (resampler: string[]): string[] => [
      '-hide_banner', '-loglevel', 'error', '-nostats', '-nostdin',
      '-i', input,
      '-vn', ...resampler, '-ac', '1', '-ar', String(STT_SAMPLE_RATE), '-acodec', 'pcm_s16le', '-f', 's16le',
      'pipe:1'
    ]
    let result = await runProcess(engines.ffmpeg, args(SOXR), { ...common, engine: 'ffmpeg', pkg: ENGINE_PACKAGES.ffmpeg })
    // an ffmpeg built without libsoxr: its own resampler
    if (result.code !== 0 && /soxr|resampl/i.test(result.stderr)) result = await runProcess(engines.ffmpeg, args(SWR), { ...common, engine: 'ffmpeg', pkg: ENGINE_PACKAGES.ffmpeg })
    if (result.code !== 0) throw new SpeechInputError(`audio could not be decoded${shownMime}: ${stderrReason(result.stderr).split(input).join('input') || `ffmpeg exit ${String(result.code)}`}`, { container })
    if (result.stdout.length === 0) throw new SpeechInputError('audio has no samples')
    return result.stdout
  } catch (err) {
    if (!(err instanceof SpeechEngineMissingError)) throw err
    if (!isWav) throw new SpeechEngineMissingError('ffmpeg', ENGINE_PACKAGES.ffmpeg, `ffmpeg (needed to decode ${container ?? 'this audio'})`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  // WAV in another rate or layout, no ffmpeg: sox
  try {
    const result = await runProcess(engines.sox, [
      // -D: no dither, so the same clip always gives the same samples (and the same answer)
      '-V1', '-D', '--ignore-length', '-t', 'wav', '-',
      '-t', 'raw', '-r', String(STT_SAMPLE_RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-L', '-'
    ], { ...common, input: audio, engine: 'sox', pkg: ENGINE_PACKAGES.sox })
    if (result.code !== 0) throw new SpeechInputError(`WAV audio could not be converted: ${stderrReason(result.stderr) || `sox exit ${String(result.code)}`}`)
    return result.stdout
  } catch (err) {
    if (err instanceof SpeechEngineMissingError) throw new SpeechEngineMissingError('ffmpeg', `${ENGINE_PACKAGES.ffmpeg} (or ${ENGINE_PACKAGES.sox})`, 'an audio converter (ffmpeg or sox)')
    throw err
  }
}

/** Silence to put around a clip: `ms` of zero samples at 16 kHz */
export function silence (ms: number): Buffer {
  return Buffer.alloc(Math.round(ms * STT_SAMPLE_RATE / 1000) * 2)
}
