/**
 * The pool's scheduling logic on its own (no threads, time given explicitly): fair share between bots,
 * one run per bot at a time, the expected wait that admission decides on, and quarantine with recovery.
 */
import { Quarantine } from '@botshard/runtime/pool/quarantine';
import { FairQueue, ServiceTimes, expectedWaitMs } from '@botshard/runtime/pool/scheduler';

interface Job {
  bot: string;
  n: number;
}

/**
 * Runs a lane to the end on a simulated clock: one run at a time, each bot's run taking `cost[bot]` ms.
 * Returns when each job finished. `order` picks the next job: the fair queue, or first come first served.
 */
function simulate(jobs: Job[], cost: Record<string, number>, order: 'fair' | 'fifo'): Map<Job, number> {
  const done = new Map<Job, number>();
  let now = 0;
  if (order === 'fifo') {
    for (const job of jobs) done.set(job, (now += cost[job.bot]));
    return done;
  }
  const queue = new FairQueue<Job>();
  for (const job of jobs) queue.push(job);
  for (let job = queue.pick(new Set()); job; job = queue.pick(new Set())) {
    now += cost[job.bot];
    queue.charge(job.bot, cost[job.bot]);
    done.set(job, now);
  }
  return done;
}

describe('FairQueue', () => {
  const cost = { slow: 400, fast: 2 };
  // A flood of the slow bot arrives first, then the fast bot's requests.
  const jobs: Job[] = [...Array.from({ length: 10 }, (_, n) => ({ bot: 'slow', n })), ...Array.from({ length: 5 }, (_, n) => ({ bot: 'fast', n }))];
  const fastDoneBy = (done: Map<Job, number>) => Math.max(...jobs.filter((j) => j.bot === 'fast').map((j) => done.get(j)!));

  test('a flood does not hold another bot back: the fast bot is done after at most one slow run', () => {
    expect(fastDoneBy(simulate(jobs, cost, 'fair'))).toBeLessThanOrEqual(400 + 5 * 2);
  });

  test('first come, first served fails the same check (the fast bot waits for the whole flood)', () => {
    expect(fastDoneBy(simulate(jobs, cost, 'fifo'))).toBeGreaterThan(400 + 5 * 2);
    expect(fastDoneBy(simulate(jobs, cost, 'fifo'))).toBe(10 * 400 + 5 * 2);
  });

  test('each bot keeps its own order', () => {
    const done = simulate(jobs, cost, 'fair');
    for (const bot of ['slow', 'fast']) {
      const times = jobs.filter((j) => j.bot === bot).map((j) => done.get(j)!);
      expect(times).toEqual([...times].sort((a, b) => a - b));
    }
  });

  test('never a second job of a bot that has one running; undefined when only such bots wait', () => {
    const q = new FairQueue<Job>();
    q.push({ bot: 'a', n: 0 });
    q.push({ bot: 'a', n: 1 });
    q.push({ bot: 'b', n: 0 });
    expect(q.pick(new Set(['a']))).toEqual({ bot: 'b', n: 0 });
    expect(q.pick(new Set(['a']))).toBeUndefined();
    expect(q.size).toBe(2);
    expect(q.pick(new Set())).toEqual({ bot: 'a', n: 0 });
  });

  test('time spent idle is not credit: a bot that arrives late shares from then on', () => {
    const q = new FairQueue<Job>();
    for (let n = 0; n < 20; n++) q.push({ bot: 'a', n });
    for (let i = 0; i < 10; i++) q.charge(q.pick(new Set())!.bot, 100); // a has been served 1000 ms
    for (let n = 0; n < 10; n++) q.push({ bot: 'late', n }); // late arrives, as costly as a
    const next: string[] = [];
    for (let i = 0; i < 10; i++) {
      const job = q.pick(new Set())!;
      q.charge(job.bot, 100);
      next.push(job.bot);
    }
    // Alternating, not ten of "late" in a row to catch up on the 1000 ms it never asked for.
    expect(next.filter((b) => b === 'late')).toHaveLength(5);
    expect(next.slice(0, 4).sort()).toEqual(['a', 'a', 'late', 'late']);
  });

  test('nor does time idle on an empty queue: a bot joining it starts level with the bot that ran last', () => {
    const q = new FairQueue<Job>();
    for (let n = 0; n < 10; n++) {
      q.push({ bot: 'a', n });
      q.charge(q.pick(new Set())!.bot, 100); // a runs alone, one request at a time: the queue empties each time
    }
    q.push({ bot: 'a', n: 10 });
    q.charge(q.pick(new Set())!.bot, 100); // a is picked at 900 served, and the queue is empty again
    for (let n = 0; n < 5; n++) q.push({ bot: 'idle', n }); // joins the empty queue at a's 900, not at 0
    for (let n = 11; n < 16; n++) q.push({ bot: 'a', n });
    const next: string[] = [];
    for (let i = 0; i < 6; i++) {
      const job = q.pick(new Set())!;
      q.charge(job.bot, 100);
      next.push(job.bot);
    }
    // Taking turns from a's last start (so one turn ahead at most), not its five requests in a row on credit.
    expect(next.slice(0, 5)).toContain('a');
    expect(next.filter((b) => b === 'idle').length).toBeLessThanOrEqual(4);
  });

  test('a job taken out (its deadline passed) is never picked', () => {
    const q = new FairQueue<Job>();
    const gone = { bot: 'a', n: 0 };
    q.push(gone);
    q.push({ bot: 'a', n: 1 });
    expect(q.remove(gone)).toBe(true);
    expect(q.remove(gone)).toBe(false);
    expect(q.pick(new Set())).toEqual({ bot: 'a', n: 1 });
    expect(q.size).toBe(0);
  });
});

