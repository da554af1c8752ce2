import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { errorMessage } from '../../protocol/errors.js'
import { BROKEN_SUFFIX, CONFIG_FILE_NAME, MAX_CONFIG_BYTES } from './constants.js'
import { ConfigError } from './errors.js'
import { repairConfigText } from './repair.js'
import { defaultConfig, type RealmConfig } from './spec.js'
import { renderConfig } from './toml.js'

export interface LoadedConfig {
  /** the config from the file, repaired; flags and environment not applied (see `resolveConfig`) */
  config: RealmConfig
  /** absolute path of config.toml */
  path: string
  /** true when there was no config.toml and one was written with the defaults */
  created: boolean
  /** what was repaired, one line each (for stderr and the trace log); empty when the file was fine */
  repairs: string[]
}

/** The data dir holds the node key: only its owner may look inside */
const DATA_DIR_MODE = 0o700
/** config.toml may later hold paid backend keys */
const CONFIG_FILE_MODE = 0o600

/**
 * Read `DIR/config.toml`, creating it with the defaults when missing and repairing it when
 * partial, invalid or unparseable: every valid value is kept, the rest fall back to defaults,
 * the old file is kept as `config.toml.broken` and the new one written atomically.
 * Throws `ConfigError` only for I/O errors (`CONFIG_UNREADABLE`, `CONFIG_UNWRITABLE`), never for
 * what the file contains.
 */
export async function loadConfig (dir: string): Promise<LoadedConfig> {
  const file = path.resolve(dir, CONFIG_FILE_NAME)
  try {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: DATA_DIR_MODE })
  } catch (err) {
    throw new ConfigError('CONFIG_UNWRITABLE', `cannot create the data dir ${path.dirname(file)}: ${errorMessage(err)}`, { cause: err })
  }

  const read = await readCapped(file, MAX_CONFIG_BYTES)
  if (read === undefined) {
    const config = defaultConfig()
    await writeAtomic(file, renderConfig(config))
    return { config, path: file, created: true, repairs: [] }
  }

  // the decoder drops a UTF-8 BOM and turns invalid bytes into U+FFFD
  const text = new TextDecoder('utf-8').decode(read.bytes)
  const { config, repairs } = repairConfigText(text, { truncated: read.truncated })
  if (repairs.length > 0) {
    await keepCopy(file, file + BROKEN_SUFFIX)
    await writeAtomic(file, renderConfig(config))
  }
  return { config, path: file, created: false, repairs }
}

/** The first `max` bytes of a file, or undefined when it does not exist */
async function readCapped (file: string, max: number): Promise<{ bytes: Uint8Array, truncated: boolean } | undefined> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw unreadable(file, err)
  }
  try {
    // one byte more than the cap tells a file of exactly `max` bytes from a bigger one
    const buffer = Buffer.alloc(max + 1)
    let length = 0
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }
    return { bytes: buffer.subarray(0, Math.min(length, max)), truncated: length > max }
  } catch (err) {
    throw unreadable(file, err)
  } finally {
    await handle.close().catch(() => {})
  }
}

function unreadable (file: string, err: unknown): ConfigError {
  return new ConfigError('CONFIG_UNREADABLE', `cannot read ${file}: ${errorMessage(err)}`, { cause: err })
}

function unwritable (file: string, err: unknown): ConfigError {
  return new ConfigError('CONFIG_UNWRITABLE', `cannot write ${file}: ${errorMessage(err)}`, { cause: err })
}

function tempName (file: string): string {
  return `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
}

/** Write a temp file beside `file`, fsync it, rename it over `file`: readers see old or new, never half */
async function writeAtomic (file: string, data: string): Promise<void> {
  const temp = tempName(file)
  try {
    const handle = await fs.open(temp, 'wx', CONFIG_FILE_MODE)
    try {
      await handle.writeFile(data, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fs.rename(temp, file)
  } catch (err) {
    await fs.rm(temp, { force: true }).catch(() => {})
    throw unwritable(file, err)
  }
  await syncDir(path.dirname(file))
}

/** Copy `from` to `to` (replacing it) the same atomic way */
async function keepCopy (from: string, to: string): Promise<void> {
  const temp = tempName(to)
  try {
    await fs.copyFile(from, temp, fs.constants.COPYFILE_EXCL)
    await fs.chmod(temp, CONFIG_FILE_MODE)
    const handle = await fs.open(temp, 'r+')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fs.rename(temp, to)
  } catch (err) {
    await fs.rm(temp, { force: true }).catch(() => {})
    throw unwritable(to, err)
  }
}

/** Make a rename durable; some file systems cannot fsync a directory, which is fine */
async function syncDir (dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {}
}
