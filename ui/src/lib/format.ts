/** Numbers, times and ids as the UI shows them. Pure: tested in test/unit/ui-views.test.ts */

/** `850 ms`, `1.2 s`, `12 s`, `2 min 5 s`, `1 h 3 min` */
export function formatDuration (ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '—'
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  if (s < 10) return `${(Math.round(s * 10) / 10).toFixed(1)} s`
  if (s < 60) return `${Math.round(s)} s`
  const totalS = Math.round(s)
  const min = Math.floor(totalS / 60)
  if (min < 60) {
    const rest = totalS % 60
    return rest === 0 ? `${min} min` : `${min} min ${rest} s`
  }
  const h = Math.floor(min / 60)
  const restMin = min % 60
  return restMin === 0 ? `${h} h` : `${h} h ${restMin} min`
}

/** The queue line from the node's 0-based position (0: next to run): `#3 in queue · about 12 s` */
export function formatQueue (position: number, etaMs: number | undefined): string {
  const place = `#${Math.max(0, Math.floor(position)) + 1} in queue`
  if (etaMs === undefined || !Number.isFinite(etaMs) || etaMs <= 0) return place
  return `${place} · about ${formatDuration(etaMs)}`
}

/** `512 B`, `1.5 KiB`, `12 MiB`, `1.2 GiB` */
export function formatBytes (bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return '—'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  if (i === 0) return `${Math.round(v)} B`
  return `${v < 10 ? (Math.round(v * 10) / 10).toString() : Math.round(v).toString()} ${units[i]}`
}

/** A peer id shortened for tables: `12D3Ko…x7Yq` (the whole id goes in a title) */
export function shortPeerId (peerId: string | undefined): string {
  if (peerId == null || peerId === '') return '—'
  if (peerId.length <= 14) return peerId
  return `${peerId.slice(0, 6)}…${peerId.slice(-4)}`
}

/** A price per unit in credits: `free`, `0.002 / token`, `no price set` (the peer advertises none) */
export function formatPrice (price: number | undefined, unit = 'unit'): string {
  if (price === undefined || !Number.isFinite(price)) return 'no price set'
  if (price === 0) return 'free'
  return `${formatCredits(price)} / ${unit}`
}

/** Credits with a sensible number of digits: `0`, `0.0021`, `1.5`, `1,234` */
export function formatCredits (amount: number): string {
  if (!Number.isFinite(amount)) return '—'
  if (amount === 0) return '0'
  const abs = Math.abs(amount)
  if (abs >= 1000) return Math.round(amount).toLocaleString('en-US')
  if (abs >= 1) return String(Math.round(amount * 100) / 100)
  return String(Number(amount.toPrecision(2)))
}

/** What a task cost: units × price per unit, `undefined` when either is unknown */
export function taskCost (units: number | undefined, price: number | undefined): number | undefined {
  if (units === undefined || price === undefined) return undefined
  if (!Number.isFinite(units) || !Number.isFinite(price)) return undefined
  return units * price
}

/** `just now`, `5 s ago`, `3 min ago`, `2 h ago`, else a date */
export function formatAgo (iso: string | number | undefined, now = Date.now()): string {
  if (iso === undefined) return '—'
  const t = typeof iso === 'number' ? iso : Date.parse(iso)
  if (!Number.isFinite(t)) return '—'
  const s = Math.round((now - t) / 1000)
  if (s < 2) return 'just now'
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`
  return new Date(t).toISOString().slice(0, 10)
}

/** `0.42` → `42 %` */
export function formatPercent (fraction: number | undefined): string {
  if (fraction === undefined || !Number.isFinite(fraction)) return '—'
  return `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)} %`
}

/** A conversation title from its first message: one line, at most `max` characters */
export function titleFrom (text: string, max = 48): string {
  const line = text.replace(/\s+/g, ' ').trim()
  if (line === '') return 'New chat'
  const chars = [...line]
  return chars.length <= max ? line : chars.slice(0, max - 1).join('') + '…'
}
