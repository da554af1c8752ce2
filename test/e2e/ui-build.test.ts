/**
 * The web UI builds from a clean state the way `npm start` and `npm test` build it
 * (bin/build-if-stale.js → Vite → ui/dist/), its components type-check (svelte-check), and the
 * node serves it at `/` under the UI's Content-Security-Policy with no inline script.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { Cleanup, startTestNode } from '../helpers/nodes.js'

const ROOT = path.join(import.meta.dirname, '..', '..')
const UI = path.join(ROOT, 'ui')

describe('e2e: web UI build', function () {
  this.timeout(300_000)
  const cleanup = new Cleanup()
  after(async () => { await cleanup.run() })

  it('bin/build-if-stale.js builds ui/dist when the UI sources are newer, and not again after', () => {
    // touching a source makes the UI stale
    const main = path.join(UI, 'src', 'main.ts')
    const now = new Date()
    fs.utimesSync(main, now, now)
    const first = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'build-if-stale.js'), '--if-stale'], { cwd: ROOT, encoding: 'utf8' })
    assert.equal(first.status, 0, first.stderr)
    assert.ok(fs.existsSync(path.join(UI, 'dist', 'index.html')))
    // a build began after the touch (the stamp is its start time): this one, which says so — or,
    // where another test run in the same checkout built at that moment, that one (this call then
    // found the UI fresh under the build lock). Either way ui/dist is not older than its sources.
    const stamp = fs.statSync(path.join(UI, 'dist', '.buildstamp')).mtimeMs
    assert.ok(stamp >= now.getTime() - 1, `ui/dist rebuilt after the touch (stamp ${new Date(stamp).toISOString()}, touch ${now.toISOString()}; ${first.stderr})`)
    if (!/web UI/.test(first.stderr)) console.warn('    (the UI was built by another process in this checkout at the same time)')
    const second = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'build-if-stale.js'), '--if-stale'], { cwd: ROOT, encoding: 'utf8' })
    assert.equal(second.status, 0)
    assert.doesNotMatch(second.stderr, /web UI/)
  })

  it('the node serves the built UI at / with its CSP; the page loads only its own scripts', async () => {
    const node = cleanup.node(await startTestNode())
    const res = await fetch(node.url + '/')
    assert.equal(res.status, 200)
    const csp = res.headers.get('content-security-policy') ?? ''
    assert.match(csp, /script-src 'self'(;|$)/)
    const html = await res.text()
    assert.match(html, /<title>RentAHal<\/title>/)
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script')
    const src = /<script[^>]*src="([^"]+)"/.exec(html)?.[1]
    assert.ok(src?.startsWith('/assets/'), src)
    const js = await fetch(node.url + src)
    assert.equal(js.status, 200)
    assert.match(js.headers.get('content-type') ?? '', /javascript/)
    const code = await js.text()
    assert.doesNotMatch(code, /\beval\(|new Function\(/, 'no eval in the bundle (CSP forbids it)')
  })

  it('the components type-check (svelte-check)', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'svelte-check', 'bin', 'svelte-check'), '--tsconfig', './tsconfig.json', '--output', 'machine', '--fail-on-warnings'], { cwd: UI, encoding: 'utf8' })
    const problems = r.stdout.split('\n').filter(l => /\s(ERROR|WARNING)\s/.test(l))
    assert.deepEqual(problems, [])
    assert.equal(r.status, 0, r.stdout + r.stderr)
  })
})
