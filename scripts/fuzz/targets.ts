/**
 * The decoders under fuzz, each with its valid seed messages, its stages (how far a case got) and
 * its oracle (what must hold whatever the input): the presence beacon, the shared blocklist, the
 * task frames of both sides, and the config repair.
 */
import { isDeepStrictEqual } from 'node:util'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { parse as parseToml } from 'smol-toml'
import {
  BeaconSchema, MAX_BEACON_BYTES, checkBeaconFresh, decodeBeacon, verifyWithPeerId, type Beacon
} from '../../protocol/presence.js'
import {
  MAX_BLOCKLIST_BYTES, SharedBlocklistSchema, checkBlocklistFresh, decodeBlocklist, type SharedBlocklist
} from '../../protocol/blocklist.js'
import {
  MAX_TASK_FRAME_BYTES, RequesterFrameSchema, WorkerFrameSchema, decodeRequesterFrame, decodeWorkerFrame, encodeFrame,
  type RequesterFrame, type WorkerFrame
} from '../../protocol/task-frames.js'
import { TASK_INPUT_SCHEMAS } from '../../protocol/task.js'
import { RealmError } from '../../protocol/errors.js'
import { GossipValidationError } from '../../protocol/verdict.js'
import { bytesToBase64 } from '../../protocol/bytes.js'
import { verifyCached } from '../../node/p2p/verify.js'
import { PeerTable } from '../../node/presence/peer-table.js'
import { meshModels } from '../../node/presence/mesh.js'
import { parsePeerId } from '../../node/sysop/blocklist.js'
import { parseCidr } from '../../node/sysop/cidr.js'
import { MAX_CONFIG_BYTES, MAX_REPAIR_MESSAGES } from '../../node/config/constants.js'
import { repairConfigText } from '../../node/config/repair.js'
import { renderConfig } from '../../node/config/toml.js'
import { defaultConfig, settingEntries } from '../../node/config/spec.js'
import { solidPng, tonePcm, wavFromPcm } from '../../test/standins/media.js'
import { Rng, caseSeed } from './rng.js'
import { jsonSchemaOf, type JsonSchema, type SchemaOverride } from './schema.js'
import { docBytes, mutateBytes, mutateValue, randomBytes, randomJson, randomString, NASTY_STRINGS, PROTOTYPE_KEYS } from './mutate.js'

/** One generated input */
export interface FuzzCase {
  target: string
  index: number
  /** how it was made: valid, mutation, sweep, bytes, random, … */
  kind: string
  notes: string[]
  bytes: Uint8Array
  /** extra parameters of the call (gossip author, truncated flag) */
  params?: Record<string, unknown>
}

export type FindingKind = 'crash' | 'uncoded' | 'hang' | 'slow' | 'invariant' | 'flood' | 'memory' | 'unhandled' | 'http-5xx' | 'http-shape' | 'http-no-answer' | 'http-dead' | 'http-route-error' | 'ws'

export interface Finding {
  kind: FindingKind
  target: string
  seed: number
  index: number
  message: string
  /** the input, truncated, for the reproduction */
  input?: string
  notes?: string[]
}

export interface CaseResult {
  /** stages reached, in order */
  stages: string[]
  /** error code, `OK`, or `CRASH:<name>` */
  code: string
  findings: Array<Pick<Finding, 'kind' | 'message'>>
}

export interface DecoderTarget {
  name: string
  /** the stages, in order, for the table */
  stages: readonly string[]
  prepare: () => Promise<void>
  generate: (seed: number, index: number) => Promise<FuzzCase>
  execute: (c: FuzzCase) => Promise<CaseResult>
}

const enc = new TextEncoder()
const strictDecoder = new TextDecoder('utf-8', { fatal: true })

/** A fixed base time, so generated messages and freshness checks do not depend on the clock */
export const BASE_TIME = Date.UTC(2025, 0, 1, 12, 0, 0)
const ISO = new Date(BASE_TIME).toISOString()

/** Domain separation strings of the signed messages (private in protocol/; the CI test checks a re-signed seed still verifies) */
export const BEACON_SIGNATURE_DOMAIN = 'rentahal/presence/1\n'
export const BLOCKLIST_SIGNATURE_DOMAIN = 'rentahal/blocklist/1\n'

const PNG_B64 = solidPng(4, 4, [200, 30, 30]).toString('base64')
const WAV_B64 = wavFromPcm(tonePcm(50)).toString('base64')

/** Shows the input of a case for a reproduction: text when it is UTF-8, else hex; cut to `max` */
export function preview (bytes: Uint8Array, max = 600): string {
  let text: string
  try {
    text = JSON.stringify(strictDecoder.decode(bytes.subarray(0, Math.min(bytes.length, max * 4))))
    text = `utf8 ${text.length > max ? text.slice(0, max) + '…' : text}`
  } catch {
    text = `hex ${Buffer.from(bytes.subarray(0, max / 2)).toString('hex')}${bytes.length > max / 2 ? '…' : ''}`
  }
  return `${bytes.length} bytes: ${text}`
}

