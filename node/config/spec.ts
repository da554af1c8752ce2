/**
 * Every setting of config.toml, declared once: section, key, schema, default, comment.
 * The `RealmConfig` type, the rendered file, the repair and the flag checks all derive from
 * this table, so a new setting (or a whole section) is one entry here.
 */
import { z } from 'zod'
import { HOST_PORT_EXPECTED, readHostPort } from './host-port.js'

/** One setting of config.toml */
export interface SettingSpec<T = unknown> {
  /** validates a value from the file, a flag or the environment */
  readonly schema: z.ZodType<T>
  /** used when the value is missing or invalid */
  readonly default: T
  /** one line, written as a `#` comment above the setting */
  readonly comment: string
  /** for list settings: validates one entry, so one bad entry does not cost the good ones */
  readonly item?: z.ZodType
}

function setting<T> (schema: z.ZodType<T>, def: NoInfer<T>, comment: string): SettingSpec<T> {
  return { schema, default: def, comment }
}

function list<T> (item: z.ZodType<T>, max: number, def: NoInfer<T>[], comment: string): SettingSpec<T[]> {
  return { schema: z.array(item).max(max, `at most ${max} entries`), default: def, comment, item }
}

function int (min: number, max: number): z.ZodNumber {
  return z.number().int('expected an integer').min(min, `at least ${min}`).max(max, `at most ${max}`)
}

/** Longest multiaddr accepted in a setting (real ones are well under 200 characters) */
const MAX_MULTIADDR_LENGTH = 256
/** A peer id as text: base58btc (`12D3KooW…`, `Qm…`) or a base32 CID (`bafz…`) */
const PEER_ID_RE = /^[A-Za-z0-9]{32,128}$/
/** Control characters would let a peer's name rewrite other people's terminals */
const NO_CONTROL_CHARS_RE = /^[^\p{Cc}]*$/u

const multiaddr = z.string()
  .startsWith('/', 'a multiaddr starts with "/"')
  .max(MAX_MULTIADDR_LENGTH, `a multiaddr has at most ${MAX_MULTIADDR_LENGTH} characters`)

const peerId = z.string().regex(PEER_ID_RE, 'expected a peer id (e.g. 12D3KooW…)')

const hostPort = z.string().superRefine((value, ctx) => {
  const parsed = readHostPort(value)
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: `${HOST_PORT_EXPECTED} (${parsed})` })
})

/** Longest API key accepted in a setting (real ones are under 200 characters) */
const MAX_API_KEY_LENGTH = 1024
/** Highest price or daily cap a setting accepts, USD */
const MAX_USD = 1_000_000

/** An API key: any printable text; never quoted back in a repair message, as nothing printable is invalid */
const apiKey = z.string().max(MAX_API_KEY_LENGTH, `at most ${MAX_API_KEY_LENGTH} characters`).regex(NO_CONTROL_CHARS_RE, 'no control characters')

const usd = z.number().min(0, 'at least 0').max(MAX_USD, `at most ${MAX_USD}`)

/** Longest file path accepted in a setting */
const MAX_PATH_LENGTH = 4096
const filePath = z.string().max(MAX_PATH_LENGTH, `at most ${MAX_PATH_LENGTH} characters`).regex(NO_CONTROL_CHARS_RE, 'no control characters')
/** `*`, `name`, `*.name`, `name:port`, `[v6]:port` */
const hostPattern = z.string().max(300, 'at most 300 characters')
  .regex(/^(?:\*|(?:\*\.)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::\d{1,5})?)$/, 'expected a host name, "*.domain", "name:port" or "*"')
/** `*`, `null` or `scheme://host[:port]`, where `*` may stand for part of the host or the port */
const originPattern = z.string().max(300, 'at most 300 characters')
  .regex(/^(?:\*|null|[A-Za-z][A-Za-z0-9+.-]*:\/\/[A-Za-z0-9_.*:[\]-]*)$/, 'expected an origin such as "https://realm.example.com", "http://localhost:*" or "*"')

/** Where a node's own tasks may run */
export const RUN_ON = ['grid', 'trusted', 'local'] as const
export type RunOn = typeof RUN_ON[number]

