/**
 * HuggingFace stand-in: the OpenAI-compatible router (`/v1/models`, `/v1/chat/completions` with
 * SSE, from the OpenAI stand-in) plus the HF Inference task API on the same host:
 * `POST /hf-inference/models/{model}/pipeline/feature-extraction` (`{inputs}` → `number[][]`) and
 * `POST /hf-inference/models/{model}` for text-to-image (`{inputs, parameters}` → PNG bytes).
 * Task API errors are `{ "error": "<message>" }`. Fixtures: test/fixtures/hf/.
 */
import { embeddingFor, hash32 } from './base.js'
import type { RequestContext } from './base.js'
import { solidPng } from './media.js'
import { OpenAIStandin } from './openai.js'
import type { OpenAIStandinInit } from './openai.js'

export type HfTask = 'feature-extraction' | 'text-to-image'

export interface HfStandinInit extends OpenAIStandinInit {
  /** models of the task API and the task each runs; default HF_DEFAULT_TASK_MODELS */
  taskModels?: Record<string, HfTask>
}

/** Chat models the router serves by default (a text model and a vision model) */
export const HF_DEFAULT_CHAT_MODELS = ['meta-llama/Llama-3.1-8B-Instruct', 'Qwen/Qwen2.5-VL-7B-Instruct']

export const HF_DEFAULT_TASK_MODELS: Record<string, HfTask> = {
  'BAAI/bge-small-en-v1.5': 'feature-extraction',
  'stabilityai/stable-diffusion-xl-base-1.0': 'text-to-image'
}

const TASK_PREFIX = '/hf-inference/models/'
const PIPELINE_SUFFIX = '/pipeline/feature-extraction'
/** Side of a text-to-image answer when no width/height is asked (SDXL's native size is larger; a stand-in keeps it small) */
const DEFAULT_IMAGE_SIDE_PX = 512
const MAX_IMAGE_SIDE_PX = 2048

export class HfStandin extends OpenAIStandin {
  taskModels: Record<string, HfTask>

  constructor (init: HfStandinInit = {}) {
    super({ models: HF_DEFAULT_CHAT_MODELS, ...init })
    this.taskModels = init.taskModels ?? HF_DEFAULT_TASK_MODELS
  }

  protected override preflight (ctx: RequestContext): boolean {
    if (!ctx.path.startsWith(TASK_PREFIX)) return super.preflight(ctx)
    if (this.apiKey === undefined) return false
    if (ctx.req.headers.authorization === `Bearer ${this.apiKey}`) return false
    this.sendJson(ctx, 401, { error: 'Invalid credentials in Authorization header' })
    return true
  }

  protected override async route (ctx: RequestContext): Promise<boolean> {
    if (ctx.method === 'POST' && ctx.path.startsWith(TASK_PREFIX)) {
      this.task(ctx)
      return true
    }
    return await super.route(ctx)
  }

  protected override sendError (ctx: RequestContext, status: number, kind: 'server' | 'not_found' | 'bad_request', message?: string): void {
    if (!ctx.path.startsWith(TASK_PREFIX)) {
      super.sendError(ctx, status, kind, message)
      return
    }
    this.sendJson(ctx, status, { error: message ?? (kind === 'server' ? 'Internal Server Error' : kind === 'not_found' ? 'Not Found' : 'Bad Request') })
  }

  /** the router answers a model no provider serves with a 400 */
  protected override modelNotFound (ctx: RequestContext, id: string): void {
    this.sendJson(ctx, 400, { error: { message: `The requested model '${id}' is not supported by any provider you have enabled.`, type: 'invalid_request_error', param: 'model', code: 'model_not_supported' } })
  }

  private task (ctx: RequestContext): void {
    let rest = ctx.path.slice(TASK_PREFIX.length)
    const pipeline = rest.endsWith(PIPELINE_SUFFIX)
    if (pipeline) rest = rest.slice(0, -PIPELINE_SUFFIX.length)
    const model = rest.split('/').map(decodeURIComponent).join('/')
    const task = this.taskModels[model]
    if (task === undefined) {
      this.sendJson(ctx, 404, { error: `Model ${model} does not exist` })
      return
    }
    const body = ctx.body as Record<string, any> | undefined
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.sendJson(ctx, 400, { error: 'Failed to deserialize the JSON body into the target type' })
      return
    }
    if (pipeline && task !== 'feature-extraction') {
      this.sendJson(ctx, 400, { error: `Model ${model} does not support the feature-extraction pipeline` })
      return
    }
    if (task === 'feature-extraction') this.featureExtraction(ctx, body)
    else this.textToImage(ctx, body)
  }

  private featureExtraction (ctx: RequestContext, body: Record<string, any>): void {
    const inputs: unknown = body.inputs
    let texts: string[]
    if (typeof inputs === 'string') texts = [inputs]
    else if (Array.isArray(inputs) && inputs.length > 0 && inputs.every(x => typeof x === 'string')) texts = inputs
    else {
      this.sendJson(ctx, 400, { error: 'inputs must be a string or a list of strings' })
      return
    }
    this.sendJson(ctx, 200, texts.map(text => embeddingFor(text, this.embeddingDims)))
  }

  private textToImage (ctx: RequestContext, body: Record<string, any>): void {
    if (typeof body.inputs !== 'string' || body.inputs === '') {
      this.sendJson(ctx, 400, { error: 'inputs must be a non-empty string' })
      return
    }
    const parameters = body.parameters ?? {}
    const side = (v: unknown): number | undefined => typeof v === 'number' && Number.isInteger(v) && v >= 8 && v <= MAX_IMAGE_SIDE_PX ? v : undefined
    const width = side(parameters.width) ?? DEFAULT_IMAGE_SIDE_PX
    const height = side(parameters.height) ?? DEFAULT_IMAGE_SIDE_PX
    const seed = typeof parameters.seed === 'number' ? parameters.seed >>> 0 : hash32(body.inputs)
    const png = solidPng(width, height, [seed & 255, (seed >>> 8) & 255, (seed >>> 16) & 255])
    ctx.res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': png.length })
    if (this.killPoint !== null) {
      // an image has no tokens: any kill point cuts it half way
      ctx.res.write(png.subarray(0, png.length >> 1), () => { this.cut(ctx) })
      return
    }
    ctx.res.end(png)
  }
}

/** Starts a HuggingFace stand-in on `init.host`:`init.port` (default 127.0.0.1, a free port) */
export async function startHfStandin (init: HfStandinInit = {}): Promise<HfStandin> {
  return await new HfStandin(init).listen()
}
