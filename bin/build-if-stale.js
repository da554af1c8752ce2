// Builds dist/ with the TypeScript compiler when any source is newer than the last build.
// Plain JavaScript with node builtins only: it runs before anything is compiled.
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

const SOURCE_DIRS = ['node', 'protocol', 'chain', 'scripts']
const STAMP = join('dist', '.buildstamp')

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

export function build (root) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  if (!existsSync(tsc)) {
    process.stderr.write('realm: TypeScript is not installed; run npm ci first\n')
    return false
  }
  process.stderr.write('realm: building (TypeScript → dist/)…\n')
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
  if (r.status !== 0) return false
  writeFileSync(join(root, STAMP), new Date().toISOString() + '\n')
  return true
}

export function ensureBuilt (root) {
  if (isStale(root)) return build(root)
  return true
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..')
  // `--if-stale`: only when sources changed (npm test, npm run grid); plain: always (npm run build)
  const ok = process.argv.includes('--if-stale') ? ensureBuilt(root) : build(root)
  process.exit(ok ? 0 : 1)
}
