/** The UI's SSE parser and task stream client (ui/src/lib/sse.ts, api.ts) */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { SseParser, readSse, type SseMessage } from '../../ui/src/lib/sse.js'
import { ApiError, STREAM_CUT, errorFromResponse, streamTask } from '../../ui/src/lib/api.js'
import type { TaskEvent } from '../../ui/src/lib/types.js'

function parseAll (chunks: string[]): SseMessage[] {
  const out: SseMessage[] = []
  const p = new SseParser(m => out.push(m))
  for (const c of chunks) p.push(c)
  p.end()
  return out
}

function stream (chunks: Array<string | Uint8Array>): ReadableStream<Uint8Array> {
  const enc = new TextEncoder()
  return new ReadableStream({
    start (controller) {
      for (const c of chunks) controller.enqueue(typeof c === 'string' ? enc.encode(c) : c)
      controller.close()
    }
  })
}

describe('ui: SSE parser', () => {
  it('parses events with names, multi-line data, ids and comments', () => {
    const msgs = parseAll([': keepalive\n\nevent: task.token\ndata: {"a":1}\n\ndata: line one\ndata: line two\nid: 7\nretry: 1500\n\n'])
    assert.deepEqual(msgs, [
      { event: 'task.token', data: '{"a":1}' },
      { event: 'message', data: 'line one\nline two', id: '7', retry: 1500 }
    ])
  })

  it('handles CRLF, CR, a leading BOM and a missing space after the colon', () => {
    assert.deepEqual(parseAll(['\ufeffevent:x\r\ndata:1\r\n\r\ndata: 2\r\rdata: 3\n\n']), [
      { event: 'x', data: '1' },
      { event: 'message', data: '2' },
      { event: 'message', data: '3' }
    ])
  })

  it('drops a message the stream ends before its blank line, and blocks without data', () => {
    assert.deepEqual(parseAll(['event: a\n\ndata: unfinished']), [])
  })

  it('gives the same messages however the text is split into chunks (CR LF across chunks too)', () => {
    const text = 'event: task.queued\r\ndata: {"position":2}\r\n\r\n: c\r\ndata: é😀\r\n\r\nevent: e\ndata: x\n\n'
    const whole = parseAll([text])
    assert.equal(whole.length, 3)
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 8 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b)
      const chunks: string[] = []
      let last = 0
      for (const p of points) { chunks.push(text.slice(last, p)); last = p }
      chunks.push(text.slice(last))
      assert.deepEqual(parseAll(chunks), whole)
    }), { seed: 42, numRuns: 300 })
  })

  it('reads a byte stream whose UTF-8 characters are split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: héllo 😀\n\n')
    const out: SseMessage[] = []
    await readSse(stream([bytes.slice(0, 8), bytes.slice(8, 15), bytes.slice(15)]), m => out.push(m))
    assert.deepEqual(out, [{ event: 'message', data: 'héllo 😀' }])
  })
})

describe('ui: task stream client', () => {
  const sse = (e: object): string => `event: ${(e as { type: string }).type}\ndata: ${JSON.stringify(e)}\n\n`

  it('hands every event to onEvent in order and resolves with the task id', async () => {
    const events = [
      { type: 'task.submitted', id: 'abcdefgh1', kind: 'chat', model: 'm' },
      { type: 'task.token', id: 'abcdefgh1', text: 'Hi' },
      { type: 'task.done', id: 'abcdefgh1', output: { text: 'Hi' }, peerId: 'p', workerId: 'w', timings: { totalMs: 5 } }
    ]
    let sent: RequestInit | undefined
    const got: TaskEvent[] = []
    const id = await streamTask({ kind: 'chat', model: 'm', input: {} }, {
      fetch: async (url, init) => {
        assert.equal(url, '/realm/tasks')
        sent = init
        return new Response(stream([': keepalive\n\n', ...events.map(sse)]), { status: 200, headers: { 'content-type': 'text/event-stream' } })
      },
      onEvent: e => got.push(e)
    })
    assert.equal(id, 'abcdefgh1')
    assert.deepEqual(got, events)
    assert.equal(sent?.method, 'POST')
    assert.equal((sent?.headers as Record<string, string>).accept, 'text/event-stream')
    assert.deepEqual(JSON.parse(String(sent?.body)), { kind: 'chat', model: 'm', input: {} })
  })

  it('rejects with the node\'s error code before any event (404, 429 with Retry-After)', async () => {
    const refuse = (status: number, body: unknown, headers: Record<string, string> = {}) => async () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
    await assert.rejects(streamTask({ kind: 'chat', model: 'x', input: {} }, { fetch: refuse(404, { error: { code: 'MODEL_NOT_FOUND', message: "model 'x' not found" } }), onEvent: () => {} }),
      (err: ApiError) => err.name === 'ApiError' && err.status === 404 && err.code === 'MODEL_NOT_FOUND' && err.message === "model 'x' not found")
    await assert.rejects(streamTask({ kind: 'chat', model: 'x', input: {} }, { fetch: refuse(429, { error: { code: 'QUEUE_FULL', message: 'busy' } }, { 'retry-after': '3' }), onEvent: () => {} }),
      (err: ApiError) => err.code === 'QUEUE_FULL' && err.retryAfterS === 3)
  })

  it('rejects with STREAM_CUT when the stream ends before task.done or task.error', async () => {
    await assert.rejects(streamTask({ kind: 'chat', model: 'm', input: {} }, {
      fetch: async () => new Response(stream([sse({ type: 'task.token', id: 'abcdefgh1', text: 'x' })]), { status: 200 }),
      onEvent: () => {}
    }), (err: ApiError) => err.code === STREAM_CUT)
  })

  it('reads errors that are not JSON as HTTP_<status>', async () => {
    const err = await errorFromResponse(new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }))
    assert.equal(err.code, 'HTTP_502')
    assert.equal(err.message, 'Bad Gateway')
  })
})
