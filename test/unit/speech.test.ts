/**
 * Offline speech: espeak-ng (tts) and pocketsphinx (stt) workers, the engine checks, and the
 * streaming voice session. Audio is made at test time by espeak-ng (deterministic) and decoded
 * through the same path a client's upload takes.
 *
 * With CI=true a missing engine fails the tests that need it; otherwise they are skipped with
 * a message naming what to install.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { createEventBus } from '../../node/events/index.js'
import type { RealmEvent } from '../../node/events/index.js'
import {
  MAX_AUDIO_BYTES, MAX_SPEAK_CHARS, SpeechInputError, UnsupportedSpeechTargetError, checkSpeechEngines, createSpeechSession, createSpeechWorker, encodeWav, parseWav, resolveEngines,
  sniffAudio
} from '../../node/speech/index.js'
import type { SpeechEnginesReport, SpeechSession, SpeechSessionEvent, SpeechWorkerInit } from '../../node/speech/index.js'
import { decodeToPcm16k } from '../../node/speech/audio.js'
import { jsgfGrammar, phraseWords, preparePhrases } from '../../node/speech/grammar.js'
import type { Worker } from '../../node/workers/types.js'
import type { TaskOutput, WorkerEvent } from '../../protocol/task.js'

const run = promisify(execFile)
const CI = process.env.CI === 'true' || process.env.CI === '1'

/** Phrases of the command grammar in the round trips (a realistic handful, not just the answer) */
const PHRASES = ['what is the realm', 'hello there how are you', 'open the pod bay doors', 'imagine a red boat on the sea', 'can you hear me now', 'tell me a joke']

let report: SpeechEnginesReport | undefined

/** Skips (or, with CI=true, fails) a test whose engines are missing, naming what to install */
function need (ctx: Mocha.Context, ...engines: Array<keyof SpeechEnginesReport>): void {
  const missing = engines.filter(e => report?.[e].ok !== true)
  if (missing.length === 0) return
  const fix = missing.map(e => report?.[e].error ?? `${e} not checked`).join('; ')
  if (CI) throw new Error(`speech engine missing under CI=true: ${fix}`)
  console.warn(`    skipped: speech engine missing — ${fix}`)
  ctx.skip()
}

function context (events: WorkerEvent[] = [], signal = new AbortController().signal): { signal: AbortSignal, emit: (e: WorkerEvent) => void } {
  return { signal, emit: e => { events.push(e) } }
}

let taskSeq = 0
function taskId (): string {
  return `speech-task-${String(++taskSeq).padStart(4, '0')}`
}

async function speak (tts: Worker, text: string, input: Record<string, unknown> = {}, events: WorkerEvent[] = []): Promise<TaskOutput> {
  return await tts.run({ id: taskId(), kind: 'speak', model: 'espeak-ng:en', input: { text, ...input } }, context(events))
}

async function transcribe (stt: Worker, audio: string, input: Record<string, unknown> = {}, events: WorkerEvent[] = [], signal?: AbortSignal): Promise<TaskOutput> {
  return await stt.run({ id: taskId(), kind: 'transcribe', model: 'pocketsphinx:en-us', input: { audio, mime: 'audio/wav', ...input } }, context(events, signal))
}

/** espeak-ng's WAV of `text`, base64, through the tts worker */
async function said (tts: Worker, text: string): Promise<string> {
  const out = await speak(tts, text)
  assert.ok(out.audio !== undefined)
  return out.audio.data
}

/** 16 kHz mono PCM of espeak-ng saying `text` (the session's input format) */
async function pcmOf (tts: Worker, text: string): Promise<Buffer> {
  return await decodeToPcm16k(Buffer.from(await said(tts, text), 'base64'), 'audio/wav', resolveEngines(), { timeoutMs: 30_000 })
}

function silence (seconds: number): Buffer {
  return Buffer.alloc(Math.round(seconds * 16_000) * 2)
}

