/**
 * `GET /realm/speech` (node/gateway/speech-ws.ts): espeak-ng recordings made at test time (then
 * resampled to 16 kHz mono by sox) streamed in chunks to a real node with `stt=pocketsphinx`
 * → wake, the mode, the prompt; push to talk; "stop"; a node without recognition says what to
 * install; the gateway's Origin/Host checks; and the socket's limits with a stand-in session.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import { Cleanup, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { checkSpeechEngines, type SpeechSessionEvent } from '../../node/speech/index.js'
import {
  SPEECH_CLOSE_IDLE, SPEECH_CLOSE_REPLACED, SPEECH_CLOSE_TOO_LONG, SPEECH_CLOSE_UNAVAILABLE, SpeechSocket, editDistance, leadingMode, localSttStatus, snapToPhrase,
  type SpeechSessionLike, type SpeechSocketInit
} from '../../node/gateway/speech-ws.js'
import type { RealmNode } from '../../node/node.js'
import type { WorkerAd } from '../../protocol/presence.js'

const CI = process.env.CI === 'true'
/** Liveness bound for a recognition (loading pocketsphinx's model alone took 1.5–7 s here) */
const HEARD_DEADLINE_MS = 60_000
const PHRASES = ['what is the realm', 'tell me a joke']

interface Msg { type: string, [k: string]: any }

/** A client of the speech socket that keeps every message */
class Client {
  readonly messages: Msg[] = []
  closed?: { code: number, reason: string }
  private constructor (readonly ws: WebSocket) {
    ws.on('message', (d, isBinary) => { if (!isBinary) this.messages.push(JSON.parse(String(d))) })
    ws.on('close', (code, reason) => { this.closed = { code, reason: String(reason) } })
  }

  static async open (url: string, headers: Record<string, string> = {}): Promise<Client> {
    const ws = new WebSocket(url, { headers })
    const client = new Client(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => { resolve() })
      ws.once('error', reject)
      ws.once('unexpected-response', (_req, res) => { reject(new Error(`HTTP ${String(res.statusCode)}`)) })
    })
    return client
  }

  send (msg: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(msg))
  }

  /** PCM in 100 ms chunks at about twice real time (as a browser would, a little faster) */
  async stream (pcm: Buffer): Promise<void> {
    for (let i = 0; i < pcm.length; i += 3200) {
      this.ws.send(pcm.subarray(i, i + 3200))
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  async next (type: string, deadline = HEARD_DEADLINE_MS): Promise<Msg> {
    return await waitFor(() => this.messages.find(m => m.type === type), `a "${type}" message (got ${this.messages.map(m => m.type).join(', ')})`, deadline)
  }

  types (): string[] {
    return this.messages.map(m => m.type).filter(t => t !== 'hello' && t !== 'listening')
  }

  close (): void {
    this.ws.close()
  }
}

/** Why an upgrade is refused: its HTTP status */
async function refusedStatus (url: string, headers: Record<string, string>): Promise<number> {
  return await new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
    ws.once('open', () => { ws.close(); reject(new Error('the upgrade was accepted')) })
    ws.once('error', () => {})
  })
}

