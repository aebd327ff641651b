/** The router against real pool servers on loopback: routing, hostile ids, auth, timeouts, rebalancing. */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseCatalog, plan, poolFor } from '@botshard/runtime';
import { hashKey } from '@botshard/runtime/routing/tenants';
import example from '../../bots.config';
import { RunningPool, catalogInput, ensureBuilt, postJson, runPool, slowModels, standaloneBot, supportBot, tempDir, until, withModels, writeMountedCatalog, runPoolsOf } from '../pool/support';
import { grpcLoad, load, poolRequestCount, runRouter } from './support';
import { twoTenants } from '../support/tenants';

beforeAll(() => ensureBuilt());

/** A raw request, so that the path reaches the router exactly as written (fetch would normalise it). */
function raw(url: string, method: string, rawPath: string, body?: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path: rawPath, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('routing the example catalog', () => {
  const catalog = parseCatalog(example);
  const topology = plan(catalog);
  let pools: RunningPool[] = [];
  let urls = new Map<string, string>();
  let router: Awaited<ReturnType<typeof runRouter>>;

  beforeAll(async () => {
    ({ pools, urls } = await runPoolsOf(catalog));
    router = await runRouter({ catalog, urls });
  }, 120_000);
  afterAll(async () => {
    await router?.close();
    await Promise.all(pools.map((p) => p.close()));
  });

  test('sends every bot to the pool poolFor names, over both protocols', async () => {
    for (const bot of catalog.bots) {
      const text = bot.intents[0].examples[0];
      const res = await postJson(`${router.url}/v1/bots/${bot.id}/predict`, { text });
      expect([bot.id, res.status]).toEqual([bot.id, 200]);
      expect(res.headers.get('x-botshard-pool')).toBe(poolFor(bot.id, topology));
      expect(res.body.pool).toBe(poolFor(bot.id, topology));
    }
    const bot = catalog.bots[0];
    const infer = await postJson(`${router.url}/v2/models/${bot.id}/infer`, { id: 'r-1', inputs: [{ name: 'text', shape: [2], datatype: 'BYTES', data: ['hello', 'my bill is wrong'] }] });
    expect(infer.status).toBe(200);
    expect(infer.body).toMatchObject({ model_name: bot.id, id: 'r-1' });
    expect(infer.headers.get('x-botshard-pool')).toBe(poolFor(bot.id, topology));
    // Fields the protocol allows (client extensions) are ignored, not refused.
    const extended = await postJson(`${router.url}/v2/models/${bot.id}/infer`, {
      inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: ['hello'], client_tag: 'x' }],
      outputs: [{ name: 'intent', binary_data: false }],
      parameters: { priority: 1 },
      extra: { anything: true },
    });
    expect([extended.status, extended.body.outputs?.[0]?.name]).toEqual([200, 'intent']);
  });

  test('answers health and server metadata itself, and forwards model metadata and readiness', async () => {
    expect((await fetch(`${router.url}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${router.url}/v2/health/ready`)).status).toBe(200);
    // Both spellings: the protocol's OpenAPI document writes `/v2/`.
    for (const p of ['/v2', '/v2/']) expect(await (await fetch(`${router.url}${p}`)).json()).toEqual({ name: 'botshard-router', version: '0.1.0', extensions: ['botshard_routing', 'binary_tensor_data'] });
    const meta = await fetch(`${router.url}/v2/models/acme-support-en`);
    expect(meta.status).toBe(200);
    expect(await meta.json()).toMatchObject({ name: 'acme-support-en', platform: 'onnx_onnxv1' });
    const ready = await fetch(`${router.url}/v2/models/acme-support-en/ready`);
    expect(await ready.json()).toMatchObject({ name: 'acme-support-en', ready: true });
  });

  test('answers with the caller\'s request id', async () => {
    const res = await fetch(`${router.url}/v1/bots/acme-support-en/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-42', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
      body: JSON.stringify({ text: 'hi' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req-42');
  });

  test('an unknown bot is a 404 in the protocol\'s error shape', async () => {
    const res = await postJson(`${router.url}/v1/bots/nobody-here/predict`, { text: 'hi' });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: expect.stringMatching(/unknown bot "nobody-here"/) });
  });

  test('refuses hostile bot ids without reaching any pool', async () => {
    const before = await Promise.all(pools.map((p) => poolRequestCount(p.app)));
    const hostile = [
      ['POST', '/v1/bots/..%2f..%2fadmin/predict'],
      ['POST', '/v1/bots/%2e%2e/predict'],
      ['POST', '/v1/bots/acme%0d%0aX-Injected:%20yes/predict'],
      ['POST', '/v1/bots/ACME-SUPPORT-EN/predict'],
      ['POST', '/v1/bots/acme-support-en%00/predict'],
      ['POST', `/v1/bots/${'a'.repeat(300)}/predict`],
      ['GET', '/v2/models/acme-support-en/versions/..%2f..%2f/ready'],
      ['GET', '/v2/models/../../etc/passwd'],
      ['POST', '/v2/models/%2e%2e%2fv2%2fhealth/infer'],
    ] as const;
    for (const [method, p] of hostile) {
      const res = await raw(router.url, method, p, method === 'POST' ? '{"text":"x"}' : undefined);
      expect([p, res.status, [400, 404, 414].includes(res.status)]).toEqual([p, res.status, true]);
      expect(JSON.parse(res.body)).toEqual({ error: expect.any(String) });
    }
    const after = await Promise.all(pools.map((p) => poolRequestCount(p.app)));
    expect(after).toEqual(before);
  });

  test('counts requests, rejections and the catalog generation in its metrics', async () => {
    const bot = catalog.bots[0].id;
    expect((await postJson(`${router.url}/v1/bots/${bot}/predict`, { text: 'hi' })).status).toBe(200);
    expect((await postJson(`${router.url}/v1/bots/Bad_Id/predict`, { text: 'hi' })).status).toBe(400);
    expect((await postJson(`${router.url}/v1/bots/unknown-bot/predict`, { text: 'hi' })).status).toBe(404);
    const text = await router.app.router.metrics.registry.metrics();
    const pool = poolFor(bot, topology)!;
    expect(text).toMatch(new RegExp(`botshard_router_requests_total\\{group="[a-z]+",pool="${pool}",code="200",protocol="rest"\\} [1-9]`));
    expect(text).toMatch(/botshard_router_request_duration_seconds_bucket\{le="0.005",group="[a-z]+",pool="[a-z0-9-]+"\} \d+/);
    expect(text).toMatch(/botshard_router_rejected_total\{reason="bad_id"\} [1-9]/);
    expect(text).toMatch(/botshard_router_rejected_total\{reason="unknown_bot"\} [1-9]/);
    expect(text).toContain(`botshard_router_catalog_generation_info{generation="${catalog.generation}"} 1`);
    expect(text).not.toMatch(/bot="/); // no per-bot series: cardinality stays bounded
  });

  test('refuses an oversize body with 413 before forwarding', async () => {
    const res = await postJson(`${router.url}/v1/bots/acme-support-en/predict`, { text: 'x'.repeat(1024 * 1024 + 10) });
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/larger than/);
  });
});

describe('readiness', () => {
  test('is ready only once every pool of the catalog has an address: a client that waits for ready can route at once', async () => {
    const catalog = parseCatalog(catalogInput([supportBot('fern'), supportBot('gorse'), supportBot('heather')], 2));
    const topology = plan(catalog);
    const models = withModels(catalog);
    const urls = new Map<string, string>();
    const router = await runRouter({ catalog, urls });
    const pools: RunningPool[] = [];
    try {
      const ready = async () => (await fetch(`${router.url}/v2/health/ready`)).status;
      expect(await ready()).toBe(503);
      expect((await fetch(`${router.url}/v2/health/live`)).status).toBe(200);
      for (const pool of topology.pools) {
        expect(await ready()).toBe(503); // some pool still has no address
        const running = await runPool({ pool: pool.name, catalog, modelRoot: models, workers: 1 });
        pools.push(running);
        urls.set(pool.name, running.url);
      }
      expect(await ready()).toBe(200);
      for (const bot of catalog.bots) expect([bot.id, (await postJson(`${router.url}/v1/bots/${bot.id}/predict`, { text: 'hello there' })).status]).toEqual([bot.id, 200]);
    } finally {
      await router.close();
      await Promise.all(pools.map((p) => p.close()));
    }
  });

  test('a not-ready probe is an answer, not a failure: no warning per probe, unlike a request that fails', async () => {
    const catalog = parseCatalog(catalogInput([supportBot('fern')]));
    const lines: Array<{ msg: string; url?: string }> = [];
    const stream = { write: (line: string) => lines.push(JSON.parse(line)) };
    const router = await runRouter({ catalog, urls: new Map(), logger: { level: 'info', stream } });
    try {
      for (let i = 0; i < 3; i++) expect((await fetch(`${router.url}/v2/health/ready`)).status).toBe(503);
      expect((await postJson(`${router.url}/v1/bots/fern/predict`, { text: 'hi' })).status).toBe(503); // no pool address
      const failed = lines.filter((l) => l.msg === 'request failed');
      expect(failed.map((l) => l.url)).toEqual(['/v1/bots/fern/predict']);
    } finally {
      await router.close();
    }
  });

  test('in a cluster, waits until the pools\' host names resolve', async () => {
    const { PoolAddresses } = await import('@botshard/runtime/routing/readiness');
    const known = new Set(['rt-a.botshard.svc']);
    const looked: string[] = [];
    const addresses = new PoolAddresses(
      (pool) => `http://${pool}.botshard.svc:8080`,
      async (host) => {
        looked.push(host);
        if (!known.has(host)) throw new Error('ENOTFOUND');
      },
    );
    expect(addresses.unroutable(['rt-a', 'rt-b'])).toEqual(['rt-a', 'rt-b']); // lookups started
    await new Promise((r) => setImmediate(r));
    expect(addresses.unroutable(['rt-a', 'rt-b'])).toEqual(['rt-b']);
    known.add('rt-b.botshard.svc'); // its Service was created: the next probes look it up again
    await until(() => addresses.unroutable(['rt-a', 'rt-b']).length === 0, 2000, 'rt-b to resolve');
    expect(looked.filter((h) => h === 'rt-a.botshard.svc')).toHaveLength(1); // resolved once, not again
    // Addresses that are IPs need no lookup.
    expect(new PoolAddresses(() => 'http://127.0.0.1:9', async () => Promise.reject(new Error('no'))).unroutable(['x'])).toEqual([]);
  });
});

