/**
 * The router's HAProxy mode against real pools on loopback and a real HAProxy: routing by the plan, the
 * same answers as the Node router for what it refuses, tenants, and a live rebalance with no failed request.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCatalog, plan, poolFor } from '@botshard/runtime';
import { hashKey } from '@botshard/runtime/routing/tenants';
import example from '../../bots.config';
import { load } from '../router/support';
import { RunningPool, catalogInput, ensureBuilt, getJson, postJson, runPool, supportBot, tempDir, until, withModels, writeMountedCatalog, runPoolsOf } from '../pool/support';
import { HAPROXY, runHaproxy, withHaproxy } from './support';
import * as grpc from '@grpc/grpc-js';
import { GrpcClient, grpcLoad, inferRequest } from '../support/grpc';
import { twoTenants } from '../support/tenants';

beforeAll(() => ensureBuilt());

const describeWithHaproxy = withHaproxy().describe;

describeWithHaproxy('the example catalog through HAProxy', () => {
  const catalog = parseCatalog(example);
  const topology = plan(catalog);
  let pools: RunningPool[] = [];
  let urls = new Map<string, string>();
  let grpcs = new Map<string, string>();
  let router: Awaited<ReturnType<typeof runHaproxy>>;

  beforeAll(async () => {
    ({ pools, urls, grpcs } = await runPoolsOf(catalog));
    const dir = tempDir('catalog');
    writeMountedCatalog(dir, catalog);
    router = await runHaproxy({ catalog: dir, pools: urls, grpcs });
  }, 120_000);
  afterAll(async () => {
    const exit = await router?.stop();
    await Promise.all(pools.map((p) => p.close()));
    expect(exit?.code).toBe(0);
  });

  test('sends every bot to the pool poolFor names, over both protocols', async () => {
    for (const bot of catalog.bots) {
      const res = await postJson(`${router.url}/v1/bots/${bot.id}/predict`, { text: bot.intents[0].examples[0] });
      expect([bot.id, res.status]).toEqual([bot.id, 200]);
      expect(res.headers.get('x-botshard-pool')).toBe(poolFor(bot.id, topology));
      expect(res.body.pool).toBe(poolFor(bot.id, topology));
    }
    const bot = catalog.bots[0];
    const infer = await postJson(`${router.url}/v2/models/${bot.id}/infer`, { id: 'r-1', inputs: [{ name: 'text', shape: [2], datatype: 'BYTES', data: ['hello', 'my bill is wrong'] }] });
    expect([infer.status, infer.body.model_name, infer.body.id]).toEqual([200, bot.id, 'r-1']);
    const ready = await getJson(`${router.url}/v2/models/${bot.id}/ready`);
    expect([ready.status, ready.body.ready]).toEqual([200, true]);
    const meta = await getJson(`${router.url}/v2/models/${bot.id}/versions/1`);
    expect([meta.status, meta.body.name]).toEqual([200, bot.id]);
  });

  test('gRPC goes through HAProxy to the same pools; binary tensor data too', async () => {
    const client = new GrpcClient(router.grpc);
    try {
      expect((await client.call('ServerReady', {})).response).toEqual({ ready: true });
      for (const bot of catalog.bots) {
        const out = await client.call('ModelInfer', inferRequest(bot.id, [bot.intents[0].examples[0] ?? 'hello'], { raw: true }));
        expect([bot.id, out.code, out.metadata['x-botshard-pool']]).toEqual([bot.id, grpc.status.OK, poolFor(bot.id, topology)]);
      }
      expect((await client.call('ModelInfer', inferRequest('no-such-bot', ['hi']))).code).toBe(grpc.status.NOT_FOUND);
    } finally {
      client.close();
    }
    const text = Buffer.from('hello');
    const size = Buffer.alloc(4);
    size.writeUInt32LE(text.length);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 4 + text.length } }], parameters: { binary_data_output: true } }));
    const res = await fetch(`${router.url}/v2/models/${catalog.bots[0].id}/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, size, text]) });
    expect(res.status).toBe(200);
    const length = Number(res.headers.get('inference-header-content-length'));
    const json = JSON.parse(Buffer.from(await res.arrayBuffer()).toString('utf8', 0, length));
    expect(json.outputs.map((o: any) => o.parameters.binary_data_size)).toEqual([expect.any(Number), 4, 4 * catalog.bots[0].intents.length]);
  });

  test('answers health and server metadata itself', async () => {
    expect(await getJson(`${router.url}/v2/health/live`)).toMatchObject({ status: 200, body: { live: true } });
    expect(await getJson(`${router.url}/v2/health/ready`)).toMatchObject({ status: 200, body: { ready: true } });
    for (const p of ['/v2', '/v2/']) expect((await getJson(`${router.url}${p}`)).body).toEqual({ name: 'botshard-router', version: '0.1.0', extensions: ['botshard_routing', 'botshard_haproxy', 'binary_tensor_data'] });
  });

  test('refuses hostile and unknown ids with the JSON errors of the Node router', async () => {
    for (const id of ['UPPER', 'a_b', 'x'.repeat(41), '-lead', '..', '%2e%2e', 'a%00b']) {
      const res = await postJson(`${router.url}/v1/bots/${id}/predict`, { text: 'hi' });
      expect([id, res.status]).toEqual([id, 400]);
      expect(res.body.error).toMatch(/^invalid bot id: bot ids are lowercase letters, digits and "-", at most 40 characters$/);
    }
    const unknown = await postJson(`${router.url}/v1/bots/no-such-bot/predict`, { text: 'hi' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: `unknown bot "no-such-bot": it is not in catalog generation ${catalog.generation}` });
    const route = await getJson(`${router.url}/v1/bots/acme-support-en/nothing`);
    expect(route.status).toBe(404);
    expect(route.body.error).toBe('no route GET /v1/bots/acme-support-en/nothing');
    const wrongMethod = await getJson(`${router.url}/v1/bots/acme-support-en/predict`);
    expect(wrongMethod.status).toBe(404);
  });

  test('serves botshard status on the control plane\'s metrics port: every pool, as the pools report themselves', async () => {
    const status = await getJson(router.metricsUrl.replace(/\/metrics$/, '/botshard/status'));
    expect(status.status).toBe(200);
    expect(status.body.router).toEqual({ generation: catalog.generation, dataPlane: 'haproxy' });
    expect(status.body.pools.map((p: any) => [p.pool, p.ready, p.generation])).toEqual(topology.pools.map((p) => [p.name, true, catalog.generation]).sort());
  });

  test('exports HAProxy\'s metrics and the control plane\'s', async () => {
    expect((await postJson(`${router.url}/v1/bots/acme-support-en/predict`, { text: 'hello' })).status).toBe(200);
    const haproxy = await (await fetch(router.haproxyMetricsUrl)).text();
    expect(haproxy).toMatch(/^haproxy_backend_http_responses_total\{proxy="[a-z0-9-]+",code="2xx"\} [1-9]/m);
    const control = await (await fetch(router.metricsUrl)).text();
    expect(control).toContain(`botshard_haproxy_catalog_generation_info{generation="${catalog.generation}"} 1`);
    expect(control).toMatch(/^botshard_haproxy_ready 1$/m);
  });
});

describeWithHaproxy('tenants through HAProxy', () => {
  const { catalog, keys, pool: name } = twoTenants();
  let pool: RunningPool;
  let router: Awaited<ReturnType<typeof runHaproxy>>;
  const ask = (bot: string, headers: Record<string, string> = {}) => postJson(`${router.url}/v1/bots/${bot}/predict`, { text: 'hi' }, headers);
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

  beforeAll(async () => {
    pool = await runPool({ pool: name, catalog, modelRoot: withModels(catalog), workers: 1 });
    const dir = tempDir('catalog');
    writeMountedCatalog(dir, catalog);
    router = await runHaproxy({ catalog: dir, pools: new Map([[name, pool.url]]), tenantKeys: keys });
  }, 60_000);
  afterAll(async () => {
    await router?.stop();
    await pool?.close();
  });

  test('401 without a key or with a wrong one, 403 for another tenant\'s bot, 200 for its own (HAProxy checks the SHA-256)', async () => {
    const none = await ask('acme-bot');
    expect([none.status, none.headers.get('www-authenticate'), none.body.error]).toEqual([401, 'Bearer', 'an API key is required: send "Authorization: Bearer <key>"']);
    expect(await ask('acme-bot', bearer('guess'))).toMatchObject({ status: 401, body: { error: 'the API key is not valid' } });
    expect(await ask('globex-bot', bearer('acme-secret'))).toMatchObject({ status: 403, body: { error: 'this API key may not use bot "globex-bot"' } });
    expect((await ask('acme-bot', bearer('acme-secret'))).status).toBe(200);
    expect((await ask('globex-bot', { 'x-api-key': 'globex-second' })).status).toBe(200);
    // Without a key, an unknown bot looks like a known one: bot ids cannot be enumerated.
    const unknown = await ask('no-such-bot');
    expect([unknown.status, unknown.body]).toEqual([none.status, none.body]);
    expect((await ask('no-such-bot', bearer('acme-secret'))).status).toBe(404);
  });

  test('follows the keys folder: an added key works, a removed one stops working, without a reload', async () => {
    expect((await ask('acme-bot', bearer('acme-new'))).status).toBe(401);
    fs.writeFileSync(path.join(keys, 'acme'), `${hashKey('acme-secret')}\n${hashKey('acme-new')}\n`);
    await until(async () => (await ask('acme-bot', bearer('acme-new'))).status === 200, 10_000, 'the added key to be accepted');
    fs.writeFileSync(path.join(keys, 'acme'), `${hashKey('acme-new')}\n`);
    await until(async () => (await ask('acme-bot', bearer('acme-secret'))).status === 401, 10_000, 'the removed key to be refused');
    fs.writeFileSync(path.join(keys, 'acme'), `${hashKey('acme-secret')}\n`);
    await until(async () => (await ask('acme-bot', bearer('acme-secret'))).status === 200, 10_000, 'the key to be back');
    expect(await (await fetch(router.metricsUrl)).text()).toMatch(/^botshard_haproxy_config_reloads_total 0$/m);
  });

  test('limits each tenant to its rate (requests in any second, as its stick table counts them) with 429 and Retry-After, without touching other tenants', async () => {
    const RATE = 3;
    const dir = tempDir('catalog');
    writeMountedCatalog(dir, catalog);
    const limited = await runHaproxy({ catalog: dir, pools: new Map([[plan(catalog).pools[0].name, pool.url]]), tenantKeys: keys, env: { BOTSHARD_TENANT_RATE: String(RATE) } });
    try {
      const send = (bot: string, key: string) => postJson(`${limited.url}/v1/bots/${bot}/predict`, { text: 'hi' }, bearer(key));
      // A tenant's requests in the last second, as HAProxy counts them in its stick table (0 without an entry).
      const counted = async (tenant: string) => {
        const line = (await limited.api.command(`show table tenant_rates key ${tenant}`)).split('\n').find((l) => l.includes(` key=${tenant} `));
        return line === undefined ? 0 : Number(/ http_req_rate\(1000\)=(\d+)/.exec(line)![1]);
      };
      // HAProxy counts a request in its tenant's entry, then refuses it when the count is above the rate; between
      // requests the count only decays. So whatever the time between them: a request sent while the count was
      // below the rate passes (it makes the count at most RATE), and one after which the count is still above
      // the rate was refused.
      const rounds: Array<{ before: number; after: number; status: number; retryAfter: string | null; error: unknown }> = [];
      const over = () => rounds.filter((r) => r.after > RATE).length;
      while (over() < 3 && rounds.length < 50) {
        const before = await counted('acme');
        const res = await send('acme-bot', 'acme-secret');
        rounds.push({ before, after: await counted('acme'), status: res.status, retryAfter: res.headers.get('retry-after'), error: res.body.error });
      }
      expect(rounds.slice(0, RATE).map((r) => [r.before < RATE, r.status])).toEqual([[true, 200], [true, 200], [true, 200]]);
      expect(rounds.filter((r) => r.before < RATE && r.status !== 200)).toEqual([]);
      const refused = rounds.filter((r) => r.after > RATE);
      expect(refused.map((r) => [r.status, r.retryAfter, r.error])).toEqual(Array(3).fill([429, '1', 'tenant "acme" is over its rate limit']));
      // Another tenant has its own entry: its request passes and adds nothing to acme's count.
      const acmeBefore = await counted('acme');
      expect([await counted('globex'), (await send('globex-bot', 'globex-secret')).status]).toEqual([0, 200]);
      expect(await counted('globex')).toBeGreaterThanOrEqual(1);
      expect(await counted('acme')).toBeLessThanOrEqual(acmeBefore);
    } finally {
      await limited.stop();
    }
  });
});

describeWithHaproxy('rebalancing through HAProxy: a pool added while REST and gRPC load runs', () => {
  const bots = Array.from({ length: 12 }, (_, i) => supportBot(`bot-${i}`));
  const one = parseCatalog(catalogInput(bots, 1));
  const two = parseCatalog(catalogInput(bots, 2));
  const [first, second] = plan(two).pools.map((p) => p.name);

  test('moved bots flip to the new pool once it has them ready, in both protocols, and no request fails', async () => {
    expect(plan(one).pools.map((p) => p.name)).toEqual([first]);
    const moving = [...plan(two).assignment].filter(([, pool]) => pool === second).map(([bot]) => bot);
    expect(moving.length).toBeGreaterThan(0);
    const dir = tempDir('catalog');
    writeMountedCatalog(dir, one);
    const models = withModels(two);
    const a = await runPool({ pool: first, catalog: dir, modelRoot: models, workers: 1, pollMs: 100 });
    const router = await runHaproxy({ catalog: dir, pools: new Map([[first, a.url]]), grpcs: new Map([[first, a.grpc]]) });
    let b: RunningPool | undefined;
    const traffic = load(router.url, bots.map((b) => b.id), 3);
    const calls = grpcLoad(router.grpc, bots.map((b) => b.id), 2);
    try {
      await until(() => traffic.statuses.length > 40 && calls.statuses.length > 20, 20_000, 'load to start');
      // The new catalog lands before the new pool is up: moved bots must stay on the old pool.
      writeMountedCatalog(dir, two);
      await until(async () => (await (await fetch(router.metricsUrl)).text()).includes(`generation="${two.generation}"`), 10_000, 'the control plane to see the new catalog');
      const during = traffic.statuses.length;
      await until(() => traffic.statuses.length > during + 40, 20_000, 'requests while the new pool is down');
      expect(moving.every((bot) => traffic.pools.get(bot) === first && calls.pools.get(bot) === first)).toBe(true);
      b = await runPool({ pool: second, catalog: dir, modelRoot: models, workers: 1, pollMs: 100 });
      router.setPool(second, b.url, b.grpc);
      await until(() => moving.every((bot) => traffic.pools.get(bot) === second && calls.pools.get(bot) === second), 20_000, 'moved bots to be served by the new pool over both protocols');
    } finally {
      await traffic.stop();
      await calls.stop();
      await router.stop();
      await a.close();
      await b?.close();
    }
    expect(traffic.failures).toEqual([]);
    expect(calls.failures).toEqual([]);
    expect(traffic.statuses.length).toBeGreaterThan(100);
    expect(calls.statuses.length).toBeGreaterThan(50);
  }, 90_000);
});

/** The HAProxy container's command, as the manifests run it: wait for the configuration, then run HAProxy on it. */
function haproxyContainer(state: string) {
  const container = spawn('sh', ['-c', `until [ -f ${state}/haproxy.cfg ]; do sleep 0.1; done; exec ${HAPROXY} -W -db -q -S ${state}/master.sock -f ${state}/haproxy.cfg`], { stdio: 'ignore' });
  return { container, stopped: new Promise((resolve) => container.once('exit', resolve)) };
}

