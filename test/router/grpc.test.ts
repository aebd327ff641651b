/**
 * The router over gRPC with a real client, against real pools: the same placement, fallbacks and tenant
 * keys as REST, statuses mapped from REST's, deadlines, failing pools, and REST's binary tensor data passed
 * through. (A live catalog change under gRPC and REST traffic at once: router.test.ts, "rebalancing".)
 */
import * as grpc from '@grpc/grpc-js';
import { parseCatalog, plan, poolFor } from '@botshard/runtime';
import { encodeRaw } from '@botshard/runtime/oip/tensors';
import { GrpcClient, inferRequest, malformedInfer, rawModelInfer } from '../support/grpc';
import { RunningPool, catalogInput, ensureBuilt, postJson, runPool, runPoolsOf, slowModels, standaloneBot, supportBot, withModels } from '../pool/support';
import { runRouter } from './support';
import { twoTenants } from '../support/tenants';

beforeAll(() => ensureBuilt());

describe('routing gRPC', () => {
  const bots = Array.from({ length: 8 }, (_, i) => supportBot(`bot-${i}`));
  const catalog = parseCatalog(catalogInput(bots, 3));
  const topology = plan(catalog);
  let pools: RunningPool[] = [];
  let router: Awaited<ReturnType<typeof runRouter>>;
  let client: GrpcClient;

  beforeAll(async () => {
    const started = await runPoolsOf(catalog);
    pools = started.pools;
    router = await runRouter({ catalog, urls: started.urls, grpcs: started.grpcs });
    client = new GrpcClient(router.grpc);
  }, 60_000);
  afterAll(async () => {
    client.close();
    await router?.close();
    await Promise.all(pools.map((p) => p.close()));
  });

  test('every bot reaches the pool poolFor names, typed and raw; answers are the pool\'s', async () => {
    for (const bot of bots) {
      for (const raw of [false, true]) {
        const out = await client.call('ModelInfer', inferRequest(bot.id, ['I forgot my password', 'my bill is wrong'], { raw, id: `${bot.id}-${raw}` }));
        expect([bot.id, out.code, out.details]).toEqual([bot.id, grpc.status.OK, undefined]);
        expect(out.metadata['x-botshard-pool']).toBe(poolFor(bot.id, topology));
        expect(out.response).toMatchObject({ model_name: bot.id, id: `${bot.id}-${raw}` });
        const intents = raw ? out.response.raw_output_contents[0] : Buffer.concat(out.response.outputs[0].contents.bytes_contents.flatMap((b: Buffer) => [encodeRaw('BYTES', [b.toString()])]));
        expect(intents.equals(encodeRaw('BYTES', ['password_reset', 'billing']))).toBe(true);
        if (raw) expect(out.response.raw_output_contents.map((b: Buffer) => b.length)).toEqual([intents.length, 8, 8 * bot.intents.length]);
      }
    }
  });

  test('health and server metadata are the router\'s; model metadata and readiness are forwarded', async () => {
    expect((await client.call('ServerLive', {})).response).toEqual({ live: true });
    expect((await client.call('ServerReady', {})).response).toEqual({ ready: true });
    expect((await client.call('ServerMetadata', {})).response).toEqual({ name: 'botshard-router', version: expect.any(String), extensions: ['botshard_routing', 'binary_tensor_data'] });
    const meta = await client.call('ModelMetadata', { name: 'bot-3' });
    expect(meta.response).toMatchObject({ name: 'bot-3', platform: 'onnx_onnxv1' });
    expect(meta.metadata['x-botshard-pool']).toBe(poolFor('bot-3', topology));
    expect((await client.call('ModelReady', { name: 'bot-3', version: '1' })).response).toEqual({ ready: true });
  });

  test('bad requests: the router\'s own refusals and the pool\'s, as gRPC statuses', async () => {
    const cases: Array<[string, object, grpc.status, string]> = [
      ['ModelInfer', inferRequest('nobody', ['hi']), grpc.status.NOT_FOUND, 'unknown bot "nobody"'],
      ['ModelInfer', inferRequest('Bad_Id', ['hi']), grpc.status.INVALID_ARGUMENT, 'invalid bot id'],
      ['ModelInfer', { ...inferRequest('', ['hi']) }, grpc.status.INVALID_ARGUMENT, 'names no model'],
      ['ModelInfer', { ...inferRequest('bot-1', ['hi']), model_version: '../x' }, grpc.status.INVALID_ARGUMENT, 'invalid model version'],
      ['ModelInfer', { ...inferRequest('bot-1', ['hi']), model_version: '7' }, grpc.status.NOT_FOUND, 'no version "7"'],
      ['ModelInfer', inferRequest('bot-1', ['hi'], { outputs: ['nope'] }), grpc.status.INVALID_ARGUMENT, 'unknown output "nope"'],
      ['ModelInfer', { ...inferRequest('bot-1', ['hi']), inputs: [{ name: 'text', datatype: 'INT32', shape: [1], contents: { int_contents: [1] } }] }, grpc.status.INVALID_ARGUMENT, 'datatype "INT32"'],
      ['ModelMetadata', { name: 'nobody' }, grpc.status.NOT_FOUND, 'unknown bot'],
    ];
    for (const [method, request, code, message] of cases) {
      const out = await client.call(method, request);
      expect([method, out.code, out.details]).toEqual([method, code, expect.stringContaining(message)]);
    }
    // Bytes that are not a protobuf message at all never reach a pool.
    const garbage = await rawModelInfer(client, Buffer.from([0x0a, 0xff, 0xff, 0xff]));
    expect([garbage?.code, garbage?.details]).toEqual([grpc.status.INVALID_ARGUMENT, expect.stringContaining('not a valid message')]);
    // Malformed deeper than the model name: the pool's 400, relayed; a client sending them cannot open the
    // pool's circuit (5 failures would), for gRPC or for REST.
    for (let i = 0; i < 8; i++) {
      const nested = await rawModelInfer(client, malformedInfer('bot-1'));
      expect([nested?.code, nested?.metadata.get('x-botshard-pool')[0]]).toEqual([grpc.status.INVALID_ARGUMENT, poolFor('bot-1', topology)]);
    }
    expect((await client.call('ModelInfer', inferRequest('bot-1', ['hi']))).code).toBe(grpc.status.OK);
    expect((await fetch(`${router.url}/v1/bots/bot-1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hi"}' })).status).toBe(200);
    const upstream = await router.app.router.metrics.upstreamErrors.get();
    expect(upstream.values.filter((v) => v.labels.kind !== 'not_ready')).toEqual([]);
    const rejected = await router.app.router.metrics.rejected.get();
    expect(rejected.values.find((v) => v.labels.reason === 'unknown_bot')?.value).toBeGreaterThanOrEqual(2);
  });

  test('REST requests with binary tensor data pass through the router both ways', async () => {
    const texts = ['hello there', 'why was I charged twice'];
    const tail = Buffer.concat(texts.flatMap((t) => { const n = Buffer.alloc(4); n.writeUInt32LE(Buffer.byteLength(t)); return [n, Buffer.from(t)]; }));
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'text', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: tail.length } }], outputs: [{ name: 'intent', parameters: { binary_data: true } }] }));
    const res = await fetch(`${router.url}/v2/models/bot-2/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, tail]) });
    expect(res.status).toBe(200);
    const length = Number(res.headers.get('inference-header-content-length'));
    const body = Buffer.from(await res.arrayBuffer());
    const json = JSON.parse(body.toString('utf8', 0, length));
    expect(json.outputs[0]).toMatchObject({ name: 'intent', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: body.length - length } });
    expect(body.subarray(length).toString('latin1')).toContain('greeting');
    expect(res.headers.get('x-botshard-pool')).toBe(poolFor('bot-2', topology));
  });
});

