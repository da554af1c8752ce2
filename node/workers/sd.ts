/**
 * AUTOMATIC1111 adapter: checkpoints from `GET /sdapi/v1/sd-models` (named by `model_name`), the
 * loaded one from `GET /sdapi/v1/options` (`sd_model_checkpoint` is its title). Runs imagine with
 * `POST /sdapi/v1/txt2img` while polling `GET /sdapi/v1/progress` for progress events; a cancel
 * sends `POST /sdapi/v1/interrupt` and closes the request.
 * API: the FastAPI routes of stable-diffusion-webui modules/api/api.py
 */
import { z } from 'zod'
import { logger } from '@libp2p/logger'
import type { ModelInfo, TaskKind } from '../../protocol/kinds.js'
import type { Media, TaskOutput, TaskSpec } from '../../protocol/task.js'
import { bytesToBase64 } from '../../protocol/bytes.js'
import { errorMessage } from '../../protocol/errors.js'
import { SD_PROGRESS_POLL_MS } from './constants.js'
import { BackendResponseError, ModelNotFoundError } from './errors.js'
import { requestJson } from './http.js'
import { finishModels } from './listing.js'
import type { Adapter, ListerComponents, Listing } from './listing.js'
import { imageMime } from './media.js'
import type { RunSession } from './session.js'

const log = logger('realm:workers:sd')

const SdModelsSchema = z.array(z.looseObject({ title: z.string(), model_name: z.string() }))
const OptionsSchema = z.looseObject({ sd_model_checkpoint: z.string().nullable().optional().catch(undefined) })

/** Parses a `/sdapi/v1/sd-models` answer; throws BackendResponseError when it is not one */
export function parseSdModels (body: unknown): Array<{ title: string, model_name: string }> {
  const parsed = SdModelsSchema.safeParse(body)
  if (!parsed.success) throw new BackendResponseError('/sdapi/v1/sd-models is not an AUTOMATIC1111 checkpoint list')
  return parsed.data
}

export class SdAdapter implements Adapter {
  readonly kinds: readonly TaskKind[] = ['imagine']

  constructor (private readonly components: ListerComponents) {}

  async run (task: TaskSpec, session: RunSession): Promise<TaskOutput> {
    if (task.kind !== 'imagine') throw new Error(`unreachable: ${task.kind}`)
    return await runTxt2img(task, session)
  }

  async list (signal: AbortSignal): Promise<Listing> {
    const { conn, fetch } = this.components
    const optionsRequest = requestJson(conn, '/sdapi/v1/options', { fetch, signal }).then(body => OptionsSchema.parse(body), (err: unknown) => {
      // which checkpoint is loaded is a bonus, not a health condition
      log('/sdapi/v1/options: %s', err instanceof Error ? err.message : String(err))
      return undefined
    })
    const checkpoints = parseSdModels(await requestJson(conn, '/sdapi/v1/sd-models', { fetch, signal }))
    const options = await optionsRequest.catch(() => undefined)
    const current = options?.sd_model_checkpoint ?? undefined
    const candidates: ModelInfo[] = checkpoints.map(c => {
      const info: ModelInfo = { name: c.model_name, kinds: ['imagine'] }
      if (current !== undefined) info.loaded = c.title === current || c.model_name === current
      return info
    })
    return { models: finishModels(candidates, 'sd') }
  }
}

const ProgressSchema = z.looseObject({
  progress: z.number().optional(),
  state: z.looseObject({
    job_count: z.number().optional(),
    sampling_step: z.number().optional(),
    sampling_steps: z.number().optional()
  }).optional()
})

const Txt2ImgSchema = z.looseObject({
  images: z.array(z.string()).nullable(),
  info: z.string().optional()
})

const InfoSchema = z.looseObject({ seed: z.number().int().optional() })

/** A1111 answers 404 `Model not found` when `override_settings.sd_model_checkpoint` names no checkpoint */
function sdModelMissing (status: number, message: string): boolean {
  return status === 404 && /model not found/i.test(message)
}

/** Resolves after `ms`, or at once when `signal` aborts */
async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