describeWithHaproxy('HAProxy beside the control plane (two containers of a pod, as the manifests run them)', () => {
  const bots = Array.from({ length: 6 }, (_, i) => supportBot(`bot-${i}`));
  const one = parseCatalog(catalogInput(bots, 1));
  const two = parseCatalog(catalogInput(bots, 2));
  const [first, second] = plan(two).pools.map((p) => p.name);

  test('HAProxy starts on the written configuration, and a new pool reloads it through its master socket', async () => {
    const dir = tempDir('catalog');
    writeMountedCatalog(dir, one);
    const models = withModels(two);
    const a = await runPool({ pool: first, catalog: dir, modelRoot: models, workers: 1, pollMs: 100 });
    const b = await runPool({ pool: second, catalog: two, modelRoot: models, workers: 1 });
    const shared = tempDir('haproxy');
    const state = path.join(shared, 'state');
    const { container, stopped } = haproxyContainer(state);
    try {
      const router = await runHaproxy({ catalog: dir, pools: new Map([[first, a.url], [second, b.url]]), dir: shared, env: { BOTSHARD_HAPROXY_EXTERNAL: '1' } });
      try {
        const res = await postJson(`${router.url}/v1/bots/bot-0/predict`, { text: 'hi' });
        expect([res.status, res.body.pool]).toEqual([200, first]);
        writeMountedCatalog(dir, two);
        const moved = [...plan(two).assignment].find(([, pool]) => pool === second)![0];
        await until(async () => (await postJson(`${router.url}/v1/bots/${moved}/predict`, { text: 'hi' })).body.pool === second, 20_000, 'a moved bot to be served by the new pool');
        expect(await (await fetch(router.metricsUrl)).text()).toMatch(/^botshard_haproxy_config_reloads_total 1$/m);
      } finally {
        expect((await router.stop()).code).toBe(0);
      }
    } finally {
      container.kill('SIGTERM');
      await stopped;
      await a.close();
      await b.close();
    }
  }, 60_000);
  test('a control plane that crashed: HAProxy serves REST and gRPC on the maps it has, the pod reports it; once restarted, the maps catch up with the catalog it missed', async () => {
    const dir = tempDir('catalog');
    writeMountedCatalog(dir, one);
    const more = parseCatalog(catalogInput([...bots, supportBot('bot-new')], 1));
    const models = withModels(more);
    const a = await runPool({ pool: first, catalog: dir, modelRoot: models, workers: 1, pollMs: 100 });
    const shared = tempDir('haproxy');
    const state = path.join(shared, 'state');
    const { container, stopped } = haproxyContainer(state);
    const pools = new Map([[plan(one).pools[0].name, a.url]]);
    const grpcs = new Map([[plan(one).pools[0].name, a.grpc]]);
    try {
      const crashed = await runHaproxy({ catalog: dir, pools, grpcs, dir: shared, env: { BOTSHARD_HAPROXY_EXTERNAL: '1' } });
      expect((await postJson(`${crashed.url}/v1/bots/bot-0/predict`, { text: 'hi' })).status).toBe(200);
      crashed.child.kill('SIGKILL');
      await crashed.stop();
      // The control container's probes no longer answer (the kubelet takes the pod out and restarts the container);
      // gRPC's own readiness, which the control plane answers, says so too; HAProxy routes both protocols.
      await expect(fetch(crashed.metricsUrl.replace(/\/metrics$/, '/botshard/ready'))).rejects.toThrow();
      const client = new GrpcClient(crashed.grpc);
      try {
        const ready = await client.call('ServerReady', {});
        expect([ready.code, ready.details]).toEqual([grpc.status.UNAVAILABLE, "the router's control plane does not answer; HAProxy keeps routing the catalog it has"]);
        const out = await client.call('ModelInfer', inferRequest('bot-0', ['hi'], { raw: true }));
        expect([out.code, out.metadata['x-botshard-pool']]).toEqual([grpc.status.OK, first]);
      } finally {
        client.close();
      }
      // A catalog with a new bot while no control plane runs: HAProxy serves the old maps (the new bot is unknown to them).
      writeMountedCatalog(dir, more);
      await until(() => a.app.pool.bots.get('bot-new')?.state === 'ready', 20_000, 'the pool to load the new bot');
      expect((await postJson(`${crashed.url}/v1/bots/bot-0/predict`, { text: 'hi' })).status).toBe(200);
      expect((await postJson(`${crashed.url}/v1/bots/bot-new/predict`, { text: 'hi' })).status).toBe(404);
      const restarted = await runHaproxy({ catalog: dir, pools, dir: shared, env: { BOTSHARD_HAPROXY_EXTERNAL: '1' } });
      try {
        await until(async () => (await postJson(`${restarted.url}/v1/bots/bot-new/predict`, { text: 'hi' })).status === 200, 20_000, 'HAProxy to route the new bot');
      } finally {
        expect((await restarted.stop()).code).toBe(0);
      }
    } finally {
      container.kill('SIGTERM');
      await stopped;
      await a.close();
    }
  }, 60_000);
});
