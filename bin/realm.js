#!/usr/bin/env node
// The `realm` command. Runs the compiled node from dist/, building it first when the sources
// are newer (a fresh clone, or after a pull), so `npx realm start` always runs current code.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureBuilt } from './build-if-stale.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
ensureBuilt(root)
if (!existsSync(join(root, 'dist', 'node', 'cli', 'main.js'))) {
  process.stderr.write('realm: the build failed; run npm run build to see why\n')
  process.exit(1)
}
await import('../dist/node/shims.js')
const { main } = await import('../dist/node/cli/main.js')
const code = await main(process.argv.slice(2))
process.exitCode = code
// a clean stop leaves nothing running; if a handle lingers anyway, do not hang the shell
setTimeout(() => process.exit(code), 2000).unref()
