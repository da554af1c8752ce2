/**
 * The web UI in Chromium against a real 2-node mesh with stand-in backends: node A (the gateway
 * the browser talks to, with a Stable Diffusion worker) and node B (an Ollama worker, its
 * `node.name` set to HTML). Chat streams, model output and every string other peers or users
 * supply is shown as text, vision takes images four ways, imagine shows its image, the queue
 * position shows while the worker is busy, themes, a phone-sized screen, the sysop panel, and
 * privacy between two browsers (two profiles = two users).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { solidPng, startA1111Standin, startOllamaStandin, type GenerationRequest } from '../standins/index.js'
import { FAKE_MEDIA_FLAGS, launchBrowser, requireChromium, screenshot, type BrowserInit, type TestBrowser } from './browser.js'
import type { RealmNode } from '../../node/node.js'

const ROOT = path.join(import.meta.dirname, '..', '..')
/** Liveness bound for anything the UI should show (never a speed goal) */
const UI_DEADLINE_MS = 20_000

/** Model output that would run code if it were rendered as HTML */
const XSS_REPLY = [
  'Here you go: <img src=x onerror="window.__pwned=1;alert(1)">',
  '',
  '<script>window.__pwned=2;alert(2)</script>',
  '',
  '[click me](javascript:window.__pwned=3;alert(3)) and <a href="javascript:alert(4)">raw link</a>',
  '',
  '<svg onload="window.__pwned=5"></svg> **bold is fine**'
].join('\n')
const PEER_NAME = '<img src=x onerror=alert("peer")>Bravo'
const NICKNAME = '<img src=x onerror=alert(7)>'

function reply (req: GenerationRequest): string {
  if (req.prompt.includes('XSS please')) return XSS_REPLY
  if (req.prompt.includes('block the worker')) return Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ')
  if (req.images.length > 0) return `I see ${req.images.length} image${req.images.length === 1 ? '' : 's'}. It looks colourful.`
  return `Tokens stream one by one across the realm, answering: ${req.prompt}`
}

/** width and height of a PNG (IHDR) or JPEG (SOF) */
function imageSize (b64: string): { mime: string, width: number, height: number } {
  const buf = Buffer.from(b64, 'base64')
  if (buf.subarray(1, 4).toString('ascii') === 'PNG') return { mime: 'image/png', width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) }
  for (let i = 2; i < buf.length - 9;) {
    if (buf[i] !== 0xff) { i++; continue }
    const marker = buf[i + 1]
    if (marker >= 0xc0 && marker <= 0xc3) return { mime: 'image/jpeg', height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) }
    i += 2 + buf.readUInt16BE(i + 2)
  }
  throw new Error('not a PNG or JPEG')
}

