/**
 * The blocklist: peers (by peer id) and address ranges (IPv4/IPv6 CIDR) this node refuses at
 * every layer. Entries come from the local sysop (`source: 'local'`) or from publishers the node
 * follows (`source: <publisher peer id>`); a local `allow` entry overrides a followed publisher's
 * entry for the same peer or range. Everything is kept in the database bucket `blocklist`, checked
 * against its schema on read and write, and loaded at start. An entry may expire: a timer removes
 * it at its time (`sysop.unblocked`, reason `expired`).
 *
 * Events (on the bus, and to `onChange` listeners): `sysop.blocked` when a peer or range becomes
 * blocked, `sysop.unblocked` when it no longer is (`reason`: `removed`, `overridden`, `expired`,
 * `publisher`, `unfollowed`). They follow the effective state, not single entries: a peer blocked
 * both locally and by a publisher is unblocked once, when neither applies any more.
 */
import { z } from 'zod'
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import { Bucket, type BucketStore, type DbBatchOp, type RealmDb } from '../db/index.js'
import type { EventBus } from '../events/index.js'
import type { Startable } from '../startable.js'
import { cidrContains, formatCidr, looksLikeCidr, parseCidr, parseIp, type Cidr, type IpAddress } from './cidr.js'
import { BlocklistFullError, SysopInputError, SysopNotFoundError } from './errors.js'
import { MAX_BLOCKLIST_ENTRIES, MAX_BLOCK_REASON_CHARS, MAX_TIMER_MS } from './constants.js'
import { MAX_BLOCKLIST_ENTRIES_SHARED, type SharedEntry } from '../../protocol/blocklist.js'
import { errorMessage } from '../../protocol/errors.js'

/** `source` of the local sysop's entries */
export const LOCAL_SOURCE = 'local'

export type EntryKind = 'peer' | 'cidr'

/** What an entry names: a peer id, or a range in canonical form (`10.0.0.0/8`, `2001:db8::/32`) */
export interface BlockTarget {
  kind: EntryKind
  entry: string
}

/** Why a peer or range stopped being blocked */
export type UnblockReason = 'removed' | 'overridden' | 'expired' | 'publisher' | 'unfollowed'

/** Effective changes, as `onChange` listeners get them */
export interface BlockChange {
  blocked: BlockTarget[]
  unblocked: BlockTarget[]
  reason: UnblockReason | 'blocked'
}

/** Longest peer id text taken */
const MAX_PEER_ID_CHARS = 128
const CONTROL_RE = /[\u0000-\u001f\u007f]/
const PEER_ID_RE = /^[1-9A-HJ-NP-Za-km-z]+$/

/** A peer id in canonical (base58) form. @throws SysopInputError `INVALID_PEER_ID` */
export function parsePeerId (text: string): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_PEER_ID_CHARS || !PEER_ID_RE.test(text)) {
    throw new SysopInputError('INVALID_PEER_ID', `not a peer id: ${JSON.stringify(String(text).slice(0, 64))}`)
  }
  try {
    return peerIdFromString(text).toString()
  } catch {
    throw new SysopInputError('INVALID_PEER_ID', `not a peer id: ${JSON.stringify(text.slice(0, 64))}`)
  }
}

/** A peer id or an address/range, told apart by its characters. @throws SysopInputError */
export function parseTarget (text: string): BlockTarget {
  if (typeof text !== 'string') throw new SysopInputError('INVALID_ENTRY', 'an entry is a peer id or a CIDR range')
  if (looksLikeCidr(text)) return { kind: 'cidr', entry: formatCidr(parseCidr(text)) }
  return { kind: 'peer', entry: parsePeerId(text) }
}

/** A reason as kept: trimmed, at most 200 characters, no control characters. @throws SysopInputError `INVALID_REASON` */
export function checkReason (reason: unknown): string {
  if (reason === undefined || reason === null) return ''
  if (typeof reason !== 'string') throw new SysopInputError('INVALID_REASON', 'reason must be a string')
  const r = reason.trim()
  if (r.length > MAX_BLOCK_REASON_CHARS) throw new SysopInputError('INVALID_REASON', `reason is longer than ${MAX_BLOCK_REASON_CHARS} characters`)
  if (CONTROL_RE.test(r)) throw new SysopInputError('INVALID_REASON', 'reason must not contain control characters')
  return r
}

