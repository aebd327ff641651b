/**
 * The quarantine rule: which bots are confined to a lane of their own, from their measured run times
 * (scheduler.ts ServiceTimes). Plain logic, tested on its own.
 */
import type { ServiceTimes } from '../scheduler';

export interface QuarantineOptions {
  /** Runs slower than this (ms) are slow: the share of the bot's group timeout. */
  slowMs(bot: string): number;
  /** Runs measured before a bot can be confined or released. @default 3 */
  minRuns?: number;
}

/**
 * Which bots are confined to a lane of their own. A bot goes in when its average run time is above
 * `slowMs` (after `minRuns` runs), and comes out when it is below half of that (after `minRuns` runs in
 * quarantine): the gap keeps a bot near the threshold from going back and forth.
 */
export class Quarantine {
  private readonly confined = new Set<string>();

  constructor(
    private readonly times: ServiceTimes,
    private readonly o: QuarantineOptions,
  ) {}

  has(bot: string): boolean {
    return this.confined.has(bot);
  }

  get bots(): ReadonlySet<string> {
    return this.confined;
  }

  /** After a run of `bot` was recorded: 'confined' or 'released' when its state changes. */
  check(bot: string): 'confined' | 'released' | undefined {
    if (this.times.runs(bot) < (this.o.minRuns ?? 3)) return undefined;
    const mean = this.times.estimate(bot);
    const slow = this.o.slowMs(bot);
    if (!this.confined.has(bot) && mean > slow) {
      this.confined.add(bot);
      this.times.restart(bot);
      return 'confined';
    }
    if (this.confined.has(bot) && mean < slow / 2) {
      this.confined.delete(bot);
      this.times.restart(bot);
      return 'released';
    }
    return undefined;
  }

  /** The bot is gone (unloaded): it leaves quarantine without a transition. */
  forget(bot: string): boolean {
    return this.confined.delete(bot);
  }
}
