/** WAV headers in and out, and telling audio containers apart by their first bytes */
import { SpeechInputError } from './errors.js'

export interface WavInfo {
  /** 1 = integer PCM, 3 = IEEE float (WAVE_FORMAT_EXTENSIBLE is resolved to its sub-format) */
  format: number
  channels: number
  sampleRate: number
  bitsPerSample: number
  /** the samples (a view into the buffer given) */
  data: Buffer
}

const WAVE_FORMAT_EXTENSIBLE = 0xfffe

/**
 * Reads a RIFF/WAVE buffer. Streaming writers (espeak-ng `--stdout`, browsers) put a placeholder
 * in the size fields; a data chunk that claims more than the buffer holds is cut to what is there.
 * Throws SpeechInputError (INVALID_TASK) when it is not a WAV file.
 */
export function parseWav (buf: Buffer): WavInfo {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    throw new SpeechInputError('not a WAV file (no RIFF/WAVE header)')
  }
  let fmt: Omit<WavInfo, 'data'> | undefined
  let offset = 12
  while (offset + 8 <= buf.length) {
    const id = buf.toString('latin1', offset, offset + 4)
    const size = buf.readUInt32LE(offset + 4)
    const body = offset + 8
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.length) throw new SpeechInputError('WAV fmt chunk is truncated')
      let format = buf.readUInt16LE(body)
      if (format === WAVE_FORMAT_EXTENSIBLE && size >= 40 && body + 26 <= buf.length) format = buf.readUInt16LE(body + 24)
      fmt = {
        format,
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bitsPerSample: buf.readUInt16LE(body + 14)
      }
    } else if (id === 'data') {
      if (fmt === undefined) throw new SpeechInputError('WAV data chunk before its fmt chunk')
      const end = Math.min(buf.length, body + size)
      return { ...fmt, data: buf.subarray(body, end) }
    }
    // chunks are padded to an even size
    offset = body + size + (size % 2)
  }
  throw new SpeechInputError('WAV file has no data chunk')
}

/** A 44-byte canonical header followed by the samples */
export function encodeWav (pcm: Uint8Array, sampleRate: number, channels = 1, bitsPerSample = 16): Buffer {
  const header = Buffer.alloc(44)
  const blockAlign = channels * bitsPerSample / 8
  header.write('RIFF', 0, 'latin1')
  header.writeUInt32LE(36 + pcm.length, 4)
  header.write('WAVE', 8, 'latin1')
  header.write('fmt ', 12, 'latin1')
  header.writeUInt32LE(16, 16)
  header.writeUInt16LE(1, 20)
  header.writeUInt16LE(channels, 22)
  header.writeUInt32LE(sampleRate, 24)
  header.writeUInt32LE(sampleRate * blockAlign, 28)
  header.writeUInt16LE(blockAlign, 32)
  header.writeUInt16LE(bitsPerSample, 34)
  header.write('data', 36, 'latin1')
  header.writeUInt32LE(pcm.length, 40)
  return Buffer.concat([header, pcm])
}

/** Seconds of 16-bit mono PCM */
export function pcmSeconds (bytes: number, sampleRate: number): number {
  return bytes / 2 / sampleRate
}

export type AudioContainer = 'wav' | 'ogg' | 'webm' | 'mp3' | 'flac' | 'mp4'

/** The container of an audio buffer from its magic bytes, or undefined when not recognised */
export function sniffAudio (buf: Buffer): AudioContainer | undefined {
  if (buf.length < 12) return undefined
  const head4 = buf.toString('latin1', 0, 4)
  if (head4 === 'RIFF' && buf.toString('latin1', 8, 12) === 'WAVE') return 'wav'
  if (head4 === 'OggS') return 'ogg'
  if (head4 === 'fLaC') return 'flac'
  if (buf[0] === 0x1a && buf[1] === 0x45 && buf[2] === 0xdf && buf[3] === 0xa3) return 'webm'
  if (buf.toString('latin1', 4, 8) === 'ftyp') return 'mp4'
  if (buf.toString('latin1', 0, 3) === 'ID3' || (buf[0] === 0xff && ((buf[1] ?? 0) & 0xe0) === 0xe0)) return 'mp3'
  return undefined
}
