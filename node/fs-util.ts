import fs from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'

/**
 * Write a file so that a crash at any point leaves either the old or the new content:
 * temp file in the same folder, fsync, rename, fsync the folder.
 */
export async function writeFileAtomic (file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`)
  const handle = await fs.open(tmp, 'w', mode)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await fs.rename(tmp, file)
  } catch (err) {
    await fs.rm(tmp, { force: true })
    throw err
  }
  await fs.chmod(file, mode)
  const dirHandle = await fs.open(path.dirname(file), 'r')
  try {
    await dirHandle.sync()
  } catch {
    // some filesystems refuse fsync on a folder; the rename is still atomic
  } finally {
    await dirHandle.close()
  }
}
