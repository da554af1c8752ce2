/** The gallery in IndexedDB (images are too large for localStorage), bounded by gallery.ts */
import { evictions, type GalleryItem } from './gallery.js'

const DB_NAME = 'rentahal'
const DB_VERSION = 1
const STORE = 'gallery'

function open (): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION)
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE, { keyPath: 'id' })
    }
    req.onsuccess = () => { resolve(req.result) }
    req.onerror = () => { reject(req.error ?? new Error('indexedDB open failed')) }
  })
}

function done (tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => { resolve() }
    tx.onerror = () => { reject(tx.error ?? new Error('indexedDB write failed')) }
    tx.onabort = () => { reject(tx.error ?? new Error('indexedDB write aborted')) }
  })
}

/** Every image, newest first */
export async function listGallery (): Promise<GalleryItem[]> {
  const db = await open()
  try {
    const items = await new Promise<GalleryItem[]>((resolve, reject) => {
      const req = db.transaction(STORE, 'readonly').objectStore(STORE).getAll()
      req.onsuccess = () => { resolve(req.result as GalleryItem[]) }
      req.onerror = () => { reject(req.error ?? new Error('indexedDB read failed')) }
    })
    return items.sort((a, b) => b.createdAt - a.createdAt)
  } finally {
    db.close()
  }
}

/** Add an image, then drop the oldest beyond the caps; returns the ids dropped */
export async function addToGallery (item: GalleryItem, existing: GalleryItem[]): Promise<string[]> {
  const drop = evictions([item, ...existing])
  const db = await open()
  try {
    const tx = db.transaction(STORE, 'readwrite')
    const store = tx.objectStore(STORE)
    if (!drop.includes(item.id)) store.put(item)
    for (const id of drop) store.delete(id)
    await done(tx)
    return drop
  } finally {
    db.close()
  }
}

export async function removeFromGallery (id: string): Promise<void> {
  const db = await open()
  try {
    const tx = db.transaction(STORE, 'readwrite')
    tx.objectStore(STORE).delete(id)
    await done(tx)
  } finally {
    db.close()
  }
}
