/**
 * What the mutator knows of a message: the JSON Schema of its zod schema (`z.toJSONSchema`), with
 * the limits (maxLength, maximum, maxItems, enum, required, additionalProperties) that say where
 * the interesting values are. Refinements zod cannot express in JSON Schema are not seen here; the
 * mutator still tries their neighbourhood with its generic mutations.
 */
import { z } from 'zod'

export type JsonSchema = {
  type?: string | string[]
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: boolean | JsonSchema
  items?: JsonSchema
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  allOf?: JsonSchema[]
  enum?: unknown[]
  const?: unknown
  minLength?: number
  maxLength?: number
  pattern?: string
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  minItems?: number
  maxItems?: number
  [key: string]: unknown
}

/** The JSON Schema of a zod schema, as the mutator reads it (input side, refinements dropped) */
export function jsonSchemaOf (schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input', reused: 'inline' }) as JsonSchema
}

/** The JSON type of a value, as JSON Schema names it */
export function jsonType (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

function typesOf (s: JsonSchema): string[] {
  if (s.type === undefined) {
    if (s.const !== undefined) return [jsonType(s.const)]
    if (s.enum !== undefined) return [...new Set(s.enum.map(jsonType))]
    return []
  }
  return Array.isArray(s.type) ? s.type : [s.type]
}

function matchesType (s: JsonSchema, v: unknown): boolean {
  const types = typesOf(s)
  if (types.length === 0) return true
  const t = jsonType(v)
  return types.includes(t) || (t === 'integer' && types.includes('number'))
}

/** The branch of a union that fits `value` best: its discriminator `const`, else its type */
export function branchFor (s: JsonSchema, value: unknown): JsonSchema {
  const branches = s.oneOf ?? s.anyOf
  if (branches === undefined) return s
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const b of branches) {
      const r = branchFor(b, value)
      const props = r.properties ?? {}
      const consts = Object.entries(props).filter(([, p]) => p.const !== undefined)
      if (consts.length > 0 && consts.every(([k, p]) => (value as Record<string, unknown>)[k] === p.const)) return r
    }
  }
  for (const b of branches) {
    const r = branchFor(b, value)
    if (matchesType(r, value) && jsonType(value) !== 'null') return r
  }
  for (const b of branches) {
    const r = branchFor(b, value)
    if (matchesType(r, value)) return r
  }
  return branchFor(branches[0], value)
}

/** The schema of `parent[key]` (a property or an array item) */
export function childSchema (parent: JsonSchema, parentValue: unknown, key: string | number): JsonSchema {
  const s = branchFor(parent, parentValue)
  if (typeof key === 'number') return s.items ?? {}
  const prop = s.properties?.[key]
  if (prop !== undefined) return prop
  return typeof s.additionalProperties === 'object' ? s.additionalProperties : {}
}

/** Every place in a JSON value: the path, the value there, its schema */
export interface Site {
  path: Array<string | number>
  value: unknown
  schema: JsonSchema
}

/**
 * Every node of `value` with its schema; `overrides` give the schema of places the zod schema
 * leaves open (`input: z.unknown()` is the kind's input schema)
 */
export function sitesOf (value: unknown, schema: JsonSchema, overrides: SchemaOverride[] = []): Site[] {
  const out: Site[] = []
  const walk = (v: unknown, s: JsonSchema, path: Array<string | number>): void => {
    const over = overrides.find(o => samePath(o.path, path))
    const here = branchFor(over?.schema ?? s, v)
    out.push({ path, value: v, schema: here })
    if (Array.isArray(v)) {
      v.forEach((item, i) => { walk(item, childSchema(here, v, i), [...path, i]) })
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) walk(item, childSchema(here, v, k), [...path, k])
    }
  }
  walk(value, schema, [])
  return out
}

export interface SchemaOverride {
  path: Array<string | number>
  schema: JsonSchema
}

function samePath (a: ReadonlyArray<string | number>, b: ReadonlyArray<string | number>): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/** The limits of a number schema, as closed bounds where they exist */
export function numberBounds (s: JsonSchema): { min?: number, max?: number, integer: boolean } {
  const types = typesOf(s)
  return {
    min: s.minimum ?? s.exclusiveMinimum,
    max: s.maximum ?? s.exclusiveMaximum,
    integer: types.includes('integer') && !types.includes('number')
  }
}
