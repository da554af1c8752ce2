/**
 * Turn whatever is in config.toml into a valid config, keeping every valid value it can read.
 * Pure: text in, config and repair messages out. The file I/O is in `load.ts`.
 */
import { parse, TomlError } from 'smol-toml'
import {
  CONFIG_FILE_NAME, MAX_ARRAY_CONTINUATION_LINES, MAX_CONFIG_BYTES, MAX_LISTED_MISSING_KEYS,
  MAX_QUOTED_VALUE_CHARS, MAX_REPAIR_MESSAGES
} from './constants.js'
import { CONFIG_SPEC, defaultConfig, settingEntries, settingSpec, type RealmConfig, type SettingSpec } from './spec.js'
import { tomlValue } from './toml.js'

export interface RepairResult {
  /** the config: every valid value read, defaults for the rest */
  config: RealmConfig
  /** one line per repair, for stderr and the trace log; empty when the text was a complete, valid config */
  repairs: string[]
}

export interface RepairInit {
  /**
   * The text is the first `MAX_CONFIG_BYTES` of a bigger file: it is read line by line and its
   * last (cut) line is ignored. Default: false
   */
  truncated?: boolean
}

// `asNeeded`: a huge integer becomes a bigint that fails its schema with a message naming it,
// instead of failing the whole document
const PARSE_OPTIONS = { integersAsBigInt: 'asNeeded', unsafeKeyBehaviour: 'drop' } as const

