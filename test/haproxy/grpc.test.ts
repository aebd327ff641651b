/**
 * Open Inference gRPC through the HAProxy mode, against real pools on loopback and a real HAProxy, with a
 * grpc-js client: HAProxy reads the bot from the message and routes it by the same maps as REST; it refuses
 * with the statuses and metadata of the Node router; a tenant has one rate over both protocols; the
 * caller's deadline is passed on and cuts the call at HAProxy too.
 */
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { parseCatalog, plan, poolFor } from '@botshard/runtime';
import { healthService } from '@botshard/runtime/oip/grpc';
import example from '../../bots.config';
import { RunningPool, catalogInput, ensureBuilt, postJson, runPool, runPoolsOf, slowModels, standaloneBot, tempDir, withModels, writeMountedCatalog } from '../pool/support';
import { GrpcClient, inferRequest } from '../support/grpc';
import { runHaproxy, withHaproxy } from './support';
import { twoTenants } from '../support/tenants';

beforeAll(() => ensureBuilt());

const describeWithHaproxy = withHaproxy().describe;

describeWithHaproxy('Open Inference gRPC through HAProxy', () => {
  const catalog = parseCatalog(example);
  const topology = plan(catalog);
  let pools: RunningPool[] = [];
  let router: Awaited<ReturnType<typeof runHaproxy>>;
  let client: GrpcClient;

  beforeAll(async () => {
    const running = await runPoolsOf(catalog);
    pools = running.pools;
    const dir = tempDir('catalog');
    writeMountedCatalog(dir, catalog);
    router = await runHaproxy({ catalog: dir, pools: running.urls, grpcs: running.grpcs });
    client = new GrpcClient(router.grpc);
  }, 120_000);
  afterAll(async () => {
    client?.close();
    const exit = await router?.stop();
    await Promise.all(pools.map((p) => p.close()));
    expect(exit?.code).toBe(0);
  });

  test("every bot reaches poolFor's pool, typed and raw, with its answer, model_version passed through", async () => {
    for (const bot of catalog.bots) {
      for (const raw of [false, true]) {
        const out = await client.call('ModelInfer', inferRequest(bot.id, [bot.intents[0].examples[0]], { raw, id: `r-${bot.id}` }));
        expect([bot.id, raw, out.code, out.metadata['x-botshard-pool'], out.response?.model_name, out.response?.id]).toEqual([bot.id, raw, grpc.status.OK, poolFor(bot.id, topology), bot.id, `r-${bot.id}`]);
        expect(out.metadata['x-request-id']).toMatch(/^[A-Za-z0-9._:-]+$/);
      }
      const ready = await client.call('ModelReady', { name: bot.id });
      expect([ready.code, ready.response, ready.metadata['x-botshard-pool']]).toEqual([grpc.status.OK, { ready: true }, poolFor(bot.id, topology)]);
    }
    const bot = catalog.bots[0].id;
    const meta = await client.call('ModelMetadata', { name: bot, version: '1' });
    expect([meta.code, meta.response.name, meta.response.versions]).toEqual([grpc.status.OK, bot, ['1']]);
    const versioned = await client.call('ModelInfer', { ...(inferRequest(bot, ['hello']) as object), model_version: '1' });
    expect([versioned.code, versioned.response.model_version]).toEqual([grpc.status.OK, '1']);
    // A version the bot does not have: the pool's answer (it names the versions), passed through.
    const missing = await client.call('ModelInfer', { ...(inferRequest(bot, ['hello']) as object), model_version: '7' });
    expect([missing.code, missing.metadata['x-botshard-pool']]).toEqual([grpc.status.NOT_FOUND, poolFor(bot, topology)]);
    expect(missing.details).toBe(`bot "${bot}" has no version "7" to serve; its versions are "1" (serving)`);
  });

  test("a message larger than HAProxy's buffer reaches its pool whole (the bot is read from its first bytes)", async () => {
    const bot = catalog.bots[1].id;
    const texts = Array.from({ length: 40 }, (_, i) => `${i} ${'my bill is wrong '.repeat(200)}`.slice(0, 3000));
    const out = await client.call('ModelInfer', inferRequest(bot, texts, { raw: true }));
    expect([out.code, out.metadata['x-botshard-pool']]).toEqual([grpc.status.OK, poolFor(bot, topology)]);
    expect(out.response.outputs[0].shape).toEqual([40]);
  });

  test("health, gRPC's health check and server metadata: answered by the control plane behind HAProxy", async () => {
    expect((await client.call('ServerLive', {})).response).toEqual({ live: true });
    expect((await client.call('ServerReady', {})).response).toEqual({ ready: true });
    const meta = await client.call('ServerMetadata', {});
    expect(meta.response).toEqual({ name: 'botshard-router', version: '0.1.0', extensions: ['botshard_routing', 'botshard_haproxy', 'binary_tensor_data'] });
    const health = new (healthService())(router.grpc, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
    try {
      const status = await new Promise((resolve, reject) => health.Check({ service: '' }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))));
      expect(status).toBe('SERVING');
    } finally {
      health.close();
    }
  });

  test('refuses bad and unknown ids with the statuses and messages of the Node router, trailers only, with the request id', async () => {
    for (const id of ['UPPER', 'a_b', 'x'.repeat(41), '-lead', '']) {
      const out = await client.call('ModelInfer', inferRequest(id, ['hi']));
      expect([id, out.code, out.details]).toEqual([id, grpc.status.INVALID_ARGUMENT, 'invalid bot id: bot ids are lowercase letters, digits and "-", at most 40 characters']);
      expect(out.metadata['content-type']).toBe('application/grpc');
    }
    const unknown = await client.call('ModelReady', { name: 'no-such-bot' }, { metadata: { 'x-request-id': 'req-42' } });
    expect([unknown.code, unknown.details, unknown.metadata['x-request-id']]).toEqual([grpc.status.NOT_FOUND, `unknown bot "no-such-bot": it is not in catalog generation ${catalog.generation}`, 'req-42']);
    expect(unknown.metadata['x-botshard-pool']).toBeUndefined();
  });
});

