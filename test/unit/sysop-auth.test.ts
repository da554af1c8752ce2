/**
 * Sysop authentication (node/sysop/auth.ts) with an injected clock and a real token file:
 * comparisons, per-address rate limiting, sessions and their cookie, token rotation.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { SysopAuth, credentialHash, credentialMatches, type AuthRequest } from '../../node/sysop/auth.js'
import { loadOrCreateSysopToken, newSysopToken } from '../../node/sysop-token.js'
import { writeFileAtomic } from '../../node/fs-util.js'
import { createEventBus, type RealmEvent } from '../../node/events/index.js'

function req (opts: { token?: string, cookie?: string, address?: string } = {}): AuthRequest {
  const headers: Record<string, string> = {}
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  if (opts.cookie !== undefined) headers.cookie = opts.cookie
  return { headers, socket: { remoteAddress: opts.address ?? '192.0.2.1' } }
}

describe('sysop auth', () => {
  let dir: string
  let file: string
  let token: string
  let now: number
  let auth: SysopAuth
  let events: RealmEvent[]

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-auth-'))
    const t = await loadOrCreateSysopToken(dir)
    file = t.path
    token = t.token
    now = Date.parse('2030-01-01T00:00:00Z')
    events = []
    const bus = createEventBus()
    bus.subscribe(e => { events.push(e) })
    auth = new SysopAuth({ tokenFile: file, now: () => now, events: bus })
    auth.start()
  })

  afterEach(async () => {
    auth.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('compares credentials by their hashes: any length, no throw, only the right one matches', () => {
    const kept = credentialHash(token)
    assert.equal(credentialMatches(token, kept), true)
    assert.equal(credentialMatches(token.slice(0, -1), kept), false)
    assert.equal(credentialMatches(token + 'x', kept), false, 'a longer one (timingSafeEqual alone would throw on the length)')
    assert.equal(credentialMatches('', kept), false)
    assert.equal(credentialMatches(token, undefined), false, 'no token kept: nothing matches')
  })

  it('accepts the bearer token; refuses a wrong or missing one with UNAUTHORIZED', () => {
    assert.equal(auth.authenticate(req({ token })), 'token')
    assert.throws(() => auth.authenticate(req({ token: newSysopToken() })), { name: 'UnauthorizedError', code: 'UNAUTHORIZED' })
    assert.throws(() => auth.authenticate(req()), { name: 'UnauthorizedError', code: 'UNAUTHORIZED' })
    assert.throws(() => auth.authenticate({ headers: { authorization: `Basic ${token}` }, socket: {} }), { code: 'UNAUTHORIZED' })
    assert.equal(auth.isSysopRequest(req({ token })), true)
    assert.equal(auth.isSysopRequest(req({ token: 'nope' })), false)
  })

  it('locks an address out after 5 failures in a minute, even for the right token, then lets it back', () => {
    for (let i = 0; i < 5; i++) {
      now += 1000
      assert.throws(() => auth.authenticate(req({ token: 'wrong' + String(i) })), { code: 'UNAUTHORIZED' })
    }
    assert.throws(() => auth.authenticate(req({ token })), (err: any) => {
      assert.equal(err.name, 'TooManyAttemptsError')
      assert.equal(err.code, 'TOO_MANY_ATTEMPTS')
      assert.ok(err.retryAfterS >= 55 && err.retryAfterS <= 60, String(err.retryAfterS))
      return true
    })
    assert.throws(() => auth.login(req(), token), { code: 'TOO_MANY_ATTEMPTS' })
    assert.equal(auth.isSysopRequest(req({ token })), false, 'the events socket is refused too')
    // another address is not affected; missing credentials never count
    assert.equal(auth.authenticate(req({ token, address: '192.0.2.2' })), 'token')
    for (let i = 0; i < 10; i++) assert.throws(() => auth.authenticate(req({ address: '192.0.2.3' })), { code: 'UNAUTHORIZED' })
    assert.equal(auth.authenticate(req({ token, address: '192.0.2.3' })), 'token')
    // an IPv4 client on a dual-stack socket is the same address
    assert.throws(() => auth.authenticate(req({ token, address: '::ffff:192.0.2.1' })), { code: 'TOO_MANY_ATTEMPTS' })
    // the window slides past the first failure: one more try is allowed
    now += 56_001
    assert.equal(auth.authenticate(req({ token })), 'token')
    assert.ok(events.some(e => e.type === 'sysop.locked_out' && e.address === '192.0.2.1'))
    assert.ok(!JSON.stringify(events).includes(token), 'the token is never in an event')
  })

  it('exchanges the token for a session: cookie HttpOnly, SameSite=Strict, Path=/, Secure over TLS; it expires and logs out', () => {
    assert.throws(() => auth.login(req(), 'wrong'), { code: 'UNAUTHORIZED' })
    const session = auth.login(req(), token)
    const cookie = auth.sessionCookie(session, false)
    assert.match(cookie, /^realm_sysop=[A-Za-z0-9_-]{43}; /)
    const attrs = cookie.split('; ').slice(1)
    assert.ok(attrs.includes('HttpOnly'))
    assert.ok(attrs.includes('SameSite=Strict'))
    assert.ok(attrs.includes('Path=/'))
    assert.ok(!attrs.includes('Secure'))
    assert.ok(auth.sessionCookie(session, true).split('; ').includes('Secure'))
    const pair = cookie.split(';')[0]
    assert.equal(auth.authenticate(req({ cookie: `other=1; ${pair}` })), 'session')
    assert.throws(() => auth.authenticate(req({ cookie: 'realm_sysop=made-up' })), { code: 'UNAUTHORIZED' })
    assert.equal(auth.isSysopRequest(req({ cookie: pair })), true)
    // a second session, logged out
    const second = auth.login(req(), token).id
    assert.equal(auth.logout(req({ cookie: `realm_sysop=${second}` })), true)
    assert.throws(() => auth.authenticate(req({ cookie: `realm_sysop=${second}` })), { code: 'UNAUTHORIZED' })
    assert.equal(auth.authenticate(req({ cookie: pair })), 'session', 'the first lives on')
    // sessions expire (12 h)
    now += 12 * 3600 * 1000
    assert.throws(() => auth.authenticate(req({ cookie: pair })), { code: 'UNAUTHORIZED' })
    assert.equal(auth.sessionCount, 0)
  })

  it('takes a rotated token at once: the old one fails, sessions end', async () => {
    const session = auth.login(req(), token)
    const pair = `realm_sysop=${session.id}`
    const fresh = newSysopToken()
    await writeFileAtomic(file, fresh + '\n', 0o600)
    assert.throws(() => auth.authenticate(req({ token })), { code: 'UNAUTHORIZED' })
    assert.equal(auth.authenticate(req({ token: fresh })), 'token')
    assert.throws(() => auth.authenticate(req({ cookie: pair })), { code: 'UNAUTHORIZED' })
    assert.ok(events.some(e => e.type === 'sysop.token_changed'))
  })

  it('fails closed when the token file is gone or malformed', async () => {
    await fs.writeFile(file, 'not a token\n')
    assert.throws(() => auth.authenticate(req({ token: 'not a token' })), { code: 'UNAUTHORIZED' })
    assert.throws(() => auth.authenticate(req({ token })), { code: 'UNAUTHORIZED' })
    await fs.rm(file)
    assert.throws(() => auth.authenticate(req({ token })), { code: 'UNAUTHORIZED' })
  })
})
