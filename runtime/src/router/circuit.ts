/**
 * A circuit per pool: after `threshold` consecutive failures the pool is not called for `cooldownMs`;
 * then one request probes it, and its success closes the circuit again.
 */
export class Circuit {
  private failures = 0;
  private openUntil = 0;
  private probing = false;

  constructor(
    private readonly threshold = 5,
    private readonly cooldownMs = 2000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a request may go to the pool now (an open circuit lets one probe through after the cooldown). */
  allow(): boolean {
    if (this.failures < this.threshold) return true;
    if (this.now() < this.openUntil || this.probing) return false;
    this.probing = true;
    return true;
  }

  get open(): boolean {
    return this.failures >= this.threshold;
  }

  /** Seconds until the pool may be tried again, for Retry-After. */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((this.openUntil - this.now()) / 1000));
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
  }

  failure(): void {
    this.failures += 1;
    this.probing = false;
    if (this.failures >= this.threshold) this.openUntil = this.now() + this.cooldownMs;
  }
}