export const CONFIG_SPEC = {
  node: {
    name: setting(z.string().max(64, 'at most 64 characters').regex(NO_CONTROL_CHARS_RE, 'no control characters'), '',
      'a name shown to other peers (empty: none); at most 64 characters')
  },
  http: {
    listen: setting(hostPort, '127.0.0.1:5000',
      'HOST:PORT of the gateway (HTTP API + web UI); port 0 picks a free one; loopback only by default'),
    tls_cert: setting(filePath, '',
      'PEM certificate (chain) file: the gateway serves HTTPS with it and tls_key (empty: plain HTTP); flag --tls-cert, env REALM_TLS_CERT'),
    tls_key: setting(filePath, '',
      'PEM private key file of tls_cert, unencrypted, keep it mode 0600; flag --tls-key, env REALM_TLS_KEY'),
    trust_proxy: setting(z.boolean(), false,
      'behind a reverse proxy: trust its X-Forwarded-For (last entry), X-Forwarded-Proto and X-Forwarded-Host; only with the gateway on loopback'),
    allowed_hosts: list(hostPattern, 256, [],
      'names the gateway answers to besides localhost and its IP addresses (against DNS rebinding): "realm.example.com", "*.example.com", "name:port"; "*" allows any'),
    allowed_origins: list(originPattern, 256, [],
      'browser origins besides the node\'s own that may POST/PUT/DELETE and open the events WebSocket, e.g. "https://realm.example.com"; "*" allows any'),
    cors_origins: list(originPattern, 256, [],
      'browser origins allowed to call the Ollama/OpenAI routes cross-origin, with CORS headers (like OLLAMA_ORIGINS), e.g. "http://localhost:*"'),
    max_header_bytes: setting(int(1024, 1_048_576), 16_384,
      'most bytes of request headers (larger: 431)'),
    max_connections_per_client: setting(int(1, 100_000), 64,
      'most open connections per client address (IPv6: per /64); loopback exempt unless limit_loopback'),
    rate_limit_per_s: setting(z.number().min(0, 'at least 0').max(1_000_000, 'at most 1000000'), 20,
      'realm-route requests per second per client address after the burst (429 RATE_LIMITED with Retry-After); 0: no limit'),
    rate_limit_burst: setting(int(1, 1_000_000), 200,
      'realm-route requests a client address may make at once before rate_limit_per_s applies'),
    limit_loopback: setting(z.boolean(), false,
      'apply the per-client limits to loopback clients too (this machine is trusted by default)'),
    ws_messages_per_s: setting(int(1, 10_000), 10,
      'messages per second one events WebSocket client may send (subscribe, ping); more are answered RATE_LIMITED')
  },
  p2p: {
    listen: list(multiaddr, 32, ['/ip4/0.0.0.0/tcp/9000', '/ip4/0.0.0.0/tcp/9001/ws'],
      'libp2p listen multiaddrs (TCP and WebSockets on all interfaces by default)'),
    bootstrap: list(multiaddr.regex(/\/p2p\/[A-Za-z0-9]{32,128}$/, 'a bootstrap multiaddr ends with /p2p/<peerId>'), 64, [],
      'multiaddrs (ending /p2p/<peerId>) of nodes to join at start; --bootstrap adds to this list'),
    mdns: setting(z.boolean(), true,
      'find realm nodes on the LAN with mDNS'),
    dht: setting(z.boolean(), true,
      'DHT rendezvous: find realm nodes through any node that runs the DHT'),
    dht_private_addrs: setting(z.boolean(), true,
      'keep private and loopback addresses learned from the DHT (LAN and local grids)'),
    max_connections: setting(int(1, 100_000), 300,
      'most peer connections kept open at once'),
    colocation_threshold: setting(int(1, 10_000), 10,
      'gossip peers from one IP address beyond this many are scored down (Sybil defence)'),
    colocation_whitelist: list(z.string().min(2).max(45).regex(/^[0-9a-fA-F.:]+$/, 'an IP address'), 64, ['127.0.0.1', '::1'],
      'IP addresses exempt from the colocation limit (loopback: local grids and tests run many nodes on one machine)')
  },
  presence: {
    interval_ms: setting(int(100, 600_000), 2000,
      'how often the presence beacon is published, in milliseconds (100..600000)'),
    expire_intervals: setting(int(2, 100), 3,
      'a peer silent for this many intervals is dropped (2..100)')
  },
  workers: {
    detect: setting(z.boolean(), true,
      'with no workers listed, look for backends on their usual local ports (11434, 8080, 7860)'),
    list: list(z.string().min(1, 'an empty entry').max(2048, 'at most 2048 characters'), 64, [],
      'backends to attach as "BACKEND=TARGET", e.g. "ollama=http://127.0.0.1:11434"'),
    probe_interval_ms: setting(int(100, 3_600_000), 5000,
      'how often each backend is probed for health, in milliseconds'),
    concurrency: setting(int(1, 64), 1,
      'tasks one backend runs at once, like Ollama\'s default (1..64)')
  },
  tasks: {
    run_on: setting(z.enum(RUN_ON), 'grid',
      'where this node\'s tasks may run: "grid" (any peer), "trusted" (peers in tasks.trusted), "local" (own workers)'),
    trusted: list(peerId, 1024, [],
      'peer ids trusted when run_on = "trusted"'),
    probation_tasks: setting(int(0, 1_000_000), 20,
      'a new peer id is on probation until it has served (or submitted and followed to the end) this many tasks; 0: no probation'),
    probation_minutes: setting(int(0, 525_600), 30,
      'a new peer id also leaves probation once it has been present this many minutes without misbehaving (0: at once)'),
    probation_weight: setting(z.number().min(0.015625, 'at least 1/64').max(1, 'at most 1'), 0.25,
      'queue share of a peer on probation: its tasks get a turn every 1/weight rounds (0.25: every 4th)'),
    probation_penalty_ms: setting(int(0, 3_600_000), 2000,
      'routing penalty of a worker on probation, ms of expected completion time (shrinks with each honest task): proven workers are preferred')
  },
  queue: {
    max_size: setting(int(1, 1_000_000), 1024,
      'most tasks waiting in this node\'s queue'),
    per_requester: setting(int(16, 1_000_000), 16,
      'most tasks one requester may have waiting (at least 16)')
  },
  trace: {
    max_bytes: setting(int(1024, 2 ** 40), 10_485_760,
      'the trace log rotates when it reaches this many bytes (at least 1024)'),
    max_files: setting(int(1, 100), 5,
      'rotated trace log files kept (1..100)'),
    keep_prompts: setting(z.boolean(), false,
      'keep prompts and answers in the trace log'),
    retention_days: setting(int(1, 3650), 7,
      'days trace log files are kept')
  },
  sysop: {
    follow: list(peerId, 256, [],
      'peer ids whose signed blocklists this node follows')
  },
  paid: {
    claude_api_key: setting(apiKey, '',
      'Anthropic API key for claude workers, used when the worker URL carries none; empty: the ANTHROPIC_API_KEY environment variable. Never logged'),
    claude_daily_cap_usd: setting(usd, 1,
      'most USD claude workers may spend per UTC day (counted from token usage); 0 refuses every claude task'),
    claude_input_usd_per_mtok: setting(usd, 3,
      'Anthropic price per million input tokens, USD, used to count the spend (Claude Sonnet: 3)'),
    claude_output_usd_per_mtok: setting(usd, 15,
      'Anthropic price per million output tokens, USD, used to count the spend (Claude Sonnet: 15)'),
    hf_api_key: setting(apiKey, '',
      'HuggingFace token for hf workers, used when the worker URL carries none; empty: the HF_TOKEN environment variable. Never logged'),
    hf_models: list(z.string().min(1, 'an empty entry').max(256, 'at most 256 characters'), 64, [],
      'models hf workers serve when their spec names none: "MODEL" or "KIND=MODEL" (chat, generate, embed, imagine), e.g. "embed=BAAI/bge-small-en-v1.5"'),
    hf_daily_cap_usd: setting(usd, 1,
      'most USD hf workers may spend per UTC day (tokens and images at the prices below); 0 refuses every hf task'),
    hf_input_usd_per_mtok: setting(usd, 1,
      'HuggingFace price per million input tokens, USD, used to count the spend (providers differ: set yours)'),
    hf_output_usd_per_mtok: setting(usd, 1,
      'HuggingFace price per million output tokens, USD, used to count the spend'),
    hf_usd_per_image: setting(usd, 0.05,
      'HuggingFace price per generated image, USD, used to count the spend')
  },
  watchdog: {
    enabled: setting(z.boolean(), true,
      'watch the node: restart it when its event loop freezes, free a worker held by a run that makes no progress, report dead backends'),
    freeze_ms: setting(int(1000, 3_600_000), 10_000,
      'no heartbeat from the event loop for this many milliseconds restarts the node (realm start only)'),
    stuck_ms: setting(int(1000, 86_400_000), 180_000,
      'a run with no progress for this many milliseconds, while another task waited as long for its worker, is cancelled and fails over')
  }
} as const satisfies Record<string, Record<string, SettingSpec<any>>>