describe('tenants', () => {
  const { catalog, keys, pool: name } = twoTenants();
  let pool: RunningPool;
  let router: Awaited<ReturnType<typeof runRouter>>;
  const ask = (bot: string, key?: string) => postJson(`${router.url}/v1/bots/${bot}/predict`, { text: 'hi' }, key ? { authorization: `Bearer ${key}` } : {});

  beforeAll(async () => {
    pool = await runPool({ pool: name, catalog, modelRoot: withModels(catalog), workers: 1 });
    router = await runRouter({ catalog, urls: new Map([[name, pool.url]]), tenantKeys: keys, tenantRate: 5 });
  });
  afterAll(async () => {
    await router.close();
    await pool.close();
  });

  test('401 without a key or with a wrong one, 403 for another tenant\'s bot, 200 for its own', async () => {
    const none = await ask('acme-bot');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await ask('acme-bot', 'guess')).status).toBe(401);
    const other = await ask('globex-bot', 'acme-secret');
    expect(other.status).toBe(403);
    expect(other.body.error).toMatch(/may not use bot "globex-bot"/);
    expect((await ask('acme-bot', 'acme-secret')).status).toBe(200);
    expect((await ask('globex-bot', 'globex-second')).status).toBe(200);
  });

  test('without a key, an unknown bot looks like a known one (401): bot ids cannot be enumerated', async () => {
    const unknown = await ask('no-such-bot');
    const known = await ask('acme-bot');
    expect([unknown.status, unknown.body]).toEqual([known.status, known.body]);
    expect(unknown.status).toBe(401);
    expect((await ask('no-such-bot', 'acme-secret')).status).toBe(404); // with a key, the catalog answers
  });

  test('follows the keys folder: a key added to the Secret works, a removed one stops working', async () => {
    expect((await ask('acme-bot', 'acme-new')).status).toBe(401);
    fs.writeFileSync(path.join(keys, 'acme'), `${hashKey('acme-secret')}\n${hashKey('acme-new')}\n`);
    await until(async () => (await ask('acme-bot', 'acme-new')).status === 200, 5_000, 'the added key to be accepted');
    fs.writeFileSync(path.join(keys, 'acme'), `${hashKey('acme-new')}\n`);
    await until(async () => (await ask('acme-bot', 'acme-secret')).status === 401, 5_000, 'the removed key to be refused');
    fs.writeFileSync(path.join(keys, 'acme'), `${hashKey('acme-secret')}\n`);
    await until(async () => (await ask('acme-bot', 'acme-secret')).status === 200, 5_000, 'the key to be back');
  });

  test('limits each tenant\'s rate with 429 and Retry-After, without touching other tenants', async () => {
    // 1 request per second, bursts of 2, on a clock that moves only when the test moves it.
    const clock = { ms: 1_000_000 };
    const limited = await runRouter({ catalog, urls: new Map([[plan(catalog).pools[0].name, pool.url]]), tenantKeys: keys, tenantRate: 1, now: () => clock.ms });
    const send = (bot: string, key: string) => postJson(`${limited.url}/v1/bots/${bot}/predict`, { text: 'hi' }, { 'x-api-key': key });
    const acme = async (n: number) => {
      const results = [];
      for (let i = 0; i < n; i++) results.push(await send('acme-bot', 'acme-secret'));
      return results;
    };
    try {
      const burst = await acme(5);
      expect(burst.map((r) => r.status)).toEqual([200, 200, 429, 429, 429]);
      for (const r of burst.slice(2)) {
        expect(r.headers.get('retry-after')).toBe('1');
        expect(r.body.error).toBe('tenant "acme" is over its rate limit');
      }
      expect((await send('globex-bot', 'globex-secret')).status).toBe(200);
      clock.ms += 999; // not yet a whole token back
      expect((await acme(1)).map((r) => [r.status, r.headers.get('retry-after')])).toEqual([[429, '1']]);
      clock.ms += 1; // one second: one token, one request
      expect((await acme(2)).map((r) => r.status)).toEqual([200, 429]);
      const rejected = await limited.app.router.metrics.rejected.get();
      expect(rejected.values.find((v) => v.labels.reason === 'rate_limit')?.value).toBe(5);
    } finally {
      await limited.close();
    }
  });
});

