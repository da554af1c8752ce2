/**
 * Request validation for the compatibility routes: zod schemas check types (unknown fields are
 * dropped, as both APIs ignore them); the first problem is worded as each API words it.
 */
import type { z } from 'zod'
import { OllamaHttpError, OpenAIHttpError, openaiInvalid } from './errors.js'

type Issue = z.core.$ZodIssue

/** Number parameters OpenAI types as decimals (its errors say "decimal", not "integer") */
const DECIMAL_PARAMS = new Set(['temperature', 'top_p', 'frequency_penalty', 'presence_penalty', 'speed'])

function numberKind (param: string, got: unknown): 'decimal' | 'integer' {
  return DECIMAL_PARAMS.has(param) || !Number.isInteger(got) ? 'decimal' : 'integer'
}
type Path = ReadonlyArray<PropertyKey>

function valueAt (value: unknown, path: Path): unknown {
  let v: any = value
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined
    v = v[key as any]
  }
  return v
}

/** JSON type of a value as Go's encoding/json names it in errors */
function goJsonType (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'object') return 'object'
  return typeof v
}

const GO_TYPES: Record<string, string> = { string: 'string', number: 'float64', int: 'int', boolean: 'bool', array: '[]interface {}', object: 'map[string]interface {}' }

/** `messages[0].content` */
export function paramOf (path: Path): string {
  let out = ''
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`
    else out += out === '' ? String(key) : `.${String(key)}`
  }
  return out
}

/** The first issue worded like Ollama (Go's encoding/json for type errors), as a 400 */
export function ollamaIssue (issue: Issue, input: unknown, goStruct: string): OllamaHttpError {
  const path = issue.path
  const field = path.filter(k => typeof k === 'string').join('.')
  if (issue.code === 'invalid_type') {
    const got = valueAt(input, path)
    if (path.length === 0) return new OllamaHttpError(400, `json: cannot unmarshal ${goJsonType(got)} into Go value of type api.${goStruct}`)
    return new OllamaHttpError(400, `json: cannot unmarshal ${goJsonType(got)} into Go struct field ${goStruct}.${field} of type ${GO_TYPES[issue.expected] ?? issue.expected}`)
  }
  if (issue.code === 'invalid_union') {
    return new OllamaHttpError(400, `json: cannot unmarshal ${goJsonType(valueAt(input, path))} into Go struct field ${goStruct}.${field}`)
  }
  return new OllamaHttpError(400, `invalid ${paramOf(path) || 'request'}: ${issue.message}`)
}

function describeExpected (expected: string): string {
  switch (expected) {
    case 'string': return 'a string'
    case 'number': return 'a decimal'
    case 'int': return 'an integer'
    case 'boolean': return 'a boolean'
    case 'array': return 'an array'
    case 'object': return 'an object'
    default: return expected
  }
}

function describeValue (v: unknown): string {
  if (v === null) return 'null'
  if (v === undefined) return 'nothing'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a decimal'
  if (typeof v === 'string') return 'a string'
  if (typeof v === 'boolean') return 'a boolean'
  return 'an object'
}

/** An issue of one option of a union, with its path made absolute */
function withPrefix (issue: Issue, prefix: Path): Issue {
  return { ...issue, path: [...prefix, ...issue.path] } as Issue
}

/**
 * A union none of whose options took the value: when one option is of the value's own type
 * (an object for an object) and failed inside it, that failure is the news ("voice.id: expected a
 * string"); otherwise every option's type is what was expected ("a string or an object")
 */
function unionIssue (issue: Extract<Issue, { code: 'invalid_union' }>, input: unknown): OpenAIHttpError {
  const param = paramOf(issue.path)
  const got = valueAt(input, issue.path)
  if (got === undefined) return openaiInvalid(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter')
  const options = (issue.errors ?? []) as Issue[][]
  const typeMismatch = (i: Issue): boolean => i.code === 'invalid_type' && i.path.length === 0
  const matched = options.find(o => o.length > 0 && !typeMismatch(o[0]))
  if (matched != null) return openaiIssue(withPrefix(matched[0], issue.path), input)
  const expected = [...new Set(options.flatMap(o => o.filter(typeMismatch).map(i => describeExpected((i as { expected: string }).expected))))]
  const list = expected.length <= 1 ? (expected[0] ?? 'another type') : `${expected.slice(0, -1).join(', ')} or ${expected[expected.length - 1]}`
  return openaiInvalid(`Invalid type for '${param}': expected ${list}, but got ${describeValue(got)} instead.`, param, 'invalid_type')
}

/** The first issue worded like OpenAI (message, param, code), as a 400 */
export function openaiIssue (issue: Issue, input: unknown): OpenAIHttpError {
  const param = paramOf(issue.path)
  const got = valueAt(input, issue.path)
  switch (issue.code) {
    case 'invalid_type':
      if (got === undefined) return openaiInvalid(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter')
      return openaiInvalid(`Invalid type for '${param}': expected ${describeExpected(issue.expected)}, but got ${describeValue(got)} instead.`, param, 'invalid_type')
    case 'invalid_union':
      return unionIssue(issue, input)
    case 'invalid_value':
      return openaiInvalid(`Invalid value: '${String(got)}'. Supported values are: ${issue.values.map(v => `'${String(v)}'`).join(', ')}.`, param, 'invalid_value')
    case 'too_big':
      if (issue.origin === 'string') {
        return openaiInvalid(`Invalid '${param}': string too long. Expected a string with maximum length ${String(issue.maximum)}, but got a string with length ${String((got as string)?.length)} instead.`, param, 'string_above_max_length')
      }
      if (issue.origin === 'array') {
        return openaiInvalid(`Invalid '${param}': array too long. Expected an array with maximum length ${String(issue.maximum)}, but got an array with length ${String((got as unknown[])?.length)} instead.`, param, 'array_above_max_length')
      }
      return openaiInvalid(`Invalid '${param}': ${numberKind(param, got)} above maximum value. Expected a value <= ${String(issue.maximum)}, but got ${String(got)} instead.`, param, `${numberKind(param, got)}_above_max_value`)
    case 'too_small':
      if (issue.origin === 'array') {
        if (Array.isArray(got) && got.length === 0) {
          return openaiInvalid(`Invalid '${param}': empty array. Expected an array with minimum length ${String(issue.minimum)}, but got an empty array instead.`, param, 'empty_array')
        }
        return openaiInvalid(`Invalid '${param}': array too short. Expected an array with minimum length ${String(issue.minimum)}.`, param, 'array_below_min_length')
      }
      if (issue.origin === 'string') {
        return openaiInvalid(`Invalid '${param}': string too short. Expected a string with minimum length ${String(issue.minimum)}, but got a string with length ${String((got as string)?.length)} instead.`, param, 'string_below_min_length')
      }
      return openaiInvalid(`Invalid '${param}': ${numberKind(param, got)} below minimum value. Expected a value >= ${String(issue.minimum)}, but got ${String(got)} instead.`, param, `${numberKind(param, got)}_below_min_value`)
    default:
      return openaiInvalid(`Invalid '${param}': ${issue.message}`, param === '' ? null : param, 'invalid_value')
  }
}

/** Parses `input`, or throws the first issue in Ollama's words */
export function parseOllama<T extends z.ZodType> (schema: T, input: unknown, goStruct: string): z.output<T> {
  const parsed = schema.safeParse(input)
  if (!parsed.success) throw ollamaIssue(parsed.error.issues[0], input, goStruct)
  return parsed.data
}

/** Parses `input`, or throws the first issue in OpenAI's words */
export function parseOpenAI<T extends z.ZodType> (schema: T, input: unknown): z.output<T> {
  const parsed = schema.safeParse(input)
  if (!parsed.success) throw openaiIssue(parsed.error.issues[0], input)
  return parsed.data
}
