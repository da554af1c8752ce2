/**
 * Precedence: flag > environment > config file > default (the file already holds defaults for
 * whatever it lacks). Flag and environment values pass the same schemas as the file's.
 */
import { homedir } from 'node:os'
import * as path from 'node:path'
import { DATA_DIR_NAME } from './constants.js'
import { ConfigError } from './errors.js'
import { checkValue, issueText, quote } from './repair.js'
import { settingSpec, type RealmConfig, type SettingSpec } from './spec.js'

/** The `realm start` flags that override config settings (`--data` is the CLI's own) */
export interface ConfigFlags {
  /** `--http HOST:PORT`: replaces `http.listen`. Default: not given */
  http?: string
  /** `--listen MULTIADDR` (repeatable): replaces `p2p.listen`. Default: not given (an empty list counts as not given) */
  listen?: string[]
  /** `--bootstrap MULTIADDR` (repeatable): added to `p2p.bootstrap`, duplicates dropped. Default: none */
  bootstrap?: string[]
  /** `--worker BACKEND=TARGET` (repeatable): replaces `workers.list`. Default: not given (an empty list counts as not given) */
  worker?: string[]
  /** `--no-detect` is `false`: sets `workers.detect`. Default: not given */
  detect?: boolean
  /** `--no-mdns` is `false`: sets `p2p.mdns`. Default: not given */
  mdns?: boolean
}

export interface ResolveConfigInit {
  /** the config from the file (`loadConfig(dir).config`) */
  file: RealmConfig
  /** the environment to read `REALM_*` variables from. Default: none */
  env?: NodeJS.ProcessEnv
  /** parsed command-line flags. Default: none */
  flags?: ConfigFlags
}

export interface ConfigEnvVar {
  /** variable name */
  name: string
  /** the flag it stands for, when there is one */
  flag?: string
  /** the config setting it sets (`section.key`), when it sets one */
  setting?: string
  /** what it does, one line */
  description: string
}

/** Every environment variable the node reads, for `--help` and the README */
export const CONFIG_ENV_VARS: readonly ConfigEnvVar[] = [
  { name: 'REALM_DATA', flag: '--data', description: 'data dir: config, keys, database, trace log (default ~/.rentahal)' },
  { name: 'REALM_HTTP', flag: '--http', setting: 'http.listen', description: 'HOST:PORT of the gateway (HTTP API + web UI)' },
  { name: 'REALM_LISTEN', flag: '--listen', setting: 'p2p.listen', description: 'libp2p listen multiaddrs, comma separated; replace the config\'s' },
  { name: 'REALM_BOOTSTRAP', flag: '--bootstrap', setting: 'p2p.bootstrap', description: 'multiaddrs of nodes to join, comma separated; added to the config\'s' },
  { name: 'REALM_WORKER', flag: '--worker', setting: 'workers.list', description: 'backends as BACKEND=TARGET, comma separated; replace the config\'s' },
  { name: 'REALM_NO_DETECT', flag: '--no-detect', setting: 'workers.detect', description: '1: do not look for backends on their usual local ports' },
  { name: 'REALM_NO_MDNS', flag: '--no-mdns', setting: 'p2p.mdns', description: '1: no LAN discovery with mDNS' },
  { name: 'REALM_PRESENCE_INTERVAL_MS', setting: 'presence.interval_ms', description: 'how often the presence beacon is published, in milliseconds' }
]

const TRUE_RE = /^(?:1|true|yes|on)$/i
const FALSE_RE = /^(?:0|false|no|off)$/i
const UNSIGNED_INT_RE = /^\d+$/

/** Where a value came from, to name it in an error */
interface Source {
  code: 'INVALID_FLAG' | 'INVALID_ENV'
  name: string
}

/**
 * The config the node runs with: flag > environment > config file > default.
 * Throws `ConfigError` (`INVALID_FLAG` or `INVALID_ENV`) with a one-line message naming the
 * flag or variable and what was expected. Does not modify `file`.
 */
