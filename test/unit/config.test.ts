import assert from 'node:assert/strict'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { parse } from 'smol-toml'
import {
  CONFIG_ENV_VARS, CONFIG_SPEC, ConfigError, MAX_CONFIG_BYTES, defaultConfig, loadConfig,
  parseHostPort, renderConfig, repairConfigText, resolveConfig, resolveDataDir, settingEntries,
  type RealmConfig
} from '../../node/config/index.js'

const PEER_A = '12D3KooWAbCdEfGhIjKlMnOpQrStUvWxYz1234567890abcd'
const PEER_B = '12D3KooWBbCdEfGhIjKlMnOpQrStUvWxYz1234567890abcd'
const PEER_C = '12D3KooWCbCdEfGhIjKlMnOpQrStUvWxYz1234567890abcd'
const BOOT_A = `/ip4/10.0.0.1/tcp/9000/p2p/${PEER_A}`
const BOOT_B = `/ip4/10.0.0.2/tcp/9000/p2p/${PEER_B}`
const BOOT_C = `/ip4/10.0.0.3/tcp/9000/p2p/${PEER_C}`

/** Every setting's TOML key as `section.key` */
const ALL_KEYS = settingEntries().map(([section, key]) => `${section}.${key}`)

function withConfig (edit: (config: RealmConfig) => void): RealmConfig {
  const config = defaultConfig()
  edit(config)
  return config
}

function findRepair (repairs: string[], ...parts: string[]): string {
  const found = repairs.find(line => parts.every(part => line.includes(part)))
  assert.ok(found !== undefined, `no repair message with ${parts.join(' + ')} in:\n${repairs.join('\n')}`)
  return found
}