/** txt2img, with progress polled while it runs */
async function runTxt2img (task: TaskSpec & { kind: 'imagine' }, session: RunSession): Promise<TaskOutput> {
  const input = task.input
  const body: Record<string, unknown> = {
    prompt: input.prompt,
    negative_prompt: input.negativePrompt ?? '',
    seed: input.seed ?? -1,
    batch_size: input.count ?? 1,
    override_settings: { sd_model_checkpoint: task.model }
  }
  if (input.steps !== undefined) body.steps = input.steps
  if (input.cfgScale !== undefined) body.cfg_scale = input.cfgScale
  if (input.width !== undefined) body.width = input.width
  if (input.height !== undefined) body.height = input.height
  if (input.sampler !== undefined) body.sampler_name = input.sampler

  session.onCancel(async signal => {
    // A1111 stops the job at its next step; closing the request alone would let it run on
    await session.detachedRequest('/sdapi/v1/interrupt', { method: 'POST' }, signal)
  })

  const polling = new AbortController()
  const stopPolling = (): void => { polling.abort() }
  session.signal.addEventListener('abort', stopPolling, { once: true })
  const poller = pollProgress(session, polling.signal)
  try {
    const res = await session.request('/sdapi/v1/txt2img', { json: body })
    if (!res.ok) {
      const answer = await session.errorAnswer(res)
      if (sdModelMissing(answer.status, answer.message)) throw new ModelNotFoundError(task.model, `checkpoint "${task.model}" not found`)
      throw session.httpError('/sdapi/v1/txt2img', answer)
    }
    const value = await session.json(res, '/sdapi/v1/txt2img')
    stopPolling()
    await poller
    const parsed = Txt2ImgSchema.safeParse(value)
    if (!parsed.success) throw session.backendError('/sdapi/v1/txt2img did not answer images')
    const images: Media[] = []
    for (const data of parsed.data.images ?? []) {
      const bytes = Buffer.from(data.replace(/^data:[^,]*,/, ''), 'base64')
      const mime = imageMime(bytes)
      if (mime === undefined) throw session.backendError('/sdapi/v1/txt2img answered an image that is not PNG, JPEG, GIF or WebP')
      const image = { data: bytesToBase64(bytes), mime }
      session.emit({ type: 'image', image })
      images.push(image)
    }
    let seed: number | undefined
    try {
      const info = InfoSchema.safeParse(JSON.parse(parsed.data.info ?? '{}'))
      if (info.success) seed = info.data.seed
    } catch {
      // `info` is a convenience: images without it are still the answer
    }
    return { images, doneReason: 'stop', usage: { units: images.length }, ...(seed !== undefined ? { seed } : {}) }
  } finally {
    stopPolling()
    session.signal.removeEventListener('abort', stopPolling)
    await poller
  }
}

/** `/progress` every SD_PROGRESS_POLL_MS until stopped: a progress event each time the step moves */
async function pollProgress (session: RunSession, signal: AbortSignal): Promise<void> {
  let last = ''
  while (!signal.aborted) {
    await sleep(SD_PROGRESS_POLL_MS, signal)
    if (signal.aborted) return
    try {
      const res = await session.request('/sdapi/v1/progress?skip_current_image=true', { signal })
      if (!res.ok) {
        await res.body?.cancel().catch(() => {})
        continue
      }
      const parsed = ProgressSchema.safeParse(await session.json(res, '/sdapi/v1/progress'))
      if (!parsed.success || signal.aborted) continue
      const { progress, state } = parsed.data
      // job_count 0: nothing running yet (or another client's job has ended)
      if ((state?.job_count ?? 0) === 0 || progress === undefined) continue
      const event = {
        type: 'progress' as const,
        fraction: Math.max(0, Math.min(1, progress)),
        ...(state?.sampling_step !== undefined ? { step: state.sampling_step } : {}),
        ...(state?.sampling_steps !== undefined ? { steps: state.sampling_steps } : {})
      }
      const key = `${event.fraction}/${event.step ?? ''}`
      if (key === last) continue
      last = key
      session.emit(event)
    } catch (err) {
      // a failed poll is not the run failing: txt2img's own answer decides
      log('progress poll: %s', errorMessage(err))
    }
  }
}
