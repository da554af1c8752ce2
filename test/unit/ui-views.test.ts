/**
 * The web UI's view logic: the model catalog (ui/src/lib/models.ts), the realm table
 * (realm.ts), formatting (format.ts), image scaling (image.ts), the gallery bounds (gallery.ts),
 * the sysop console (console.ts) and answers (sysop.ts), themes, reconnection, nicknames.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { buildCatalog, groupByKind, modelsFor, pickModel, priceOf, providerSummary } from '../../ui/src/lib/models.js'
import { applyRealmEvent, peerFromResponse, peerModels, sortedPeers, tableFromResponse, workerState } from '../../ui/src/lib/realm.js'
import { formatAgo, formatBytes, formatCredits, formatDuration, formatPercent, formatPrice, formatQueue, shortPeerId, taskCost, titleFrom } from '../../ui/src/lib/format.js'
import { attachProblem, base64Bytes, dataUrl, fitWithin, outputType, parseDataUrl, MAX_IMAGE_SIDE_PX } from '../../ui/src/lib/image.js'
import { downloadName, evictions } from '../../ui/src/lib/gallery.js'
import { CONSOLE_MAX_EVENTS, CONSOLE_MAX_HELD, clearConsole, emptyConsole, eventLine, pushEvent, setPaused, topicOfType, visibleEntries } from '../../ui/src/lib/console.js'
import { applyLiveTask, blockBody, isAddressTarget, normalizeBlocklist, normalizeUsers } from '../../ui/src/lib/sysop.js'
import { otherTheme, resolveTheme } from '../../ui/src/lib/theme.js'
import { reconnectDelay, RECONNECT_MAX_MS } from '../../ui/src/lib/reconnect.js'
import { nicknameProblem } from '../../ui/src/lib/nickname.js'
import { checkNickname } from '../../node/gateway/users.js'
import type { ModelResponse, PeerResponse, WorkerAd } from '../../ui/src/lib/types.js'

const health = { state: 'ok' as const, queueDepth: 0, inFlight: 0, concurrency: 1 }
const nodeHealth = { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 1 }

function peer (peerId: string, name: string | undefined, workers: Array<Omit<WorkerAd, 'health'>>): PeerResponse {
  return { peerId, name, multiaddrs: [], capabilities: { workers }, health: { ...nodeHealth, workers: Object.fromEntries(workers.map(w => [w.id, health])) }, blocked: false, lastSeen: '2026-01-01T00:00:00.000Z' }
}

describe('ui: model catalog', () => {
  const models: ModelResponse[] = [
    { name: 'llama3.2:1b', kinds: ['chat', 'generate'], peers: ['PA', 'SELF'], context: 131072 },
    { name: 'llava:7b', kinds: ['chat', 'generate'], peers: ['PA'] },
    { name: 'gemma3:4b', kinds: ['chat'], peers: ['PB'] },
    { name: 'sd-v1-5', kinds: ['imagine'], peers: ['PB'] },
    { name: 'nomic-embed-text:latest', kinds: ['embed'], peers: ['PA'] }
  ]
  const peers = [
    peer('PA', '<b>alpha</b>', [{ id: 'ollama', backend: 'ollama', kinds: ['chat', 'generate', 'embed'], models: [
      { name: 'llama3.2:1b', kinds: ['chat', 'generate'], price: 2 },
      { name: 'llava:7b', kinds: ['chat', 'generate'], vision: true, price: 0 },
      { name: 'nomic-embed-text:latest', kinds: ['embed'] }
    ] }]),
    peer('PB', undefined, [{ id: 'o2', backend: 'ollama', kinds: ['chat'], models: [{ name: 'gemma3:4b', kinds: ['chat'] }] }, { id: 'sd', backend: 'sd', kinds: ['imagine'], models: [{ name: 'sd-v1-5', kinds: ['imagine'], price: 5 }] }])
  ]
  const self = { peerId: 'SELF', workers: [{ id: 'local', backend: 'ollama' as const, kinds: ['chat' as const], models: [{ name: 'llama3.2:1b', kinds: ['chat' as const], price: 1 }], health }] }
  const catalog = buildCatalog({ models, peers, self })

  it('lists who serves each model, at what price, this node marked local', () => {
    const llama = catalog.find(m => m.name === 'llama3.2:1b')!
    assert.deepEqual(llama.providers, [{ peerId: 'PA', name: '<b>alpha</b>', local: false, price: 2 }, { peerId: 'SELF', name: undefined, local: true, price: 1 }])
    assert.equal(llama.minPrice, 1)
    assert.equal(llama.context, 131072)
    assert.equal(priceOf(catalog, 'PA', 'llama3.2:1b'), 2)
    assert.equal(priceOf(catalog, 'PX', 'llama3.2:1b'), undefined)
    assert.equal(providerSummary(llama), '2 peers · from 1 / unit')
    assert.equal(providerSummary(catalog.find(m => m.name === 'gemma3:4b')!), '1 peer')
  })

  it('vision models are those a worker says read images (the name decides only without an ad)', () => {
    assert.deepEqual(modelsFor(catalog, 'vision').map(m => m.name), ['llava:7b'])
    const bare = buildCatalog({ models: [{ name: 'moondream:latest', kinds: ['chat'], peers: ['PZ'] }], peers: [] })
    assert.equal(bare[0].vision, true)
  })

  it('groups by kind for the pickers; imagine offers image models only', () => {
    assert.deepEqual(groupByKind(modelsFor(catalog, 'chat'), ['chat']).map(g => [g.label, g.models.map(m => m.name)]), [['Chat', ['gemma3:4b', 'llama3.2:1b', 'llava:7b']]])
    assert.deepEqual(modelsFor(catalog, 'imagine').map(m => m.name), ['sd-v1-5'])
  })

  it('keeps the chosen model while offered, else the first', () => {
    const chat = modelsFor(catalog, 'chat')
    assert.equal(pickModel(chat, 'llava:7b'), 'llava:7b')
    assert.equal(pickModel(chat, 'gone:1b'), 'gemma3:4b')
    assert.equal(pickModel([], 'x'), undefined)
  })
})

describe('ui: realm table', () => {
  const p = peer('PA', 'alpha', [{ id: 'w', backend: 'ollama', kinds: ['chat'], models: [{ name: 'b:1', kinds: ['chat'] }, { name: 'a:1', kinds: ['chat'] }] }])

  it('reads /realm/peers, per-worker health folded in', () => {
    const state = peerFromResponse(p)
    assert.equal(state.workers[0].health.state, 'ok')
    assert.equal(state.name, 'alpha')
    assert.deepEqual(peerModels(state), ['a:1', 'b:1'])
  })

  it('follows peer.join, presence.update, peer.connect/disconnect and peer.leave', () => {
    let t = tableFromResponse([p])
    t = applyRealmEvent(t, { type: 'peer.join', time: '2026-01-01T00:00:05.000Z', peerId: 'PB', name: 'bravo', version: '0.1.0', workers: [], health: nodeHealth })
    assert.deepEqual(sortedPeers(t).map(x => x.peerId), ['PA', 'PB'])
    t = applyRealmEvent(t, { type: 'presence.update', time: '2026-01-01T00:00:06.000Z', peerId: 'PB', workers: [{ id: 'x', backend: 'sd', kinds: ['imagine'], models: [], health: { ...health, state: 'benched' } }], health: { ...nodeHealth, load: 0.5 } })
    assert.equal(t.PB.health?.load, 0.5)
    assert.equal(workerState(t.PB.workers[0].health), 'benched')
    t = applyRealmEvent(t, { type: 'peer.disconnect', time: '2026-01-01T00:00:07.000Z', peerId: 'PB' })
    assert.equal(t.PB.connected, false)
    const before = t
    assert.equal(applyRealmEvent(t, { type: 'task.done', time: 'x', peerId: 'PB' }), before)
    t = applyRealmEvent(t, { type: 'peer.leave', time: '2026-01-01T00:00:08.000Z', peerId: 'PB' })
    assert.deepEqual(Object.keys(t), ['PA'])
  })

  it('a busy worker is one with every slot taken and a queue', () => {
    assert.equal(workerState({ ...health, inFlight: 1, queueDepth: 2 }), 'busy')
    assert.equal(workerState({ ...health, inFlight: 1, queueDepth: 0 }), 'ok')
    assert.equal(workerState(undefined), 'unknown')
  })
})

describe('ui: formatting', () => {
  it('durations, queue lines, bytes, percents', () => {
    assert.equal(formatDuration(850), '850 ms')
    assert.equal(formatDuration(1234), '1.2 s')
    assert.equal(formatDuration(12_400), '12 s')
    assert.equal(formatDuration(125_000), '2 min 5 s')
    assert.equal(formatDuration(3_780_000), '1 h 3 min')
    assert.equal(formatDuration(undefined), '—')
    assert.equal(formatDuration(-1), '—')
    assert.equal(formatQueue(2, 12_000), '#3 in queue · about 12 s')
    assert.equal(formatQueue(0, 0), '#1 in queue')
    assert.equal(formatBytes(512), '512 B')
    assert.equal(formatBytes(1536), '1.5 KiB')
    assert.equal(formatBytes(12 * 1024 * 1024), '12 MiB')
    assert.equal(formatPercent(0.423), '42 %')
    assert.equal(formatPercent(7), '100 %')
  })

  it('ids, prices, costs, ages, titles', () => {
    assert.equal(shortPeerId('12D3KooWAbCdEfGhIjKlMnOp'), '12D3Ko…MnOp')
    assert.equal(shortPeerId('short'), 'short')
    assert.equal(formatPrice(0), 'free')
    assert.equal(formatPrice(0.002, 'token'), '0.002 / token')
    assert.equal(formatPrice(undefined), 'no price set')
    assert.equal(formatCredits(1234.5), '1,235')
    assert.equal(formatCredits(0.000123456), '0.00012')
    assert.equal(taskCost(10, 0.5), 5)
    assert.equal(taskCost(undefined, 0.5), undefined)
    assert.equal(formatAgo(Date.parse('2026-01-01T00:00:00Z'), Date.parse('2026-01-01T00:03:10Z')), '3 min ago')
    assert.equal(formatAgo('2026-01-01T00:00:00Z', Date.parse('2026-01-03T00:00:00Z')), '2026-01-01')
    assert.equal(titleFrom('  hello\n  world  '), 'hello world')
    assert.equal(titleFrom(''), 'New chat')
    assert.equal([...titleFrom('é'.repeat(100), 10)].length, 10)
  })
})

describe('ui: image scaling', () => {
  it('fits within the longest side, keeps the aspect, never enlarges', () => {
    assert.deepEqual(fitWithin(4000, 3000), { width: 1024, height: 768 })
    assert.deepEqual(fitWithin(3000, 4000), { width: 768, height: 1024 })
    assert.deepEqual(fitWithin(640, 480), { width: 640, height: 480 })
    assert.deepEqual(fitWithin(10_000, 1), { width: 1024, height: 1 })
    assert.deepEqual(fitWithin(0, 10), { width: 0, height: 0 })
    fc.assert(fc.property(fc.integer({ min: 1, max: 20_000 }), fc.integer({ min: 1, max: 20_000 }), (w, h) => {
      const s = fitWithin(w, h)
      assert.ok(s.width <= Math.max(w, MAX_IMAGE_SIDE_PX) && s.height <= Math.max(h, MAX_IMAGE_SIDE_PX))
      assert.ok(Math.max(s.width, s.height) <= MAX_IMAGE_SIDE_PX)
      assert.ok(s.width >= 1 && s.height >= 1)
      if (w >= h && w > 50 && h > 50) assert.ok(Math.abs(s.width / s.height - w / h) < 0.05 * (w / h))
    }), { seed: 7, numRuns: 500 })
  })

  it('PNG stays PNG, other images become JPEG; data URLs parse; sizes and problems', () => {
    assert.equal(outputType('image/png'), 'image/png')
    assert.equal(outputType('image/webp'), 'image/jpeg')
    assert.deepEqual(parseDataUrl('data:image/png;base64,iVBORw0K'), { mime: 'image/png', data: 'iVBORw0K' })
    assert.equal(parseDataUrl('data:text/html,<script>'), undefined)
    assert.equal(parseDataUrl('javascript:alert(1)'), undefined)
    assert.equal(base64Bytes('AAAA'), 3)
    assert.equal(base64Bytes('AAA='), 2)
    assert.equal(attachProblem({ type: 'image/png', size: 10 }), undefined)
    assert.match(attachProblem({ type: 'text/html', size: 10 })!, /not an image/)
    assert.match(attachProblem({ type: 'image/png', size: 100 * 1024 * 1024 })!, /too large/)
  })

  it('images a peer returns are shown as raster images only: any other media type is inert bytes', () => {
    assert.equal(dataUrl('image/png', 'AAAA'), 'data:image/png;base64,AAAA')
    assert.equal(dataUrl(' Image/JPEG ', 'AAAA'), 'data:image/jpeg;base64,AAAA')
    for (const hostile of ['text/html', 'image/svg+xml', 'application/xhtml+xml', 'image/png;charset=x,<script>', '']) {
      assert.equal(dataUrl(hostile, 'AAAA'), 'data:application/octet-stream;base64,AAAA', hostile)
    }
  })
})

describe('ui: gallery bounds', () => {
  it('evicts the oldest beyond the count or byte cap', () => {
    const items = [1, 2, 3, 4].map(i => ({ id: `g${i}`, createdAt: i, bytes: 10 }))
    assert.deepEqual(evictions(items, 3, 1000), ['g1'])
    assert.deepEqual(evictions(items, 10, 25).sort(), ['g1', 'g2'])
    assert.deepEqual(evictions(items, 10, 1000), [])
  })

  it('names downloads from the prompt and seed', () => {
    assert.equal(downloadName({ prompt: 'A Lighthouse, at dusk!', seed: 42, mime: 'image/png', createdAt: 1 }), 'rentahal-a-lighthouse-at-dusk-42.png')
    assert.equal(downloadName({ prompt: '<<<>>>', mime: 'image/jpeg', createdAt: 7 }), 'rentahal-image-7.jpg')
  })
})

describe('ui: sysop console', () => {
  const ev = (type: string, fields: Record<string, unknown> = {}) => ({ type, time: '2026-01-01T00:00:00.000Z', ...fields })

  it('files events under their topic and filters by topic and text', () => {
    let s = emptyConsole()
    s = pushEvent(s, ev('task.started', { id: 'T1', peerId: 'P' }))
    s = pushEvent(s, ev('peer.join', { peerId: 'P' }))
    s = pushEvent(s, ev('sysop.blocked', { entry: '10.0.0.0/8', reason: 'spam' }))
    assert.deepEqual(s.entries.map(e => e.topic), ['tasks', 'peers', 'system'])
    assert.deepEqual(visibleEntries(s, { topics: ['tasks', 'system'], text: '' }).map(e => e.event.type), ['task.started', 'sysop.blocked'])
    assert.deepEqual(visibleEntries(s, { topics: ['tasks', 'peers', 'system', 'presence'], text: 'SPAM' }).map(e => e.event.type), ['sysop.blocked'])
    assert.equal(topicOfType('queue.moved'), 'tasks')
    assert.equal(topicOfType('presence.update'), 'presence')
  })

  it('pause holds new events (bounded) and resume shows them; the list is bounded', () => {
    let s = setPaused(emptyConsole(), true)
    for (let i = 0; i < CONSOLE_MAX_HELD + 5; i++) s = pushEvent(s, ev('x.y', { i }))
    assert.equal(s.entries.length, 0)
    assert.equal(s.held.length, CONSOLE_MAX_HELD)
    assert.equal(s.droppedWhilePaused, 5)
    s = setPaused(s, false)
    assert.equal(s.held.length, 0)
    assert.equal(s.entries.length, CONSOLE_MAX_EVENTS)
    assert.equal(clearConsole(s).entries.length, 0)
  })

  it('one line per event, long fields cut', () => {
    assert.equal(eventLine(ev('a.b', { x: 1, y: 'two', z: undefined })), 'x=1 y=two')
    assert.ok(eventLine(ev('a.b', { long: 'z'.repeat(1000) })).length < 220)
  })

  it('tracks running tasks from task events', () => {
    let tasks = applyLiveTask([], ev('task.submitted', { id: 'T1', requester: 'user:U1', kind: 'chat', model: 'm' }))
    tasks = applyLiveTask(tasks, ev('task.started', { id: 'T1', peerId: 'P' }))
    assert.deepEqual(tasks.map(t => [t.id, t.state, t.peerId, t.requester]), [['T1', 'running', 'P', 'user:U1']])
    tasks = applyLiveTask(tasks, ev('task.done', { id: 'T1' }))
    assert.deepEqual(tasks, [])
  })
})

describe('ui: sysop answers', () => {
  it('reads the blocklist and users whatever their exact shape', () => {
    assert.deepEqual(normalizeBlocklist({ entries: [
      { peerId: '12D3KooWx', kind: 'peer', entry: '12D3KooWx', reason: '<script>x</script>', source: 'local', createdAt: '2026-01-01T00:00:00Z' },
      { cidr: '10.0.0.0/8', expiresAt: '2027-01-01T00:00:00Z' },
      { bogus: true }
    ] }), [
      { entry: '12D3KooWx', kind: 'peer', reason: '<script>x</script>', source: 'local', createdAt: '2026-01-01T00:00:00Z' },
      { entry: '10.0.0.0/8', kind: 'cidr', expiresAt: '2027-01-01T00:00:00Z' }
    ])
    assert.deepEqual(normalizeUsers({ users: [{ id: 'u1', name: 'Ann', banned: true, banReason: 'spam', firstSeen: 'a', lastSeen: 'b' }, { id: 'u2', nickname: 'Bob' }, { x: 1 }] }), [
      { id: 'u1', nickname: 'Ann', banned: true, banReason: 'spam', createdAt: 'a', lastSeenAt: 'b' },
      { id: 'u2', nickname: 'Bob', banned: false }
    ])
  })

  it('block bodies: a CIDR, a bare IPv4 or IPv6 address (as a range), or a peer id; reason trimmed', () => {
    assert.deepEqual(blockBody(' 10.0.0.0/8 ', '  spam '), { cidr: '10.0.0.0/8', reason: 'spam' })
    assert.deepEqual(blockBody(' 203.0.113.7 ', 'flood'), { cidr: '203.0.113.7', reason: 'flood' })
    assert.deepEqual(blockBody('2001:db8::1', ''), { cidr: '2001:db8::1' })
    assert.deepEqual(blockBody('::ffff:10.1.2.3', ''), { cidr: '::ffff:10.1.2.3' })
    assert.deepEqual(blockBody('12D3KooWx', ''), { peerId: '12D3KooWx' })
    assert.deepEqual(blockBody('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N', ''), { peerId: 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N' })
    assert.deepEqual(blockBody('12D3KooWx', '', '2030-01-01T00:00:00Z'), { peerId: '12D3KooWx', expiresAt: '2030-01-01T00:00:00Z' })
    assert.equal(isAddressTarget('bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe'), false, 'a CIDv1 peer id')
  })
})

describe('ui: themes, reconnection, nicknames', () => {
  it('the stored theme wins, else the system preference', () => {
    assert.equal(resolveTheme('dark', false), 'dark')
    assert.equal(resolveTheme(null, true), 'dark')
    assert.equal(resolveTheme('nonsense', false), 'light')
    assert.equal(otherTheme('light'), 'dark')
  })

  it('reconnects with growing, capped, jittered delays', () => {
    assert.equal(reconnectDelay(0, 0), 250)
    assert.equal(reconnectDelay(0, 0.999), 500)
    assert.ok(reconnectDelay(3, 0.5) > reconnectDelay(1, 0.5))
    assert.ok(reconnectDelay(1000, 0.999) <= RECONNECT_MAX_MS)
  })

  it('the UI checks nicknames as the node does', () => {
    for (const nick of ['Ann', '  Ann  ', '<img src=x onerror=alert(1)>', 'é'.repeat(32), '😀'.repeat(32), '', ' ', 'x'.repeat(33), 'a\u0000b', 'a\u202Eb', 'tab\there']) {
      let nodeOk = true
      try { checkNickname(nick) } catch { nodeOk = false }
      assert.equal(nicknameProblem(nick) === undefined, nodeOk, JSON.stringify(nick))
    }
  })
})
