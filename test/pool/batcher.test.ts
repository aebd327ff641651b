/**
 * What runs together (runtime/src/pool/batcher.ts), on plain lanes without a thread and a hand-moved
 * clock: which requests share a message, and when a lane waits for more (the batch window).
 * test/pool/batching.test.ts checks with real threads that a batch answers as each request alone.
 */
import { BatchLane, BatchSettings, Batcher } from '@botshard/runtime/pool/batcher';
import type { Job } from '@botshard/runtime/pool/lane';
import { FairQueue, ServiceTimes } from '@botshard/runtime/pool/scheduler';

let seq = 0;
const now = { t: 1000 };
const clock = { now: () => now.t };

function request(bot: string, texts = 1, queuedAt = now.t): Job {
  return { payload: { type: 'infer', head: bot, encoder: 'enc', texts: Array(texts).fill('x') }, bot, queuedAt, seq: ++seq, done: false, resolve: () => undefined, reject: () => undefined };
}

function lane(jobs: Job[], o: { inflight?: number; perMessage?: number; running?: string[] } = {}): BatchLane {
  const queue = new FairQueue<Job>();
  for (const j of jobs) queue.push(j);
  const inflight = new Map<number, Job[]>(Array.from({ length: o.inflight ?? 0 }, (_, i) => [i + 1, []]));
  return { queue, inflight, running: new Set(o.running ?? []), perMessage: o.perMessage ?? 32, windowTimer: undefined };
}

/** Times measured for fast bots (1 ms, well under a quarter of the slow threshold) and a slow one. */
function measured(): ServiceTimes {
  const times = new ServiceTimes();
  for (const bot of ['a', 'b', 'c']) times.record(bot, 1);
  times.record('slow', 500);
  return times;
}

const settings = (o: Partial<BatchSettings> = {}): BatchSettings => ({ batchWindowMs: 0, batchMaxRows: 32, slowMs: 200, ...o });

afterEach(() => jest.useRealTimers());

describe('gather', () => {
  test('measured fast bots share a message, picked in turn by the fair queue', () => {
    const b = new Batcher(measured(), clock, () => settings());
    const l = lane([request('a'), request('a'), request('b'), request('c')]);
    // a is charged as it is picked: b and c go before its second request.
    expect(b.gather(l, new Set()).map((j) => j.bot)).toEqual(['a', 'b', 'c', 'a']);
    expect(l.queue.size).toBe(0);
  });

  test('a bot never measured runs alone in its message', () => {
    const b = new Batcher(measured(), clock, () => settings());
    const l = lane([request('new'), request('a')]);
    const first = b.gather(l, new Set());
    expect(first.map((j) => j.bot)).toHaveLength(1);
  });

  test('a slow bot (above a quarter of the slow threshold) runs alone', () => {
    const b = new Batcher(measured(), clock, () => settings());
    const l = lane([request('slow'), request('a'), request('b')]);
    const jobs = [b.gather(l, new Set()), b.gather(l, new Set())];
    expect(jobs.map((m) => m.map((j) => j.bot))).toContainEqual(['slow']);
  });

  test('bots blocked by a load and bots with a run in flight are passed over', () => {
    const b = new Batcher(measured(), clock, () => settings());
    const l = lane([request('a'), request('b'), request('c')], { running: ['c'] });
    expect(b.gather(l, new Set(['a'])).map((j) => j.bot)).toEqual(['b']);
  });

  test('a message stops at batchMaxRows texts and at perMessage requests', () => {
    const times = measured();
    const b = new Batcher(times, clock, () => settings({ batchMaxRows: 4 }));
    const l = lane([request('a', 3), request('b', 3), request('c', 3)]);
    expect(b.gather(l, new Set()).length).toBe(2); // 3 texts, then 6 >= 4: no third
    const one = new Batcher(times, clock, () => settings());
    expect(one.gather(lane([request('a'), request('b')], { perMessage: 1 }), new Set()).length).toBe(1);
  });

  test('a message holds exactly batchMaxRows texts and no more: it stops once they are reached', () => {
    const b = new Batcher(measured(), clock, () => settings({ batchMaxRows: 4 }));
    const l = lane([request('a', 2), request('b', 2), request('c', 1)]);
    expect(b.gather(l, new Set()).map((j) => j.bot)).toEqual(['a', 'b']);
    expect([...l.queue.jobs()].map((j) => j.bot)).toEqual(['c']);
  });

  test('a bot whose runs take exactly the shared limit (a quarter of slowMs) still shares a message', () => {
    const times = measured();
    times.record('edge', 50); // slowMs 200: the limit is 50 ms
    const b = new Batcher(times, clock, () => settings({ slowMs: 200 }));
    const l = lane([request('edge'), request('a')]);
    expect(b.gather(l, new Set()).map((j) => j.bot)).toEqual(['edge', 'a']);
    // Just above the limit, it runs alone.
    const above = measured();
    above.record('edge', 50.5);
    expect(new Batcher(above, clock, () => settings({ slowMs: 200 })).gather(lane([request('edge'), request('a')]), new Set()).map((j) => j.bot)).toEqual(['edge']);
  });

  test('a slow or never measured bot does not join a message another bot started; it waits for its own', () => {
    const b = new Batcher(measured(), clock, () => settings());
    const l = lane([request('a'), request('slow'), request('new'), request('b')]);
    expect(b.gather(l, new Set()).map((j) => j.bot)).toEqual(['a', 'b']);
    expect([...l.queue.jobs()].map((j) => j.bot).sort()).toEqual(['new', 'slow']);
  });

  test('each request picked is charged its bot estimate, and ended requests are skipped', () => {
    const b = new Batcher(measured(), clock, () => settings());
    const ended = request('a');
    ended.done = true;
    const l = lane([ended, request('b')]);
    const jobs = b.gather(l, new Set());
    expect(jobs.map((j) => j.bot)).toEqual(['b']);
    expect(jobs[0].charged).toBe(1);
  });
});

