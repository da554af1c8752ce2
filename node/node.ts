/**
 * The realm node, built in one place, in order — data dir lock (db) → config → key → trace log
 * → libp2p → presence → discovery → workers → gateway → node.json → watchdog — and stopped in
 * reverse.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import type { PrivateKey } from '@libp2p/interface'
import { createEventBus, type EventBus, type RealmEvent } from './events/index.js'
import { loadConfig, parseHostPort, resolveConfig, type ConfigFlags, type RealmConfig } from './config/index.js'
import { openDb, Bucket, type RealmDb } from './db/index.js'
import { createTraceLog, type TraceLog } from './trace/index.js'
import { loadOrCreateKey } from './keys.js'
import { loadOrCreateSysopToken } from './sysop-token.js'
import { Sysop, benchable, webUserDirectory } from './sysop/index.js'
import { createRealmLibp2p, type RealmLibp2p } from './p2p/libp2p.js'
import { Connector } from './p2p/connector.js'
import { Rendezvous } from './p2p/rendezvous.js'
import { PresenceService, type LocalAd } from './presence/service.js'
import { meshModels, type MeshModel } from './presence/mesh.js'
import { createWorker, detectWorkers, parseWorkerSpec, paidInitFromConfig, SpendRecordSchema, type Worker, type WorkerInit, type WorkerSpec } from './workers/index.js'
import { createSpeechWorker } from './speech/index.js'
import { Gateway, type PeerView } from './gateway/index.js'
import { securityInitFromConfig } from './gateway/security.js'
import { UserDirectory } from './gateway/users.js'
import { LocalExecutor } from './tasks/executor.js'
import { TaskServer } from './tasks/protocol.js'
import { Router, type RouteSource } from './tasks/router.js'
import { TaskManager } from './tasks/manager.js'
import { TaskHistory } from './tasks/history.js'
import { RttTracker } from './p2p/rtt.js'
import { PeerReputation, outcomeOfTaskEvent } from './p2p/reputation.js'
import { ScoreWatch } from './p2p/score-watch.js'
import { checkFailpoints, createWatchdog, traceFailpointHook, type RespawnCommand, type Watchdog, type WatchdogInit } from './watchdog/index.js'
import { writeFileAtomic } from './fs-util.js'
import { REALM_VERSION } from '../protocol/ids.js'
import type { NodeHealth, WorkerAd } from '../protocol/presence.js'
import { errorMessage } from '../protocol/errors.js'

export const NODE_JSON = 'node.json'
export const DB_DIR = 'db'
export const TRACE_DIR = 'trace'
/** Latency and VRAM figures change without a worker event: a cached ad is rebuilt after this long */
const LOCAL_AD_MAX_AGE_MS = 1_000

export interface RealmNodeInit {
  /** the data dir (config, keys, database, trace log); created if missing */
  dataDir: string
  /** command-line flags (highest precedence) */
  flags?: ConfigFlags
  /** environment (below flags, above the config file); default: none */
  env?: NodeJS.ProcessEnv
  /** last word on the resolved config, for in-process tests and tools */
  configure?: (config: RealmConfig) => void
  /** where warnings for the operator go (config repairs, key restores); default stderr */
  warn?: (line: string) => void
  /** rendezvous lookup period (tests shorten it) */
  rendezvousIntervalMs?: number
  /** worker probe/backoff tuning (tests shorten it) */
  workerInit?: Partial<WorkerInit>
  /** folder of the built web UI */
  uiDir?: string
  /**
   * How to start this node's process again: `realm start` passes its own command line, and a
   * frozen event loop then restarts the node (watchdog). Default: none, a freeze is not acted on
   */
  respawn?: RespawnCommand
  /** watchdog tuning (tests take over its timing); over the config's `watchdog` section */
  watchdogInit?: Partial<WatchdogInit>
}