const IsoTimeSchema = z.string().max(40).refine(s => !Number.isNaN(Date.parse(s)), 'ISO-8601 time')
const KindSchema = z.enum(['peer', 'cidr'])
const ReasonSchema = z.string().max(MAX_BLOCK_REASON_CHARS)

/** An entry's text must be the canonical form of its kind */
function canonicalEntry (v: { kind: EntryKind, entry: string }): boolean {
  try {
    return v.kind === 'peer' ? parsePeerId(v.entry) === v.entry : formatCidr(parseCidr(v.entry)) === v.entry
  } catch {
    return false
  }
}

const BlockRecordSchema = z.object({
  t: z.literal('block'),
  kind: KindSchema,
  entry: z.string().min(1).max(MAX_PEER_ID_CHARS),
  reason: ReasonSchema,
  /** `local` or the publisher's peer id */
  source: z.string().min(1).max(MAX_PEER_ID_CHARS),
  createdAt: IsoTimeSchema,
  expiresAt: IsoTimeSchema.optional()
}).strict().refine(canonicalEntry, 'entry is not canonical for its kind')

const AllowRecordSchema = z.object({
  t: z.literal('allow'),
  kind: KindSchema,
  entry: z.string().min(1).max(MAX_PEER_ID_CHARS),
  reason: ReasonSchema,
  createdAt: IsoTimeSchema,
  expiresAt: IsoTimeSchema.optional()
}).strict().refine(canonicalEntry, 'entry is not canonical for its kind')

const PublisherRecordSchema = z.object({
  t: z.literal('publisher'),
  publisher: z.string().min(1).max(MAX_PEER_ID_CHARS),
  seq: z.number().int().nonnegative(),
  time: IsoTimeSchema,
  receivedAt: IsoTimeSchema
}).strict()

const SelfRecordSchema = z.object({
  t: z.literal('self'),
  /** this node publishes its local entries (since a sysop asked it to) */
  publishing: z.boolean(),
  /** the last sequence number it published */
  seq: z.number().int().nonnegative()
}).strict()

/** Every value of the `blocklist` bucket */
export const BlocklistRecordSchema = z.union([BlockRecordSchema, AllowRecordSchema, PublisherRecordSchema, SelfRecordSchema])
export type BlocklistRecord = z.infer<typeof BlocklistRecordSchema>

export type BlockEntry = Omit<z.infer<typeof BlockRecordSchema>, 't'>
export type AllowEntry = Omit<z.infer<typeof AllowRecordSchema>, 't'>
export type PublisherState = Omit<z.infer<typeof PublisherRecordSchema>, 't'>
export type SelfState = Omit<z.infer<typeof SelfRecordSchema>, 't'>

/** An entry as the sysop sees it: `effective` is false when an allow entry overrides it */
export interface BlockEntryView extends BlockEntry {
  effective: boolean
}

export interface BlocklistView {
  entries: BlockEntryView[]
  allows: AllowEntry[]
  publishers: Array<PublisherState & { entries: number }>
}

const blockKey = (source: string, entry: string): string => `block/${source}/${entry}`
const allowKey = (entry: string): string => `allow/${entry}`
const publisherKey = (publisher: string): string => `publisher/${publisher}`
const SELF_KEY = 'self'

export interface BlocklistInit {
  /** the node's database; entries live in its `blocklist` bucket */
  db: RealmDb
  /** where `sysop.blocked` / `sysop.unblocked` go; default: none */
  events?: EventBus
  /** the clock; default `Date.now` */
  now?: () => number
  /** this node's peer id: never blocked, whatever a followed list says; default: none */
  selfId?: string
  /** most entries kept (blocks + allows); default 10 000 (MAX_BLOCKLIST_ENTRIES) */
  maxEntries?: number
}

export interface BlockOptions {
  /** why (kept and shown, at most 200 characters); default '' */
  reason?: string
  /** when the entry ends (ms since epoch or ISO-8601); default: never */
  expiresAt?: number | string
}

export class Blocklist implements Startable {
  private readonly log = logger('realm:blocklist')
  private readonly store: BucketStore<BlocklistRecord>
  private readonly now: () => number
  private readonly maxEntries: number
  /** keyed `${source}/${entry}` */
  private readonly blocks = new Map<string, BlockEntry>()
  /** keyed by entry */
  private readonly allows = new Map<string, AllowEntry>()
  private readonly publishers = new Map<string, PublisherState>()
  private self: SelfState = { publishing: false, seq: 0 }
  /** the effective state: what is blocked now, and by which entry */
  private effective = new Map<string, BlockEntry>()
  private peers = new Set<string>()
  private cidrs: Array<{ entry: string, cidr: Cidr }> = []
  private readonly listeners = new Set<(change: BlockChange) => void>()
  private chain: Promise<unknown> = Promise.resolve()
  private timer?: ReturnType<typeof setTimeout>
  private running = false