describeWithHaproxy('tenants over gRPC through HAProxy: keys from metadata, one rate per tenant over both protocols', () => {
  const { catalog, keys, pool: name } = twoTenants();
  const RATE = 3;
  let pool: RunningPool;
  let router: Awaited<ReturnType<typeof runHaproxy>>;
  let client: GrpcClient;

  beforeAll(async () => {
    pool = await runPool({ pool: name, catalog, modelRoot: withModels(catalog), workers: 1 });
    const dir = tempDir('catalog');
    writeMountedCatalog(dir, catalog);
    router = await runHaproxy({ catalog: dir, pools: new Map([[name, pool.url]]), grpcs: new Map([[name, pool.grpc]]), tenantKeys: keys, env: { BOTSHARD_TENANT_RATE: String(RATE) } });
    client = new GrpcClient(router.grpc);
  }, 60_000);
  afterAll(async () => {
    client?.close();
    await router?.stop();
    await pool?.close();
  });

  /** A tenant's entry in HAProxy's one stick table: its rate in the last second, and every request counted. */
  const counted = async (tenant: string) => {
    const line = (await router.api.command(`show table tenant_rates key ${tenant}`)).split('\n').find((l) => l.includes(` key=${tenant} `));
    return line === undefined ? { rate: 0, total: 0 } : { rate: Number(/ http_req_rate\(1000\)=(\d+)/.exec(line)![1]), total: Number(/ http_req_cnt=(\d+)/.exec(line)![1]) };
  };
  const ask = (bot: string, metadata: Record<string, string> = {}) => client.call('ModelInfer', inferRequest(bot, ['hi']), { metadata });

  test('UNAUTHENTICATED without a key or with a wrong one, PERMISSION_DENIED for another tenant\'s bot, OK with its own (Bearer or x-api-key)', async () => {
    const none = await ask('acme-bot');
    expect([none.code, none.details, none.metadata['www-authenticate']]).toEqual([grpc.status.UNAUTHENTICATED, 'an API key is required: send "Authorization: Bearer <key>"', 'Bearer']);
    expect(await ask('acme-bot', { authorization: 'Bearer guess' })).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: 'the API key is not valid' });
    expect(await ask('globex-bot', { authorization: 'Bearer acme-secret' })).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: 'this API key may not use bot "globex-bot"' });
    // Without a key an unknown bot looks like a known one; with one, it is unknown.
    expect(await ask('no-such-bot')).toMatchObject({ code: none.code, details: none.details });
    expect((await ask('no-such-bot', { 'x-api-key': 'acme-secret' })).code).toBe(grpc.status.NOT_FOUND);
    await new Promise((r) => setTimeout(r, 1100)); // the rate limit starts from an idle second
    expect((await ask('acme-bot', { authorization: 'Bearer acme-secret' })).code).toBe(grpc.status.OK);
    expect((await ask('globex-bot', { 'x-api-key': 'globex-secret' })).code).toBe(grpc.status.OK);
  });

  test('REST and gRPC requests count in one entry per tenant: an exact count, and refusals in both protocols once over the rate', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    const start = await counted('acme');
    const rounds: Array<{ protocol: string; before: number; after: number; ok: boolean; refusal?: unknown }> = [];
    for (let i = 0; i < 12; i++) {
      const before = (await counted('acme')).rate;
      if (i % 2 === 0) {
        const out = await ask('acme-bot', { authorization: 'Bearer acme-secret' });
        const refusal = out.code === grpc.status.OK ? undefined : [out.code, out.details, out.metadata['retry-after'], out.metadata['grpc-retry-pushback-ms']];
        rounds.push({ protocol: 'grpc', before, after: (await counted('acme')).rate, ok: out.code === grpc.status.OK, refusal });
      } else {
        const res = await postJson(`${router.url}/v1/bots/acme-bot/predict`, { text: 'hi' }, { authorization: 'Bearer acme-secret' });
        rounds.push({ protocol: 'rest', before, after: (await counted('acme')).rate, ok: res.status === 200, refusal: res.status === 200 ? undefined : [res.status, res.body.error, res.headers.get('retry-after')] });
      }
    }
    // Every request of either protocol counted once in the tenant's entry.
    expect((await counted('acme')).total - start.total).toBe(12);
    // A request sent while the shared count was below the rate passed; one that left it above the rate was refused.
    expect(rounds.filter((r) => r.before < RATE && !r.ok)).toEqual([]);
    const refused = rounds.filter((r) => r.after > RATE);
    expect(refused.length).toBeGreaterThanOrEqual(2);
    for (const r of refused) {
      expect(r.refusal).toEqual(r.protocol === 'grpc' ? [grpc.status.RESOURCE_EXHAUSTED, 'tenant "acme" is over its rate limit', '1', '1000'] : [429, 'tenant "acme" is over its rate limit', '1']);
    }
    expect(new Set(refused.map((r) => r.protocol))).toEqual(new Set(['grpc', 'rest']));
    // Another tenant has its own entry.
    expect((await counted('globex')).total).toBe(1);
  });
});

