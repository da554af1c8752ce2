/**
 * Addresses and ranges (IPv4, IPv6, edge masks, invalid input) and the connection gater that
 * uses them, handed fake multiaddr connections.
 */
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { cidrContains, formatCidr, formatIp, looksLikeCidr, parseCidr, parseIp } from '../../node/sysop/cidr.js'
import { createRealmGater, ipOfMultiaddr } from '../../node/p2p/gater.js'

function contains (range: string, ip: string): boolean {
  const addr = parseIp(ip)
  assert.ok(addr != null, `${ip} parses`)
  return cidrContains(parseCidr(range), addr)
}

function invalid (text: string): void {
  assert.throws(() => parseCidr(text), (err: any) => err.name === 'SysopInputError' && err.code === 'INVALID_CIDR', text)
}

describe('blocklist: IP addresses and CIDR ranges', () => {
  it('parses IPv4 and IPv6 addresses, and formats them canonically', () => {
    assert.equal(formatIp(parseIp('10.1.2.3')!), '10.1.2.3')
    assert.equal(formatIp(parseIp('0.0.0.0')!), '0.0.0.0')
    assert.equal(formatIp(parseIp('255.255.255.255')!), '255.255.255.255')
    assert.equal(formatIp(parseIp('2001:DB8:0:0:0:0:0:1')!), '2001:db8::1')
    assert.equal(formatIp(parseIp('::')!), '::')
    assert.equal(formatIp(parseIp('::1')!), '::1')
    assert.equal(formatIp(parseIp('1::')!), '1::')
    assert.equal(formatIp(parseIp('1:0:0:2:0:0:0:3')!), '1:0:0:2::3', 'the longest zero run is compressed')
    assert.equal(formatIp(parseIp('1:2:3:4:5:6:7:8')!), '1:2:3:4:5:6:7:8')
    assert.equal(formatIp(parseIp('fe80::1%eth0')!), 'fe80::1', 'a zone id is dropped')
    assert.equal(formatIp(parseIp('[2001:db8::5]')!), '2001:db8::5')
    // IPv4-mapped IPv6 is the IPv4 address
    const mapped = parseIp('::ffff:192.0.2.7')!
    assert.equal(mapped.family, 4)
    assert.equal(formatIp(mapped), '192.0.2.7')
    assert.equal(parseIp('::ffff:c000:0207')!.family, 4)
  })

  it('refuses what is not an address', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', '1.2.3.4 ', 'a.b.c.d', '1::2::3', ':::', '1:2:3:4:5:6:7:8:9',
      '12345::', 'g::1', '1:2:3:4:5:6:7', ':1:2:3:4:5:6:7', '::1.2.3', '::256.0.0.1', 'x'.repeat(100), 'localhost']) {
      assert.equal(parseIp(bad), undefined, JSON.stringify(bad))
    }
  })

  it('matches IPv4 ranges, edge masks included', () => {
    assert.ok(contains('10.0.0.0/8', '10.255.1.2'))
    assert.ok(!contains('10.0.0.0/8', '11.0.0.0'))
    assert.ok(contains('127.0.0.2/32', '127.0.0.2'))
    assert.ok(!contains('127.0.0.2/32', '127.0.0.3'))
    assert.ok(contains('0.0.0.0/0', '203.0.113.9'), '/0 is everything')
    assert.ok(!contains('0.0.0.0/0', '::1'), 'but only of its family')
    assert.ok(contains('192.168.1.128/25', '192.168.1.255'))
    assert.ok(!contains('192.168.1.128/25', '192.168.1.127'))
    assert.ok(contains('128.0.0.0/1', '200.0.0.1'))
    assert.ok(!contains('128.0.0.0/1', '127.255.255.255'))
    assert.ok(contains('10.0.0.0/31', '10.0.0.1'))
    assert.ok(!contains('10.0.0.0/31', '10.0.0.2'))
    // an IPv4-mapped IPv6 client is matched as IPv4
    assert.ok(contains('127.0.0.0/8', '::ffff:127.0.0.1'))
  })

  it('matches IPv6 ranges, edge masks included', () => {
    assert.ok(contains('2001:db8::/32', '2001:db8:ffff::1'))
    assert.ok(!contains('2001:db8::/32', '2001:db9::1'))
    assert.ok(contains('::/0', '2001:db8::1'))
    assert.ok(!contains('::/0', '10.0.0.1'))
    assert.ok(contains('::1/128', '::1'))
    assert.ok(!contains('::1/128', '::2'))
    assert.ok(contains('fe80::/10', 'febf::1'))
    assert.ok(!contains('fe80::/10', 'fec0::1'))
    assert.ok(contains('2001:db8::/127', '2001:db8::1'))
    assert.ok(!contains('2001:db8::/127', '2001:db8::2'))
    assert.ok(contains('::ffff:10.0.0.0/104', '10.9.9.9'), 'a mapped range is the IPv4 range')
  })

  it('canonicalises ranges (host bits cleared, a bare address is one host)', () => {
    assert.equal(formatCidr(parseCidr('10.1.2.3/8')), '10.0.0.0/8')
    assert.equal(formatCidr(parseCidr('127.0.0.2')), '127.0.0.2/32')
    assert.equal(formatCidr(parseCidr('2001:DB8::1/32')), '2001:db8::/32')
    assert.equal(formatCidr(parseCidr('::1')), '::1/128')
    assert.equal(formatCidr(parseCidr('0.0.0.0/0')), '0.0.0.0/0')
    assert.equal(formatCidr(parseCidr('::ffff:10.1.0.0/112')), '10.1.0.0/16')
  })

  it('refuses what is not a range, with INVALID_CIDR', () => {
    for (const bad of ['', '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/08', '10.0.0.0/8/8', '/8', '10.0.0/8',
      'fe80::1%eth0/64', '[::1]/128', '::ffff:10.0.0.0/95', '10.0.0.0/ 8', 'x'.repeat(80)]) {
      invalid(bad)
    }
  })

  it('tells ranges from peer ids by their characters', () => {
    assert.ok(looksLikeCidr('10.0.0.0/8'))
    assert.ok(looksLikeCidr('::1'))
    assert.ok(!looksLikeCidr('12D3KooWGRUVh6VLqyhxUBUZMVHiLGeNbDwVQVVqBtwPSbsYVhYu'))
  })
})

