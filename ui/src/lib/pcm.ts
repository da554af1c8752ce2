/**
 * Microphone samples → what the node's recogniser takes (`/realm/speech`): 16 kHz mono 16-bit
 * little-endian PCM, sent in ~100 ms chunks. Pure; tested in test/unit/ui-voice.test.ts.
 *
 * Where the browser runs an `AudioContext({ sampleRate: 16000 })` (Chromium does) the samples are
 * already at 16 kHz; elsewhere `Resampler` brings the context's rate down.
 */

/** The recogniser's rate (pocketsphinx's en-us model) */
export const TARGET_SAMPLE_RATE = 16_000
/** Audio per message: small enough to stream, large enough not to flood the socket with messages */
export const CHUNK_MS = 100
export const CHUNK_SAMPLES = TARGET_SAMPLE_RATE * CHUNK_MS / 1000

/** Float samples in [-1, 1] → signed 16-bit (clipped) */
export function floatToInt16 (input: Float32Array): Int16Array {
  const out = new Int16Array(input.length)
  for (let i = 0; i < input.length; i++) {
    const s = Math.max(-1, Math.min(1, input[i] ?? 0))
    out[i] = s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff)
  }
  return out
}

/** Several channels → one, by their mean */
export function downmix (channels: Float32Array[]): Float32Array {
  if (channels.length === 1) return channels[0] ?? new Float32Array(0)
  const length = Math.min(...channels.map(c => c.length))
  const out = new Float32Array(length)
  for (const channel of channels) for (let i = 0; i < length; i++) out[i]! += channel[i]! / channels.length
  return out
}

/** 16-bit samples as little-endian bytes, whatever the machine's byte order */
export function int16ToLeBytes (samples: Int16Array): Uint8Array {
  const bytes = new Uint8Array(samples.length * 2)
  const view = new DataView(bytes.buffer)
  for (let i = 0; i < samples.length; i++) view.setInt16(i * 2, samples[i]!, true)
  return bytes
}

/** Loudness of float samples, dBFS (-100 for silence): for the level shown while recording */
export function levelDb (samples: Float32Array): number {
  let sum = 0
  for (let i = 0; i < samples.length; i++) sum += samples[i]! * samples[i]!
  const rms = Math.sqrt(sum / Math.max(1, samples.length))
  return rms > 0 ? Math.max(-100, 20 * Math.log10(rms)) : -100
}

/** A second-order low-pass (RBJ cookbook biquad), its state kept across blocks */
class LowPass {
  private readonly b0: number
  private readonly b1: number
  private readonly b2: number
  private readonly a1: number
  private readonly a2: number
  private x1 = 0
  private x2 = 0
  private y1 = 0
  private y2 = 0

  constructor (cutoffHz: number, sampleRate: number) {
    const w0 = 2 * Math.PI * cutoffHz / sampleRate
    const alpha = Math.sin(w0) / (2 * Math.SQRT1_2)
    const cos = Math.cos(w0)
    const a0 = 1 + alpha
    this.b0 = (1 - cos) / 2 / a0
    this.b1 = (1 - cos) / a0
    this.b2 = (1 - cos) / 2 / a0
    this.a1 = -2 * cos / a0
    this.a2 = (1 - alpha) / a0
  }

  process (input: Float32Array): Float32Array {
    const out = new Float32Array(input.length)
    for (let i = 0; i < input.length; i++) {
      const x = input[i]!
      const y = this.b0 * x + this.b1 * this.x1 + this.b2 * this.x2 - this.a1 * this.y1 - this.a2 * this.y2
      this.x2 = this.x1
      this.x1 = x
      this.y2 = this.y1
      this.y1 = y
      out[i] = y
    }
    return out
  }
}

/**
 * Any rate → 16 kHz, block by block: two low-pass stages below the new Nyquist frequency (so
 * what cannot be represented does not fold back as noise), then linear interpolation, the
 * fractional position carried from one block to the next.
 */
export class Resampler {
  private readonly step: number
  private readonly filters: LowPass[]
  /** where the next output sample sits, in input samples from the start of the next block (-1: the previous block's last) */
  private pos = 0
  /** the last input sample of the previous block (interpolation across the boundary) */
  private prev = 0

  constructor (readonly fromRate: number, readonly toRate = TARGET_SAMPLE_RATE) {
    if (!(fromRate > 0) || !(toRate > 0)) throw new RangeError('sample rates must be positive')
    this.step = fromRate / toRate
    // 0.45 × the output rate: a little under its Nyquist frequency
    this.filters = fromRate > toRate ? [new LowPass(0.45 * toRate, fromRate), new LowPass(0.45 * toRate, fromRate)] : []
  }

  process (input: Float32Array): Float32Array {
    if (this.fromRate === this.toRate || input.length === 0) return input
    let x = input
    for (const f of this.filters) x = f.process(x)
    const out: number[] = []
    for (;;) {
      const i = Math.floor(this.pos)
      const frac = this.pos - i
      // the sample after i is in the next block: wait for it
      if (frac > 0 ? i + 1 >= x.length : i >= x.length) break
      const a = i < 0 ? this.prev : x[i]!
      const b = frac > 0 ? x[i + 1]! : a
      out.push(a + (b - a) * frac)
      this.pos += this.step
    }
    this.pos -= x.length
    this.prev = x[x.length - 1]!
    return Float32Array.from(out)
  }
}

/** Gathers 16-bit samples into chunks of `samples` (the last, shorter one by `flush`) as little-endian bytes */
export class PcmChunker {
  private buffer: Int16Array
  private filled = 0

  constructor (readonly samples = CHUNK_SAMPLES) {
    this.buffer = new Int16Array(samples)
  }

  push (input: Int16Array): Uint8Array[] {
    const out: Uint8Array[] = []
    let offset = 0
    while (offset < input.length) {
      const n = Math.min(this.samples - this.filled, input.length - offset)
      this.buffer.set(input.subarray(offset, offset + n), this.filled)
      this.filled += n
      offset += n
      if (this.filled === this.samples) {
        out.push(int16ToLeBytes(this.buffer))
        this.filled = 0
      }
    }
    return out
  }

  flush (): Uint8Array | undefined {
    if (this.filled === 0) return undefined
    const out = int16ToLeBytes(this.buffer.subarray(0, this.filled))
    this.filled = 0
    return out
  }

  /** forget what is held (a new utterance starts) */
  reset (): void {
    this.filled = 0
  }
}
