/**
 * The presence beacon: what a node can do and how healthy it is, gossiped on
 * `/rentahal/1/presence` every interval. The beacon is signed inside the message with the node
 * key (over the exact bytes of its JSON body), so it can be stored and relayed and still be
 * checked against the peer id it names.
 */
import { z } from 'zod'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { BackendSchema, ModelInfoSchema, TaskKindSchema } from './kinds.js'
import { GossipValidationError } from './verdict.js'
import { base64ToBytes, bytesToBase64, utf8Decode, utf8Encode } from './bytes.js'

/** Largest presence message accepted or sent, in bytes */
export const MAX_BEACON_BYTES = 64 * 1024
/** Most workers one beacon may list */
export const MAX_BEACON_WORKERS = 32
/** Most models one worker may list */
export const MAX_WORKER_MODELS = 256
/** A beacon older than this (or this far in the future) is stale and ignored */
export const BEACON_MAX_AGE_MS = 30_000
/** Domain separation for beacon signatures: a signature made for anything else never verifies */
const SIGNATURE_DOMAIN = 'rentahal/presence/1\n'

const PeerIdStringSchema = z.string().min(1).max(128).regex(/^[1-9A-HJ-NP-Za-km-z]+$/, 'base58 peer id')
const IsoTimeSchema = z.string().max(40).refine(s => !Number.isNaN(Date.parse(s)), 'ISO-8601 time')
const Count = z.number().int().nonnegative().max(1_000_000_000)

/** Health of one worker (one backend) */
export const WorkerHealthSchema = z.object({
  state: z.enum(['starting', 'ok', 'benched']),
  /** tasks waiting for this worker */
  queueDepth: Count,
  /** tasks running on it now */
  inFlight: Count,
  /** tasks it runs at once */
  concurrency: z.number().int().positive().max(1024),
  /** EWMA of probe / service latency in ms */
  latencyMs: z.number().nonnegative().max(1e9).optional(),
  /** share of recent tasks that succeeded, 0..1 */
  successRate: z.number().min(0).max(1).optional(),
  vramUsed: z.number().nonnegative().max(1e15).optional(),
  vramTotal: z.number().nonnegative().max(1e15).optional()
}).strict()
export type WorkerHealth = z.infer<typeof WorkerHealthSchema>

/** One worker as advertised: backend, what it does, its models, its health */
export const WorkerAdSchema = z.object({
  id: z.string().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/),
  backend: BackendSchema,
  kinds: z.array(TaskKindSchema).max(8),
  models: z.array(ModelInfoSchema).max(MAX_WORKER_MODELS),
  health: WorkerHealthSchema
}).strict()
export type WorkerAd = z.infer<typeof WorkerAdSchema>

/** Health of the whole node */
export const NodeHealthSchema = z.object({
  queueDepth: Count,
  inFlight: Count,
  /** in-flight / total concurrency of its workers, 0..1 (0 for a gateway-only node) */
  load: z.number().min(0).max(1000),
  latencyMs: z.number().nonnegative().max(1e9).optional(),
  successRate: z.number().min(0).max(1).optional(),
  vramUsed: z.number().nonnegative().max(1e15).optional(),
  vramTotal: z.number().nonnegative().max(1e15).optional(),
  uptimeS: z.number().nonnegative().max(1e10)
}).strict()
export type NodeHealth = z.infer<typeof NodeHealthSchema>

export const BeaconSchema = z.object({
  v: z.literal(1),
  peerId: PeerIdStringSchema,
  /** strictly increasing per peer (starts from the clock so it survives restarts) */
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  time: IsoTimeSchema,
  /** the sender's beacon interval: peers expire it after a few of these */
  intervalMs: z.number().int().min(100).max(3_600_000),
  version: z.string().min(1).max(32),
  name: z.string().max(64).optional(),
  /** public gateway URL, when the node serves one */
  gateway: z.string().max(256).optional(),
  /** payout address (economy issue) */
  payout: z.string().max(128).optional(),
  /** set on the last beacon of a node that stops cleanly */
  leaving: z.boolean().optional(),
  workers: z.array(WorkerAdSchema).max(MAX_BEACON_WORKERS),
  health: NodeHealthSchema
}).strict()
export type Beacon = z.infer<typeof BeaconSchema>

