/**
 * The pool's scheduler at its edges (runtime/src/pool/scheduler.ts), next to test/pool/scheduler.test.ts:
 * where a bot joining the fair queue starts, ties, jobs taken out, the `eligible` filter, the queue's
 * views (depths, jobs, clear), the moving average, and quarantine at its exact thresholds.
 */
import { Quarantine } from '@botshard/runtime/pool/quarantine';
import { FairQueue, ServiceTimes, expectedWaitMs } from '@botshard/runtime/pool/scheduler';

interface Job {
  bot: string;
  n: number;
}

const job = (bot: string, n = 0): Job => ({ bot, n });
const none = new Set<string>();

describe('FairQueue: joining, ties and removal', () => {
  test('a bot joining while others wait starts level with the least served of them, not at the last pick', () => {
    const q = new FairQueue<Job>();
    q.push(job('a', 1));
    expect(q.pick(none)).toEqual(job('a', 1)); // the last pick had been served 0
    q.charge('a', 100);
    q.push(job('a', 2));
    q.push(job('b', 1)); // joins at 100 (a waits with 100), not at 0
    // Level: the one that came first goes first.
    expect(q.pick(none)).toEqual(job('a', 2));
    q.charge('a', 100);
    expect(q.pick(none)).toEqual(job('b', 1));
  });

  test('a bot that was served more than the others keeps its count when it comes back', () => {
    const q = new FairQueue<Job>();
    const serve = (bot: string, ms: number) => {
      q.push(job(bot));
      q.pick(none);
      q.charge(bot, ms);
    };
    serve('heavy', 500);
    serve('other', 5);
    serve('light', 10);
    q.push(job('other', 1));
    q.push(job('heavy', 1)); // joins while other waits at 5: heavy keeps its 500, it is not pulled down to 5
    q.push(job('light', 1));
    expect([q.pick(none), q.pick(none), q.pick(none)].map((j) => j!.bot)).toEqual(['other', 'light', 'heavy']);
  });

  test('equal service: the bot that has waited longest (first in) goes first', () => {
    const q = new FairQueue<Job>();
    for (const bot of ['x', 'y', 'z']) q.push(job(bot));
    expect([q.pick(none), q.pick(none), q.pick(none)].map((j) => j!.bot)).toEqual(['x', 'y', 'z']);
    expect(q.pick(none)).toBeUndefined();
  });

  test('remove: a job that is not waiting is not removed; the last job of a bot takes the bot out', () => {
    const q = new FairQueue<Job>();
    expect(q.remove(job('nobody'))).toBe(false);
    const a = job('a');
    q.push(a);
    expect(q.remove(job('a'))).toBe(false); // another job of the same bot
    expect(q.remove(a)).toBe(true);
    expect(q.remove(a)).toBe(false);
    expect([q.size, [...q.depths()], q.pick(none)]).toEqual([0, [], undefined]);
    const b1 = job('b', 1);
    q.push(b1);
    q.push(job('b', 2));
    q.remove(b1);
    expect([q.size, [...q.depths()]]).toEqual([1, [['b', 1]]]);
    expect(q.pick(none)).toEqual(job('b', 2));
  });

  test('pick with `eligible`: only the bots it accepts, undefined when none of the waiting ones is', () => {
    const q = new FairQueue<Job>();
    q.push(job('a'));
    q.push(job('b'));
    expect(q.pick(none, (bot) => bot === 'b')).toEqual(job('b'));
    expect(q.pick(none, (bot) => bot === 'b')).toBeUndefined();
    expect(q.size).toBe(1);
    expect(q.pick(none, () => true)).toEqual(job('a'));
  });

  test('a running bot is passed over for the next one; `eligible` and running combine', () => {
    const q = new FairQueue<Job>();
    q.push(job('a'));
    q.push(job('b'));
    q.push(job('c'));
    expect(q.pick(new Set(['a']), (bot) => bot !== 'b')).toEqual(job('c'));
  });
});

