/** A slow bot must not hold up the rest of the pool; full queues shed with 503, late requests get 504. */
import { parseCatalog } from '@botshard/runtime';
import { RunningPool, catalogInput, ensureBuilt, getJson, placement, postJson, runPool, slowModels, standaloneBot, supportBot, until } from './support';

beforeAll(() => ensureBuilt());

const timed = async <T>(f: () => Promise<T>) => {
  const started = Date.now();
  const value = await f();
  return { value, ms: Date.now() - started, at: Date.now() };
};

describe('a slow bot', () => {
  const catalog = parseCatalog(catalogInput([supportBot('fast'), standaloneBot('slow')]));
  let pool: RunningPool;

  beforeAll(async () => {
    pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: slowModels(catalog), workers: 2, concurrency: 2, timeoutMs: 30_000 });
  });
  afterAll(() => pool.close());

  test('runs in another worker than the fast bot', () => {
    expect(pool.app.pool.bots.get('slow')!.lane).not.toBe(pool.app.pool.bots.get('fast')!.lane);
  });

  test('does not delay the health probe or another bot: both answer while it computes', async () => {
    const slowWorker = pool.app.pool.bots.get('slow')!.lane;
    const slow = timed(() => postJson(`${pool.url}/v1/bots/slow/predict`, { text: 'yes please' }));
    await until(() => pool.app.pool.queueDepths()[slowWorker] > 0, 5000, 'the slow request to reach its worker');
    const others = [];
    for (let i = 0; i < 5; i++) {
      for (const ask of [() => getJson(`${pool.url}/v2/health/ready`), () => postJson(`${pool.url}/v1/bots/fast/predict`, { text: 'hello there' })]) {
        const o = await timed(ask);
        others.push({ ...o, slowComputing: pool.app.pool.queueDepths()[slowWorker] > 0 });
      }
    }
    const done = await slow;
    expect(done.value.status).toBe(200);
    for (const o of others) {
      // Answered while the slow bot was still computing: its run still in its worker, its answer not yet sent.
      expect([o.value.status, o.slowComputing]).toEqual([200, true]);
      expect(o.at).toBeLessThanOrEqual(done.at);
    }
  });

  test('a full queue sheds at once with 503 and Retry-After (2 requests per bot at concurrency 2)', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => postJson(`${pool.url}/v1/bots/slow/predict`, { text: 'no' })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 503, 503, 503, 503]);
    for (const r of results.filter((x) => x.status === 503)) {
      expect(r.headers.get('retry-after')).toBe('1');
      expect(r.body.error).toMatch(/^overloaded: bot "slow" has 2 requests queued already/);
    }
    const shed = await pool.app.poolMetrics.shed.get();
    expect(shed.values.find((v) => v.labels.reason === 'bot')?.value).toBe(4);
  });
});

describe('a request past its deadline', () => {
  const catalog = parseCatalog(catalogInput([supportBot('fast'), standaloneBot('slow')]));
  let pool: RunningPool;

  beforeAll(async () => {
    pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: slowModels(catalog), workers: 1, concurrency: 8, timeoutMs: 300 });
  });
  afterAll(() => pool.close());

  test('gets 504 at its deadline, running or still queued, and the pool serves on', async () => {
    const results = await Promise.all([0, 1, 2].map(() => postJson(`${pool.url}/v1/bots/slow/predict`, { text: 'no' })));
    // Answered at the deadline, not when the model finishes: the slow run is still in the worker now.
    expect(pool.app.pool.queueDepths()[0]).toBeGreaterThan(0);
    for (const r of results) {
      expect(r.status).toBe(504);
      expect(r.body.error).toMatch(/did not answer within 300 ms/);
    }
    // Queued requests past their deadline are dropped, not computed: the worker is free again soon.
    const end = Date.now() + 10_000;
    let res;
    do res = await postJson(`${pool.url}/v1/bots/fast/predict`, { text: 'hello there' });
    while (res.status !== 200 && Date.now() < end);
    expect(res.status).toBe(200);
    const timeouts = await pool.app.poolMetrics.botRequests.get();
    expect(timeouts.values.find((v) => v.labels.bot === 'slow' && v.labels.outcome === 'timeout')?.value).toBe(3);
  });

  test('once its run time is measured, a request that cannot finish before its deadline is refused at once', async () => {
    // The run that outlived the deadlines above has finished (the worker is free): its time is known.
    await until(() => pool.app.pool.queueDepths()[0] === 0, 10_000, 'the slow run to finish');
    expect(pool.app.pool.lanes.laneOf('slow').meanMs).toBeGreaterThan(300);
    const res = await postJson(`${pool.url}/v1/bots/slow/predict`, { text: 'no' });
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/^overloaded: bot "slow" would answer in about \d+ ms, after its deadline; retry later$/);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(pool.app.pool.queueDepths()[0]).toBe(0); // refused, not queued
    const shed = await pool.app.poolMetrics.shed.get();
    expect(shed.values.find((v) => v.labels.reason === 'wait')?.value).toBe(1);
    // The fast bot is not refused: its own runs are quick.
    expect((await postJson(`${pool.url}/v1/bots/fast/predict`, { text: 'hello there' })).status).toBe(200);
  });
});