function describeError (err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message.slice(0, 300)}${err.stack != null ? ` @ ${stackTop(err.stack)}` : ''}`
  return `non-Error thrown: ${String(err).slice(0, 200)}`
}

/** The first frames of a stack that are the project's own code */
export function stackTop (stack: string): string {
  const frames = stack.split('\n').slice(1).map(l => l.trim()).filter(l => !l.includes('node_modules') && !l.includes('node:internal') && !l.includes('/scripts/fuzz/'))
  return frames.slice(0, 3).join(' ← ')
}

/** Prototype pollution check: Object.prototype's own keys, as at start */
const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort().join(',')
export function prototypeIntact (): boolean {
  return Object.getOwnPropertyNames(Object.prototype).sort().join(',') === PROTO_KEYS && ({} as any).polluted === undefined
}

// ---------------------------------------------------------------------------------------------
// signed messages (beacon, blocklist)

interface Signer { key: PrivateKey, peerId: string }

async function signer (label: string): Promise<Signer> {
  const seed = new Uint8Array(32)
  seed.set(enc.encode(label).subarray(0, 32))
  const key = await generateKeyPairFromSeed('Ed25519', seed)
  return { key, peerId: peerIdFromPrivateKey(key).toString() }
}

async function sign (s: Signer, domain: string, json: string): Promise<string> {
  return bytesToBase64(await s.key.sign(enc.encode(domain + json)))
}

/** How far a signed message's envelope gets: utf8 → json → envelope object → inner JSON */
function envelopeStages (bytes: Uint8Array, field: 'beacon' | 'list'): string[] {
  const stages: string[] = []
  let text: string
  try {
    text = strictDecoder.decode(bytes)
  } catch {
    return stages
  }
  stages.push('json')
  let outer: any
  try {
    outer = JSON.parse(text)
  } catch {
    return stages
  }
  stages.push('envelope')
  const keys = outer !== null && typeof outer === 'object' && !Array.isArray(outer) ? Object.keys(outer).sort().join(',') : ''
  if (keys !== `${field},sig`.split(',').sort().join(',') || typeof outer[field] !== 'string' || typeof outer.sig !== 'string') return stages
  stages.push('inner json')
  try {
    JSON.parse(outer[field])
  } catch {
    return stages
  }
  stages.push('schema')
  return stages
}

interface SignedSeeds<T> { values: T[], schema: JsonSchema, envelopeSchema: JsonSchema }

/** Makes a case of a signed message: mutate inside (re-signed), the envelope, or the bytes */
async function signedCase<T> (name: string, rng: Rng, index: number, seeds: SignedSeeds<T>, field: 'beacon' | 'list', domain: string, signers: Signer[], sweepOf: Uint8Array | undefined): Promise<FuzzCase> {
  const base = rng.pick(seeds.values)
  const envelope = async (json: string, who = signers[0]): Promise<Record<string, string>> => ({ [field]: json, sig: await sign(who, domain, json) })
  const validBytes = async (): Promise<Uint8Array> => enc.encode(JSON.stringify(await envelope(JSON.stringify(base))))
  if (sweepOf !== undefined && index % 10 === 5) {
    const at = Math.floor(index / 10) % (sweepOf.length + 1)
    return { target: name, index, kind: 'sweep', notes: [`truncated at byte ${at} of ${sweepOf.length}`], bytes: sweepOf.slice(0, at) }
  }
  const layer = rng.weighted([['inner', 55], ['envelope', 15], ['bytes', 15], ['random', 5], ['random json', 5], ['valid', 5]] as const)
  switch (layer) {
    case 'inner': {
      const doc = mutateValue(rng, base, seeds.schema)
      const json = doc.text()
      const how = rng.weighted([['re-signed', 85], ['old signature', 10], ['signed by another key', 5]] as const)
      const env = how === 're-signed'
        ? await envelope(json)
        : how === 'old signature'
          ? { [field]: json, sig: (await envelope(JSON.stringify(base))).sig }
          : await envelope(json, signers[1])
      return { target: name, index, kind: 'inner', notes: [...doc.notes, how], bytes: enc.encode(JSON.stringify(env)) }
    }
    case 'envelope': {
      const doc = mutateValue(rng, await envelope(JSON.stringify(base)), seeds.envelopeSchema)
      return { target: name, index, kind: 'envelope', notes: doc.notes, bytes: docBytes(doc) }
    }
    case 'bytes': {
      let bytes = await validBytes()
      const notes: string[] = []
      for (let i = rng.range(1, 2); i > 0; i--) {
        const m = mutateBytes(rng, bytes)
        bytes = m.bytes
        notes.push(m.note)
      }
      return { target: name, index, kind: 'bytes', notes, bytes }
    }
    case 'random': {
      const r = randomBytes(rng)
      return { target: name, index, kind: 'random', notes: [r.note], bytes: r.bytes }
    }
    case 'random json': {
      const inner = rng.chance(0.5)
      const value = randomJson(rng, 4)
      const bytes = inner ? enc.encode(JSON.stringify(await envelope(JSON.stringify(value)))) : enc.encode(JSON.stringify(value))
      return { target: name, index, kind: 'random json', notes: [inner ? 'random JSON signed inside an envelope' : 'random JSON'], bytes }
    }
    default:
      return { target: name, index, kind: 'valid', notes: ['valid'], bytes: await validBytes() }
  }
}

function coded (err: unknown, codes: ReadonlySet<string>, cls: 'gossip' | 'realm'): Pick<Finding, 'kind' | 'message'> | undefined {
  if (cls === 'gossip' && err instanceof GossipValidationError && codes.has(err.code) && err.verdict === 'reject') return undefined
  if (cls === 'realm' && err instanceof RealmError && codes.has(err.code)) return undefined
  return { kind: 'uncoded', message: `threw ${describeError(err)}${err instanceof RealmError ? ` (code ${err.code})` : ''}` }
}

function codeOf (err: unknown): string {
  if (err instanceof RealmError) return err.code
  return `CRASH:${err instanceof Error ? err.name : typeof err}`
}

/** A verifier that counts its calls and checks the node's cached verifier against the reference one */
function countingVerifier (): { verify: (peerId: string, data: Uint8Array, sig: Uint8Array) => Promise<boolean>, calls: number, mismatch?: string } {
  const state: { verify: (peerId: string, data: Uint8Array, sig: Uint8Array) => Promise<boolean>, calls: number, mismatch?: string } = {
    calls: 0,
    verify: async (peerId, data, sig) => {
      state.calls++
      const fast = await verifyCached(peerId, data, sig)
      let reference: boolean
      try {
        reference = await verifyWithPeerId(peerId, data, sig)
      } catch {
        reference = false
      }
      if (fast !== reference) state.mismatch = `verifyCached says ${String(fast)}, verifyWithPeerId says ${String(reference)} for peer ${peerId.slice(0, 60)}`
      return fast
    }
  }
  return state
}

// ---------------------------------------------------------------------------------------------
// beacon

function beaconSeeds (peerId: string): Beacon[] {
  const health = { state: 'ok' as const, queueDepth: 2, inFlight: 1, concurrency: 1, latencyMs: 35.5, successRate: 0.98, vramUsed: 1.8e9, vramTotal: 8e9 }
  const worker = (id: string, backend: Beacon['workers'][number]['backend'], models: Beacon['workers'][number]['models']): Beacon['workers'][number] => ({
    id, backend, kinds: [...new Set(models.flatMap(m => m.kinds))], models, health
  })
  return [
    { v: 1, peerId, seq: BASE_TIME, time: ISO, intervalMs: 2000, version: '0.1.0', workers: [], health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 12 } },
    {
      v: 1,
      peerId,
      seq: BASE_TIME + 7,
      time: ISO,
      intervalMs: 2000,
      version: '0.1.0',
      name: 'gpu-box',
      gateway: 'http://192.168.1.10:5000',
      workers: [
        worker('ollama-1234abcd', 'ollama', [
          { name: 'llama3.2:1b', kinds: ['chat', 'generate'], context: 131072, size: 1321098329, family: 'llama', parameterSize: '1.2B', quantization: 'Q8_0', loaded: true, price: 0 },
          { name: 'llava:7b', kinds: ['chat', 'generate'], context: 32768, vision: true, family: 'llama' },
          { name: 'nomic-embed-text:latest', kinds: ['embed'] }
        ]),
        worker('sd-99aa', 'sd', [{ name: 'v1-5-pruned-emaonly', kinds: ['imagine'], price: 2.5 }]),
        worker('openai-77', 'openai', [{ name: 'whisper-1', kinds: ['transcribe'] }, { name: 'tts-1', kinds: ['speak'] }])
      ],
      health: { queueDepth: 2, inFlight: 1, load: 0.5, latencyMs: 40, successRate: 1, vramUsed: 2e9, vramTotal: 8e9, uptimeS: 3600 }
    },
    { v: 1, peerId, seq: BASE_TIME + 9, time: ISO, intervalMs: 500, version: '0.1.0', payout: 'So11111111111111111111111111111111111111112', leaving: true, workers: [], health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 99 } }
  ]
}

export async function beaconTarget (): Promise<DecoderTarget> {
  const signers = [await signer('rentahal-fuzz-beacon-a'), await signer('rentahal-fuzz-beacon-b')]
  const known = new Set(signers.map(s => s.peerId))
  const schema = jsonSchemaOf(BeaconSchema)
  const seeds: SignedSeeds<Beacon> = {
    values: beaconSeeds(signers[0].peerId),
    schema,
    envelopeSchema: { type: 'object', properties: { beacon: { type: 'string', maxLength: MAX_BEACON_BYTES }, sig: { type: 'string', maxLength: 200 } }, required: ['beacon', 'sig'], additionalProperties: false }
  }
  const codes = new Set(['BEACON_TOO_LARGE', 'BEACON_MALFORMED', 'BEACON_INVALID', 'BEACON_WRONG_AUTHOR', 'BEACON_BAD_SIGNATURE'])
  const freshCodes = new Set(['BEACON_STALE', 'BEACON_FUTURE', 'BEACON_REPLAY'])
  let sweep: Uint8Array | undefined
  const table = new PeerTable()
  return {
    name: 'beacon',
    stages: ['size', 'json', 'envelope', 'inner json', 'schema', 'author', 'signature', 'accepted', 'fresh', 'peer table'],
    async prepare () {
      const b = seeds.values[0]
      const json = JSON.stringify(b)
      sweep = enc.encode(JSON.stringify({ beacon: json, sig: await sign(signers[0], BEACON_SIGNATURE_DOMAIN, json) }))
    },
    async generate (seed, index) {
      const rng = new Rng(caseSeed(seed, 'beacon', index))
      const c = await signedCase('beacon', rng, index, seeds, 'beacon', BEACON_SIGNATURE_DOMAIN, signers, sweep)
      const from = rng.weighted([[undefined, 6], [signers[0].peerId, 3], [signers[1].peerId, 1]] as const)
      if (from !== undefined) c.params = { from }
      return c
    },
    async execute (c) {
      const from = c.params?.from as string | undefined
      const v = countingVerifier()
      const stages = ['size']
      const findings: CaseResult['findings'] = []
      let beacon: Beacon
      try {
        beacon = await decodeBeacon(c.bytes, from, v.verify)
      } catch (err) {
        const code = codeOf(err)
        if (code === 'BEACON_MALFORMED' || !(err instanceof RealmError)) stages.push(...envelopeStages(c.bytes, 'beacon').filter(s => s !== 'schema'))
        else if (code !== 'BEACON_TOO_LARGE') stages.push('json', 'envelope', 'inner json', 'schema')
        if (code === 'BEACON_WRONG_AUTHOR' || code === 'BEACON_BAD_SIGNATURE') stages.push('author')
        if (v.calls > 0) stages.push('signature')
        const f = coded(err, codes, 'gossip')
        if (f !== undefined) findings.push(f)
        if (v.mismatch !== undefined) findings.push({ kind: 'invariant', message: v.mismatch })
        if (!prototypeIntact()) findings.push({ kind: 'invariant', message: 'Object.prototype changed' })
        return { stages, code, findings }
      }
      stages.push('json', 'envelope', 'inner json', 'schema', 'author', 'signature', 'accepted')
      if (v.mismatch !== undefined) findings.push({ kind: 'invariant', message: v.mismatch })
      if (!known.has(beacon.peerId)) findings.push({ kind: 'invariant', message: `accepted a beacon of ${beacon.peerId}, whose key never signed anything` })
      if (!BeaconSchema.safeParse(beacon).success) findings.push({ kind: 'invariant', message: 'the decoded beacon fails its own schema' })
      if (Object.getPrototypeOf(beacon) !== Object.prototype) findings.push({ kind: 'invariant', message: 'the decoded beacon has another prototype' })
      if (!prototypeIntact()) findings.push({ kind: 'invariant', message: 'Object.prototype changed' })
      let code = 'OK'
      try {
        checkBeaconFresh(beacon, BASE_TIME, undefined)
        stages.push('fresh')
      } catch (err) {
        code = codeOf(err)
        if (!(err instanceof GossipValidationError && freshCodes.has(err.code))) findings.push({ kind: 'uncoded', message: `freshness check threw ${describeError(err)}` })
      }
      try {
        // what the node does with an accepted beacon: the live table and the mesh's model list
        table.apply(beacon, BASE_TIME)
        meshModels(table.entries().map(e => ({ peerId: e.peerId, workers: e.beacon.workers, firstSeen: e.firstSeen })))
        table.remove(beacon.peerId)
        stages.push('peer table')
      } catch (err) {
        findings.push({ kind: 'crash', message: `the peer table / mesh threw on an accepted beacon: ${describeError(err)}` })
      }
      return { stages, code, findings }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// blocklist

function blocklistSeeds (publisher: string, other: string): SharedBlocklist[] {
  return [
    {
      v: 1,
      publisher,
      seq: BASE_TIME,
      time: ISO,
      entries: [
        { peerId: other, reason: 'spam' },
        { cidr: '10.0.0.0/8', expiresAt: new Date(BASE_TIME + 60_000).toISOString() },
        { cidr: '2001:db8::/32', reason: 'scanner' },
        { cidr: '192.0.2.7' }
      ]
    },
    { v: 1, publisher, seq: 0, time: ISO, entries: [] },
    { v: 1, publisher, seq: BASE_TIME + 1, time: ISO, entries: Array.from({ length: 40 }, (_, i) => ({ cidr: `10.${i}.0.0/16`, reason: `r${i}`.repeat(20) })) }
  ]
}

export async function blocklistTarget (): Promise<DecoderTarget> {
  const signers = [await signer('rentahal-fuzz-blocklist-a'), await signer('rentahal-fuzz-blocklist-b')]
  const known = new Set(signers.map(s => s.peerId))
  const seeds: SignedSeeds<SharedBlocklist> = {
    values: blocklistSeeds(signers[0].peerId, signers[1].peerId),
    schema: jsonSchemaOf(SharedBlocklistSchema),
    envelopeSchema: { type: 'object', properties: { list: { type: 'string', maxLength: MAX_BLOCKLIST_BYTES }, sig: { type: 'string', maxLength: 200 } }, required: ['list', 'sig'], additionalProperties: false }
  }
  const codes = new Set(['BLOCKLIST_TOO_LARGE', 'BLOCKLIST_MALFORMED', 'BLOCKLIST_INVALID', 'BLOCKLIST_UNSIGNED', 'BLOCKLIST_BAD_SIGNATURE'])
  const freshCodes = new Set(['BLOCKLIST_STALE', 'BLOCKLIST_FUTURE'])
  let sweep: Uint8Array | undefined
  return {
    name: 'blocklist',
    stages: ['size', 'json', 'envelope', 'inner json', 'schema', 'signed', 'signature', 'accepted', 'entries', 'fresh'],
    async prepare () {
      const json = JSON.stringify(seeds.values[1])
      sweep = enc.encode(JSON.stringify({ list: json, sig: await sign(signers[0], BLOCKLIST_SIGNATURE_DOMAIN, json) }))
    },
    async generate (seed, index) {
      const rng = new Rng(caseSeed(seed, 'blocklist', index))
      return await signedCase('blocklist', rng, index, seeds, 'list', BLOCKLIST_SIGNATURE_DOMAIN, signers, sweep)
    },
    async execute (c) {
      const v = countingVerifier()
      const stages = ['size']
      const findings: CaseResult['findings'] = []
      let list: SharedBlocklist
      try {
        list = await decodeBlocklist(c.bytes, v.verify)
      } catch (err) {
        const code = codeOf(err)
        if (code === 'BLOCKLIST_MALFORMED' || !(err instanceof RealmError)) stages.push(...envelopeStages(c.bytes, 'list').filter(s => s !== 'schema'))
        else if (code !== 'BLOCKLIST_TOO_LARGE') stages.push('json', 'envelope', 'inner json', 'schema')
        if (code === 'BLOCKLIST_UNSIGNED' || code === 'BLOCKLIST_BAD_SIGNATURE') stages.push('signed')
        if (v.calls > 0) stages.push('signature')
        const f = coded(err, codes, 'gossip')
        if (f !== undefined) findings.push(f)
        if (v.mismatch !== undefined) findings.push({ kind: 'invariant', message: v.mismatch })
        if (!prototypeIntact()) findings.push({ kind: 'invariant', message: 'Object.prototype changed' })
        return { stages, code, findings }
      }
      stages.push('json', 'envelope', 'inner json', 'schema', 'signed', 'signature', 'accepted')
      if (v.mismatch !== undefined) findings.push({ kind: 'invariant', message: v.mismatch })
      if (!known.has(list.publisher)) findings.push({ kind: 'invariant', message: `accepted a list of ${list.publisher}, whose key never signed anything` })
      if (!SharedBlocklistSchema.safeParse(list).success) findings.push({ kind: 'invariant', message: 'the decoded list fails its own schema' })
      if (!prototypeIntact()) findings.push({ kind: 'invariant', message: 'Object.prototype changed' })
      let code = 'OK'
      // what the node checks next (sysop/shared.ts): each entry is a real peer id or range
      try {
        for (const e of list.entries) {
          if (e.peerId !== undefined) parsePeerId(e.peerId)
          else parseCidr(e.cidr ?? '')
        }
        stages.push('entries')
      } catch (err) {
        code = err instanceof RealmError ? `ENTRY:${err.code}` : codeOf(err)
        if (!(err instanceof RealmError)) findings.push({ kind: 'uncoded', message: `an entry check threw ${describeError(err)}` })
        return { stages, code, findings }
      }
      try {
        checkBlocklistFresh(list, BASE_TIME, undefined)
        stages.push('fresh')
      } catch (err) {
        code = codeOf(err)
        if (!(err instanceof GossipValidationError && freshCodes.has(err.code))) findings.push({ kind: 'uncoded', message: `freshness check threw ${describeError(err)}` })
      }
      return { stages, code, findings }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// task frames

const TASK_ID = 'task_0123456789abcdef'

export function requesterFrameSeeds (): RequesterFrame[] {
  const options = { temperature: 0.7, topP: 0.9, topK: 40, maxTokens: 128, seed: 42, stop: ['\n\n'], json: false, maxPrice: 0 }
  return [
    { t: 'request', task: { id: TASK_ID, kind: 'chat', model: 'llama3.2:1b', input: { messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello', images: [PNG_B64] }] }, options }, workerId: 'ollama-1234abcd', user: 'user:abc' },
    { t: 'request', task: { id: TASK_ID, kind: 'generate', model: 'llama3.2:1b', input: { prompt: 'why is the sky blue?', system: 'you are a physicist', images: [PNG_B64] } } },
    { t: 'request', task: { id: TASK_ID, kind: 'imagine', model: 'v1-5-pruned-emaonly', input: { prompt: 'a red fox', negativePrompt: 'blurry', width: 512, height: 512, steps: 20, cfgScale: 7, seed: -1, sampler: 'Euler a', count: 2 } } },
    { t: 'request', task: { id: TASK_ID, kind: 'transcribe', model: 'whisper-1', input: { audio: WAV_B64, mime: 'audio/wav', language: 'en', phrases: ['yes', 'no'] } } },
    { t: 'request', task: { id: TASK_ID, kind: 'speak', model: 'tts-1', input: { text: 'hello there', voice: 'alloy', format: 'wav', speed: 1 } } },
    { t: 'request', task: { id: TASK_ID, kind: 'embed', model: 'nomic-embed-text:latest', input: { input: ['one', 'two'] } } },
    { t: 'request', task: { id: TASK_ID, kind: 'embed', model: 'nomic-embed-text', input: { input: 'one' } } },
    { t: 'heartbeat' },
    { t: 'cancel', reason: 'client went away' },
    { t: 'cancel' }
  ]
}

export function workerFrameSeeds (): WorkerFrame[] {
  return [
    { t: 'accepted', position: 3, etaMs: 1200 },
    { t: 'queued', position: 0, etaMs: 0 },
    { t: 'started', workerId: 'ollama-1234abcd' },
    { t: 'progress', fraction: 0.5, step: 10, steps: 20, message: 'sampling' },
    { t: 'token', text: 'Hello' },
    { t: 'image', image: { data: PNG_B64, mime: 'image/png' } },
    { t: 'audio', audio: { data: WAV_B64, mime: 'audio/wav' } },
    {
      t: 'done',
      output: { text: 'Hello world', embeddings: [[0.1, -0.2, 0.3]], images: [{ data: PNG_B64, mime: 'image/png' }], audio: { data: WAV_B64, mime: 'audio/wav' }, doneReason: 'stop', usage: { promptTokens: 12, completionTokens: 3, units: 3 }, seed: 42 },
      timings: { queueMs: 2, firstTokenMs: 30, runMs: 120 }
    },
    { t: 'done', output: {}, timings: {} },
    { t: 'error', code: 'BACKEND_ERROR', message: 'the backend answered 500' },
    { t: 'heartbeat' }
  ]
}

export function frameTarget<F> (name: string, schemaOf: typeof RequesterFrameSchema | typeof WorkerFrameSchema, seedsOf: () => F[], decode: (b: Uint8Array) => F): DecoderTarget {
  const schema = jsonSchemaOf(schemaOf)
  const seeds = seedsOf()
  const inputSchemas = Object.fromEntries(Object.entries(TASK_INPUT_SCHEMAS).map(([k, s]) => [k, jsonSchemaOf(s)]))
  const codes = new Set(['FRAME_TOO_LARGE', 'FRAME_MALFORMED', 'FRAME_INVALID'])
  const short = seeds.map(s => enc.encode(JSON.stringify(s))).filter(b => b.length < 300)
  return {
    name,
    stages: ['size', 'json', 'schema', 'accepted', 'round trip'],
    async prepare () {},
    async generate (seed, index) {
      const rng = new Rng(caseSeed(seed, name, index))
      if (index % 10 === 5) {
        // truncation at every byte of the short frames, in turn
        const total = short.reduce((s, b) => s + b.length + 1, 0)
        let at = Math.floor(index / 10) % total
        for (const b of short) {
          if (at <= b.length) return { target: name, index, kind: 'sweep', notes: [`${preview(b, 60)} truncated at byte ${at}`], bytes: b.slice(0, at) }
          at -= b.length + 1
        }
      }
      const base = rng.pick(seeds) as any
      const overrides: SchemaOverride[] = base.task !== undefined ? [{ path: ['task', 'input'], schema: inputSchemas[base.task.kind] }] : []
      const layer = rng.weighted([['value', 70], ['bytes', 12], ['random', 5], ['random json', 4], ['too large', 0.3], ['valid', 5]] as const)
      switch (layer) {
        case 'value': {
          const doc = mutateValue(rng, base, schema, overrides)
          let bytes = docBytes(doc)
          if (rng.chance(0.1)) {
            const m = mutateBytes(rng, bytes)
            bytes = m.bytes
            doc.notes.push(m.note)
          }
          return { target: name, index, kind: 'value', notes: doc.notes, bytes }
        }
        case 'bytes': {
          const m = mutateBytes(rng, enc.encode(JSON.stringify(base)))
          return { target: name, index, kind: 'bytes', notes: [m.note], bytes: m.bytes }
        }
        case 'random': {
          const r = randomBytes(rng)
          return { target: name, index, kind: 'random', notes: [r.note], bytes: r.bytes }
        }
        case 'random json': return { target: name, index, kind: 'random json', notes: ['random JSON'], bytes: enc.encode(JSON.stringify(randomJson(rng, 4))) }
        case 'too large': {
          const bytes = new Uint8Array(MAX_TASK_FRAME_BYTES + 1 + rng.int(16)).fill(0x20)
          bytes.set(enc.encode(JSON.stringify(base)))
          return { target: name, index, kind: 'too large', notes: [`${bytes.length} bytes (limit ${MAX_TASK_FRAME_BYTES})`], bytes }
        }
        default: return { target: name, index, kind: 'valid', notes: ['valid'], bytes: enc.encode(JSON.stringify(base)) }
      }
    },
    async execute (c) {
      const stages = ['size']
      const findings: CaseResult['findings'] = []
      let frame: any
      try {
        frame = decode(c.bytes)
      } catch (err) {
        const code = codeOf(err)
        if (code === 'FRAME_MALFORMED' || code === 'FRAME_INVALID') stages.push('json')
        if (code === 'FRAME_INVALID') stages.push('schema')
        const f = coded(err, codes, 'realm')
        if (f !== undefined) findings.push(f)
        if (!prototypeIntact()) findings.push({ kind: 'invariant', message: 'Object.prototype changed' })
        return { stages, code, findings }
      }
      stages.push('json', 'schema', 'accepted')
      if (!schemaOf.safeParse(frame).success) findings.push({ kind: 'invariant', message: 'the decoded frame fails its own schema' })
      if (frame.t === 'request' && !TASK_INPUT_SCHEMAS[frame.task.kind as keyof typeof TASK_INPUT_SCHEMAS].safeParse(frame.task.input).success) {
        findings.push({ kind: 'invariant', message: `accepted a ${String(frame.task.kind)} task whose input fails the kind's schema` })
      }
      if (!prototypeIntact()) findings.push({ kind: 'invariant', message: 'Object.prototype changed' })
      try {
        const again = decode(encodeFrame(frame))
        // compared as JSON: -0 travels as 0, which is the same number on the wire
        if (JSON.stringify(again) !== JSON.stringify(frame)) findings.push({ kind: 'invariant', message: 'decode(encode(frame)) differs from the frame' })
        stages.push('round trip')
      } catch (err) {
        findings.push({ kind: 'invariant', message: `an accepted frame does not survive encode → decode: ${describeError(err)}` })
      }
      return { stages, code: 'OK', findings }
    }
  }
}