/** Children of this process running `name` (from /proc; comm is cut to 15 characters) */
function childPids (name: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const close = stat.lastIndexOf(')')
      const comm = stat.slice(stat.indexOf('(') + 1, close)
      const ppid = Number(stat.slice(close + 2).split(' ')[1])
      if (ppid === process.pid && comm === name.slice(0, 15)) pids.push(Number(entry))
    } catch {
      // the process ended while we looked
    }
  }
  return pids
}

async function rejectsWith (promise: Promise<unknown>, name: string, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: any) => {
    assert.equal(err.name, name, `${String(err.name)}: ${String(err.message)}`)
    assert.equal(err.code, code)
    if (message !== undefined) assert.match(err.message, message)
    return true
  })
}

describe('speech', function () {
  // engines are slow to load their models on a busy machine: a liveness bound, not a speed goal
  this.timeout(120_000)

  before(async () => {
    report = await checkSpeechEngines()
  })

  describe('wav', () => {
    it('reads a streamed WAV whose size fields are placeholders', () => {
      const pcm = Buffer.alloc(1000, 1)
      const wav = encodeWav(pcm, 22_050)
      wav.writeUInt32LE(0x7ffff024, 4)
      wav.writeUInt32LE(0x7ffff000, 40)
      const info = parseWav(wav)
      assert.deepEqual([info.format, info.channels, info.sampleRate, info.bitsPerSample, info.data.length], [1, 1, 22_050, 16, 1000])
    })

    it('rejects what is not a WAV with INVALID_TASK', () => {
      assert.throws(() => parseWav(Buffer.from('OggS0000000000000000')), (err: any) => err.name === 'SpeechInputError' && err.code === 'INVALID_TASK')
    })

    it('tells containers apart by their magic bytes', () => {
      assert.equal(sniffAudio(encodeWav(Buffer.alloc(4), 16_000)), 'wav')
      assert.equal(sniffAudio(Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0, 0, 0, 0, 0, 0, 0, 0])), 'webm')
      assert.equal(sniffAudio(Buffer.from('OggS\0\0\0\0\0\0\0\0')), 'ogg')
      assert.equal(sniffAudio(Buffer.from('ID3\x04\0\0\0\0\0\0\0\0')), 'mp3')
      assert.equal(sniffAudio(Buffer.from('hello world!')), undefined)
    })
  })

  describe('grammar', () => {
    it('reduces phrases to words: letters, digits, apostrophes', () => {
      assert.deepEqual(phraseWords("What's the Realm?!"), ["what's", 'the', 'realm'])
      assert.deepEqual(phraseWords('Café — “naïve” ‘quote’'), ['cafe', 'naive', 'quote'])
      assert.deepEqual(phraseWords('public <x> = a | b; #JSGF'), ['public', 'x', 'a', 'b', 'jsgf'])
      assert.deepEqual(phraseWords('$(rm -rf /) `id`'), ['rm', 'rf', 'id'])
    })

    it('drops words the dictionary does not have, and phrases left empty', () => {
      const dict = new Set(['what', 'is', 'the', 'realm', 'hello'])
      const prepared = preparePhrases(['What is the realm', 'hello zzyzx', 'qwrtp', 'what is THE realm'], dict)
      assert.deepEqual(prepared.phrases, ['what is the realm', 'hello'])
      assert.deepEqual(prepared.dropped.sort(), ['qwrtp', 'zzyzx'])
    })

    it('builds JSGF from words only', () => {
      assert.equal(jsgfGrammar({ phrases: ['what is the realm', 'hello'] }),
        '#JSGF V1.0;\ngrammar realm;\npublic <utterance> = <phrase>;\n<phrase> = what is the realm | hello;\n')
      assert.match(jsgfGrammar({ commands: ['chat'], phrases: ['hello'] }), /public <utterance> = <command> \[<phrase>\] \| <phrase>;\n<command> = chat;/)
      assert.throws(() => jsgfGrammar({}), (err: any) => err.code === 'INVALID_TASK')
    })
  })

  describe('createSpeechWorker', () => {
    it('gives stable ids like the other workers', () => {
      const stt = createSpeechWorker({ backend: 'stt', target: 'pocketsphinx' })
      const tts = createSpeechWorker({ backend: 'tts', target: 'espeak-ng' })
      assert.equal(stt.id, 'stt-' + createHash('sha256').update('pocketsphinx').digest('hex').slice(0, 8))
      assert.equal(tts.id, 'tts-' + createHash('sha256').update('espeak-ng').digest('hex').slice(0, 8))
      assert.equal(stt.backend, 'stt')
      assert.equal(stt.status().state, 'starting')
    })

    it('leaves stt=URL and tts=URL to the openai adapter (UNSUPPORTED_BACKEND)', () => {
      for (const spec of [{ backend: 'stt' as const, target: 'http://127.0.0.1:9001' }, { backend: 'tts' as const, target: 'https://tts.example/v1' }]) {
        assert.throws(() => createSpeechWorker(spec), (err: any) => {
          assert.ok(err instanceof UnsupportedSpeechTargetError)
          assert.equal(err.code, 'UNSUPPORTED_BACKEND')
          assert.ok(!err.message.includes('tts.example'))
          return true
        })
      }
      assert.throws(() => createSpeechWorker({ backend: 'stt', target: 'whisper' }), (err: any) => err.code === 'INVALID_WORKER_SPEC')
    })
  })

  describe('missing engines', () => {
    const FAST: SpeechWorkerInit = { probeIntervalMs: 50, probeTimeoutMs: 2000, backoffBaseMs: 20, backoffMaxMs: 100 }

    it('benches a tts worker at once, naming the package to install', async () => {
      const bus = createEventBus()
      const seen: RealmEvent[] = []
      bus.subscribe(e => { seen.push(e) })
      const tts = createSpeechWorker({ backend: 'tts', target: 'espeak-ng' }, { ...FAST, events: bus, engines: { espeak: '/nonexistent/espeak-ng' } })
      try {
        await tts.start()
        const status = tts.status()
        assert.equal(status.state, 'benched')
        assert.deepEqual(status.models, [])
        assert.match(status.lastError ?? '', /apt-get install espeak-ng/)
        const benched = seen.find(e => e.type === 'worker.benched')
        assert.ok(benched !== undefined)
        assert.equal(benched.id, tts.id)
        await rejectsWith(speak(tts, 'hello'), 'SpeechEngineMissingError', 'BACKEND_UNREACHABLE', /apt-get install espeak-ng/)
      } finally {
        await tts.stop()
      }
    })

    it('benches an stt worker without its binary or its model', async () => {
      const noBinary = createSpeechWorker({ backend: 'stt', target: 'pocketsphinx' }, { ...FAST, engines: { pocketsphinx: '/nonexistent/pocketsphinx_continuous' } })
      const noModel = createSpeechWorker({ backend: 'stt', target: 'pocketsphinx' }, { ...FAST, engines: { modelDir: '/nonexistent/model' } })
      try {
        await noBinary.start()
        assert.equal(noBinary.status().state, 'benched')
        assert.match(noBinary.status().lastError ?? '', /apt-get install pocketsphinx pocketsphinx-en-us/)
        if (report?.pocketsphinx.ok === true) {
          await noModel.start()
          assert.equal(noModel.status().state, 'benched')
          assert.match(noModel.status().lastError ?? '', /apt-get install pocketsphinx-en-us/)
        }
      } finally {
        await noBinary.stop()
        await noModel.stop()
      }
    })

    it('checkSpeechEngines reports what is missing and how to fix it, without throwing', async () => {
      const r = await checkSpeechEngines({ espeak: '/nonexistent/espeak-ng', pocketsphinx: '/nonexistent/ps', ffmpeg: '/nonexistent/ffmpeg', sox: '/nonexistent/sox' })
      assert.deepEqual(Object.values(r).map(c => c.ok), [false, false, false, false])
      assert.equal(r.espeak.fix, 'apt-get install espeak-ng')
      assert.equal(r.pocketsphinx.fix, 'apt-get install pocketsphinx pocketsphinx-en-us')
      assert.equal(r.ffmpeg.fix, 'apt-get install ffmpeg')
      assert.equal(r.sox.fix, 'apt-get install sox')
    })
  })

  describe('input limits and task checks (before any engine runs)', () => {
    const stt = createSpeechWorker({ backend: 'stt', target: 'pocketsphinx' }, { engines: { pocketsphinx: '/nonexistent/ps', ffmpeg: '/nonexistent/ffmpeg' } })
    const tts = createSpeechWorker({ backend: 'tts', target: 'espeak-ng' }, { engines: { espeak: '/nonexistent/espeak-ng' } })

    it('rejects audio over 10 MiB', async () => {
      const audio = Buffer.alloc(MAX_AUDIO_BYTES + 3).toString('base64')
      await rejectsWith(transcribe(stt, audio), 'SpeechTooLargeError', 'INVALID_TASK', /audio is over the limit/)
    })

    it('rejects text over 20,000 characters', async () => {
      await rejectsWith(speak(tts, 'a'.repeat(MAX_SPEAK_CHARS + 1)), 'SpeechTooLargeError', 'INVALID_TASK', /text is over the limit of 20000 characters/)
    })

    it('rejects a task of the other kind, a malformed input, an unknown model', async () => {
      await rejectsWith(stt.run({ id: taskId(), kind: 'speak', model: 'espeak-ng:en', input: { text: 'hi' } }, context()), 'SpeechInputError', 'INVALID_TASK')
      await rejectsWith(transcribe(stt, 'not base64!'), 'SpeechInputError', 'INVALID_TASK', /audio/)
      await rejectsWith(stt.run({ id: taskId(), kind: 'transcribe', model: 'whisper-1', input: { audio: 'AAAA' } }, context()), 'SpeechModelNotFoundError', 'MODEL_NOT_FOUND')
      await rejectsWith(tts.run({ id: taskId(), kind: 'speak', model: 'tts-1', input: { text: 'hi' } }, context()), 'SpeechModelNotFoundError', 'MODEL_NOT_FOUND')
      await rejectsWith(transcribe(stt, 'AAAA', { language: 'de' }), 'SpeechInputError', 'INVALID_TASK', /English/)
    })

    it('rejects a run whose signal is already aborted with CANCELLED', async () => {
      const controller = new AbortController()
      controller.abort()
      await rejectsWith(transcribe(stt, 'AAAA', {}, [], controller.signal), 'SpeechCancelledError', 'CANCELLED')
    })
  })

  describe('with the engines', () => {
    let tts: Worker
    let stt: Worker

    before(async () => {
      tts = createSpeechWorker({ backend: 'tts', target: 'espeak-ng' })
      stt = createSpeechWorker({ backend: 'stt', target: 'pocketsphinx' })
      await Promise.all([tts.start(), stt.start()])
    })

    after(async () => {
      await Promise.all([tts?.stop(), stt?.stop()])
    })

    it('checkSpeechEngines finds every engine and its version', async function () {
      need(this, 'espeak', 'pocketsphinx', 'ffmpeg', 'sox')
      assert.match(report?.espeak.version ?? '', /^\d+\.\d+/)
      assert.match(report?.ffmpeg.version ?? '', /^\d/)
      assert.match(report?.sox.version ?? '', /^\d+\.\d+/)
    })

    it('advertises pocketsphinx:en-us and espeak-ng voices', async function () {
      need(this, 'espeak', 'pocketsphinx')
      assert.equal(stt.status().state, 'ok')
      assert.deepEqual(stt.status().models, [{ name: 'pocketsphinx:en-us', kinds: ['transcribe'] }])
      assert.deepEqual(stt.status().kinds, ['transcribe'])
      const voices = tts.status().models.map(m => m.name)
      assert.ok(voices.includes('espeak-ng:en'), voices.join(', '))
      assert.ok(tts.status().models.every(m => m.kinds.join() === 'speak'))
    })

    it('speaks a valid 16-bit WAV of plausible length and emits it', async function () {
      need(this, 'espeak')
      const events: WorkerEvent[] = []
      const out = await speak(tts, 'what is the realm', {}, events)
      assert.equal(out.audio?.mime, 'audio/wav')
      const wav = Buffer.from(out.audio?.data ?? '', 'base64')
      assert.equal(wav.toString('latin1', 0, 4), 'RIFF')
      assert.equal(wav.readUInt32LE(4), wav.length - 8, 'RIFF size is the real size')
      const info = parseWav(wav)
      assert.deepEqual([info.format, info.channels, info.bitsPerSample], [1, 1, 16])
      const seconds = info.data.length / 2 / info.sampleRate
      assert.ok(seconds > 0.5 && seconds < 5, `${seconds} s`)
      assert.equal(out.usage?.units, Math.round(seconds * 100) / 100)
      assert.deepEqual(events, [{ type: 'audio', audio: out.audio }])
    })

    it('maps speed to espeak-ng words per minute and mp3 through ffmpeg', async function () {
      need(this, 'espeak', 'ffmpeg')
      const normal = await speak(tts, 'the realm is a mesh of equal nodes')
      const fast = await speak(tts, 'the realm is a mesh of equal nodes', { speed: 2 })
      assert.ok((fast.usage?.units ?? 0) < (normal.usage?.units ?? 0) * 0.75, `${String(fast.usage?.units)} vs ${String(normal.usage?.units)}`)
      const mp3 = await speak(tts, 'hello', { format: 'mp3' })
      assert.equal(mp3.audio?.mime, 'audio/mpeg')
      assert.equal(sniffAudio(Buffer.from(mp3.audio?.data ?? '', 'base64')), 'mp3')
    })

    it('speaks shell syntax, quotes, newlines and a leading "-" literally', async function () {
      need(this, 'espeak')
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'speech-test-'))
      try {
        const marker = path.join(dir, 'pwned')
        const text = `--version "double" 'single' $(touch ${marker}) \`touch ${marker}\` ; touch ${marker} | cat\n-v de\n--stdout`
        const out = await speak(tts, text)
        assert.ok(!existsSync(marker), 'nothing was run')
        const wav = parseWav(Buffer.from(out.audio?.data ?? '', 'base64'))
        // the same text read by espeak-ng from a file: the same speech, so nothing was taken as an option
        const file = path.join(dir, 'text.txt')
        await fs.writeFile(file, text)
        const reference = path.join(dir, 'reference.wav')
        await run('espeak-ng', ['-v', 'en', '-s', '175', '-b', '1', '-w', reference, '-f', file])
        assert.ok(parseWav(await fs.readFile(reference)).data.equals(wav.data), 'spoken exactly as from a file')
        assert.ok((out.usage?.units ?? 0) > 3, 'the whole text was spoken')
      } finally {
        await fs.rm(dir, { recursive: true, force: true })
      }
    })

    it('rejects a voice espeak-ng does not have with INVALID_TASK', async function () {
      need(this, 'espeak')
      await rejectsWith(speak(tts, 'hello', { voice: 'xx-nosuch' }), 'SpeechInputError', 'INVALID_TASK', /no voice/)
      await rejectsWith(speak(tts, 'hello', { voice: '--help' }), 'SpeechInputError', 'INVALID_TASK', /not an espeak-ng voice name/)
      // an OpenAI voice name speaks with the model's voice
      assert.equal((await speak(tts, 'hello', { voice: 'alloy' })).audio?.mime, 'audio/wav')
    })

    it('round trip: espeak-ng says a phrase, the grammar recognises exactly it', async function () {
      need(this, 'espeak', 'pocketsphinx', 'ffmpeg')
      for (const phrase of ['what is the realm', 'open the pod bay doors', 'tell me a joke']) {
        const events: WorkerEvent[] = []
        const out = await transcribe(stt, await said(tts, phrase), { phrases: PHRASES }, events)
        assert.equal(out.text, phrase)
        assert.deepEqual(events, [{ type: 'token', text: phrase }])
        assert.ok((out.usage?.units ?? 0) > 0.5)
      }
    })

    it('free dictation returns some text', async function () {
      need(this, 'espeak', 'pocketsphinx', 'ffmpeg')
      const events: WorkerEvent[] = []
      const out = await transcribe(stt, await said(tts, 'what is the realm'), {}, events)
      assert.ok((out.text ?? '').trim().length > 0, 'some words')
      assert.equal(events.map(e => e.type === 'token' ? e.text : '').join(''), out.text)
    })

    it('keyword spotting: one phrase asks "was it said?"', async function () {
      need(this, 'espeak', 'pocketsphinx', 'ffmpeg')
      const heard = await transcribe(stt, await said(tts, 'computer chat what is the realm'), { phrases: ['computer'] })
      assert.equal(heard.text, 'computer')
      const notHeard = await transcribe(stt, await said(tts, 'hello there how are you'), { phrases: ['computer'] })
      assert.equal(notHeard.text, '')
      await rejectsWith(transcribe(stt, await said(tts, 'hello'), { phrases: ['zzyzxq'] }), 'SpeechInputError', 'INVALID_TASK', /does not know: zzyzxq/)
    })

    it('decodes webm/opus (what browsers record) through ffmpeg', async function () {
      need(this, 'espeak', 'pocketsphinx', 'ffmpeg')
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'speech-test-'))
      try {
        await fs.writeFile(path.join(dir, 'in.wav'), Buffer.from(await said(tts, 'what is the realm'), 'base64'))
        await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', path.join(dir, 'in.wav'), '-ar', '48000', '-c:a', 'libopus', '-b:a', '32k', path.join(dir, 'out.webm')])
        const webm = await fs.readFile(path.join(dir, 'out.webm'))
        assert.equal(sniffAudio(webm), 'webm')
        const out = await transcribe(stt, webm.toString('base64'), { mime: 'audio/webm;codecs=opus', phrases: PHRASES })
        assert.equal(out.text, 'what is the realm')
      } finally {
        await fs.rm(dir, { recursive: true, force: true })
      }
    })

    it('rejects audio ffmpeg cannot decode with INVALID_TASK', async function () {
      need(this, 'pocketsphinx', 'ffmpeg')
      await rejectsWith(transcribe(stt, Buffer.from('this is not audio at all, just text').toString('base64'), { mime: 'audio/webm' }), 'SpeechInputError', 'INVALID_TASK', /could not be decoded/)
    })

    it('cancelling a run kills its engine process', async function () {
      need(this, 'espeak', 'pocketsphinx', 'ffmpeg')
      const long = await said(tts, 'the realm is a mesh of equal nodes. '.repeat(12))
      const controller = new AbortController()
      const running = transcribe(stt, long, {}, [], controller.signal)
      let pid: number | undefined
      const deadline = Date.now() + 60_000
      while (pid === undefined && Date.now() < deadline) {
        pid = childPids('pocketsphinx_continuous')[0]
        if (pid === undefined) await new Promise(resolve => setTimeout(resolve, 5))
      }
      assert.ok(pid !== undefined, 'pocketsphinx started')
      controller.abort()
      await rejectsWith(running, 'SpeechCancelledError', 'CANCELLED')
      assert.ok(!existsSync(`/proc/${pid}`), 'the process is gone')
      assert.deepEqual(childPids('pocketsphinx_continuous'), [])
    })

    describe('SpeechSession', () => {
      /** pushes `pcm` in chunks of odd sizes (frames straddle chunks), collects events until end() */
      async function feed (session: SpeechSession, pcm: Buffer, chunk = 777): Promise<SpeechSessionEvent[]> {
        const events: SpeechSessionEvent[] = []
        session.on(e => { events.push(e) })
        for (let i = 0; i < pcm.length; i += chunk) session.push(pcm.subarray(i, i + chunk))
        await session.end()
        return events
      }

      function stream (...parts: Buffer[]): Buffer {
        return Buffer.concat([silence(1), ...parts.flatMap(p => [p, silence(1.2)]), silence(0.5)])
      }

      it('hears the wake word in chunked audio, then the command and its prompt said in one breath', async function () {
        need(this, 'espeak', 'pocketsphinx', 'ffmpeg')
        const session = await createSpeechSession({ phrases: PHRASES })
        const pcm = stream(await pcmOf(tts, 'computer chat what is the realm'))
        // a WAV header in front, as a client may send
        const events = await feed(session, Buffer.concat([encodeWav(Buffer.alloc(0), 16_000).subarray(0, 44), pcm]))
        assert.deepEqual(events.map(e => e.type), ['wake', 'result'])
        const [wake, result] = events
        assert.ok(wake?.type === 'wake' && wake.word === 'computer' && wake.start >= 0.8 && wake.end > wake.start && wake.end < 2.2, JSON.stringify(wake))
        assert.ok(result?.type === 'result')
        assert.equal(result.command, 'chat')
        assert.equal(result.text, 'what is the realm')
        assert.equal(session.state, 'asleep')
        session.close()
      })

      it('wakes, takes the command, then the prompt, said one after another', async function () {
        need(this, 'espeak', 'pocketsphinx', 'ffmpeg')
        const session = await createSpeechSession({ phrases: PHRASES })
        const pcm = stream(await pcmOf(tts, 'computer'), await pcmOf(tts, 'imagine'), await pcmOf(tts, 'imagine a red boat on the sea'))
        const events = await feed(session, pcm, 4096)
        assert.deepEqual(events.map(e => e.type), ['wake', 'partial', 'result'])
        assert.deepEqual(events[1], { type: 'partial', command: 'imagine', text: '' })
        const result = events[2]
        assert.ok(result?.type === 'result' && result.command === 'imagine' && result.text === 'imagine a red boat on the sea', JSON.stringify(result))
      })

      it('free dictation of the prompt when no phrases are given', async function () {
        need(this, 'espeak', 'pocketsphinx', 'ffmpeg')
        const session = await createSpeechSession()
        const events = await feed(session, stream(await pcmOf(tts, 'computer chat what is the realm')))
        const result = events.find(e => e.type === 'result')
        assert.ok(result?.type === 'result' && result.command === 'chat' && result.text.length > 0, JSON.stringify(events))
      })

      it('stays asleep without the wake word, and falls asleep when nothing follows it', async function () {
        need(this, 'espeak', 'pocketsphinx', 'ffmpeg')
        const asleep = await createSpeechSession({ phrases: PHRASES })
        assert.deepEqual(await feed(asleep, stream(await pcmOf(tts, 'hello there how are you'), await pcmOf(tts, 'what is the realm'))), [])
        assert.equal(asleep.state, 'asleep')

        const drowsy = await createSpeechSession({ phrases: PHRASES, awakeTimeoutMs: 2000 })
        const events = await feed(drowsy, Buffer.concat([stream(await pcmOf(tts, 'computer')), silence(3)]))
        assert.deepEqual(events.map(e => e.type === 'sleep' ? `sleep:${e.reason}` : e.type), ['wake', 'sleep:timeout'])
        assert.equal(drowsy.state, 'asleep')
      })

      it('refuses audio it cannot take and words it cannot hear', async function () {
        need(this, 'pocketsphinx')
        const session = await createSpeechSession()
        assert.throws(() => session.push(encodeWav(Buffer.alloc(64), 44_100)), (err: any) => err instanceof SpeechInputError && /16 kHz mono/.test(err.message))
        session.close()
        assert.throws(() => session.push(Buffer.alloc(640)), (err: any) => err.code === 'INVALID_TASK')
        await assert.rejects(createSpeechSession({ wakeWord: 'zzyzxq' }), (err: any) => err.code === 'INVALID_TASK' && /zzyzxq/.test(err.message))
      })
    })
  })
})