export type ConfigSpec = typeof CONFIG_SPEC
export type SectionName = keyof ConfigSpec & string

/** The node's configuration: `config.http.listen`, `config.p2p.bootstrap`, … (keys as in TOML) */
export type RealmConfig = {
  -readonly [S in keyof ConfigSpec]: {
    -readonly [K in keyof ConfigSpec[S]]: ConfigSpec[S][K] extends SettingSpec<infer T> ? T : never
  }
}

/** A fresh copy of the built-in defaults */
export function defaultConfig (): RealmConfig {
  const config: Record<string, Record<string, unknown>> = {}
  for (const [section, settings] of Object.entries(CONFIG_SPEC)) {
    config[section] = {}
    for (const [key, spec] of Object.entries(settings as Record<string, SettingSpec>)) {
      config[section][key] = structuredClone(spec.default)
    }
  }
  return config as RealmConfig
}

/** The spec of `section.key`, or undefined for an unknown setting (own properties only) */
export function settingSpec (section: string, key: string): SettingSpec | undefined {
  if (!Object.hasOwn(CONFIG_SPEC, section)) return undefined
  const settings = CONFIG_SPEC[section as SectionName] as Record<string, SettingSpec>
  return Object.hasOwn(settings, key) ? settings[key] : undefined
}

/** Every `[section, key, spec]` in table order */
export function settingEntries (): Array<[section: string, key: string, spec: SettingSpec]> {
  const out: Array<[string, string, SettingSpec]> = []
  for (const [section, settings] of Object.entries(CONFIG_SPEC)) {
    for (const [key, spec] of Object.entries(settings as Record<string, SettingSpec>)) out.push([section, key, spec])
  }
  return out
}