describe('gRPC tenants', () => {
  const { catalog, keys, pool: name } = twoTenants();
  let pool: RunningPool;
  let router: Awaited<ReturnType<typeof runRouter>>;
  let client: GrpcClient;

  beforeAll(async () => {
    pool = await runPool({ pool: name, catalog, modelRoot: withModels(catalog), workers: 1 });
    // The rate limit reads a clock that never moves: buckets refill only when a test says so.
    router = await runRouter({ catalog, urls: new Map([[name, pool.url]]), grpcs: new Map([[name, pool.grpc]]), tenantKeys: keys, tenantRate: 5, now: () => 1_000_000 });
    client = new GrpcClient(router.grpc);
  });
  afterAll(async () => {
    client.close();
    await router.close();
    await pool.close();
  });

  test('keys come from metadata: UNAUTHENTICATED, PERMISSION_DENIED, OK, and RESOURCE_EXHAUSTED over the rate', async () => {
    const ask = (bot: string, metadata?: Record<string, string>) => client.call('ModelInfer', inferRequest(bot, ['hi']), { metadata });
    const none = await ask('acme-bot');
    expect([none.code, none.metadata['www-authenticate']]).toEqual([grpc.status.UNAUTHENTICATED, 'Bearer']);
    expect((await ask('acme-bot', { authorization: 'Bearer guess' })).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await ask('globex-bot', { authorization: 'Bearer acme-secret' })).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await ask('acme-bot', { authorization: 'Bearer acme-secret' })).code).toBe(grpc.status.OK);
    expect((await ask('globex-bot', { 'x-api-key': 'globex-secret' })).code).toBe(grpc.status.OK);
    // 5 per second with bursts of 10, the clock stopped: acme's one call above left 9 tokens (refused calls
    // take none), so of a burst of 12 exactly 9 pass and 3 are refused, each with a retry pushback of the
    // second one token takes at 5 per second (rounded up).
    const burst = await Promise.all(Array.from({ length: 12 }, () => ask('acme-bot', { authorization: 'Bearer acme-secret' })));
    const limited = burst.filter((o) => o.code === grpc.status.RESOURCE_EXHAUSTED);
    expect([burst.filter((o) => o.code === grpc.status.OK).length, limited.length]).toEqual([9, 3]);
    for (const o of limited) {
      expect(o.details).toBe('tenant "acme" is over its rate limit');
      expect([o.metadata['grpc-retry-pushback-ms'], o.metadata['retry-after']]).toEqual(['1000', '1']);
    }
    expect((await ask('globex-bot', { 'x-api-key': 'globex-secret' })).code).toBe(grpc.status.OK); // another tenant's bucket
    const rejected = await router.app.router.metrics.rejected.get();
    expect(rejected.values.find((v) => v.labels.reason === 'rate_limit')?.value).toBe(3);
  });

  test("REST and gRPC draw from one bucket per tenant: globex's 8 tokens left pass 8 of 10 requests in either protocol, in order", async () => {
    // globex made 2 calls above (of its burst of 10), on the stopped clock.
    const outcomes: Array<[string, boolean]> = [];
    for (let i = 0; i < 10; i++) {
      if (i % 2 === 0) {
        outcomes.push(['grpc', (await client.call('ModelInfer', inferRequest('globex-bot', ['hi']), { metadata: { 'x-api-key': 'globex-secret' } })).code === grpc.status.OK]);
      } else {
        outcomes.push(['rest', (await postJson(`${router.url}/v1/bots/globex-bot/predict`, { text: 'hi' }, { 'x-api-key': 'globex-secret' })).status === 200]);
      }
    }
    expect(outcomes).toEqual([...Array.from({ length: 8 }, (_, i): [string, boolean] => [i % 2 === 0 ? 'grpc' : 'rest', true]), ['grpc', false], ['rest', false]]);
  });
});

