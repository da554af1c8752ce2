/**
 * AUTOMATIC1111 stable-diffusion-webui stand-in: speaks its `/sdapi/v1` API (the FastAPI routes of
 * modules/api/api.py with the response models of modules/api/models.py) for the routes the realm
 * uses. txt2img returns real PNGs (one solid colour chosen by the seed) and `/progress` follows a
 * running job step by step. Fixtures: test/fixtures/a1111/.
 */
import { createHash } from 'node:crypto'
import { Standin, hash32 } from './base.js'
import type { RequestContext, StandinInit } from './base.js'
import { solidPng } from './media.js'

/** Default pause between sampling steps (`tokenDelayMs` paces steps here) */
const STEP_DELAY_MS = 2
/** Largest width/height accepted (A1111's UI allows up to 2048) */
const MAX_SIDE_PX = 2048
const MAX_STEPS = 150
const MODELS_DIR = '/stable-diffusion-webui/models/Stable-diffusion'

export interface A1111ModelInit {
  /** `model_name`, the file name without extension */
  modelName: string
  sha256?: string
  /** default `<modelName>.safetensors [<hash>]` */
  title?: string
  filename?: string
  config?: string | null
}

export interface Txt2ImgRequest {
  prompt: string
  negative_prompt: string
  seed: number
  width: number
  height: number
  steps: number
  batch_size: number
  n_iter: number
  [key: string]: unknown
}

export interface A1111StandinInit extends StandinInit {
  /** checkpoints; default A1111_DEFAULT_MODELS, the first one loaded */
  models?: A1111ModelInit[]
  /** the colour of an image; default from its seed */
  color?: (req: Txt2ImgRequest, seed: number) => [number, number, number]
  /** when set, `/sdapi` routes need HTTP Basic auth, as with `--api-auth user:pass` */
  auth?: { username: string, password: string }
}

export const A1111_DEFAULT_MODELS: A1111ModelInit[] = [
  { modelName: 'v1-5-pruned-emaonly', sha256: '6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa' },
  { modelName: 'sd_xl_base_1.0', sha256: '31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b' }
]

interface Checkpoint { title: string, model_name: string, hash: string, sha256: string, filename: string, config: string | null }

/** modules/shared_state.py State.dict() */
interface JobState {
  skipped: boolean
  interrupted: boolean
  stopping_generation: boolean
  job: string
  job_count: number
  job_timestamp: string
  job_no: number
  sampling_step: number
  sampling_steps: number
}

const IDLE_STATE: JobState = {
  skipped: false,
  interrupted: false,
  stopping_generation: false,
  job: '',
  job_count: 0,
  job_timestamp: '0',
  job_no: 0,
  sampling_step: 0,
  sampling_steps: 0
}

/** Defaults of StableDiffusionProcessingTxt2Img as the API echoes them in `parameters` */
const TXT2IMG_DEFAULTS: Record<string, unknown> = {
  prompt: '',
  negative_prompt: '',
  styles: null,
  seed: -1,
  subseed: -1,
  subseed_strength: 0,
  seed_resize_from_h: -1,
  seed_resize_from_w: -1,
  sampler_name: null,
  scheduler: null,
  batch_size: 1,
  n_iter: 1,
  steps: 50,
  cfg_scale: 7.0,
  width: 512,
  height: 512,
  restore_faces: null,
  tiling: null,
  do_not_save_samples: false,
  do_not_save_grid: false,
  eta: null,
  denoising_strength: null,
  s_min_uncond: null,
  s_churn: null,
  s_tmax: null,
  s_tmin: null,
  s_noise: null,
  override_settings: null,
  override_settings_restore_afterwards: true,
  refiner_checkpoint: null,
  refiner_switch_at: null,
  disable_extra_networks: false,
  firstpass_image: null,
  comments: null,
  enable_hr: false,
  firstphase_width: 0,
  firstphase_height: 0,
  hr_scale: 2.0,
  hr_upscaler: null,
  hr_second_pass_steps: 0,
  hr_resize_x: 0,
  hr_resize_y: 0,
  hr_checkpoint_name: null,
  hr_sampler_name: null,
  hr_scheduler: null,
  hr_prompt: '',
  hr_negative_prompt: '',
  force_task_id: null,
  sampler_index: 'Euler',
  script_name: null,
  script_args: [],
  send_images: true,
  save_images: false,
  alwayson_scripts: {},
  infotext: null
}