describe('authentication fails closed', () => {
  const catalog = parseCatalog({ ...catalogInput([supportBot('acme-bot')]), platform: { auth: 'tenant-keys' } });
  const urls = new Map([[plan(catalog).pools[0].name, 'http://127.0.0.1:9']]);

  test('a router whose catalog requires keys does not start without a keys folder, or with a missing or empty one', async () => {
    await expect(runRouter({ catalog, urls })).rejects.toThrow(/platform\.auth: "tenant-keys"\) and no tenant keys folder is given: pass --tenant-keys DIR/);
    await expect(runRouter({ catalog, urls, tenantKeys: path.join(tempDir('keys'), 'absent') })).rejects.toThrow(/cannot be read \(ENOENT\)/);
    await expect(runRouter({ catalog, urls, tenantKeys: tempDir('keys') })).rejects.toThrow(/holds no API key hashes/);
  });

  test('keys that disappear later make the router not ready and refuse every request, never serve without auth', async () => {
    const keys = tempDir('keys');
    fs.writeFileSync(path.join(keys, 'acme'), `${hashKey('acme-secret')}\n`);
    const router = await runRouter({ catalog, urls: new Map(), tenantKeys: keys });
    try {
      fs.rmSync(path.join(keys, 'acme'));
      await until(async () => (await postJson(`${router.url}/v1/bots/acme-bot/predict`, { text: 'hi' }, { authorization: 'Bearer acme-secret' })).status === 401, 5_000, 'requests to be refused');
      const res = await postJson(`${router.url}/v1/bots/acme-bot/predict`, { text: 'hi' }, { authorization: 'Bearer acme-secret' });
      expect(res.body.error).toMatch(/API keys are required and none are configured/);
      expect(router.app.router.ready).toBe(false);
    } finally {
      await router.close();
    }
  });

  test('a catalog without auth serves without keys (the setting is explicit)', async () => {
    const open = parseCatalog(catalogInput([supportBot('acme-bot')]));
    expect(open.platform.auth).toBeUndefined();
    const router = await runRouter({ catalog: open, urls: new Map() });
    try {
      const res = await postJson(`${router.url}/v1/bots/acme-bot/predict`, { text: 'hi' });
      expect(res.status).toBe(503); // no pool address: reached routing, no 401
    } finally {
      await router.close();
    }
  });
});

