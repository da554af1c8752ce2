/**
 * Small, valid media files for the stand-ins: PNG (solid colour, any size), WAV / raw PCM
 * (a quiet tone), MP3 (silent MPEG-1 Layer III frames). No dependencies beyond node:zlib.
 */
import { crc32, deflateSync, inflateSync } from 'node:zlib'

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

function pngChunk (type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(typeAndData) >>> 0)
  return Buffer.concat([length, typeAndData, crc])
}

/** A `width`×`height` 8-bit RGB PNG filled with one colour */
export function solidPng (width: number, height: number, rgb: [number, number, number]): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // colour type: truecolour
  ihdr[10] = 0 // deflate
  ihdr[11] = 0 // adaptive filtering
  ihdr[12] = 0 // no interlace
  const row = Buffer.alloc(1 + width * 3)
  row[0] = 0 // filter: none
  for (let x = 0; x < width; x++) {
    row[1 + x * 3] = rgb[0]
    row[2 + x * 3] = rgb[1]
    row[3 + x * 3] = rgb[2]
  }
  const raw = Buffer.alloc(row.length * height)
  for (let y = 0; y < height; y++) row.copy(raw, y * row.length)
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0))
  ])
}

export interface PngInfo { width: number, height: number, rgb: [number, number, number] }

/** Reads back size and first pixel of a PNG written by solidPng (tests use it to check images) */
export function readSolidPng (png: Buffer): PngInfo {
  if (!png.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('not a PNG')
  const width = png.readUInt32BE(16)
  const height = png.readUInt32BE(20)
  let offset = 8
  const idat: Buffer[] = []
  while (offset < png.length) {
    const length = png.readUInt32BE(offset)
    const type = png.toString('ascii', offset + 4, offset + 8)
    const data = png.subarray(offset + 8, offset + 8 + length)
    const crc = png.readUInt32BE(offset + 8 + length)
    if ((crc32(png.subarray(offset + 4, offset + 8 + length)) >>> 0) !== crc) throw new Error(`bad CRC in ${type}`)
    if (type === 'IDAT') idat.push(data)
    offset += 12 + length
  }
  const raw = inflateSync(Buffer.concat(idat))
  return { width, height, rgb: [raw[1], raw[2], raw[3]] }
}

/** Sample rate of OpenAI's `pcm` speech output (24 kHz, 16-bit little-endian mono) */
export const PCM_SAMPLE_RATE = 24_000
/** Length of stand-in speech per character of input */
const SPEECH_MS_PER_CHAR = 60
const MIN_SPEECH_MS = 200
const MAX_SPEECH_MS = 10_000
/** A quiet 440 Hz tone, so the audio is not empty */
const TONE_HZ = 440
const TONE_AMPLITUDE = 3000

/** How long the stand-in "speaks" a text */
export function speechDurationMs (text: string): number {
  return Math.min(MAX_SPEECH_MS, Math.max(MIN_SPEECH_MS, text.length * SPEECH_MS_PER_CHAR))
}

/** Raw 16-bit LE mono PCM of a quiet tone */
export function tonePcm (durationMs: number, sampleRate = PCM_SAMPLE_RATE): Buffer {
  const samples = Math.round(sampleRate * durationMs / 1000)
  const pcm = Buffer.alloc(samples * 2)
  for (let i = 0; i < samples; i++) {
    pcm.writeInt16LE(Math.round(TONE_AMPLITUDE * Math.sin(2 * Math.PI * TONE_HZ * i / sampleRate)), i * 2)
  }
  return pcm
}

/** A RIFF/WAVE file around 16-bit mono PCM */
export function wavFromPcm (pcm: Buffer, sampleRate = PCM_SAMPLE_RATE): Buffer {
  const header = Buffer.alloc(44)
  header.write('RIFF', 0, 'ascii')
  header.writeUInt32LE(36 + pcm.length, 4)
  header.write('WAVE', 8, 'ascii')
  header.write('fmt ', 12, 'ascii')
  header.writeUInt32LE(16, 16) // fmt chunk size
  header.writeUInt16LE(1, 20) // PCM
  header.writeUInt16LE(1, 22) // mono
  header.writeUInt32LE(sampleRate, 24)
  header.writeUInt32LE(sampleRate * 2, 28) // byte rate
  header.writeUInt16LE(2, 32) // block align
  header.writeUInt16LE(16, 34) // bits per sample
  header.write('data', 36, 'ascii')
  header.writeUInt32LE(pcm.length, 40)
  return Buffer.concat([header, pcm])
}

/** Seconds of audio in a WAV file, or undefined when it is not one this can read */
export function wavDurationSeconds (wav: Buffer): number | undefined {
  if (wav.length < 44 || wav.toString('ascii', 0, 4) !== 'RIFF' || wav.toString('ascii', 8, 12) !== 'WAVE') return undefined
  let offset = 12
  let byteRate = 0
  while (offset + 8 <= wav.length) {
    const id = wav.toString('ascii', offset, offset + 4)
    const size = wav.readUInt32LE(offset + 4)
    if (id === 'fmt ') byteRate = wav.readUInt32LE(offset + 16)
    if (id === 'data') return byteRate > 0 ? Math.min(size, wav.length - offset - 8) / byteRate : undefined
    offset += 8 + size + (size % 2)
  }
  return undefined
}

/** MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono: 144 × 128000 / 44100 = 417 bytes a frame */
const MP3_FRAME_BYTES = 417
const MP3_FRAME_MS = 1152 / 44.1
const MP3_HEADER = Buffer.from([0xff, 0xfb, 0x90, 0xc4])

/**
 * Silent MP3: frames whose side information is all zero (no Huffman data), which every
 * decoder plays as silence.
 */
export function silentMp3 (durationMs: number): Buffer {
  const frames = Math.max(1, Math.ceil(durationMs / MP3_FRAME_MS))
  const frame = Buffer.alloc(MP3_FRAME_BYTES)
  MP3_HEADER.copy(frame, 0)
  return Buffer.concat(Array.from({ length: frames }, () => frame))
}
