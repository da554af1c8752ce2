/**
 * Chromium for the web UI tests: the Debian `chromium` package driven by playwright-core (which
 * never downloads a browser here), each browser a persistent context in a fresh temp profile,
 * started with the flags of shared/STACK.md. With `CI=true` a missing Chromium fails the tests
 * that need it; elsewhere they are skipped with the command that installs it.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

/** Where Debian puts Chromium */
export const CHROMIUM_PATH = process.env.REALM_CHROMIUM ?? '/usr/bin/chromium'

/** Flags every test browser starts with (shared/STACK.md); `--headless` comes from `headless: true` */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage'
]

/** A fake camera and microphone that need no permission prompt */
export const FAKE_MEDIA_FLAGS: readonly string[] = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']

/** Where the tests write screenshots (gitignored) */
export const SCREENSHOT_DIR = path.join(import.meta.dirname, '..', '..', 'test-output', 'screenshots')

export function chromiumInstalled (): boolean {
  return fs.existsSync(CHROMIUM_PATH)
}

/** Call in a `before` hook: skips the suite (or fails under CI) when Chromium is missing */
export function requireChromium (ctx: Mocha.Context): void {
  if (chromiumInstalled()) return
  const how = 'install it with: sudo apt-get install -y --no-install-recommends chromium'
  if (process.env.CI === 'true') throw new Error(`Chromium is not installed at ${CHROMIUM_PATH}; ${how}`)
  console.warn(`  (skipped: Chromium is not installed at ${CHROMIUM_PATH}; ${how})`)
  ctx.skip()
}

export interface BrowserInit {
  /** viewport; default 1280×800 */
  viewport?: { width: number, height: number }
  /** prefers-color-scheme; default light */
  colorScheme?: 'light' | 'dark'
  /** extra Chromium flags (e.g. FAKE_MEDIA_FLAGS) */
  args?: string[]
  /** browser permissions granted for every origin (e.g. `clipboard-read`) */
  permissions?: string[]
}

export interface TestBrowser {
  context: BrowserContext
  page: Page
  /** messages the page logged as errors, and uncaught exceptions */
  errors: string[]
  /** dialogs (alert/confirm/prompt) the page opened: there must be none */
  dialogs: string[]
  close: () => Promise<void>
}

/** A new browser with its own profile (so its own cookies, storage and user identity) */
export async function launchBrowser (init: BrowserInit = {}): Promise<TestBrowser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'realm-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_FLAGS, ...(init.args ?? [])],
    viewport: init.viewport ?? { width: 1280, height: 800 },
    colorScheme: init.colorScheme ?? 'light',
    permissions: init.permissions,
    // the node under test is on loopback: nothing else is ever reached
    offline: false
  })
  const page = context.pages()[0] ?? await context.newPage()
  const errors: string[] = []
  const dialogs: string[] = []
  page.on('pageerror', (err) => { errors.push(err.message) })
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()) })
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`)
    void dialog.dismiss().catch(() => {})
  })
  return {
    context,
    page,
    errors,
    dialogs,
    close: async () => {
      await context.close().catch(() => {})
      fs.rmSync(profile, { recursive: true, force: true })
    }
  }
}

/** Tallest page a full-page screenshot shows */
const MAX_SCREENSHOT_HEIGHT_PX = 3000

/**
 * Write a screenshot of the page under test-output/screenshots/ (and return its path). A full
 * page is taken by making the viewport as tall as the page (a scrolled capture would paint the
 * sticky top bar in the middle), then restoring it.
 */
export async function screenshot (page: Page, name: string, opts: { fullPage?: boolean } = {}): Promise<string> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true })
  const file = path.join(SCREENSHOT_DIR, `${name}.png`)
  const viewport = page.viewportSize()
  if (opts.fullPage === true && viewport != null) {
    const height = await page.evaluate(() => document.documentElement.scrollHeight)
    await page.setViewportSize({ width: viewport.width, height: Math.min(MAX_SCREENSHOT_HEIGHT_PX, Math.max(viewport.height, height)) })
    await page.waitForTimeout(100)
  }
  try {
    await page.screenshot({ path: file, animations: 'disabled' })
  } finally {
    if (opts.fullPage === true && viewport != null) await page.setViewportSize(viewport)
  }
  return file
}