describe('upstream timeout', () => {
  const input = catalogInput([supportBot('fast'), standaloneBot('slow')]);
  const catalog = parseCatalog({ ...input, groups: [{ ...input.groups[0], timeoutMs: 300 }] });
  let pool: RunningPool;
  let router: Awaited<ReturnType<typeof runRouter>>;

  beforeAll(async () => {
    const name = plan(catalog).pools[0].name;
    pool = await runPool({ pool: name, catalog, modelRoot: slowModels(catalog, 400), workers: 2, timeoutMs: 30_000 });
    router = await runRouter({ catalog, urls: new Map([[name, pool.url]]) });
  });
  afterAll(async () => {
    await router.close();
    await pool.close();
  });

  test('answers 504 once the group\'s bound has passed, before the pool answers, while other bots answer', async () => {
    const started = Date.now();
    const res = await postJson(`${router.url}/v1/bots/slow/predict`, { text: 'yes' });
    const ms = Date.now() - started;
    // Answered after the bound, and without waiting for the pool: it is still computing (the model takes seconds).
    const stillComputing = pool.app.pool.queueDepths().some((d: number) => d > 0);
    expect(res.status).toBe(504);
    expect(res.body.error).toMatch(/did not answer in time \(pool group "rt" allows 300 ms\)/);
    expect(ms).toBeGreaterThanOrEqual(300 - 10); // not before the bound (10 ms: timers' rounding against Date.now)
    expect(stillComputing).toBe(true);
    expect((await postJson(`${router.url}/v1/bots/fast/predict`, { text: 'hello there' })).status).toBe(200);
    // The pool still computes the abandoned request: let it finish before the pool closes.
    await until(() => pool.app.pool.queueDepths().every((d: number) => d === 0), 60_000, 'the slow request to finish');
  }, 90_000);
});

