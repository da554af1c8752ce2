/**
 * `/rentahal/task/1.0.0` against a hand-made peer: garbage, oversized and out-of-order frames
 * get a coded error frame and a closed stream; the node keeps serving; a cancel from the
 * requester stops the backend; a requester that falls silent loses the job. Each misbehaving
 * exchange comes from a fresh peer id: a peer that keeps sending garbage is exiled (see
 * hostile.test.ts), and the node's carrying on is shown by a well-behaved peer.
 */
import assert from 'node:assert/strict'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startOllamaStandin, type OllamaStandin } from '../standins/index.js'
import { PROTOCOL_TASK } from '../../protocol/ids.js'
import { decodeWorkerFrame, encodeFrame, type WorkerFrame } from '../../protocol/task-frames.js'
import type { RealmNode } from '../../node/node.js'

describe('mesh: task protocol against a hand-made peer', function () {
  this.timeout(60_000)
  const cleanup = new Cleanup()
  let node: RealmNode
  let peer: Libp2p
  let good: Libp2p
  let standin: OllamaStandin
  let workerId: string

  before(async () => {
    standin = await startOllamaStandin({ tokenDelayMs: 50, reply: () => 'one two three four five six seven eight nine ten' })
    cleanup.add(async () => { await standin.close() })
    node = cleanup.node(await startTestNode({ workers: [`ollama=${standin.url}`] }))
    workerId = node.workers[0].id
    peer = await newPeer()
    good = await newPeer()
  })

  async function newPeer (): Promise<Libp2p> {
    const p = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
    cleanup.add(async () => { await p.stop() })
    await p.dial(multiaddr(addrOf(node)))
    return p
  }
  after(async () => { await cleanup.run() })

  /** Open a task stream, send raw frames, read frames until the node closes it */
  async function exchange (frames: Uint8Array[], opts: { readUntil?: (f: WorkerFrame) => boolean, from?: Libp2p } = {}): Promise<WorkerFrame[]> {
    const stream = await (opts.from ?? peer).dialProtocol(multiaddr(addrOf(node)), PROTOCOL_TASK)
    const lp = lpStream(stream, { maxDataLength: 32 * 1024 * 1024 })
    for (const f of frames) await lp.write(f)
    const got: WorkerFrame[] = []
    try {
      for (;;) {
        const bytes = await lp.read({ signal: AbortSignal.timeout(15_000) })
        const frame = decodeWorkerFrame(bytes.subarray())
        got.push(frame)
        if (opts.readUntil?.(frame) === true) break
      }
    } catch {
      // the node closed the stream
    }
    await stream.close().catch(() => {})
    return got
  }

  const request = (id: string, content = 'hi'): Uint8Array => encodeFrame({ t: 'request', task: { id, kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content }] } }, workerId })

  async function stillServes (): Promise<void> {
    const frames = await exchange([request('still-serving-' + Date.now())], { readUntil: f => f.t === 'done' || f.t === 'error', from: good })
    const done = frames.find(f => f.t === 'done')
    assert.ok(done != null && done.t === 'done', `a good request is served: ${JSON.stringify(frames.map(f => f.t))}`)
    assert.equal(done.output.text, 'one two three four five six seven eight nine ten')
  }

  it('serves a well-formed request: accepted, started, tokens, done', async () => {
    const frames = await exchange([request('good-request-1')], { readUntil: f => f.t === 'done' })
    const kinds = frames.filter(f => f.t !== 'heartbeat').map(f => f.t)
    assert.equal(kinds[0], 'accepted')
    assert.equal(kinds[1], 'started')
    assert.equal(kinds.at(-1), 'done')
    assert.equal(frames.filter(f => f.t === 'token').map(f => (f as any).text).join(''), 'one two three four five six seven eight nine ten')
  })

  for (const [name, bytes, code] of [
    ['not JSON', new TextEncoder().encode('{{{ not json'), 'INVALID_TASK'],
    ['not UTF-8', new Uint8Array([0xff, 0xfe, 0xfd]), 'INVALID_TASK'],
    ['an unknown frame type', new TextEncoder().encode(JSON.stringify({ t: 'gimme' })), 'INVALID_TASK'],
    ['a heartbeat before any request', encodeFrame({ t: 'heartbeat' }), 'INVALID_TASK'],
    ['a request with a wrong field type', new TextEncoder().encode(JSON.stringify({ t: 'request', task: { id: 'abcdefgh', kind: 'chat', model: 'llama3.2:1b', input: { messages: 'nope' } } })), 'INVALID_TASK'],
    ['a request with an extra field', new TextEncoder().encode(JSON.stringify({ t: 'request', task: { id: 'abcdefgh', kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'x' }] } }, evil: true })), 'INVALID_TASK']
  ] as const) {
    it(`answers ${name} with a coded error frame, closes the stream, and keeps serving`, async () => {
      const frames = await exchange([bytes], { from: await newPeer() })
      const err = frames.find(f => f.t === 'error')
      assert.ok(err != null && err.t === 'error', `an error frame: ${JSON.stringify(frames)}`)
      assert.equal(err.code, code)
      await stillServes()
    })
  }

  it('refuses an oversized frame without reading it into memory, and keeps serving', async () => {
    const frames = await exchange([new Uint8Array(25 * 1024 * 1024).fill(0x41)], { from: await newPeer() })
    assert.ok(frames.every(f => f.t === 'error'), JSON.stringify(frames.map(f => f.t)))
    await stillServes()
  })

  it('a second request on the same stream is refused', async () => {
    const frames = await exchange([request('twice-on-one-1'), request('twice-on-one-2')], { readUntil: f => f.t === 'error', from: await newPeer() })
    assert.ok(frames.some(f => f.t === 'error' && f.code === 'INVALID_TASK'), JSON.stringify(frames.map(f => f.t)))
  })

  it('a cancel from the requester stops the backend request', async () => {
    const before = standin.requests.length
    const stream = await peer.dialProtocol(multiaddr(addrOf(node)), PROTOCOL_TASK)
    const lp = lpStream(stream)
    await lp.write(request('to-be-cancelled-1', 'cancel me'))
    for (;;) {
      const f = decodeWorkerFrame((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray())
      if (f.t === 'token') break
    }
    await lp.write(encodeFrame({ t: 'cancel' }))
    const rec = await waitFor(() => standin.requests.slice(before).find(r => (r.body as any)?.messages?.at(-1)?.content === 'cancel me' && r.outcome != null), 'the backend request to end')
    assert.equal(rec.outcome, 'client-closed')
    await stream.close().catch(() => {})
    await stillServes()
  })

  it('a requester that falls silent loses the job within the lease', async () => {
    const before = standin.requests.length
    standin.tokenDelayMs = 1000
    try {
      const stream = await peer.dialProtocol(multiaddr(addrOf(node)), PROTOCOL_TASK)
      const lp = lpStream(stream)
      // no heartbeats after the request
      await lp.write(request('silent-requester-1', 'silent'))
      const rec = await waitFor(() => standin.requests.slice(before).find(r => (r.body as any)?.messages?.at(-1)?.content === 'silent' && r.outcome != null), 'the backend request to be dropped', 20_000)
      assert.equal(rec.outcome, 'client-closed')
      stream.abort(new Error('done'))
    } finally {
      standin.tokenDelayMs = 50
    }
  })
})
