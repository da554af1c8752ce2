// The web UI's microphone tap (an AudioWorklet, loaded by ui/src/lib/mic.ts). A static file of
// its own: the page's CSP (`script-src 'self'`) allows worklet modules from the node itself and
// forbids inline and blob: scripts. It only copies the input (channel 0) out in blocks of
// about 50 ms; converting and sending is done in the page (ui/src/lib/pcm.ts).
const BLOCK_MS = 50

class VoiceCapture extends AudioWorkletProcessor {
  constructor () {
    super()
    // `sampleRate` is the AudioWorkletGlobalScope's: the context's rate
    this.size = Math.max(128, Math.round(sampleRate * BLOCK_MS / 1000))
    this.block = new Float32Array(this.size)
    this.filled = 0
  }

  process (inputs) {
    const channels = inputs[0]
    if (channels === undefined || channels.length === 0) return true
    const n = channels[0].length
    for (let i = 0; i < n; i++) {
      let s = 0
      for (let c = 0; c < channels.length; c++) s += channels[c][i]
      this.block[this.filled++] = s / channels.length
      if (this.filled === this.size) {
        this.port.postMessage(this.block, [this.block.buffer])
        this.block = new Float32Array(this.size)
        this.filled = 0
      }
    }
    return true
  }
}

registerProcessor('voice-capture', VoiceCapture)