export function requesterFrameTarget (): DecoderTarget {
  return frameTarget('requester-frame', RequesterFrameSchema, requesterFrameSeeds, decodeRequesterFrame)
}

export function workerFrameTarget (): DecoderTarget {
  return frameTarget('worker-frame', WorkerFrameSchema, workerFrameSeeds, decodeWorkerFrame)
}

// ---------------------------------------------------------------------------------------------
// config repair

const SOME_PEER = '12D3KooWGRUVh6VLqyhxUBUZMVHiLGeNbDwVQVVqBtwPSbsYVhYu'

export function configSeeds (): string[] {
  const custom = defaultConfig()
  custom.node.name = 'gpu box "one"'
  custom.http.listen = '0.0.0.0:5001'
  custom.http.allowed_hosts = ['realm.example.com', '*.example.org']
  custom.http.cors_origins = ['http://localhost:*']
  custom.p2p.bootstrap = [`/ip4/192.168.1.10/tcp/9000/p2p/${SOME_PEER}`]
  custom.workers.list = ['ollama=http://127.0.0.1:11434', 'sd=http://127.0.0.1:7860']
  custom.tasks.run_on = 'trusted'
  custom.tasks.trusted = [SOME_PEER]
  custom.paid.hf_usd_per_image = 0.01
  return [
    renderConfig(defaultConfig()),
    renderConfig(custom),
    [
      '# hand written',
      '[http]',
      'listen = "127.0.0.1:5000"',
      '[p2p]',
      'bootstrap = [',
      `  "/ip4/10.0.0.1/tcp/9000/p2p/${SOME_PEER}",`,
      ']',
      'mdns = false',
      '[workers]',
      "list = ['ollama=http://127.0.0.1:11434']",
      '[queue]',
      'max_size = 2_048',
      ''
    ].join('\r\n'),
    '[presence]\ninterval_ms = 1000\n'
  ]
}

