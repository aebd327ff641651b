/**
 * A circuit per pool: after `threshold` consecutive failures the pool is not called for `cooldownMs`;
 * then one request probes it: its success closes the circuit, its failure (a timeout included) opens it
 * for another cooldown. A probe that never reports back (a bug, a request dropped on the floor) stops
 * counting after `probeTimeoutMs`, so the circuit can never stay half-open.
 */
export class Circuit {
  private failures = 0;
  private openUntil = 0;
  /** When the probe in flight was let through; undefined when none is. */
  private probeSince?: number;

  constructor(
    private readonly threshold = 5,
    private readonly cooldownMs = 2000,
    private readonly now: () => number = Date.now,
    private readonly probeTimeoutMs = Math.max(cooldownMs, 10_000),
  ) {}

  /** Whether a request may go to the pool now (an open circuit lets one probe through after the cooldown). */
  allow(): boolean {
    if (this.failures < this.threshold) return true;
    const t = this.now();
    if (t < this.openUntil) return false;
    if (this.probeSince !== undefined && t - this.probeSince < this.probeTimeoutMs) return false;
    this.probeSince = t;
    return true;
  }

  get open(): boolean {
    return this.failures >= this.threshold;
  }

  /** Whether a probe is in flight: the circuit is half-open. */
  get probing(): boolean {
    return this.probeSince !== undefined;
  }

  /** Seconds until the pool may be tried again, for Retry-After. */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((this.openUntil - this.now()) / 1000));
  }

  success(): void {
    this.failures = 0;
    this.probeSince = undefined;
  }

  /** A call that ended for the caller's reasons (its own deadline, a cancel): it says nothing of the pool. */
  abandon(): void {
    this.probeSince = undefined;
  }

  failure(): void {
    this.failures += 1;
    this.probeSince = undefined;
    if (this.failures >= this.threshold) this.openUntil = this.now() + this.cooldownMs;
  }
}
