/**
 * Cold bots load on demand (a group with `overcommit`): real pools, real models. The pool keeps at most
 * three 10Mi heads (and their 4Mi encoder) resident; eight bots are assigned to it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CatalogInput, parseCatalog } from '@botshard/runtime';
import { formatStatus } from '@botshard/runtime/commands/status';
import { RunningPool, catalogInput, ensureBuilt, getJson, placement, postJson, runPool, supportBot, withModels } from './support';

beforeAll(() => ensureBuilt());

const BOTS = Array.from({ length: 8 }, (_, i) => `bot-${i}`);

function coldCatalog(extra: string[] = []) {
  const input = catalogInput([...BOTS, ...extra].map((id) => supportBot(id, { model: { head: `heads/${id}.onnx`, memory: '10Mi', encoder: 'encoder-en' }, ...(id === 'bot-0' ? { warm: true } : {}) })));
  // 100Mi overhead + 4Mi encoder + 3 x 10Mi heads = 134Mi of the pool's 140Mi at fill factor 1; placement may assign 4 x 140Mi.
  const groups = input.groups.map((g) => ({ ...g, memory: '140Mi', fillFactor: 1, overcommit: 4 }));
  return parseCatalog({ ...input, groups } as CatalogInput);
}

const predict = (pool: RunningPool, bot: string) => postJson(`${pool.url}/v1/bots/${bot}/predict`, { text: 'I forgot my password' });
const count = async (pool: RunningPool, metric: 'evictions' | 'coldLoadSeconds') => {
  const m = await (pool.app.poolMetrics[metric] as any).get();
  return metric === 'evictions' ? (m.values[0]?.value ?? 0) : (m.values.find((v: any) => v.metricName?.endsWith('_count'))?.value ?? 0);
};

describe('cold bots (overcommit)', () => {
  const catalog = coldCatalog();
  const poolName = [...placement(catalog).values()][0];
  let pool: RunningPool;
  let models: string;

  beforeAll(async () => {
    expect(new Set(placement(catalog).values()).size).toBe(1); // every bot in one pool of 140Mi: 4x overcommitted
    models = withModels(catalog);
    pool = await runPool({ pool: poolName, catalog, modelRoot: models, loadConcurrency: 1 });
  });
  afterAll(() => pool.close());

  test('the pool is ready once its warm bot is loaded; the others are cold, and ready (their first request loads them)', async () => {
    expect(pool.app.pool.bots.get('bot-0')!.state).toBe('ready');
    for (const id of BOTS.slice(1)) expect(pool.app.pool.bots.get(id)!.state).toBe('cold');
    const ready = await getJson(`${pool.url}/v2/models/bot-3/ready`);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ ready: true, state: 'cold', residency: 'cold' });
    const meta = await getJson(`${pool.url}/v2/models/bot-0`);
    expect(meta.body.parameters.residency).toBe('resident');
    const status = await getJson(`${pool.url}/botshard/status`);
    expect(status.body.bots).toMatchObject({ ready: 1, cold: 7 });
    // `botshard status` shows a COLD column when a pool has cold bots, and none otherwise.
    const table = (bots: object) => formatStatus({ router: { generation: 'g', dataPlane: 'node' }, pools: [{ ...status.body, bots }] }).split('\n');
    expect(table(status.body.bots)[2]).toMatch(/^POOL +READY +BOTS +LOADING +FAILED +LEAVING +COLD +QUEUE +GENERATION +DECLARED +MEASURED +MEMORY \/ BUDGET$/);
    expect(table(status.body.bots)[3]).toMatch(new RegExp(`^${poolName} +yes +1 +0 +0 +0 +7 +0 `));
    expect(table({ ...status.body.bots, cold: 0 })[2]).not.toContain('COLD');
  });

  test('a cold bot loads on its first request (a miss), then hits; the bot asked least lately is evicted (the least recently used among equals), never past the limit', async () => {
    const evictionsBefore = await count(pool, 'evictions');
    for (const id of ['bot-1', 'bot-2']) {
      const first = await predict(pool, id);
      expect(first.status).toBe(200);
      expect(first.body.intent).toBe('password_reset');
      expect(first.headers.get('botshard-residency')).toBe('miss');
      expect((await predict(pool, id)).headers.get('botshard-residency')).toBe('hit');
    }
    expect(pool.app.pool.residentBytes!.bots).toEqual(['bot-0', 'bot-1', 'bot-2']);
    // bot-0 (warm, never asked) is the least recently used, but asked twice now it ties with bot-1 and
    // bot-2 (two requests each): bot-1 is then the least recently used of the three.
    await predict(pool, 'bot-0');
    await predict(pool, 'bot-0');
    expect(pool.app.pool.residentBytes!.bots).toEqual(['bot-1', 'bot-2', 'bot-0']);
    expect((await predict(pool, 'bot-3')).headers.get('botshard-residency')).toBe('miss');
    expect(pool.app.pool.residentBytes!.bots).toEqual(['bot-2', 'bot-0', 'bot-3']);
    expect(pool.app.pool.bots.get('bot-1')!.state).toBe('cold');
    expect((await count(pool, 'evictions')) - evictionsBefore).toBe(1);
    // bot-3 (one request) goes before bot-2 (two), though bot-2 was used longer ago.
    expect((await predict(pool, 'bot-4')).headers.get('botshard-residency')).toBe('miss');
    expect(pool.app.pool.residentBytes!.bots).toEqual(['bot-2', 'bot-0', 'bot-4']);
    await predict(pool, 'bot-4'); // back to two requests: the state the tests below start from holds three bots at two
    expect((await count(pool, 'evictions')) - evictionsBefore).toBe(2);
    const { used, limit } = pool.app.pool.residentBytes!;
    expect(used).toBe((100 + 4 + 3 * 10) * 2 ** 20);
    expect(used).toBeLessThanOrEqual(limit);
    // The shared encoder stayed resident all along (one load at start).
    expect(pool.app.pool.residentBytes!.bots.every((id) => pool.app.pool.bots.get(id)!.encoderKey === pool.app.pool.bots.get('bot-0')!.encoderKey)).toBe(true);
  });

  test('concurrent first requests for one cold bot share one load', async () => {
    const loadsBefore = await count(pool, 'coldLoadSeconds');
    expect(pool.app.pool.bots.get('bot-5')!.state).toBe('cold');
    // Ten requests come in the same turn of the event loop: all find it cold, all wait for one load.
    const answers = await Promise.all(Array.from({ length: 10 }, () => pool.app.pool.serve('bot-5', ['I forgot my password'], Date.now() + 10_000)));
    expect(answers.map((a) => a.residency)).toEqual(Array(10).fill('miss'));
    expect(answers.map((a) => a.answer.rows[0].intent)).toEqual(Array(10).fill('password_reset'));
    expect((await count(pool, 'coldLoadSeconds')) - loadsBefore).toBe(1);
    expect((await predict(pool, 'bot-5')).headers.get('botshard-residency')).toBe('hit');
  });

  test('requests for more bots than fit, all at once: every one answered (a bot loaded for waiting requests is not evicted before they run), bots evicted and loaded again meanwhile, the limit kept', async () => {
    const evictionsBefore = await count(pool, 'evictions');
    let over = false;
    const watch = setInterval(() => {
      const r = pool.app.pool.residentBytes!;
      if (r.used > r.limit) over = true;
    }, 1);
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => predict(pool, BOTS[(i * 3) % BOTS.length])));
    clearInterval(watch);
    expect(answers.map((a) => a.status)).toEqual(Array(60).fill(200));
    expect(over).toBe(false);
    expect((await count(pool, 'evictions')) - evictionsBefore).toBeGreaterThanOrEqual(5);
  });
});

describe('a cold bot that fails to load', () => {
  const catalog = coldCatalog(['broken']);
  let pool: RunningPool;

  beforeAll(async () => {
    const models = withModels(catalog);
    fs.writeFileSync(path.join(models, 'heads/broken.onnx'), 'not a model');
    pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: models, loadConcurrency: 1, retryMs: 60_000 });
  });
  afterAll(() => pool.close());

  test('stays failed (503 with the reason) without evicting others again and again', async () => {
    for (const id of ['bot-1', 'bot-2']) expect((await predict(pool, id)).status).toBe(200); // the pool is full: bot-0, bot-1, bot-2
    const evictionsBefore = await count(pool, 'evictions');
    const first = await predict(pool, 'broken');
    expect(first.status).toBe(503);
    expect(first.body.error).toMatch(/bot "broken" failed to load: head heads\/broken.onnx failed to load/);
    for (let i = 0; i < 10; i++) {
      const again = await predict(pool, 'broken');
      expect(again.status).toBe(503);
      expect(again.body.error).toMatch(/failed to load/);
    }
    // One eviction made room for its one attempt; the failed bot gave the room back and tried no more.
    expect((await count(pool, 'evictions')) - evictionsBefore).toBe(1);
    expect(pool.app.pool.bots.get('broken')!.state).toBe('failed');
    const resident = pool.app.pool.residentBytes!;
    expect(resident.bots).not.toContain('broken');
    expect(resident.used).toBe((100 + 4 + 2 * 10) * 2 ** 20);
    for (const id of resident.bots) expect((await predict(pool, id)).headers.get('botshard-residency')).toBe('hit');
  });
});

describe('a restarted pool warms what its traffic kept resident', () => {
  const catalog = coldCatalog();
  const poolName = [...placement(catalog).values()][0];

  test('the bots resident before the restart are loaded before it reports ready, after the warm one', async () => {
    const models = withModels(catalog);
    const first = await runPool({ pool: poolName, catalog, modelRoot: models, loadConcurrency: 1 });
    try {
      for (const id of ['bot-5', 'bot-6']) expect((await predict(first, id)).headers.get('botshard-residency')).toBe('miss');
      await first.app.pool.recordHotSet();
    } finally {
      await first.close();
    }
    const record = JSON.parse(fs.readFileSync(path.join(models, '.cache', 'resident-bots.json'), 'utf8'));
    expect(record).toMatchObject({ pool: poolName, bots: ['bot-6', 'bot-5', 'bot-0'] });

    const second = await runPool({ pool: poolName, catalog, modelRoot: models, loadConcurrency: 1 });
    try {
      const states = Object.fromEntries(BOTS.map((id) => [id, second.app.pool.bots.get(id)!.state]));
      expect(states).toEqual({ 'bot-0': 'ready', 'bot-1': 'cold', 'bot-2': 'cold', 'bot-3': 'cold', 'bot-4': 'cold', 'bot-5': 'ready', 'bot-6': 'ready', 'bot-7': 'cold' });
      expect((await predict(second, 'bot-6')).headers.get('botshard-residency')).toBe('hit');
    } finally {
      await second.close();
    }
  });

  test('a record of another pool, or one that is not JSON, is ignored: only the warm bot loads', async () => {
    const models = withModels(catalog);
    fs.mkdirSync(path.join(models, '.cache'), { recursive: true });
    for (const content of [JSON.stringify({ pool: 'another-pool', bots: ['bot-5'] }), '{"pool": ']) {
      fs.writeFileSync(path.join(models, '.cache', 'resident-bots.json'), content);
      const pool = await runPool({ pool: poolName, catalog, modelRoot: models, loadConcurrency: 1 });
      try {
        expect(BOTS.filter((id) => pool.app.pool.bots.get(id)!.state === 'ready')).toEqual(['bot-0']);
      } finally {
        await pool.close();
      }
    }
  });
});
