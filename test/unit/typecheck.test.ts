/** The whole code base type-checks (the build writes JavaScript even with type errors) */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

describe('typecheck', function () {
  this.timeout(300_000)
  it('tsc --noEmit reports no errors', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', path.join(ROOT, 'tsconfig.json')], { cwd: ROOT, encoding: 'utf8' })
    assert.equal(r.status, 0, r.stdout.split('\n').slice(0, 30).join('\n'))
  })
})
