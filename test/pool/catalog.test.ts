/** Live catalog changes on running pools: a mounted ConfigMap folder swapped under them. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog, normalizeCatalog, parseCatalog } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { RunningPool, catalogInput, ensureBuilt, getJson, placement, postJson, runPool, supportBot, tempDir, until, writeMountedCatalog } from './support';

beforeAll(() => ensureBuilt());

const NAMES = ['amber', 'birch', 'cedar', 'dune', 'ember', 'fjord', 'grove', 'heath', 'inlet', 'jade', 'kelp', 'lotus'];

describe('a live catalog change: bots added, removed, moved and changed, with no failed request', () => {
  const before = parseCatalog(catalogInput(NAMES.map((id) => supportBot(id)), 2));
  const afterInput = catalogInput([...NAMES.filter((n) => n !== 'lotus').map((id) => supportBot(id, id === 'amber' ? { postprocess: { threshold: 0.9, fallback: 'unsure' } } : {})), supportBot('maple')], 3);
  const after = parseCatalog(afterInput);
  const was = placement(before);
  const now = placement(after);
  const moved = NAMES.filter((b) => now.has(b) && now.get(b) !== was.get(b));
  const poolNames = [...new Set(now.values())].sort();
  const folder = tempDir('catalog');
  const models = tempDir('models');
  const pools = new Map<string, RunningPool>();
  const GRACE_MS = 2000;
  /** What the pools log at level error, one JSON line each. */
  const errors: Array<{ pool: string; line: string }> = [];

  beforeAll(async () => {
    writeDemoModels(before, models);
    writeDemoModels(after, models);
    writeMountedCatalog(folder, before);
    for (const pool of poolNames) {
      const logger = { level: 'error', stream: { write: (line: string) => void errors.push({ pool, line }) } };
      pools.set(pool, await runPool({ pool, catalog: folder, modelRoot: models, pollMs: 200, moveGraceMs: GRACE_MS, logger }));
    }
  });
  afterAll(async () => Promise.all([...pools.values()].map((p) => p.close())));

  test('the change adds a third pool and moves bots to it only; the new catalog\'s bots are all placed', () => {
    const old = new Set(was.values());
    expect(old.size).toBe(2);
    expect(poolNames).toHaveLength(3);
    const added = poolNames.filter((p) => !old.has(p));
    expect(added).toHaveLength(1); // the two pools of before keep their names
    expect(moved.length).toBeGreaterThan(0);
    for (const bot of moved) expect(now.get(bot)).toBe(added[0]);
    expect([...now.keys()].sort()).toEqual([...NAMES.filter((n) => n !== 'lotus'), 'maple'].sort());
  });

  /** Each pool read the definitions of exactly its own bots under `catalog`, from the index's pointers. */
  const readOwnOnly = (catalog: Catalog) => {
    const own = placement(catalog);
    for (const [name, pool] of pools) {
      const mine = [...own.values()].filter((p) => p === name).length;
      expect(pool.app.pool.catalog?.generation).toBe(catalog.generation);
      expect(pool.app.pool.definitionsRead).toBe(mine);
      expect(mine).toBeLessThan(catalog.bots.length);
    }
  };

  test('each pool reads the definitions of its own bots only', () => readOwnOnly(before));

  test('every request to a bot that stays in the catalog succeeds through the change; then the new placement holds', async () => {
    const stable = NAMES.filter((n) => n !== 'lotus');
    const amberKey = pools.get(was.get('amber')!)!.app.pool.bots.get('amber')!.headKey;
    const failures: string[] = [];
    let sent = 0;
    let stop = false;
    const load = async (worker: number) => {
      for (let i = worker; !stop && sent < 5000; i++) {
        const bot = stable[i % stable.length];
        const url = pools.get(was.get(bot)!)!.url; // as a router on the old placement would send it
        const res = await postJson(`${url}/v1/bots/${bot}/predict`, { text: 'I forgot my password' });
        sent++;
        if (res.status !== 200) failures.push(`${bot}: ${res.status} ${JSON.stringify(res.body)}`);
      }
    };
    const loaders = [0, 1, 2, 3].map(load);
    await until(() => sent > 50, 10_000, 'traffic before the change');
    writeMountedCatalog(folder, after);
    const applied = () => [...pools.values()].every((p) => p.app.pool.catalog?.generation === after.generation && [...p.app.pool.bots.values()].every((b) => b.state !== 'loading'));
    await until(applied, 15_000, 'every pool to apply the new catalog');
    const atApply = sent;
    await until(() => sent > atApply + 50, 10_000, 'traffic after the change');
    stop = true;
    await Promise.all(loaders);
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(100);

    // Added: ready in its pool. Changed: reloaded (a new version) and answering with its new settings.
    expect((await getJson(`${pools.get(now.get('maple')!)!.url}/v2/models/maple/ready`)).body.ready).toBe(true);
    const amber = pools.get(now.get('amber')!)!.app.pool.bots.get('amber')!;
    expect(amber.headKey).not.toBe(amberKey);
    const unsure = await postJson(`${pools.get(now.get('amber')!)!.url}/v1/bots/amber/predict`, { text: '' });
    expect(unsure.body.intent).toBe('unsure'); // its new fallback (was "human_handoff")
    // Removed: gone at once.
    const removed = await getJson(`${pools.get(was.get('lotus')!)!.url}/v2/models/lotus/ready`);
    expect(removed.status).toBe(404);
    expect(removed.body.error).toMatch(/not in the catalog/);
    // Moved: ready in the new pool, still served by the old one for the grace period...
    for (const bot of moved) {
      expect((await getJson(`${pools.get(now.get(bot)!)!.url}/v2/models/${bot}/ready`)).status).toBe(200);
      const old = await getJson(`${pools.get(was.get(bot)!)!.url}/v2/models/${bot}/ready`);
      expect(old.body.state).toBe('leaving');
    }
    // ... then unloaded there, answering 404 with the pool that holds it.
    const oldPool = pools.get(was.get(moved[0])!)!;
    await until(() => !oldPool.app.pool.bots.has(moved[0]), GRACE_MS + 5000, 'the grace period to end');
    const gone = await postJson(`${oldPool.url}/v1/bots/${moved[0]}/predict`, { text: 'hi' });
    expect(gone.status).toBe(404);
    expect(gone.headers.get('x-botshard-pool')).toBe(now.get(moved[0]));
  });

  test('after the change, each pool read the definitions of its own bots only (those it took over included)', () => readOwnOnly(after));

  test('an invalid catalog (a regex RE2 cannot run in linear time) is rejected at validation, logged and ignored', async () => {
    const input = JSON.parse(JSON.stringify(after)) as Partial<Catalog> & Pick<Catalog, 'bots'>;
    input.bots[0].preprocess = [{ pattern: '(a+)+\\1', replace: '', flags: '' }];
    delete input.generation; // the backreference is its only problem (no stale generation to refuse it for)
    const problems = normalizeCatalog(input);
    expect(problems.ok).toBe(false);
    if (!problems.ok) expect(problems.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([expect.stringMatching(/^bots\[0\] \(amber\)\.preprocess\[0\]\.pattern: .*backreference/)]);

    const pool = pools.get(poolNames[0])!;
    const invalid = async () => (await pool.app.poolMetrics.catalogReloads.get()).values.find((v) => v.labels.result === 'invalid')?.value ?? 0;
    const seen = await invalid();
    // Written as one catalog file in a fresh ConfigMap folder version.
    const stamp = `..bad_${Date.now()}`;
    fs.mkdirSync(path.join(folder, stamp));
    fs.writeFileSync(path.join(folder, stamp, 'catalog-0000.json'), JSON.stringify(input));
    fs.symlinkSync(stamp, path.join(folder, '..data_tmp'));
    fs.renameSync(path.join(folder, '..data_tmp'), path.join(folder, '..data'));
    // As kubelet does: links to files the new version does not have (other parts, the index) go.
    for (const f of fs.readdirSync(folder)) if (!f.startsWith('.') && f !== 'catalog-0000.json') fs.unlinkSync(path.join(folder, f));
    await until(async () => (await invalid()) > seen, 10_000, 'the invalid catalog to be seen');
    const logged = errors.filter((e) => e.pool === poolNames[0]).map((e) => JSON.parse(e.line));
    expect(logged).toContainEqual(expect.objectContaining({ msg: expect.stringMatching(/catalog changed but cannot be used/), problems: expect.stringMatching(/bots\[0\] \(amber\)\.preprocess\[0\]\.pattern: .*backreference/) }));
    expect(pool.app.pool.catalog?.generation).toBe(after.generation);
    const bot = [...now].find(([, p]) => p === poolNames[0])![0];
    expect((await postJson(`${pool.url}/v1/bots/${bot}/predict`, { text: 'hello there' })).status).toBe(200);
  });
});

