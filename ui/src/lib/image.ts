/**
 * Images attached to a chat (upload, drag-and-drop, paste, webcam) are scaled down before
 * they are sent: the math and the encoding choice are here, pure (test/unit/ui-views.test.ts);
 * the canvas work is in image-dom.ts.
 */

/** Longest side of an image sent to a vision model (they resize to far less themselves) */
export const MAX_IMAGE_SIDE_PX = 1024
/** JPEG quality for photos (webcam, JPEG uploads) */
export const JPEG_QUALITY = 0.9
/** Largest file accepted for attaching, before scaling */
export const MAX_ATTACH_BYTES = 25 * 1024 * 1024
/** Media types the browser can decode and the UI accepts */
export const ACCEPTED_IMAGE_TYPES: readonly string[] = ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/bmp']

/** The size to draw at: within `max` on its longest side, aspect kept, never enlarged, at least 1 px */
export function fitWithin (width: number, height: number, max = MAX_IMAGE_SIDE_PX): { width: number, height: number } {
  if (!(width > 0) || !(height > 0)) return { width: 0, height: 0 }
  const scale = Math.min(1, max / Math.max(width, height))
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) }
}

/** PNG stays PNG (screenshots, diagrams: lossless); everything else becomes JPEG */
export function outputType (inputType: string): 'image/png' | 'image/jpeg' {
  return inputType === 'image/png' ? 'image/png' : 'image/jpeg'
}

/** `data:image/png;base64,AAA…` → `{ mime, data }`, or undefined when it is not a base64 data URL */
export function parseDataUrl (url: string): { mime: string, data: string } | undefined {
  const m = /^data:([a-z]+\/[a-z0-9.+-]+)(?:;[^,]*)?;base64,([A-Za-z0-9+/]*={0,2})$/i.exec(url)
  if (m == null) return undefined
  return { mime: m[1].toLowerCase(), data: m[2] }
}

/** Media types a data URL of an image may carry: raster images only (an SVG can hold script) */
export const RASTER_IMAGE_TYPES: readonly string[] = ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/bmp', 'image/avif']

/**
 * A data URL for showing (and downloading) base64 images. The media type comes from a peer: one
 * that is not a raster image becomes `application/octet-stream`, so an `<img>` shows nothing and
 * a download is inert bytes, never an HTML or SVG document.
 */
export function dataUrl (mime: string, data: string): string {
  const type = mime.trim().toLowerCase()
  return `data:${RASTER_IMAGE_TYPES.includes(type) ? type : 'application/octet-stream'};base64,${data}`
}

/** Bytes a base64 string decodes to */
export function base64Bytes (data: string): number {
  const pad = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0
  return Math.max(0, Math.floor(data.length * 3 / 4) - pad)
}

/** Why a file cannot be attached, or undefined when it can */
export function attachProblem (file: { type: string, size: number }): string | undefined {
  if (!ACCEPTED_IMAGE_TYPES.includes(file.type)) return `not an image this page can read (${file.type === '' ? 'unknown type' : file.type})`
  if (file.size > MAX_ATTACH_BYTES) return `too large (over ${MAX_ATTACH_BYTES / 1024 / 1024} MiB)`
  return undefined
}

/** Image sizes an imagine task may ask for (multiples of 64, as Stable Diffusion wants) */
export const IMAGINE_SIZES: ReadonlyArray<{ width: number, height: number }> = [
  { width: 512, height: 512 },
  { width: 768, height: 512 },
  { width: 512, height: 768 },
  { width: 768, height: 768 },
  { width: 1024, height: 1024 }
]
