/**
 * AUTOMATIC1111 adapter: checkpoints from `GET /sdapi/v1/sd-models` (named by `model_name`), the
 * loaded one from `GET /sdapi/v1/options` (`sd_model_checkpoint` is its title).
 * API: the FastAPI routes of stable-diffusion-webui modules/api/api.py
 */
import { z } from 'zod'
import { logger } from '@libp2p/logger'
import type { ModelInfo } from '../../protocol/kinds.js'
import { BackendResponseError } from './errors.js'
import { requestJson } from './http.js'
import { finishModels } from './listing.js'
import type { Lister, ListerComponents, Listing } from './listing.js'

const log = logger('realm:workers:sd')

const SdModelsSchema = z.array(z.looseObject({ title: z.string(), model_name: z.string() }))
const OptionsSchema = z.looseObject({ sd_model_checkpoint: z.string().nullable().optional().catch(undefined) })

/** Parses a `/sdapi/v1/sd-models` answer; throws BackendResponseError when it is not one */
export function parseSdModels (body: unknown): Array<{ title: string, model_name: string }> {
  const parsed = SdModelsSchema.safeParse(body)
  if (!parsed.success) throw new BackendResponseError('/sdapi/v1/sd-models is not an AUTOMATIC1111 checkpoint list')
  return parsed.data
}

export class SdLister implements Lister {
  constructor (private readonly components: ListerComponents) {}

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
