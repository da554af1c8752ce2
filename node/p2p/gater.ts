/**
 * The connection gater: libp2p asks it before every dial and at each step of every connection's
 * upgrade, so a blocked peer or address is refused inbound and outbound before any protocol runs.
 * By address (the IP of the remote multiaddr) as early as possible — the raw inbound connection,
 * the dialled multiaddr — and by peer id as soon as the encryption handshake names the peer.
 */
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface RealmGaterInit {
  /** is this peer blocked */
  isPeerBlocked: (peerId: string) => boolean
  /** is this IP address inside a blocked range */
  isAddressBlocked: (ip: string) => boolean
  /**
   * Told when a connection from or to a blocked address named its peer, so that peer is known
   * as blocked on every path (its beacons relayed by others, its dials from another address).
   * Default: nothing
   */
  onAddressBlockedPeer?: (peerId: string, ip: string) => void
  /** told about every refusal (for the trace and tests); default: nothing */
  onDenied?: (what: GaterDenial) => void
}

export interface GaterDenial {
  /** the gater hook that refused */
  hook: keyof ConnectionGater
  peerId?: string
  ip?: string
}

/** The IP address a multiaddr starts with (`/ip4/…`, `/ip6/…`), if it has one */
export function ipOfMultiaddr (ma: Multiaddr | undefined): string | undefined {
  if (ma == null) return undefined
  try {
    for (const c of ma.getComponents()) {
      if (c.name === 'ip4' || c.name === 'ip6') return c.value
      // an address behind a relay: the IP is the relay's, not the peer's
      if (c.name === 'p2p-circuit') return undefined
    }
  } catch {}
  return undefined
}

/** A libp2p ConnectionGater over the node's blocklist */
export function createRealmGater (init: RealmGaterInit): ConnectionGater {
  const deny = (hook: keyof ConnectionGater, peerId?: string, ip?: string): true => {
    init.onDenied?.({ hook, peerId, ip })
    return true
  }
  const addressBlocked = (ip: string | undefined): boolean => ip !== undefined && init.isAddressBlocked(ip)

  /** After the handshake: refuse by peer id, or by address (and remember the peer behind it) */
  const checkEncrypted = (hook: keyof ConnectionGater, peerId: PeerId, maConn: MultiaddrConnection): boolean => {
    const id = peerId.toString()
    if (init.isPeerBlocked(id)) return deny(hook, id)
    const ip = ipOfMultiaddr(maConn.remoteAddr)
    if (ip !== undefined && addressBlocked(ip)) {
      init.onAddressBlockedPeer?.(id, ip)
      return deny(hook, id, ip)
    }
    return false
  }

  return {
    denyDialPeer: (peerId: PeerId) => {
      const id = peerId.toString()
      return init.isPeerBlocked(id) ? deny('denyDialPeer', id) : false
    },
    denyDialMultiaddr: (ma: Multiaddr) => {
      const ip = ipOfMultiaddr(ma)
      if (addressBlocked(ip)) return deny('denyDialMultiaddr', undefined, ip)
      const id = ma.getComponents().findLast(c => c.name === 'p2p')?.value
      return id !== undefined && init.isPeerBlocked(id) ? deny('denyDialMultiaddr', id) : false
    },
    denyInboundConnection: (maConn: MultiaddrConnection) => {
      const ip = ipOfMultiaddr(maConn.remoteAddr)
      return addressBlocked(ip) ? deny('denyInboundConnection', undefined, ip) : false
    },
    denyOutboundConnection: (peerId: PeerId, maConn: MultiaddrConnection) => checkEncrypted('denyOutboundConnection', peerId, maConn),
    denyInboundEncryptedConnection: (peerId: PeerId, maConn: MultiaddrConnection) => checkEncrypted('denyInboundEncryptedConnection', peerId, maConn),
    denyOutboundEncryptedConnection: (peerId: PeerId, maConn: MultiaddrConnection) => checkEncrypted('denyOutboundEncryptedConnection', peerId, maConn),
    denyInboundUpgradedConnection: (peerId: PeerId, maConn: MultiaddrConnection) => checkEncrypted('denyInboundUpgradedConnection', peerId, maConn),
    denyOutboundUpgradedConnection: (peerId: PeerId, maConn: MultiaddrConnection) => checkEncrypted('denyOutboundUpgradedConnection', peerId, maConn),
    denyInboundRelayReservation: (source: PeerId) => {
      const id = source.toString()
      return init.isPeerBlocked(id) ? deny('denyInboundRelayReservation', id) : false
    },
    denyOutboundRelayedConnection: (source: PeerId, destination: PeerId) => {
      for (const p of [source, destination]) {
        const id = p.toString()
        if (init.isPeerBlocked(id)) return deny('denyOutboundRelayedConnection', id)
      }
      return false
    },
    denyInboundRelayedConnection: (relay: PeerId, remotePeer: PeerId) => {
      for (const p of [relay, remotePeer]) {
        const id = p.toString()
        if (init.isPeerBlocked(id)) return deny('denyInboundRelayedConnection', id)
      }
      return false
    }
  }
}
