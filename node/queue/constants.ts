/** Defaults of the fair queue (see FairQueueInit in index.ts) */

/** Most tasks waiting in the node's queue, like the config's `queue.max_size` */
export const DEFAULT_MAX_SIZE = 1024

/** Most tasks one requester may have waiting; DESIGN.md promises each requester at least 16 */
export const DEFAULT_PER_REQUESTER = 16

/** A requester's share: one turn per round */
export const DEFAULT_WEIGHT = 1

/**
 * Smallest share: a turn every 64 rounds. Smaller weights count as this, which bounds how long
 * the queue remembers a requester's last turn and the span of rounds `positions()` walks.
 */
export const MIN_WEIGHT = 1 / 64

/** Service time assumed for a model never timed yet: a typical chat answer from a local model */
export const DEFAULT_SERVICE_TIME_MS = 10_000

/** Weight of the newest sample in the service time EWMA */
export const DEFAULT_EWMA_ALPHA = 0.2

/** Tasks one resource runs at once, like Ollama's default (config `workers.concurrency`) */
export const DEFAULT_SLOTS = 1

/** A client told to come back is told to wait at least this long (HTTP `Retry-After` is in whole seconds) */
export const MIN_RETRY_AFTER_S = 1

/** A requester's FIFO drops its served prefix once that many slots are dead (and half the array) */
export const FIFO_COMPACT_MIN = 32
