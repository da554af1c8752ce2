/** One picture from the camera, for a spoken vision prompt with no image attached */
import { imageFromVideo } from './image-dom.js'
import type { ChatImage } from './chat.js'

/** The camera gets this long to show a picture */
const CAMERA_WARMUP_TIMEOUT_MS = 5_000

/** Opens the camera, takes one frame as a JPEG, closes it; rejects when there is no camera or no picture */
export async function snapshotFromCamera (): Promise<ChatImage> {
  if (navigator.mediaDevices?.getUserMedia == null) throw new Error('this page cannot use a camera (it needs https or localhost)')
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false })
  const video = document.createElement('video')
  video.muted = true
  video.playsInline = true
  try {
    video.srcObject = stream
    await video.play()
    const deadline = Date.now() + CAMERA_WARMUP_TIMEOUT_MS
    while (video.videoWidth === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    return imageFromVideo(video)
  } finally {
    for (const track of stream.getTracks()) track.stop()
    video.srcObject = null
  }
}