/** A line that starts a section: `[name]` or `[[name]]` */
const HEADER_START_RE = /^\[/
/** The name of a header too damaged for the TOML parser, e.g. `[p2p` or `[p2p] junk` */
const LOOSE_HEADER_RE = /^\[\s*([A-Za-z0-9_-]+)\s*(?:\]|$)/
/** `key = [` without its closing `]` on the same line */
const ARRAY_START_RE = /^[^=[\]]+=\s*\[/
/** Looks like a section header: ends a multi-line array search */
const HEADER_LIKE_RE = /^\[\[?\s*["'A-Za-z0-9_.-]+\s*\]\]?\s*(?:#.*)?$/

/** Settings of a section that could not be read are dropped */
const SKIP = Symbol('skip')
type Section = string | null | typeof SKIP

/** Parse and repair config text. Never throws for bad content */
export function repairConfigText (text: string, init: RepairInit = {}): RepairResult {
  const log = new RepairLog()
  const found = new Found(log)

  if (init.truncated === true) {
    log.add(`${CONFIG_FILE_NAME} is larger than ${MAX_CONFIG_BYTES} bytes; read its first ${MAX_CONFIG_BYTES} bytes line by line`)
    const end = text.lastIndexOf('\n')
    recoverLines(end < 0 ? '' : text.slice(0, end), found, log)
  } else {
    let table: Record<string, unknown> | undefined
    try {
      table = parse(text, PARSE_OPTIONS)
    } catch (err) {
      log.add(`${CONFIG_FILE_NAME} did not parse as TOML (${firstErrorLine(err)}); recovered what it could line by line`)
      recoverLines(text, found, log)
    }
    if (table !== undefined) found.table(table, null)
  }
  return { config: found.finish(), repairs: log.messages() }
}

/** Each line on its own: `[section]` headers are tracked, `key = value` lines parsed alone */
function recoverLines (text: string, found: Found, log: RepairLog): void {
  const lines = text.split(/\r\n|\n|\r/)
  let section: Section = null
  let unreadable = 0
  let firstUnreadable = 0
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim()
    if (line === '' || line.startsWith('#')) continue

    if (HEADER_START_RE.test(line)) {
      section = readHeader(line, i + 1, log)
      if (typeof section === 'string') found.section(section)
      continue
    }

    let table = tryParse(line)
    if (table === undefined && ARRAY_START_RE.test(line)) {
      // a list written over several lines: join the following lines until it parses
      let joined = line
      for (let j = i + 1; j < lines.length && j <= i + MAX_ARRAY_CONTINUATION_LINES; j++) {
        if (HEADER_LIKE_RE.test(lines[j].trim())) break
        joined += '\n' + lines[j]
        table = tryParse(joined)
        if (table !== undefined) {
          i = j
          break
        }
      }
    }
    if (table === undefined) {
      if (unreadable++ === 0) firstUnreadable = i + 1
      continue
    }
    if (section !== SKIP) found.table(table, section)
  }
  if (unreadable > 0) {
    log.add(`dropped ${unreadable} unreadable line${unreadable === 1 ? '' : 's'} (the first is line ${firstUnreadable})`)
  }
}

function readHeader (line: string, lineNumber: number, log: RepairLog): Section {
  if (line.startsWith('[[')) {
    log.add(`line ${lineNumber}: an array of tables (${quote(line)}) is not a setting; dropped with its settings`)
    return SKIP
  }
  const table = tryParse(line)
  if (table !== undefined) {
    // `[a.b]` parses as { a: { b: {} } }: its name is the dotted path
    const path: string[] = []
    let node: unknown = table
    while (isTable(node) && Object.keys(node).length === 1) {
      const [key] = Object.keys(node)
      path.push(key)
      node = node[key]
    }
    if (path.length > 0) return path.join('.')
  }
  const loose = LOOSE_HEADER_RE.exec(line)
  if (loose !== null) return loose[1]
  log.add(`line ${lineNumber}: unreadable section header ${quote(line)}; its settings are dropped`)
  return SKIP
}

function tryParse (toml: string): Record<string, unknown> | undefined {
  try {
    return parse(toml, PARSE_OPTIONS)
  } catch {
    return undefined
  }
}

interface KeyState {
  /** last valid value seen */
  value?: unknown
  valid: boolean
  /** invalid values seen, as "`key = value` is invalid (why)" */
  invalid: string[]
  /** kept with a change (entries dropped from a list, …) */
  notes: string[]
}

/** What was read, setting by setting; turns into the config and its repair messages */
class Found {
  private readonly keys = new Map<string, KeyState>()
  private readonly unknownSections = new Map<string, number>()
  private readonly log: RepairLog
  private entries = 0

  constructor (log: RepairLog) {
    this.log = log
  }

  section (name: string): void {
    if (!Object.hasOwn(CONFIG_SPEC, name) && !this.unknownSections.has(name)) this.unknownSections.set(name, 0)
  }

  /** A parsed table: the whole document (`section` null) or one line under `[section]` */
  table (table: Record<string, unknown>, section: string | null): void {
    for (const [key, value] of Object.entries(table)) {
      if (section !== null) {
        this.entry(section, key, value)
      } else if (isTable(value)) {
        this.section(key)
        for (const [k, v] of Object.entries(value)) this.entry(key, k, v)
      } else if (Object.hasOwn(CONFIG_SPEC, key)) {
        this.log.add(`${key} = ${quote(value)} dropped: ${key} is a section, write its settings under [${key}]`)
      } else {
        this.log.add(`unknown setting ${shortName(key)} dropped (settings belong in a [section])`)
      }
    }
  }

  private entry (section: string, key: string, value: unknown): void {
    this.entries++
    if (!Object.hasOwn(CONFIG_SPEC, section)) {
      this.unknownSections.set(section, (this.unknownSections.get(section) ?? 0) + 1)
      return
    }
    const spec = settingSpec(section, key)
    const name = `${section}.${key}`
    if (spec === undefined) {
      this.log.add(`unknown setting ${shortName(name)} dropped`)
      return
    }
    let state = this.keys.get(name)
    if (state === undefined) {
      state = { valid: false, invalid: [], notes: [] }
      this.keys.set(name, state)
    }
    const checked = checkValue(spec, value)
    if (checked.ok) {
      state.value = checked.value
      state.valid = true
      if (checked.note !== undefined) state.notes.push(`${name}: ${checked.note}`)
    } else {
      state.invalid.push(`${name} = ${quote(value)} is invalid (${checked.reason})`)
    }
  }

  finish (): RealmConfig {
    for (const [name, count] of this.unknownSections) {
      this.log.add(`unknown section [${shortName(name)}] dropped${count > 0 ? ` with its ${count} setting${count === 1 ? '' : 's'}` : ''}`)
    }
    const config = defaultConfig() as unknown as Record<string, Record<string, unknown>>
    const missing: string[] = []
    for (const [section, key, spec] of settingEntries()) {
      const name = `${section}.${key}`
      const state = this.keys.get(name)
      if (state === undefined) {
        missing.push(name)
        continue
      }
      for (const note of state.notes) this.log.add(note)
      if (state.valid) {
        config[section][key] = state.value
        for (const bad of state.invalid) this.log.add(`${bad}; kept the valid value from another line`)
      } else {
        state.invalid.forEach((bad, i) => {
          this.log.add(i === state.invalid.length - 1 ? `${bad}; using the default ${quote(spec.default)}` : bad)
        })
      }
    }
    if (missing.length === settingEntries().length) {
      this.log.add(this.entries === 0 && this.unknownSections.size === 0
        ? 'no settings found; wrote every setting with its default'
        : 'no valid settings found; wrote every setting with its default')
    } else if (missing.length > 0) {
      const listed = missing.slice(0, MAX_LISTED_MISSING_KEYS).join(', ')
      const more = missing.length > MAX_LISTED_MISSING_KEYS ? ` and ${missing.length - MAX_LISTED_MISSING_KEYS} more` : ''
      this.log.add(`added missing settings with their defaults: ${listed}${more}`)
    }
    return config as unknown as RealmConfig
  }
}

type Checked = { ok: true, value: unknown, note?: string } | { ok: false, reason: string }

/** Check a value against its setting; a list keeps its valid entries when some are bad */
export function checkValue (spec: SettingSpec, value: unknown): Checked {
  const result = spec.schema.safeParse(value)
  if (result.success) return { ok: true, value: result.data }
  const reason = issueText(result.error)
  if (spec.item === undefined) return { ok: false, reason }

  if (!Array.isArray(value)) {
    // `bootstrap = "/ip4/…"`: one entry written without its brackets
    const single = spec.schema.safeParse([value])
    if (single.success) return { ok: true, value: single.data, note: 'a single value where a list was expected; kept as a list of one' }
    return { ok: false, reason }
  }
  const good: unknown[] = []
  const bad: string[] = []
  for (const entry of value) {
    const item = spec.item.safeParse(entry)
    if (item.success) {
      good.push(item.data)
    } else {
      bad.push(`${quote(entry)} (${issueText(item.error)})`)
    }
  }
  if (good.length === 0 || bad.length === 0) return { ok: false, reason }
  const kept = spec.schema.safeParse(good)
  if (!kept.success) return { ok: false, reason: issueText(kept.error) }
  return {
    ok: true,
    value: kept.data,
    note: `dropped ${bad.length} invalid entr${bad.length === 1 ? 'y' : 'ies'}: ${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', …' : ''}; kept ${good.length}`
  }
}

/** The first problem zod found, with where in a list it is */
export function issueText (error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>, message: string }> }): string {
  const issue = error.issues[0]
  if (issue === undefined) return 'invalid'
  const where = issue.path.length > 0 ? `entry ${issue.path.map(String).join('.')}: ` : ''
  return where + issue.message.replace(/^Invalid input: /, '')
}

/** A value as it would be written, cut short for a one-line message */
export function quote (value: unknown): string {
  let text: string
  try {
    text = value instanceof Date ? String(value) : tomlValue(value)
  } catch {
    text = String(value)
  }
  return text.length > MAX_QUOTED_VALUE_CHARS ? `${text.slice(0, MAX_QUOTED_VALUE_CHARS)}…` : text
}

/** A key or section name from the file, cut like a quoted value: a 100 000-character key is not echoed whole to stderr and the trace log */
function shortName (name: string): string {
  return name.length > MAX_QUOTED_VALUE_CHARS ? `${name.slice(0, MAX_QUOTED_VALUE_CHARS)}…` : name
}

function firstErrorLine (err: unknown): string {
  if (err instanceof TomlError) {
    const first = err.message.split('\n', 1)[0].replace(/^Invalid TOML document:\s*/, '')
    return `line ${err.line}: ${first}`
  }
  return err instanceof Error ? err.message.split('\n', 1)[0] : String(err)
}

function isTable (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}

/** Repair messages, capped so a file of garbage cannot flood stderr */
class RepairLog {
  private readonly list: string[] = []
  private overflow = 0

  add (message: string): void {
    if (this.list.length < MAX_REPAIR_MESSAGES) {
      this.list.push(message)
    } else {
      this.overflow++
    }
  }

  messages (): string[] {
    return this.overflow > 0 ? [...this.list, `and ${this.overflow} more repairs`] : [...this.list]
  }
}
