/**
 * The microphone as 16 kHz mono 16-bit PCM chunks for the node's recogniser. Captured with echo
 * cancellation, noise suppression and gain control off: the offline recogniser needs the audio as
 * it is (Chromium's processing mangles it), which is why the voice is half-duplex. An
 * `AudioContext({ sampleRate: 16000 })` resamples where the browser can (Chromium); elsewhere the
 * context runs at its own rate and `Resampler` brings it down. The tap is an AudioWorklet from a
 * static file (`/voice-capture.js`, allowed by `script-src 'self'`), or a ScriptProcessor where
 * worklets are missing.
 */
import { PcmChunker, Resampler, TARGET_SAMPLE_RATE, floatToInt16, levelDb } from './pcm.js'

/** The worklet module, served from ui/public/ */
export const CAPTURE_WORKLET_URL = '/voice-capture.js'
/** ScriptProcessor block (samples at the context's rate) where there is no AudioWorklet */
const SCRIPT_PROCESSOR_BLOCK = 2048

/** The capture constraints the offline recogniser needs (shared/STACK.md "Speech offline") */
export const MIC_CONSTRAINTS: MediaStreamConstraints = {
  audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
  video: false
}

export class MicError extends Error {
  override name = 'MicError'
  constructor (readonly code: 'MIC_DENIED' | 'NO_MIC', message: string) {
    super(message)
  }
}

export interface MicInit {
  /** ~100 ms of 16 kHz mono s16le PCM */
  onChunk: (chunk: Uint8Array) => void
  /** loudness of the last block, dBFS */
  onLevel?: (db: number) => void
}

export interface Mic {
  close: () => void
}

/** Opens the microphone; rejects with MicError (MIC_DENIED, NO_MIC) */
export async function openMic (init: MicInit): Promise<Mic> {
  if (navigator.mediaDevices?.getUserMedia == null) throw new MicError('NO_MIC', 'this page cannot use a microphone (it needs https or localhost)')
  let stream: MediaStream
  try {
    stream = await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS)
  } catch (err) {
    const name = (err as { name?: string }).name
    if (name === 'NotAllowedError' || name === 'SecurityError') throw new MicError('MIC_DENIED', 'microphone access was refused')
    throw new MicError('NO_MIC', `no microphone could be opened: ${err instanceof Error ? err.message : String(err)}`)
  }
  let ctx: AudioContext
  try {
    ctx = new AudioContext({ sampleRate: TARGET_SAMPLE_RATE })
  } catch {
    // a browser that cannot run a context at 16 kHz: its own rate, resampled here
    ctx = new AudioContext()
  }
  const stopAll = (): void => {
    for (const track of stream.getTracks()) track.stop()
    void ctx.close().catch(() => {})
  }
  try {
    if (ctx.state === 'suspended') await ctx.resume().catch(() => {})
    const resampler = new Resampler(ctx.sampleRate, TARGET_SAMPLE_RATE)
    const chunker = new PcmChunker()
    const onBlock = (block: Float32Array): void => {
      init.onLevel?.(levelDb(block))
      for (const chunk of chunker.push(floatToInt16(resampler.process(block)))) init.onChunk(chunk)
    }
    const source = ctx.createMediaStreamSource(stream)
    let tap: AudioNode
    if (ctx.audioWorklet != null && typeof AudioWorkletNode !== 'undefined') {
      await ctx.audioWorklet.addModule(CAPTURE_WORKLET_URL)
      const node = new AudioWorkletNode(ctx, 'voice-capture', { numberOfInputs: 1, numberOfOutputs: 0 })
      node.port.onmessage = (ev: MessageEvent<Float32Array>) => { onBlock(ev.data) }
      tap = node
    } else {
      const node = ctx.createScriptProcessor(SCRIPT_PROCESSOR_BLOCK, 1, 1)
      node.onaudioprocess = (ev) => {
        onBlock(new Float32Array(ev.inputBuffer.getChannelData(0)))
        // silent output: it must be connected to run, and must not play the microphone back
        ev.outputBuffer.getChannelData(0).fill(0)
      }
      node.connect(ctx.destination)
      tap = node
    }
    source.connect(tap)
    return {
      close: () => {
        source.disconnect()
        tap.disconnect()
        stopAll()
      }
    }
  } catch (err) {
    stopAll()
    throw new MicError('NO_MIC', `the microphone could not be read: ${err instanceof Error ? err.message : String(err)}`)
  }
}
