/**
 * The sysop's tools, in one place: the blocklist and its enforcement at every layer (gater,
 * connections, presence, routing, task server), shared blocklists, authentication (token and
 * browser sessions), users and bans, benching workers. The node builds it before libp2p (the
 * gater and the blocked-peer checks are libp2p options), attaches it once libp2p exists, and
 * starts and stops it with the rest.
 */
import type { ConnectionGater, PrivateKey } from '@libp2p/interface'
import type { RealmDb } from '../db/index.js'
import type { EventBus } from '../events/index.js'
import type { Startable } from '../startable.js'
import type { RealmLibp2p } from '../p2p/libp2p.js'
import type { Worker } from '../workers/index.js'
import { Blocklist } from './blocklist.js'
import { PeerGuard } from './guard.js'
import { SharedBlocklists, type PublishResult } from './shared.js'
import { SysopAuth, type SysopAuthInit } from './auth.js'
import { MemoryUserDirectory, type UserDirectory } from './users.js'

export * from './blocklist.js'
export * from './cidr.js'
export * from './errors.js'
export * from './constants.js'
export { PeerGuard, BLOCKED_APP_SCORE } from './guard.js'
export { SharedBlocklists, type PublishResult, type SharedBlocklistStats } from './shared.js'
export { SysopAuth, bearerOf, clientAddress, cookieOf, credentialHash, credentialMatches, type AuthMethod, type AuthRequest, type SessionInfo, type SysopAuthInit } from './auth.js'
export { MemoryUserDirectory, checkUserId, webUserDirectory, type SysopUser, type UserDirectory, type WebUserRecord, type WebUsers } from './users.js'
export { BenchableWorker, benchable } from './bench.js'

export interface SysopInit {
  db: RealmDb
  events: EventBus
  /** this node's peer id (never blocked) and key (signs the lists it publishes) */
  selfId: string
  privateKey: PrivateKey
  /** `DIR/sysop.token` */
  tokenFile: string
  /** `DIR/trace`, for `GET /realm/sysop/log` */
  traceDir: string
  /** publishers whose blocklists this node follows (config `sysop.follow`); default none */
  follow?: readonly string[]
  /** the users the sysop manages (node/gateway/users.ts through `webUserDirectory`); default: an empty one in memory */
  users?: UserDirectory
  /** auth tuning (tests shorten windows) */
  auth?: Partial<Omit<SysopAuthInit, 'tokenFile' | 'events'>>
  /** the clock; default `Date.now` */
  now?: () => number
}

/** What the sysop tools act on, once the node has built it */
export interface SysopNodeComponents {
  libp2p: RealmLibp2p
  /** remove a peer from the live table at once */
  dropPeer: (peerId: string, reason: string) => void
  /** this node's workers (benchable ones can be benched) */
  workers: () => Worker[]
  /** cancel every task of a requester (`user:<id>` for a banned user) */
  cancelRequester: (requester: string) => number
}

/** The slice of the sysop tools the gateway's sysop routes use */
export interface SysopApi {
  auth: SysopAuth
  blocklist: Blocklist
  /** the users the sysop manages (the directory may be swapped after build) */
  users: () => UserDirectory
  events: EventBus
  traceDir: string
  /** publish this node's local entries (and keep republishing them) */
  publish: () => Promise<PublishResult>
  /** publishers followed, and whether this node publishes */
  sharing: () => { follow: string[], publishing: boolean }
  /** the node's hook when a user is banned: cancel that user's tasks */
  onBan: (userId: string) => number
  workers: () => Worker[]
}

export class Sysop implements Startable {
  readonly guard: PeerGuard
  readonly auth: SysopAuth
  private shared?: SharedBlocklists
  private components?: SysopNodeComponents
  private userDirectory: UserDirectory

  private constructor (
    private readonly init: SysopInit,
    readonly blocklist: Blocklist,
    users: UserDirectory
  ) {
    this.userDirectory = users
    this.guard = new PeerGuard({ blocklist, events: init.events, selfId: init.selfId })
    this.auth = new SysopAuth({ ...init.auth, tokenFile: init.tokenFile, events: init.events, now: init.auth?.now ?? init.now })
  }

  /** Load the blocklist and users from the database */
  static async create (init: SysopInit): Promise<Sysop> {
    const blocklist = new Blocklist({ db: init.db, events: init.events, selfId: init.selfId, now: init.now })
    await blocklist.start()
    // a publisher dropped from `sysop.follow` no longer applies
    await blocklist.retainPublishers(init.follow ?? [])
    return new Sysop(init, blocklist, init.users ?? new MemoryUserDirectory(init.now))
  }

  /** The users the sysop manages */
  get users (): UserDirectory {
    return this.userDirectory
  }

  /** Manage these users (the web UI's directory, built after the sysop tools) */
  useUsers (users: UserDirectory): void {
    this.userDirectory = users
  }

  /** Blocked by the blocklist, or met at a blocked address */
  readonly isPeerBlocked = (peerId: string): boolean => this.guard.isPeerBlocked(peerId)

  /** The libp2p ConnectionGater */
  gater (): ConnectionGater {
    return this.guard.gater()
  }

  /** For gossipsub's score: blocked peers sink below the graylist threshold */
  readonly appSpecificScore = (peerId: string): number => this.guard.appSpecificScore(peerId)

  /** Hand over what the tools act on (after libp2p and the presence service exist) */
  attach (components: SysopNodeComponents): void {
    this.components = components
    this.shared = new SharedBlocklists(components.libp2p, {
      privateKey: this.init.privateKey,
      blocklist: this.blocklist,
      follow: this.init.follow ?? [],
      events: this.init.events,
      isPeerBlocked: this.isPeerBlocked,
      now: this.init.now
    })
  }

  /** After libp2p and presence have started */
  start (): void {
    const c = this.components
    if (c == null || this.shared == null) throw new Error('Sysop.start before attach')
    this.auth.start()
    this.guard.start({ libp2p: c.libp2p, dropPeer: c.dropPeer })
    this.shared.start()
  }

  stop (): void {
    this.shared?.stop()
    this.guard.stop()
    this.auth.stop()
    this.blocklist.stop()
  }

  get sharedBlocklists (): SharedBlocklists | undefined {
    return this.shared
  }

  /** Cancel a banned user's tasks; returns how many */
  readonly onBan = (userId: string): number => this.components?.cancelRequester(`user:${userId}`) ?? 0

  /** The gateway's view of the tools */
  api (): SysopApi {
    return {
      auth: this.auth,
      blocklist: this.blocklist,
      users: () => this.userDirectory,
      events: this.init.events,
      traceDir: this.init.traceDir,
      publish: async () => {
        if (this.shared == null) throw new Error('shared blocklists are not running')
        return await this.shared.publish()
      },
      sharing: () => ({ follow: this.shared?.following() ?? [...(this.init.follow ?? [])], publishing: this.blocklist.selfState().publishing }),
      onBan: this.onBan,
      workers: () => this.components?.workers() ?? []
    }
  }
}
