/**
 * Tasks: what a client asks for (kind + model + input), and the events a task produces as it
 * runs. The same shapes travel on `/rentahal/task/1.0.0` between nodes, through the queue, out
 * of worker adapters and to clients on `/realm/events`. Decode = validate.
 */
import { z } from 'zod'
import { ModelNameSchema, TaskKindSchema, type TaskKind } from './kinds.js'

/** Longest prompt or message text accepted, in characters */
export const MAX_TEXT_CHARS = 1_000_000
/** Most chat messages in one task */
export const MAX_MESSAGES = 1_000
/** Most images in one task */
export const MAX_IMAGES = 8
/** Largest base64 payload (one image or audio clip) in characters: ~12 MiB of bytes */
export const MAX_BASE64_CHARS = 16 * 1024 * 1024
/** Most strings in one embed request */
export const MAX_EMBED_INPUTS = 512
/** Largest image side a task may ask for */
export const MAX_IMAGE_SIDE = 2048

const Text = z.string().max(MAX_TEXT_CHARS)
const Base64 = z.string().max(MAX_BASE64_CHARS).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64')

export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: Text,
  /** base64 images (vision models) */
  images: z.array(Base64).max(MAX_IMAGES).optional()
}).strict()
export type ChatMessage = z.infer<typeof ChatMessageSchema>

export const ChatInputSchema = z.object({
  messages: z.array(ChatMessageSchema).min(1).max(MAX_MESSAGES)
}).strict()

export const GenerateInputSchema = z.object({
  prompt: Text,
  system: Text.optional(),
  images: z.array(Base64).max(MAX_IMAGES).optional()
}).strict()

export const ImagineInputSchema = z.object({
  prompt: z.string().min(1).max(10_000),
  negativePrompt: z.string().max(10_000).optional(),
  width: z.number().int().min(64).max(MAX_IMAGE_SIDE).optional(),
  height: z.number().int().min(64).max(MAX_IMAGE_SIDE).optional(),
  steps: z.number().int().min(1).max(150).optional(),
  cfgScale: z.number().min(0).max(30).optional(),
  /** -1 or absent: random */
  seed: z.number().int().min(-1).max(2 ** 32).optional(),
  sampler: z.string().max(64).optional(),
  /** images to make (A1111 batch_size) */
  count: z.number().int().min(1).max(4).optional()
}).strict()

export const TranscribeInputSchema = z.object({
  /** base64 audio */
  audio: Base64.min(1),
  /** its media type, e.g. audio/wav, audio/webm */
  mime: z.string().max(100).optional(),
  language: z.string().max(16).optional(),
  /** restrict recognition to these phrases (command grammar) where the engine can */
  phrases: z.array(z.string().max(200)).max(200).optional()
}).strict()

export const SpeakInputSchema = z.object({
  text: z.string().min(1).max(20_000),
  voice: z.string().max(64).optional(),
  format: z.enum(['wav', 'mp3']).optional(),
  speed: z.number().min(0.25).max(4).optional()
}).strict()

export const EmbedInputSchema = z.object({
  input: z.union([z.string().max(MAX_TEXT_CHARS), z.array(z.string().max(MAX_TEXT_CHARS)).min(1).max(MAX_EMBED_INPUTS)])
}).strict()

export const TASK_INPUT_SCHEMAS = {
  chat: ChatInputSchema,
  generate: GenerateInputSchema,
  imagine: ImagineInputSchema,
  transcribe: TranscribeInputSchema,
  speak: SpeakInputSchema,
  embed: EmbedInputSchema
} as const satisfies Record<TaskKind, z.ZodType>

export type ChatInput = z.infer<typeof ChatInputSchema>
export type GenerateInput = z.infer<typeof GenerateInputSchema>
export type ImagineInput = z.infer<typeof ImagineInputSchema>
export type TranscribeInput = z.infer<typeof TranscribeInputSchema>
export type SpeakInput = z.infer<typeof SpeakInputSchema>
export type EmbedInput = z.infer<typeof EmbedInputSchema>

/**
 * Sampling options passed through to the backend: the common Ollama/OpenAI knobs only, each
 * bounded, so a task cannot smuggle arbitrary backend settings.
 */