describe('FairQueue: views', () => {
  test('depths: waiting requests per bot; jobs: bot by bot, each in arrival order; clear takes them all', () => {
    const q = new FairQueue<Job>();
    q.push(job('a', 1));
    q.push(job('b', 1));
    q.push(job('a', 2));
    expect([...q.depths()]).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    expect([...q.jobs()]).toEqual([job('a', 1), job('a', 2), job('b', 1)]);
    expect(q.size).toBe(3);
    expect(q.clear()).toEqual([job('a', 1), job('a', 2), job('b', 1)]);
    expect([q.size, [...q.depths()], [...q.jobs()], q.pick(none)]).toEqual([0, [], [], undefined]);
  });
});

describe('ServiceTimes', () => {
  test('the first run is the estimate; later runs move it by alpha; an unknown bot has the initial estimate', () => {
    const t = new ServiceTimes(0.25, 7);
    expect([t.estimate('a'), t.runs('a')]).toEqual([7, 0]);
    t.record('a', 100);
    expect([t.estimate('a'), t.runs('a')]).toEqual([100, 1]);
    t.record('a', 200);
    expect([t.estimate('a'), t.runs('a')]).toEqual([125, 2]);
    expect(new ServiceTimes().estimate('x')).toBe(1);
    const d = new ServiceTimes();
    d.record('a', 10);
    d.record('a', 20);
    expect(d.estimate('a')).toBeCloseTo(13, 10);
  });

  test('restart counts runs from 0 again and keeps the average; an unknown bot is left alone', () => {
    const t = new ServiceTimes(0.5);
    t.record('a', 10);
    t.record('a', 30);
    t.restart('a');
    expect([t.runs('a'), t.estimate('a')]).toEqual([0, 20]);
    t.restart('nobody');
    expect([t.runs('nobody'), t.estimate('nobody')]).toEqual([0, 1]);
  });
});

describe('expectedWaitMs', () => {
  test('own backlog and run, each other bot at most as much, what runs now (never negative)', () => {
    const estimate = (bot: string) => ({ me: 10, big: 100, small: 3 })[bot]!;
    expect(expectedWaitMs({ bot: 'me', running: [], depths: [], estimate })).toBe(10);
    expect(expectedWaitMs({ bot: 'me', running: [5, -3], depths: [['me', 2], ['big', 1], ['small', 2]], estimate })).toBe(30 + 30 + 6 + 5);
  });
});

describe('Quarantine: thresholds', () => {
  const setup = (minRuns?: number) => {
    const times = new ServiceTimes(1);
    return { times, q: new Quarantine(times, { slowMs: () => 200, ...(minRuns !== undefined ? { minRuns } : {}) }) };
  };

  test('exactly at the threshold is not slow; just above is', () => {
    const { times, q } = setup(1);
    times.record('a', 200);
    expect(q.check('a')).toBeUndefined();
    times.record('a', 200.5);
    expect(q.check('a')).toBe('confined');
    expect([q.has('a'), [...q.bots]]).toEqual([true, ['a']]);
  });

  test('released only below half the threshold, not at it; the count of runs starts over at each change', () => {
    const { times, q } = setup(1);
    times.record('a', 500);
    expect(q.check('a')).toBe('confined');
    expect(times.runs('a')).toBe(0);
    times.record('a', 100);
    expect(q.check('a')).toBeUndefined();
    times.record('a', 99.5);
    expect(q.check('a')).toBe('released');
    expect([q.has('a'), times.runs('a')]).toEqual([false, 0]);
  });

  test('3 runs by default before any change, in and out', () => {
    const { times, q } = setup();
    const changes: Array<string | undefined> = [];
    for (const ms of [500, 500, 500, 1, 1, 1]) {
      times.record('a', ms);
      changes.push(q.check('a'));
    }
    expect(changes).toEqual([undefined, undefined, 'confined', undefined, undefined, 'released']);
  });

  test('forget: out of quarantine without a transition', () => {
    const { times, q } = setup(1);
    times.record('a', 500);
    q.check('a');
    expect(q.forget('a')).toBe(true);
    expect(q.forget('a')).toBe(false);
    expect(q.has('a')).toBe(false);
  });
});