/** What `DIR/node.json` holds while the node runs; the CLI reads it */
export interface NodeJson {
  pid: number
  http: string
  peerId: string
  multiaddrs: string[]
  /** the gateway's certificate file, when it serves HTTPS */
  tlsCert?: string
}

export class RealmNode {
  readonly events: EventBus
  /** the sysop's tools: blocklist at every layer, shared blocklists, auth, bans, benching */
  sysop!: Sysop
  /** frozen event loop, stuck runs, dead backends */
  watchdog!: Watchdog
  /** what this node knows of each peer: probation of new ones, job outcomes in the gossip score */
  reputation!: PeerReputation
  /** hangs up on graylisted and exiled peers */
  scoreWatch!: ScoreWatch
  readonly startedAt = Date.now()
  private readonly log = logger('realm:node')
  private readonly identifyAddrs = new Map<string, string[]>()
  private stopping?: Promise<void>
  private started = false
  /** bumped by every worker change (state, models, bench, spend cap) */
  private workersVersion = 0
  /** the last `localAd()`, valid while workers, executor load and age allow */
  private adCache?: { ad: LocalAd, workers: number, load: number, at: number }
  /** `routeSources()` and `models()`, valid for one version of the local workers and of the peer table (and a second at most) */
  private meshCache?: { ad: LocalAd, workers: number, peers: number, at: number, sources?: RouteSource[], models?: MeshModel[] }

  private constructor (
    readonly dataDir: string,
    readonly config: RealmConfig,
    readonly db: RealmDb,
    readonly trace: TraceLog,
    readonly privateKey: PrivateKey,
    readonly libp2p: RealmLibp2p,
    readonly presence: PresenceService,
    readonly connector: Connector,
    readonly rendezvous: Rendezvous | undefined,
    readonly workers: Worker[],
    readonly executor: LocalExecutor,
    readonly taskServer: TaskServer,
    readonly rtt: RttTracker,
    readonly router: Router,
    readonly tasks: TaskManager,
    readonly gateway: Gateway,
    events: EventBus
  ) {
    this.events = events
  }

