/**
 * `/rentahal/task/1.0.0`: length-prefixed JSON frames. The requester sends one `request`, then
 * heartbeats (and maybe a `cancel`); the worker's node answers `accepted`, then `queued` as the
 * position changes, `started`, `progress` / `token` / `image` / `audio`, and ends with `done` or
 * `error`. Both sides heartbeat every second; a side silent for 5 s has lost the job's lease.
 */
import { z } from 'zod'
import { TaskSpecSchema, TaskOutputSchema, MediaSchema, TASK_ERROR_CODES, MAX_TEXT_CHARS, type TaskSpec, type TaskOutput, type Media } from './task.js'
import { InvalidMessageError, TooLargeError } from './errors.js'
import { utf8Decode, utf8Encode } from './bytes.js'

/** One frame at most: room for an image or an audio clip in base64, plus the rest */
export const MAX_TASK_FRAME_BYTES = 24 * 1024 * 1024
/** Heartbeat period, both directions */
export const TASK_HEARTBEAT_MS = 1_000
/** A side silent this long has lost the job */
export const TASK_LEASE_MS = 5_000
/** Most frames a requester may send per second on one stream (heartbeats are 1/s) */
export const MAX_REQUESTER_FRAMES_PER_S = 20

const Timings = z.object({
  queueMs: z.number().nonnegative().max(1e9).optional(),
  firstTokenMs: z.number().nonnegative().max(1e9).optional(),
  runMs: z.number().nonnegative().max(1e9).optional()
}).strict()

/** Frames a requester sends */
export const RequesterFrameSchema = z.discriminatedUnion('t', [
  z.object({
    t: z.literal('request'),
    task: TaskSpecSchema,
    /** run on this worker of the node (the router chose it) */
    workerId: z.string().min(1).max(64).optional(),
    /** the end user behind the requesting node, opaque, for fairness across its users */
    user: z.string().max(64).optional()
  }).strict(),
  z.object({ t: z.literal('heartbeat') }).strict(),
  z.object({ t: z.literal('cancel'), reason: z.string().max(200).optional() }).strict()
])
export type RequesterFrame =
  | { t: 'request', task: TaskSpec, workerId?: string, user?: string }
  | { t: 'heartbeat' }
  | { t: 'cancel', reason?: string }

/** Frames a worker's node sends */
export const WorkerFrameSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('accepted'), position: z.number().int().nonnegative().max(1e7), etaMs: z.number().nonnegative().max(1e10) }).strict(),
  z.object({ t: z.literal('queued'), position: z.number().int().nonnegative().max(1e7), etaMs: z.number().nonnegative().max(1e10) }).strict(),
  z.object({ t: z.literal('started'), workerId: z.string().max(64) }).strict(),
  z.object({
    t: z.literal('progress'),
    fraction: z.number().min(0).max(1),
    step: z.number().int().nonnegative().max(1e6).optional(),
    steps: z.number().int().nonnegative().max(1e6).optional(),
    message: z.string().max(200).optional()
  }).strict(),
  z.object({ t: z.literal('token'), text: z.string().max(MAX_TEXT_CHARS) }).strict(),
  z.object({ t: z.literal('image'), image: MediaSchema }).strict(),
  z.object({ t: z.literal('audio'), audio: MediaSchema }).strict(),
  z.object({ t: z.literal('done'), output: TaskOutputSchema, timings: Timings }).strict(),
  z.object({ t: z.literal('error'), code: z.enum(TASK_ERROR_CODES), message: z.string().max(1000) }).strict(),
  z.object({ t: z.literal('heartbeat') }).strict()
])
export type WorkerFrame =
  | { t: 'accepted', position: number, etaMs: number }
  | { t: 'queued', position: number, etaMs: number }
  | { t: 'started', workerId: string }
  | { t: 'progress', fraction: number, step?: number, steps?: number, message?: string }
  | { t: 'token', text: string }
  | { t: 'image', image: Media }
  | { t: 'audio', audio: Media }
  | { t: 'done', output: TaskOutput, timings: { queueMs?: number, firstTokenMs?: number, runMs?: number } }
  | { t: 'error', code: typeof TASK_ERROR_CODES[number], message: string }
  | { t: 'heartbeat' }

export function encodeFrame (frame: RequesterFrame | WorkerFrame): Uint8Array {
  const bytes = utf8Encode(JSON.stringify(frame))
  if (bytes.byteLength > MAX_TASK_FRAME_BYTES) throw new TooLargeError(`frame of ${bytes.byteLength} bytes exceeds ${MAX_TASK_FRAME_BYTES}`, 'FRAME_TOO_LARGE')
  return bytes
}

function decodeWith<T> (schema: z.ZodType, bytes: Uint8Array): T {
  if (bytes.byteLength > MAX_TASK_FRAME_BYTES) throw new TooLargeError(`frame of ${bytes.byteLength} bytes exceeds ${MAX_TASK_FRAME_BYTES}`, 'FRAME_TOO_LARGE')
  let json: unknown
  try {
    json = JSON.parse(utf8Decode(bytes))
  } catch {
    throw new InvalidMessageError('frame is not UTF-8 JSON', 'FRAME_MALFORMED')
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidMessageError(`frame field ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`, 'FRAME_INVALID')
  }
  return parsed.data as T
}

export function decodeRequesterFrame (bytes: Uint8Array): RequesterFrame {
  return decodeWith<RequesterFrame>(RequesterFrameSchema, bytes)
}

export function decodeWorkerFrame (bytes: Uint8Array): WorkerFrame {
  return decodeWith<WorkerFrame>(WorkerFrameSchema, bytes)
}
