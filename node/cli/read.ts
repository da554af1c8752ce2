/** Read-only commands: status, peers, models */
import { getJson } from './client.js'

function print (s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n')
}

function ago (iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`
}

export async function statusCommand (values: { json?: boolean }, dataDir: string): Promise<number> {
  const status = await getJson(dataDir, '/realm/status')
  if (values.json === true) {
    print(JSON.stringify(status, null, 2))
    return 0
  }
  print([
    `peer id   ${status.peerId}`,
    `version   ${status.version}   up ${status.uptimeS}s`,
    `peers     ${status.peers} in the realm, ${status.connections} connected`,
    `workers   ${status.workersOk} ok of ${status.workers} local; ${status.models} models in the mesh`,
    'addresses',
    ...status.multiaddrs.map((a: string) => `  ${a}`)
  ].join('\n'))
  return 0
}

export async function peersCommand (values: { json?: boolean }, dataDir: string): Promise<number> {
  const { peers } = await getJson(dataDir, '/realm/peers')
  if (values.json === true) {
    print(JSON.stringify({ peers }, null, 2))
    return 0
  }
  if (peers.length === 0) {
    print('no peers yet (join a node with realm start --bootstrap MULTIADDR)')
    return 0
  }
  const lines: string[] = []
  for (const p of peers) {
    const workers = p.capabilities.workers
    lines.push(`${p.peerId}${p.name != null ? ` (${p.name})` : ''}  v${p.version}  seen ${ago(p.lastSeen)}  queue ${p.health.queueDepth}  in-flight ${p.health.inFlight}${p.blocked === true ? '  BLOCKED' : ''}`)
    for (const w of workers) {
      const h = p.health.workers?.[w.id]
      lines.push(`  ${w.id} [${h?.state ?? '?'}] ${w.models.map((m: any) => m.name).join(', ') || '(no models)'}`)
    }
  }
  print(lines.join('\n'))
  return 0
}

export async function modelsCommand (values: { json?: boolean }, dataDir: string): Promise<number> {
  const { models } = await getJson(dataDir, '/realm/models')
  if (values.json === true) {
    print(JSON.stringify({ models }, null, 2))
    return 0
  }
  if (models.length === 0) {
    print('no models in the mesh yet (attach a backend with realm start --worker ollama=http://127.0.0.1:11434)')
    return 0
  }
  const width = Math.max(...models.map((m: any) => m.name.length))
  print(models.map((m: any) => `${m.name.padEnd(width)}  ${m.kinds.join(',').padEnd(20)}  ${m.peers.length} peer${m.peers.length === 1 ? '' : 's'}`).join('\n'))
  return 0
}
