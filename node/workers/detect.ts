/**
 * Finds backends on their usual local ports: a port counts only when it answers its backend's
 * model listing in that backend's shape (any other HTTP server there is not a backend).
 */
import { logger } from '@libp2p/logger'
import { errorMessage } from '../../protocol/errors.js'
import { DEFAULT_PORTS, DETECT_HOST, DETECT_TIMEOUT_MS } from './constants.js'
import { requestJson } from './http.js'
import { parseOllamaTags } from './ollama.js'
import { parseOpenAIModels } from './openai.js'
import { parseSdModels } from './sd.js'
import type { DetectWorkersInit, WorkerSpec } from './types.js'

const log = logger('realm:workers:detect')

const PROBES = [
  { backend: 'ollama', path: '/api/tags', check: parseOllamaTags },
  { backend: 'openai', path: '/v1/models', check: parseOpenAIModels },
  { backend: 'sd', path: '/sdapi/v1/sd-models', check: parseSdModels }
] as const

/** Specs for the backends answering on `host` at their usual ports, in the order ollama, openai, sd */
export async function detectWorkers (init: DetectWorkersInit = {}): Promise<WorkerSpec[]> {
  const host = init.host ?? DETECT_HOST
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  const timeoutMs = init.timeoutMs ?? DETECT_TIMEOUT_MS
  const fetchFn = init.fetch ?? globalThis.fetch
  const found = await Promise.all(PROBES.map(async ({ backend, path, check }) => {
    const port = init.ports?.[backend] ?? DEFAULT_PORTS[backend]
    const base = `http://${hostPart}:${port}`
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      check(await requestJson({ base, search: '', headers: {} }, path, { fetch: fetchFn, signal }))
      log('found %s at %s', backend, base)
      return { backend, target: base } satisfies WorkerSpec
    } catch (err) {
      log('no %s at %s: %s', backend, base, errorMessage(err))
      return undefined
    }
  }))
  return found.filter((spec): spec is NonNullable<typeof spec> => spec !== undefined)
}
