/**
 * The circuit breaker in front of a store, as a state machine with time passed in (no clock inside, as in
 * x/time/rate): `failures` failures in a row open it for `cooldownMs`; then one call at a time probes the
 * store, and a success closes it. Each method returns the transitions it caused, for the limiter to report.
 */
export type BreakerState = 'closed' | 'open' | 'half-open'

export type BreakerTransition =
  | { readonly type: 'degraded' }
  | { readonly type: 'breaker'; readonly state: BreakerState }
  | { readonly type: 'recovered'; readonly downMs: number }

/** What a call may do now: go to the store, go as the one probe, or be decided by the fallback at once. */
export type BreakerAdmission = 'call' | 'probe' | 'fallback'

const none: readonly BreakerTransition[] = []

export class Breaker {
  private consecutiveFailures = 0
  private openUntil = 0
  private probing = false
  private degradedSince: number | undefined

  constructor(
    readonly failuresToOpen: number,
    readonly cooldownMs: number,
  ) {}

  get state(): BreakerState {
    if (this.openUntil === 0) return 'closed'
    return this.probing ? 'half-open' : 'open'
  }

  /** ms a refusal during an outage should ask the client to wait. */
  retryAfterMs(now: number): number {
    return Math.max(1, this.openUntil - now, this.cooldownMs)
  }

  /** True while the store is known to be failing (a call now would probably fail). */
  /** Closed: every call goes to the store (admit would say 'call'; no clock needed to know it). */
  closed(): boolean {
    return this.openUntil === 0
  }

  failing(): boolean {
    return this.consecutiveFailures > 0
  }

  admit(now: number): { admission: BreakerAdmission; transitions: readonly BreakerTransition[] } {
    if (this.openUntil === 0) return { admission: 'call', transitions: none }
    if (now < this.openUntil || this.probing) return { admission: 'fallback', transitions: none }
    this.probing = true
    return { admission: 'probe', transitions: [{ type: 'breaker', state: 'half-open' }] }
  }

  success(now: number, admission: BreakerAdmission): readonly BreakerTransition[] {
    if (admission === 'probe') this.probing = false
    const wasOpen = this.openUntil !== 0
    this.consecutiveFailures = 0
    this.openUntil = 0
    // Stryker disable next-line ArrayDeclaration,ObjectLiteral,StringLiteral: unreachable: the breaker opens only on a failure, which sets degradedSince, so wasOpen is false here
    if (this.degradedSince === undefined) return wasOpen ? [{ type: 'breaker', state: 'closed' }] : none
    const downMs = Math.max(0, now - this.degradedSince)
    this.degradedSince = undefined
    const transitions: BreakerTransition[] = wasOpen ? [{ type: 'breaker', state: 'closed' }] : []
    transitions.push({ type: 'recovered', downMs })
    return transitions
  }

  failure(now: number, admission: BreakerAdmission): readonly BreakerTransition[] {
    if (admission === 'probe') this.probing = false
    this.consecutiveFailures++
    const transitions: BreakerTransition[] = []
    if (this.degradedSince === undefined) {
      this.degradedSince = now
      transitions.push({ type: 'degraded' })
    }
    if (this.consecutiveFailures >= this.failuresToOpen) {
      const wasOpen = this.openUntil !== 0
      this.openUntil = now + this.cooldownMs
      if (!wasOpen || admission === 'probe') transitions.push({ type: 'breaker', state: 'open' })
    }
    return transitions
  }
}
