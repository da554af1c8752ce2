/** Reconnection delays for the events socket: exponential with jitter, capped. Pure */

export const RECONNECT_BASE_MS = 500
export const RECONNECT_MAX_MS = 15_000

/** Delay before attempt `n` (0-based); `random` in [0, 1) spreads clients that lost the node together */
export function reconnectDelay (attempt: number, random = Math.random()): number {
  const exp = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.max(0, Math.min(attempt, 20)))
  return Math.round(exp / 2 + (exp / 2) * random)
}
