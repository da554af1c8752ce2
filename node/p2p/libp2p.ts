/**
 * Every `createLibp2p` option of the node, in one place, with the reason for each non-default.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT } from '@libp2p/kad-dht'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { createPeerScoreParams, createTopicScoreParams } from '@libp2p/gossipsub/score'
import { mdns } from '@libp2p/mdns'
import type { ConnectionGater, PeerDiscovery, PrivateKey, ComponentLogger } from '@libp2p/interface'
import { TOPIC_BLOCKLIST, TOPIC_PRESENCE } from '../../protocol/ids.js'
import { MAX_BEACON_BYTES } from '../../protocol/presence.js'

export type RealmServices = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  dht?: KadDHT
}

export type RealmLibp2p = Libp2p<RealmServices>

export interface Libp2pInit {
  privateKey: PrivateKey
  /** listen multiaddrs */
  listen: string[]
  /** LAN discovery with mDNS */
  mdns: boolean
  /** run the Kademlia DHT (used for the rendezvous) */
  dht: boolean
  /** keep private and loopback addresses learned from the DHT (LAN and local grids) */
  dhtPrivateAddrs: boolean
  maxConnections: number
  connectionGater?: ConnectionGater
  logger?: ComponentLogger
  /** gossip peers from one IP beyond this many are scored down; default 10 */
  colocationThreshold?: number
  /** IPs exempt from the colocation limit; default loopback */
  colocationWhitelist?: string[]
  /** application-specific peer score (job outcomes, blocklist), weighted into gossipsub's score */
  appSpecificScore?: (peerId: string) => number
}

/**
 * Presence topic scoring. Beacons come at a low, steady rate, so the mesh-delivery-rate
 * penalties (tuned for high-rate topics) are off; an invalid message costs a lot and is
 * remembered for minutes (decay per second ≈ half-life of 70 s): three bad beacons put a peer
 * past the graylist threshold (-80 by default).
 */
export function presenceTopicScoreParams () {
  return createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 3600,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 10,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: -10,
    invalidMessageDeliveriesDecay: 0.99
  })
}

/** Gossip messages larger than this are dropped before decoding (beacons and blocklists fit) */
const MAX_GOSSIP_DATA_BYTES = 4 * MAX_BEACON_BYTES

export async function createRealmLibp2p (init: Libp2pInit): Promise<RealmLibp2p> {
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  if (init.mdns) {
    // the default service tag is shared by every libp2p app on the LAN; a realm tag finds realm nodes only
    peerDiscovery.push(mdns({ serviceTag: 'rentahal-realm.local' }))
  }

  const services: Record<string, any> = {
    identify: identify(),
    ping: ping(),
    pubsub: gossipsub({
      // a lone node must still be able to publish its beacon
      allowPublishToZeroTopicPeers: true,
      // duplicates happen when a beacon is republished unchanged; not an error
      ignoreDuplicatePublishError: true,
      emitSelf: false,
      // realm messages carry their own signatures (stored and relayed with them), so gossipsub's
      // per-message signature would be a second verification of the same author; message ids
      // are then the hash of the content
      globalSignaturePolicy: 'StrictNoSign',
      // only realm topics: a peer cannot make us track arbitrary topics
      allowedTopics: [TOPIC_PRESENCE, TOPIC_BLOCKLIST],
      maxInboundDataLength: MAX_GOSSIP_DATA_BYTES,
      scoreParams: createPeerScoreParams({
        // blocklists come as rarely as beacons: the same scoring (invalid ones cost a lot)
        topics: { [TOPIC_PRESENCE]: presenceTopicScoreParams(), [TOPIC_BLOCKLIST]: presenceTopicScoreParams() },
        appSpecificScore: init.appSpecificScore ?? (() => 0),
        IPColocationFactorThreshold: init.colocationThreshold ?? 10,
        IPColocationFactorWhitelist: new Set(init.colocationWhitelist ?? ['127.0.0.1', '::1'])
      })
    })
  }
  if (init.dht) {
    services.dht = kadDHT({
      // the standard protocol id, so any node that runs the public DHT can be a rendezvous
      protocol: '/ipfs/kad/1.0.0',
      // serve queries too, so a small realm is its own DHT
      clientMode: false,
      peerInfoMapper: init.dhtPrivateAddrs ? passthroughMapper : removePrivateAddressesMapper
    })
  }

  const node = await createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: init.listen },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    connectionGater: init.connectionGater,
    connectionManager: { maxConnections: init.maxConnections },
    logger: init.logger,
    services,
    // started by the node, once everything that handles events is wired
    start: false
  })
  return node as unknown as RealmLibp2p
}