/** The message on the wire: the beacon's JSON text and a signature over it */
const EnvelopeSchema = z.object({
  beacon: z.string().max(MAX_BEACON_BYTES),
  sig: z.string().max(200)
}).strict()

function signedBytes (beaconJson: string): Uint8Array {
  return utf8Encode(SIGNATURE_DOMAIN + beaconJson)
}

/** Serialise and sign a beacon with the node's key. Throws if the result is too large */
export async function encodeBeacon (beacon: Beacon, key: PrivateKey): Promise<Uint8Array> {
  const checked = BeaconSchema.parse(beacon)
  const beaconJson = JSON.stringify(checked)
  const sig = await key.sign(signedBytes(beaconJson))
  const bytes = utf8Encode(JSON.stringify({ beacon: beaconJson, sig: bytesToBase64(sig) }))
  if (bytes.byteLength > MAX_BEACON_BYTES) {
    throw new GossipValidationError('reject', 'BEACON_TOO_LARGE', `beacon is ${bytes.byteLength} bytes, limit ${MAX_BEACON_BYTES}`)
  }
  return bytes
}

/** Checks a signature by the key a peer id embeds; a faster one (cached keys) can be injected */
export type SignatureVerifier = (peerId: string, data: Uint8Array, sig: Uint8Array) => boolean | Promise<boolean>

export async function verifyWithPeerId (peerId: string, data: Uint8Array, sig: Uint8Array): Promise<boolean> {
  const publicKey = peerIdFromString(peerId).publicKey
  if (publicKey == null) return false
  return await publicKey.verify(data, sig)
}

/**
 * Decode = validate: size, JSON, envelope, beacon schema, and the signature against the key the
 * peer id embeds. `from`, when given, is the gossip author, which must be the beacon's peer.
 * Every failure is a REJECT with a code.
 */
export async function decodeBeacon (data: Uint8Array, from?: string, verify: SignatureVerifier = verifyWithPeerId): Promise<Beacon> {
  if (data.byteLength > MAX_BEACON_BYTES) {
    throw new GossipValidationError('reject', 'BEACON_TOO_LARGE', `beacon is ${data.byteLength} bytes, limit ${MAX_BEACON_BYTES}`)
  }
  let envelope: z.infer<typeof EnvelopeSchema>
  let beaconJson: unknown
  try {
    envelope = EnvelopeSchema.parse(JSON.parse(utf8Decode(data)))
    beaconJson = JSON.parse(envelope.beacon)
  } catch {
    throw new GossipValidationError('reject', 'BEACON_MALFORMED', 'beacon is not a JSON envelope { beacon, sig }')
  }
  const parsed = BeaconSchema.safeParse(beaconJson)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new GossipValidationError('reject', 'BEACON_INVALID', `beacon field ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`)
  }
  const beacon = parsed.data
  if (from !== undefined && from !== beacon.peerId) {
    throw new GossipValidationError('reject', 'BEACON_WRONG_AUTHOR', 'beacon names a peer other than its author')
  }
  let ok = false
  try {
    ok = await verify(beacon.peerId, signedBytes(envelope.beacon), base64ToBytes(envelope.sig))
  } catch {
    ok = false
  }
  if (!ok) throw new GossipValidationError('reject', 'BEACON_BAD_SIGNATURE', 'beacon signature does not verify')
  return beacon
}

/**
 * Freshness: IGNORE a beacon outside the time window or not newer than the last one seen from
 * that peer (replays). Pure, so the window is testable with any clock.
 */
export function checkBeaconFresh (beacon: Beacon, now: number, lastSeq: number | undefined): void {
  const time = Date.parse(beacon.time)
  if (time < now - BEACON_MAX_AGE_MS) throw new GossipValidationError('ignore', 'BEACON_STALE', 'beacon is older than 30 s')
  if (time > now + BEACON_MAX_AGE_MS) throw new GossipValidationError('ignore', 'BEACON_FUTURE', 'beacon is more than 30 s in the future')
  if (lastSeq !== undefined && beacon.seq <= lastSeq) throw new GossipValidationError('ignore', 'BEACON_REPLAY', 'beacon sequence number is not above the last seen')
}
