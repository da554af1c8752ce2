/**
 * The web UI's voice, in plain TypeScript: the state machine (ui/src/lib/voice.ts) transition by
 * transition, sentence splitting for speech and the answer reader, transcripts of the browser's
 * recogniser, the speech socket's messages, and the PCM helpers (ui/src/lib/pcm.ts).
 */
import assert from 'node:assert/strict'
import {
  ANSWER_TIMEOUT_MS, AWAKE_TIMEOUT_MS, START_TIMEOUT_MS, TRANSCRIBE_TIMEOUT_MS, describeVoice, hearing, initialVoice, listenFor,
  micOpen, pickSpeakModel, voiceStep, type VoiceEffect, type VoiceEvent, type VoiceModel
} from '../../ui/src/lib/voice.js'
import {
  AnswerReader, MAX_SENTENCE_CHARS, SUGGESTED_PROMPTS, SentenceSplitter, parseDictation, parseTranscript, readTranscript, speakable, voicePhrases
} from '../../ui/src/lib/voice-text.js'
import { PcmChunker, Resampler, downmix, floatToInt16, int16ToLeBytes, levelDb } from '../../ui/src/lib/pcm.js'
import { parseSpeechMessage } from '../../ui/src/lib/speech-link.js'
import type { CatalogModel } from '../../ui/src/lib/models.js'

/** Runs events through the machine from `model`, collecting every effect */
function run (model: VoiceModel, events: Array<VoiceEvent | [VoiceEvent, number]>, start = 1000): { model: VoiceModel, effects: VoiceEffect[] } {
  let m = model
  const effects: VoiceEffect[] = []
  let now = start
  for (const item of events) {
    const [event, at] = Array.isArray(item) ? item : [item, now]
    now = at
    const step = voiceStep(m, event, now)
    m = step.model
    effects.push(...step.effects)
  }
  return { model: m, effects }
}

const types = (effects: VoiceEffect[]): string[] => effects.map(e => e.type === 'listen' ? `listen:${e.as}` : e.type === 'capture' ? `capture:${e.on ? 'on' : 'off'}` : e.type)

const READY_NODE: VoiceEvent = { type: 'ready', engine: 'node' }
const result = (prompt: string, mode?: 'chat' | 'vision' | 'imagine'): VoiceEvent => ({ type: 'result', prompt, viewMode: 'chat', ...(mode !== undefined ? { mode } : {}) })

/** Hands-free on and the microphone up: asleep, listening for the wake word */
function asleep (): VoiceModel {
  return run(initialVoice(), [{ type: 'hands-free', on: true }, READY_NODE]).model
}

/** Hands-free, a prompt sent, the first sentence being said */
function speaking (first = 'The realm is a mesh.'): VoiceModel {
  return run(asleep(), [{ type: 'wake' }, { type: 'partial', mode: 'chat' }, result('what is the realm'), { type: 'answer', sentences: [first] }]).model
}

