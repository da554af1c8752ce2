/**
 * Screenshots of the web UI's views on a small, tidy mesh (node "alpha" with Stable Diffusion,
 * node "bravo" with Ollama), for the README: written to test-output/screenshots/docs-*.png, of
 * which docs/screenshots/ keeps a copy. Each view is checked to have rendered its content first.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startA1111Standin, startOllamaStandin } from '../standins/index.js'
import { launchBrowser, requireChromium, screenshot, type TestBrowser } from './browser.js'
import type { RealmNode } from '../../node/node.js'

const ROOT = path.join(import.meta.dirname, '..', '..')
const UI_DEADLINE_MS = 20_000

const ANSWER = [
  'A **fair queue** serves requesters in turn, so one busy user cannot starve the others:',
  '',
  '1. each requester has its own FIFO line;',
  '2. the queue takes one task from each line in turn;',
  '3. every waiting task is told its position and ETA.',
  '',
  '```ts',
  'const next = queue.dequeue() // round robin across users',
  'if (next !== undefined) await run(next.item)',
  '```'
].join('\n')

describe('e2e: web UI screenshots for the README', function () {
  this.timeout(180_000)
  const cleanup = new Cleanup()
  let a: RealmNode
  let browser: TestBrowser | undefined

  before(async function () {
    requireChromium(this)
    spawnSync(process.execPath, [path.join(ROOT, 'bin', 'build-if-stale.js'), '--if-stale'], { cwd: ROOT, stdio: 'ignore', timeout: 280_000 })
    assert.ok(fs.existsSync(path.join(ROOT, 'ui', 'dist', 'index.html')), 'the web UI is built')
    const ollama = await startOllamaStandin({ tokenDelayMs: 5, reply: () => ANSWER })
    const sd = await startA1111Standin({ color: () => [46, 94, 170] })
    cleanup.add(async () => { await ollama.close(); await sd.close() })
    a = cleanup.node(await startTestNode({ workers: [`sd=${sd.url}`], config: (c) => { c.node.name = 'alpha' } }))
    cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`ollama=${ollama.url}`], config: (c) => { c.node.name = 'bravo' } }))
    await waitFor(() => a.models().some(m => m.name === 'llama3.2:1b') && a.models().some(m => m.kinds.includes('imagine')), 'every model on A')
  })

  afterEach(async () => { await browser?.close() })
  after(async () => { await cleanup.run() })

  it('chat, imagine, realm and sysop views', async () => {
    browser = await launchBrowser()
    const { page } = browser
    await page.goto(`${a.url}/#/chat`)
    await page.getByRole('button', { name: 'Set nickname' }).click()
    await page.getByLabel('Nickname').fill('Ada')
    await page.getByRole('button', { name: 'Save' }).click()
    const picker = page.getByLabel('Model', { exact: true })
    await picker.locator('option', { hasText: 'llama3.2:1b' }).waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await picker.selectOption('llama3.2:1b')
    await page.getByLabel('Message', { exact: true }).fill('How does the realm keep its queue fair?')
    await page.getByRole('button', { name: 'Send' }).click()
    await page.locator('article.msg.assistant[data-status="done"] pre code').waitFor({ timeout: UI_DEADLINE_MS })
    await screenshot(page, 'docs-chat')

    await page.getByRole('link', { name: 'Imagine' }).click()
    await page.getByLabel('Image model').locator('option').first().waitFor({ state: 'attached', timeout: UI_DEADLINE_MS })
    await page.getByLabel('Prompt', { exact: true }).fill('A lighthouse at dusk, oil painting')
    await page.getByLabel('Seed').fill('1234')
    await page.getByRole('button', { name: 'Generate' }).click()
    await page.locator('figure img').waitFor({ timeout: UI_DEADLINE_MS })
    await screenshot(page, 'docs-imagine')

    await page.getByRole('link', { name: 'Realm' }).click()
    await page.locator('td.peer', { hasText: 'bravo' }).waitFor({ timeout: UI_DEADLINE_MS })
    await page.locator('#my-tasks-title').waitFor()
    await page.locator('section[aria-labelledby="my-tasks-title"] td', { hasText: 'imagine' }).waitFor({ timeout: UI_DEADLINE_MS })
    await screenshot(page, 'docs-realm', { fullPage: true })

    await page.getByRole('link', { name: 'Sysop' }).click()
    await page.getByLabel('Sysop token').fill(fs.readFileSync(path.join(a.dataDir, 'sysop.token'), 'utf8').trim())
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByLabel('Peer id, IP address or CIDR to block').fill('203.0.113.0/24')
    await page.getByLabel('Reason').fill('floods the queue')
    await page.getByRole('button', { name: 'Block', exact: true }).click()
    await page.locator('tr', { hasText: '203.0.113.0/24' }).waitFor({ timeout: UI_DEADLINE_MS })
    await page.getByLabel('Text of the broadcast').fill('The node restarts at noon for an upgrade.')
    await page.getByRole('button', { name: 'Send broadcast' }).click()
    await page.locator('.broadcast .text').waitFor({ timeout: UI_DEADLINE_MS })
    await page.locator('tr', { hasText: 'Ada' }).waitFor({ timeout: UI_DEADLINE_MS })
    await screenshot(page, 'docs-sysop', { fullPage: true })
    assert.deepEqual(browser.dialogs, [])
  })
})
