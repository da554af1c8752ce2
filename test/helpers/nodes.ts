/** Start real realm nodes in this process, on loopback, each with its own temp data dir */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { RealmNode, type RealmNodeInit } from '../../node/node.js'
import type { RealmConfig } from '../../node/config/index.js'

export interface TestNodeOptions extends Partial<Omit<RealmNodeInit, 'dataDir'>> {
  dataDir?: string
  workers?: string[]
  bootstrap?: string[]
  presenceIntervalMs?: number
  host?: string
  /** extra config changes */
  config?: (config: RealmConfig) => void
}

export const TEST_PRESENCE_INTERVAL_MS = 500

export async function tempDir (prefix = 'realm-test-'): Promise<string> {
  return await fs.mkdtemp(path.join(os.tmpdir(), prefix))
}

/** A node as tests start it: --no-detect --no-mdns, loopback, port 0, fast beacons */
export async function startTestNode (opts: TestNodeOptions = {}): Promise<RealmNode> {
  const dataDir = opts.dataDir ?? await tempDir()
  const host = opts.host ?? '127.0.0.1'
  const node = await RealmNode.create({
    dataDir,
    flags: {
      http: '127.0.0.1:0',
      listen: [`/ip4/${host}/tcp/0`],
      bootstrap: opts.bootstrap,
      worker: opts.workers,
      detect: false,
      mdns: false
    },
    env: {},
    warn: opts.warn ?? (() => {}),
    rendezvousIntervalMs: opts.rendezvousIntervalMs ?? 1000,
    workerInit: { probeIntervalMs: 200, backoffBaseMs: 100, backoffMaxMs: 400, ...opts.workerInit },
    configure: (config) => {
      config.presence.interval_ms = opts.presenceIntervalMs ?? TEST_PRESENCE_INTERVAL_MS
      opts.config?.(config)
      opts.configure?.(config)
    },
    uiDir: opts.uiDir
  })
  await node.start()
  return node
}

/** Tracks what a test started and stops it all, data dirs included */
export class Cleanup {
  private readonly tasks: Array<() => Promise<unknown> | unknown> = []

  add (fn: () => Promise<unknown> | unknown): void {
    this.tasks.push(fn)
  }

  node (node: RealmNode, removeDir = true): RealmNode {
    this.add(async () => {
      await node.stop()
      if (removeDir) await fs.rm(node.dataDir, { recursive: true, force: true })
    })
    return node
  }

  async run (): Promise<void> {
    const tasks = this.tasks.splice(0).reverse()
    for (const task of tasks) {
      try {
        await task()
      } catch {
        // cleanup goes on whatever failed
      }
    }
  }
}

export function addrOf (node: RealmNode): string {
  const a = node.multiaddrs().find(m => m.includes('/tcp/') && !m.includes('/ws'))
  if (a == null) throw new Error('node has no tcp address')
  return a
}
