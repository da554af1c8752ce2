/**
 * The models of the mesh as the pickers show them: from `/realm/models` (names, kinds, which
 * peers serve them), `/realm/peers` (remote peers' workers: prices, vision, names) and
 * `/realm/workers` (this node's own). Pure; tested in test/unit/ui-views.test.ts.
 */
import type { ModelInfo, ModelResponse, PeerResponse, TaskKind, WorkerAd } from './types.js'

export interface Provider {
  peerId: string
  /** the peer's self-chosen name (shown as text) */
  name?: string
  /** this node */
  local: boolean
  /** price per unit; 0 free; undefined unknown */
  price?: number
}

export interface CatalogModel {
  name: string
  kinds: TaskKind[]
  /** takes images in chat */
  vision: boolean
  context?: number
  family?: string
  parameterSize?: string
  providers: Provider[]
  /** the lowest price among providers, where any is known */
  minPrice?: number
}

export interface CatalogInput {
  models: ModelResponse[]
  peers: PeerResponse[]
  /** this node's peer id and workers */
  self?: { peerId: string, workers: WorkerAd[] }
}

/** Where a model looks like a vision model by name when no worker says (Ollama's own families) */
const VISION_NAME_RE = /(llava|bakllava|vision|moondream|minicpm-v|qwen2?\.?5?-?vl|gemma3|llama4|granite3\.2-vision|pixtral)/i

export function buildCatalog (input: CatalogInput): CatalogModel[] {
  const ads = new Map<string, Array<{ info: ModelInfo, provider: Provider }>>()
  const add = (peerId: string, name: string | undefined, local: boolean, models: ModelInfo[]): void => {
    for (const info of models) {
      const list = ads.get(info.name) ?? []
      list.push({ info, provider: { peerId, name, local, price: info.price } })
      ads.set(info.name, list)
    }
  }
  if (input.self != null) for (const w of input.self.workers) add(input.self.peerId, undefined, true, w.models)
  for (const p of input.peers) for (const w of p.capabilities?.workers ?? []) add(p.peerId, p.name, false, w.models ?? [])

  const out: CatalogModel[] = []
  for (const m of input.models) {
    const found = ads.get(m.name) ?? []
    const providers: Provider[] = []
    for (const peerId of m.peers) {
      const ad = found.find(a => a.provider.peerId === peerId)
      const peer = input.peers.find(p => p.peerId === peerId)
      providers.push(ad?.provider ?? { peerId, name: peer?.name, local: input.self?.peerId === peerId })
    }
    const prices = providers.map(p => p.price).filter((p): p is number => p !== undefined)
    // workers say `vision: true` for models that read images; the name decides only when no ad is at hand
    const vision = m.kinds.includes('chat') && (found.length > 0 ? found.some(a => a.info.vision === true) : VISION_NAME_RE.test(m.name))
    const entry: CatalogModel = { name: m.name, kinds: m.kinds, vision, providers }
    if (m.context !== undefined) entry.context = m.context
    if (m.family !== undefined) entry.family = m.family
    if (m.parameterSize !== undefined) entry.parameterSize = m.parameterSize
    if (prices.length > 0) entry.minPrice = Math.min(...prices)
    out.push(entry)
  }
  return out.sort((a, b) => a.name.localeCompare(b.name))
}

/** Kinds as the pickers group them, in this order */
export const KIND_LABELS: Record<TaskKind, string> = {
  chat: 'Chat',
  generate: 'Text completion',
  imagine: 'Image generation',
  transcribe: 'Speech to text',
  speak: 'Text to speech',
  embed: 'Embeddings'
}

/** The models that serve one of `kinds`, grouped by their first such kind, in `kinds` order */
export function groupByKind (catalog: CatalogModel[], kinds: TaskKind[]): Array<{ kind: TaskKind, label: string, models: CatalogModel[] }> {
  const groups = kinds.map(kind => ({ kind, label: KIND_LABELS[kind], models: [] as CatalogModel[] }))
  for (const model of catalog) {
    const group = groups.find(g => model.kinds.includes(g.kind))
    group?.models.push(model)
  }
  return groups.filter(g => g.models.length > 0)
}

/** Models a view offers: chat → chat models; vision → chat models that take images; imagine → imagine */
export function modelsFor (catalog: CatalogModel[], view: 'chat' | 'vision' | 'imagine'): CatalogModel[] {
  if (view === 'imagine') return catalog.filter(m => m.kinds.includes('imagine'))
  if (view === 'vision') return catalog.filter(m => m.vision)
  return catalog.filter(m => m.kinds.includes('chat'))
}

/** Keep the chosen model while it is offered, else the first offered (vision: prefer a vision one) */
export function pickModel (offered: CatalogModel[], current: string | undefined): string | undefined {
  if (current !== undefined && offered.some(m => m.name === current)) return current
  return offered[0]?.name
}

/** The price a peer asks for a model, for the cost of a finished task */
export function priceOf (catalog: CatalogModel[], peerId: string, model: string): number | undefined {
  return catalog.find(m => m.name === model)?.providers.find(p => p.peerId === peerId)?.price
}

/** The line a picker shows for a model: `llava:7b — 2 peers · free` */
export function providerSummary (model: CatalogModel): string {
  const n = model.providers.length
  const peers = `${n} peer${n === 1 ? '' : 's'}`
  if (model.minPrice === undefined) return peers
  return `${peers} · ${model.minPrice === 0 ? 'free' : `from ${model.minPrice} / unit`}`
}