export function resolveConfig (init: ResolveConfigInit): RealmConfig {
  const config = structuredClone(init.file)
  const env = init.env ?? {}
  const flags = init.flags ?? {}

  // environment first, so flags win
  const envVar = (name: string): Source => ({ code: 'INVALID_ENV', name })
  const httpEnv = nonEmpty(env.REALM_HTTP)
  if (httpEnv !== undefined) config.http.listen = check('http', 'listen', httpEnv, envVar('REALM_HTTP'))
  const listenEnv = commaList(env.REALM_LISTEN)
  if (listenEnv !== undefined) config.p2p.listen = checkList('p2p', 'listen', listenEnv, envVar('REALM_LISTEN'))
  const bootstrapEnv = commaList(env.REALM_BOOTSTRAP)
  if (bootstrapEnv !== undefined) config.p2p.bootstrap = addTo(config.p2p.bootstrap, bootstrapEnv, envVar('REALM_BOOTSTRAP'))
  const workerEnv = commaList(env.REALM_WORKER)
  if (workerEnv !== undefined) config.workers.list = checkList('workers', 'list', workerEnv, envVar('REALM_WORKER'))
  if (envFlag(env, 'REALM_NO_DETECT') === true) config.workers.detect = false
  if (envFlag(env, 'REALM_NO_MDNS') === true) config.p2p.mdns = false
  const intervalEnv = nonEmpty(env.REALM_PRESENCE_INTERVAL_MS)
  if (intervalEnv !== undefined) {
    const source = envVar('REALM_PRESENCE_INTERVAL_MS')
    if (!UNSIGNED_INT_RE.test(intervalEnv)) throw invalid(source, intervalEnv, 'expected a whole number of milliseconds')
    config.presence.interval_ms = check('presence', 'interval_ms', Number(intervalEnv), source)
  }

  const flag = (name: string): Source => ({ code: 'INVALID_FLAG', name })
  if (flags.http !== undefined) config.http.listen = check('http', 'listen', flags.http, flag('--http'))
  if (flags.listen !== undefined && flags.listen.length > 0) config.p2p.listen = checkList('p2p', 'listen', flags.listen, flag('--listen'))
  if (flags.bootstrap !== undefined) config.p2p.bootstrap = addTo(config.p2p.bootstrap, flags.bootstrap, flag('--bootstrap'))
  if (flags.worker !== undefined && flags.worker.length > 0) config.workers.list = checkList('workers', 'list', flags.worker, flag('--worker'))
  if (flags.detect !== undefined) config.workers.detect = check('workers', 'detect', flags.detect, flag(flags.detect ? '--detect' : '--no-detect'))
  if (flags.mdns !== undefined) config.p2p.mdns = check('p2p', 'mdns', flags.mdns, flag(flags.mdns ? '--mdns' : '--no-mdns'))
  return config
}

function spec (section: string, key: string): SettingSpec {
  const found = settingSpec(section, key)
  if (found === undefined) throw new Error(`no setting ${section}.${key}`)
  return found
}

function check<T> (section: string, key: string, value: T, source: Source): T {
  const result = spec(section, key).schema.safeParse(value)
  if (!result.success) throw invalid(source, value, issueText(result.error))
  return result.data as T
}

/** Each entry checked on its own (so the error names it), then the list as a whole */
function checkList (section: string, key: string, values: string[], source: Source): string[] {
  const setting = spec(section, key)
  for (const value of values) {
    const item = setting.item?.safeParse(value)
    if (item !== undefined && !item.success) throw invalid(source, value, issueText(item.error))
  }
  const checked = checkValue(setting, values)
  if (!checked.ok) throw new ConfigError(source.code, `${source.name}: ${checked.reason}`)
  return checked.value as string[]
}

/** `--bootstrap` and `REALM_BOOTSTRAP` add to the list, keeping its order and dropping duplicates */
function addTo (list: string[], added: string[], source: Source): string[] {
  return checkList('p2p', 'bootstrap', [...new Set([...list, ...added])], source)
}

function invalid (source: Source, value: unknown, why: string): ConfigError {
  return new ConfigError(source.code, `${source.name} ${quote(value)}: ${why}`, { details: { [source.code === 'INVALID_FLAG' ? 'flag' : 'env']: source.name } })
}

function nonEmpty (value: string | undefined): string | undefined {
  const trimmed = value?.trim()
  return trimmed === undefined || trimmed === '' ? undefined : trimmed
}

/** `a, b,c` → ['a', 'b', 'c']; unset or empty → undefined (not given) */
function commaList (value: string | undefined): string[] | undefined {
  const entries = (value ?? '').split(',').map(s => s.trim()).filter(s => s !== '')
  return entries.length === 0 ? undefined : entries
}

/** `1`/`true`/`yes`/`on` → true, `0`/`false`/`no`/`off` → false, unset or empty → undefined */
function envFlag (env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const value = nonEmpty(env[name])
  if (value === undefined) return undefined
  if (TRUE_RE.test(value)) return true
  if (FALSE_RE.test(value)) return false
  throw invalid({ code: 'INVALID_ENV', name }, value, 'expected 1 or 0')
}

/**
 * The data dir: `--data DIR` > `REALM_DATA` > `~/.rentahal`, as an absolute path.
 * `flag` default: not given; `env` default: none.
 */
export function resolveDataDir (init: { flag?: string, env?: NodeJS.ProcessEnv } = {}): string {
  const dir = nonEmpty(init.flag) ?? nonEmpty(init.env?.REALM_DATA)
  return dir === undefined ? path.join(homedir(), DATA_DIR_NAME) : path.resolve(dir)
}
