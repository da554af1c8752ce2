/**
 * HuggingFace adapter. Chat and generate go through the OpenAI-compatible router
 * (`POST {target}/v1/chat/completions`, SSE); embed and imagine through the HF Inference task API
 * on the same host (`POST {target}/hf-inference/models/{model}/pipeline/feature-extraction` →
 * `number[][]`, `POST {target}/hf-inference/models/{model}` text-to-image → image bytes).
 * The API has no cheap "my models" call, so the models are configured
 * (`hf=https://router.huggingface.co#MODEL,KIND=MODEL` or `paid.hf_models`); a probe checks the
 * router answers `GET /v1/models`.
 * API: huggingface.co/docs/inference-providers (tasks/chat-completion, feature-extraction, text-to-image)
 */
import type { ModelInfo, TaskKind } from '../../protocol/kinds.js'
import type { Media, TaskOutput, TaskSpec } from '../../protocol/task.js'
import { bytesToBase64 } from '../../protocol/bytes.js'
import { CHARS_PER_TOKEN_ESTIMATE } from './constants.js'
import { BackendResponseError, ModelNotFoundError } from './errors.js'
import { requestJson } from './http.js'
import { finishModels } from './listing.js'
import type { Adapter, ListerComponents, Listing } from './listing.js'
import { imageMime } from './media.js'
import { MAX_MEDIA_BYTES, chatMessages, chatParams, openaiModelMissing, openaiPath, parseOpenAIModels, streamChatCompletions } from './openai.js'
import type { BackendAnswer, ErrorAnswer, RunSession } from './session.js'
import type { SpecModel } from './types.js'

/** The kinds of an HF model from its name, when the spec gives none: embedders, image generators, else chat */
export function hfKinds (name: string): TaskKind[] {
  const n = name.toLowerCase()
  if (/embed|bge-|\/bge|e5-|gte-|minilm|mpnet|sentence-transformers/.test(n)) return ['embed']
  if (/stable-diffusion|sdxl|flux|diffusion|kandinsky|playground-v|qwen-image|hunyuanimage|text-to-image/.test(n)) return ['imagine']
  return ['chat', 'generate']
}

/** A model whose name says it reads images (Qwen2.5-VL, Llama-3.2-Vision, llava, …) */
function hfVision (name: string): boolean {
  return /vision|-vl\b|-vl-|llava|vlm/.test(name.toLowerCase())
}

/** A model id as a URL path: each `/`-separated part escaped, the slashes kept */
function modelPath (model: string): string {
  return model.split('/').map(encodeURIComponent).join('/')
}

/**
 * Unknown models: the router answers 400 "The requested model 'x' is not supported by any
 * provider you have enabled" (or OpenAI's `model_not_found`), the task API 404 "Model x does not exist"
 */
function hfModelMissing (answer: ErrorAnswer): boolean {
  if (openaiModelMissing(answer)) return true
  return answer.status === 404 && /model|not found|does not exist/i.test(answer.message)
}

/** Feature-extraction answers as one vector per input: `number[]` (one input), `number[][]`, or token vectors `number[][][]` (mean-pooled) */
export function embeddingRows (value: unknown, inputs: number): number[][] | undefined {
  const isVector = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every(x => typeof x === 'number' && Number.isFinite(x))
  const pool = (tokens: unknown): number[] | undefined => {
    if (!Array.isArray(tokens) || tokens.length === 0 || !tokens.every(isVector)) return undefined
    const dims = tokens[0].length
    if (!tokens.every(t => t.length === dims)) return undefined
    return Array.from({ length: dims }, (_, i) => tokens.reduce((sum, t) => sum + t[i], 0) / tokens.length)
  }
  if (isVector(value)) return inputs === 1 ? [value] : undefined
  if (!Array.isArray(value)) return undefined
  let rows: Array<number[] | undefined>
  if (value.every(isVector)) {
    // one input's token vectors look like several sentence vectors: the input count decides
    rows = value.length === inputs ? value : inputs === 1 ? [pool(value)] : []
  } else {
    rows = value.map(pool)
  }
  if (rows.length !== inputs || rows.some(r => r === undefined)) return undefined
  return rows as number[][]
}

export interface HfAdapterComponents extends ListerComponents {
  /** the models this worker serves (spec fragment, else `paid.hf_models`) */
  models: SpecModel[]
}