describe('e2e: web UI in Chromium', function () {
  this.timeout(120_000)
  const cleanup = new Cleanup()
  let a: RealmNode
  let b: RealmNode
  let ollama: Awaited<ReturnType<typeof startOllamaStandin>>
  let sd: Awaited<ReturnType<typeof startA1111Standin>>
  let browsers: TestBrowser[] = []

  async function open (hash = '', init: BrowserInit = {}): Promise<TestBrowser> {
    const browser = await launchBrowser(init)
    browsers.push(browser)
    await browser.page.goto(`${a.url}/${hash}`)
    return browser
  }

  /** The last answer in the thread */
  const lastAnswer = (page: Page) => page.locator('article.msg.assistant').last()

  async function ask (page: Page, text: string): Promise<void> {
    const box = page.getByLabel('Message', { exact: true })
    await box.fill(text)
    await box.press('Control+Enter')
  }

  async function waitDone (page: Page): Promise<void> {
    await page.locator('article.msg.assistant').last().and(page.locator('[data-status="done"]')).waitFor({ timeout: UI_DEADLINE_MS })
  }

  before(async function () {
    requireChromium(this)
    this.timeout(300_000)
    // `npm test` has built it already; a single test file run builds it here
    const build = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'build-if-stale.js'), '--if-stale'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], timeout: 280_000 })
    assert.ok(fs.existsSync(path.join(ROOT, 'ui', 'dist', 'index.html')), `the web UI builds: ${build.stderr?.toString() ?? ''}`)
    ollama = await startOllamaStandin({ reply })
    sd = await startA1111Standin()
    cleanup.add(async () => { await ollama.close(); await sd.close() })
    a = cleanup.node(await startTestNode({ workers: [`sd=${sd.url}`], config: (c) => { c.node.name = 'alpha' } }))
    b = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${ollama.url}`], config: (c) => { c.node.name = PEER_NAME } }))
    await waitFor(() => a.models().some(m => m.name === 'llava:7b') && a.models().some(m => m.kinds.includes('imagine')), 'every model on A')
  })

  afterEach(async function () {
    for (const browser of browsers) {
      // nothing the realm or its users supply may ever run in the page
      assert.deepEqual(browser.dialogs, [], `dialogs opened in "${this.currentTest?.title}"`)
      await browser.close()
    }
    browsers = []
    ollama.tokenDelayMs = 0
  })

  after(async () => { await cleanup.run() })

  it('chat: picks a model of the mesh, sends with Ctrl+Enter and streams the tokens in', async () => {
    ollama.tokenDelayMs = 120
    const { page } = await open('#/chat')
    const picker = page.getByLabel('Model', { exact: true })
    await picker.locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await picker.selectOption('llama3.2:1b')
    await assert.doesNotReject(page.getByText('Served by').waitFor({ timeout: UI_DEADLINE_MS }))
    await ask(page, 'hello realm')
    await page.locator('article.msg.user', { hasText: 'hello realm' }).waitFor()
    // the answer grows while the task runs: several partial texts before the end
    const partial = new Set<string>()
    await waitFor(async () => {
      const status = await lastAnswer(page).getAttribute('data-status')
      const text = await lastAnswer(page).locator('.markdown').textContent().catch(() => null)
      if (status === 'running' && text != null && text !== '') partial.add(text)
      return status === 'done'
    }, 'the answer to finish', UI_DEADLINE_MS, 20)
    assert.ok(partial.size >= 2, `tokens arrived one by one (${partial.size} partial texts)`)
    const answer = await lastAnswer(page).locator('.markdown').textContent()
    assert.equal(answer?.trim(), 'Tokens stream one by one across the realm, answering: hello realm')
    // which peer answered, with its timings
    const meta = await lastAnswer(page).locator('.meta').textContent()
    assert.match(meta ?? '', /Answered by/)
    assert.match(meta ?? '', /Bravo/)
    assert.match(meta ?? '', /llama3\.2:1b/)
    // the conversation is kept in this browser
    await page.reload()
    await page.locator('article.msg.user', { hasText: 'hello realm' }).waitFor()
    await screenshot(page, 'chat')
  })

  it('chat: multi-turn history is sent whole; copy; retry asks again; stop cancels the task on the node', async () => {
    const { page } = await open('#/chat', { permissions: ['clipboard-read', 'clipboard-write'] })
    await page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await page.getByLabel('Model', { exact: true }).selectOption('llama3.2:1b')
    ollama.clearRequests()
    await ask(page, 'first question')
    await waitDone(page)
    await ask(page, 'second question')
    await waitDone(page)
    const chats = ollama.requestsTo('/api/chat')
    const messages = (chats.at(-1)?.body as any).messages.map((m: any) => `${m.role}:${m.content}`)
    assert.deepEqual(messages, [
      'user:first question',
      'assistant:Tokens stream one by one across the realm, answering: first question',
      'user:second question'
    ])
    await lastAnswer(page).getByRole('button', { name: 'Copy' }).click()
    await lastAnswer(page).getByRole('button', { name: 'Copied' }).waitFor()
    assert.equal(await page.evaluate(async () => await navigator.clipboard.readText()), 'Tokens stream one by one across the realm, answering: second question')
    await lastAnswer(page).getByRole('button', { name: 'Retry' }).click()
    await waitDone(page)
    assert.equal(await page.locator('article.msg.assistant').count(), 2)
    assert.equal(ollama.requestsTo('/api/chat').length, 3)

    ollama.tokenDelayMs = 300
    await ask(page, 'block the worker with a long answer')
    await lastAnswer(page).and(page.locator('[data-status="running"]')).waitFor({ timeout: UI_DEADLINE_MS })
    await page.getByRole('button', { name: 'Stop' }).click()
    await lastAnswer(page).and(page.locator('[data-status="cancelled"]')).waitFor({ timeout: UI_DEADLINE_MS })
    await waitFor(() => ollama.requestsTo('/api/chat').at(-1)?.outcome === 'client-closed', 'the backend request to be dropped')
    assert.equal(await page.getByRole('button', { name: 'Send' }).count(), 1)
  })

  it('model output is shown as text: no script runs, no element is injected, no javascript: link', async () => {
    const browser = await open('#/chat')
    const { page } = browser
    await page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await page.getByLabel('Model', { exact: true }).selectOption('llama3.2:1b')
    await ask(page, 'XSS please')
    await waitDone(page)
    const md = lastAnswer(page).locator('.markdown')
    const text = await md.textContent() ?? ''
    assert.ok(text.includes('<img src=x onerror="window.__pwned=1;alert(1)">'), text)
    assert.ok(text.includes('<script>window.__pwned=2;alert(2)</script>'), text)
    assert.ok(text.includes('<svg onload="window.__pwned=5"></svg>'), text)
    assert.equal(await md.locator('strong', { hasText: 'bold is fine' }).count(), 1, 'Markdown still renders')
    assert.equal(await md.locator('img, script, svg, iframe, [onerror], [onload], [onclick]').count(), 0)
    assert.equal(await page.locator('a[href^="javascript:" i]').count(), 0)
    assert.equal(await md.getByText('click me').count(), 1)
    await md.getByText('click me').click()
    await page.waitForTimeout(200)
    assert.equal(await page.evaluate(() => (window as any).__pwned), undefined)
    assert.deepEqual(browser.errors.filter(e => !/Failed to load resource/.test(e)), [])
  })

  it('strings other peers and users supply are text: a peer\'s HTML name, a nickname with HTML', async () => {
    const { page } = await open('#/realm')
    const row = page.locator('td.peer', { hasText: 'Bravo' })
    await row.waitFor({ timeout: UI_DEADLINE_MS })
    assert.equal((await row.locator('.name').textContent())?.trim(), PEER_NAME)
    await page.getByRole('button', { name: 'Set nickname' }).click()
    await page.getByLabel('Nickname').fill(NICKNAME)
    await page.getByRole('button', { name: 'Save' }).click()
    await page.locator('.nick', { hasText: NICKNAME }).waitFor()
    await page.reload()
    await page.locator('.nick', { hasText: NICKNAME }).waitFor({ timeout: UI_DEADLINE_MS })
    await page.goto(`${a.url}/#/chat`)
    await page.getByText('Served by').waitFor({ timeout: UI_DEADLINE_MS })
    assert.ok((await page.locator('.providers').textContent())?.includes(PEER_NAME))
    assert.equal(await page.locator('img[src="x"]').count(), 0)
    await page.goto(`${a.url}/#/realm`)
    await page.locator('td.peer', { hasText: 'Bravo' }).waitFor({ timeout: UI_DEADLINE_MS })
    await page.locator('td', { hasText: 'llama3.2:1b' }).first().waitFor()
    await screenshot(page, 'realm', { fullPage: true })
  })

  it('vision: an uploaded image is scaled down and sent with the question; only vision models are offered', async () => {
    const { page } = await open('#/vision')
    const picker = page.getByLabel('Vision model')
    await picker.locator('option').first().waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    assert.deepEqual(await picker.locator('option').allTextContents().then(t => t.map(s => s.split(' — ')[0])), ['llava:7b'])
    const png = solidPng(2000, 1000, [200, 30, 30])
    await page.locator('input[type="file"]').setInputFiles({ name: 'red.png', mimeType: 'image/png', buffer: png })
    await page.locator('ul[aria-label="Attached images"] img').waitFor()
    ollama.clearRequests()
    await ask(page, 'What colour is this?')
    await waitDone(page)
    assert.match(await lastAnswer(page).textContent() ?? '', /I see 1 image/)
    const sent = (ollama.requestsTo('/api/chat').at(-1)?.body as any).messages.at(-1)
    assert.equal(sent.images.length, 1)
    assert.deepEqual(imageSize(sent.images[0]), { mime: 'image/png', width: 1024, height: 512 })
    assert.equal(await page.locator('article.msg.user img').count(), 1)
    await screenshot(page, 'vision')
  })

  it('vision: an image dropped on the conversation or pasted into the message box is attached', async () => {
    const { page } = await open('#/vision')
    await page.getByLabel('Vision model').locator('option').first().waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    const b64 = solidPng(64, 48, [10, 200, 10]).toString('base64')
    await page.evaluate((data) => {
      const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0))
      const dt = new DataTransfer()
      dt.items.add(new File([bytes], 'drop.png', { type: 'image/png' }))
      const target = document.querySelector('.thread-col')!
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }))
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
    }, b64)
    await page.locator('ul[aria-label="Attached images"] img').nth(0).waitFor()
    await page.evaluate((data) => {
      const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0))
      const dt = new DataTransfer()
      dt.items.add(new File([bytes], 'paste.png', { type: 'image/png' }))
      document.querySelector('textarea#message-vision')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }))
    }, b64)
    await page.locator('ul[aria-label="Attached images"] img').nth(1).waitFor()
    ollama.clearRequests()
    await ask(page, 'Compare these two')
    await waitDone(page)
    assert.match(await lastAnswer(page).textContent() ?? '', /I see 2 images/)
    const sent = (ollama.requestsTo('/api/chat').at(-1)?.body as any).messages.at(-1)
    assert.deepEqual(sent.images.map((i: string) => imageSize(i)), [{ mime: 'image/png', width: 64, height: 48 }, { mime: 'image/png', width: 64, height: 48 }])
  })

  it('vision: a webcam snapshot (Chromium\'s fake camera) is attached as a JPEG', async () => {
    const { page } = await open('#/vision', { args: [...FAKE_MEDIA_FLAGS] })
    await page.getByLabel('Vision model').locator('option').first().waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await page.getByRole('button', { name: 'Camera' }).click()
    const snap = page.getByRole('button', { name: 'Take snapshot' })
    await snap.and(page.locator(':enabled')).waitFor({ timeout: UI_DEADLINE_MS })
    await snap.click()
    await page.locator('ul[aria-label="Attached images"] img').waitFor()
    ollama.clearRequests()
    await ask(page, 'What do you see?')
    await waitDone(page)
    const sent = (ollama.requestsTo('/api/chat').at(-1)?.body as any).messages.at(-1)
    const size = imageSize(sent.images[0])
    assert.equal(size.mime, 'image/jpeg')
    assert.ok(size.width > 0 && size.width <= 1024 && size.height <= 1024, JSON.stringify(size))
  })

  it('imagine: shows progress, then the image, downloadable, kept in the gallery', async () => {
    sd.tokenDelayMs = 60
    try {
      const { page } = await open('#/imagine')
      await page.getByLabel('Image model').locator('option').first().waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
      await page.getByLabel('Prompt', { exact: true }).fill('A lighthouse at dusk')
      await page.getByLabel('Negative prompt').fill('blurry')
      await page.getByLabel('Steps').fill('12')
      await page.getByLabel('Seed').fill('42')
      await page.getByRole('button', { name: 'Generate' }).click()
      await page.locator('progress').waitFor({ timeout: UI_DEADLINE_MS })
      const img = page.locator('figure img')
      await img.waitFor({ timeout: UI_DEADLINE_MS })
      assert.equal(await img.getAttribute('alt'), 'Generated: A lighthouse at dusk')
      assert.ok(await img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth === 512))
      const download = page.locator('.result a[download]')
      assert.match(await download.getAttribute('download') ?? '', /^rentahal-a-lighthouse-at-dusk-42\.png$/)
      const txt2img = sd.requestsTo('/sdapi/v1/txt2img').at(-1)?.body as any
      assert.equal(txt2img.prompt, 'A lighthouse at dusk')
      assert.equal(txt2img.negative_prompt, 'blurry')
      assert.equal(txt2img.steps, 12)
      assert.equal(txt2img.seed, 42)
      await page.locator('.gallery li').first().waitFor()
      await page.reload()
      await page.locator('.gallery li', { hasText: 'A lighthouse at dusk' }).waitFor({ timeout: UI_DEADLINE_MS })
      await page.locator('.gallery li button.thumb').first().click()
      await page.locator('figure img').waitFor()
      await screenshot(page, 'imagine', { fullPage: true })
    } finally {
      sd.tokenDelayMs = 2
    }
  })

  it('shows the queue position while the worker is busy', async () => {
    ollama.tokenDelayMs = 150
    // another requester occupies the only slot of B's worker
    const blocker = fetch(`${a.url}/realm/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'block the worker please' }] } })
    }).then(async r => await r.text())
    await waitFor(() => ollama.requestsTo('/api/chat').some(r => r.outcome === undefined), 'the blocker to run')
    const { page } = await open('#/chat')
    await page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await page.getByLabel('Model', { exact: true }).selectOption('llama3.2:1b')
    await ask(page, 'am I queued?')
    const queued = lastAnswer(page).locator('.queue')
    await queued.waitFor({ timeout: UI_DEADLINE_MS })
    assert.match(await queued.textContent() ?? '', /Waiting: #1 in queue/)
    await screenshot(page, 'chat-queued')
    await blocker
    await waitDone(page)
    assert.equal(await lastAnswer(page).locator('.queue').count(), 0)
  })

  it('themes: follows the system by default, toggles, and remembers the choice', async () => {
    const { page } = await open('#/chat', { colorScheme: 'dark' })
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark')
    await page.getByRole('button', { name: 'Switch to light theme' }).click()
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light')
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor)
    await page.reload()
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light')
    await page.getByRole('button', { name: 'Switch to dark theme' }).click()
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark')
    assert.notEqual(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), bg)
    await page.getByLabel('Model', { exact: true }).waitFor({ timeout: UI_DEADLINE_MS })
    await screenshot(page, 'chat-dark')
  })

  it('a phone-sized screen (390×844) renders the chat usable', async () => {
    const { page } = await open('#/chat', { viewport: { width: 390, height: 844 } })
    const box = page.getByLabel('Message', { exact: true })
    await page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await page.getByLabel('Model', { exact: true }).selectOption('llama3.2:1b')
    for (const el of [box, page.getByRole('button', { name: 'Send' }), page.getByLabel('Model', { exact: true }), page.getByRole('link', { name: 'Imagine' })]) {
      const r = await el.boundingBox()
      assert.ok(r != null && r.x >= 0 && r.y >= 0 && r.x + r.width <= 390 + 0.5 && r.y + r.height <= 844 + 0.5, `${JSON.stringify(r)} within the screen`)
    }
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling')
    await box.fill('hello from a phone')
    await page.getByRole('button', { name: 'Send' }).click()
    await waitDone(page)
    const answer = await lastAnswer(page).boundingBox()
    assert.ok(answer != null && answer.x + answer.width <= 390 + 0.5)
    await screenshot(page, 'chat-phone')
  })

  it('keyboard: Ctrl+Enter sends from the message box; views are links; focus moves to the new view', async () => {
    const { page } = await open('#/chat')
    await page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await page.getByRole('link', { name: 'Realm' }).focus()
    await page.keyboard.press('Enter')
    await page.waitForFunction(() => document.activeElement?.tagName === 'H1' && document.activeElement.textContent === 'Realm')
    await page.getByRole('link', { name: 'Chat' }).click()
    await page.getByLabel('Message', { exact: true }).focus()
    await page.keyboard.type('typed with the keyboard')
    await page.keyboard.press('Control+Enter')
    await waitDone(page)
    assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), '')
    assert.ok(await page.evaluate(() => document.activeElement?.id === 'message-chat'), 'focus stays in the message box')
  })

  it('privacy: another browser (another user) sees none of this user\'s history, prompts, identity or spending', async () => {
    const alice = await open('#/chat')
    const bob = await open('#/realm')
    await alice.page.getByRole('button', { name: 'Set nickname' }).click()
    await alice.page.getByLabel('Nickname').fill('Alice-the-secret')
    await alice.page.getByRole('button', { name: 'Save' }).click()
    const aliceId = await alice.page.evaluate(async () => (await (await fetch('/realm/me')).json()).id)
    // Bob's page listens to the events socket's tasks topic from the start
    await bob.page.evaluate(() => {
      const w = window as any
      w.__seen = []
      const ws = new WebSocket(`ws://${location.host}/realm/events?topics=tasks,peers`)
      ws.onmessage = (m) => { w.__seen.push(JSON.parse(m.data)) }
      w.__ws = ws
    })
    await bob.page.waitForFunction(() => (window as any).__seen.some((e: any) => e.type === 'hello'))
    await alice.page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await alice.page.getByLabel('Model', { exact: true }).selectOption('llama3.2:1b')
    await ask(alice.page, 'my private prompt 7731')
    await waitDone(alice.page)
    const taskId = await alice.page.evaluate(async () => (await (await fetch('/realm/tasks')).json()).tasks[0].id)

    // the API, from Bob's browser
    const bobView = await bob.page.evaluate(async (id) => {
      const list = await (await fetch('/realm/tasks')).json()
      const one = await fetch(`/realm/tasks/${id}`)
      const del = await fetch(`/realm/tasks/${id}`, { method: 'DELETE' })
      const me = await (await fetch('/realm/me')).json()
      return { ids: list.tasks.map((t: any) => t.id), one: one.status, oneBody: await one.json(), del: del.status, me }
    }, taskId)
    assert.ok(!bobView.ids.includes(taskId))
    assert.equal(bobView.one, 404)
    assert.equal(bobView.oneBody.error.code, 'TASK_NOT_FOUND')
    assert.equal(bobView.del, 404)
    assert.notEqual(bobView.me.id, aliceId)
    // the events socket, from Bob's browser
    const seen = await bob.page.evaluate(() => (window as any).__seen as any[])
    assert.deepEqual(seen.filter(e => e.type.startsWith('task.')), [])
    // the UI, in Bob's browser
    await bob.page.getByRole('button', { name: 'Refresh' }).click()
    await bob.page.waitForTimeout(500)
    const page = await bob.page.content()
    for (const secret of ['my private prompt 7731', 'Alice-the-secret', aliceId, taskId]) assert.ok(!page.includes(secret), `Bob's page shows ${secret}`)
    await bob.page.goto(`${a.url}/#/chat`)
    assert.equal(await bob.page.locator('article.msg').count(), 0)
    assert.ok(!(await bob.page.content()).includes('my private prompt 7731'))
    // while Alice sees her own task in her history
    await alice.page.goto(`${a.url}/#/realm`)
    await alice.page.locator('#my-tasks-title').waitFor()
    await alice.page.locator('td', { hasText: 'llama3.2:1b' }).first().waitFor({ timeout: UI_DEADLINE_MS })
  })

  describe('sysop panel', () => {
    const token = (): string => fs.readFileSync(path.join(a.dataDir, 'sysop.token'), 'utf8').trim()

    it('refuses without the token (shows the 401), and with a wrong one', async () => {
      const { page } = await open('#/sysop')
      await page.locator('.refusal').waitFor({ timeout: UI_DEADLINE_MS })
      assert.match(await page.locator('.refusal').textContent() ?? '', /401/)
      assert.equal(await page.getByRole('heading', { name: 'Blocklist' }).count(), 0)
      await page.getByLabel('Sysop token').fill('not-the-token')
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.locator('.refusal', { hasText: '401' }).waitFor()
      assert.equal(await page.getByRole('heading', { name: 'Blocklist' }).count(), 0)
      assert.equal(await page.evaluate(() => sessionStorage.getItem('rah.sysop')), null)
      await screenshot(page, 'sysop-refused')
    })

    it('with the token: blocks and unblocks a peer (reason shown as text), broadcasts to every UI (as text), benches a worker, keeps the session while the tab is open', async () => {
      const sysop = await open('#/sysop')
      const user = await open('#/chat')
      const { page } = sysop
      await page.getByLabel('Sysop token').fill(token())
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('heading', { name: 'Blocklist' }).waitFor({ timeout: UI_DEADLINE_MS })
      assert.equal(await page.evaluate(() => sessionStorage.getItem('rah.sysop')), '1')
      await page.reload()
      await page.getByRole('heading', { name: 'Blocklist' }).waitFor({ timeout: UI_DEADLINE_MS })

      const reason = '<img src=x onerror=alert("reason")> spam'
      await page.getByLabel('Peer id or CIDR to block').fill('10.99.0.0/16')
      await page.getByLabel('Reason').fill(reason)
      await page.getByRole('button', { name: 'Block', exact: true }).click()
      const row = page.locator('tr', { hasText: '10.99.0.0/16' })
      await row.waitFor({ timeout: UI_DEADLINE_MS })
      assert.equal((await row.locator('.reason').textContent())?.trim(), reason)
      assert.equal(await page.locator('img[src="x"]').count(), 0)
      await page.locator('.log li', { hasText: 'sysop.blocked' }).first().waitFor({ timeout: UI_DEADLINE_MS })

      const message = '<b>Maintenance</b> at <img src=x onerror=alert("bc")> noon'
      await page.getByLabel('Text of the broadcast').fill(message)
      await page.getByRole('button', { name: 'Send broadcast' }).click()
      for (const p of [page, user.page]) {
        const shown = p.locator('.broadcast .text')
        await shown.waitFor({ timeout: UI_DEADLINE_MS })
        assert.equal(await shown.textContent(), message)
        assert.equal(await p.locator('.broadcast b, .broadcast img').count(), 0)
      }

      const benchRow = page.locator('section[aria-label="This node\'s workers"] tr', { hasText: 'sd' })
      await benchRow.getByRole('button', { name: 'Bench' }).click()
      await benchRow.locator('.badge', { hasText: 'benched' }).waitFor({ timeout: UI_DEADLINE_MS })
      await benchRow.getByRole('button', { name: 'Unbench' }).click()
      await benchRow.getByRole('button', { name: 'Bench' }).waitFor({ timeout: UI_DEADLINE_MS })

      await page.locator('tr', { hasText: '10.99.0.0/16' }).getByRole('button', { name: /Unblock/ }).click()
      await page.locator('tr', { hasText: '10.99.0.0/16' }).waitFor({ state: 'detached', timeout: UI_DEADLINE_MS })
      await page.getByLabel('Peer id or CIDR to block').fill('10.98.0.0/16')
      await page.getByLabel('Reason').fill('kept for the screenshot')
      await page.getByRole('button', { name: 'Block', exact: true }).click()
      await page.locator('tr', { hasText: '10.98.0.0/16' }).waitFor({ timeout: UI_DEADLINE_MS })
      await screenshot(page, 'sysop', { fullPage: true })
      await page.getByRole('button', { name: /Unblock 10\.98/ }).click()
    })

    it('sees users (nicknames as text), cancels a user\'s task, bans and unbans a user', async () => {
      const sysop = await open('#/sysop')
      const user = await open('#/chat')
      await user.page.getByRole('button', { name: 'Set nickname' }).click()
      await user.page.getByLabel('Nickname').fill('<i>Mallory</i>')
      await user.page.getByRole('button', { name: 'Save' }).click()
      await user.page.locator('.nick', { hasText: '<i>Mallory</i>' }).waitFor()
      const { page } = sysop
      await page.getByLabel('Sysop token').fill(token())
      await page.getByRole('button', { name: 'Sign in' }).click()
      const userRow = page.locator('tr', { hasText: '<i>Mallory</i>' })
      await userRow.waitFor({ timeout: UI_DEADLINE_MS })
      assert.equal(await userRow.locator('i').count(), 0)

      ollama.tokenDelayMs = 300
      await user.page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
      await user.page.getByLabel('Model', { exact: true }).selectOption('llama3.2:1b')
      await ask(user.page, 'block the worker for a while')
      const taskRow = page.locator('section[aria-labelledby="tasks-title"] tr', { hasText: 'llama3.2:1b' })
      await taskRow.waitFor({ timeout: UI_DEADLINE_MS })
      await taskRow.getByRole('button', { name: /Cancel task/ }).click()
      await lastAnswer(user.page).and(user.page.locator('[data-status="cancelled"], [data-status="error"]')).waitFor({ timeout: UI_DEADLINE_MS })

      await userRow.getByRole('button', { name: 'Ban' }).click()
      await userRow.locator('.badge', { hasText: 'banned' }).waitFor({ timeout: UI_DEADLINE_MS })
      await user.page.reload()
      await user.page.getByRole('alert').filter({ hasText: 'banned' }).first().waitFor({ timeout: UI_DEADLINE_MS })
      await userRow.getByRole('button', { name: 'Unban' }).click()
      await userRow.getByRole('button', { name: 'Ban' }).waitFor({ timeout: UI_DEADLINE_MS })
      await user.page.reload()
      await user.page.getByLabel('Message', { exact: true }).waitFor()
      assert.equal(await user.page.getByText('has been banned').count(), 0)
    })
  })
})