describe('drain', () => {
  test('reports not ready at once, answers the request in flight, then closes', async () => {
    const catalog = parseCatalog(catalogInput([supportBot('fast'), standaloneBot('slow')]));
    const pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: slowModels(catalog), timeoutMs: 30_000 });
    const inflight = postJson(`${pool.url}/v1/bots/slow/predict`, { text: 'yes please' });
    await until(() => pool.app.pool.queueDepths().some((d) => d > 0), 5000, 'the request to reach a worker');
    const drained = pool.app.drain();
    expect(pool.app.pool.ready).toBe(false); // what /v2/health/ready answers (503) on a connection still open
    expect((await pool.app.poolMetrics.ready.get()).values[0].value).toBe(0);
    expect((await inflight).status).toBe(200);
    await drained;
    await expect(fetch(`${pool.url}/v2/health/live`)).rejects.toThrow();
  });
});

describe('a bot flooding the worker it shares', () => {
  const catalog = parseCatalog(catalogInput([supportBot('fast'), standaloneBot('slow')]));
  let pool: RunningPool;

  beforeAll(async () => {
    // One worker: both bots share it, and with it the model thread.
    pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: slowModels(catalog, 60), workers: 1, concurrency: 32, timeoutMs: 120_000 });
  });
  afterAll(() => pool.close());

  test('takes turns with the other bot: its queue does not hold the other bot back', async () => {
    let slowAnswered = 0;
    const flood = Array.from({ length: 6 }, () => postJson(`${pool.url}/v1/bots/slow/predict`, { text: 'no' }).then((r) => {
      slowAnswered += 1;
      return r.status;
    }));
    await until(() => pool.app.pool.queueDepths()[0] >= 6, 10_000, 'the flood to be queued');
    const fast = await postJson(`${pool.url}/v1/bots/fast/predict`, { text: 'hello there' });
    const slowBeforeFast = slowAnswered;
    expect(fast.status).toBe(200);
    // First come, first served would answer it after all 6; taking turns, after at most the 2 already sent.
    expect(slowBeforeFast).toBeLessThanOrEqual(2);
    expect(await Promise.all(flood)).toEqual([200, 200, 200, 200, 200, 200]);
  }, 120_000);
});

describe('a slow bot flooded in a real-time group', () => {
  // One worker shared by both bots; a run of the slow bot (0.2-1.2 s on the machines this has run on) is far
  // above 1% of the group's 10 s timeout, and the flood's 6 runs in a row fit in that timeout.
  const input = catalogInput([supportBot('fast'), standaloneBot('slow')]);
  const catalog = parseCatalog({ ...input, groups: [{ ...input.groups[0], timeoutMs: 10_000, quarantineShare: 0.01, concurrency: 32 }] });
  let pool: RunningPool;

  beforeAll(async () => {
    pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: slowModels(catalog, 40), workers: 1 });
  });
  afterAll(() => pool.close());

  test('is quarantined to a lane of its own, and the bot it shared a worker with answers while it computes', async () => {
    let flooding = true;
    const slowStatuses: number[] = [];
    const flood = Array.from({ length: 6 }, async () => {
      while (flooding) slowStatuses.push((await postJson(`${pool.url}/v1/bots/slow/predict`, { text: 'no' })).status);
    });
    try {
      await until(() => pool.app.pool.lanes.laneOf('slow').quarantined, 60_000, 'the slow bot to be quarantined');
      const ready = await getJson(`${pool.url}/v2/models/slow/ready`);
      expect(ready.body).toEqual({ name: 'slow', ready: true, state: 'ready', quarantined: true });
      expect((await getJson(`${pool.url}/v2/models/slow`)).body.parameters.quarantined).toBe(true);
      expect((await getJson(`${pool.url}/v2/models/fast/ready`)).body.quarantined).toBe(false);
      // The quarantine lane is a second thread: the fast bot is answered while a slow run is in it.
      const depths = () => pool.app.pool.queueDepths();
      await until(() => depths().length === 2 && depths()[1] > 0, 10_000, 'a slow run in the quarantine lane');
      for (let i = 0; i < 10; i++) {
        const res = await postJson(`${pool.url}/v1/bots/fast/predict`, { text: 'hello there' });
        expect(res.status).toBe(200);
      }
      expect(depths()[1]).toBeGreaterThan(0); // still flooded: the ten answers did not wait for it to drain
    } finally {
      flooding = false;
      await Promise.all(flood);
    }
    // The flood got answers or was refused at once (admission by expected wait), never a 504 or a 500.
    expect(slowStatuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(slowStatuses.filter((s) => s === 200).length).toBeGreaterThan(3);
    const changes = await pool.app.poolMetrics.quarantineChanges.get();
    expect(changes.values.find((v) => v.labels.to === 'quarantine')?.value).toBe(1);
    expect((await pool.app.poolMetrics.quarantined.get()).values[0].value).toBe(1);
  }, 120_000);
});
