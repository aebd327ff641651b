/**
 * How a pool shares its inference workers between bots, as plain logic (no threads, an injectable
 * clock) so that it can be tested on its own:
 * - `FairQueue`: one lane's waiting requests, a FIFO per bot, picked by the compute time each bot has
 *   been served (start-time fair queuing), never a second request of a bot that has one running. A bot
 *   flooding its lane takes turns with the others instead of holding it.
 * - `ServiceTimes`: each bot's measured run time (moving average): the cost the fair queue charges and
 *   the estimate admission uses.
 * - `expectedWaitMs`: how long a new request would wait under fair queuing; admission refuses at once
 *   (503 with Retry-After) a request that cannot finish before its deadline, instead of queueing it until 504.
 * The quarantine rule, which reads the measured times too, is in quarantine.ts with the quarantine lane.
 */

/** Milliseconds since the epoch, as `Date.now()` (deadlines are in its terms): injected in tests. */
export interface Clock {
  now(): number;
}

/** What the fair queue needs of a request. */
export interface Queued {
  bot: string;
}

/** Measured run time per bot: an exponentially weighted moving average. */
export class ServiceTimes {
  private readonly ms = new Map<string, { mean: number; runs: number }>();

  /** @param alpha weight of the newest run. @param initialMs estimate for a bot never measured. */
  constructor(
    private readonly alpha = 0.3,
    private readonly initialMs = 1,
  ) {}

  record(bot: string, ms: number): void {
    const s = this.ms.get(bot);
    if (!s) this.ms.set(bot, { mean: ms, runs: 1 });
    else {
      s.mean += this.alpha * (ms - s.mean);
      s.runs += 1;
    }
  }

  /** The expected run time of the bot's next request. */
  estimate(bot: string): number {
    return this.ms.get(bot)?.mean ?? this.initialMs;
  }

  /** Runs measured since the bot was last forgotten. */
  runs(bot: string): number {
    return this.ms.get(bot)?.runs ?? 0;
  }

  /** Starts the bot's count of runs over (its average stays): after a change of lane. */
  restart(bot: string): void {
    const s = this.ms.get(bot);
    if (s) s.runs = 0;
  }
}

/**
 * One lane's waiting requests. `pick()` returns the oldest request of the waiting bot that has been
 * served the least compute time and has nothing running; `charge()` adds a finished run's time. A bot
 * that becomes active starts level with the least-served active bot, so time spent idle is not credit.
 */
export class FairQueue<J extends Queued> {
  private readonly waiting = new Map<string, J[]>();
  private readonly served = new Map<string, number>();
  /** What the bot picked last had been served: where a bot joining an empty queue starts. */
  private virtualTime = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(job: J): void {
    let list = this.waiting.get(job.bot);
    if (!list) {
      // Level with the least-served bot already waiting (computed before this one joins them), or, when
      // none waits, with the bot that ran last: a bot idle for long cannot run on credit.
      const floor = this.waiting.size > 0 ? this.leastServed() : this.virtualTime;
      if ((this.served.get(job.bot) ?? 0) < floor) this.served.set(job.bot, floor);
      this.waiting.set(job.bot, (list = []));
    }
    list.push(job);
    this.count++;
  }

  /** Takes a job out (its deadline passed while it waited). */
  remove(job: J): boolean {
    const list = this.waiting.get(job.bot);
    const i = list ? list.indexOf(job) : -1;
    if (i < 0) return false;
    list!.splice(i, 1);
    if (list!.length === 0) this.waiting.delete(job.bot);
    this.count--;
    return true;
  }

  /**
   * The next job to run, or undefined when every waiting bot already has a job running (or, with
   * `eligible`, when no waiting bot it accepts is left).
   */
  pick(running: ReadonlySet<string>, eligible?: (bot: string) => boolean): J | undefined {
    let best: string | undefined;
    let bestServed = Infinity;
    for (const bot of this.waiting.keys()) {
      if (running.has(bot) || (eligible && !eligible(bot))) continue;
      const s = this.served.get(bot) ?? 0;
      if (s < bestServed) {
        best = bot;
        bestServed = s;
      }
    }
    if (best === undefined) return undefined;
    this.virtualTime = bestServed;
    const list = this.waiting.get(best)!;
    const job = list.shift()!;
    if (list.length === 0) this.waiting.delete(best);
    this.count--;
    return job;
  }

  /** Charges a bot for compute time it used. */
  charge(bot: string, ms: number): void {
    this.served.set(bot, (this.served.get(bot) ?? 0) + ms);
  }

  /** Requests waiting per bot. */
  depths(): IterableIterator<[string, number]> {
    const it = this.waiting.entries();
    return (function* () {
      for (const [bot, list] of it) yield [bot, list.length] as [string, number];
    })();
  }

  /** Every waiting job: bot by bot, each bot's in the order they came. */
  *jobs(): IterableIterator<J> {
    for (const list of this.waiting.values()) yield* list;
  }

  /** Takes every waiting job out. */
  clear(): J[] {
    const all = [...this.jobs()];
    this.waiting.clear();
    this.count = 0;
    return all;
  }

  private leastServed(): number {
    let least = Infinity;
    for (const bot of this.waiting.keys()) least = Math.min(least, this.served.get(bot) ?? 0);
    return least === Infinity ? 0 : least;
  }
}

/**
 * How long a new request of `bot` would wait before its run ends, under fair queuing: what is running
 * finishes, the bot's own queue runs, and each other waiting bot runs at most as much work meanwhile.
 */
export function expectedWaitMs(o: {
  bot: string;
  /** Estimated remaining ms of each run in progress on the lane. */
  running: number[];
  /** Requests waiting per bot on the lane. */
  depths: Iterable<[string, number]>;
  estimate(bot: string): number;
}): number {
  const own = o.estimate(o.bot);
  let ownWork = own;
  const others: number[] = [];
  for (const [bot, n] of o.depths) {
    if (bot === o.bot) ownWork += n * own;
    else others.push(n * o.estimate(bot));
  }
  let wait = ownWork;
  for (const w of others) wait += Math.min(w, ownWork);
  for (const r of o.running) wait += Math.max(0, r);
  return wait;
}