describe('gRPC deadlines and failing pools through the router', () => {
  const catalog = parseCatalog(catalogInput([standaloneBot('slow', { model: { head: 'heads/slow.onnx', memory: '1Mi' } }), standaloneBot('quick')]));
  const name = plan(catalog).pools[0].name;
  let pool: RunningPool;

  beforeAll(async () => {
    pool = await runPool({ pool: name, catalog, modelRoot: slowModels(catalog, 60), timeoutMs: 20_000 });
  });
  afterAll(() => pool.close());

  test("the caller's deadline ends the call at the router and at the pool, and says nothing against the pool", async () => {
    const router = await runRouter({ catalog, urls: new Map([[name, pool.url]]), grpcs: new Map([[name, pool.grpc]]) });
    const client = new GrpcClient(router.grpc);
    try {
      // More than the circuit's threshold (5): were they counted as the pool's failures, its circuit would open.
      // Once the pool has measured the bot, it refuses what cannot finish in time (RESOURCE_EXHAUSTED, as a full queue).
      const codes: grpc.status[] = [];
      for (let i = 0; i < 7; i++) codes.push((await client.call('ModelInfer', inferRequest('slow', ['yes']), { deadlineMs: 150 })).code);
      expect(codes[0]).toBe(grpc.status.DEADLINE_EXCEEDED);
      for (const code of codes) expect([grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED]).toContain(code);
      const quick = await client.call('ModelInfer', inferRequest('quick', ['yes please']));
      expect([quick.code, quick.details]).toEqual([grpc.status.OK, undefined]);
      expect((await router.app.router.metrics.upstreamErrors.get()).values).toEqual([]);
      // Every group slot is given back.
      const inflight = (await router.app.router.metrics.inflight.get()).values;
      expect(inflight.every((v) => v.value === 0)).toBe(true);
    } finally {
      client.close();
      await router.close();
    }
  });

  test("a pool whose gRPC port is gone: UNAVAILABLE naming it, then its gRPC circuit opens; its REST keeps working", async () => {
    const gone = await runPool({ pool: name, catalog, modelRoot: withModels(catalog) });
    const deadAddress = gone.grpc;
    await gone.close();
    const router = await runRouter({ catalog, urls: new Map([[name, pool.url]]), grpcs: new Map([[name, deadAddress]]), circuitThreshold: 3 });
    const client = new GrpcClient(router.grpc);
    try {
      const outcomes = [];
      for (let i = 0; i < 5; i++) outcomes.push(await client.call('ModelInfer', inferRequest('quick', ['yes'])));
      expect(outcomes.map((o) => o.code)).toEqual(Array(5).fill(grpc.status.UNAVAILABLE));
      expect(outcomes[0].details).toContain(`pool "${name}" is unreachable over gRPC`);
      expect(outcomes[4].details).toContain('calls to it are paused');
      expect(Number(outcomes[4].metadata['retry-after'])).toBeGreaterThan(0);
      const rest = await fetch(`${router.url}/v1/bots/quick/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"yes"}' });
      expect(rest.status).toBe(200);
    } finally {
      client.close();
      await router.close();
    }
  });
});