describe('hold (the batch window)', () => {
  test('never without a window, with one request per message, an empty queue or an idle thread', () => {
    const b = (w: number) => new Batcher(measured(), clock, () => settings({ batchWindowMs: w }));
    const end = () => undefined;
    expect(b(0).hold(lane([request('a')], { inflight: 1 }), end)).toBe(false);
    expect(b(50).hold(lane([request('a')], { inflight: 1, perMessage: 1 }), end)).toBe(false);
    expect(b(50).hold(lane([], { inflight: 1 }), end)).toBe(false);
    expect(b(50).hold(lane([request('a')], { inflight: 0 }), end)).toBe(false);
  });

  test('waits while the thread is busy, until the oldest request has waited the window', () => {
    jest.useFakeTimers();
    const b = new Batcher(measured(), clock, () => settings({ batchWindowMs: 50 }));
    const l = lane([request('a', 1, now.t - 20)], { inflight: 1 });
    let ended = 0;
    expect(b.hold(l, () => ended++)).toBe(true);
    expect(b.hold(l, () => ended++)).toBe(true); // the window already set: still holding, no second timer
    jest.advanceTimersByTime(29);
    expect(ended).toBe(0);
    jest.advanceTimersByTime(1);
    expect(ended).toBe(1);
    expect(l.windowTimer).toBeUndefined();
  });

  test('a window set to 0 while one is open stops the holding at once (settings read at each decision)', () => {
    jest.useFakeTimers();
    let window = 50;
    const b = new Batcher(measured(), clock, () => settings({ batchWindowMs: window }));
    const l = lane([request('a')], { inflight: 1 });
    expect(b.hold(l, () => undefined)).toBe(true);
    expect(l.windowTimer).toBeDefined();
    window = 0;
    expect(b.hold(l, () => undefined)).toBe(false);
  });

  test('does not wait once a full batch waits, or once the window has passed', () => {
    const b = new Batcher(measured(), clock, () => settings({ batchWindowMs: 50, batchMaxRows: 4 }));
    expect(b.hold(lane([request('a', 2), request('b', 2)], { inflight: 1 }), () => undefined)).toBe(false);
    expect(b.hold(lane([request('a', 1, now.t - 50)], { inflight: 1 }), () => undefined)).toBe(false);
  });
});
