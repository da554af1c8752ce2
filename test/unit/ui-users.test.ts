/** The web UI's user directory (node/gateway/users.ts): identities, nicknames, bans, in a real LevelDB */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { openDb, type RealmDb } from '../../node/db/index.js'
import { InvalidNicknameError, MAX_NICKNAME_CHARS, UserDirectory, checkNickname, cookieValue, userIdOf } from '../../node/gateway/users.js'
import { createEventBus, type RealmEvent } from '../../node/events/index.js'

describe('ui: user directory', () => {
  let dir: string
  let db: RealmDb

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-users-'))
    db = await openDb({ path: path.join(dir, 'db') })
  })
  afterEach(async () => {
    await db.close()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('makes a user per cookie secret; the id is a hash of the secret, never the secret', async () => {
    const users = new UserDirectory({ db })
    await users.start()
    const token = users.newToken()
    assert.match(token, /^[A-Za-z0-9_-]{22}$/)
    const user = await users.ensure(token)
    assert.ok(user != null)
    assert.equal(user.id, userIdOf(token))
    assert.notEqual(user.id, token)
    assert.equal(users.byToken(token)?.id, user.id)
    assert.equal((await users.ensure(token))?.id, user.id, 'the same secret is the same user')
    assert.notEqual((await users.ensure(users.newToken()))?.id, user.id)
    assert.equal(await users.ensure('short'), undefined, 'a malformed secret is no one')
    assert.equal(users.byToken(undefined), undefined)
    assert.equal(users.size, 2)
  })

  it('keeps users, nicknames and bans across a restart', async () => {
    const events = createEventBus()
    const seen: RealmEvent[] = []
    events.subscribe(e => { seen.push(e) })
    const users = new UserDirectory({ db, events })
    await users.start()
    const token = users.newToken()
    const user = (await users.ensure(token))!
    await users.setNickname(user.id, '  <b>Ann</b>  ')
    const bans: Array<[string, boolean]> = []
    const off = users.onBan((id, banned) => { bans.push([id, banned]) })
    assert.equal(await users.ban(user.id), true)
    assert.equal(users.isBanned(user.id), true)
    assert.equal(await users.ban('nobody-nobody-nobody12'), false)
    assert.deepEqual(bans, [[user.id, true]])
    off()

    const again = new UserDirectory({ db })
    await again.start()
    const back = again.byToken(token)
    assert.equal(back?.nickname, '<b>Ann</b>')
    assert.equal(again.isBanned(user.id), true)
    assert.ok(back?.bannedAt)
    assert.equal(await again.unban(user.id), true)
    assert.equal(again.isBanned(user.id), false)
    assert.deepEqual(again.list().map(u => u.id), [user.id])
    assert.deepEqual(seen.map(e => e.type), ['user.created', 'user.banned'])
  })

  it('refuses new identities beyond its bound', async () => {
    const users = new UserDirectory({ db, maxUsers: 2 })
    await users.start()
    assert.ok(await users.ensure(users.newToken()))
    const second = users.newToken()
    assert.ok(await users.ensure(second))
    assert.equal(await users.ensure(users.newToken()), undefined)
    assert.ok(await users.ensure(second), 'a known user is still found')
  })

  it('checks nicknames: trimmed, 1–32 characters, no control or bidi-override characters', () => {
    assert.equal(checkNickname('  Ann '), 'Ann')
    assert.equal(checkNickname('😀'.repeat(MAX_NICKNAME_CHARS)), '😀'.repeat(MAX_NICKNAME_CHARS))
    assert.equal(checkNickname('<script>alert(1)</script>'), '<script>alert(1)</script>', 'HTML is just text (the UI never renders it)')
    for (const bad of ['', '   ', 'x'.repeat(MAX_NICKNAME_CHARS + 1), 'a\nb', 'a\u0000', 'evil\u202Egnp.exe', 42, null]) {
      assert.throws(() => checkNickname(bad), (err: Error) => err instanceof InvalidNicknameError && (err as InvalidNicknameError).code === 'INVALID_NICKNAME', JSON.stringify(bad))
    }
  })

  it('reads one cookie from a Cookie header', () => {
    assert.equal(cookieValue('a=1; rah_user=XYZ; b=2', 'rah_user'), 'XYZ')
    assert.equal(cookieValue('rah_users=1', 'rah_user'), undefined)
    assert.equal(cookieValue(undefined, 'rah_user'), undefined)
  })
})
