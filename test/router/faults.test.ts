/**
 * Fault injection on the recovery paths of router and pools, with real servers and processes on
 * loopback: each test asserts what a client sees (status codes, the pool that answered) and the metrics.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog, parseCatalog, plan } from '@botshard/runtime';
import { RunningPool, catalogInput, ensureBuilt, inWorker, postJson, runPool, slowModels, spawnPool, standaloneBot, supportBot, tempDir, until, withModels, writeMountedCatalog } from '../pool/support';
import { freePort } from '../e2e/support';
import { refusedPort } from '../support/refused';
import { runRouter } from './support';

const BIN = path.resolve(__dirname, '../../runtime/bin/botshard.js');

beforeAll(() => ensureBuilt());

/** Two dedicated pools, alpha and beta, and the bot `mover` pinned to one of them. */
function pinned(to: 'alpha' | 'beta'): Catalog {
  const input = catalogInput([supportBot('mover', { pin: to }), supportBot('stays')]);
  return parseCatalog({ ...input, groups: input.groups.map((g) => ({ ...g, dedicatedPools: ['alpha', 'beta'] })) });
}

const count = async (counter: { get(): Promise<{ values: Array<{ labels: Record<string, string | number>; value: number }> }> }, labels: Record<string, string>) =>
  (await counter.get()).values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((s, v) => s + v.value, 0);

describe('router fallbacks while a bot moves', () => {
  const before = pinned('alpha');
  const after = pinned('beta');
  const models = withModels(before);
  const pools: RunningPool[] = [];
  afterAll(async () => Promise.all(pools.map((p) => p.close())));

  test('a 404 naming the holder sends the request on to that pool', async () => {
    // The pools already run the new catalog; the router still has the old one.
    for (const name of ['alpha', 'beta']) pools.push(await runPool({ pool: name, catalog: after, modelRoot: models, workers: 1 }));
    const urls = new Map([['alpha', pools[0].url], ['beta', pools[1].url]]);
    const router = await runRouter({ catalog: before, urls });
    try {
      const res = await postJson(`${router.url}/v1/bots/mover/predict`, { text: 'hello there' });
      expect([res.status, res.body.pool]).toEqual([200, 'beta']);
      const m = router.app.router.metrics;
      expect(await count(m.upstreamErrors, { pool: 'alpha', kind: 'not_ready' })).toBe(1);
      expect(await count(m.fallbacks, {})).toBe(1);
    } finally {
      await router.close();
    }
  });

  test('a refused connection to the new pool falls back to the previous one, and the circuit counts it', async () => {
    const old = await runPool({ pool: 'alpha', catalog: before, modelRoot: models, workers: 1 });
    pools.push(old);
    const refused = `http://127.0.0.1:${await refusedPort()}`; // nothing listens there
    const router = await runRouter({ catalog: before, urls: new Map([['alpha', old.url], ['beta', refused]]), circuitThreshold: 2, circuitCooldownMs: 60_000 });
    try {
      router.app.router.update(after); // mover: beta now, alpha before
      for (let i = 0; i < 4; i++) {
        const res = await postJson(`${router.url}/v1/bots/mover/predict`, { text: 'hello there' });
        expect([res.status, res.body.pool]).toEqual([200, 'alpha']);
      }
      const m = router.app.router.metrics;
      expect(await count(m.upstreamErrors, { pool: 'beta', kind: 'connect' })).toBe(2); // then the circuit opened
      expect(await count(m.upstreamErrors, { pool: 'beta', kind: 'circuit_open' })).toBe(2);
      expect(await count(m.fallbacks, {})).toBe(4);
    } finally {
      await router.close();
    }
  });
});

