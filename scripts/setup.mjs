// Installs what a command needs, on a fresh Debian machine with Node 20. Node builtins only:
// it runs before npm packages are installed.
//   node scripts/setup.mjs install   npm ci, when node_modules is missing or older than the lock
//   node scripts/setup.mjs system    the Debian packages the tests need (as root: apt-get;
//                                    otherwise: name what is missing)
import { existsSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Debian packages the tests use, and what for */
export const SYSTEM_PACKAGES = [
  { pkg: 'espeak-ng', why: 'the tts worker (speech out)' },
  { pkg: 'pocketsphinx', why: 'the stt worker (speech in, wake word)' },
  { pkg: 'pocketsphinx-en-us', why: 'the stt worker\'s English model' },
  { pkg: 'sox', why: 'audio conversion for speech' },
  { pkg: 'ffmpeg', why: 'decoding browser audio (webm/opus) for speech' },
  { pkg: 'chromium', why: 'web UI tests (driven by playwright-core, which never downloads a browser)' },
  { pkg: 'fonts-dejavu-core', why: 'a font for the headless browser (chromium recommends one, not installed with --no-install-recommends)' }
]

function run (cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts })
  if (r.status !== 0) {
    process.stderr.write(`setup: ${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})\n`)
    process.exit(r.status ?? 1)
  }
}

function installNpm () {
  const marker = join(root, 'node_modules', '.package-lock.json')
  const lock = join(root, 'package-lock.json')
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return
  process.stderr.write('setup: installing npm packages (npm ci)…\n')
  run('npm', ['ci', '--no-audit', '--no-fund'])
}

function installed (pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' })
  return r.status === 0 && r.stdout.includes('install ok installed')
}

function installSystem () {
  const missing = SYSTEM_PACKAGES.filter(p => !installed(p.pkg))
  if (missing.length === 0) return
  const names = missing.map(p => p.pkg)
  if (process.getuid?.() !== 0) {
    process.stderr.write(`setup: the tests need these Debian packages: ${names.join(' ')}\n` +
      `  install them with: sudo apt-get update && sudo apt-get install -y ${names.join(' ')}\n`)
    return
  }
  process.stderr.write(`setup: installing Debian packages: ${names.join(' ')}…\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  run('apt-get', ['update'], { env })
  run('apt-get', ['install', '-y', '--no-install-recommends', ...names], { env })
}

for (const step of process.argv.slice(2)) {
  if (step === 'install') installNpm()
  else if (step === 'system') installSystem()
  else {
    process.stderr.write(`setup: unknown step ${step}\n`)
    process.exit(2)
  }
}
