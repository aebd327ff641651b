/**
 * Shedding: which inference requests a pool refuses at once rather than queue (503 with Retry-After), and
 * the errors of a request that cannot be answered. A bot may have so many requests waiting or running, a
 * lane so many waiting; a request that could not finish before its deadline, by the measured run times,
 * is refused at once instead of queued until it gets a 504.
 */
import type { Lane } from './lane';
import { ServiceTimes, expectedWaitMs } from './scheduler';

/** Why a request was shed. */
export type ShedReason = 'bot' | 'worker' | 'wait' | 'closing';

/** The request cannot be taken now: answer 503 with Retry-After. */
export class OverloadedError extends Error {
  readonly statusCode = 503;
  constructor(
    message: string,
    readonly reason: ShedReason,
    /** When retrying can succeed. */
    readonly retryAfterSeconds = 1,
  ) {
    super(message);
  }
}

/** The request's deadline passed: answer 504. */
export class DeadlineError extends Error {
  readonly statusCode = 504;
}

/** The pool is stopping: nothing more is taken. */
export const closingError = () => new OverloadedError('the pool is shutting down', 'closing');

export interface QueueLimits {
  /** Inference requests waiting per lane beyond those in flight. */
  workerQueue: number;
  /** Inference requests waiting or running per bot. */
  botQueue: number;
}

/** A group's concurrency as queue bounds: per lane all of it, per bot half of it (at least 2). */
export function queueLimits(concurrency: number): QueueLimits {
  return { workerQueue: concurrency, botQueue: Math.max(2, Math.ceil(concurrency / 2)) };
}

/** The requests each bot has waiting or running, against the queue bounds in force. */
export class Shedding {
  private readonly perBot = new Map<string, number>();

  constructor(private readonly times: ServiceTimes) {}

  /** Throws OverloadedError when the bot has as many requests waiting or running as it may. */
  checkBot(bot: string, limits: QueueLimits): void {
    const { botQueue } = limits;
    if ((this.perBot.get(bot) ?? 0) >= botQueue) throw new OverloadedError(`bot "${bot}" has ${botQueue} requests queued already`, 'bot');
  }

  /** Throws OverloadedError when the lane's queue is full, or when the request would end after its deadline. */
  checkLane(lane: Lane, bot: string, deadline: number, now: number, limits: QueueLimits): void {
    const { workerQueue } = limits;
    if (lane.queue.size >= workerQueue) throw new OverloadedError(`inference worker ${lane.index} has ${workerQueue} requests queued already`, 'worker');
    const wait = this.expectedWait(lane, bot, now);
    if (now + wait > deadline) {
      throw new OverloadedError(`bot "${bot}" would answer in about ${Math.ceil(wait)} ms, after its deadline`, 'wait', Math.max(1, Math.ceil(wait / 1000)));
    }
  }

  /** A request of the bot was taken. */
  taken(bot: string): void {
    this.perBot.set(bot, (this.perBot.get(bot) ?? 0) + 1);
  }

  /** A request of the bot ended (answered, failed or past its deadline). */
  ended(bot: string): void {
    const n = (this.perBot.get(bot) ?? 1) - 1;
    if (n <= 0) this.perBot.delete(bot);
    else this.perBot.set(bot, n);
  }

  /** How long a new request of `bot` would take on `lane` to finish, by the measured run times. */
  private expectedWait(lane: Lane, bot: string, now: number): number {
    // Messages run one after the other in the thread: only the oldest one in flight has started.
    const running: number[] = [];
    let first = true;
    for (const jobs of lane.inflight.values()) {
      let left = 0;
      for (const job of jobs) if (job.payload.type === 'infer') left += this.times.estimate(job.bot);
      running.push(first ? left - (now - (jobs[0].sentAt ?? now)) : left);
      first = false;
    }
    return expectedWaitMs({ bot, running, depths: lane.queue.depths(), estimate: (b) => this.times.estimate(b) });
  }
}
