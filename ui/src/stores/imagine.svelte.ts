/** Image generation: the form, the running task (queue, progress), the result, and the gallery */
import { ApiError, isAbort, sendJson, streamTask } from '../lib/api.js'
import { listGallery, addToGallery, removeFromGallery } from '../lib/gallery-db.js'
import type { GalleryItem } from '../lib/gallery.js'
import { base64Bytes } from '../lib/image.js'
import { localId } from '../lib/chat.js'
import { load, save } from '../lib/storage.js'
import type { Media, TaskEvent } from '../lib/types.js'
import { user } from './user.svelte.js'

const MODEL_KEY = 'rah.model.imagine'

export interface ImagineForm {
  prompt: string
  negativePrompt: string
  /** `WIDTHxHEIGHT` */
  size: string
  steps: number
  /** -1: random */
  seed: number
}

class ImagineStore {
  model = $state<string | undefined>(load(MODEL_KEY) ?? undefined)
  form = $state<ImagineForm>({ prompt: '', negativePrompt: '', size: '512x512', steps: 20, seed: -1 })
  running = $state(false)
  queue = $state<{ position: number, etaMs: number } | undefined>()
  progress = $state<{ fraction: number, step?: number, steps?: number } | undefined>()
  result = $state.raw<GalleryItem | undefined>()
  error = $state<string | undefined>()
  gallery = $state.raw<GalleryItem[]>([])
  galleryError = $state<string | undefined>()
  private controller?: AbortController
  private taskId?: string

  setModel (model: string | undefined): void {
    this.model = model
    save(MODEL_KEY, model ?? null)
  }

  async loadGallery (): Promise<void> {
    try {
      this.gallery = await listGallery()
    } catch (err) {
      this.galleryError = `The gallery could not be read: ${err instanceof Error ? err.message : String(err)}`
    }
  }

  async generate (): Promise<void> {
    const model = this.model
    const prompt = this.form.prompt.trim()
    if (model === undefined || prompt === '' || this.running) return
    const [width, height] = this.form.size.split('x').map(Number)
    const input: Record<string, unknown> = { prompt, width, height, steps: this.form.steps }
    if (this.form.negativePrompt.trim() !== '') input.negativePrompt = this.form.negativePrompt.trim()
    if (Number.isInteger(this.form.seed) && this.form.seed >= 0) input.seed = this.form.seed
    this.running = true
    this.error = undefined
    this.queue = undefined
    this.progress = undefined
    this.taskId = undefined
    const controller = new AbortController()
    this.controller = controller
    let image: Media | undefined
    let done: Extract<TaskEvent, { type: 'task.done' }> | undefined
    try {
      await streamTask({ kind: 'imagine', model, input }, {
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'task.submitted') this.taskId = event.id
          else if (event.type === 'task.queued') this.queue = { position: event.position, etaMs: event.etaMs }
          else if (event.type === 'task.started') this.queue = undefined
          else if (event.type === 'task.progress') {
            this.queue = undefined
            this.progress = { fraction: event.fraction, step: event.step, steps: event.steps }
          } else if (event.type === 'task.image') image ??= event.image
          else if (event.type === 'task.restarted') this.progress = undefined
          else if (event.type === 'task.done') done = event
          else if (event.type === 'task.error') this.error = event.code === 'CANCELLED' ? 'Stopped.' : `${event.message} (${event.code})`
        }
      })
      image = done?.output.images?.[0] ?? image
      if (done != null && image != null) {
        const item: GalleryItem = {
          id: localId(),
          createdAt: Date.now(),
          prompt,
          model,
          width,
          height,
          steps: this.form.steps,
          mime: image.mime,
          data: image.data,
          bytes: base64Bytes(image.data),
          peerId: done.peerId
        }
        const seed = done.output.seed ?? (typeof input.seed === 'number' ? input.seed : undefined)
        if (seed !== undefined) item.seed = seed
        if (typeof input.negativePrompt === 'string') item.negativePrompt = input.negativePrompt
        this.result = item
        await this.keep(item)
      } else if (done != null) {
        this.error = 'The worker answered without an image.'
      }
    } catch (err) {
      if (isAbort(err)) this.error = 'Stopped.'
      else if (err instanceof ApiError) {
        user.noteError(err)
        this.error = `${err.message} (${err.code})`
      } else this.error = err instanceof Error ? err.message : String(err)
    } finally {
      this.running = false
      this.queue = undefined
      this.controller = undefined
    }
  }

  stop (): void {
    if (this.taskId !== undefined) void sendJson('DELETE', `/realm/tasks/${encodeURIComponent(this.taskId)}`).catch(() => {})
    this.controller?.abort()
  }

  async remove (id: string): Promise<void> {
    this.gallery = this.gallery.filter(g => g.id !== id)
    if (this.result?.id === id) this.result = undefined
    await removeFromGallery(id).catch(() => {})
  }

  private async keep (item: GalleryItem): Promise<void> {
    try {
      const dropped = await addToGallery(item, this.gallery)
      this.gallery = [item, ...this.gallery].filter(g => !dropped.includes(g.id))
    } catch (err) {
      this.galleryError = `The image could not be kept in the gallery: ${err instanceof Error ? err.message : String(err)}`
    }
  }
}

export const imagine = new ImagineStore()