const TOML_VALUES = [
  '"x"', '1', '-1', '0', 'true', 'false', '[1, "a"]', '[]', '{ a = 1 }', '{}', '1979-05-27T07:32:00Z', '1979-05-27', '07:32:00', 'nan', '+inf', '-inf',
  '1e999', '99999999999999999999999', '-9223372036854775809', '9223372036854775807', '-0', '0x10', '0o7', '0b1', '1_000', '+1', '1.5', '3.14e-400',
  "'literal'", '"""multi\nline"""', "'''raw\nlines'''", '"unterminated', '[', '[1,', '{', '"\\uD800"', '"\\u0000"', '"\\x41"', '"a\\qb"', '"\u0000"', '"\u001b[31mred"',
  '"/ip4/1.2.3.4/tcp/1"', '["/ip4/1.2.3.4/tcp/1", 5]', '"0.0.0.0:99999"', '":5000"', '"5000"', '"[::1]:0"', '"grid"', '"GRID"', '"*"', '"null"'
]
const TOML_KEYS = [...PROTOTYPE_KEYS, 'http.listen', '"listen"', "'listen'", 'listen ', ' listen', 'LISTEN', 'li sten', '', '"\u0000"', 'a.b.c.d.e', '"__proto__".x', '__proto__.polluted', 'constructor.prototype.polluted']
const TOML_HEADERS = ['[__proto__]', '[constructor]', '[prototype]', '[toString]', '[hasOwnProperty]', '[http', '[http] junk', '[[http]]', '[http.listen]', '[ http ]', '["http"]', '[http.x.y]', '[]', '[ ]', '[.]', '[a..b]', '[__proto__.polluted]', '[constructor.prototype]', '[p2p]', '[node]', '[paid]']