describe('ui: speech socket /realm/speech', function () {
  this.timeout(180_000)
  const cleanup = new Cleanup()
  after(async () => { await cleanup.run() })

  describe('with the offline engines', () => {
    let node: RealmNode
    let dir: string
    let url: string

    /** espeak-ng says each phrase; sox pads it with silence and makes 16 kHz mono 16-bit (no dither: the same samples every run) */
    function recording (name: string, ...phrases: string[]): Buffer {
      const parts: string[] = []
      const gap = path.join(dir, 'gap.wav')
      if (!fs.existsSync(gap)) execFileSync('sox', ['-n', '-r', '22050', '-c', '1', '-b', '16', gap, 'trim', '0', '1.2'])
      parts.push(gap)
      phrases.forEach((phrase, i) => {
        const file = path.join(dir, `${name}-${i}.wav`)
        execFileSync('espeak-ng', ['-w', file, phrase])
        parts.push(file, gap)
      })
      const out = path.join(dir, `${name}.wav`)
      execFileSync('sox', ['-D', ...parts, '-r', '16000', '-c', '1', '-b', '16', out])
      const wav = fs.readFileSync(out)
      // the samples, without the 44-byte header sox writes
      const data = wav.indexOf('data')
      return wav.subarray(data + 8)
    }

    before(async function () {
      const engines = await checkSpeechEngines()
      const missing = (['espeak', 'pocketsphinx', 'sox'] as const).filter(e => !engines[e].ok).map(e => `${e}: ${engines[e].fix ?? engines[e].error ?? 'missing'}`)
      if (missing.length > 0) {
        if (CI) throw new Error(`speech engines missing under CI=true: ${missing.join('; ')}`)
        console.warn(`    skipped: ${missing.join('; ')}`)
        this.skip()
      }
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'realm-voice-socket-'))
      cleanup.add(() => { fs.rmSync(dir, { recursive: true, force: true }) })
      node = cleanup.node(await startTestNode({ workers: ['stt=pocketsphinx'] }))
      await waitFor(() => node.localAd().workers.some(w => w.backend === 'stt' && w.health.state === 'ok'), 'the stt worker to be ok')
      url = node.url.replace(/^http/, 'ws') + '/realm/speech'
    })

    it('"computer" … "chat" … "what is the realm" in chunks → wake, partial chat, result with the prompt', async () => {
      const pcm = recording('pauses', 'computer', 'chat', 'what is the realm')
      const client = await Client.open(url)
      cleanup.add(() => { client.close() })
      const hello = await client.next('hello', 10_000)
      assert.equal(hello.stt, true)
      assert.equal(hello.sampleRate, 16_000)
      assert.equal(hello.wakeWord, 'computer')
      client.send({ type: 'start', mode: 'wake', phrases: PHRASES })
      await client.next('listening')
      await client.stream(pcm)
      const result = await client.next('result')
      client.close()
      assert.deepEqual(client.types(), ['wake', 'partial', 'result'])
      const [wake, partial] = client.messages.filter(m => m.type === 'wake' || m.type === 'partial')
      assert.equal(wake?.word, 'computer')
      assert.ok(wake.start >= 1 && wake.end > wake.start, JSON.stringify(wake))
      assert.equal(partial?.mode, 'chat')
      assert.equal(result.mode, 'chat')
      assert.equal(result.prompt, 'what is the realm')
      // what dictation made of it (a slip is corrected to the expected phrase)
      assert.match(result.heard, /^what is the real/)
    })

    it('said in one breath: wake, then the result with its mode', async () => {
      const client = await Client.open(url)
      cleanup.add(() => { client.close() })
      client.send({ type: 'start', mode: 'wake', phrases: PHRASES })
      await client.next('listening')
      await client.stream(recording('breath', 'computer chat what is the realm'))
      const result = await client.next('result')
      client.close()
      assert.deepEqual(client.types(), ['wake', 'result'])
      assert.equal(result.mode, 'chat')
      assert.equal(result.prompt, 'what is the realm')
    })

    it('push to talk: what was said until `end` is one prompt (free dictation), nothing said is "not understood"', async () => {
      const client = await Client.open(url)
      cleanup.add(() => { client.close() })
      client.send({ type: 'start', mode: 'ptt', phrases: PHRASES })
      await client.next('listening')
      await client.stream(recording('ptt', 'what is the realm'))
      client.send({ type: 'end' })
      const result = await client.next('result')
      assert.equal(result.ptt, true)
      assert.equal(result.prompt, 'what is the realm')
      assert.equal(result.mode, undefined)
      // silence only
      client.send({ type: 'start', mode: 'ptt' })
      await waitFor(() => client.messages.filter(m => m.type === 'listening').length === 2, 'the second push to talk')
      await client.stream(Buffer.alloc(32_000))
      client.send({ type: 'end' })
      const sleep = await client.next('sleep')
      assert.equal(sleep.reason, 'not-understood')
      client.close()
    })

    it('while the UI speaks: "stop" alone is heard; other words are not', async () => {
      const client = await Client.open(url)
      cleanup.add(() => { client.close() })
      client.send({ type: 'start', mode: 'stop' })
      await client.next('listening')
      await client.stream(recording('stop', 'computer chat what is the realm', 'stop'))
      await client.next('stop')
      client.close()
      // the recording says "stop" twice: both may be heard before the close; nothing else may be
      const types = client.types()
      assert.ok(types.length >= 1 && types.every(t => t === 'stop'), `only "stop" replies, got ${JSON.stringify(types)}`)
    })

    it('refuses a cross-site page and a foreign Host, as the events socket does', async () => {
      const host = new URL(node.url).host
      assert.equal(await refusedStatus(url, { Origin: 'http://evil.example' }), 403)
      assert.equal(await refusedStatus(url, { Host: 'evil.example' }), 421)
      // the node's own page may
      const own = await Client.open(url, { Origin: `http://${host}` })
      await own.next('hello', 10_000)
      own.close()
    })
  })

  it('a node without speech recognition answers STT_UNAVAILABLE with what to do, and closes', async () => {
    const node = cleanup.node(await startTestNode())
    const client = await Client.open(node.url.replace(/^http/, 'ws') + '/realm/speech')
    const error = await client.next('error', 30_000)
    assert.equal(error.code, 'STT_UNAVAILABLE')
    assert.match(error.message, /no speech recognition/)
    assert.match(error.fix, /--worker stt=pocketsphinx/)
    assert.equal(client.messages[0]?.type, 'hello')
    assert.equal(client.messages[0]?.stt, false)
    await waitFor(() => client.closed, 'the socket to close')
    assert.equal(client.closed?.code, SPEECH_CLOSE_UNAVAILABLE)
  })

  it('localSttStatus: ok with a working stt worker; starting; benched or missing names the fix', async () => {
    const ad = (backend: string, state: 'ok' | 'starting' | 'benched'): WorkerAd => ({ id: 'w', backend: backend as WorkerAd['backend'], kinds: [], models: [], health: { state, queueDepth: 0, inFlight: 0, concurrency: 1 } })
    const missing = async (): Promise<any> => ({ pocketsphinx: { ok: false, fix: 'apt-get install pocketsphinx pocketsphinx-en-us', error: 'not installed' } })
    assert.deepEqual(await localSttStatus([ad('stt', 'ok')], missing), { ok: true })
    assert.match((await localSttStatus([ad('stt', 'starting')], missing) as any).message, /starting/)
    const benched = await localSttStatus([ad('stt', 'benched')], missing)
    assert.ok(!benched.ok && benched.fix === 'apt-get install pocketsphinx pocketsphinx-en-us' && /benched/.test(benched.message))
    // an OpenAI-compatible transcription server (`stt=URL`) is not this node's engine
    const none = await localSttStatus([ad('openai', 'ok')], missing)
    assert.ok(!none.ok && /apt-get install pocketsphinx/.test(none.fix ?? '') && /--worker stt=pocketsphinx/.test(none.fix ?? ''))
  })

  it('corrects a slip of dictation to an expected phrase only when it is that close; a leading mode word', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3)
    assert.equal(snapToPhrase('what is the real', ['What is the realm?', 'Tell me a joke.']), 'What is the realm?')
    assert.equal(snapToPhrase('what is the weather', ['What is the realm?']), 'what is the weather')
    assert.equal(snapToPhrase('shot what is the real', ['What is the realm?']), 'shot what is the real')
    assert.equal(snapToPhrase('anything', []), 'anything')
    assert.deepEqual(leadingMode('imagine a red boat'), { mode: 'imagine', prompt: 'a red boat' })
    assert.deepEqual(leadingMode('chat'), { prompt: 'chat' })
    assert.deepEqual(leadingMode('what is the realm'), { prompt: 'what is the realm' })
  })

  describe('limits (a stand-in session)', () => {
    /** A session that records what it is given and answers what the test tells it */
    class FakeSession implements SpeechSessionLike {
      static made: FakeSession[] = []
      bytes = 0
      closed = false
      listeners = new Set<(e: SpeechSessionEvent) => void>()
      constructor (readonly init: any) { FakeSession.made.push(this) }
      push (chunk: Uint8Array): void { this.bytes += chunk.byteLength }
      async end (): Promise<void> { this.emit({ type: 'result', text: 'hello there', start: 0, end: 1 }) }
      close (): void { this.closed = true }
      on (l: (e: SpeechSessionEvent) => void): () => void { this.listeners.add(l); return () => { this.listeners.delete(l) } }
      emit (e: SpeechSessionEvent): void { for (const l of this.listeners) l(e) }
    }

    async function serve (init: Partial<SpeechSocketInit> = {}): Promise<{ url: string, socket: SpeechSocket }> {
      const socket = new SpeechSocket({
        sttStatus: () => ({ ok: true }),
        userOf: (req) => {
          const id = req.headers['x-user']
          return typeof id === 'string' ? { id, banned: id === 'banned' } : undefined
        },
        createSession: async (i) => new FakeSession(i),
        ...init
      })
      const server = http.createServer((_req, res) => { res.end() })
      server.on('upgrade', (req, sock, head) => { socket.handleUpgrade(req, sock, head) })
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      cleanup.add(async () => {
        socket.stop()
        server.closeAllConnections()
        await new Promise(resolve => server.close(resolve))
      })
      return { url: `ws://127.0.0.1:${(server.address() as any).port}/realm/speech`, socket }
    }

    beforeEach(() => { FakeSession.made = [] })

    it('drops audio beyond its bytes per second and says so; audio before `start` goes nowhere', async () => {
      const { url } = await serve({ bytesPerS: 32_000, burstBytes: 16_000 })
      const client = await Client.open(url)
      await client.next('hello')
      client.ws.send(Buffer.alloc(3200))
      client.send({ type: 'start', mode: 'wake' })
      await client.next('listening')
      for (let i = 0; i < 20; i++) client.ws.send(Buffer.alloc(3200))
      const error = await client.next('error')
      assert.equal(error.code, 'AUDIO_TOO_FAST')
      const session = FakeSession.made[0]!
      await waitFor(() => session.bytes > 0, 'audio to reach the session')
      assert.ok(session.bytes <= 16_000 + 3200, `${session.bytes} bytes got through`)
      client.close()
    })

    it('closes a message over 64 KiB', async () => {
      const { url } = await serve()
      const client = await Client.open(url)
      await client.next('hello')
      client.ws.send(Buffer.alloc(65 * 1024))
      await waitFor(() => client.closed, 'the socket to close')
      assert.equal(client.closed?.code, 1009)
    })

    it('one socket per user: a newer one replaces the older (4009); a banned user is refused', async () => {
      const { url, socket } = await serve()
      const first = await Client.open(url, { 'x-user': 'alice' })
      await first.next('hello')
      first.send({ type: 'start', mode: 'wake' })
      await first.next('listening')
      const second = await Client.open(url, { 'x-user': 'alice' })
      await second.next('hello')
      await waitFor(() => first.closed, 'the older socket to close')
      assert.equal(first.closed?.code, SPEECH_CLOSE_REPLACED)
      assert.ok(FakeSession.made[0]?.closed, 'its session was closed')
      const bob = await Client.open(url, { 'x-user': 'bob' })
      await bob.next('hello')
      assert.equal(socket.size, 2)
      assert.equal(await refusedStatus(url, { 'x-user': 'banned' }), 403)
      second.close()
      bob.close()
    })

    it('a socket lives at most its session length (4010)', async () => {
      const { url } = await serve({ maxSessionMs: 300 })
      const client = await Client.open(url)
      await client.next('hello')
      await waitFor(() => client.closed, 'the socket to close')
      assert.equal(client.closed?.code, SPEECH_CLOSE_TOO_LONG)
      assert.equal(client.messages.find(m => m.type === 'error')?.code, 'SESSION_TOO_LONG')
    })

    it('a socket that sends nothing is closed (4011); messages keep it open', async () => {
      const { url } = await serve({ idleMs: 400 })
      const busy = await Client.open(url, { 'x-user': 'busy' })
      const idle = await Client.open(url, { 'x-user': 'idle' })
      await busy.next('hello')
      await idle.next('hello')
      for (let i = 0; i < 8; i++) {
        busy.send({ type: 'ping' })
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      await waitFor(() => idle.closed, 'the idle socket to close')
      assert.equal(idle.closed?.code, SPEECH_CLOSE_IDLE)
      assert.equal(busy.closed, undefined)
      busy.close()
    })

    it('a push to talk is transcribed once it holds its longest audio, `end` or not', async () => {
      const { url } = await serve({ pttMaxMs: 500 })
      const client = await Client.open(url)
      await client.next('hello')
      client.send({ type: 'start', mode: 'ptt' })
      await client.next('listening')
      for (let i = 0; i < 6; i++) client.ws.send(Buffer.alloc(3200))
      const result = await client.next('result')
      assert.equal(result.prompt, 'hello there')
      assert.equal(result.ptt, true)
      assert.equal(FakeSession.made[0]?.init.wakeWord, false)
      client.close()
    })

    it('refuses malformed messages with INVALID_MESSAGE and goes on', async () => {
      const { url } = await serve()
      const client = await Client.open(url)
      await client.next('hello')
      client.ws.send('not json')
      client.send({ type: 'start', mode: 'shout' })
      client.send({ type: 'start', mode: 'wake', phrases: ['x'.repeat(201)] })
      client.send({ type: 'ping' })
      await client.next('pong')
      assert.deepEqual(client.messages.filter(m => m.type === 'error').map(m => m.code), ['INVALID_MESSAGE', 'INVALID_MESSAGE', 'INVALID_MESSAGE'])
      assert.equal(FakeSession.made.length, 0)
      client.close()
    })
  })
})
