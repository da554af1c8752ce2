/**
 * DHT rendezvous: every realm node provides one well-known key and looks up its providers, so
 * realm nodes find each other through any node that runs the DHT, not only their bootstrap list.
 */
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { logger } from '@libp2p/logger'
import type { PeerInfo } from '@libp2p/interface'
import type { RealmLibp2p } from './libp2p.js'
import type { Startable } from '../startable.js'
import type { EventBus } from '../events/index.js'
import { RENDEZVOUS_NAMESPACE } from '../../protocol/ids.js'
import { utf8Encode } from '../../protocol/bytes.js'
import { errorMessage } from '../../protocol/errors.js'

/** Time between rendezvous lookups (DESIGN: cheap, one key) */
export const RENDEZVOUS_INTERVAL_MS = 30_000
/** A lookup soon after the first connection, so a newcomer finds the realm at once */
export const RENDEZVOUS_FIRST_DELAY_MS = 300
/** Provide records are refreshed this often */
export const RENDEZVOUS_REPROVIDE_MS = 10 * 60_000
const LOOKUP_TIMEOUT_MS = 15_000
/** Realm nodes remembered as found (for status and events) */
const MAX_FOUND = 10_000

export interface RendezvousInit {
  intervalMs?: number
  events?: EventBus
  /** called with every realm node found */
  onPeer: (peer: PeerInfo) => void | Promise<void>
}

export async function rendezvousKey (): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(utf8Encode(RENDEZVOUS_NAMESPACE)))
}

export class Rendezvous implements Startable {
  private readonly log = logger('realm:rendezvous')
  private timer?: ReturnType<typeof setTimeout>
  private key?: CID
  private lastProvide = 0
  private running = false
  private round?: Promise<void>
  private controller?: AbortController
  /** realm nodes this node found through the rendezvous */
  readonly found = new Set<string>()

  constructor (private readonly libp2p: RealmLibp2p, private readonly init: RendezvousInit) {}

  async start (): Promise<void> {
    this.key = await rendezvousKey()
    this.running = true
    this.controller = new AbortController()
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
  }

  async stop (): Promise<void> {
    this.running = false
    this.libp2p.removeEventListener('peer:identify', this.onIdentify)
    clearTimeout(this.timer)
    this.controller?.abort()
    await this.round?.catch(() => {})
  }

  /** Run one provide + lookup round now (also used by tests) */
  async runRound (): Promise<number> {
    const dht = this.libp2p.services.dht
    if (dht == null || this.key == null || !this.running) return 0
    const signal = AbortSignal.any([AbortSignal.timeout(LOOKUP_TIMEOUT_MS), this.controller!.signal])
    if (Date.now() - this.lastProvide > RENDEZVOUS_REPROVIDE_MS) {
      try {
        await this.libp2p.contentRouting.provide(this.key, { signal })
        this.lastProvide = Date.now()
      } catch (err) {
        this.log('provide failed: %s', errorMessage(err))
      }
    }
    let found = 0
    try {
      for await (const peer of this.libp2p.contentRouting.findProviders(this.key, { signal })) {
        if (peer.id.equals(this.libp2p.peerId)) continue
        found++
        const id = peer.id.toString()
        if (!this.found.has(id) && this.found.size < MAX_FOUND) {
          this.found.add(id)
          this.init.events?.emit('peer.discovered', { peerId: id, via: 'rendezvous' })
        }
        await this.init.onPeer(peer)
      }
    } catch (err) {
      this.log('lookup failed: %s', errorMessage(err))
    }
    return found
  }

  private schedule (delayMs: number): void {
    if (!this.running) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.round = this.runRound().then(() => {}, () => {}).finally(() => {
        this.round = undefined
        this.schedule(this.init.intervalMs ?? RENDEZVOUS_INTERVAL_MS)
      })
    }, delayMs)
    this.timer.unref?.()
  }

  // the first lookup waits for a peer that can answer; later ones run on the interval
  private readonly onIdentify = (): void => {
    if (this.timer == null && this.round == null) this.schedule(RENDEZVOUS_FIRST_DELAY_MS)
    else if (this.lastProvide === 0 && this.round == null) this.schedule(RENDEZVOUS_FIRST_DELAY_MS)
  }
}