describe('ui: voice state machine', () => {
  it('hands-free: off → starting (microphone opens) → asleep (listens for the wake word)', () => {
    let step = voiceStep(initialVoice(), { type: 'hands-free', on: true }, 0)
    assert.equal(step.model.state, 'starting')
    assert.deepEqual(step.effects, [{ type: 'capture', on: true, engine: 'node' }])
    step = voiceStep(step.model, READY_NODE, 10)
    assert.equal(step.model.state, 'asleep')
    assert.deepEqual(step.effects, [{ type: 'listen', as: 'wake' }])
    assert.equal(listenFor(step.model), 'wake')
    assert.ok(micOpen(step.model))
  })

  it('the wake word, then the mode (its view is shown), then the prompt: sent in that mode, half-duplex from then on', () => {
    let m = asleep()
    let step = voiceStep(m, { type: 'wake' }, 2000)
    assert.equal(step.model.state, 'awake')
    assert.deepEqual(step.effects, [])
    step = voiceStep(step.model, { type: 'partial', mode: 'imagine' }, 3000)
    assert.equal(step.model.state, 'command')
    assert.equal(step.model.mode, 'imagine')
    assert.deepEqual(step.effects, [{ type: 'go', mode: 'imagine' }])
    // the prompt carries no mode of its own: the one heard before
    step = voiceStep(step.model, result('a red boat'), 4000)
    m = step.model
    assert.equal(m.state, 'sending')
    assert.equal(m.heard, 'a red boat')
    assert.deepEqual(step.effects, [{ type: 'listen', as: 'stop' }, { type: 'submit', mode: 'imagine', prompt: 'a red boat' }])
    assert.equal(listenFor(m), 'stop')
    assert.ok(!hearing(m))
  })

  it('said in one breath: wake, result with its mode; a prompt without a mode goes to the view on screen', () => {
    const one = run(asleep(), [{ type: 'wake' }, result('what is the realm', 'vision')])
    assert.ok(one.effects.some(e => e.type === 'submit' && e.mode === 'vision' && e.prompt === 'what is the realm'))
    const none = run(asleep(), [{ type: 'wake' }, { type: 'result', prompt: 'hello', viewMode: 'imagine' }])
    assert.ok(none.effects.some(e => e.type === 'submit' && e.mode === 'imagine'))
  })

  it('speaks the answer sentence by sentence as it streams, then listens again', () => {
    let m = run(asleep(), [{ type: 'wake' }, result('what is the realm', 'chat')]).model
    let step = voiceStep(m, { type: 'answer', sentences: ['One.', 'Two.'] }, 5000)
    m = step.model
    assert.equal(m.state, 'speaking')
    assert.equal(m.speaking, 'One.')
    assert.deepEqual(step.effects, [{ type: 'say', text: 'One.', next: 'Two.' }])
    step = voiceStep(m, { type: 'tts-start' }, 5100)
    assert.equal(step.model.audible, true)
    // more text streams in while the first sentence plays: queued, not said over it
    step = voiceStep(step.model, { type: 'answer', sentences: ['Three.'] }, 5200)
    assert.deepEqual(step.effects, [])
    assert.deepEqual(step.model.queue, ['Two.', 'Three.'])
    step = voiceStep(step.model, { type: 'tts-end' }, 6000)
    assert.deepEqual(step.effects, [{ type: 'say', text: 'Two.', next: 'Three.' }])
    step = voiceStep(step.model, { type: 'tts-end' }, 7000)
    assert.deepEqual(step.effects, [{ type: 'say', text: 'Three.' }])
    // the answer is still streaming: waiting for more, still "speaking"
    step = voiceStep(step.model, { type: 'tts-end' }, 8000)
    assert.equal(step.model.state, 'speaking')
    assert.equal(step.model.speaking, undefined)
    assert.deepEqual(step.effects, [])
    step = voiceStep(step.model, { type: 'answer-end' }, 8500)
    assert.equal(step.model.state, 'asleep')
    assert.deepEqual(step.effects, [{ type: 'listen', as: 'wake' }])
  })

  it('the answer ends while its last sentence plays: back to listening once it has been said', () => {
    let step = voiceStep(speaking(), { type: 'answer-end' }, 6000)
    assert.equal(step.model.state, 'speaking')
    assert.deepEqual(step.effects, [])
    step = voiceStep(step.model, { type: 'tts-end' }, 7000)
    assert.equal(step.model.state, 'asleep')
    assert.deepEqual(step.effects, [{ type: 'listen', as: 'wake' }])
  })

  it('an answer with nothing to say: back to listening at its end', () => {
    const m = run(asleep(), [{ type: 'wake' }, result('hello', 'chat')]).model
    const step = voiceStep(m, { type: 'answer-end' }, 9000)
    assert.equal(step.model.state, 'asleep')
  })

  it('half-duplex: while the answer is awaited or said, what the recogniser reports is dropped', () => {
    for (const m of [run(asleep(), [{ type: 'wake' }, result('q', 'chat')]).model, speaking()]) {
      assert.equal(listenFor(m), 'stop', m.state)
      for (const event of [{ type: 'wake' }, { type: 'partial', mode: 'chat' }, result('its own voice', 'chat'), { type: 'sleep', reason: 'timeout' }] as VoiceEvent[]) {
        const step = voiceStep(m, event, 7000)
        assert.deepEqual(step.effects, [], `${m.state} + ${event.type}`)
        assert.equal(step.model.state, m.state)
      }
    }
    // push to talk alone: the microphone closes for the answer
    const ptt = run(initialVoice(), [{ type: 'ptt', down: true }, READY_NODE, { type: 'ptt', down: false }, result('hello')])
    assert.equal(ptt.model.state, 'sending')
    assert.equal(ptt.model.capturing, false)
    assert.equal(listenFor(ptt.model), 'idle')
    assert.ok(!micOpen(ptt.model))
    assert.deepEqual(types(ptt.effects).slice(-2), ['capture:off', 'submit'])
  })

  it('"stop" silences the speech and drops the rest of the answer; the button and Escape too', () => {
    for (const source of ['voice', 'user'] as const) {
      const m = voiceStep(speaking(), { type: 'answer', sentences: ['More.'] }, 5500).model
      const step = voiceStep(m, { type: 'stop', source }, 6000)
      assert.equal(step.model.state, 'asleep')
      assert.deepEqual(step.model.queue, [])
      assert.equal(step.model.answering, false)
      assert.deepEqual(types(step.effects), ['silence', 'listen:wake'])
      // what is left of the answer is not said
      assert.deepEqual(voiceStep(step.model, { type: 'answer', sentences: ['Late.'] }, 6100).effects, [])
    }
    // while waiting for the answer, too
    const waiting = run(asleep(), [{ type: 'wake' }, result('q', 'chat')]).model
    assert.deepEqual(types(voiceStep(waiting, { type: 'stop', source: 'voice' }, 5000).effects), ['silence', 'listen:wake'])
    // awake: back to sleep
    assert.equal(voiceStep(run(asleep(), [{ type: 'wake' }]).model, { type: 'stop', source: 'user' }, 5000).model.state, 'asleep')
  })

  it('"stop" heard while a sentence saying "stop" plays is the UI\'s own voice: ignored', () => {
    const m = speaking('Please stop at the red light.')
    assert.deepEqual(voiceStep(m, { type: 'stop', source: 'voice' }, 6000), { model: m, effects: [] })
    // the button still works
    assert.equal(voiceStep(m, { type: 'stop', source: 'user' }, 6000).model.state, 'asleep')
  })

  it('timeouts: awake and command fall asleep; transcribing, answering and starting give up', () => {
    const awake = run(asleep(), [{ type: 'wake' }], 1000).model
    assert.equal(voiceStep(awake, { type: 'tick' }, 1000 + AWAKE_TIMEOUT_MS - 1).model.state, 'awake')
    assert.equal(voiceStep(awake, { type: 'tick' }, 1000 + AWAKE_TIMEOUT_MS).model.state, 'asleep')
    const command = run(asleep(), [{ type: 'wake' }, { type: 'partial', mode: 'chat' }], 1000).model
    assert.equal(voiceStep(command, { type: 'tick' }, 1000 + AWAKE_TIMEOUT_MS).model.state, 'asleep')
    // the node says so too
    assert.equal(voiceStep(command, { type: 'sleep', reason: 'timeout' }, 2000).model.state, 'asleep')
    const notUnderstood = voiceStep(awake, { type: 'sleep', reason: 'not-understood' }, 2000).model
    assert.equal(notUnderstood.state, 'asleep')
    assert.match(notUnderstood.notice ?? '', /Not understood/)

    const transcribing = run(initialVoice(), [{ type: 'ptt', down: true }, READY_NODE, { type: 'ptt', down: false }], 1000).model
    assert.equal(transcribing.state, 'transcribing')
    const gaveUp = voiceStep(transcribing, { type: 'tick' }, 1000 + TRANSCRIBE_TIMEOUT_MS)
    assert.equal(gaveUp.model.state, 'off')
    assert.equal(gaveUp.model.problem?.code, 'TRANSCRIBE_TIMEOUT')
    assert.ok(types(gaveUp.effects).includes('capture:off'))

    const sending = run(asleep(), [{ type: 'wake' }, result('q', 'chat')], 1000).model
    const noAnswer = voiceStep(sending, { type: 'tick' }, 1000 + ANSWER_TIMEOUT_MS)
    assert.equal(noAnswer.model.state, 'asleep')
    assert.equal(noAnswer.model.problem?.code, 'ANSWER_TIMEOUT')
    assert.deepEqual(types(noAnswer.effects), ['silence', 'listen:wake'])

    const starting = voiceStep(initialVoice(), { type: 'hands-free', on: true }, 1000).model
    const stuck = voiceStep(starting, { type: 'tick' }, 1000 + START_TIMEOUT_MS)
    assert.equal(stuck.model.state, 'unavailable')
    assert.deepEqual(types(stuck.effects), ['capture:off'])
  })

  it('push to talk: down opens the microphone, up transcribes, the result is sent, then off', () => {
    let step = voiceStep(initialVoice(), { type: 'ptt', down: true }, 0)
    assert.equal(step.model.state, 'starting')
    assert.equal(step.model.pttHeld, true)
    assert.deepEqual(types(step.effects), ['capture:on'])
    step = voiceStep(step.model, READY_NODE, 100)
    assert.equal(step.model.state, 'ptt')
    assert.deepEqual(step.effects, [{ type: 'listen', as: 'ptt' }])
    assert.equal(listenFor(step.model), 'ptt')
    step = voiceStep(step.model, { type: 'ptt', down: false }, 2000)
    assert.equal(step.model.state, 'transcribing')
    assert.deepEqual(step.effects, [{ type: 'end-ptt' }])
    step = voiceStep(step.model, result('what is the realm', 'chat'), 3000)
    assert.equal(step.model.state, 'sending')
    step = voiceStep(step.model, { type: 'answer-end' }, 4000)
    assert.equal(step.model.state, 'off')
  })

  it('push to talk: released before the microphone was up records nothing; nothing understood goes back', () => {
    const early = run(initialVoice(), [{ type: 'ptt', down: true }, { type: 'ptt', down: false }, READY_NODE])
    assert.equal(early.model.state, 'off')
    assert.deepEqual(types(early.effects), ['capture:on', 'capture:off'])
    const nothing = run(initialVoice(), [{ type: 'ptt', down: true }, READY_NODE, { type: 'ptt', down: false }, { type: 'sleep', reason: 'not-understood' }])
    assert.equal(nothing.model.state, 'off')
    assert.match(nothing.model.notice ?? '', /Nothing was understood/)
    // with hands-free on, back to listening for the wake word instead
    const handsFree = run(asleep(), [{ type: 'ptt', down: true }, { type: 'ptt', down: false }, { type: 'sleep', reason: 'not-understood' }])
    assert.equal(handsFree.model.state, 'asleep')
    assert.deepEqual(types(handsFree.effects), ['listen:ptt', 'end-ptt', 'listen:wake'])
  })

  it('push to talk while the answer is said interrupts it; while hands-free listens it takes over the microphone', () => {
    const step = voiceStep(speaking(), { type: 'ptt', down: true }, 6000)
    assert.equal(step.model.state, 'ptt')
    assert.deepEqual(types(step.effects), ['silence', 'listen:ptt'])
    assert.deepEqual(step.model.queue, [])
    const cancel = voiceStep(step.model, { type: 'stop', source: 'user' }, 6500)
    assert.equal(cancel.model.state, 'asleep')
    assert.deepEqual(types(cancel.effects), ['listen:idle', 'listen:wake'])
  })

  it('hands-free off: the microphone closes at once; an answer being said is finished first', () => {
    const off = voiceStep(asleep(), { type: 'hands-free', on: false }, 5000)
    assert.equal(off.model.state, 'off')
    assert.deepEqual(types(off.effects), ['capture:off'])
    let step = voiceStep(speaking(), { type: 'hands-free', on: false }, 6000)
    assert.equal(step.model.state, 'speaking')
    assert.deepEqual(types(step.effects), ['capture:off'])
    step = voiceStep(step.model, { type: 'answer-end' }, 6100)
    step = voiceStep(step.model, { type: 'tts-end' }, 7000)
    assert.equal(step.model.state, 'off')
    assert.deepEqual(step.effects, [])
  })

  it('the browser\'s recogniser fails offline (network): the node\'s takes over, with a notice', () => {
    let step = voiceStep(initialVoice({ engine: 'browser' }), { type: 'hands-free', on: true }, 0)
    assert.deepEqual(step.effects, [{ type: 'capture', on: true, engine: 'browser' }])
    step = voiceStep(step.model, { type: 'ready', engine: 'browser' }, 100)
    assert.equal(step.model.state, 'asleep')
    step = voiceStep(step.model, { type: 'error', engine: 'browser', code: 'network', message: 'network' }, 200)
    assert.equal(step.model.state, 'starting')
    assert.equal(step.model.engine, 'node')
    assert.equal(step.model.browserFailed, 'network')
    assert.match(step.model.notice ?? '', /browser's speech recognition failed \(network\)/)
    assert.deepEqual(step.effects, [{ type: 'capture', on: true, engine: 'node' }])
    step = voiceStep(step.model, READY_NODE, 300)
    assert.equal(step.model.state, 'asleep')
    assert.match(describeVoice(step.model).detail, /this node/)
  })

  it('no recogniser on the node: unavailable with what to install; hands-free off; it can be tried again', () => {
    const m = voiceStep(initialVoice(), { type: 'hands-free', on: true }, 0).model
    const step = voiceStep(m, { type: 'error', engine: 'node', code: 'STT_UNAVAILABLE', message: 'this node runs no speech recognition', fix: 'apt-get install pocketsphinx pocketsphinx-en-us' }, 100)
    assert.equal(step.model.state, 'unavailable')
    assert.equal(step.model.handsFree, false)
    assert.deepEqual(types(step.effects), ['capture:off'])
    const view = describeVoice(step.model)
    assert.equal(view.label, 'Voice unavailable')
    assert.match(view.detail, /apt-get install pocketsphinx/)
    // a microphone refused is the same
    assert.equal(voiceStep(m, { type: 'error', engine: 'node', code: 'MIC_DENIED', message: 'refused' }, 100).model.state, 'unavailable')
    // trying again starts over
    const again = voiceStep(step.model, { type: 'ptt', down: true }, 200)
    assert.equal(again.model.state, 'starting')
    assert.equal(again.model.problem, undefined)
  })

  it('a lost connection reopens it where still wanted; passing errors are shown and listening goes on', () => {
    const lost = voiceStep(asleep(), { type: 'error', engine: 'node', code: 'DISCONNECTED', message: 'lost' }, 5000)
    assert.equal(lost.model.state, 'starting')
    assert.deepEqual(types(lost.effects), ['capture:on'])
    const during = voiceStep(speaking(), { type: 'error', engine: 'node', code: 'DISCONNECTED', message: 'lost' }, 6000)
    assert.equal(during.model.state, 'speaking')
    assert.deepEqual(types(during.effects), ['capture:on'])
    assert.deepEqual(types(voiceStep(during.model, READY_NODE, 6100).effects), ['listen:stop'])
    const passing = voiceStep(asleep(), { type: 'error', engine: 'node', code: 'RECOGNIZER_ERROR', message: 'a decode failed' }, 5000)
    assert.equal(passing.model.state, 'asleep')
    assert.equal(passing.model.problem?.code, 'RECOGNIZER_ERROR')
    assert.deepEqual(passing.effects, [])
  })

  it('a sentence that cannot be said is skipped', () => {
    const m = voiceStep(speaking(), { type: 'answer', sentences: ['Two.'] }, 5500).model
    const step = voiceStep(m, { type: 'tts-error', message: 'no audio' }, 6000)
    assert.deepEqual(step.effects, [{ type: 'say', text: 'Two.' }])
    assert.equal(step.model.problem?.code, 'TTS_FAILED')
  })

  it('the indicator always has an icon and a label, for every state', () => {
    const models = [initialVoice(), voiceStep(initialVoice(), { type: 'hands-free', on: true }, 0).model, asleep(),
      run(asleep(), [{ type: 'wake' }]).model, run(asleep(), [{ type: 'wake' }, { type: 'partial', mode: 'vision' }]).model, speaking()]
    const labels = models.map(m => describeVoice(m))
    for (const v of labels) assert.ok(v.icon !== undefined && v.label !== '' && v.detail !== '')
    assert.deepEqual(labels.map(v => v.label), ['Voice off', 'Starting…', 'Listening', 'Awake', 'Vision', 'Speaking'])
  })

  it('speaks with espeak-ng\'s English where the mesh has it, else any speak model, else none', () => {
    const model = (name: string, kinds: string[]): CatalogModel => ({ name, kinds: kinds as CatalogModel['kinds'], vision: false, providers: [] })
    assert.equal(pickSpeakModel([model('llama3.2:1b', ['chat']), model('espeak-ng:de', ['speak']), model('espeak-ng:en', ['speak'])]), 'espeak-ng:en')
    assert.equal(pickSpeakModel([model('tts-1', ['speak'])]), 'tts-1')
    assert.equal(pickSpeakModel([model('llama3.2:1b', ['chat'])]), undefined)
  })
})

describe('ui: voice text', () => {
  function stream (text: string, pieces: number[]): string[] {
    const s = new SentenceSplitter()
    const out: string[] = []
    let at = 0
    for (const n of pieces) {
      out.push(...s.push(text.slice(at, at + n)))
      at += n
    }
    out.push(...s.push(text.slice(at)), ...s.flush())
    return out
  }

  it('cuts streamed text into sentences as soon as each is complete', () => {
    const s = new SentenceSplitter()
    assert.deepEqual(s.push('The realm is'), [])
    assert.deepEqual(s.push(' a mesh. It'), ['The realm is a mesh.'])
    assert.deepEqual(s.push(' shares compute! Does'), ['It shares compute!'])
    assert.deepEqual(s.push(' it?'), [], 'a sentence is complete when the space after it has come')
    assert.deepEqual(s.push(' Yes'), ['Does it?'])
    assert.deepEqual(s.flush(), ['Yes'])
  })

  it('the same sentences whatever the token boundaries', () => {
    const text = 'Dr. Smith paid 3.50 credits, i.e. a little. He said "fine." Then: done… Next line\n- a list item\n- another one. Really?'
    const whole = stream(text, [])
    assert.deepEqual(whole, ['Dr. Smith paid 3.50 credits, i.e. a little.', 'He said "fine."', 'Then: done…', 'Next line', 'a list item', 'another one.', 'Really?'])
    for (const size of [1, 2, 3, 5, 7, 13]) {
      const pieces = Array.from({ length: Math.ceil(text.length / size) }, () => size)
      assert.deepEqual(stream(text, pieces), whole, `pieces of ${size}`)
    }
  })

  it('reads Markdown as text: no markup, no code blocks, links by their text', () => {
    const md = '# Title\n\nSome **bold** and `code` and [a link](https://x.example).\n\n```js\nconsole.log(1)\n```\n\n1. First item. Second sentence.\n2. Next\n\n---\n| a | b |\nSee https://example.com for more.'
    assert.deepEqual(stream(md, []), ['Title', 'Some bold and code and a link.', 'First item.', 'Second sentence.', 'Next', 'a b', 'See a link for more.'])
    assert.equal(speakable('***'), '')
    assert.equal(speakable('- '), '')
    assert.equal(speakable('<b>hi</b> there'), 'hi there')
  })

  it('cuts a run-on sentence at a comma or a space', () => {
    const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ') + ', and more words to finish it.'
    const parts = stream(long, [])
    assert.ok(parts.length >= 2)
    for (const p of parts) assert.ok(p.length <= MAX_SENTENCE_CHARS, p)
    assert.equal(parts.join(' '), long)
  })

  it('the answer reader: tokens → sentences; a restart does not read anything twice; the final text fills in', () => {
    const r = new AnswerReader()
    assert.deepEqual(r.token('One. Two'), ['One.'])
    r.restart()
    assert.deepEqual(r.token('One. Two. Three'), ['Two.'])
    assert.deepEqual(r.done(), ['Three'])
    // a done whose text differs from the tokens (no tokens streamed)
    const q = new AnswerReader()
    assert.deepEqual(q.done('Whole answer. In two sentences.'), ['Whole answer.', 'In two sentences.'])
    const p = new AnswerReader()
    assert.deepEqual(p.token('First. Sec'), ['First.'])
    assert.deepEqual(p.done('First. Second.'), ['Second.'])
  })

  it('transcripts of the browser\'s recogniser: the wake word, a mode, a prompt', () => {
    assert.deepEqual(parseTranscript('Computer chat what is the realm', 'wake'), { wake: true, mode: 'chat', prompt: 'what is the realm' })
    assert.deepEqual(parseTranscript('what is the realm', 'wake'), {})
    assert.deepEqual(parseTranscript('imagine', 'mode'), { mode: 'imagine' })
    assert.deepEqual(parseTranscript('hello there', 'mode'), {})
    assert.deepEqual(parseTranscript('a red boat', 'prompt'), { prompt: 'a red boat' })
    assert.deepEqual(readTranscript('hey computer', 'wake'), { events: [{ type: 'wake' }], expect: 'mode' })
    assert.deepEqual(readTranscript('Vision.', 'mode'), { events: [{ type: 'partial', mode: 'vision' }], expect: 'prompt' })
    assert.deepEqual(readTranscript('what is this', 'prompt'), { events: [{ type: 'result', prompt: 'what is this' }], expect: 'wake' })
    assert.deepEqual(readTranscript('computer chat hi', 'wake').events.map(e => e.type), ['wake', 'partial', 'result'])
    assert.deepEqual(readTranscript('banana', 'mode'), { events: [{ type: 'sleep', reason: 'not-understood' }], expect: 'wake' })
    assert.deepEqual(readTranscript('nothing here', 'wake'), { events: [], expect: 'wake' })
    assert.deepEqual(parseDictation('imagine a red boat'), { mode: 'imagine', prompt: 'a red boat' })
    assert.deepEqual(parseDictation('what is the realm'), { prompt: 'what is the realm' })
  })

  it('phrases for the node\'s recogniser: suggestions, then recent prompts, each once, within its limits', () => {
    const phrases = voicePhrases(['What is the realm', 'tell me  a joke.', 'x'.repeat(300), 'a red boat'])
    assert.deepEqual(phrases.slice(0, SUGGESTED_PROMPTS.length), [...SUGGESTED_PROMPTS])
    assert.deepEqual(phrases.slice(SUGGESTED_PROMPTS.length), ['a red boat'])
    assert.equal(voicePhrases(Array.from({ length: 500 }, (_, i) => `prompt ${i}`)).length, 100)
  })
})

describe('ui: speech socket messages', () => {
  it('takes the node\'s events and refuses anything else', () => {
    assert.deepEqual(parseSpeechMessage('{"type":"hello","stt":true,"wakeWord":"computer","limits":{"maxMessageBytes":65536}}'), { type: 'hello', stt: true, wakeWord: 'computer', maxMessageBytes: 65536 })
    assert.deepEqual(parseSpeechMessage('{"type":"partial","mode":"chat","text":""}'), { type: 'partial', mode: 'chat' })
    assert.deepEqual(parseSpeechMessage('{"type":"result","mode":"chat","prompt":"What is the realm?","heard":"what is the real"}'), { type: 'result', mode: 'chat', prompt: 'What is the realm?', heard: 'what is the real', ptt: false })
    assert.deepEqual(parseSpeechMessage('{"type":"error","code":"STT_UNAVAILABLE","message":"no","fix":"apt-get install pocketsphinx"}'), { type: 'error', code: 'STT_UNAVAILABLE', message: 'no', fix: 'apt-get install pocketsphinx' })
    assert.equal(parseSpeechMessage('{"type":"partial","mode":"rm -rf"}'), undefined)
    assert.equal(parseSpeechMessage('{"type":"result"}'), undefined)
    assert.equal(parseSpeechMessage('not json'), undefined)
    assert.equal(parseSpeechMessage('{"type":"__proto__"}'), undefined)
  })
})

describe('ui: PCM helpers', () => {
  it('float → 16-bit, clipped; little-endian bytes; channels mixed', () => {
    assert.deepEqual([...floatToInt16(Float32Array.from([0, 1, -1, 0.5, 2, -2]))], [0, 32767, -32768, 16384, 32767, -32768])
    assert.deepEqual([...int16ToLeBytes(Int16Array.from([1, -2, 0x1234]))], [1, 0, 0xfe, 0xff, 0x34, 0x12])
    assert.deepEqual([...downmix([Float32Array.from([1, 0]), Float32Array.from([0, 1])])], [0.5, 0.5])
    assert.equal(levelDb(new Float32Array(160)), -100)
    assert.ok(Math.abs(levelDb(new Float32Array(160).fill(0.5)) - (-6.02)) < 0.01)
  })

  it('chunks of 100 ms at 16 kHz (3200 bytes), the rest on flush', () => {
    const c = new PcmChunker()
    assert.deepEqual(c.push(new Int16Array(1000)), [])
    const out = c.push(new Int16Array(3000))
    assert.deepEqual(out.map(b => b.byteLength), [3200, 3200])
    assert.equal(c.flush()?.byteLength, 1600, "800 samples left")
    assert.equal(c.flush(), undefined)
  })

  /** A sine at `hz`, `seconds` long, at `rate` */
  function sine (hz: number, rate: number, seconds: number): Float32Array {
    return Float32Array.from({ length: Math.round(rate * seconds) }, (_, i) => 0.5 * Math.sin(2 * Math.PI * hz * i / rate))
  }
  function zeroCrossings (x: Float32Array): number {
    let n = 0
    for (let i = 1; i < x.length; i++) if ((x[i - 1]! < 0) !== (x[i]! < 0)) n++
    return n
  }

  it('resamples 48 kHz to 16 kHz block by block: length, pitch and level kept; above 8 kHz filtered out', () => {
    const input = sine(440, 48_000, 1)
    const r = new Resampler(48_000)
    const blocks: Float32Array[] = []
    // odd block sizes: the position carries across blocks
    for (let i = 0; i < input.length; i += 1234) blocks.push(r.process(input.subarray(i, i + 1234)))
    const out = Float32Array.from(blocks.flatMap(b => [...b]))
    assert.ok(Math.abs(out.length - 16_000) <= 1, String(out.length))
    // 440 Hz: 880 zero crossings a second
    assert.ok(Math.abs(zeroCrossings(out) - 880) <= 2, String(zeroCrossings(out)))
    const tail = out.subarray(2000)
    assert.ok(Math.abs(levelDb(tail) - levelDb(input.subarray(6000))) < 0.5, `${levelDb(tail)} vs ${levelDb(input)}`)
    // 12 kHz cannot be represented at 16 kHz: it must not fold back as a loud 4 kHz tone
    const high = new Resampler(48_000).process(sine(12_000, 48_000, 0.5))
    assert.ok(levelDb(high.subarray(1000)) < levelDb(input) - 20, String(levelDb(high)))
    // the same rate: untouched
    const same = Float32Array.from([0.1, 0.2])
    assert.equal(new Resampler(16_000).process(same), same)
    // 44.1 kHz (a common context rate)
    assert.ok(Math.abs(new Resampler(44_100).process(sine(440, 44_100, 1)).length - 16_000) <= 1)
  })
})
