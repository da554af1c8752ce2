/**
 * A hand-made hostile peer: a bare libp2p node (TCP, noise, yamux, identify, gossipsub) that
 * speaks just enough of the realm to misbehave — floods presence, sends malformed and oversized
 * frames, replays its old beacons, opens streams by the hundred, advertises a model it does not
 * serve and fails the tasks it takes. Used by test/mesh/hostile.test.ts and scripts/bench/hostile.ts.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { PROTOCOL_TASK, TOPIC_PRESENCE } from '../../protocol/ids.js'
import { encodeBeacon, type Beacon } from '../../protocol/presence.js'
import { decodeRequesterFrame, encodeFrame } from '../../protocol/task-frames.js'
import type { TaskErrorCode } from '../../protocol/task.js'

/** The model the hostile peer advertises and never serves */
export const GHOST_MODEL = 'ghost:1b'

export class HostilePeer {
  private seq = Date.now()
  /** beacons it published, oldest first (to replay) */
  readonly published: Beacon[] = []
  /** streams it holds open */
  readonly held: Stream[] = []

  private constructor (readonly libp2p: Libp2p<{ identify: Identify, pubsub: GossipSub }>, readonly key: PrivateKey) {}

  static async start (): Promise<HostilePeer> {
    const key = await generateKeyPair('Ed25519')
    const libp2p = await createLibp2p({
      privateKey: key,
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { maxConnections: 50 },
      services: {
        identify: identify(),
        pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false, globalSignaturePolicy: 'StrictNoSign', ignoreDuplicatePublishError: true })
      }
    })
    libp2p.services.pubsub.subscribe(TOPIC_PRESENCE)
    return new HostilePeer(libp2p, key)
  }

  get peerId (): string {
    return this.libp2p.peerId.toString()
  }

  /** Dial a node and wait until gossip flows both ways */
  async connect (addr: string, targetPeerId: string, deadlineMs = 20_000): Promise<void> {
    await this.libp2p.dial(multiaddr(addr))
    const end = Date.now() + deadlineMs
    while (!this.libp2p.services.pubsub.getSubscribers(TOPIC_PRESENCE).some(p => p.toString() === targetPeerId)) {
      if (Date.now() > end) throw new Error('the node never subscribed as seen by the hostile peer')
      await new Promise(resolve => setTimeout(resolve, 25))
    }
  }

  /** Is it connected to this peer? */
  connectedTo (peerId: string): boolean {
    return this.libp2p.getConnections().some(c => c.remotePeer.toString() === peerId && c.status === 'open')
  }

  /** A valid beacon of its own, advertising `models` on one worker (none: a bare node) */
  beacon (models: string[] = [], over: Partial<Beacon> = {}): Beacon {
    return {
      v: 1,
      peerId: this.peerId,
      seq: ++this.seq,
      time: new Date().toISOString(),
      // long, so the node keeps it in its table between the attacks' beacons
      intervalMs: 60_000,
      version: '0.1.0',
      workers: models.length === 0
        ? []
        : [{
            id: 'ghost',
            backend: 'ollama',
            kinds: ['chat'],
            models: models.map(name => ({ name, kinds: ['chat' as const] })),
            health: { state: 'ok', queueDepth: 0, inFlight: 0, concurrency: 4 }
          }],
      health: { queueDepth: 0, inFlight: 0, load: 0, uptimeS: 1 },
      ...over
    }
  }

  /** Publish raw gossip bytes on the presence topic; never throws */
  async publishRaw (data: Uint8Array): Promise<void> {
    try {
      await this.libp2p.services.pubsub.publish(TOPIC_PRESENCE, data)
    } catch {}
  }

  async publishBeacon (beacon: Beacon = this.beacon()): Promise<void> {
    this.published.push(beacon)
    await this.publishRaw(await encodeBeacon(beacon, this.key))
  }

  /** Presence flood: `n` valid, signed, fresh beacons of its own as fast as it can */
  async floodPresence (n: number, models: string[] = []): Promise<void> {
    for (let i = 0; i < n; i++) await this.publishBeacon(this.beacon(models))
  }

  /** Malformed and oversized gossip: not JSON, a forged signature, a beacon past the size limit */
  async garbageGossip (): Promise<void> {
    const otherKey = await generateKeyPair('Ed25519')
    await this.publishRaw(new TextEncoder().encode('not json at all'))
    await this.publishRaw(await encodeBeacon({ ...this.beacon(), name: 'forged' }, otherKey))
    await this.publishRaw(new Uint8Array(70 * 1024).fill(0x20))
  }

  /**
   * Replays: its old beacons again with their old sequence numbers (re-signed, so gossip's
   * duplicate filter does not hide them), and beacons dated a minute ago
   */
  async replayBeacons (n: number): Promise<void> {
    const old = this.published.slice(0, Math.max(1, Math.min(this.published.length, 5)))
    for (let i = 0; i < n; i++) {
      const b = old[i % old.length] ?? this.beacon()
      // a fresh time keeps it past the staleness check: only the sequence number gives it away
      await this.publishRaw(await encodeBeacon({ ...b, time: new Date().toISOString(), name: `replay-${i}` }, this.key))
    }
    await this.publishRaw(await encodeBeacon(this.beacon([], { time: new Date(Date.now() - 60_000).toISOString() }), this.key))
  }

  /**
   * Malformed and oversized task frames: `n` task streams, each with one bad frame (not JSON,
   * an unknown frame type, a frame over the size limit); resolves with the error codes answered
   */
  async garbageTaskFrames (addr: string, n: number): Promise<string[]> {
    const bad = [
      new TextEncoder().encode('{{{ not json'),
      new TextEncoder().encode(JSON.stringify({ t: 'gimme' })),
      new Uint8Array(25 * 1024 * 1024).fill(0x41)
    ]
    const codes: string[] = []
    for (let i = 0; i < n; i++) {
      try {
        const stream = await this.libp2p.dialProtocol(multiaddr(addr), PROTOCOL_TASK, { signal: AbortSignal.timeout(10_000) })
        const lp = lpStream(stream, { maxDataLength: 32 * 1024 * 1024 })
        await lp.write(bad[i % bad.length], { signal: AbortSignal.timeout(10_000) })
        const reply = JSON.parse(new TextDecoder().decode((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray()))
        codes.push(String(reply.code ?? reply.t))
        stream.abort(new Error('done'))
      } catch (err) {
        codes.push(`closed: ${(err as Error).name}`)
      }
    }
    return codes
  }

  /** Opens `n` task streams on its connection and sends nothing on them; resolves with how many opened */
  async streamFlood (addr: string, n: number): Promise<number> {
    const conn = await this.libp2p.dial(multiaddr(addr))
    const results = await Promise.allSettled(Array.from({ length: n }, async () => {
      // its own side lets it open as many as the muxer allows
      const s = await conn.newStream(PROTOCOL_TASK, { signal: AbortSignal.timeout(10_000), maxOutboundStreams: 1_000 })
      this.held.push(s)
    }))
    return results.filter(r => r.status === 'fulfilled').length
  }

  /**
   * Opens `conns` connections (more than libp2p would) and `perConn` task streams on each, sends
   * nothing, and reads each stream's first frame for `readMs`: resolves with the codes answered
   */
  async streamsOverConnections (addr: string, conns: number, perConn: number, readMs: number): Promise<string[]> {
    const connections = []
    for (let i = 0; i < conns; i++) {
      connections.push(await this.libp2p.dial(multiaddr(addr), { force: true }))
      // libp2p refuses more than 5 inbound connections a second from one host
      await new Promise(resolve => setTimeout(resolve, 1_100))
    }
    const streams = await Promise.all(connections.flatMap(conn => Array.from({ length: perConn }, async () => {
      try {
        return await conn.newStream(PROTOCOL_TASK, { signal: AbortSignal.timeout(10_000), maxOutboundStreams: 1_000 })
      } catch {
        return undefined
      }
    })))
    const codes = await Promise.all(streams.map(async s => {
      if (s == null) return 'not opened'
      this.held.push(s)
      try {
        const lp = lpStream(s, { maxDataLength: 32 * 1024 * 1024 })
        const reply = JSON.parse(new TextDecoder().decode((await lp.read({ signal: AbortSignal.timeout(readMs) })).subarray()))
        return String(reply.code ?? reply.t)
      } catch {
        return 'no answer'
      }
    }))
    return codes
  }

  /** Takes tasks and fails each one with `code` (a liar: MODEL_NOT_FOUND for a model it advertised) */
  async failTasks (code: TaskErrorCode = 'MODEL_NOT_FOUND'): Promise<void> {
    await this.libp2p.handle(PROTOCOL_TASK, (stream) => {
      void (async () => {
        const lp = lpStream(stream, { maxDataLength: 32 * 1024 * 1024 })
        try {
          const frame = decodeRequesterFrame((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray())
          if (frame.t !== 'request') throw new Error('no request')
          await lp.write(encodeFrame({ t: 'accepted', position: 0, etaMs: 0 }))
          await lp.write(encodeFrame({ t: 'error', code, message: `no ${frame.task.model} here after all` }))
          await stream.close()
        } catch {
          stream.abort(new Error('hostile'))
        }
      })()
    }, { maxInboundStreams: 256 })
  }

  async stop (): Promise<void> {
    for (const s of this.held) s.abort(new Error('stop'))
    await this.libp2p.stop()
  }
}
