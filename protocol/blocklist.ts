/**
 * The shared blocklist: a list of peer ids and IP ranges a sysop publishes on
 * `/rentahal/1/blocklist` for other nodes to follow. Like the presence beacon it is signed inside
 * the message with the publisher's node key (over the exact bytes of its JSON body), so it can be
 * stored and relayed and still be checked against the peer id it names. A sequence number
 * (starting from the clock) orders a publisher's lists: a newer one replaces the older.
 */
import { z } from 'zod'
import type { PrivateKey } from '@libp2p/interface'
import { GossipValidationError } from './verdict.js'
import { base64ToBytes, bytesToBase64, utf8Decode, utf8Encode } from './bytes.js'
import { verifyWithPeerId, type SignatureVerifier } from './presence.js'

/** Largest blocklist message accepted or sent, in bytes (gossipsub's own bound is above it) */
export const MAX_BLOCKLIST_BYTES = 128 * 1024
/** Most entries one list may carry (each ≤ ~350 bytes, so a full list fits the byte limit) */
export const MAX_BLOCKLIST_ENTRIES_SHARED = 256
/** Longest reason of an entry */
export const MAX_BLOCK_REASON_CHARS = 200
/** A list older than this is stale and ignored (publishers republish far more often) */
export const BLOCKLIST_MAX_AGE_MS = 60 * 60 * 1000
/** A list stamped further than this in the future is ignored */
export const BLOCKLIST_MAX_SKEW_MS = 30_000
/** Domain separation: a signature made for anything else (a beacon) never verifies as a blocklist */
const SIGNATURE_DOMAIN = 'rentahal/blocklist/1\n'

const PeerIdStringSchema = z.string().min(1).max(128).regex(/^[1-9A-HJ-NP-Za-km-z]+$/, 'base58 peer id')
const IsoTimeSchema = z.string().max(40).refine(s => !Number.isNaN(Date.parse(s)), 'ISO-8601 time')
/** Characters of an IPv4/IPv6 address or range; the receiving node parses it strictly */
const CidrTextSchema = z.string().min(2).max(64).regex(/^[0-9A-Fa-f:./]+$/, 'IP address or CIDR range')

/** One entry: exactly one of `peerId` and `cidr` */
export const SharedEntrySchema = z.object({
  peerId: PeerIdStringSchema.optional(),
  cidr: CidrTextSchema.optional(),
  reason: z.string().max(MAX_BLOCK_REASON_CHARS).optional(),
  expiresAt: IsoTimeSchema.optional()
}).strict().refine(e => (e.peerId === undefined) !== (e.cidr === undefined), 'exactly one of peerId and cidr')
export type SharedEntry = z.infer<typeof SharedEntrySchema>

export const SharedBlocklistSchema = z.object({
  v: z.literal(1),
  /** the peer id whose key signs the list */
  publisher: PeerIdStringSchema,
  /** strictly increasing per publisher */
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  /** when it was published */
  time: IsoTimeSchema,
  entries: z.array(SharedEntrySchema).max(MAX_BLOCKLIST_ENTRIES_SHARED)
}).strict()
export type SharedBlocklist = z.infer<typeof SharedBlocklistSchema>

/** The message on the wire: the list's JSON text and a signature over it */
const EnvelopeSchema = z.object({
  list: z.string().max(MAX_BLOCKLIST_BYTES),
  sig: z.string().max(200)
}).strict()

function signedBytes (listJson: string): Uint8Array {
  return utf8Encode(SIGNATURE_DOMAIN + listJson)
}

/** Serialise and sign a list with the publisher's node key. Throws (REJECT, `BLOCKLIST_TOO_LARGE`) past the byte limit */
export async function encodeBlocklist (list: SharedBlocklist, key: PrivateKey): Promise<Uint8Array> {
  const checked = SharedBlocklistSchema.parse(list)
  const listJson = JSON.stringify(checked)
  const sig = await key.sign(signedBytes(listJson))
  const bytes = utf8Encode(JSON.stringify({ list: listJson, sig: bytesToBase64(sig) }))
  if (bytes.byteLength > MAX_BLOCKLIST_BYTES) {
    throw new GossipValidationError('reject', 'BLOCKLIST_TOO_LARGE', `blocklist is ${bytes.byteLength} bytes, limit ${MAX_BLOCKLIST_BYTES}`)
  }
  return bytes
}

/**
 * Decode = validate: size, JSON, envelope, schema, and the signature against the key the
 * publisher's peer id embeds. Every failure is a REJECT with a code (`BLOCKLIST_TOO_LARGE`,
 * `BLOCKLIST_MALFORMED`, `BLOCKLIST_INVALID`, `BLOCKLIST_UNSIGNED`, `BLOCKLIST_BAD_SIGNATURE`).
 */
export async function decodeBlocklist (data: Uint8Array, verify: SignatureVerifier = verifyWithPeerId): Promise<SharedBlocklist> {
  if (data.byteLength > MAX_BLOCKLIST_BYTES) {
    throw new GossipValidationError('reject', 'BLOCKLIST_TOO_LARGE', `blocklist is ${data.byteLength} bytes, limit ${MAX_BLOCKLIST_BYTES}`)
  }
  let envelope: z.infer<typeof EnvelopeSchema>
  let listJson: unknown
  try {
    envelope = EnvelopeSchema.parse(JSON.parse(utf8Decode(data)))
    listJson = JSON.parse(envelope.list)
  } catch {
    throw new GossipValidationError('reject', 'BLOCKLIST_MALFORMED', 'blocklist is not a JSON envelope { list, sig }')
  }
  const parsed = SharedBlocklistSchema.safeParse(listJson)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new GossipValidationError('reject', 'BLOCKLIST_INVALID', `blocklist field ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`)
  }
  if (envelope.sig === '') throw new GossipValidationError('reject', 'BLOCKLIST_UNSIGNED', 'blocklist is not signed')
  let ok = false
  try {
    ok = await verify(parsed.data.publisher, signedBytes(envelope.list), base64ToBytes(envelope.sig))
  } catch {
    ok = false
  }
  if (!ok) throw new GossipValidationError('reject', 'BLOCKLIST_BAD_SIGNATURE', 'blocklist signature does not verify')
  return parsed.data
}

/**
 * Freshness: IGNORE a list outside the time window or not newer than the last one applied from
 * its publisher. Pure, so it is testable with any clock.
 */
export function checkBlocklistFresh (list: SharedBlocklist, now: number, lastSeq: number | undefined): void {
  const time = Date.parse(list.time)
  if (time < now - BLOCKLIST_MAX_AGE_MS) throw new GossipValidationError('ignore', 'BLOCKLIST_STALE', 'blocklist is older than an hour')
  if (time > now + BLOCKLIST_MAX_SKEW_MS) throw new GossipValidationError('ignore', 'BLOCKLIST_FUTURE', 'blocklist is more than 30 s in the future')
  if (lastSeq !== undefined && list.seq <= lastSeq) throw new GossipValidationError('ignore', 'BLOCKLIST_STALE', 'blocklist sequence number is not above the last applied')
}
