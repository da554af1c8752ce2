/**
 * The sysop token: `DIR/sysop.token` (mode 0600), created on first start. Whoever can read the
 * data dir is the sysop; the token itself is never logged.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { writeFileAtomic } from './fs-util.js'

export const SYSOP_TOKEN_FILE = 'sysop.token'
/** 32 random bytes, hex: 256 bits, far beyond guessing */
const TOKEN_BYTES = 32
const TOKEN_RE = /^[0-9a-f]{64}$/

export function newSysopToken (): string {
  return randomBytes(TOKEN_BYTES).toString('hex')
}

/** Read the token, creating (or replacing an unreadable) one; returns the token and its path */
export async function loadOrCreateSysopToken (dir: string): Promise<{ token: string, path: string, created: boolean }> {
  const file = path.join(dir, SYSOP_TOKEN_FILE)
  const text = await fs.readFile(file, 'utf8').catch(() => '')
  const token = text.trim()
  if (TOKEN_RE.test(token)) {
    await fs.chmod(file, 0o600)
    return { token, path: file, created: false }
  }
  const fresh = newSysopToken()
  await writeFileAtomic(file, fresh + '\n', 0o600)
  return { token: fresh, path: file, created: true }
}
