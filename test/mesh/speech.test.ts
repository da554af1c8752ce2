/**
 * Offline speech across the mesh: node C runs the espeak-ng (tts) and pocketsphinx (stt)
 * workers; through node A, speech is made and transcribed back to the words, with the realm API
 * and the OpenAI audio routes.
 */
import assert from 'node:assert/strict'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { checkSpeechEngines } from '../../node/speech/index.js'
import type { RealmNode } from '../../node/node.js'

const PHRASES = ['what is the realm', 'computer', 'open the pod bay doors', 'chat', 'imagine a red house']

describe('mesh: offline speech (espeak-ng, pocketsphinx)', function () {
  this.timeout(120_000)
  const cleanup = new Cleanup()
  let a: RealmNode, c: RealmNode

  before(async function () {
    const engines = await checkSpeechEngines()
    const missing = Object.entries(engines).filter(([, e]) => !e.ok).map(([name, e]) => `${name}: ${e.fix ?? e.error ?? 'missing'}`)
    if (missing.length > 0) {
      if (process.env.CI === 'true') throw new Error(`speech engines missing: ${missing.join('; ')}`)
      this.skip()
    }
    a = cleanup.node(await startTestNode())
    c = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: ['stt=pocketsphinx', 'tts=espeak-ng'] }))
    await waitFor(() => a.models().some(m => m.name === 'pocketsphinx:en-us') && a.models().some(m => m.kinds.includes('speak')), 'the speech models on A')
  })
  after(async () => { await cleanup.run() })

  it('speaks through A with C\'s espeak-ng and transcribes it back with C\'s pocketsphinx', async () => {
    const voice = 'espeak-ng:en'
    const spoken = a.tasks.submit({ kind: 'speak', model: voice, input: { text: 'what is the realm' } }, { requester: 'speech-test' })
    const audio = (await spoken.result).audio
    assert.ok(audio != null)
    assert.equal(audio.mime, 'audio/wav')
    const wav = Buffer.from(audio.data, 'base64')
    assert.equal(wav.subarray(0, 4).toString('ascii'), 'RIFF')
    const rec = await a.tasks.get(spoken.id)
    assert.equal(rec?.peerId, c.peerId)

    const heard = a.tasks.submit({ kind: 'transcribe', model: 'pocketsphinx:en-us', input: { audio: audio.data, mime: 'audio/wav', phrases: PHRASES } }, { requester: 'speech-test' })
    assert.equal((await heard.result).text, 'what is the realm')
  })

  it('the OpenAI audio routes on A: /v1/audio/speech then /v1/audio/transcriptions', async () => {
    const voice = 'espeak-ng:en'
    const speech = await fetch(a.url + '/v1/audio/speech', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: voice, voice: 'alloy', input: 'open the pod bay doors', response_format: 'wav' })
    })
    assert.equal(speech.status, 200, await speech.clone().text())
    const wav = Buffer.from(await speech.arrayBuffer())
    assert.equal(wav.subarray(0, 4).toString('ascii'), 'RIFF')

    const form = new FormData()
    form.append('model', 'pocketsphinx:en-us')
    form.append('file', new Blob([wav], { type: 'audio/wav' }), 'speech.wav')
    const res = await fetch(a.url + '/v1/audio/transcriptions', { method: 'POST', body: form })
    assert.equal(res.status, 200)
    const body = await res.json()
    assert.equal(typeof body.text, 'string')
    // free dictation (no grammar on this route) is poor on synthetic speech: some words come back
    assert.ok(body.text.length > 0, 'some words recognised')
  })
})