export class HfAdapter implements Adapter {
  readonly kinds: readonly TaskKind[] = ['chat', 'generate', 'imagine', 'embed']

  constructor (private readonly components: HfAdapterComponents) {}

  async list (signal: AbortSignal): Promise<Listing> {
    const { conn, fetch, models } = this.components
    // the router's model list: it answers, so the endpoint is up
    parseOpenAIModels(await requestJson(conn, openaiPath(conn, '/models'), { fetch, signal }))
    if (models.length === 0) throw new BackendResponseError('no models configured: name them as hf=URL#MODEL,… or in paid.hf_models')
    const candidates: ModelInfo[] = models.map(m => {
      const kinds = (m.kinds ?? hfKinds(m.name)).filter(k => this.kinds.includes(k))
      const info: ModelInfo = { name: m.name, kinds: kinds.length > 0 ? kinds : ['chat', 'generate'] }
      if (m.vision === true || (m.vision === undefined && info.kinds.includes('chat') && hfVision(m.name))) info.vision = true
      return info
    })
    return { models: finishModels(candidates, 'hf') }
  }

  async run (task: TaskSpec, session: RunSession): Promise<TaskOutput> {
    const { conn } = session
    switch (task.kind) {
      case 'chat':
      case 'generate':
        return await streamChatCompletions(session, {
          path: openaiPath(conn, '/chat/completions'),
          body: { model: task.model, messages: chatMessages(task), ...chatParams(task.options, false) },
          model: task.model,
          missing: hfModelMissing
        })
      case 'embed': {
        const path = `/hf-inference/models/${modelPath(task.model)}/pipeline/feature-extraction`
        const inputs = task.input.input
        const res = await session.request(path, { json: { inputs } })
        if (!res.ok) throw await this.notOk(session, task.model, res, 'feature-extraction')
        const count = typeof inputs === 'string' ? 1 : inputs.length
        const rows = embeddingRows(await session.json(res, 'feature-extraction'), count)
        if (rows === undefined) throw session.backendError('feature-extraction did not answer one vector per input')
        const chars = typeof inputs === 'string' ? inputs.length : inputs.reduce((n, s) => n + s.length, 0)
        // the task API reports no usage: tokens estimated from the text, for the spend
        const promptTokens = Math.ceil(chars / CHARS_PER_TOKEN_ESTIMATE)
        return { embeddings: rows, usage: { promptTokens, units: promptTokens } }
      }
      case 'imagine': {
        const path = `/hf-inference/models/${modelPath(task.model)}`
        const { prompt, negativePrompt, width, height, steps, cfgScale, seed, count } = task.input
        const images: Media[] = []
        for (let i = 0; i < (count ?? 1); i++) {
          const parameters: Record<string, unknown> = {}
          if (negativePrompt !== undefined) parameters.negative_prompt = negativePrompt
          if (width !== undefined) parameters.width = width
          if (height !== undefined) parameters.height = height
          if (steps !== undefined) parameters.num_inference_steps = steps
          if (cfgScale !== undefined) parameters.guidance_scale = cfgScale
          // one image per call: a batch of n asks n seeds
          if (seed !== undefined && seed >= 0) parameters.seed = seed + i
          const res = await session.request(path, { json: { inputs: prompt, ...(Object.keys(parameters).length > 0 ? { parameters } : {}) }, accept: 'image/png, image/jpeg, image/*' })
          if (!res.ok) throw await this.notOk(session, task.model, res, 'text-to-image')
          const bytes = await session.bytes(res, MAX_MEDIA_BYTES)
          const mime = imageMime(bytes)
          if (mime === undefined) throw session.backendError('text-to-image answered something that is not an image')
          const image = { data: bytesToBase64(bytes), mime }
          session.emit({ type: 'image', image })
          images.push(image)
        }
        return { images, doneReason: 'stop', usage: { units: images.length }, ...(seed !== undefined && seed >= 0 ? { seed } : {}) }
      }
      default:
        throw new Error(`unreachable: ${task.kind}`)
    }
  }

  private async notOk (session: RunSession, model: string, res: BackendAnswer, what: string): Promise<Error> {
    const answer = await session.errorAnswer(res)
    if (hfModelMissing(answer)) return new ModelNotFoundError(model, answer.message)
    return session.httpError(what, answer)
  }
}