describe('config', () => {
  let dir: string
  let file: string

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'realm-config-'))
    file = path.join(dir, 'config.toml')
  })

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true })
  })

  describe('spec', () => {
    it('every default passes its own schema', () => {
      for (const [section, key, spec] of settingEntries()) {
        assert.ok(spec.schema.safeParse(spec.default).success, `${section}.${key}`)
        assert.ok(spec.comment.length > 0, `${section}.${key} has a comment`)
      }
    })

    it('defaultConfig returns the documented defaults as fresh copies', () => {
      const a = defaultConfig()
      assert.equal(a.http.listen, '127.0.0.1:5000')
      assert.deepEqual(a.p2p.listen, ['/ip4/0.0.0.0/tcp/9000', '/ip4/0.0.0.0/tcp/9001/ws'])
      assert.deepEqual(a.p2p.bootstrap, [])
      assert.equal(a.presence.interval_ms, 2000)
      assert.equal(a.queue.per_requester, 16)
      assert.equal(a.tasks.run_on, 'grid')
      assert.equal(a.trace.max_bytes, 10485760)
      a.p2p.listen.push('/ip4/1.2.3.4/tcp/1')
      assert.equal(defaultConfig().p2p.listen.length, 2)
      assert.equal(CONFIG_SPEC.p2p.listen.default.length, 2)
    })
  })

  describe('loadConfig', () => {
    it('writes the defaults on first start, and they parse back equal', async () => {
      const loaded = await loadConfig(dir)
      assert.equal(loaded.created, true)
      assert.deepEqual(loaded.repairs, [])
      assert.equal(loaded.path, file)
      assert.deepEqual(loaded.config, defaultConfig())
      const text = await fs.readFile(file, 'utf8')
      assert.deepEqual(JSON.parse(JSON.stringify(parse(text))), JSON.parse(JSON.stringify(defaultConfig())))
      assert.match(text, /flag > environment variable \(REALM_\*\) > this file > default/)

      const again = await loadConfig(dir)
      assert.equal(again.created, false)
      assert.deepEqual(again.repairs, [])
      assert.deepEqual(again.config, defaultConfig())
      assert.equal(await fs.readFile(file, 'utf8'), text)
      assert.deepEqual(await fs.readdir(dir), ['config.toml'])
    })

    it('creates a missing data dir', async () => {
      const nested = path.join(dir, 'a', 'b')
      const loaded = await loadConfig(nested)
      assert.equal(loaded.created, true)
      assert.ok((await fs.stat(path.join(nested, 'config.toml'))).isFile())
    })

    it('writes a comment line above every setting', async () => {
      await loadConfig(dir)
      const lines = (await fs.readFile(file, 'utf8')).split('\n')
      let section = ''
      const seen: string[] = []
      lines.forEach((line, i) => {
        const header = /^\[(\w+)\]$/.exec(line)
        if (header !== null) section = header[1]
        const setting = /^(\w+) = /.exec(line)
        if (setting === null) return
        seen.push(`${section}.${setting[1]}`)
        assert.match(lines[i - 1], /^# \S/, `comment above ${section}.${setting[1]}`)
      })
      assert.deepEqual(seen, ALL_KEYS)
    })

    it('leaves a complete valid file alone, comments and all', async () => {
      const text = renderConfig(withConfig(c => { c.node.name = 'alice'; c.p2p.mdns = false })) + '# my own note\n'
      await fs.writeFile(file, text)
      const loaded = await loadConfig(dir)
      assert.deepEqual(loaded.repairs, [])
      assert.equal(loaded.config.node.name, 'alice')
      assert.equal(loaded.config.p2p.mdns, false)
      assert.equal(await fs.readFile(file, 'utf8'), text)
      assert.deepEqual(await fs.readdir(dir), ['config.toml'])
    })

    it('completes a partial file, keeping its values', async () => {
      const original = '[p2p]\nmdns = false\nbootstrap = ["' + BOOT_A + '"]\n\n[presence]\ninterval_ms = 500\n'
      await fs.writeFile(file, original)
      const loaded = await loadConfig(dir)
      assert.equal(loaded.created, false)
      assert.equal(loaded.config.p2p.mdns, false)
      assert.deepEqual(loaded.config.p2p.bootstrap, [BOOT_A])
      assert.equal(loaded.config.presence.interval_ms, 500)
      assert.equal(loaded.config.http.listen, '127.0.0.1:5000')
      assert.equal(loaded.repairs.length, 1)
      const message = findRepair(loaded.repairs, 'added missing settings', 'node.name', 'http.listen')
      assert.ok(!message.includes('p2p.mdns'), message)
      assert.ok(message.length < 300, 'the missing-keys message stays short')

      const rewritten = parse(await fs.readFile(file, 'utf8')) as any
      assert.equal(rewritten.p2p.mdns, false)
      assert.equal(rewritten.presence.interval_ms, 500)
      assert.deepEqual(rewritten.p2p.bootstrap, [BOOT_A])
      assert.equal(rewritten.trace.max_files, 5)
      assert.equal(await fs.readFile(file + '.broken', 'utf8'), original)

      const again = await loadConfig(dir)
      assert.deepEqual(again.repairs, [])
      assert.deepEqual(again.config, loaded.config)
    })

    it('recovers an unparseable file line by line, keeping valid values', async () => {
      const original = [
        'this is not toml at all',
        '[node]',
        'name = "bob"',
        '[p2p',
        'mdns = false',
        'max_connections = 50 junk junk',
        'listen = [',
        '  "/ip4/127.0.0.1/tcp/4001",',
        '  "/ip4/127.0.0.1/tcp/4002/ws",',
        ']',
        '}}}{{{',
        '[presence]',
        'interval_ms = 750',
        'interval_ms = 800',
        '[workers]',
        'list = ["ollama=http://127.0.0.1:11434"]',
        'concurrency = "lots"',
        'tasks.run_on = "local"',
        ''
      ].join('\n')
      await fs.writeFile(file, original)
      const loaded = await loadConfig(dir)
      const c = loaded.config
      assert.equal(c.node.name, 'bob')
      assert.equal(c.p2p.mdns, false)
      assert.deepEqual(c.p2p.listen, ['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/tcp/4002/ws'])
      assert.equal(c.p2p.max_connections, 300)
      assert.equal(c.presence.interval_ms, 800)
      assert.deepEqual(c.workers.list, ['ollama=http://127.0.0.1:11434'])
      assert.equal(c.workers.concurrency, 1)
      assert.equal(c.tasks.run_on, 'grid', 'a dotted key under [workers] is workers.tasks, not tasks.run_on')

      findRepair(loaded.repairs, 'did not parse', 'line 1')
      findRepair(loaded.repairs, 'workers.concurrency', '"lots"', 'default 1')
      findRepair(loaded.repairs, 'unknown setting workers.tasks')
      findRepair(loaded.repairs, 'unreadable line')

      const rewritten = parse(await fs.readFile(file, 'utf8')) as any
      assert.equal(rewritten.node.name, 'bob')
      assert.equal(rewritten.presence.interval_ms, 800)
      assert.deepEqual(rewritten.p2p.listen, c.p2p.listen)
      assert.equal(await fs.readFile(file + '.broken', 'utf8'), original)
    })

    it('reads dotted keys at the top of an unparseable file', async () => {
      await fs.writeFile(file, 'p2p.mdns = false\nbroken ===\n')
      const { config } = await loadConfig(dir)
      assert.equal(config.p2p.mdns, false)
    })

    it('replaces wrong types and out-of-range values with defaults, one message each', async () => {
      await fs.writeFile(file, [
        '[node]',
        `name = "${'x'.repeat(100)}"`,
        '[http]',
        'listen = "localhost:99999"',
        '[p2p]',
        'mdns = "yes"',
        'max_connections = 0',
        'listen = "not-a-multiaddr"',
        '[presence]',
        'interval_ms = 99',
        'expire_intervals = 2.5',
        '[workers]',
        'concurrency = 65',
        '[tasks]',
        'run_on = "anywhere"',
        '[queue]',
        'per_requester = 15',
        '[trace]',
        'max_bytes = 1023',
        'max_files = 99999999999999999999',
        'keep_prompts = 1',
        ''
      ].join('\n'))
      const { config, repairs } = await loadConfig(dir)
      assert.deepEqual(config, withConfig(() => {}))
      findRepair(repairs, 'node.name', `"${'x'.repeat(20)}`, '…', 'default ""')
      findRepair(repairs, 'http.listen', '"localhost:99999"', 'default "127.0.0.1:5000"')
      findRepair(repairs, 'p2p.mdns', '"yes"', 'default true')
      findRepair(repairs, 'p2p.max_connections', '= 0', 'default 300')
      findRepair(repairs, 'p2p.listen', '"not-a-multiaddr"', 'default ["/ip4/0.0.0.0/tcp/9000"')
      findRepair(repairs, 'presence.interval_ms', '= 99', 'default 2000')
      findRepair(repairs, 'presence.expire_intervals', '= 2.5', 'default 3')
      findRepair(repairs, 'workers.concurrency', '= 65', 'default 1')
      findRepair(repairs, 'tasks.run_on', '"anywhere"', 'default "grid"')
      findRepair(repairs, 'queue.per_requester', '= 15', 'default 16')
      findRepair(repairs, 'trace.max_bytes', '= 1023', 'default 10485760')
      findRepair(repairs, 'trace.max_files', '99999999999999999999', 'default 5')
      findRepair(repairs, 'trace.keep_prompts', '= 1', 'default false')
      for (const line of repairs) assert.ok(line.length < 400, `short: ${line}`)
    })

    it('keeps the valid entries of a list with bad ones', async () => {
      await fs.writeFile(file, `[p2p]\nbootstrap = ["${BOOT_A}", 42, "/ip4/1.2.3.4/tcp/1"]\n[sysop]\nfollow = "${PEER_B}"\n`)
      const { config, repairs } = await loadConfig(dir)
      assert.deepEqual(config.p2p.bootstrap, [BOOT_A])
      assert.deepEqual(config.sysop.follow, [PEER_B])
      findRepair(repairs, 'p2p.bootstrap', 'dropped 2 invalid entries', '42', 'kept 1')
      findRepair(repairs, 'sysop.follow', 'list of one')
    })

    it('drops unknown sections and keys', async () => {
      const rendered = renderConfig(withConfig(c => { c.queue.max_size = 99 }))
      await fs.writeFile(file, 'toplevel = 1\n' + rendered.replace('max_size = 99', 'max_size = 99\nbogus = true') +
        '\n[economy_future]\nprice = 3\nmode = "x"\n\n[mystery]\n')
      const { config, repairs } = await loadConfig(dir)
      assert.equal(config.queue.max_size, 99)
      findRepair(repairs, 'unknown section [economy_future]', '2 settings')
      findRepair(repairs, 'unknown section [mystery]')
      findRepair(repairs, 'unknown setting queue.bogus')
      findRepair(repairs, 'unknown setting toplevel')
      assert.equal(repairs.length, 4)
      const rewritten = parse(await fs.readFile(file, 'utf8')) as any
      assert.equal(rewritten.economy_future, undefined)
      assert.equal(rewritten.mystery, undefined)
      assert.equal(rewritten.toplevel, undefined)
      assert.equal(rewritten.queue.bogus, undefined)
      assert.equal(rewritten.queue.max_size, 99)
    })

    it('survives binary garbage, keeping a valid line inside it', async () => {
      const bytes = Buffer.alloc(4096)
      let seed = 7
      for (let i = 0; i < bytes.length; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff
        bytes[i] = seed & 0xff
      }
      bytes[100] = 0
      const original = Buffer.concat([bytes, Buffer.from('\n[trace]\nretention_days = 30\n'), bytes])
      await fs.writeFile(file, original)
      const { config, repairs } = await loadConfig(dir)
      assert.equal(config.trace.retention_days, 30)
      assert.equal(config.http.listen, '127.0.0.1:5000')
      findRepair(repairs, 'did not parse')
      assert.deepEqual(await fs.readFile(file + '.broken'), original)
      assert.equal((parse(await fs.readFile(file, 'utf8')) as any).trace.retention_days, 30)
    })

    it('rewrites an empty file with the defaults', async () => {
      await fs.writeFile(file, '')
      const { config, repairs, created } = await loadConfig(dir)
      assert.equal(created, false)
      assert.deepEqual(config, defaultConfig())
      assert.deepEqual(repairs, ['no settings found; wrote every setting with its default'])
      assert.deepEqual(JSON.parse(JSON.stringify(parse(await fs.readFile(file, 'utf8')))), JSON.parse(JSON.stringify(defaultConfig())))
    })

    it('keeps the broken original as config.toml.broken, replacing an older copy', async () => {
      await fs.writeFile(file + '.broken', 'an old copy')
      await fs.writeFile(file, '[p2p]\nmdns = nope\n')
      await loadConfig(dir)
      assert.equal(await fs.readFile(file + '.broken', 'utf8'), '[p2p]\nmdns = nope\n')
      await fs.writeFile(file, '[p2p]\ndht = 12\n')
      await loadConfig(dir)
      assert.equal(await fs.readFile(file + '.broken', 'utf8'), '[p2p]\ndht = 12\n')
    })

    it('rewrites atomically, leaving no temp files', async () => {
      await fs.writeFile(file, 'garbage\n[node]\nname = "carol"\n')
      await loadConfig(dir)
      assert.deepEqual((await fs.readdir(dir)).sort(), ['config.toml', 'config.toml.broken'])
      assert.equal((await fs.stat(file)).mode & 0o777, 0o600)
      assert.equal((await loadConfig(dir)).config.node.name, 'carol')
    })

    it('reads only the first MiB of an oversized file', async () => {
      const head = '[queue]\nmax_size = 77\n'
      const filler = '# padding padding padding padding padding padding padding padding\n'
      const body = head + filler.repeat(Math.ceil(MAX_CONFIG_BYTES / filler.length) + 10) + '[node]\nname = "beyond"\n'
      await fs.writeFile(file, body)
      const { config, repairs } = await loadConfig(dir)
      assert.equal(config.queue.max_size, 77)
      assert.equal(config.node.name, '', 'nothing past the cap is read')
      findRepair(repairs, 'larger than')
      assert.ok((await fs.stat(file)).size < 10_000)
      assert.equal((await fs.stat(file + '.broken')).size, Buffer.byteLength(body))
    })

    it('caps the number of repair messages', async () => {
      const lines = Array.from({ length: 500 }, (_, i) => `[s${i}]\nk = ${i}`)
      await fs.writeFile(file, lines.join('\n'))
      const { repairs } = await loadConfig(dir)
      assert.ok(repairs.length <= 51, `${repairs.length} messages`)
      assert.match(repairs[repairs.length - 1], /^and \d+ more repairs$/)
    })

    it('cuts huge unknown key and section names in its messages (found by the fuzzer)', () => {
      const key = 'k'.repeat(100_000)
      for (const text of [`[node]\n${key} = 1\n`, `${key} = 1\n`, `[${key}]\nx = 1\n`]) {
        const { repairs } = repairConfigText(text)
        assert.ok(repairs.length > 0)
        for (const r of repairs) assert.ok(r.length < 200, `a repair message of ${r.length} characters`)
      }
    })

    it('throws CONFIG_UNWRITABLE when the data dir cannot be created', async () => {
      await fs.writeFile(path.join(dir, 'a-file'), '')
      await assert.rejects(loadConfig(path.join(dir, 'a-file', 'data')), (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        assert.equal(err.name, 'ConfigError')
        assert.equal(err.code, 'CONFIG_UNWRITABLE')
        return true
      })
    })

    it('throws CONFIG_UNREADABLE when config.toml is not a file', async () => {
      await fs.mkdir(file)
      await assert.rejects(loadConfig(dir), { name: 'ConfigError', code: 'CONFIG_UNREADABLE' })
    })

    it('throws CONFIG_UNWRITABLE when a repair cannot be written, leaving the file and no temp files', async () => {
      // a non-empty directory where the .broken copy goes: the rename fails, even for root
      await fs.mkdir(file + '.broken')
      await fs.writeFile(path.join(file + '.broken', 'x'), '')
      await fs.writeFile(file, 'garbage')
      await assert.rejects(loadConfig(dir), { name: 'ConfigError', code: 'CONFIG_UNWRITABLE' })
      assert.equal(await fs.readFile(file, 'utf8'), 'garbage')
      assert.deepEqual((await fs.readdir(dir)).sort(), ['config.toml', 'config.toml.broken'])
    })
  })

  describe('renderConfig', () => {
    it('round-trips through smol-toml, tricky strings included', () => {
      const config = withConfig(c => {
        c.node.name = 'quote " back \\ uni é 日本'
        c.http.listen = '[::1]:0'
        c.p2p.listen = ['/ip4/127.0.0.1/tcp/0']
        c.p2p.bootstrap = [BOOT_A, BOOT_B]
        c.p2p.dht = false
        c.presence.interval_ms = 600000
        c.workers.list = ['ollama=http://127.0.0.1:11434', 'agent=http://x/#model "y"', 'tab \t del \u007f nul \u0000 end']
        c.tasks.run_on = 'trusted'
        c.tasks.trusted = [PEER_A]
        c.trace.keep_prompts = true
        c.trace.max_bytes = 2 ** 40
        c.sysop.follow = [PEER_B, PEER_C]
      })
      const text = renderConfig(config)
      assert.deepEqual(JSON.parse(JSON.stringify(parse(text))), config)
      assert.deepEqual(repairConfigText(text), { config, repairs: [] })
    })

    it('writes control characters in a value as escapes, so it stays one line', () => {
      const text = renderConfig(withConfig(c => { c.workers.list = ['a=b\nc'] }))
      assert.ok(text.includes('list = ["a=b\\nc"]'))
      assert.deepEqual((parse(text) as any).workers.list, ['a=b\nc'])
    })
  })

  describe('resolveConfig', () => {
    const file = withConfig(c => {
      c.http.listen = '0.0.0.0:6000'
      c.p2p.listen = ['/ip4/0.0.0.0/tcp/7000']
      c.p2p.bootstrap = [BOOT_A]
      c.workers.list = ['ollama=http://file:11434']
      c.presence.interval_ms = 3000
    })

    it('with nothing given, the file (and its defaults) win', () => {
      assert.deepEqual(resolveConfig({ file, env: {}, flags: {} }), file)
      assert.deepEqual(resolveConfig({ file: defaultConfig() }), defaultConfig())
    })

    it('--http: flag > env > file > default', () => {
      assert.equal(resolveConfig({ file: defaultConfig() }).http.listen, '127.0.0.1:5000')
      assert.equal(resolveConfig({ file }).http.listen, '0.0.0.0:6000')
      assert.equal(resolveConfig({ file, env: { REALM_HTTP: '127.0.0.1:7001' } }).http.listen, '127.0.0.1:7001')
      assert.equal(resolveConfig({ file, env: { REALM_HTTP: '127.0.0.1:7001' }, flags: { http: ':0' } }).http.listen, ':0')
    })

    it('--listen: flag > env > file > default, replacing the list', () => {
      assert.deepEqual(resolveConfig({ file: defaultConfig() }).p2p.listen, defaultConfig().p2p.listen)
      assert.deepEqual(resolveConfig({ file }).p2p.listen, ['/ip4/0.0.0.0/tcp/7000'])
      const env = { REALM_LISTEN: '/ip4/127.0.0.1/tcp/1, /ip4/127.0.0.1/tcp/2/ws' }
      assert.deepEqual(resolveConfig({ file, env }).p2p.listen, ['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2/ws'])
      assert.deepEqual(resolveConfig({ file, env, flags: { listen: ['/ip4/127.0.0.1/tcp/0'] } }).p2p.listen, ['/ip4/127.0.0.1/tcp/0'])
      assert.deepEqual(resolveConfig({ file, env, flags: { listen: [] } }).p2p.listen, ['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2/ws'], 'an empty list is not given')
    })

    it('--bootstrap adds to the list from file and env, without duplicates', () => {
      assert.deepEqual(resolveConfig({ file: defaultConfig() }).p2p.bootstrap, [])
      assert.deepEqual(resolveConfig({ file, flags: { bootstrap: [BOOT_B] } }).p2p.bootstrap, [BOOT_A, BOOT_B])
      const resolved = resolveConfig({ file, env: { REALM_BOOTSTRAP: `${BOOT_B},${BOOT_A}` }, flags: { bootstrap: [BOOT_C, BOOT_B] } })
      assert.deepEqual(resolved.p2p.bootstrap, [BOOT_A, BOOT_B, BOOT_C])
    })

    it('--worker: flag > env > file > default, replacing the list', () => {
      assert.deepEqual(resolveConfig({ file: defaultConfig() }).workers.list, [])
      assert.deepEqual(resolveConfig({ file }).workers.list, ['ollama=http://file:11434'])
      const env = { REALM_WORKER: 'ollama=http://env:11434,sd=http://env:7860' }
      assert.deepEqual(resolveConfig({ file, env }).workers.list, ['ollama=http://env:11434', 'sd=http://env:7860'])
      assert.deepEqual(resolveConfig({ file, env, flags: { worker: ['openai=http://flag:8080'] } }).workers.list, ['openai=http://flag:8080'])
    })

    it('--no-detect and --no-mdns: flag > env > file > default', () => {
      assert.equal(resolveConfig({ file: defaultConfig() }).workers.detect, true)
      assert.equal(resolveConfig({ file: defaultConfig() }).p2p.mdns, true)
      const off = withConfig(c => { c.workers.detect = false; c.p2p.mdns = false })
      assert.equal(resolveConfig({ file: off }).workers.detect, false)
      assert.equal(resolveConfig({ file: off }).p2p.mdns, false)
      const env = { REALM_NO_DETECT: '1', REALM_NO_MDNS: 'true' }
      assert.equal(resolveConfig({ file, env }).workers.detect, false)
      assert.equal(resolveConfig({ file, env }).p2p.mdns, false)
      assert.equal(resolveConfig({ file, env: { REALM_NO_DETECT: '0', REALM_NO_MDNS: '' } }).workers.detect, true)
      assert.equal(resolveConfig({ file, env, flags: { detect: true, mdns: true } }).workers.detect, true)
      assert.equal(resolveConfig({ file, env, flags: { detect: true, mdns: true } }).p2p.mdns, true)
      assert.equal(resolveConfig({ file, flags: { detect: false } }).workers.detect, false)
      assert.equal(resolveConfig({ file, flags: { mdns: false } }).p2p.mdns, false)
    })

    it('REALM_PRESENCE_INTERVAL_MS: env > file > default', () => {
      assert.equal(resolveConfig({ file: defaultConfig() }).presence.interval_ms, 2000)
      assert.equal(resolveConfig({ file }).presence.interval_ms, 3000)
      assert.equal(resolveConfig({ file, env: { REALM_PRESENCE_INTERVAL_MS: '250' } }).presence.interval_ms, 250)
    })

    it('does not change the config it was given', () => {
      const before = structuredClone(file)
      resolveConfig({ file, env: { REALM_WORKER: 'a=b' }, flags: { bootstrap: [BOOT_C], http: ':1' } })
      assert.deepEqual(file, before)
    })

    const badFlags: Array<[flags: Record<string, unknown>, flag: string]> = [
      [{ http: 'nonsense' }, '--http'],
      [{ http: '127.0.0.1:65536' }, '--http'],
      [{ listen: ['/ip4/127.0.0.1/tcp/1', 'tcp/9000'] }, '--listen'],
      [{ listen: ['/' + 'a'.repeat(300)] }, '--listen'],
      [{ bootstrap: ['/ip4/10.0.0.1/tcp/9000'] }, '--bootstrap'],
      [{ worker: [''] }, '--worker'],
      [{ listen: Array.from({ length: 33 }, (_, i) => `/ip4/127.0.0.1/tcp/${i}`) }, '--listen']
    ]
    for (const [flags, flag] of badFlags) {
      it(`a bad ${flag} value is an INVALID_FLAG error naming it (${JSON.stringify(flags).slice(0, 50)})`, () => {
        assert.throws(() => resolveConfig({ file, flags }), (err: unknown) => {
          assert.ok(err instanceof ConfigError)
          assert.equal(err.code, 'INVALID_FLAG')
          assert.ok(err.message.startsWith(flag), err.message)
          assert.ok(!err.message.includes('\n'), 'one line')
          return true
        })
      })
    }

    it('says what --http expected', () => {
      assert.throws(() => resolveConfig({ file, flags: { http: 'nonsense' } }), { message: /^--http "nonsense": expected HOST:PORT/ })
    })

    const badEnv: Array<[name: string, value: string]> = [
      ['REALM_HTTP', 'x:y'],
      ['REALM_LISTEN', 'tcp/1'],
      ['REALM_BOOTSTRAP', 'nope'],
      ['REALM_NO_DETECT', 'maybe'],
      ['REALM_NO_MDNS', '2'],
      ['REALM_PRESENCE_INTERVAL_MS', '10'],
      ['REALM_PRESENCE_INTERVAL_MS', '2s']
    ]
    for (const [name, value] of badEnv) {
      it(`a bad ${name}=${value} is an INVALID_ENV error naming it`, () => {
        assert.throws(() => resolveConfig({ file, env: { [name]: value } }), (err: unknown) => {
          assert.ok(err instanceof ConfigError)
          assert.equal(err.code, 'INVALID_ENV')
          assert.ok(err.message.startsWith(name + ' '), err.message)
          return true
        })
      })
    }

    it('lists every environment variable it reads', () => {
      const names = CONFIG_ENV_VARS.map(v => v.name)
      for (const name of ['REALM_DATA', 'REALM_HTTP', 'REALM_LISTEN', 'REALM_BOOTSTRAP', 'REALM_WORKER', 'REALM_NO_DETECT', 'REALM_NO_MDNS', 'REALM_PRESENCE_INTERVAL_MS']) {
        assert.ok(names.includes(name), name)
      }
      for (const v of CONFIG_ENV_VARS) {
        if (v.setting !== undefined) assert.ok(ALL_KEYS.includes(v.setting), v.setting)
      }
    })

    it('resolveDataDir: --data > REALM_DATA > ~/.rentahal', () => {
      assert.equal(resolveDataDir(), path.join(os.homedir(), '.rentahal'))
      assert.equal(resolveDataDir({ env: { REALM_DATA: '/tmp/env-dir' } }), '/tmp/env-dir')
      assert.equal(resolveDataDir({ flag: '/tmp/flag-dir', env: { REALM_DATA: '/tmp/env-dir' } }), '/tmp/flag-dir')
    })
  })

  describe('parseHostPort', () => {
    const good: Array<[string, string, number]> = [
      ['127.0.0.1:5000', '127.0.0.1', 5000],
      ['0.0.0.0:0', '0.0.0.0', 0],
      ['localhost:65535', 'localhost', 65535],
      ['node-1.example.org:80', 'node-1.example.org', 80],
      ['[::1]:8080', '::1', 8080],
      ['[::]:1', '::', 1],
      [':5001', '127.0.0.1', 5001],
      ['5002', '127.0.0.1', 5002]
    ]
    for (const [input, host, port] of good) {
      it(`parses ${input}`, () => {
        assert.deepEqual(parseHostPort(input), { host, port })
      })
    }

    const bad = ['', 'localhost', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:-1', '127.0.0.1:80x', '::1:80',
      '[::1]80', '[::1:80', '[nothost]:80', '999.0.0.1:80', 'bad host:80', '-x:80', 'a_b:80', '127.0.0.1:5000 ']
    for (const input of bad) {
      it(`rejects ${JSON.stringify(input)} with INVALID_HOST_PORT`, () => {
        assert.throws(() => parseHostPort(input), { name: 'ConfigError', code: 'INVALID_HOST_PORT' })
      })
    }
  })
})