describe('router fallbacks: a busy new pool, and a catalog changed twice in a row', () => {
  /** `mover` (a standalone bot, so its head can be the slow test model) pinned to alpha or beta. */
  const make = (to: 'alpha' | 'beta', extra: string[] = []) => {
    const input = catalogInput([standaloneBot('mover', { pin: to }), supportBot('stays'), ...extra.map((id) => supportBot(id))]);
    return parseCatalog({ ...input, groups: input.groups.map((g) => ({ ...g, dedicatedPools: ['alpha', 'beta'], concurrency: 2 })) });
  };
  const before = make('alpha');
  const after = make('beta');
  const pools: RunningPool[] = [];
  afterAll(async () => Promise.all(pools.map((p) => p.close())));

  test('a 503 from the new pool (its queue for the bot is full) sends the request to the previous pool', async () => {
    const slowRoot = slowModels(after, 120);
    fs.copyFileSync(path.join(slowRoot, 'heads/slow.onnx'), path.join(slowRoot, 'heads/mover.onnx'));
    const alpha = await runPool({ pool: 'alpha', catalog: before, modelRoot: withModels(before), workers: 1 });
    const beta = await runPool({ pool: 'beta', catalog: after, modelRoot: slowRoot, workers: 1, timeoutMs: 60_000 });
    pools.push(alpha, beta);
    const router = await runRouter({ catalog: before, urls: new Map([['alpha', alpha.url], ['beta', beta.url]]) });
    try {
      router.app.router.update(after); // mover: beta now, alpha before
      // Two slow requests hold beta's queue for mover (2 per bot at concurrency 2).
      const holding = [0, 1].map(() => postJson(`${beta.url}/v1/bots/mover/predict`, { text: 'no' }).catch(() => undefined));
      await until(() => beta.app.pool.queueDepths()[0] >= 2, 10_000, 'beta to hold two mover requests');
      const res = await postJson(`${router.url}/v1/bots/mover/predict`, { text: 'no' });
      expect([res.status, res.body.pool]).toEqual([200, 'alpha']);
      const m = router.app.router.metrics;
      expect(await count(m.upstreamErrors, { pool: 'beta', kind: 'not_ready' })).toBe(1);
      expect(await count(m.fallbacks, {})).toBe(1);
      await Promise.all(holding);
    } finally {
      await router.close();
    }
  }, 120_000);

  test('after two catalog changes in a row (one previous generation kept), a moved bot is still served, through the holder its new pool names', async () => {
    const folder = tempDir('catalog');
    writeMountedCatalog(folder, before);
    const models = withModels(make('alpha', ['extra']));
    // The pools are slow to follow: both still run the first catalog.
    const alpha = await runPool({ pool: 'alpha', catalog: before, modelRoot: models, workers: 1 });
    const beta = await runPool({ pool: 'beta', catalog: before, modelRoot: models, workers: 1 });
    pools.push(alpha, beta);
    const router = await runRouter({ catalog: folder, urls: new Map([['alpha', alpha.url], ['beta', beta.url]]) });
    const table = router.app.router.table;
    const moverRoute = () => [table.route('mover')?.pool, table.route('mover')?.previousPool];
    try {
      expect((await postJson(`${router.url}/v1/bots/mover/predict`, { text: 'no' })).body.pool).toBe('alpha');
      writeMountedCatalog(folder, after);
      await until(() => table.generation === after.generation, 10_000, 'the router to reach the second catalog');
      expect([table.previousGeneration, ...moverRoute()]).toEqual([before.generation, 'beta', 'alpha']); // moving: alpha kept
      const third = make('beta', ['extra']);
      writeMountedCatalog(folder, third);
      await until(() => table.generation === third.generation, 10_000, 'the router to reach the third catalog');
      // One previous generation kept: the second, where mover is on beta too. The first is gone, and with it
      // alpha as mover's previous pool: only beta's 404, naming the pool that holds mover, leads to alpha.
      expect([table.previousGeneration, ...moverRoute()]).toEqual([after.generation, 'beta', undefined]);
      const res = await postJson(`${router.url}/v1/bots/mover/predict`, { text: 'no' });
      expect([res.status, res.body.pool]).toEqual([200, 'alpha']);
      const m = router.app.router.metrics;
      expect(await count(m.upstreamErrors, { pool: 'beta', kind: 'not_ready' })).toBe(1);
      expect(await count(m.upstreamErrors, {})).toBe(1);
      expect(await count(m.fallbacks, {})).toBe(1);
    } finally {
      await router.close();
    }
  });
});

describe('catalogs that cannot be used', () => {
  const good = parseCatalog(catalogInput([supportBot('steady')]));
  const tooBig = parseCatalog(catalogInput([supportBot('steady'), supportBot('huge', { model: { head: 'heads/huge.onnx', memory: '4Gi', encoder: 'encoder-en' } })]));

  test('an invalid or unplaceable catalog is refused by router and pool, counted, and the current one serves on', async () => {
    expect(() => plan(tooBig)).toThrow(/cannot fit/);
    const folder = tempDir('catalog');
    writeMountedCatalog(folder, good);
    const name = plan(good).pools[0].name;
    const pool = await runPool({ pool: name, catalog: folder, modelRoot: withModels(good), pollMs: 100 });
    const router = await runRouter({ catalog: folder, urls: new Map([[name, pool.url]]) });
    try {
      const ok = async () => (await postJson(`${router.url}/v1/bots/steady/predict`, { text: 'hello there' })).status;
      expect(await ok()).toBe(200);
      // Unplaceable: valid JSON, a bot bigger than any pool.
      writeMountedCatalog(folder, tooBig);
      await until(async () => (await count(router.app.router.metrics.catalogReloads, { result: 'invalid' })) === 1, 10_000, 'the router to refuse the catalog');
      await until(async () => (await count(pool.app.poolMetrics.catalogReloads, { result: 'invalid' })) === 1, 10_000, 'the pool to refuse the catalog');
      // Invalid: a part that is not JSON.
      const stamp = `..bad_${Date.now()}`;
      fs.mkdirSync(path.join(folder, stamp));
      fs.writeFileSync(path.join(folder, stamp, 'catalog-0000.json'), '{"apiVersion": ');
      fs.symlinkSync(stamp, path.join(folder, '..data_tmp'));
      fs.renameSync(path.join(folder, '..data_tmp'), path.join(folder, '..data'));
      await until(async () => (await count(router.app.router.metrics.catalogReloads, { result: 'invalid' })) === 2, 10_000, 'the router to refuse the broken catalog');
      expect(router.app.router.table.generation).toBe(good.generation);
      expect(pool.app.pool.catalog?.generation).toBe(good.generation);
      expect(await ok()).toBe(200);
      expect(router.app.router.ready).toBe(true);
    } finally {
      await router.close();
      await pool.close();
    }
  });
});