  /** Build a node (nothing listens yet); `start()` brings it up */
  static async create (init: RealmNodeInit): Promise<RealmNode> {
    const warn = init.warn ?? ((line: string) => { process.stderr.write(line + '\n') })
    const dataDir = path.resolve(init.dataDir)
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })

    // the database LOCK is the data dir lock: a second node on this dir stops here
    const db = await openDb({ path: path.join(dataDir, DB_DIR) })
    const opened: Array<{ close: () => Promise<void> | void }> = [{ close: async () => { await db.close() } }]
    try {
      const events = createEventBus()
      const loaded = await loadConfig(dataDir)
      const config = resolveConfig({ file: loaded.config, env: init.env ?? {}, flags: init.flags ?? {} })
      init.configure?.(config)
      // TLS files are read and checked now: a bad one stops the node before anything listens
      const security = securityInitFromConfig(config)

      const trace = createTraceLog({
        dir: path.join(dataDir, TRACE_DIR),
        maxBytes: config.trace.max_bytes,
        maxFiles: config.trace.max_files,
        retentionMs: config.trace.retention_days * 24 * 3600 * 1000,
        redact: config.trace.keep_prompts ? undefined : redactPrompts,
        // crash tests only (REALM_FAILPOINTS): the process SIGKILLs itself mid-rotation
        failpoint: traceFailpointHook()
      })
      await trace.start()
      opened.push({ close: async () => { await trace.stop() } })
      events.subscribe(event => { trace.append(event) })

      if (loaded.created) events.emit('config.created', { path: loaded.path })
      for (const repair of loaded.repairs) {
        warn(`config: ${repair}`)
      }
      if (!loaded.created && loaded.repairs.length > 0) events.emit('config.repaired', { path: loaded.path, repairs: loaded.repairs })

      const failpoints = checkFailpoints()
      if (failpoints !== undefined) {
        warn(`failpoints armed (REALM_FAILPOINTS, for crash tests only): ${failpoints}; this node will SIGKILL itself there`)
        events.emit('watchdog.failpoints', { armed: failpoints })
      }

      const key = await loadOrCreateKey(dataDir)
      if (key.restoredFromBackup) {
        warn(`node key: ${path.join(dataDir, 'node.key')} was corrupt; restored from its backup`)
        events.emit('key.restored', { peerId: key.peerId })
      }

      const sysop = await loadOrCreateSysopToken(dataDir)
      if (sysop.created) events.emit('sysop.token_created', { path: sysop.path })
      // before libp2p: the gater and the blocked-peer checks are libp2p options
      const sysopTools = await Sysop.create({
        db, events, selfId: key.peerId, privateKey: key.privateKey, tokenFile: sysop.path, traceDir: path.join(dataDir, TRACE_DIR), follow: config.sysop.follow
      })
      opened.push({ close: () => { sysopTools.stop() } })
      // also before libp2p: job outcomes are part of the gossip score, exiled peers are gated
      const trustedPeers = new Set(config.tasks.trusted)
      const reputation = new PeerReputation({
        db,
        events,
        probationTasks: config.tasks.probation_tasks,
        probationMs: config.tasks.probation_minutes * 60_000,
        probationWeight: config.tasks.probation_weight,
        probationPenaltyMs: config.tasks.probation_penalty_ms,
        isExempt: (id) => id === key.peerId || trustedPeers.has(id)
      })
      await reputation.load()
      sysopTools.guard.useReputation(reputation)
      // blocked by the sysop or exiled by its reputation: no gossip, no tasks, no work
      const shutOut = sysopTools.guard.isPeerShutOut

      const libp2p = await createRealmLibp2p({
        privateKey: key.privateKey,
        listen: config.p2p.listen,
        mdns: config.p2p.mdns,
        dht: config.p2p.dht,
        dhtPrivateAddrs: config.p2p.dht_private_addrs,
        maxConnections: config.p2p.max_connections,
        colocationThreshold: config.p2p.colocation_threshold,
        colocationWhitelist: config.p2p.colocation_whitelist,
        connectionGater: sysopTools.gater(),
        appSpecificScore: sysopTools.appSpecificScore
      })

      let node: RealmNode | undefined
      const presence = new PresenceService(libp2p, {
        privateKey: key.privateKey,
        events,
        intervalMs: config.presence.interval_ms,
        expireIntervals: config.presence.expire_intervals,
        name: config.node.name,
        localAd: () => node!.localAd(),
        isBlocked: shutOut,
        onBeacon: (id) => { reputation.seen(id) },
        onMisbehaviour: (id, what) => { reputation.record(id, what) }
      })
      const connector = new Connector(libp2p, { bootstrap: config.p2p.bootstrap, events, allowed: (id) => !shutOut(id) })
      const rendezvous = config.p2p.dht
        ? new Rendezvous(libp2p, { intervalMs: init.rendezvousIntervalMs, events, onPeer: async (peer) => { await connector.dialDiscovered(peer) } })
        : undefined

      const workerInit: WorkerInit = {
        probeIntervalMs: config.workers.probe_interval_ms,
        events,
        // paid backends: keys and daily caps from config/env, spend kept per UTC day in the db
        paid: paidInitFromConfig(config),
        spend: db.bucket(Bucket.spend, SpendRecordSchema),
        env: init.env ?? {},
        ...init.workerInit
      }
      let specs = config.workers.list.map(parseWorkerSpec)
      if (specs.length === 0 && config.workers.detect) {
        specs = await detectWorkers()
        for (const spec of specs) events.emit('worker.detected', { backend: spec.backend, target: spec.target })
      }
      const watchdog = createWatchdog({
        dataDir,
        traceDir: path.join(dataDir, TRACE_DIR),
        enabled: config.watchdog.enabled,
        freezeMs: config.watchdog.freeze_ms,
        stuckMs: config.watchdog.stuck_ms,
        respawn: init.respawn,
        env: init.env,
        ...init.watchdogInit
      }, { events, waiting: (workerId) => node?.executor.health(workerId)?.queueDepth ?? 0 })
      const workers = specs.map(spec => benchable(watchdog.watch(attachWorker(spec, workerInit))))

      const executor = new LocalExecutor(workers, {
        concurrency: config.workers.concurrency,
        maxQueue: config.queue.max_size,
        perRequester: config.queue.per_requester
      })
      const taskServer = new TaskServer(libp2p, {
        executor,
        events,
        isBlocked: shutOut,
        weightOf: reputation.weightOf,
        onRequester: (id, outcome) => { reputation.record(id, outcome) }
      })
      const rtt = new RttTracker(libp2p, () => node!.presence.peers().filter(e => e.beacon.workers.length > 0).map(e => e.peerId))
      const router = new Router({
        rttMs: (peerId) => rtt.rttMs(peerId),
        localWaitMs: (workerId, model) => executor.expectedWaitMs(workerId, model),
        peerPenaltyMs: reputation.routePenaltyMs
      })
      // tasks a crash left open end now, as INTERRUPTED, so their clients learn the truth
      const history = new TaskHistory(db)
      const interrupted = await history.closeInterrupted()
      for (const t of interrupted) {
        events.emit('task.error', { id: t.id, requester: t.requester, code: t.error?.code, message: t.error?.message, attempts: t.attempts })
      }
      if (interrupted.length > 0) events.emit('node.tasks_interrupted', { count: interrupted.length })

      const tasks = new TaskManager({
        selfId: key.peerId,
        libp2p,
        executor,
        router,
        sources: () => node!.routeSources(),
        contextOf: (model) => node!.models().find(m => m.name === model)?.info.context,
        events,
        history,
        runOn: config.tasks.run_on,
        trusted: config.tasks.trusted,
        maxActive: config.queue.max_size,
        perRequester: config.queue.per_requester,
        keepPrompts: config.trace.keep_prompts,
        isBlocked: shutOut
      })

      // web UI users (cookie identity); a banned user's tasks are cancelled at once
      const users = new UserDirectory({ db, events })
      await users.start()
      users.onBan((id, banned) => { if (banned) tasks.cancelRequester(`user:${id}`) })
      sysopTools.useUsers(webUserDirectory(users))

      const { host, port } = parseHostPort(config.http.listen)
      if (!isLoopbackHost(host)) {
        warn(`gateway: listening on ${host}, reachable from other machines; sysop routes still require the token in ${sysop.path}`)
        events.emit('gateway.exposed', { host, port })
      }
      const gateway = new Gateway({
        peerId: key.peerId,
        version: REALM_VERSION,
        startedAt: Date.now(),
        events,
        multiaddrs: () => node!.multiaddrs(),
        peers: () => node!.peerViews(),
        localWorkers: () => node!.localAd().workers,
        models: () => node!.models(),
        connections: () => libp2p.getConnections().length,
        tasks,
        sysop: sysopTools.api()
      }, { host, port, uiDir: init.uiDir, users, security })

      node = new RealmNode(dataDir, config, db, trace, key.privateKey, libp2p, presence, connector, rendezvous, workers, executor, taskServer, rtt, router, tasks, gateway, events)
      node.sysop = sysopTools
      node.watchdog = watchdog
      node.reputation = reputation
      node.scoreWatch = new ScoreWatch(libp2p, { reputation, events, selfId: key.peerId, isBlocked: sysopTools.isPeerBlocked, dropPeer: (id, reason) => { presence.drop(id, reason) } })
      sysopTools.attach({ libp2p, dropPeer: (id, reason) => { presence.drop(id, reason) }, workers: () => node!.workers, cancelRequester: (r) => tasks.cancelRequester(r) })
      return node
    } catch (err) {
      for (const part of opened.reverse()) await Promise.resolve(part.close()).catch(() => {})
      throw err
    }
  }

  async start (): Promise<void> {
    const { libp2p, events } = this
    try {
      libp2p.addEventListener('peer:connect', (evt) => { events.emit('peer.connect', { peerId: evt.detail.toString() }) })
      libp2p.addEventListener('peer:disconnect', (evt) => {
        this.identifyAddrs.delete(evt.detail.toString())
        events.emit('peer.disconnect', { peerId: evt.detail.toString() })
      })
      libp2p.addEventListener('peer:identify', (evt) => {
        this.identifyAddrs.set(evt.detail.peerId.toString(), evt.detail.listenAddrs.slice(0, 16).map(a => a.toString()))
      })
      await libp2p.start()
      this.presence.start()
      this.sysop.start()
      this.reputation.start()
      this.scoreWatch.start()
      // how the tasks this node sent out went, worker by worker (its own workers are not judged)
      events.subscribe(e => {
        const seen = outcomeOfTaskEvent(e)
        if (seen != null && seen.peerId !== this.peerId) this.reputation.record(seen.peerId, seen.outcome)
      })
      for (const worker of this.workers) {
        worker.onChange(() => {
          this.workersVersion++
          this.presence.announce()
        })
      }
      await Promise.all(this.workers.map(async w => { await w.start() }))
      await this.taskServer.start()
      this.rtt.start()
      events.subscribe(e => {
        if (e.type === 'peer.leave' && typeof e.peerId === 'string') {
          this.router.forgetPeer(e.peerId)
          this.rtt.forget(e.peerId)
        }
        // queue and load changes reach the mesh at once, not at the next beacon
        if (e.type === 'task.started' || e.type === 'task.done' || e.type === 'task.error') this.presence.announce('load')
      })
      await this.rendezvous?.start()
      this.connector.start()
      await this.gateway.start()
      this.started = true
      await writeFileAtomic(path.join(this.dataDir, NODE_JSON), JSON.stringify(this.nodeJson(), null, 2) + '\n')
      events.emit('node.started', { peerId: this.peerId, http: this.gateway.url, multiaddrs: this.multiaddrs(), version: REALM_VERSION })
      // last: a slow start is no freeze
      await this.watchdog.start()
    } catch (err) {
      await this.stop().catch(() => {})
      throw err
    }
  }

  /** Stop in reverse order of start; safe to call twice */
  async stop (): Promise<void> {
    this.stopping ??= this.doStop()
    await this.stopping
  }

  private async doStop (): Promise<void> {
    const step = async (name: string, fn: () => Promise<void> | void): Promise<void> => {
      try {
        await fn()
      } catch (err) {
        this.log.error('stopping %s failed: %s', name, errorMessage(err))
      }
    }
    if (this.started) this.events.emit('node.stopping', { peerId: this.peerId })
    // first: a slow stop is no freeze (the CLI has its own deadline)
    await step('watchdog', () => { this.watchdog.stop() })
    await step('node.json', async () => { await fs.rm(path.join(this.dataDir, NODE_JSON), { force: true }) })
    await step('gateway', async () => { await this.gateway.stop() })
    await step('tasks', async () => { await this.tasks.stop() })
    await step('task server', async () => { await this.taskServer.stop() })
    await step('executor', () => { this.executor.stop() })
    await step('rtt', () => { this.rtt.stop() })
    await step('connector', () => { this.connector.stop() })
    await step('rendezvous', async () => { await this.rendezvous?.stop() })
    await step('workers', async () => { await Promise.all(this.workers.map(async w => { await w.stop() })) })
    await step('sysop', () => { this.sysop.stop() })
    await step('score watch', () => { this.scoreWatch.stop() })
    await step('reputation', async () => { await this.reputation.stop() })
    await step('presence', async () => { await this.presence.stop() })
    await step('libp2p', async () => { await this.libp2p.stop() })
    if (this.started) this.events.emit('node.stopped', { peerId: this.peerId })
    await step('trace', async () => { await this.trace.stop() })
    await step('db', async () => { await this.db.close() })
  }

  get peerId (): string {
    return this.libp2p.peerId.toString()
  }

  get url (): string {
    return this.gateway.url
  }

  multiaddrs (): string[] {
    return this.libp2p.getMultiaddrs().map(a => a.toString())
  }

  nodeJson (): NodeJson {
    const json: NodeJson = { pid: process.pid, http: this.gateway.url, peerId: this.peerId, multiaddrs: this.multiaddrs() }
    // the CLI pins this certificate when it talks to a node serving HTTPS
    if (this.config.http.tls_cert.trim() !== '') json.tlsCert = path.resolve(this.config.http.tls_cert.trim())
    return json
  }

  /**
   * This node's workers and health, as its beacon advertises them. Built again only when a
   * worker or the executor's load changed, or after LOCAL_AD_MAX_AGE_MS; callers must not change it
   */
  localAd (): LocalAd {
    const now = Date.now()
    const c = this.adCache
    if (c != null && c.workers === this.workersVersion && c.load === this.executor.loadVersion && now - c.at < LOCAL_AD_MAX_AGE_MS) return c.ad
    const ad = this.buildLocalAd()
    this.adCache = { ad, workers: this.workersVersion, load: this.executor.loadVersion, at: now }
    return ad
  }

  private buildLocalAd (): LocalAd {
    const workers: WorkerAd[] = this.workers.map(w => {
      const s = w.status()
      const load = this.executor.health(s.id)
      const ad: WorkerAd = {
        id: s.id,
        backend: s.backend,
        kinds: s.state === 'ok' ? s.kinds : [],
        models: s.state === 'ok' ? s.models : [],
        health: {
          state: s.state,
          queueDepth: load?.queueDepth ?? 0,
          inFlight: load?.inFlight ?? 0,
          concurrency: load?.concurrency ?? this.config.workers.concurrency
        }
      }
      if (load != null) ad.health.successRate = load.successRate
      if (s.latencyMs !== undefined) ad.health.latencyMs = Math.round(s.latencyMs * 10) / 10
      if (s.vramUsed !== undefined) ad.health.vramUsed = s.vramUsed
      if (s.vramTotal !== undefined) ad.health.vramTotal = s.vramTotal
      return ad
    })
    return { workers, health: nodeHealth(workers, this.startedAt) }
  }

  /** Remote peers of the live table, as the gateway shows them */
  peerViews (): PeerView[] {
    return this.presence.peers().map(entry => {
      const connected = this.libp2p.getConnections(entry.peerId as any)
      const addrs = new Set<string>(this.identifyAddrs.get(entry.peerId) ?? [])
      for (const conn of connected) addrs.add(conn.remoteAddr.toString())
      return {
        peerId: entry.peerId,
        multiaddrs: [...addrs].map(a => a.includes('/p2p/') ? a : `${a}/p2p/${entry.peerId}`),
        name: entry.beacon.name,
        version: entry.beacon.version,
        workers: entry.beacon.workers,
        health: entry.beacon.health,
        blocked: this.sysop.isPeerBlocked(entry.peerId),
        lastSeen: entry.lastSeen,
        firstSeen: entry.firstSeen
      }
    })
  }

  /**
   * The cache of the mesh views for the current local workers and peer table. Not rebuilt when
   * only this node's load changed, which every task does: the mesh's models do not depend on it,
   * and routing asks the executor for a local worker's wait rather than reading it from here
   */
  private meshViews (): { ad: LocalAd, sources?: RouteSource[], models?: MeshModel[] } {
    const now = Date.now()
    const peers = this.presence.table.version
    const c = this.meshCache
    if (c != null && c.workers === this.workersVersion && c.peers === peers && now - c.at < LOCAL_AD_MAX_AGE_MS) return c
    this.meshCache = { ad: this.localAd(), workers: this.workersVersion, peers, at: now }
    return this.meshCache
  }

  /** Where tasks can run: this node's workers and every live peer's (the same array while nothing changed; not to be changed) */
  routeSources (): RouteSource[] {
    const views = this.meshViews()
    views.sources ??= [
      { peerId: this.peerId, local: true, workers: views.ad.workers },
      ...this.presence.peers().map(e => ({ peerId: e.peerId, local: false, workers: e.beacon.workers }))
    ]
    return views.sources
  }

  /** Every model in the mesh: this node's and every live peer's (the same array while nothing changed; not to be changed) */
  models (): MeshModel[] {
    const views = this.meshViews()
    views.models ??= meshModels([
      { peerId: this.peerId, workers: views.ad.workers, firstSeen: this.startedAt },
      ...this.presence.peers().map(e => ({ peerId: e.peerId, workers: e.beacon.workers, firstSeen: e.firstSeen }))
    ])
    return views.models
  }
}