describe("a group's timeout and concurrency", () => {
  test('follow the catalog on a running pool, without a restart', async () => {
    const input = (timeoutMs: number, concurrency: number) => {
      const c = catalogInput([supportBot('sage')]);
      return { ...c, groups: c.groups.map((g) => ({ ...g, timeoutMs, concurrency })) };
    };
    const first = parseCatalog(input(1500, 4));
    const second = parseCatalog(input(4500, 12));
    const folder = tempDir('catalog');
    writeMountedCatalog(folder, first);
    const pool = await runPool({ pool: [...placement(first).values()][0], catalog: folder, modelRoot: tempDirWithModels(first), pollMs: 100 });
    try {
      expect(pool.app.pool.group?.timeoutMs).toBe(1500);
      expect(pool.app.pool.queueLimits()).toEqual({ workerQueue: 4, botQueue: 2 });
      writeMountedCatalog(folder, second);
      await until(() => pool.app.pool.catalog?.generation === second.generation, 10_000, 'the pool to apply the new catalog');
      expect(pool.app.pool.group?.timeoutMs).toBe(4500);
      expect(pool.app.pool.queueLimits()).toEqual({ workerQueue: 12, botQueue: 6 });
    } finally {
      await pool.close();
    }
  });

  test('an option given to the process (BOTSHARD_CONCURRENCY) wins over the catalog', async () => {
    const catalog = parseCatalog(catalogInput([supportBot('sage')]));
    const pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: tempDirWithModels(catalog), concurrency: 3 });
    try {
      expect(pool.app.pool.queueLimits()).toEqual({ workerQueue: 3, botQueue: 2 });
    } finally {
      await pool.close();
    }
  });
});