function toCheckpoint (init: A1111ModelInit): Checkpoint {
  const sha256 = init.sha256 ?? createHash('sha256').update(init.modelName).digest('hex')
  const hash = sha256.slice(0, 10)
  return {
    title: init.title ?? `${init.modelName}.safetensors [${hash}]`,
    model_name: init.modelName,
    hash,
    sha256,
    filename: init.filename ?? `${MODELS_DIR}/${init.modelName}.safetensors`,
    config: init.config ?? null
  }
}

function timestamp (date: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`
}

/** A FastAPI 422 body for one bad field */
function validationError (field: string, msg: string, type: string): Record<string, unknown> {
  return { detail: [{ loc: ['body', field], msg, type }] }
}

export class A1111Standin extends Standin {
  color: (req: Txt2ImgRequest, seed: number) => [number, number, number]
  auth: { username: string, password: string } | undefined
  private models: Checkpoint[] = []
  private current = ''
  private state: JobState = { ...IDLE_STATE }
  private timeStart = 0
  private lock: Promise<void> = Promise.resolve()
  private interruptRequested = false

  constructor (init: A1111StandinInit = {}) {
    super({ tokenDelayMs: STEP_DELAY_MS, ...init })
    this.color = init.color ?? ((_req, seed) => [seed & 255, (seed >>> 8) & 255, (seed >>> 16) & 255])
    this.auth = init.auth
    this.setModels(init.models ?? A1111_DEFAULT_MODELS)
  }

  /** replaces the checkpoints; the loaded one stays if still present, else the first */
  setModels (models: A1111ModelInit[]): void {
    this.models = models.map(toCheckpoint)
    if (!this.models.some(m => m.title === this.current)) this.current = this.models[0]?.title ?? ''
  }

  /** title of the loaded checkpoint (`sd_model_checkpoint`) */
  get loadedCheckpoint (): string {
    return this.current
  }

  protected override preflight (ctx: RequestContext): boolean {
    if (this.auth === undefined || !ctx.path.startsWith('/sdapi/')) return false
    const header = ctx.req.headers.authorization ?? ''
    const expected = 'Basic ' + Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')
    if (header === expected) return false
    this.sendJson(ctx, 401, { detail: header === '' ? 'Not authenticated' : 'Incorrect username or password' }, { 'WWW-Authenticate': 'Basic' })
    return true
  }

  protected override async route (ctx: RequestContext): Promise<boolean> {
    switch (`${ctx.method} ${ctx.path}`) {
      case 'GET /':
        this.sendText(ctx, 200, '<!DOCTYPE html><html><head><title>Stable Diffusion</title></head><body></body></html>', 'text/html; charset=utf-8')
        return true
      case 'GET /sdapi/v1/sd-models':
        this.sendJson(ctx, 200, this.models)
        return true
      case 'GET /sdapi/v1/options':
        this.sendJson(ctx, 200, this.options())
        return true
      case 'POST /sdapi/v1/options':
        this.setOptions(ctx)
        return true
      case 'GET /sdapi/v1/progress':
        this.sendJson(ctx, 200, this.progress())
        return true
      case 'POST /sdapi/v1/interrupt':
        if (this.state.job !== '') {
          this.state.interrupted = true
          this.interruptRequested = true
        }
        this.sendJson(ctx, 200, {})
        return true
      case 'POST /sdapi/v1/txt2img':
        await this.txt2img(ctx)
        return true
      default:
        return false
    }
  }

  protected override sendError (ctx: RequestContext, status: number, kind: 'server' | 'not_found' | 'bad_request', message?: string): void {
    if (kind === 'not_found' && message === undefined) {
      this.sendJson(ctx, 404, { detail: 'Not Found' })
      return
    }
    if (kind === 'server') {
      // modules/api/api.py handle_exception
      const errors = message ?? 'CUDA out of memory.'
      this.sendJson(ctx, status, { error: 'RuntimeError', detail: '', body: '', errors })
      return
    }
    const detail = message ?? 'Bad Request'
    this.sendJson(ctx, status, { error: 'HTTPException', detail, body: '', errors: `${status}: ${detail}` })
  }

  private options (): Record<string, unknown> {
    const m = this.models.find(x => x.title === this.current)
    return {
      sd_model_checkpoint: this.current,
      sd_checkpoint_hash: m?.sha256 ?? null,
      sd_vae: 'Automatic',
      samples_format: 'png',
      CLIP_stop_at_last_layers: 1,
      eta_noise_seed_delta: 0,
      show_progress_every_n_steps: 10
    }
  }

  private findCheckpoint (name: string): Checkpoint | undefined {
    const bare = name.replace('.safetensors', '')
    return this.models.find(m => m.title === name || m.model_name === name || m.model_name === bare || m.title === bare || m.title.startsWith(`${name} [`))
  }

  private setOptions (ctx: RequestContext): void {
    const body = ctx.body
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.sendJson(ctx, 422, validationError('__root__', 'value is not a valid dict', 'type_error.dict'))
      return
    }
    const name = (body as Record<string, unknown>).sd_model_checkpoint
    if (name !== undefined && name !== null) {
      const m = this.findCheckpoint(String(name))
      if (m === undefined) {
        this.sendError(ctx, 500, 'server', `model ${JSON.stringify(String(name)).replace(/"/g, "'")} not found`)
        return
      }
      this.current = m.title
    }
    this.sendJson(ctx, 200, null)
  }

  /** modules/api/api.py progressapi */
  private progress (): Record<string, unknown> {
    const state = { ...this.state }
    if (state.job_count === 0) {
      return { progress: 0, eta_relative: 0, state, current_image: null, textinfo: null }
    }
    let progress = 0.01
    if (state.job_count > 0) progress += state.job_no / state.job_count
    if (state.sampling_steps > 0) progress += 1 / state.job_count * state.sampling_step / state.sampling_steps
    const sinceStart = (Date.now() - this.timeStart) / 1000
    const eta = sinceStart / progress
    return { progress: Math.min(progress, 1), eta_relative: eta - sinceStart, state, current_image: null, textinfo: null }
  }

  private async txt2img (ctx: RequestContext): Promise<void> {
    const body = ctx.body
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.sendJson(ctx, 422, validationError('__root__', 'value is not a valid dict', 'type_error.dict'))
      return
    }
    const params: Record<string, any> = { ...TXT2IMG_DEFAULTS, ...body }
    for (const [field, max] of [['width', MAX_SIDE_PX], ['height', MAX_SIDE_PX], ['steps', MAX_STEPS], ['batch_size', 16], ['n_iter', 16]] as const) {
      const v = params[field]
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        this.sendJson(ctx, 422, validationError(field, 'value is not a valid integer', 'type_error.integer'))
        return
      }
      if (v < 1 || v > max) {
        this.sendJson(ctx, 422, validationError(field, `ensure this value is between 1 and ${max}`, 'value_error.number.not_in_range'))
        return
      }
    }
    if (typeof params.seed !== 'number' || !Number.isInteger(params.seed)) {
      this.sendJson(ctx, 422, validationError('seed', 'value is not a valid integer', 'type_error.integer'))
      return
    }
    let checkpoint = this.models.find(m => m.title === this.current)
    const wanted = params.override_settings?.sd_model_checkpoint
    if (typeof wanted === 'string') {
      checkpoint = this.findCheckpoint(wanted)
      if (checkpoint === undefined) {
        this.sendError(ctx, 404, 'bad_request', 'Model not found')
        return
      }
    }
    if (checkpoint === undefined) {
      this.sendError(ctx, 500, 'server', 'No checkpoints found.')
      return
    }

    // A1111 runs one job at a time (queue_lock)
    const previous = this.lock
    let release!: () => void
    this.lock = new Promise<void>(resolve => { release = resolve })
    try {
      await previous
      await this.runTxt2img(ctx, params, checkpoint)
    } finally {
      this.state = { ...IDLE_STATE }
      this.interruptRequested = false
      release()
    }
  }

  private async runTxt2img (ctx: RequestContext, params: Record<string, any>, checkpoint: Checkpoint): Promise<void> {
    const prompt = String(params.prompt ?? '')
    const seed: number = params.seed === -1 ? hash32(prompt) % 4294967294 : params.seed
    const subseed: number = params.subseed === -1 ? hash32(`${prompt}#sub`) % 4294967294 : params.subseed
    const batchSize: number = params.batch_size
    const nIter: number = params.n_iter
    const steps: number = params.steps
    const total = batchSize * nIter
    const allSeeds = Array.from({ length: total }, (_, i) => seed + i)
    const started = new Date()
    this.timeStart = started.getTime()
    this.state = {
      ...IDLE_STATE,
      job: 'scripts_txt2img',
      job_count: nIter,
      job_timestamp: timestamp(started),
      sampling_steps: steps
    }

    let step = 0
    for (let job = 0; job < nIter && !this.interruptRequested; job++) {
      this.state.job_no = job
      this.state.sampling_step = 0
      for (let s = 0; s < steps && !this.interruptRequested; s++) {
        await this.tokenGate(ctx, step++)
        this.state.sampling_step = s + 1
      }
    }
    await this.tokenGate(ctx, step)

    const samplerName: string = params.sampler_name ?? params.sampler_index ?? 'Euler'
    const request: Txt2ImgRequest = { ...params, prompt, negative_prompt: String(params.negative_prompt ?? ''), seed, width: params.width, height: params.height, steps, batch_size: batchSize, n_iter: nIter }
    const images = params.send_images === false
      ? []
      : allSeeds.map(s => solidPng(params.width, params.height, this.color(request, s)).toString('base64'))
    const infotexts = allSeeds.map(s => `${prompt}\nSteps: ${steps}, Sampler: ${samplerName}, CFG scale: ${String(params.cfg_scale)}, Seed: ${s}, Size: ${String(params.width)}x${String(params.height)}, Model hash: ${checkpoint.hash}, Model: ${checkpoint.model_name}`)
    const info = {
      prompt,
      all_prompts: allSeeds.map(() => prompt),
      negative_prompt: request.negative_prompt,
      all_negative_prompts: allSeeds.map(() => request.negative_prompt),
      seed,
      all_seeds: allSeeds,
      subseed,
      all_subseeds: allSeeds.map((_, i) => subseed + i),
      subseed_strength: params.subseed_strength,
      width: params.width,
      height: params.height,
      sampler_name: samplerName,
      cfg_scale: params.cfg_scale,
      steps,
      batch_size: batchSize,
      restore_faces: params.restore_faces ?? false,
      face_restoration_model: null,
      sd_model_name: checkpoint.model_name,
      sd_model_hash: checkpoint.hash,
      sd_vae_name: null,
      sd_vae_hash: null,
      seed_resize_from_w: params.seed_resize_from_w,
      seed_resize_from_h: params.seed_resize_from_h,
      denoising_strength: params.denoising_strength,
      extra_generation_params: {},
      index_of_first_image: 0,
      infotexts,
      styles: params.styles ?? [],
      job_timestamp: this.state.job_timestamp,
      clip_skip: 1,
      is_using_inpainting_conditioning: false,
      version: 'v1.10.1'
    }
    this.sendJson(ctx, 200, { images, parameters: params, info: JSON.stringify(info) })
  }
}

/** Starts an AUTOMATIC1111 stand-in on `init.host`:`init.port` (default 127.0.0.1, a free port) */
export async function startA1111Standin (init: A1111StandinInit = {}): Promise<A1111Standin> {
  return await new A1111Standin(init).listen()
}
