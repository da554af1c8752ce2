/** Server-sent events as the tests read them: `data:` lines of JSON, one event per block */
import assert from 'node:assert/strict'
import type { RealmNode } from '../../node/node.js'

/** The events of an SSE body, as they arrive, until it ends */
export async function readSse (res: Response, onEvent: (e: any) => void = () => {}): Promise<any[]> {
  const events: any[] = []
  const decoder = new TextDecoder()
  let buf = ''
  for await (const chunk of res.body as any) {
    buf += decoder.decode(chunk, { stream: true })
    let i
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const line = block.split('\n').find(l => l.startsWith('data: '))
      if (line == null) continue
      const e = JSON.parse(line.slice(6))
      events.push(e)
      onEvent(e)
    }
  }
  return events
}

/** Submit a task to `node` and follow it over SSE, calling `onEvent` for each event as it arrives */
export async function followTask (node: RealmNode, body: unknown, onEvent: (e: any) => void): Promise<any[]> {
  const res = await fetch(node.url + '/realm/tasks', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(60_000)
  })
  assert.equal(res.status, 200)
  return await readSse(res, onEvent)
}
