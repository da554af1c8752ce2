/**
 * The node key: loaded or created once and kept, so the peer id survives restarts.
 * Stored as JSON `{ type, privateKey: base64(protobuf), peerId }` in `DIR/node.key` (mode 0600)
 * with a copy in `DIR/node.key.bak`; a corrupt key file is restored from its copy.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { RealmError } from '../protocol/errors.js'
import { base64ToBytes, bytesToBase64 } from '../protocol/bytes.js'
import { writeFileAtomic } from './fs-util.js'

export const KEY_FILE = 'node.key'
export const KEY_BACKUP_FILE = 'node.key.bak'

export class KeyFileError extends RealmError {
  override name = 'KeyFileError'
  constructor (message: string) {
    super('KEY_FILE_UNUSABLE', message)
  }
}

export interface LoadedKey {
  privateKey: PrivateKey
  peerId: string
  created: boolean
  /** set when the key file was corrupt and the backup was used */
  restoredFromBackup: boolean
}

async function readKeyFile (file: string): Promise<PrivateKey | undefined> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT') return undefined
    throw err
  }
  try {
    const json = JSON.parse(text)
    const key = privateKeyFromProtobuf(base64ToBytes(json.privateKey))
    if (typeof json.peerId === 'string' && json.peerId !== peerIdFromPrivateKey(key).toString()) return undefined
    return key
  } catch {
    return undefined
  }
}

function serialise (key: PrivateKey): string {
  return JSON.stringify({
    type: key.type,
    privateKey: bytesToBase64(privateKeyToProtobuf(key)),
    peerId: peerIdFromPrivateKey(key).toString()
  }, null, 2) + '\n'
}

export async function loadOrCreateKey (dir: string): Promise<LoadedKey> {
  const file = path.join(dir, KEY_FILE)
  const backup = path.join(dir, KEY_BACKUP_FILE)
  const exists = await fs.stat(file).then(() => true, () => false)
  let key = await readKeyFile(file)
  let restoredFromBackup = false
  let created = false

  if (key == null) {
    const fromBackup = await readKeyFile(backup)
    if (fromBackup != null) {
      key = fromBackup
      restoredFromBackup = true
      await writeFileAtomic(file, serialise(key), 0o600)
    } else if (exists) {
      // never silently replace an identity: the operator must decide
      throw new KeyFileError(`${file} is corrupt and ${backup} is missing or corrupt too; move it away to create a new identity`)
    } else {
      key = await generateKeyPair('Ed25519')
      created = true
      await writeFileAtomic(file, serialise(key), 0o600)
    }
  }
  if (created || restoredFromBackup || (await readKeyFile(backup)) == null) {
    await writeFileAtomic(backup, serialise(key), 0o600)
  }
  return { privateKey: key, peerId: peerIdFromPrivateKey(key).toString(), created, restoredFromBackup }
}