export const TaskOptionsSchema = z.object({
  temperature: z.number().min(0).max(5).optional(),
  topP: z.number().min(0).max(1).optional(),
  topK: z.number().int().min(0).max(1000).optional(),
  maxTokens: z.number().int().min(1).max(1_000_000).optional(),
  seed: z.number().int().min(-1).max(2 ** 32).optional(),
  stop: z.array(z.string().max(100)).max(8).optional(),
  /** Ollama `format: "json"` / OpenAI `response_format: json_object` */
  json: z.boolean().optional(),
  /** highest price per unit the requester accepts (economy) */
  maxPrice: z.number().nonnegative().max(1e12).optional()
}).strict()
export type TaskOptions = z.infer<typeof TaskOptionsSchema>

/** A task as it travels: id, kind, model, the kind's input, options */
export const TaskSpecSchema = z.object({
  id: z.string().min(8).max(64).regex(/^[A-Za-z0-9_-]+$/),
  kind: TaskKindSchema,
  model: ModelNameSchema,
  input: z.unknown(),
  options: TaskOptionsSchema.optional()
}).strict().superRefine((task, ctx) => {
  const parsed = TASK_INPUT_SCHEMAS[task.kind].safeParse(task.input)
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: ['input', ...issue.path.map(p => typeof p === 'symbol' ? String(p) : p)], message: issue.message })
  }
})

export type TaskSpec =
  | { id: string, kind: 'chat', model: string, input: ChatInput, options?: TaskOptions }
  | { id: string, kind: 'generate', model: string, input: GenerateInput, options?: TaskOptions }
  | { id: string, kind: 'imagine', model: string, input: ImagineInput, options?: TaskOptions }
  | { id: string, kind: 'transcribe', model: string, input: TranscribeInput, options?: TaskOptions }
  | { id: string, kind: 'speak', model: string, input: SpeakInput, options?: TaskOptions }
  | { id: string, kind: 'embed', model: string, input: EmbedInput, options?: TaskOptions }

export const UsageSchema = z.object({
  promptTokens: z.number().int().nonnegative().max(1e12).optional(),
  completionTokens: z.number().int().nonnegative().max(1e12).optional(),
  /** billable units of the task (tokens, images, seconds of audio) */
  units: z.number().nonnegative().max(1e12).optional()
}).strict()
export type Usage = z.infer<typeof UsageSchema>

export const MediaSchema = z.object({
  data: Base64,
  mime: z.string().max(100)
}).strict()
export type Media = z.infer<typeof MediaSchema>

/** What a finished task produced (the parts that apply to its kind) */
export const TaskOutputSchema = z.object({
  text: z.string().max(MAX_TEXT_CHARS * 4).optional(),
  embeddings: z.array(z.array(z.number()).max(65_536)).max(MAX_EMBED_INPUTS).optional(),
  images: z.array(MediaSchema).max(MAX_IMAGES).optional(),
  audio: MediaSchema.optional(),
  /** why generation stopped: stop, length, … */
  doneReason: z.string().max(32).optional(),
  usage: UsageSchema.optional(),
  /** image generation: the seed used, where known */
  seed: z.number().int().optional()
}).strict()
export type TaskOutput = z.infer<typeof TaskOutputSchema>

/** What a worker adapter emits while a task runs, before its output */
export type WorkerEvent =
  | { type: 'token', text: string }
  | { type: 'progress', fraction: number, step?: number, steps?: number, message?: string }
  | { type: 'image', image: Media }
  | { type: 'audio', audio: Media }

/** Why a task ended without output; the codes clients see */
export const TASK_ERROR_CODES = [
  'INVALID_TASK', 'MODEL_NOT_FOUND', 'NO_WORKER', 'QUEUE_FULL', 'CANCELLED', 'LEASE_LOST',
  'BACKEND_ERROR', 'BACKEND_UNREACHABLE', 'TIMEOUT', 'SPEND_CAP', 'FORBIDDEN', 'INTERNAL',
  // the node restarted while the task ran: set on its record by the next start
  'INTERRUPTED'
] as const
export type TaskErrorCode = typeof TASK_ERROR_CODES[number]