describe('blocklist: the connection gater', () => {
  let blockedPeer: string
  let goodPeer: string
  const blockedRange = parseCidr('127.0.0.2/32')
  const remembered: Array<[string, string]> = []
  let gater: ReturnType<typeof createRealmGater>

  before(async () => {
    blockedPeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    goodPeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    gater = createRealmGater({
      isPeerBlocked: (id) => id === blockedPeer,
      isAddressBlocked: (ip) => { const a = parseIp(ip); return a != null && cidrContains(blockedRange, a) },
      onAddressBlockedPeer: (id, ip) => { remembered.push([id, ip]) }
    })
  })

  const conn = (addr: string): any => ({ remoteAddr: multiaddr(addr) })

  it('reads the IP of a multiaddr (none behind a relay or for a DNS name)', () => {
    assert.equal(ipOfMultiaddr(multiaddr('/ip4/127.0.0.2/tcp/1')), '127.0.0.2')
    assert.equal(ipOfMultiaddr(multiaddr('/ip6/::1/tcp/1/ws')), '::1')
    assert.equal(ipOfMultiaddr(multiaddr('/dns4/example.com/tcp/1')), undefined)
  })

  it('refuses blocked peers and addresses at every hook, and lets others through', async () => {
    const bad = peerIdFromString(blockedPeer)
    const good = peerIdFromString(goodPeer)
    assert.equal(await gater.denyDialPeer!(bad), true)
    assert.equal(await gater.denyDialPeer!(good), false)
    assert.equal(await gater.denyDialMultiaddr!(multiaddr('/ip4/127.0.0.2/tcp/9000')), true)
    assert.equal(await gater.denyDialMultiaddr!(multiaddr(`/ip4/127.0.0.1/tcp/9000/p2p/${blockedPeer}`)), true)
    assert.equal(await gater.denyDialMultiaddr!(multiaddr('/ip4/127.0.0.3/tcp/9000')), false)
    assert.equal(await gater.denyInboundConnection!(conn('/ip4/127.0.0.2/tcp/5555')), true)
    assert.equal(await gater.denyInboundConnection!(conn('/ip4/127.0.0.1/tcp/5555')), false)
    assert.equal(await gater.denyInboundEncryptedConnection!(bad, conn('/ip4/127.0.0.1/tcp/5555')), true)
    assert.equal(await gater.denyOutboundEncryptedConnection!(bad, conn('/ip4/127.0.0.1/tcp/5555')), true)
    assert.equal(await gater.denyInboundUpgradedConnection!(bad, conn('/ip4/127.0.0.1/tcp/5555')), true)
    assert.equal(await gater.denyInboundEncryptedConnection!(good, conn('/ip4/127.0.0.1/tcp/5555')), false)
    assert.equal(await gater.denyInboundRelayedConnection!(good, bad), true)
    assert.equal(await gater.denyOutboundRelayedConnection!(bad, good), true)
    assert.equal(await gater.denyInboundRelayReservation!(good), false)
  })

  it('remembers the peer it met at a blocked address', async () => {
    remembered.length = 0
    const good = peerIdFromString(goodPeer)
    assert.equal(await gater.denyInboundEncryptedConnection!(good, conn('/ip4/127.0.0.2/tcp/5555')), true)
    assert.deepEqual(remembered, [[goodPeer, '127.0.0.2']])
  })
})
