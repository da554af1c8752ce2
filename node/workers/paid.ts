/**
 * The paid backends (claude, hf): where their API key comes from (worker URL, then the
 * environment, then config `[paid]`), and their caps and prices from config.
 */
import type { RealmConfig } from '../config/spec.js'
import { API_KEY_ENV_VARS, PAID_DEFAULTS } from './constants.js'
import { urlKey } from './spec.js'
import type { Prices } from './spend.js'
import type { PaidInit, WorkerSpec } from './types.js'

export type PaidBackend = keyof typeof PAID_DEFAULTS

export function isPaidBackend (backend: string): backend is PaidBackend {
  return backend === 'claude' || backend === 'hf'
}

/** The `paid` part of WorkerInit from config `[paid]` (the node hands it to createWorker) */
export function paidInitFromConfig (config: Pick<RealmConfig, 'paid'>): { claude: PaidInit, hf: PaidInit } {
  const paid = config.paid
  return {
    claude: {
      ...(paid.claude_api_key !== '' ? { apiKey: paid.claude_api_key } : {}),
      dailyCapUsd: paid.claude_daily_cap_usd,
      inputUsdPerMTok: paid.claude_input_usd_per_mtok,
      outputUsdPerMTok: paid.claude_output_usd_per_mtok
    },
    hf: {
      ...(paid.hf_api_key !== '' ? { apiKey: paid.hf_api_key } : {}),
      models: [...paid.hf_models],
      dailyCapUsd: paid.hf_daily_cap_usd,
      inputUsdPerMTok: paid.hf_input_usd_per_mtok,
      outputUsdPerMTok: paid.hf_output_usd_per_mtok,
      usdPerImage: paid.hf_usd_per_image
    }
  }
}

/**
 * The API key of a paid worker: the worker URL's (`claude=https://:KEY@api.anthropic.com`), else
 * the environment variable (ANTHROPIC_API_KEY, HF_TOKEN), else the config setting
 * (flag > environment > config file, as every setting)
 */
export function paidApiKey (spec: WorkerSpec, backend: PaidBackend, paid: PaidInit | undefined, env: Record<string, string | undefined>): string | undefined {
  const fromUrl = urlKey(spec.target)
  if (fromUrl !== undefined) return fromUrl
  const fromEnv = env[API_KEY_ENV_VARS[backend]]
  if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv.trim()
  return paid?.apiKey !== undefined && paid.apiKey !== '' ? paid.apiKey : undefined
}

/** A paid backend's daily cap and prices, defaults filled in */
export function paidTerms (backend: PaidBackend, paid: PaidInit | undefined): { capUsd: number, prices: Prices } {
  const defaults = PAID_DEFAULTS[backend]
  return {
    capUsd: paid?.dailyCapUsd ?? defaults.dailyCapUsd,
    prices: {
      inputUsdPerMTok: paid?.inputUsdPerMTok ?? defaults.inputUsdPerMTok,
      outputUsdPerMTok: paid?.outputUsdPerMTok ?? defaults.outputUsdPerMTok,
      usdPerImage: paid?.usdPerImage ?? defaults.usdPerImage
    }
  }
}