describe('expectedWaitMs (admission)', () => {
  const estimate = (bot: string) => ({ slow: 400, fast: 2 })[bot as 'slow' | 'fast'] ?? 1;

  test('a fast bot does not wait for a slow backlog: only for what is running and one turn of each other bot', () => {
    const wait = expectedWaitMs({ bot: 'fast', running: [150], depths: [['slow', 10]], estimate });
    expect(wait).toBe(150 + 2 + 2); // the run in progress, its own run, the slow bot's turn bounded by its own work
  });

  test("a slow bot waits for its own backlog and the others' share of it", () => {
    const wait = expectedWaitMs({ bot: 'slow', running: [100], depths: [['slow', 4], ['fast', 3]], estimate });
    expect(wait).toBe(100 + 5 * 400 + 3 * 2);
    // With a 2000 ms deadline, admission refuses it at once instead of queueing it until a 504.
    expect(wait).toBeGreaterThan(2000);
  });

  test('a run over its estimate counts as finishing now, not as negative time', () => {
    expect(expectedWaitMs({ bot: 'fast', running: [-50], depths: [], estimate })).toBe(2);
  });
});

describe('Quarantine', () => {
  const setup = () => {
    const times = new ServiceTimes(0.5);
    return { times, q: new Quarantine(times, { slowMs: () => 200, minRuns: 3 }) };
  };

  test('confines a bot whose runs keep taking more than the share, after enough runs, once', () => {
    const { times, q } = setup();
    const changes: Array<string | undefined> = [];
    for (const ms of [500, 500, 500, 500, 500]) {
      times.record('slow', ms);
      changes.push(q.check('slow'));
    }
    expect(changes).toEqual([undefined, undefined, 'confined', undefined, undefined]); // one transition, not one per run
    expect(q.has('slow')).toBe(true);
  });

  test('one slow run among fast ones is not enough', () => {
    const { times, q } = setup();
    for (const ms of [2, 2, 900, 2, 2, 2]) {
      times.record('bursty', ms);
      q.check('bursty');
    }
    expect(q.has('bursty')).toBe(false);
  });

  test('releases it once its runs are under half the threshold again, and not while they hover near it', () => {
    const { times, q } = setup();
    for (let i = 0; i < 3; i++) {
      times.record('b', 500);
      q.check('b');
    }
    expect(q.has('b')).toBe(true);
    for (let i = 0; i < 6; i++) {
      times.record('b', 150); // under the threshold, above half of it: stays confined
      expect(q.check('b')).toBeUndefined();
    }
    expect(q.has('b')).toBe(true);
    const changes: Array<string | undefined> = [];
    for (let i = 0; i < 6; i++) {
      times.record('b', 5);
      changes.push(q.check('b'));
    }
    expect(changes.filter((c) => c === 'released')).toHaveLength(1);
    expect(q.has('b')).toBe(false);
  });
});
