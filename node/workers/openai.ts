/**
 * OpenAI-compatible adapter (llama.cpp server, vLLM, LM Studio, OpenAI itself): models from
 * `GET /v1/models`. A target whose path already ends in `/v1` (`http://host:8000/v1`) is used
 * as the API base as it is.
 */
import { z } from 'zod'
import type { ModelInfo, TaskKind } from '../../protocol/kinds.js'
import { BackendResponseError } from './errors.js'
import { requestJson } from './http.js'
import { finishModels } from './listing.js'
import type { Lister, ListerComponents, Listing } from './listing.js'
import type { Connection } from './spec.js'

const ModelsSchema = z.looseObject({
  data: z.array(z.looseObject({ id: z.string() }))
})

/** Parses a `/v1/models` answer; throws BackendResponseError when it is not one */
export function parseOpenAIModels (body: unknown): string[] {
  const parsed = ModelsSchema.safeParse(body)
  if (!parsed.success) throw new BackendResponseError('/v1/models is not an OpenAI model list')
  return parsed.data.data.map(m => m.id)
}

/** The path of `/v1/models` under a connection's base */
export function openaiModelsPath (conn: Connection): string {
  return /\/v1$/.test(conn.base) ? '/models' : '/v1/models'
}

/**
 * Kinds of an OpenAI model id: `embed` → embed, `whisper`/`transcribe` → transcribe,
 * `tts` → speak, `dall-e`/`gpt-image` → imagine, anything else chat + generate. `moderation`
 * models serve none of the realm's kinds (undefined).
 */
export function openaiKinds (id: string): TaskKind[] | undefined {
  const name = id.toLowerCase()
  if (name.includes('moderation')) return undefined
  if (name.includes('embed')) return ['embed']
  if (name.includes('whisper') || name.includes('transcribe')) return ['transcribe']
  if (name.includes('tts')) return ['speak']
  if (name.includes('dall-e') || name.includes('gpt-image')) return ['imagine']
  return ['chat', 'generate']
}

export class OpenAILister implements Lister {
  constructor (private readonly components: ListerComponents) {}

  async list (signal: AbortSignal): Promise<Listing> {
    const { conn, fetch } = this.components
    const ids = parseOpenAIModels(await requestJson(conn, openaiModelsPath(conn), { fetch, signal }))
    const candidates: ModelInfo[] = []
    for (const id of ids) {
      const kinds = openaiKinds(id)
      if (kinds !== undefined) candidates.push({ name: id, kinds })
    }
    return { models: finishModels(candidates, 'openai') }
  }
}
