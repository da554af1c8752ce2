import { CONFIG_FILE_NAME } from './constants.js'
import { CONFIG_SPEC, type RealmConfig, type SettingSpec } from './spec.js'

const HEADER = [
  `# RentAHal realm node configuration (${CONFIG_FILE_NAME} in the node's data dir).`,
  '# Written on first start. When this file is missing, partial or does not parse, the node',
  '# rewrites it from the defaults, keeping every valid value it can read, and keeps the old',
  `# file as ${CONFIG_FILE_NAME}.broken.`,
  '# Precedence: command-line flag > environment variable (REALM_*) > this file > default.'
]

const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
const BARE_KEY_RE = /^[A-Za-z0-9_-]+$/

/**
 * The config as TOML: a header, then each `[section]` with a `# comment` above every setting.
 * Lists are written on one line, so a damaged file can still be recovered line by line.
 */
export function renderConfig (config: RealmConfig): string {
  const lines = [...HEADER]
  const values = config as unknown as Record<string, Record<string, unknown> | undefined>
  for (const [section, settings] of Object.entries(CONFIG_SPEC)) {
    lines.push('', `[${tomlKey(section)}]`)
    for (const [key, spec] of Object.entries(settings as Record<string, SettingSpec>)) {
      const value = values[section]?.[key] ?? spec.default
      lines.push(`# ${spec.comment} (default: ${tomlValue(spec.default)})`)
      lines.push(`${tomlKey(key)} = ${tomlValue(value)}`)
    }
  }
  return lines.join('\n') + '\n'
}

function tomlKey (key: string): string {
  return BARE_KEY_RE.test(key) ? key : tomlString(key)
}

/** One TOML value on one line (strings, numbers, booleans, arrays and inline tables) */
export function tomlValue (value: unknown): string {
  if (typeof value === 'string') return tomlString(value)
  if (typeof value === 'boolean') return String(value)
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'nan'
    if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf'
    return String(value)
  }
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`
  if (value !== null && typeof value === 'object') {
    const fields = Object.entries(value).map(([k, v]) => `${tomlKey(k)} = ${tomlValue(v)}`)
    return fields.length === 0 ? '{}' : `{ ${fields.join(', ')} }`
  }
  throw new TypeError(`cannot write ${String(value)} as TOML`)
}

/** A TOML basic string: JSON's escapes are TOML's, except DEL and lone surrogates */
function tomlString (s: string): string {
  return JSON.stringify(s.replace(LONE_SURROGATE_RE, '\ufffd')).replace(/\u007f/g, '\\u007f')
}