describe('RE2 rules run in linear time', () => {
  test('patterns that backtrack catastrophically elsewhere answer at once, and still match where they should', async () => {
    // "re2" and "plain" have the same head (built from the same examples); only "re2" has the rules.
    const catalog = parseCatalog(catalogInput([
      supportBot('re2', { preprocess: [{ pattern: '(a+)+$', replace: 'I forgot my password' }], postprocess: { entities: [{ name: 'as', pattern: '((?:a|aa)+)b' }] } }),
      supportBot('plain', { preprocess: [] }),
    ]));
    const pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: tempDirWithModels(catalog) });
    try {
      // A backtracking engine tries each rule from the start of the long run of "a" first, where it fails after
      // exponentially many tries ("!" is neither the end nor "b"), and would not finish this year: no time bound
      // here, the test's timeout ends it. RE2 goes on to the matches at the end.
      const run = 'a'.repeat(4000);
      const text = `${run}! aab aaa`;
      const res = await postJson(`${pool.url}/v1/bots/re2/predict`, { text });
      expect(res.status).toBe(200);
      // The entity: the "aa" before the "b", with its offsets in the text as sent.
      const at = text.indexOf(' aab') + 1;
      expect(res.body.entities).toEqual([{ name: 'as', value: 'aa', start: at, end: at + 2 }]);
      // The rewrite: only the final "aaa" replaced (the long run is not at the end), so "re2" answers the text
      // exactly as the same head answers it rewritten by hand, and not as it answers it unchanged.
      const probabilities = async (bot: string, t: string) => (await postJson(`${pool.url}/v2/models/${bot}/infer`, { inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: [t] }] })).body.outputs[2].data as number[];
      const got = await probabilities('re2', text);
      const rewritten = await probabilities('plain', `${run}! aab I forgot my password`);
      const unchanged = await probabilities('plain', text);
      expect(got).toHaveLength(3);
      got.forEach((p, i) => expect(p).toBeCloseTo(rewritten[i], 6));
      expect(Math.max(...got.map((p, i) => Math.abs(p - unchanged[i])))).toBeGreaterThan(0.01);
    } finally {
      await pool.close();
    }
  });
});

function tempDirWithModels(catalog: Catalog): string {
  const dir = tempDir('models');
  writeDemoModels(catalog, dir);
  return dir;
}
