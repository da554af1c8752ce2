// Builds dist/ with the TypeScript compiler when any source is newer than the last build, and the
// web UI (ui/ → ui/dist/, with Vite) when its sources are newer than its own last build.
// Plain JavaScript with node builtins only: it runs before anything is compiled.
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

const SOURCE_DIRS = ['node', 'protocol', 'chain', 'scripts']
const STAMP = join('dist', '.buildstamp')
// One build at a time: several `realm` processes started together on stale sources would
// otherwise run tsc into the same dist/ at once and import each other's half-written files.
const LOCK = join('dist', '.build-lock')
/** How often a process waiting for another one's build looks again */
const LOCK_POLL_MS = 200
/** A lock file still empty after this long was left by a process killed while taking it */
const EMPTY_LOCK_STALE_MS = 10_000

function newestMtime (dir) {
  let newest = 0
  if (!existsSync(dir)) return newest
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue
    const p = join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p))
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs)
  }
  return newest
}

/** True when dist/ is missing or older than a source file or the build config */
export function isStale (root) {
  const stamp = join(root, STAMP)
  if (!existsSync(stamp)) return true
  const built = statSync(stamp).mtimeMs
  const configs = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map(f => join(root, f)).filter(existsSync)
  const newest = Math.max(...SOURCE_DIRS.map(d => newestMtime(join(root, d))), ...configs.map(f => statSync(f).mtimeMs))
  return newest > built
}

function sleepSync (ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

function holderAlive (lock) {
  let text
  try {
    text = readFileSync(lock, 'utf8').trim()
  } catch (err) {
    return err.code !== 'ENOENT'
  }
  if (text === '') {
    try {
      return Date.now() - statSync(lock).mtimeMs < EMPTY_LOCK_STALE_MS
    } catch {
      return false
    }
  }
  try {
    process.kill(Number(text), 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/** Run `fn` holding the build lock; waits while another live process holds it */
function withBuildLock (root, fn) {
  const lock = join(root, LOCK)
  mkdirSync(join(root, 'dist'), { recursive: true })
  for (;;) {
    try {
      const fd = openSync(lock, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      break
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
      if (holderAlive(lock)) sleepSync(LOCK_POLL_MS)
      else rmSync(lock, { force: true })
    }
  }
  try {
    return fn()
  } finally {
    rmSync(lock, { force: true })
  }
}

export function build (root) {
  return withBuildLock(root, () => buildLocked(root) && (!existsSync(join(root, UI_DIR, 'index.html')) || buildUiLocked(root)))
}

function buildLocked (root) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  if (!existsSync(tsc)) {
    process.stderr.write('realm: TypeScript is not installed; run npm ci first\n')
    return false
  }
  process.stderr.write('realm: building (TypeScript → dist/)…\n')
  const started = new Date()
  // tsc reports errors on stdout: send them to stderr, where they cannot spoil a command's --json output
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: ['ignore', 2, 2] })
  // exit 2: type errors, JavaScript written anyway (the typecheck test fails on them); 1: nothing written
  if (r.status === 2) process.stderr.write('realm: built with type errors (above)\n')
  else if (r.status !== 0) return false
  // stamped with the time the build began: a source saved during the build leaves dist/ stale
  const stamp = join(root, STAMP)
  writeFileSync(stamp, started.toISOString() + '\n')
  utimesSync(stamp, started, started)
  return true
}

export function ensureBuilt (root) {
  const ui = ensureUiBuilt(root)
  if (!isStale(root)) return ui
  // another process may have built it while this one waited for the lock
  return withBuildLock(root, () => isStale(root) ? buildLocked(root) : true) && ui
}

// ---- the web UI (Svelte + Vite → ui/dist/) ----

const UI_DIR = 'ui'
const UI_STAMP = join(UI_DIR, 'dist', '.buildstamp')

function newestUiMtime (dir) {
  let newest = 0
  if (!existsSync(dir)) return newest
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue
    const p = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestUiMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

/** True when the UI has sources and ui/dist/ is missing or older than one of them (or the lock file) */
export function isUiStale (root) {
  if (!existsSync(join(root, UI_DIR, 'index.html'))) return false
  const stamp = join(root, UI_STAMP)
  if (!existsSync(stamp)) return true
  const lock = join(root, 'package-lock.json')
  const newest = Math.max(newestUiMtime(join(root, UI_DIR)), existsSync(lock) ? statSync(lock).mtimeMs : 0)
  return newest > statSync(stamp).mtimeMs
}

function buildUiLocked (root) {
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js')
  if (!existsSync(vite)) {
    process.stderr.write('realm: Vite is not installed; run npm ci first (the web UI is not built)\n')
    return false
  }
  process.stderr.write('realm: building (TypeScript + Svelte web UI → ui/dist/)…\n')
  const started = new Date()
  const r = spawnSync(process.execPath, [vite, 'build', '--config', join(root, UI_DIR, 'vite.config.ts'), '--logLevel', 'error'], { cwd: root, stdio: ['ignore', 2, 2] })
  if (r.status !== 0) return false
  const stamp = join(root, UI_STAMP)
  writeFileSync(stamp, started.toISOString() + '\n')
  utimesSync(stamp, started, started)
  return true
}

/** Build the UI when stale (under the same lock as the TypeScript build) */
export function ensureUiBuilt (root) {
  if (!isUiStale(root)) return true
  return withBuildLock(root, () => isUiStale(root) ? buildUiLocked(root) : true)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..')
  // `--if-stale`: only when sources changed (npm test, npm run grid); plain: always (npm run build)
  const ok = process.argv.includes('--if-stale') ? ensureBuilt(root) : build(root)
  process.exit(ok ? 0 : 1)
}
