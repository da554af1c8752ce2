import { DEFAULT_EWMA_ALPHA, DEFAULT_SERVICE_TIME_MS } from './constants.js'
import { InvalidQueueOptionError } from './errors.js'
import type { EtaModel } from './index.js'

/**
 * Estimated ms until the task at `position` gets a slot (add `serviceTimeMs` for when it
 * finishes): the first slot frees after `inFlightRemainingMs` (default: a whole `serviceTimeMs`),
 * then the `position` tasks ahead go through `slots` slots at a time:
 * `inFlightRemainingMs + position / slots × serviceTimeMs`, i.e. `(position / slots + 1) ×
 * serviceTimeMs` when nothing is known of the running tasks. Non-decreasing in `position`.
 */
export function etaForPosition (position: number, model: EtaModel): number {
  const serviceTimeMs = nonNegative(model.serviceTimeMs)
  const slots = Number.isFinite(model.slots) && model.slots >= 1 ? Math.floor(model.slots) : 1
  const inFlightRemainingMs = model.inFlightRemainingMs === undefined ? serviceTimeMs : nonNegative(model.inFlightRemainingMs)
  return inFlightRemainingMs + Math.max(0, position) / slots * serviceTimeMs
}

function nonNegative (ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? ms : 0
}

export interface ServiceTimeEwmaInit {
  /** weight of the newest sample, in (0, 1]; default 0.2 (`DEFAULT_EWMA_ALPHA`) */
  alpha?: number
  /** the estimate before any sample, ms; default 10 000 (`DEFAULT_SERVICE_TIME_MS`) */
  initialMs?: number
}

/**
 * Exponentially weighted moving average of a model's service time (one per model): feeds
 * `EtaModel.serviceTimeMs`. The first sample replaces the initial guess (a guess is not a
 * measurement); each later one moves the estimate by `alpha` of the difference.
 */
export class ServiceTimeEwma {
  readonly alpha: number
  private estimate: number
  private count = 0

  constructor (init: ServiceTimeEwmaInit = {}) {
    this.alpha = init.alpha ?? DEFAULT_EWMA_ALPHA
    if (!(this.alpha > 0 && this.alpha <= 1)) throw new InvalidQueueOptionError('alpha', init.alpha, 'a number in (0, 1]')
    this.estimate = init.initialMs ?? DEFAULT_SERVICE_TIME_MS
    if (!(Number.isFinite(this.estimate) && this.estimate >= 0)) throw new InvalidQueueOptionError('initialMs', init.initialMs, 'a finite number ≥ 0')
  }

  /** record one task's service time (ms, finite, ≥ 0); returns the new estimate */
  observe (ms: number): number {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new InvalidQueueOptionError('service time', ms, 'a finite number of ms ≥ 0')
    this.estimate = this.count === 0 ? ms : this.estimate + this.alpha * (ms - this.estimate)
    this.count++
    return this.estimate
  }

  /** the current estimate, ms */
  get valueMs (): number {
    return this.estimate
  }

  /** samples observed so far */
  get samples (): number {
    return this.count
  }
}
