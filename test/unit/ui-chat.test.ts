/** Conversations of the web UI: the task-event reducer, stateless history, retry, storage (ui/src/lib/chat.ts) */
import assert from 'node:assert/strict'
import {
  applyTaskEvent, ask, failTurn, historyFor, newConversation, parseConversations, retry, serializeConversations, spentOn,
  type ChatTurn, type Conversation
} from '../../ui/src/lib/chat.js'
import type { TaskEvent } from '../../ui/src/lib/types.js'

function run (turn: ChatTurn, events: TaskEvent[], price?: number): ChatTurn {
  return events.reduce((t, e) => applyTaskEvent(t, e, () => price), turn)
}

const ID = 'task12345'

describe('ui: chat reducer', () => {
  const waiting = (): ChatTurn => ({ id: 'a1', role: 'assistant', content: '', createdAt: 0, status: 'sending', model: 'llama3.2:1b' })

  it('follows a task: queued (position, ETA) → running → tokens → done with peer, timings and cost', () => {
    let t = run(waiting(), [
      { type: 'task.submitted', id: ID, kind: 'chat', model: 'llama3.2:1b' },
      { type: 'task.queued', id: ID, position: 3, etaMs: 4200, peerId: 'P1' }
    ])
    assert.equal(t.status, 'queued')
    assert.deepEqual(t.queue, { position: 3, etaMs: 4200 })
    assert.equal(t.taskId, ID)
    t = run(t, [{ type: 'task.started', id: ID, peerId: 'P2', workerId: 'w1', attempt: 1 }])
    assert.equal(t.status, 'running')
    assert.equal(t.queue, undefined)
    t = run(t, [{ type: 'task.token', id: ID, text: 'Hel' }, { type: 'task.token', id: ID, text: 'lo' }])
    assert.equal(t.content, 'Hello')
    t = run(t, [{ type: 'task.done', id: ID, output: { text: 'Hello', usage: { promptTokens: 10, completionTokens: 2 } }, peerId: 'P2', workerId: 'w1', timings: { totalMs: 900, queueMs: 100 } }], 0.5)
    assert.equal(t.status, 'done')
    assert.equal(t.peerId, 'P2')
    assert.deepEqual(t.timings, { totalMs: 900, queueMs: 100 })
    assert.equal(t.cost, 6)
  })

  it('a restart clears the answer and leaves a note; a trimmed history leaves a note', () => {
    const t = run(waiting(), [
      { type: 'task.trimmed', id: ID, dropped: 4, reason: 'context' },
      { type: 'task.started', id: ID, peerId: 'P1', workerId: 'w', attempt: 1 },
      { type: 'task.token', id: ID, text: 'half an ans' },
      { type: 'task.restarted', id: ID, reason: 'worker lost', attempt: 2 },
      { type: 'task.token', id: ID, text: 'Whole' }
    ])
    assert.equal(t.content, 'Whole')
    assert.deepEqual(t.notes?.map(n => n.kind), ['trimmed', 'restarted'])
    assert.match(t.notes![0].text, /4 earliest messages were left out/)
    assert.match(t.notes![1].text, /worker lost/)
  })

  it('errors and cancellation end the turn; failTurn leaves an ended turn alone', () => {
    const err = run(waiting(), [{ type: 'task.error', id: ID, code: 'NO_WORKER', message: 'none left', timings: { totalMs: 3 } }])
    assert.equal(err.status, 'error')
    assert.deepEqual(err.error, { code: 'NO_WORKER', message: 'none left' })
    const cancelled = run(waiting(), [{ type: 'task.error', id: ID, code: 'CANCELLED', message: 'cancelled' }])
    assert.equal(cancelled.status, 'cancelled')
    assert.equal(failTurn(err, 'CANCELLED', 'x'), err)
    assert.equal(failTurn(waiting(), 'CANCELLED', 'Stopped.').status, 'cancelled')
  })

  it('no cost when the price or the usage is unknown', () => {
    const done: TaskEvent = { type: 'task.done', id: ID, output: { text: 'x', usage: { units: 3 } }, peerId: 'P', workerId: 'w', timings: { totalMs: 1 } }
    assert.equal(run(waiting(), [done]).cost, undefined)
    assert.equal(run(waiting(), [done], 2).cost, 6)
  })
})

