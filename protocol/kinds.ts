import { z } from 'zod'

/** What a task asks for. See DESIGN.md "Task kinds and backends" */
export const TASK_KINDS = ['chat', 'generate', 'imagine', 'transcribe', 'speak', 'embed'] as const
export type TaskKind = typeof TASK_KINDS[number]
export const TaskKindSchema = z.enum(TASK_KINDS)

/** What `--worker BACKEND=TARGET` may attach */
export const BACKENDS = ['ollama', 'openai', 'sd', 'claude', 'hf', 'agent', 'stt', 'tts'] as const
export type Backend = typeof BACKENDS[number]
export const BackendSchema = z.enum(BACKENDS)

/** Longest model name accepted anywhere (Ollama names are far shorter) */
export const MAX_MODEL_NAME_LENGTH = 200

/** Printable text without control characters or surrounding spaces (A1111 checkpoints have spaces) */
export const ModelNameSchema = z.string().min(1).max(MAX_MODEL_NAME_LENGTH).regex(/^[^\s\p{Cc}](?:[^\p{Cc}]*[^\s\p{Cc}])?$/u, 'printable text without control characters or surrounding spaces')

/**
 * A bare model name means `:latest`, as in Ollama. Names with a tag, a digest, or a path-like
 * form (`org/model`) keep theirs; names some backends give with a `.safetensors`-like suffix are
 * left alone too.
 */
export function normalizeModelName (name: string): string {
  const lastSegment = name.slice(name.lastIndexOf('/') + 1)
  if (lastSegment.includes(':') || lastSegment.includes('@')) return name
  return `${name}:latest`
}

/** One model a worker serves, as advertised in the presence beacon */
export const ModelInfoSchema = z.object({
  name: ModelNameSchema,
  kinds: z.array(TaskKindSchema).min(1).max(TASK_KINDS.length),
  /** context window in tokens, where known (used to trim chat history) */
  context: z.number().int().positive().max(10_000_000).optional(),
  /** price per unit in token credits (economy issue); 0 = free */
  price: z.number().nonnegative().max(1e12).optional(),
  /** size on disk in bytes where the backend reports it */
  size: z.number().int().nonnegative().max(1e15).optional(),
  /** takes images in chat (llava, llama3.2-vision, …) */
  vision: z.boolean().optional(),
  /** loaded in memory right now (Ollama /api/ps) */
  loaded: z.boolean().optional(),
  /** model family / parameter size / quantization, for /api/tags details */
  family: z.string().max(100).optional(),
  parameterSize: z.string().max(50).optional(),
  quantization: z.string().max(50).optional()
}).strict()
export type ModelInfo = z.infer<typeof ModelInfoSchema>