  constructor (private readonly init: BlocklistInit) {
    this.store = init.db.bucket(Bucket.blocklist, BlocklistRecordSchema)
    this.now = init.now ?? Date.now
    this.maxEntries = init.maxEntries ?? MAX_BLOCKLIST_ENTRIES
  }

  /** Load every entry from the database (dropping expired ones) and arm the expiry timer */
  async start (): Promise<void> {
    const expired: DbBatchOp[] = []
    const now = this.now()
    for await (const [key, record] of this.store.entries()) {
      if ((record.t === 'block' || record.t === 'allow') && record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now) {
        expired.push(this.store.delOp(key))
        continue
      }
      if (record.t === 'block') this.blocks.set(`${record.source}/${record.entry}`, strip(record))
      else if (record.t === 'allow') this.allows.set(record.entry, strip(record))
      else if (record.t === 'publisher') this.publishers.set(record.publisher, strip(record))
      else this.self = strip(record)
    }
    await this.init.db.batch(expired)
    // the state at start is not news: no events
    this.recompute('removed', false)
    this.running = true
    this.schedule()
  }

  stop (): void {
    this.running = false
    clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Called with every effective change; returns a function that stops listening */
  onChange (listener: (change: BlockChange) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Is this peer blocked (locally, or by a followed publisher and not allowed locally)? */
  isBlocked (peerId: string): boolean {
    return this.peers.has(peerId)
  }

  /** Is this IP address inside a blocked range? Anything that is not an address is not */
  isAddressBlocked (ip: string | IpAddress): boolean {
    return this.matchAddress(ip) !== undefined
  }

  /** The blocked range an address falls in, if any */
  matchAddress (ip: string | IpAddress): string | undefined {
    if (this.cidrs.length === 0) return undefined
    const addr = typeof ip === 'string' ? parseIp(ip) : ip
    if (addr == null) return undefined
    for (const c of this.cidrs) if (cidrContains(c.cidr, addr)) return c.entry
    return undefined
  }

  /** Blocked peers and ranges right now */
  blockedTargets (): BlockTarget[] {
    return [...this.effective.values()].map(e => ({ kind: e.kind, entry: e.entry }))
  }

  /** Every entry, allow entry and followed publisher */
  view (): BlocklistView {
    const counts = new Map<string, number>()
    for (const b of this.blocks.values()) counts.set(b.source, (counts.get(b.source) ?? 0) + 1)
    return {
      entries: [...this.blocks.values()]
        .map(b => ({ ...b, effective: this.effective.get(b.entry) != null && (b.source === LOCAL_SOURCE || !this.allows.has(b.entry)) }))
        .sort((a, b) => a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0),
      allows: [...this.allows.values()],
      publishers: [...this.publishers.values()].map(p => ({ ...p, entries: counts.get(p.publisher) ?? 0 }))
    }
  }

  /** The local entries as a shared list carries them (newest first, at most 256) */
  localEntries (): SharedEntry[] {
    const now = this.now()
    return [...this.blocks.values()]
      .filter(b => b.source === LOCAL_SOURCE && (b.expiresAt === undefined || Date.parse(b.expiresAt) > now))
      .sort((a, b) => a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0)
      .slice(0, MAX_BLOCKLIST_ENTRIES_SHARED)
      .map(b => {
        const e: SharedEntry = b.kind === 'peer' ? { peerId: b.entry } : { cidr: b.entry }
        if (b.reason !== '') e.reason = b.reason
        if (b.expiresAt !== undefined) e.expiresAt = b.expiresAt
        return e
      })
  }

  /** The last list applied from a publisher */
  publisher (publisher: string): PublisherState | undefined {
    return this.publishers.get(publisher)
  }

  /** Whether this node publishes its entries, and its last sequence number */
  selfState (): SelfState {
    return { ...this.self }
  }

  async setSelfState (state: SelfState): Promise<void> {
    await this.serial(async () => {
      await this.store.put(SELF_KEY, { t: 'self', ...state })
      this.self = { ...state }
    })
  }

  /**
   * Block a peer or range locally (replacing a local entry for the same target, and removing a
   * local allow entry for it). Its connections are closed by whoever listens (the node's guard).
   *
   * @throws SysopInputError (`INVALID_ENTRY`, `INVALID_REASON`, `INVALID_EXPIRY`), BlocklistFullError
   */
  async block (target: BlockTarget, opts: BlockOptions = {}): Promise<BlockEntry> {
    const reason = checkReason(opts.reason)
    const expiresAt = this.checkExpiry(opts.expiresAt)
    if (target.kind === 'peer' && target.entry === this.init.selfId) throw new SysopInputError('INVALID_ENTRY', 'a node cannot block itself')
    return await this.serial(async () => {
      const key = `${LOCAL_SOURCE}/${target.entry}`
      if (!this.blocks.has(key) && this.blocks.size + this.allows.size >= this.maxEntries) throw new BlocklistFullError(this.maxEntries)
      const entry: BlockEntry = { kind: target.kind, entry: target.entry, reason, source: LOCAL_SOURCE, createdAt: new Date(this.now()).toISOString() }
      if (expiresAt !== undefined) entry.expiresAt = expiresAt
      const ops = [this.store.putOp(blockKey(LOCAL_SOURCE, target.entry), { t: 'block', ...entry })]
      if (this.allows.has(target.entry)) ops.push(this.store.delOp(allowKey(target.entry)))
      await this.init.db.batch(ops)
      this.blocks.set(key, entry)
      this.allows.delete(target.entry)
      this.recompute('removed')
      return entry
    })
  }

  /**
   * Allow a peer or range: overrides followed publishers' entries for exactly this target, and
   * removes a local entry for it.
   */
  async allow (target: BlockTarget, opts: BlockOptions = {}): Promise<AllowEntry> {
    const reason = checkReason(opts.reason)
    const expiresAt = this.checkExpiry(opts.expiresAt)
    return await this.serial(async () => await this.putAllow(target, reason, expiresAt))
  }

  /**
   * Unblock: remove the local entry for this peer or range; when a followed publisher still
   * blocks it, store an allow entry that overrides the publisher.
   *
   * @throws SysopNotFoundError (`ENTRY_NOT_FOUND`) when nothing blocks exactly this target
   */
  async unblock (text: string): Promise<{ target: BlockTarget, removed?: BlockEntry, override?: AllowEntry }> {
    const target = parseTarget(text)
    return await this.serial(async () => {
      const local = this.blocks.get(`${LOCAL_SOURCE}/${target.entry}`)
      const shared = [...this.blocks.values()].filter(b => b.source !== LOCAL_SOURCE && b.entry === target.entry)
      const needsOverride = shared.length > 0 && !this.allows.has(target.entry)
      if (local == null && !needsOverride) {
        throw new SysopNotFoundError('ENTRY_NOT_FOUND', `${target.entry} is not on the blocklist`)
      }
      if (local != null) {
        await this.store.del(blockKey(LOCAL_SOURCE, target.entry))
        this.blocks.delete(`${LOCAL_SOURCE}/${target.entry}`)
      }
      let override: AllowEntry | undefined
      if (needsOverride) {
        const sources = [...new Set(shared.map(s => s.source))].join(', ')
        override = await this.putAllow(target, `unblocked locally; overrides ${sources}`.slice(0, MAX_BLOCK_REASON_CHARS), undefined, false)
      }
      this.recompute(needsOverride ? 'overridden' : 'removed')
      return { target, removed: local, override }
    })
  }

  /** Remove an allow entry (the followed publishers' entries apply again). @throws ENTRY_NOT_FOUND */
  async removeAllow (text: string): Promise<AllowEntry> {
    const target = parseTarget(text)
    return await this.serial(async () => {
      const allow = this.allows.get(target.entry)
      if (allow == null) throw new SysopNotFoundError('ENTRY_NOT_FOUND', `no allow entry for ${target.entry}`)
      await this.store.del(allowKey(target.entry))
      this.allows.delete(target.entry)
      this.recompute('removed')
      return allow
    })
  }

  /**
   * Replace a followed publisher's entries with those of its list, if the list is newer than the
   * last one applied (by sequence number). Entries that do not parse or have expired are left
   * out. Returns false when the list was not newer.
   */
  async applyShared (publisher: string, list: { seq: number, time: string, entries: SharedEntry[] }): Promise<boolean> {
    return await this.serial(async () => {
      const last = this.publishers.get(publisher)
      if (last != null && list.seq <= last.seq) return false
      const now = this.now()
      const next = new Map<string, BlockEntry>()
      const receivedAt = new Date(now).toISOString()
      for (const e of list.entries) {
        let target: BlockTarget
        try {
          target = e.peerId !== undefined ? { kind: 'peer', entry: parsePeerId(e.peerId) } : { kind: 'cidr', entry: formatCidr(parseCidr(e.cidr ?? '')) }
        } catch {
          continue
        }
        if (e.expiresAt !== undefined && Date.parse(e.expiresAt) <= now) continue
        let reason = ''
        try { reason = checkReason(e.reason) } catch {}
        const existing = this.blocks.get(`${publisher}/${target.entry}`)
        const entry: BlockEntry = { kind: target.kind, entry: target.entry, reason, source: publisher, createdAt: existing?.createdAt ?? receivedAt }
        if (e.expiresAt !== undefined) entry.expiresAt = new Date(Date.parse(e.expiresAt)).toISOString()
        next.set(target.entry, entry)
      }
      const current = [...this.blocks.values()].filter(b => b.source === publisher)
      const added = [...next.values()].filter(e => !this.blocks.has(`${publisher}/${e.entry}`)).length
      if (this.blocks.size + this.allows.size - current.length + next.size > this.maxEntries && added > 0) {
        throw new BlocklistFullError(this.maxEntries)
      }
      const ops: DbBatchOp[] = []
      for (const b of current) if (!next.has(b.entry)) ops.push(this.store.delOp(blockKey(publisher, b.entry)))
      for (const e of next.values()) ops.push(this.store.putOp(blockKey(publisher, e.entry), { t: 'block', ...e }))
      const state: PublisherState = { publisher, seq: list.seq, time: list.time, receivedAt }
      ops.push(this.store.putOp(publisherKey(publisher), { t: 'publisher', ...state }))
      await this.init.db.batch(ops)
      for (const b of current) this.blocks.delete(`${publisher}/${b.entry}`)
      for (const e of next.values()) this.blocks.set(`${publisher}/${e.entry}`, e)
      this.publishers.set(publisher, state)
      this.recompute('publisher')
      return true
    })
  }

  /** Forget the entries of publishers no longer followed (config `sysop.follow` changed) */
  async retainPublishers (follow: readonly string[]): Promise<void> {
    const keep = new Set(follow)
    await this.serial(async () => {
      const ops: DbBatchOp[] = []
      const gone = [...this.blocks.values()].filter(b => b.source !== LOCAL_SOURCE && !keep.has(b.source))
      for (const b of gone) ops.push(this.store.delOp(blockKey(b.source, b.entry)))
      const gonePublishers = [...this.publishers.keys()].filter(p => !keep.has(p))
      for (const p of gonePublishers) ops.push(this.store.delOp(publisherKey(p)))
      if (ops.length === 0) return
      await this.init.db.batch(ops)
      for (const b of gone) this.blocks.delete(`${b.source}/${b.entry}`)
      for (const p of gonePublishers) this.publishers.delete(p)
      this.recompute('unfollowed')
    })
  }

  /** Remove every entry whose time has come (the timer calls it; tests with a clock call it too) */
  async expire (): Promise<number> {
    return await this.serial(async () => {
      const now = this.now()
      const ops: DbBatchOp[] = []
      const blocks = [...this.blocks.entries()].filter(([, b]) => b.expiresAt !== undefined && Date.parse(b.expiresAt) <= now)
      const allows = [...this.allows.values()].filter(a => a.expiresAt !== undefined && Date.parse(a.expiresAt) <= now)
      for (const [, b] of blocks) ops.push(this.store.delOp(blockKey(b.source, b.entry)))
      for (const a of allows) ops.push(this.store.delOp(allowKey(a.entry)))
      if (ops.length > 0) {
        await this.init.db.batch(ops)
        for (const [key] of blocks) this.blocks.delete(key)
        for (const a of allows) this.allows.delete(a.entry)
        this.recompute('expired')
      }
      this.schedule()
      return ops.length
    })
  }

  private async putAllow (target: BlockTarget, reason: string, expiresAt: string | undefined, recompute = true): Promise<AllowEntry> {
    if (!this.allows.has(target.entry) && this.blocks.size + this.allows.size >= this.maxEntries) throw new BlocklistFullError(this.maxEntries)
    const allow: AllowEntry = { kind: target.kind, entry: target.entry, reason, createdAt: new Date(this.now()).toISOString() }
    if (expiresAt !== undefined) allow.expiresAt = expiresAt
    const ops = [this.store.putOp(allowKey(target.entry), { t: 'allow', ...allow })]
    const local = this.blocks.has(`${LOCAL_SOURCE}/${target.entry}`)
    if (local) ops.push(this.store.delOp(blockKey(LOCAL_SOURCE, target.entry)))
    await this.init.db.batch(ops)
    this.allows.set(target.entry, allow)
    this.blocks.delete(`${LOCAL_SOURCE}/${target.entry}`)
    if (recompute) this.recompute('overridden')
    return allow
  }

  private checkExpiry (value: number | string | undefined): string | undefined {
    if (value === undefined) return undefined
    const ms = typeof value === 'number' ? value : Date.parse(value)
    if (!Number.isFinite(ms)) throw new SysopInputError('INVALID_EXPIRY', 'expiresAt must be an ISO-8601 time')
    if (ms <= this.now()) throw new SysopInputError('INVALID_EXPIRY', 'expiresAt must be in the future')
    if (ms > 8.64e15) throw new SysopInputError('INVALID_EXPIRY', 'expiresAt is too far in the future')
    return new Date(ms).toISOString()
  }

  /** Rebuild the effective state and the lookup indexes; tell listeners what changed */
  private recompute (why: UnblockReason, notify = true): void {
    const next = new Map<string, BlockEntry>()
    for (const b of this.blocks.values()) {
      if (b.kind === 'peer' && b.entry === this.init.selfId) continue
      if (b.source !== LOCAL_SOURCE && this.allows.has(b.entry)) continue
      const have = next.get(b.entry)
      // the local entry speaks for the target when there is one
      if (have == null || b.source === LOCAL_SOURCE) next.set(b.entry, b)
    }
    const before = this.effective
    this.effective = next
    this.peers = new Set([...next.values()].filter(e => e.kind === 'peer').map(e => e.entry))
    this.cidrs = [...next.values()].filter(e => e.kind === 'cidr').map(e => ({ entry: e.entry, cidr: parseCidr(e.entry) }))
    if (!notify) return
    const blocked = [...next.values()].filter(e => !before.has(e.entry))
    const unblocked = [...before.values()].filter(e => !next.has(e.entry))
    for (const e of blocked) {
      this.init.events?.emit('sysop.blocked', { entry: e.entry, kind: e.kind, reason: e.reason, source: e.source, ...(e.expiresAt !== undefined ? { expiresAt: e.expiresAt } : {}) })
    }
    for (const e of unblocked) {
      this.init.events?.emit('sysop.unblocked', { entry: e.entry, kind: e.kind, reason: why, source: e.source })
    }
    if (blocked.length === 0 && unblocked.length === 0) return
    const change: BlockChange = {
      blocked: blocked.map(e => ({ kind: e.kind, entry: e.entry })),
      unblocked: unblocked.map(e => ({ kind: e.kind, entry: e.entry })),
      reason: blocked.length > 0 && unblocked.length === 0 ? 'blocked' : why
    }
    for (const l of [...this.listeners]) {
      try { l(change) } catch (err) { this.log.error('listener failed: %s', errorMessage(err)) }
    }
  }

  /** Arm the timer for the next expiry */
  private schedule (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    if (!this.running) return
    let next = Infinity
    for (const b of this.blocks.values()) if (b.expiresAt !== undefined) next = Math.min(next, Date.parse(b.expiresAt))
    for (const a of this.allows.values()) if (a.expiresAt !== undefined) next = Math.min(next, Date.parse(a.expiresAt))
    if (next === Infinity) return
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, next - this.now()))
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.expire().catch(err => { this.log.error('expiry failed: %s', errorMessage(err)) })
    }, delay)
    this.timer.unref?.()
  }

  /** Mutations run one at a time, each seeing the state the previous one left */
  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn)
    this.chain = run.catch(() => {})
    const result = await run
    if (this.running) this.schedule()
    return result
  }
}

function strip<T extends { t: string }> (record: T): Omit<T, 't'> {
  const { t, ...rest } = record
  return rest
}