describe('rebalancing: a pool added while load runs', () => {
  const bots = Array.from({ length: 12 }, (_, i) => supportBot(`bot-${i}`));
  const one = parseCatalog(catalogInput(bots, 1));
  const two = parseCatalog(catalogInput(bots, 2));
  const [first, second] = plan(two).pools.map((p) => p.name);

  test('bots move to the new pool and no request fails, over REST and gRPC at once', async () => {
    expect(plan(one).pools.map((p) => p.name)).toEqual([first]);
    const moving = [...plan(two).assignment].filter(([, pool]) => pool === second).map(([bot]) => bot);
    expect(moving.length).toBeGreaterThan(0);
    const dir = tempDir('catalog');
    writeMountedCatalog(dir, one);
    const models = withModels(two);
    const urls = new Map<string, string>();
    const grpcs = new Map<string, string>();
    const a = await runPool({ pool: first, catalog: dir, modelRoot: models, workers: 1, pollMs: 100 });
    urls.set(first, a.url);
    grpcs.set(first, a.grpc);
    const router = await runRouter({ catalog: dir, urls, grpcs });
    let b: RunningPool | undefined;
    const ids = bots.map((b) => b.id);
    const traffic = load(router.url, ids, 3);
    const calls = grpcLoad(router.grpc, ids, 3);
    const answered = () => traffic.statuses.length + calls.calls;
    try {
      await until(() => traffic.statuses.length > 30 && calls.calls > 30, 20_000, 'load to start');
      // The new catalog lands before the new pool is up: the router must keep moved bots on the old pool.
      writeMountedCatalog(dir, two);
      await until(() => router.app.router.table.generation === two.generation, 10_000, 'the router to see the new catalog');
      const during = answered();
      await until(() => answered() > during + 60, 20_000, 'requests while the new pool is down');
      b = await runPool({ pool: second, catalog: dir, modelRoot: models, workers: 1, pollMs: 100 });
      urls.set(second, b.url);
      grpcs.set(second, b.grpc);
      await until(() => moving.every((bot) => traffic.pools.get(bot) === second && calls.pools.get(bot) === second), 20_000, 'moved bots to be served by the new pool');
      await until(() => traffic.statuses.length > 100 && calls.calls > 100, 20_000, 'a hundred requests of each protocol');
    } finally {
      await Promise.all([traffic.stop(), calls.stop()]);
      await router.close();
      await a.close();
      await b?.close();
    }
    expect(traffic.failures).toEqual([]);
    expect(calls.failures).toEqual([]);
    expect(traffic.statuses.length).toBeGreaterThan(100);
    expect(calls.calls).toBeGreaterThan(100);
    const fallbacks = await router.app.router.metrics.fallbacks.get();
    expect(fallbacks.values.reduce((s, v) => s + v.value, 0)).toBeGreaterThan(0);
  }, 90_000);
});
