import { RealmError } from './errors.js'

/**
 * What a gossip validator decides. REJECT penalises the sender (malformed, unsigned, wrongly
 * signed, oversized); IGNORE drops without penalty (stale, duplicate, from ourselves).
 */
export type Verdict = 'accept' | 'ignore' | 'reject'

/** Thrown by validators: carries the verdict for gossipsub and a code for the trace/metrics */
export class GossipValidationError extends RealmError {
  override name = 'GossipValidationError'
  readonly verdict: Exclude<Verdict, 'accept'>

  constructor (verdict: Exclude<Verdict, 'accept'>, code: string, message: string) {
    super(code, message)
    this.verdict = verdict
  }
}