describe('a drain that outlasts its limit', () => {
  test('ends the pool process by SIGTERM at the limit, without a native abort, while a model is still running', async () => {
    const catalog = parseCatalog(catalogInput([supportBot('fast'), standaloneBot('slow')]));
    const pool = plan(catalog).pools[0].name;
    const models = slowModels(catalog, 400);
    const file = path.join(tempDir('catalog'), 'catalog.json');
    fs.writeFileSync(file, JSON.stringify(catalog));
    const proc = await spawnPool({ pool, catalogFile: file, models, env: { BOTSHARD_DRAIN_SECONDS: '1', BOTSHARD_TIMEOUT_MS: '60000', BOTSHARD_WORKERS: '1' } });
    let stderr = '';
    proc.child.stderr!.on('data', (d) => (stderr += d));
    try {
      const slow = postJson(`${proc.url}/v1/bots/slow/predict`, { text: 'no' }).then((r) => r.status, () => 0);
      await inWorker(proc);
      proc.child.kill('SIGTERM');
      const end = await proc.exited;
      expect(end).toEqual({ code: null, signal: 'SIGTERM' }); // the forced exit, not a clean 0 and not an abort (SIGABRT)
      expect(proc.logs.map((l) => l.msg)).toContain('drain took longer than BOTSHARD_DRAIN_SECONDS: exiting with requests still in flight');
      expect(stderr).not.toMatch(/terminate called|Aborted/);
      expect(await slow).toBe(0); // cut off: the drain limit passed
    } finally {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
    }
  }, 60_000);
});

describe("the router's own SIGTERM", () => {
  test('answers the request in flight, then exits 0 without waiting for idle keep-alive clients, and frees its port', async () => {
    // A group timeout far above the slow model's time on a busy machine: the router must not answer 504.
    const input = catalogInput([supportBot('fast'), standaloneBot('slow')]);
    const catalog = parseCatalog({ ...input, groups: input.groups.map((g) => ({ ...g, timeoutMs: 60_000 })) });
    const name = plan(catalog).pools[0].name;
    const pool = await runPool({ pool: name, catalog, modelRoot: slowModels(catalog, 60) });
    const dir = tempDir('router');
    fs.writeFileSync(path.join(dir, 'catalog.json'), JSON.stringify(catalog));
    fs.writeFileSync(path.join(dir, 'pools.json'), JSON.stringify({ [name]: pool.url }));
    const port = await freePort();
    const proc = spawn(process.execPath, [BIN, 'router', '--catalog', path.join(dir, 'catalog.json'), '--pool-urls', path.join(dir, 'pools.json'), '--port', String(port), '--grpc-port', '0', '--metrics-port', '0', '--host', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BOTSHARD_DRAIN_SECONDS: '30' },
    });
    let logs = '';
    proc.stdout!.on('data', (d) => (logs += d));
    proc.stderr!.on('data', (d) => (logs += d));
    const url = `http://127.0.0.1:${port}`;
    try {
      await until(async () => (await fetch(`${url}/v2/health/ready`).catch(() => undefined))?.status === 200, 20_000, 'the router to be ready');
      const inflight = postJson(`${url}/v1/bots/slow/predict`, { text: 'no' });
      await until(() => pool.app.pool.queueDepths().some((d) => d > 0), 10_000, 'the request to reach the pool');
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      proc.kill('SIGTERM');
      const answered = await inflight;
      expect([answered.status, answered.body.pool]).toEqual([200, name]);
      expect(await exited).toBe(0);
      expect(logs).toMatch(/"msg":"signal received: draining"/);
      expect(logs).toMatch(/"msg":"drained: exiting"/);
      await expect(fetch(`${url}/v2/health/live`)).rejects.toThrow();
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await pool.close();
    }
  }, 60_000);
});