/**
 * A worker for any backend: the offline speech engines (`stt=pocketsphinx`, `tts=espeak-ng`) run
 * on this node; `stt=URL` / `tts=URL` are OpenAI-compatible speech servers
 */
function attachWorker (spec: WorkerSpec, init: WorkerInit): Worker {
  if (spec.backend === 'stt' || spec.backend === 'tts') {
    if (/^https?:/i.test(spec.target)) return createWorker({ ...spec, backend: 'openai' }, init)
    return createSpeechWorker({ backend: spec.backend, target: spec.target }, init)
  }
  return createWorker(spec, init)
}

/** Does a gateway host bind loopback only (this machine)? */
function isLoopbackHost (host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** Fields of events that carry what users wrote or were answered */
const PROMPT_FIELDS = ['prompt', 'messages', 'input', 'text', 'output']

/** The trace log keeps prompts and answers only when configured to (trace.keep_prompts) */
function redactPrompts (event: RealmEvent): RealmEvent {
  if (!PROMPT_FIELDS.some(f => f in event)) return event
  const copy: RealmEvent = { ...event }
  for (const f of PROMPT_FIELDS) if (f in copy) copy[f] = '[redacted]'
  return copy
}

function nodeHealth (workers: WorkerAd[], startedAt: number): NodeHealth {
  let queueDepth = 0
  let inFlight = 0
  let concurrency = 0
  let vramUsed: number | undefined
  let vramTotal: number | undefined
  const latencies: number[] = []
  for (const w of workers) {
    queueDepth += w.health.queueDepth
    inFlight += w.health.inFlight
    if (w.health.state === 'ok') concurrency += w.health.concurrency
    if (w.health.vramUsed !== undefined) vramUsed = (vramUsed ?? 0) + w.health.vramUsed
    if (w.health.vramTotal !== undefined) vramTotal = (vramTotal ?? 0) + w.health.vramTotal
    if (w.health.latencyMs !== undefined) latencies.push(w.health.latencyMs)
  }
  const health: NodeHealth = {
    queueDepth,
    inFlight,
    load: concurrency === 0 ? 0 : inFlight / concurrency,
    uptimeS: Math.round((Date.now() - startedAt) / 1000)
  }
  if (latencies.length > 0) health.latencyMs = Math.round(latencies.reduce((a, b) => a + b, 0) / latencies.length * 10) / 10
  if (vramUsed !== undefined) health.vramUsed = vramUsed
  if (vramTotal !== undefined) health.vramTotal = vramTotal
  return health
}

/** Build and start a node in one call */
export async function startNode (init: RealmNodeInit): Promise<RealmNode> {
  const node = await RealmNode.create(init)
  await node.start()
  return node
}
