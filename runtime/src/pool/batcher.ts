/**
 * What runs together: which waiting requests of a lane go in its next message (the thread runs those that
 * share an encoder as one batch), and whether the lane waits a little for more of them first (the group's
 * batch window). Plain rules over a lane's queue, an injected clock and timers: tested on their own.
 */
import { Job, Lane, rowsOf } from './lane';
import { Clock, ServiceTimes } from './scheduler';

/** Most requests in one message to a thread (their texts are bounded by the group's `batchMaxRows`). */
export const MAX_JOBS_PER_MESSAGE = 32;

/**
 * Requests share a message only when their bots' runs are measured and take at most this share of what
 * quarantines a bot (a quarter: 50 ms in a real-time group of 2 s). A bot never measured (it may be slow) or a
 * slower one runs alone in its message: the thread answers a message once all of it has run, so nothing waits
 * for such a run but the messages queued behind it.
 */
const SHARED_SHARE_OF_SLOW = 0.25;

/** The group settings the batcher follows (read at each decision: a catalog change applies at once). */
export interface BatchSettings {
  /** How long a lane may wait for more requests to batch. */
  batchWindowMs: number;
  /** Most texts in one message (1: no batching). */
  batchMaxRows: number;
  /** Runs slower than this on average (ms) put a bot in quarantine. */
  slowMs: number;
}

/** What the batcher reads of a lane (and the window timer it sets there). */
export type BatchLane = Pick<Lane, 'queue' | 'running' | 'inflight' | 'perMessage' | 'windowTimer'>;

export class Batcher {
  constructor(
    private readonly times: ServiceTimes,
    private readonly clock: Clock,
    private readonly settings: () => BatchSettings,
  ) {}

  /**
   * Whether to wait a little for more requests before sending a message (the batch window): only while the
   * thread is busy with another message (an idle thread never waits), the waiting requests are fewer than a
   * full batch, and the oldest has waited less than the window. `windowEnded` is called when it ends.
   */
  hold(lane: BatchLane, windowEnded: () => void): boolean {
    const { batchWindowMs, batchMaxRows } = this.settings();
    if (batchWindowMs <= 0 || lane.perMessage === 1 || lane.queue.size === 0 || lane.inflight.size === 0) return false;
    if (lane.windowTimer) return true;
    let rows = 0;
    let oldest = Infinity;
    for (const job of lane.queue.jobs()) {
      rows += rowsOf(job);
      oldest = Math.min(oldest, job.queuedAt);
    }
    const wait = oldest + batchWindowMs - this.clock.now();
    if (rows >= batchMaxRows || wait <= 0) return false;
    lane.windowTimer = setTimeout(() => {
      lane.windowTimer = undefined;
      windowEnded();
    }, wait);
    lane.windowTimer.unref();
    return true;
  }

  /**
   * The requests of the next message: picked one by one by the fair queue (each charged its bot's expected
   * run time as it is picked, so one bot does not fill the message), up to the message's bounds, among bots
   * with nothing running and not `blocked` (waiting for a load).
   */
  gather(lane: BatchLane, blocked: ReadonlySet<string>): Job[] {
    const { batchMaxRows, slowMs } = this.settings();
    const jobs: Job[] = [];
    const sharedMaxMs = SHARED_SHARE_OF_SLOW * slowMs;
    const alone = (bot: string) => this.times.runs(bot) === 0 || this.times.estimate(bot) > sharedMaxMs;
    let rows = 0;
    while (jobs.length < lane.perMessage && rows < batchMaxRows) {
      const job = lane.queue.pick(lane.running, (bot) => !blocked.has(bot) && (jobs.length === 0 || !alone(bot)));
      if (!job) break;
      if (job.done) continue;
      job.charged = this.times.estimate(job.bot);
      lane.queue.charge(job.bot, job.charged);
      rows += rowsOf(job);
      jobs.push(job);
      if (alone(job.bot)) break;
    }
    return jobs;
  }
}
