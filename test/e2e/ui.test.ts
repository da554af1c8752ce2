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
import { OLLAMA_DEFAULT_MODELS, solidPng, startA1111Standin, startOllamaStandin, type GenerationRequest } from '../standins/index.js'
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
  '<svg onload="window.__pwned=5"></svg> **bold is fine**',
  '',
  '```js',
  'const answer = await realm.ask("</code><img src=x onerror=alert(6)>")',
  '```'
].join('\n')
const PEER_NAME = '<img src=x onerror=alert("peer")>Bravo'
const NICKNAME = '<img src=x onerror=alert(7)>'
/** A model name a peer's backend supplies, with HTML in it (the schema allows printable text) */
const MODEL_NAME = '<img src=x onerror=alert("model")>:evil'

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
    ollama = await startOllamaStandin({ reply, models: [...OLLAMA_DEFAULT_MODELS, { name: MODEL_NAME }] })
    sd = await startA1111Standin()
    cleanup.add(async () => { await ollama.close(); await sd.close() })
    a = cleanup.node(await startTestNode({ workers: [`sd=${sd.url}`], config: (c) => { c.node.name = 'alpha' } }))
    b = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${ollama.url}`], config: (c) => { c.node.name = PEER_NAME } }))
    await waitFor(() => a.models().some(m => m.name === 'llava:7b') && a.models().some(m => m.name === MODEL_NAME) && a.models().some(m => m.kinds.includes('imagine')), 'every model on A')
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
    // grouped by kind, each with how many peers serve it and the price; then who serves the chosen one
    assert.equal(await picker.locator('optgroup[label="Chat"] option', { hasText: 'llama3.2:1b' }).count(), 1, 'chat models under "Chat"')
    assert.match(await picker.locator('option', { hasText: 'llama3.2:1b' }).textContent() ?? '', /llama3\.2:1b — 1 peer/)
    const offered = (await picker.locator('option').evaluateAll((os: HTMLOptionElement[]) => os.map(o => o.value))).sort()
    assert.deepEqual(offered, a.models().filter(m => m.kinds.includes('chat')).map(m => m.name).sort(), 'the chat models of the mesh, and only those')
    await assert.doesNotReject(page.getByText('Served by').waitFor({ timeout: UI_DEADLINE_MS }))
    const providers = await page.locator('.providers').textContent() ?? ''
    assert.match(providers, /Bravo/)
    assert.match(providers, / · (free|no price set|[\d.,]+ \/ token)/, 'the price each peer asks')
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
    assert.match(meta ?? '', /· \d+(\.\d)? (ms|s)\b/, 'its timings')
    assert.match(meta ?? '', /first token \d+(\.\d)? (ms|s)\b/)
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
    // the code block is highlighted (highlight.js spans), and what looks like HTML inside it is text
    const code = md.locator('pre code.hljs.language-js')
    assert.equal(await code.count(), 1)
    assert.ok(await code.locator('span.hljs-keyword', { hasText: 'const' }).count() >= 1, 'keywords highlighted')
    assert.ok((await code.textContent() ?? '').includes('"</code><img src=x onerror=alert(6)>"'))
    assert.equal(await md.locator('img, script, svg, iframe, [onerror], [onload], [onclick]').count(), 0)
    assert.equal(await page.locator('a[href^="javascript:" i]').count(), 0)
    assert.equal(await md.getByText('click me').count(), 1)
    await md.getByText('click me').click()
    await page.waitForTimeout(200)
    assert.equal(await page.evaluate(() => (window as any).__pwned), undefined)
    assert.deepEqual(browser.errors.filter(e => !/Failed to load resource/.test(e)), [])
  })

  it('strings other peers and users supply are text: a peer\'s HTML name, a model name with HTML, a nickname with HTML', async () => {
    const { page } = await open('#/realm')
    const row = page.locator('td.peer', { hasText: 'Bravo' })
    await row.waitFor({ timeout: UI_DEADLINE_MS })
    assert.equal((await row.locator('.name').textContent())?.trim(), PEER_NAME)
    const models = page.locator('tr', { has: page.locator('td.peer', { hasText: 'Bravo' }) }).locator('td.models')
    await models.filter({ hasText: MODEL_NAME }).waitFor({ timeout: UI_DEADLINE_MS })
    await page.getByRole('button', { name: 'Set nickname' }).click()
    await page.getByLabel('Nickname').fill(NICKNAME)
    await page.getByRole('button', { name: 'Save' }).click()
    await page.locator('.nick', { hasText: NICKNAME }).waitFor()
    await page.reload()
    await page.locator('.nick', { hasText: NICKNAME }).waitFor({ timeout: UI_DEADLINE_MS })
    await page.goto(`${a.url}/#/chat`)
    await page.getByText('Served by').waitFor({ timeout: UI_DEADLINE_MS })
    assert.ok((await page.locator('.providers').textContent())?.includes(PEER_NAME))
    const picker = page.getByLabel('Model', { exact: true })
    assert.equal(await picker.locator('option', { hasText: MODEL_NAME }).count(), 1, 'the model name is an option\'s text')
    await picker.selectOption(MODEL_NAME)
    await ask(page, 'which model are you?')
    await waitDone(page)
    assert.ok((await lastAnswer(page).locator('.meta').textContent())?.includes(MODEL_NAME), 'the answering model, as text')
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
      await page.getByLabel('Size').selectOption('768x512')
      await page.getByLabel('Steps').fill('12')
      await page.getByLabel('Seed').fill('42')
      await page.getByRole('button', { name: 'Generate' }).click()
      await page.locator('progress').waitFor({ timeout: UI_DEADLINE_MS })
      const img = page.locator('figure img')
      await img.waitFor({ timeout: UI_DEADLINE_MS })
      assert.equal(await img.getAttribute('alt'), 'Generated: A lighthouse at dusk')
      assert.ok(await img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth === 768 && el.naturalHeight === 512))
      const download = page.locator('.result a[download]')
      assert.match(await download.getAttribute('download') ?? '', /^rentahal-a-lighthouse-at-dusk-42\.png$/)
      const [file] = await Promise.all([page.waitForEvent('download'), download.click()])
      assert.equal(file.suggestedFilename(), 'rentahal-a-lighthouse-at-dusk-42.png')
      const saved = fs.readFileSync(await file.path())
      assert.equal(saved.subarray(1, 4).toString('ascii'), 'PNG')
      assert.equal(saved.readUInt32BE(16), 768, 'the image itself is downloaded')
      const txt2img = sd.requestsTo('/sdapi/v1/txt2img').at(-1)?.body as any
      assert.equal(txt2img.prompt, 'A lighthouse at dusk')
      assert.equal(txt2img.negative_prompt, 'blurry')
      assert.equal(txt2img.width, 768)
      assert.equal(txt2img.height, 512)
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

  it('shows the queue position and ETA while the worker is busy, as the queue moves', async function () {
    // the waiting API tasks are submitted concurrently: in one CI run of several, one reached the
    // queue after the browser's, and the fair queue rightly put it ahead (3 → 5); a fresh try
    this.retries(2)
    ollama.tokenDelayMs = 150
    // an API client occupies the only slot of B's worker, and two others (their own API keys: other
    // requesters for the fair queue) wait before this browser's task
    const apiTask = async (content: string, key?: string): Promise<string> => await fetch(`${a.url}/realm/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content }] } })
    }).then(async r => await r.text())
    const running = ollama.requestsTo('/api/chat').length
    const blockers = [apiTask('block the worker please')]
    await waitFor(() => ollama.requestsTo('/api/chat').slice(running).some(r => r.outcome === undefined), 'the blocker to run')
    blockers.push(apiTask('block the worker a second time', 'api-key-one'), apiTask('block the worker a third time', 'api-key-two'))
    await waitFor(async () => (await Promise.all(['api-key-one', 'api-key-two'].map(async k => await (await fetch(`${a.url}/realm/tasks`, { headers: { authorization: `Bearer ${k}` } })).json()))).every(r => r.tasks.some((t: any) => t.status === 'queued')), 'the other two to wait')
    const { page } = await open('#/chat')
    await page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await page.getByLabel('Model', { exact: true }).selectOption('llama3.2:1b')
    await ask(page, 'am I queued?')
    const queued = lastAnswer(page).locator('.queue')
    await queued.waitFor({ timeout: UI_DEADLINE_MS })
    await screenshot(page, 'chat-queued')
    // every line the wait shows, until the answer starts
    const seen: string[] = []
    await waitFor(async () => {
      const text = await queued.textContent({ timeout: 50 }).catch(() => null)
      if (text != null && text !== seen.at(-1)) seen.push(text.trim())
      return await lastAnswer(page).getAttribute('data-status') !== 'queued'
    }, 'the answer to leave the queue', 60_000, 20)
    assert.ok(seen.length > 0 && seen.every(t => /^Waiting: #\d+ in queue( · about .+)?$/.test(t)), JSON.stringify(seen))
    assert.ok(seen.some(t => /in queue · about \d/.test(t)), `an ETA is shown: ${JSON.stringify(seen)}`)
    const places = seen.map(t => Number(/#(\d+)/.exec(t)![1]))
    assert.ok(places[0] >= 2, `behind the waiting task: ${JSON.stringify(seen)}`)
    assert.ok(places.includes(1), `then moves up: ${JSON.stringify(seen)}`)
    assert.deepEqual([...places].sort((x, y) => y - x), places, 'the place only moves up')
    await Promise.all(blockers)
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
    // every other view fits too: wide tables scroll inside their card, the page never sideways
    for (const [view, ready] of [['vision', 'Vision model'], ['imagine', 'Prompt'], ['realm', 'Your recent tasks'], ['sysop', 'Sysop token']] as const) {
      await page.getByRole('link', { name: view[0].toUpperCase() + view.slice(1) }).click()
      await (view === 'realm' ? page.getByRole('heading', { name: ready }) : page.getByLabel(ready, { exact: true })).waitFor({ timeout: UI_DEADLINE_MS })
      if (view === 'realm') await page.locator('td.peer', { hasText: 'Bravo' }).waitFor({ timeout: UI_DEADLINE_MS })
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `no sideways scrolling in ${view}`)
      await screenshot(page, `${view}-phone`, { fullPage: true })
    }
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

  it('labels: every control of every view has a name a screen reader can say', async () => {
    const { page } = await open('#/chat')
    await page.getByLabel('Model', { exact: true }).locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await ask(page, 'hello')
    await waitDone(page)
    /** controls with no accessible name: no <label>, aria-label(ledby) or text */
    const unnamed = async (): Promise<string[]> => await page.evaluate(() => Array.from(document.querySelectorAll('button, input:not([type="hidden"]), select, textarea, a[href]'))
      .filter(function (el) {
        const aria = el.getAttribute('aria-label')
        if (aria != null && aria.trim() !== '') return false
        const by = el.getAttribute('aria-labelledby')
        if (by != null && by.split(/\s+/).some(id => (document.getElementById(id)?.textContent ?? '').trim() !== '')) return false
        if (el instanceof HTMLInputElement || el instanceof HTMLSelectElement || el instanceof HTMLTextAreaElement) {
          return !Array.from(el.labels ?? []).some(l => (l.textContent ?? '').trim() !== '')
        }
        return (el.textContent ?? '').trim() === '' && (el.getAttribute('title') ?? '').trim() === ''
      })
      .map(el => el.outerHTML.slice(0, 120)))
    for (const view of ['chat', 'vision', 'imagine', 'realm', 'sysop']) {
      await page.goto(`${a.url}/#/${view}`)
      await page.locator('main h1').waitFor({ state: 'attached' })
      await page.waitForTimeout(300)
      assert.deepEqual(await unnamed(), [], `unnamed controls in ${view}`)
    }
    // and the sysop panel once signed in
    await page.getByLabel('Sysop token').fill(fs.readFileSync(path.join(a.dataDir, 'sysop.token'), 'utf8').trim())
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('heading', { name: 'Blocklist' }).waitFor({ timeout: UI_DEADLINE_MS })
    await page.locator('section[aria-label="Peers: health and traffic"] td.peer').first().waitFor({ timeout: UI_DEADLINE_MS })
    assert.deepEqual(await unnamed(), [], 'unnamed controls in the signed-in sysop panel')
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
    // Bob's own spending is his own: none
    assert.match(await bob.page.locator('section[aria-labelledby="my-tasks-title"]').textContent() ?? '', /\b0 tasks, 0 units used/)
    const page = await bob.page.content()
    for (const secret of ['my private prompt 7731', 'Alice-the-secret', aliceId, taskId]) assert.ok(!page.includes(secret), `Bob's page shows ${secret}`)
    await bob.page.goto(`${a.url}/#/chat`)
    assert.equal(await bob.page.locator('article.msg').count(), 0)
    assert.ok(!(await bob.page.content()).includes('my private prompt 7731'))
    // while Alice sees her own task in her history
    await alice.page.goto(`${a.url}/#/realm`)
    await alice.page.locator('#my-tasks-title').waitFor()
    await alice.page.locator('td', { hasText: 'llama3.2:1b' }).first().waitFor({ timeout: UI_DEADLINE_MS })
    assert.match(await alice.page.locator('section[aria-labelledby="my-tasks-title"]').textContent() ?? '', /\b1 task, [1-9][\d,]* units used/)
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

    it('with the token: blocks and unblocks address ranges and a bare IP (reason shown as text), broadcasts to every UI (as text), benches a worker, keeps the session while the tab is open', async () => {
      const sysop = await open('#/sysop')
      const user = await open('#/chat')
      const { page } = sysop
      await page.getByLabel('Sysop token').fill(token())
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('heading', { name: 'Blocklist' }).waitFor({ timeout: UI_DEADLINE_MS })
      assert.equal(await page.evaluate(() => sessionStorage.getItem('rah.sysop')), '1')
      // entered once: a reload of the tab stays signed in
      await page.reload()
      await page.getByRole('heading', { name: 'Blocklist' }).waitFor({ timeout: UI_DEADLINE_MS })
      assert.equal(await page.getByLabel('Sysop token').count(), 0)

      const reason = '<img src=x onerror=alert("reason")> spam'
      await page.getByLabel('Peer id, IP address or CIDR to block').fill('10.99.0.0/16')
      await page.getByLabel('Reason').fill(reason)
      await page.getByRole('button', { name: 'Block', exact: true }).click()
      const row = page.locator('tr', { hasText: '10.99.0.0/16' })
      await row.waitFor({ timeout: UI_DEADLINE_MS })
      assert.equal((await row.locator('.reason').textContent())?.trim(), reason)
      assert.equal(await page.locator('img[src="x"]').count(), 0)
      assert.ok(a.sysop.blocklist.isAddressBlocked('10.99.3.4'), 'the node blocks the range')
      await page.locator('.log li', { hasText: 'sysop.blocked' }).first().waitFor({ timeout: UI_DEADLINE_MS })

      // a bare address (no `/`) is an address block, not a peer id
      await page.getByLabel('Peer id, IP address or CIDR to block').fill('10.97.1.2')
      await page.getByLabel('Reason').fill('one noisy host')
      await page.getByRole('button', { name: 'Block', exact: true }).click()
      const ipRow = page.locator('tr', { hasText: 'one noisy host' })
      await ipRow.waitFor({ timeout: UI_DEADLINE_MS })
      assert.match(await ipRow.textContent() ?? '', /10\.97\.1\.2\/32\s*cidr/)
      assert.ok(a.sysop.blocklist.isAddressBlocked('10.97.1.2') && !a.sysop.blocklist.isAddressBlocked('10.97.1.3'))

      // the console: a text filter, topic filters, pause and resume
      const log = page.locator('ol.log li')
      await page.getByLabel('Filter events').fill('10.97.1.2')
      await log.filter({ hasText: 'sysop.blocked' }).first().waitFor({ timeout: UI_DEADLINE_MS })
      assert.ok((await log.allTextContents()).every(t => t.includes('10.97.1.2')), 'only matching events')
      await page.getByRole('checkbox', { name: 'system' }).uncheck()
      await log.filter({ hasText: 'No events' }).waitFor()
      await page.getByRole('checkbox', { name: 'system' }).check()
      await log.filter({ hasText: 'sysop.blocked' }).first().waitFor()
      await page.getByRole('button', { name: 'Pause' }).click()
      await ipRow.getByRole('button', { name: /Unblock/ }).click()
      await ipRow.waitFor({ state: 'detached', timeout: UI_DEADLINE_MS })
      await page.getByRole('button', { name: /^Resume \([1-9]\d* waiting\)$/ }).waitFor({ timeout: UI_DEADLINE_MS })
      assert.equal(await log.filter({ hasText: 'sysop.unblocked' }).count(), 0, 'held while paused')
      await page.getByRole('button', { name: /^Resume/ }).click()
      await log.filter({ hasText: 'sysop.unblocked' }).first().waitFor({ timeout: UI_DEADLINE_MS })
      await page.getByLabel('Filter events').fill('')
      assert.ok(!a.sysop.blocklist.isAddressBlocked('10.97.1.2'))

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
      const sdState = (): string | undefined => a.workers.find(w => w.status().backend === 'sd')?.status().state
      await benchRow.getByRole('button', { name: 'Bench' }).click()
      await benchRow.locator('.badge', { hasText: 'benched' }).waitFor({ timeout: UI_DEADLINE_MS })
      assert.equal(sdState(), 'benched', 'the node benched it')
      await benchRow.getByRole('button', { name: 'Unbench' }).click()
      await benchRow.getByRole('button', { name: 'Bench' }).waitFor({ timeout: UI_DEADLINE_MS })
      assert.notEqual(sdState(), 'benched')

      await page.locator('tr', { hasText: '10.99.0.0/16' }).getByRole('button', { name: /Unblock/ }).click()
      await page.locator('tr', { hasText: '10.99.0.0/16' }).waitFor({ state: 'detached', timeout: UI_DEADLINE_MS })
      assert.ok(!a.sysop.blocklist.isAddressBlocked('10.99.3.4'))
      await page.getByLabel('Peer id, IP address or CIDR to block').fill('10.98.0.0/16')
      await page.getByLabel('Reason').fill('kept for the screenshot')
      await page.getByRole('button', { name: 'Block', exact: true }).click()
      await page.locator('tr', { hasText: '10.98.0.0/16' }).waitFor({ timeout: UI_DEADLINE_MS })
      await screenshot(page, 'sysop', { fullPage: true })
      await page.getByRole('button', { name: /Unblock 10\.98/ }).click()
      await page.locator('tr', { hasText: '10.98.0.0/16' }).waitFor({ state: 'detached', timeout: UI_DEADLINE_MS })
    })

    it('sees users (nicknames as text), cancels a user\'s tasks and one task, bans (at once: the task cancelled, the page told without a reload) and unbans', async () => {
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
      const running = async (): Promise<void> => {
        await lastAnswer(user.page).and(user.page.locator('[data-status="running"]')).waitFor({ timeout: UI_DEADLINE_MS })
      }
      const stopped = async (): Promise<void> => {
        await lastAnswer(user.page).and(user.page.locator('[data-status="cancelled"]')).waitFor({ timeout: UI_DEADLINE_MS })
      }

      // all of one user's tasks, from their row
      await ask(user.page, 'block the worker for a while')
      await running()
      await userRow.getByRole('button', { name: 'Cancel tasks' }).and(page.locator(':enabled')).click({ timeout: UI_DEADLINE_MS })
      await stopped()

      // one task, from the running tasks
      await ask(user.page, 'block the worker for a while again')
      await running()
      const taskRow = page.locator('section[aria-labelledby="tasks-title"] tr', { hasText: 'llama3.2:1b' })
      await taskRow.getByRole('button', { name: /Cancel task/ }).click({ timeout: UI_DEADLINE_MS })
      await stopped()

      // the peers table counts the tasks each peer took since the panel opened
      await page.locator('section[aria-label="Peers: health and traffic"] tr', { hasText: 'Bravo' }).locator('td', { hasText: /^\s*[1-9]\d* tasks\s*$/ }).waitFor({ timeout: UI_DEADLINE_MS })

      // a ban while a task runs: the task is cancelled and the page knows at once (its events socket is closed)
      await ask(user.page, 'block the worker until the ban')
      await running()
      await userRow.getByRole('button', { name: 'Ban' }).click()
      await userRow.locator('.badge', { hasText: 'banned' }).waitFor({ timeout: UI_DEADLINE_MS })
      await user.page.getByRole('alert').filter({ hasText: 'has been banned' }).waitFor({ timeout: UI_DEADLINE_MS })
      await lastAnswer(user.page).and(user.page.locator('[data-status="cancelled"], [data-status="error"]')).waitFor({ timeout: UI_DEADLINE_MS })
      await user.page.getByLabel('Message', { exact: true }).fill('still there?')
      assert.ok(await user.page.getByRole('button', { name: 'Send' }).isDisabled(), 'a banned user cannot send')
      assert.ok(await lastAnswer(user.page).getByRole('button', { name: 'Retry' }).isDisabled(), 'nor retry')
      await screenshot(user.page, 'chat-banned')
      await user.page.reload()
      await user.page.getByRole('alert').filter({ hasText: 'has been banned' }).first().waitFor({ timeout: UI_DEADLINE_MS })

      await userRow.getByRole('button', { name: 'Unban' }).click()
      await userRow.getByRole('button', { name: 'Ban' }).waitFor({ timeout: UI_DEADLINE_MS })
      await user.page.reload()
      await user.page.getByLabel('Message', { exact: true }).waitFor()
      assert.equal(await user.page.getByText('has been banned').count(), 0)
      ollama.tokenDelayMs = 0
      await ask(user.page, 'back again')
      await waitDone(user.page)
    })

    it('blocks a peer from its row: it leaves the realm view live and gets no more tasks; unblocked, it comes back', async () => {
      const watcher = await open('#/realm')
      const sysop = await open('#/sysop')
      const bravo = watcher.page.locator('td.peer', { hasText: 'Bravo' })
      await bravo.waitFor({ timeout: UI_DEADLINE_MS })
      // the events the realm page's own socket receives (observed, not changed)
      const frames: any[] = []
      watcher.page.on('websocket', (ws) => {
        ws.on('framereceived', (f) => { try { frames.push(JSON.parse(String(f.payload))) } catch {} })
      })
      await watcher.page.reload()
      await bravo.waitFor({ timeout: UI_DEADLINE_MS })

      const { page } = sysop
      await page.getByLabel('Sysop token').fill(token())
      await page.getByRole('button', { name: 'Sign in' }).click()
      const peerRow = page.locator('section[aria-label="Peers: health and traffic"] tr', { hasText: 'Bravo' })
      await peerRow.getByRole('button', { name: /^Block peer/ }).click({ timeout: UI_DEADLINE_MS })
      const target = page.getByLabel('Peer id, IP address or CIDR to block')
      assert.equal(await target.inputValue(), b.peerId, 'the row fills in the form')
      assert.ok(await target.evaluate(el => el === document.activeElement), 'and moves focus to it')
      await page.getByLabel('Reason').fill('answers with garbage')
      await page.getByRole('button', { name: 'Block', exact: true }).click()
      const blockRow = page.locator('section[aria-labelledby="blocklist-title"] tr', { hasText: 'answers with garbage' })
      await blockRow.waitFor({ timeout: UI_DEADLINE_MS })
      assert.match(await blockRow.textContent() ?? '', /peer/)

      // gone from the realm view without a reload, from the events socket
      await bravo.waitFor({ state: 'detached', timeout: UI_DEADLINE_MS })
      assert.ok(frames.some(e => e.type === 'peer.leave' && e.peerId === b.peerId), 'peer.leave came over the events socket')
      await page.locator('section[aria-label="Peers: health and traffic"] td.peer', { hasText: 'Bravo' }).waitFor({ state: 'detached', timeout: UI_DEADLINE_MS })
      // and no more tasks go to it
      await waitFor(() => !a.models().some(m => m.name === 'llama3.2:1b'), 'its models to leave the mesh')
      const asked = ollama.requestsTo('/api/chat').length
      const res = await fetch(`${a.url}/realm/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'user', content: 'anyone there?' }] } })
      })
      const body = await res.text()
      assert.ok(res.status >= 400, `refused: ${res.status} ${body}`)
      await watcher.page.goto(`${a.url}/#/chat`)
      await watcher.page.getByLabel('Model', { exact: true }).or(watcher.page.getByText('No chat model in the realm right now.')).first().waitFor({ timeout: UI_DEADLINE_MS })
      // the page's model list follows the mesh live (it may still hold the list it had a moment ago)
      await watcher.page.locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'detached', timeout: UI_DEADLINE_MS })
        .catch(() => { assert.fail('the chat still offers the blocked peer\'s models') })
      assert.equal(ollama.requestsTo('/api/chat').length, asked, 'the blocked peer got no task')

      // unblocked: the node dials it again, and it is back everywhere
      await blockRow.getByRole('button', { name: /Unblock/ }).click()
      await blockRow.waitFor({ state: 'detached', timeout: UI_DEADLINE_MS })
      await page.locator('section[aria-label="Peers: health and traffic"] td.peer', { hasText: 'Bravo' }).waitFor({ timeout: 60_000 })
      await watcher.page.locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: 60_000 })
      await waitFor(() => a.models().some(m => m.name === 'llama3.2:1b'), 'its models back in the mesh', 60_000)
    })
  })
})