describeWithHaproxy("the caller's deadline through HAProxy", () => {
  const catalog = parseCatalog(catalogInput([standaloneBot('slow', { model: { head: 'heads/slow.onnx', memory: '1Mi' } }), standaloneBot('quick')]));
  const name = plan(catalog).pools[0].name;
  let pool: RunningPool;
  let router: Awaited<ReturnType<typeof runHaproxy>>;

  beforeAll(async () => {
    pool = await runPool({ pool: name, catalog, modelRoot: slowModels(catalog, 60), timeoutMs: 20_000 });
    const dir = tempDir('catalog');
    writeMountedCatalog(dir, catalog);
    router = await runHaproxy({ catalog: dir, pools: new Map([[name, pool.url]]), grpcs: new Map([[name, pool.grpc]]) });
  }, 60_000);
  afterAll(async () => {
    await router?.stop();
    await pool?.close();
  });

  test('grpc-timeout cuts the call at HAProxy (DEADLINE_EXCEEDED long before the group timeout, even for a caller that never gives up itself) and reaches the pool', async () => {
    // A bare HTTP/2 call with a deadline and no timer of its own: whoever answers, HAProxy or the pool, does so by the deadline.
    const session = http2.connect(`http://${router.grpc}`);
    try {
      const message = Buffer.from((await import('@botshard/runtime/oip/grpc')).inferenceService().ModelInfer.requestSerialize(inferRequest('slow', ['yes'])));
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]);
      frame.writeUInt32BE(message.length, 1);
      const started = Date.now();
      const status = await new Promise<string | undefined>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': '/inference.GRPCInferenceService/ModelInfer', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '300m' });
        let code: string | undefined;
        stream.on('response', (h) => (code = (h['grpc-status'] as string | undefined) ?? code));
        stream.on('trailers', (h) => (code = (h['grpc-status'] as string | undefined) ?? code));
        stream.on('data', () => undefined);
        stream.on('end', () => resolve(code));
        stream.on('error', reject);
        stream.end(frame);
      });
      expect(status).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      session.close();
    }
    // The pool gets the deadline too: once it has measured the bot, it refuses what cannot finish in time
    // (RESOURCE_EXHAUSTED, naming itself) rather than running it. The calls before are DEADLINE_EXCEEDED.
    const client = new GrpcClient(router.grpc);
    try {
      // (On a loaded machine the pool, its one worker busy with the runs cut off, may also answer UNAVAILABLE for a while.)
      const outcomes = [];
      for (let i = 0; i < 20 && outcomes.at(-1)?.code !== grpc.status.RESOURCE_EXHAUSTED; i++) outcomes.push(await client.call('ModelInfer', inferRequest('slow', ['yes']), { deadlineMs: 150 }));
      expect(outcomes[0].code).toBe(grpc.status.DEADLINE_EXCEEDED);
      for (const o of outcomes.slice(0, -1)) expect([grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE]).toContain(o.code);
      expect([outcomes.at(-1)!.code, outcomes.at(-1)!.metadata['x-botshard-pool']]).toEqual([grpc.status.RESOURCE_EXHAUSTED, name]);
      expect((await client.call('ModelInfer', inferRequest('quick', ['yes please']))).code).toBe(grpc.status.OK);
    } finally {
      client.close();
    }
  }, 60_000);
});
