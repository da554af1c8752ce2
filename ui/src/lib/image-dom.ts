/** Canvas work for attached images: decode, scale within MAX_IMAGE_SIDE_PX, encode (see image.ts) */
import { JPEG_QUALITY, MAX_IMAGE_SIDE_PX, attachProblem, fitWithin, outputType, parseDataUrl } from './image.js'
import type { ChatImage } from './chat.js'

export class AttachError extends Error {
  override name = 'AttachError'
}

function encode (source: CanvasImageSource, width: number, height: number, type: 'image/png' | 'image/jpeg'): ChatImage {
  const size = fitWithin(width, height, MAX_IMAGE_SIDE_PX)
  if (size.width === 0) throw new AttachError('the image is empty')
  const canvas = document.createElement('canvas')
  canvas.width = size.width
  canvas.height = size.height
  const ctx = canvas.getContext('2d')
  if (ctx == null) throw new AttachError('this browser cannot draw images')
  if (type === 'image/jpeg') {
    // JPEG has no alpha: transparent pixels become white, not black
    ctx.fillStyle = '#fff'
    ctx.fillRect(0, 0, size.width, size.height)
  }
  ctx.drawImage(source, 0, 0, size.width, size.height)
  const parsed = parseDataUrl(canvas.toDataURL(type, JPEG_QUALITY))
  if (parsed == null) throw new AttachError('could not encode the image')
  return parsed
}

/** A file (upload, drop, paste) as an image to send */
export async function imageFromFile (file: Blob): Promise<ChatImage> {
  const problem = attachProblem({ type: file.type, size: file.size })
  if (problem !== undefined) throw new AttachError(problem)
  let bitmap: ImageBitmap
  try {
    bitmap = await createImageBitmap(file)
  } catch {
    throw new AttachError('the file could not be read as an image')
  }
  try {
    return encode(bitmap, bitmap.width, bitmap.height, outputType(file.type))
  } finally {
    bitmap.close()
  }
}

/** The current frame of a playing video (the webcam) as a JPEG */
export function imageFromVideo (video: HTMLVideoElement): ChatImage {
  if (video.videoWidth === 0) throw new AttachError('the camera has no picture yet')
  return encode(video, video.videoWidth, video.videoHeight, 'image/jpeg')
}

/** The image files among a DataTransfer's items (drop, paste) */
export function imageFiles (data: DataTransfer | null): File[] {
  if (data == null) return []
  const files: File[] = []
  for (const file of Array.from(data.files)) if (file.type.startsWith('image/')) files.push(file)
  if (files.length === 0) {
    for (const item of Array.from(data.items ?? [])) {
      if (item.kind === 'file' && item.type.startsWith('image/')) {
        const f = item.getAsFile()
        if (f != null) files.push(f)
      }
    }
  }
  return files
}
