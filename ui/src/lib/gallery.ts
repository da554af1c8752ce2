/**
 * The gallery of images made in this browser (kept in IndexedDB by gallery-db.ts), bounded in
 * count and bytes: the oldest go first. Pure; tested in test/unit/ui-views.test.ts.
 */

/** Most images kept */
export const GALLERY_MAX_ITEMS = 100
/** Most bytes of images kept (IndexedDB allows far more; this keeps a browser profile small) */
export const GALLERY_MAX_BYTES = 50 * 1024 * 1024

export interface GalleryItem {
  id: string
  /** ms since epoch */
  createdAt: number
  prompt: string
  negativePrompt?: string
  model: string
  width?: number
  height?: number
  steps?: number
  seed?: number
  peerId?: string
  mime: string
  /** the image, base64 */
  data: string
  /** decoded size */
  bytes: number
}

/** Ids to delete so that the rest fits: the oldest first */
export function evictions (items: Array<Pick<GalleryItem, 'id' | 'createdAt' | 'bytes'>>, maxItems = GALLERY_MAX_ITEMS, maxBytes = GALLERY_MAX_BYTES): string[] {
  const newestFirst = [...items].sort((a, b) => b.createdAt - a.createdAt)
  const out: string[] = []
  let bytes = 0
  let kept = 0
  for (const item of newestFirst) {
    if (kept < maxItems && bytes + item.bytes <= maxBytes) {
      kept++
      bytes += item.bytes
    } else {
      out.push(item.id)
    }
  }
  return out
}

/** A file name for downloading an image: `rentahal-<prompt words>-<seed>.png` */
export function downloadName (item: Pick<GalleryItem, 'prompt' | 'seed' | 'mime' | 'createdAt'>): string {
  const words = item.prompt.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '')
  const ext = item.mime === 'image/jpeg' ? 'jpg' : item.mime === 'image/webp' ? 'webp' : 'png'
  const tag = item.seed !== undefined && item.seed >= 0 ? String(item.seed) : String(item.createdAt)
  return `rentahal-${words === '' ? 'image' : words}-${tag}.${ext}`
}