function lines (text: string): string[] {
  return text.split('\n')
}

/** A config case: line and value mutations of a valid config.toml, or bytes */
function configCase (rng: Rng, index: number): FuzzCase {
  const name = 'config'
  const base = rng.pick(configSeeds())
  const notes: string[] = []
  let truncated = false
  const layer = rng.weighted([['lines', 60], ['bytes', 15], ['bomb', 5], ['repeat', 1.5], ['random', 6], ['valid', 5], ['huge', 1]] as const)
  let text = base
  switch (layer) {
    case 'lines': {
      const ls = lines(text)
      for (let n = rng.range(1, 4); n > 0; n--) {
        const i = rng.int(ls.length)
        const isSetting = /^\s*[A-Za-z0-9_"'-]+\s*=/.test(ls[i] ?? '')
        const op = rng.weighted([['value', isSetting ? 8 : 1], ['key', isSetting ? 3 : 0.5], ['header', 2], ['delete', 2], ['duplicate', 2], ['swap', 1], ['garbage', 2], ['line ending', 1]] as const)
        switch (op) {
          case 'value': {
            const eq = ls[i].indexOf('=')
            const key = eq >= 0 ? ls[i].slice(0, eq).trim() : 'name'
            const value = rng.chance(0.8) ? rng.pick(TOML_VALUES) : JSON.stringify(rng.pick(NASTY_STRINGS))
            ls[i] = `${key} = ${value}`
            notes.push(`line ${i + 1}: ${key} = ${value}`)
            break
          }
          case 'key': {
            const eq = ls[i].indexOf('=')
            const key = rng.pick(TOML_KEYS)
            ls[i] = `${key} =${eq >= 0 ? ls[i].slice(eq + 1) : ' 1'}`
            notes.push(`line ${i + 1}: key ${JSON.stringify(key)}`)
            break
          }
          case 'header': {
            const h = rng.pick(TOML_HEADERS)
            ls.splice(i, 0, h)
            notes.push(`line ${i + 1}: header ${h}`)
            break
          }
          case 'delete': ls.splice(i, 1); notes.push(`line ${i + 1} deleted`); break
          case 'duplicate': ls.splice(i, 0, ls[i] ?? ''); notes.push(`line ${i + 1} duplicated`); break
          case 'swap': {
            const j = rng.int(ls.length)
            ;[ls[i], ls[j]] = [ls[j], ls[i]]
            notes.push(`lines ${i + 1} and ${j + 1} swapped`)
            break
          }
          case 'garbage': {
            const g = rng.chance(0.5) ? randomString(rng, 80) : rng.pick(['=', '= 1', 'key', 'key =', '[[', ']]', '"', '#', 'a = [', 'a = """', "a = '''", 'a.b = 1', '\u0000'])
            ls.splice(i, 0, g)
            notes.push(`line ${i + 1}: garbage ${JSON.stringify(g.slice(0, 40))}`)
            break
          }
          default: {
            const eol = rng.pick(['\r\n', '\r', '\n\n', '\u2028', '\u0085'])
            text = ls.join(eol)
            notes.push(`line endings ${JSON.stringify(eol)}`)
            return { target: name, index, kind: 'lines', notes, bytes: enc.encode(text) }
          }
        }
      }
      text = ls.join('\n')
      break
    }
    case 'bomb': {
      const depth = rng.pick([100, 1000, 10_000, 100_000])
      const kind = rng.int(4)
      const bomb = kind === 0
        ? `x = ${'['.repeat(depth)}${']'.repeat(depth)}`
        : kind === 1
          ? `x = ${'{ a = '.repeat(depth)}1${' }'.repeat(depth)}`
          : kind === 2
            ? `[${Array.from({ length: depth }, () => 'a').join('.')}]`
            : `${Array.from({ length: depth }, () => 'a').join('.')} = 1`
      const section = rng.pick(['', '[p2p]\n', '[http]\n'])
      text = `${text}\n${section}${bomb}\n`
      notes.push(`nesting ${depth} deep (form ${kind})`)
      break
    }
    case 'repeat': {
      // lines that open a list cost the line-by-line recovery most (it joins up to 64 lines to
      // close each): those stay at a few hundred (the slow-repair finding has its own test), the
      // rest fill a quarter of the 1 MiB a config may have
      const line = rng.pick(['a = [', 'listen = [', 'bootstrap = ["/ip4/1.2.3.4/tcp/1", ', '[p2p', 'x', '= 1', 'name = "x"', '[[a]]', '"', 'a = """'])
      const opensList = line.endsWith('[') || line.endsWith(', ')
      const times = opensList ? rng.pick([100, 300, 1000]) : rng.pick([1000, 10_000, Math.floor(MAX_CONFIG_BYTES / 4 / (line.length + 1))])
      text = `${base}\n${`${line}\n`.repeat(times)}`
      notes.push(`${JSON.stringify(line)} repeated ${times} times`)
      break
    }
    case 'huge': {
      const key = rng.pick(['name', 'listen', 'x', 'a'.repeat(100_000)])
      const value = `"${'v'.repeat(rng.pick([70_000, 500_000, MAX_CONFIG_BYTES]))}"`
      text = `[node]\n${key} = ${value}\n`
      notes.push(`huge value (${value.length} chars) for key of ${key.length} chars`)
      break
    }
    case 'random': {
      if (rng.chance(0.5)) {
        const r = randomBytes(rng)
        return { target: name, index, kind: 'random', notes: [r.note], bytes: r.bytes }
      }
      text = Array.from({ length: rng.range(1, 30) }, () => randomString(rng, 60)).join('\n')
      notes.push('random lines')
      break
    }
    case 'valid': notes.push('valid'); break
    default: break
  }
  let bytes: Uint8Array = enc.encode(text)
  if (layer === 'bytes' || rng.chance(0.1)) {
    const m = mutateBytes(rng, bytes)
    bytes = m.bytes
    notes.push(m.note)
  }
  if (bytes.length > MAX_CONFIG_BYTES) {
    // what loadConfig does with a bigger file: its first MAX_CONFIG_BYTES, line by line
    bytes = bytes.slice(0, MAX_CONFIG_BYTES)
    truncated = true
    notes.push(`cut to ${MAX_CONFIG_BYTES} bytes (truncated mode)`)
  } else if (rng.chance(0.03)) {
    truncated = true
    notes.push('truncated mode')
  }
  return { target: name, index, kind: layer, notes, bytes, params: { truncated } }
}

/** What repairConfigText's messages say, deepest check first: which of its validators a case reached */
const REPAIR_KINDS: ReadonlyArray<readonly [string, RegExp]> = [
  ['INVALID_VALUE', /is invalid \(/],
  ['UNKNOWN_SETTING', /^unknown setting /],
  ['UNKNOWN_SECTION', /^unknown section /],
  ['SECTION_AS_SETTING', /dropped: .* is a section/],
  ['BAD_HEADER', /unreadable section header/],
  ['ARRAY_OF_TABLES', /an array of tables/],
  ['UNREADABLE_LINES', /^dropped \d+ unreadable line/],
  ['NOT_TOML', /did not parse as TOML/],
  ['TOO_LARGE', /is larger than \d+ bytes/],
  ['MISSING_SETTINGS', /^added missing settings/]
]

/** The code of a config case: CLEAN, or the deepest kind of repair it needed */
export function repairCode (repairs: readonly string[]): string {
  if (repairs.length === 0) return 'CLEAN'
  for (const [code, re] of REPAIR_KINDS) if (repairs.some(r => re.test(r))) return code
  return 'NOTE'
}

/** A message longer than this is a flood on stderr (quotes are capped at 60 characters) */
export const MAX_REPAIR_LINE_CHARS = 1000

export function configTarget (): DecoderTarget {
  const sweepText = configSeeds()[3]
  return {
    name: 'config',
    stages: ['decode', 'whole-file parse', 'line-by-line', 'repaired', 'valid config', 'round trip'],
    async prepare () {},
    async generate (seed, index) {
      if (index % 10 === 5) {
        const b = enc.encode(sweepText)
        const at = Math.floor(index / 10) % (b.length + 1)
        return { target: 'config', index, kind: 'sweep', notes: [`truncated at byte ${at} of ${b.length}`], bytes: b.slice(0, at), params: { truncated: false } }
      }
      return configCase(new Rng(caseSeed(seed, 'config', index)), index)
    },
    async execute (c) {
      const stages = ['decode']
      const findings: CaseResult['findings'] = []
      // as loadConfig reads it: a BOM dropped, invalid bytes as U+FFFD
      const text = new TextDecoder('utf-8').decode(c.bytes)
      const truncated = c.params?.truncated === true
      let whole = false
      if (!truncated) {
        try {
          parseToml(text, { integersAsBigInt: 'asNeeded' })
          whole = true
        } catch {}
      }
      stages.push(whole ? 'whole-file parse' : 'line-by-line')
      let result: ReturnType<typeof repairConfigText>
      try {
        result = repairConfigText(text, { truncated })
      } catch (err) {
        findings.push({ kind: 'crash', message: `repairConfigText threw ${describeError(err)}` })
        return { stages, code: codeOf(err), findings }
      }
      if (result.repairs.length > 0) stages.push('repaired')
      const code = repairCode(result.repairs)
      if (!prototypeIntact()) findings.push({ kind: 'invariant', message: 'Object.prototype changed' })
      if (result.repairs.length > MAX_REPAIR_MESSAGES + 1) findings.push({ kind: 'flood', message: `${result.repairs.length} repair messages (cap ${MAX_REPAIR_MESSAGES} + 1)` })
      const long = result.repairs.find(r => r.length > MAX_REPAIR_LINE_CHARS)
      if (long !== undefined) findings.push({ kind: 'flood', message: `a repair message of ${long.length} characters: ${JSON.stringify(long.slice(0, 120))}…` })
      const config = result.config as unknown as Record<string, Record<string, unknown>>
      const bad = settingEntries().find(([s, k, spec]) => !Object.hasOwn(config, s) || !Object.hasOwn(config[s], k) || !spec.schema.safeParse(config[s][k]).success)
      if (bad !== undefined) {
        findings.push({ kind: 'invariant', message: `the repaired config has an invalid ${bad[0]}.${bad[1]}: ${String(JSON.stringify(config[bad[0]]?.[bad[1]])).slice(0, 100)}` })
        return { stages, code, findings }
      }
      if (Object.getPrototypeOf(config) !== Object.prototype || Object.values(config).some(s => Object.getPrototypeOf(s) !== Object.prototype)) {
        findings.push({ kind: 'invariant', message: 'the repaired config (or a section) has another prototype' })
      }
      stages.push('valid config')
      try {
        const again = repairConfigText(renderConfig(result.config))
        if (again.repairs.length > 0) findings.push({ kind: 'invariant', message: `the rewritten config needs repairs again: ${again.repairs[0].slice(0, 200)}` })
        else if (!isDeepStrictEqual(again.config, result.config)) findings.push({ kind: 'invariant', message: 'the rewritten config reads back different' })
        else stages.push('round trip')
      } catch (err) {
        findings.push({ kind: 'crash', message: `rendering / re-reading the repaired config threw ${describeError(err)}` })
      }
      return { stages, code, findings }
    }
  }
}

/** Every decoder target */
export async function decoderTargets (): Promise<DecoderTarget[]> {
  return [await beaconTarget(), await blocklistTarget(), requesterFrameTarget(), workerFrameTarget(), configTarget()]
}
