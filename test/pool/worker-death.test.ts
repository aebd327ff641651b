/**
 * An inference worker thread that dies: its models are loaded again in the restarted thread, and a bot
 * whose model cannot be loaded again is failed honestly (not ready, 503, counted) instead of answering
 * 500 while it reports ready, and loaded again (after a pause that doubles) once its model is back.
 */
import { parseCatalog } from '@botshard/runtime';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunningPool, catalogInput, ensureBuilt, getJson, placement, postJson, runPool, standaloneBot, until, withModels } from './support';
import { load } from '../router/support';

beforeAll(() => ensureBuilt());

describe('a worker thread killed under load', () => {
  const ids = ['quince', 'rowan', 'sorrel', 'tansy', 'umber', 'vetch'];
  const catalog = parseCatalog(catalogInput(ids.map((id) => standaloneBot(id))));
  const models = withModels(catalog);
  let pool: RunningPool;

  beforeAll(async () => {
    pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: models, workers: 2, retryMs: 300 });
  });
  afterAll(() => pool?.close());

  test('every bot is served again or honestly failed', async () => {
    const runtime = pool.app.pool;
    const onZero = ids.filter((id) => runtime.bots.get(id)!.lane === 0);
    expect(onZero.length).toBeGreaterThan(1);
    const [broken] = onZero;
    // The model file of one of them is gone: it cannot be loaded again.
    const head = path.join(models, runtime.bots.get(broken)!.bot.model.head);
    const saved = fs.readFileSync(head);
    fs.rmSync(head);

    const traffic = load(pool.url, ids, 2, 30_000);
    try {
      await until(() => traffic.statuses.length > 50, 10_000, 'load to start');
      // Killed between two runs: terminating a thread inside onnxruntime's run() aborts the process.
      // The check and the kill in one synchronous step: nothing can be sent to the thread in between.
      const killIdle = () => {
        if (runtime.queueDepths()[0] !== 0) return false;
        void runtime.lanes.lane(0).thread.terminate();
        return true;
      };
      await until(killIdle, 20_000, 'worker 0 to be between runs');
      await until(() => runtime.bots.get(broken)!.state === 'failed', 10_000, `bot ${broken} to be failed`);
      const after = traffic.outcomes.length;
      await until(() => ids.filter((id) => id !== broken).every((id) => traffic.outcomes.slice(after).some((o) => o.bot === id && o.status === 200)), 10_000, 'the other bots to answer');
    } finally {
      await traffic.stop();
    }
    // Requests in flight when the thread died got 500; the broken bot 503 once failed; nothing else failed.
    for (const f of traffic.failures) {
      if (f.status === 500) expect(f.body).toMatch(/inference worker failed/);
      else expect([f.bot, f.status]).toEqual([broken, 503]);
    }
    const ready = await getJson(`${pool.url}/v2/models/${broken}/ready`);
    expect([ready.status, ready.body.ready, ready.body.state]).toEqual([503, false, 'failed']);
    // Why: the worker's death, or, once a retry (every 300 ms at first) has failed too, that attempt's own
    // reason; either way the missing file.
    const headFile = runtime.bots.get(broken)!.bot.model.head;
    expect(ready.body.error).toMatch(new RegExp(`(inference worker died and head ${headFile} could not be loaded again|head ${headFile} failed to load): .*ENOENT`));
    const res = await postJson(`${pool.url}/v1/bots/${broken}/predict`, { text: 'yes please' });
    expect(res.status).toBe(503);
    for (const id of ids.filter((x) => x !== broken)) expect([id, (await postJson(`${pool.url}/v1/bots/${id}/predict`, { text: 'yes please' })).status]).toEqual([id, 200]);
    // Every attempt to load it again failed too (300 ms, then 600, 1200, ...), and each one counts.
    const failures = async () => (await pool.app.poolMetrics.loadFailures.get()).values.find((v) => v.labels.kind === 'head')?.value ?? 0;
    await until(async () => (await failures()) >= 2, 10_000, 'a second attempt to load the broken bot');
    const states = await pool.app.poolMetrics.bots.get();
    expect(states.values.find((v) => v.labels.state === 'failed')?.value).toBe(1);
    expect(runtime.bots.get(broken)!.state).toBe('failed'); // failed, not "loading", between attempts and during them

    // Its model is back: the next attempt loads it, with no new catalog.
    fs.writeFileSync(head, saved);
    await until(() => runtime.bots.get(broken)!.state === 'ready', 20_000, `bot ${broken} to be loaded again`);
    expect((await postJson(`${pool.url}/v1/bots/${broken}/predict`, { text: 'yes please' })).status).toBe(200);
    expect((await getJson(`${pool.url}/v2/models/${broken}/ready`)).body).toEqual({ name: broken, ready: true, state: 'ready', quarantined: false });
  }, 60_000);
});