describe('ui: conversations', () => {
  it('sends the whole history statelessly: user turns (with images) and finished answers only', () => {
    let conv = newConversation('vision', 'llava:7b', 1, 'c1')
    let step = ask(conv, 'What is this?', [{ mime: 'image/png', data: 'AAAA' }], 'llava:7b', 2)
    conv = step.conv
    assert.equal(conv.title, 'What is this?')
    assert.deepEqual(historyFor(conv, step.assistantId), [{ role: 'user', content: 'What is this?', images: ['AAAA'] }])
    conv = { ...conv, turns: conv.turns.map(t => t.id === step.assistantId ? { ...t, status: 'done' as const, content: 'A cat.' } : t) }
    step = ask(conv, 'And its colour?', [], 'llava:7b', 3)
    conv = step.conv
    assert.deepEqual(historyFor(conv, step.assistantId), [
      { role: 'user', content: 'What is this?', images: ['AAAA'] },
      { role: 'assistant', content: 'A cat.' },
      { role: 'user', content: 'And its colour?' }
    ])
    // a failed answer is not sent back
    conv = { ...conv, turns: conv.turns.map(t => t.id === step.assistantId ? { ...t, status: 'error' as const, content: 'partial' } : t) }
    const third = ask(conv, 'Again?', [], 'llava:7b', 4)
    assert.ok(!historyFor(third.conv, third.assistantId).some(m => m.content === 'partial'))
  })

  it('retry replaces an answer (and what follows) with a new waiting turn', () => {
    let conv = newConversation('chat', 'm', 1, 'c1')
    const first = ask(conv, 'one', [], 'm', 2)
    conv = first.conv
    const again = retry(conv, first.assistantId, 'other-model', 3)
    assert.ok(again != null)
    assert.equal(again.conv.turns.length, 2)
    assert.notEqual(again.assistantId, first.assistantId)
    assert.equal(again.conv.turns[1].status, 'sending')
    assert.equal(again.conv.turns[1].model, 'other-model')
    assert.equal(retry(conv, 'nope', 'm'), undefined)
  })

  it('round-trips through storage; a turn still waiting when the page closed is marked interrupted', () => {
    const conv = ask(newConversation('chat', 'm', 1, 'c1'), 'hello', [], 'm', 2).conv
    const back = parseConversations(serializeConversations([conv]))
    assert.equal(back.length, 1)
    assert.equal(back[0].turns[0].content, 'hello')
    assert.equal(back[0].turns[1].status, 'error')
    assert.equal(back[0].turns[1].error?.code, 'INTERRUPTED')
  })

  it('ignores malformed storage', () => {
    assert.deepEqual(parseConversations(null), [])
    assert.deepEqual(parseConversations('not json'), [])
    assert.deepEqual(parseConversations('{"a":1}'), [])
    const back = parseConversations(JSON.stringify([{ id: 'x', turns: [{ id: 't', role: 'hacker', content: 1 }, { id: 'u', role: 'user', content: 'ok', createdAt: 1 }] }, { nope: true }]))
    assert.equal(back.length, 1)
    assert.deepEqual(back[0].turns.map(t => t.id), ['u'])
  })

  it('keeps storage under its cap: images of old conversations go first, then old conversations', () => {
    const big = 'A'.repeat(10_000)
    const convs: Conversation[] = [1, 2, 3].map(i => ({ ...ask(newConversation('vision', 'm', i, `c${i}`), `q${i}`, [{ mime: 'image/png', data: big }], 'm', i).conv, updatedAt: i }))
    const all = serializeConversations(convs, 1_000_000)
    assert.equal(parseConversations(all).length, 3)
    const text = serializeConversations(convs, 25_000)
    assert.ok(text.length <= 25_000)
    const back = parseConversations(text)
    assert.equal(back.length, 3)
    assert.ok(back.find(c => c.id === 'c3')?.turns[0].images?.length === 1, 'the newest keeps its image')
    assert.equal(back.find(c => c.id === 'c1')?.turns[0].imagesDropped, 1)
    const tinyText = serializeConversations(convs, 600)
    assert.ok(tinyText.length <= 600)
    const tiny = parseConversations(tinyText)
    assert.ok(tiny.length >= 1 && tiny.length < 3, `${tiny.length} kept`)
    assert.equal(tiny[0].id, 'c3', 'the newest conversation stays')
  })

  it('adds up what a conversation cost', () => {
    const conv = newConversation('chat', 'm', 1, 'c')
    conv.turns = [{ id: 'a', role: 'assistant', content: '', createdAt: 0, cost: 1.5 }, { id: 'b', role: 'assistant', content: '', createdAt: 0, cost: 2 }]
    assert.equal(spentOn(conv), 3.5)
  })
})
