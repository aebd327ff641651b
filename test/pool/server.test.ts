/** The pool server over real HTTP on loopback, with real ONNX models: endpoints, placement, isolation, bad input. */
import { parseCatalog } from '@botshard/runtime';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as net from 'node:net';
import * as path from 'node:path';
import { serveMetrics } from '@botshard/runtime/serve/process';
import { RunningPool, catalogInput, ensureBuilt, getJson, injectJson, placement, postJson, runPool, standaloneBot, supportBot, withModels } from './support';

beforeAll(() => ensureBuilt());

const infer = (texts: string[], extra: Record<string, unknown> = {}) => ({ inputs: [{ name: 'text', shape: [texts.length], datatype: 'BYTES', data: texts }], ...extra });

describe('a pool loads only its own bots', () => {
  const bots = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'].map((id) => supportBot(id));
  const catalog = parseCatalog(catalogInput(bots, 2));
  const where = placement(catalog);
  const pools = [...new Set(where.values())].sort();
  let models: string;
  const running: RunningPool[] = [];

  beforeAll(async () => {
    models = withModels(catalog);
    for (const pool of pools) running.push(await runPool({ pool, catalog, modelRoot: models }));
  });
  afterAll(async () => Promise.all(running.map((r) => r.close())));

  test('the plan splits the bots over both pools', () => {
    expect(pools).toHaveLength(2);
  });

  test('each pool holds exactly the bots the placement assigns to it and sends the others on', async () => {
    for (const [i, pool] of pools.entries()) {
      const own = [...where].filter(([, p]) => p === pool).map(([b]) => b).sort();
      expect([...running[i].app.pool.bots.keys()].sort()).toEqual(own);
      for (const [bot, holder] of where) {
        const res = await getJson(`${running[i].url}/v2/models/${bot}/ready`);
        expect(res.headers.get('x-botshard-pool')).toBe(holder);
        expect(res.status).toBe(holder === pool ? 200 : 404);
        if (holder !== pool) expect(res.body.error).toContain(`pool "${holder}" holds it`);
      }
    }
  });

  test('an encoder is loaded once per pool however many bots use it', async () => {
    const text = await (await fetch(`${running[0].url}/v2/health/ready`)).text();
    expect(text).toBe('{"ready":true}');
    const bytes = await running[0].app.poolMetrics.modelFileBytes.get();
    const encoder = bytes.values.find((v) => v.labels.kind === 'encoder')!.value;
    expect(encoder).toBe(fs.statSync(path.join(models, 'encoders/en.onnx')).size);
  });

  test('a bot not in the catalog is a 404 carrying this pool\'s name', async () => {
    const res = await postJson(`${running[0].url}/v1/bots/nobody/predict`, { text: 'hi' });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: expect.stringContaining('not in the catalog') });
    expect(res.headers.get('x-botshard-pool')).toBe(pools[0]);
  });
});

describe('the OIP endpoints', () => {
  // "rewriter" is "support" with other rewrite rules: the same head (the demo head is built from the intents'
  // examples, not from the rules), so what it answers differently comes from its rules alone. The first turns a
  // greeting into a billing example (case-insensitively), the second that billing example into a password one.
  const REWRITES = [
    { pattern: '\\bHEY\\b', flags: 'i', replace: 'my bill is wrong' },
    { pattern: 'my bill is wrong', replace: 'I forgot my password' },
  ];
  const catalog = parseCatalog(catalogInput([supportBot('support'), standaloneBot('yesno'), supportBot('rewriter', { preprocess: REWRITES })]));
  let pool: RunningPool;
  let url: string;
  const name = () => [...placement(catalog).values()][0];

  // What the pool answers is tested through fastify's inject; the socket's own behaviour (content types sent
  // by curl, header timeouts) over real HTTP below.
  const get = (p: string) => injectJson(pool.app, 'GET', p);
  const post = (p: string, body: unknown, headers?: Record<string, string>) => injectJson(pool.app, 'POST', p, body, headers);

  beforeAll(async () => {
    pool = await runPool({ pool: name(), catalog, modelRoot: withModels(catalog), headersTimeoutMs: 500, requestTimeoutMs: 2000, timeoutCheckMs: 100, maxBatch: 8, maxTextLength: 200, bodyLimit: 4096 });
    url = pool.url;
  });
  afterAll(() => pool.close());

  test('health, server metadata and model metadata', async () => {
    expect((await get(`/v2/health/live`)).body).toEqual({ live: true });
    const ready = await get(`/v2/health/ready`);
    expect(ready.status).toBe(200);
    expect(ready.headers.get('x-botshard-pool')).toBe(name());
    for (const p of ['/v2', '/v2/']) expect((await get(`${p}`)).body).toEqual({ name: 'botshard-pool', version: expect.any(String), extensions: ['binary_tensor_data'] });
    const meta = await get(`/v2/models/support`);
    expect(meta.body).toEqual({
      name: 'support',
      versions: ['1'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
      outputs: [
        { name: 'intent', datatype: 'BYTES', shape: [-1] },
        { name: 'confidence', datatype: 'FP32', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 3], parameters: { labels: 'password_reset,billing,greeting' } },
      ],
      // Its head's size: declared in the catalog, and measured when it loaded (at least its file).
      parameters: { quarantined: false, mean_run_ms: expect.any(Number), declared_bytes: 2 * 1024 * 1024, measured_bytes: expect.any(Number) },
    });
    expect((await get(`/v2/models/support/ready`)).body).toEqual({ name: 'support', ready: true, state: 'ready', quarantined: false });
    expect((await get(`/v2/models/support/versions/1/ready`)).status).toBe(200);
    expect((await get(`/v2/models/support/versions/2/ready`)).status).toBe(404);
  });

  test('infer: a batch of texts, the id echoed, intents, confidences and probabilities', async () => {
    const res = await post(`/v2/models/support/infer`, infer(['I forgot my password', 'why was I charged twice', 'hello there'], { id: 'req-42' }));
    expect(res.status).toBe(200);
    expect(res.body.model_name).toBe('support');
    expect(res.body.id).toBe('req-42');
    const [intent, confidence, probabilities] = res.body.outputs;
    expect(intent).toEqual({ name: 'intent', datatype: 'BYTES', shape: [3], data: ['password_reset', 'billing', 'greeting'] });
    expect(confidence).toMatchObject({ name: 'confidence', datatype: 'FP32', shape: [3] });
    for (const c of confidence.data) expect(c).toBeGreaterThan(0.8);
    expect(probabilities).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [3, 3] });
    expect(probabilities.data).toHaveLength(9);
  });

  test('infer: [N, 1] nested data, and only the outputs asked for', async () => {
    const res = await post(`/v2/models/support/infer`, {
      inputs: [{ name: 'text', shape: [2, 1], datatype: 'BYTES', data: [['hello there'], ['my bill is wrong']] }],
      outputs: [{ name: 'intent' }],
    });
    expect(res.status).toBe(200);
    expect(res.body.outputs).toEqual([{ name: 'intent', datatype: 'BYTES', shape: [2], data: ['greeting', 'billing'] }]);
    expect(res.body.id).toBeUndefined();
  });

  test('predict: intent, confidence, RE2 entities with offsets, pool; the fallback below the threshold', async () => {
    const text = 'I forgot my password, ticket #123456';
    const res = await post(`/v1/bots/support/predict`, { text });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ bot: 'support', intent: 'password_reset', confidence: expect.any(Number), entities: [{ name: 'ticket', value: '123456', start: 30, end: 36 }], pool: name() });
    expect(text.slice(30, 36)).toBe('123456');
    // No words: every intent at 1/3, below the threshold (0.5), so the bot's fallback.
    const empty = await post(`/v1/bots/support/predict`, { text: '' });
    expect(empty.body).toMatchObject({ intent: 'human_handoff', entities: [] });
    expect(empty.body.confidence).toBeCloseTo(1 / 3, 5);
  });

  test('pre-processing rewrites the text before tokenizing (RE2 rules in order, with their flags)', async () => {
    const run = async (bot: string, texts: string[]) => {
      const res = await post(`/v2/models/${bot}/infer`, infer(texts));
      expect(res.status).toBe(200);
      return { intents: res.body.outputs[0].data as string[], probabilities: res.body.outputs[2].data as number[] };
    };
    // Without the rules: each text is an example of its own intent.
    expect((await run('support', ['hey', 'my bill is wrong'])).intents).toEqual(['greeting', 'billing']);
    // With them, both end as "I forgot my password" ("hey" only through both rules, the first then the second).
    const rewritten = await run('rewriter', ['hey', 'my bill is wrong']);
    expect(rewritten.intents).toEqual(['password_reset', 'password_reset']);
    // Token for token what the same head makes of the rewritten text.
    const target = await run('support', ['I forgot my password', 'I forgot my password']);
    expect(rewritten.probabilities).toHaveLength(6);
    rewritten.probabilities.forEach((v, i) => expect(v).toBeCloseTo(target.probabilities[i], 6));
  });

  test('a bot without an encoder runs its own embedding bag', async () => {
    const res = await post(`/v1/bots/yesno/predict`, { text: 'no thanks' });
    expect(res.body).toMatchObject({ bot: 'yesno', intent: 'no' });
  });

  test.each([
    ['shape and data disagree', infer(['a']).inputs.map((i) => ({ ...i, shape: [2] })), /shape \[2\] but 1 strings/],
    ['wrong datatype', [{ name: 'text', shape: [1], datatype: 'FP32', data: [1] }], /datatype/],
    ['wrong input name', [{ name: 'input0', shape: [1], datatype: 'BYTES', data: ['a'] }], /name/],
    ['numbers as text', [{ name: 'text', shape: [1], datatype: 'BYTES', data: [1] }], /data/],
    ['too many strings', [{ name: 'text', shape: [9], datatype: 'BYTES', data: Array(9).fill('a') }], /./],
    ['a text too long', [{ name: 'text', shape: [1], datatype: 'BYTES', data: ['a'.repeat(201)] }], /200 characters|NOT have more than 200/],
    ['two inputs', [...infer(['a']).inputs, ...infer(['b']).inputs], /inputs/],
    ['no inputs', [], /inputs/],
    ['a 3-d shape', [{ name: 'text', shape: [1, 1, 1], datatype: 'BYTES', data: ['a'] }], /shape/],
  ])('400 before any model runs: %s', async (_name, inputs, message) => {
    const before = await pool.app.poolMetrics.inferenceSeconds.get();
    const res = await post(`/v2/models/support/infer`, { inputs });
    expect(res.status).toBe(400);
    expect(Object.keys(res.body)).toEqual(['error']);
    expect(res.body.error).toMatch(message);
    const after = await pool.app.poolMetrics.inferenceSeconds.get();
    const count = (m: typeof before) => m.values.filter((v) => v.metricName?.endsWith('_count')).reduce((s, v) => s + v.value, 0);
    expect(count(after)).toBe(count(before));
  });

  test('unknown output names are 400; fields the protocol leaves open are ignored on inference', async () => {
    expect((await post(`/v2/models/support/infer`, infer(['a'], { outputs: [{ name: 'logits' }] }))).body.error).toMatch(/unknown output "logits"/);
    // The protocol's request schema allows additional fields; client libraries send their own.
    const extended = await post(`/v2/models/support/infer`, {
      ...infer(['a'], { extra: 1, parameters: { binary_data_output: false } }),
      inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: ['a'], parameters: { content_type: 'str' }, client_field: true }],
      outputs: [{ name: 'intent', binary_data: false }],
    });
    expect([extended.status, extended.body.outputs.map((o: { name: string }) => o.name)]).toEqual([200, ['intent']]);
    // The predict API of botshard's own stays strict.
    expect((await post(`/v1/bots/support/predict`, { text: 'a', more: 1 })).status).toBe(400);
    expect((await post(`/v1/bots/support/predict`, { text: 5 })).status).toBe(400);
  });

  test('malformed and empty JSON are 400, oversize bodies 413', async () => {
    const bad = await post(`/v1/bots/support/predict`, '{"text": "a"');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/malformed JSON/);
    expect((await post(`/v1/bots/support/predict`, '')).status).toBe(400);
    const big = await post(`/v1/bots/support/predict`, { text: 'a'.repeat(5000) });
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ error: 'request body is larger than 4096 bytes' });
  });

  test('prototype-pollution keys are rejected', async () => {
    for (const body of ['{"text": "a", "__proto__": {"polluted": true}}', '{"text": "a", "constructor": {"prototype": {"polluted": true}}}', '{"inputs": [{"__proto__": {"x": 1}, "name": "text"}]}']) {
      const res = await post(`/v1/bots/support/predict`, body);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(/forbidden key/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('curl -d without a JSON content type still works', async () => {
    const res = await fetch(`${url}/v1/bots/support/predict`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '{"text":"hello there"}' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { intent: string }).intent).toBe('greeting');
  });

  test('unknown routes are 404 {"error"}', async () => {
    const res = await getJson(`${url}/v3/nothing`);
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: 'no route GET /v3/nothing' });
  });

  test('a client that never finishes its headers is cut off (header timeout)', async () => {
    const port = Number(new URL(url).port);
    const socket = net.connect(port, '127.0.0.1');
    socket.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n'); // headers never end
    // The pool answers 408 and closes (headersTimeoutMs 500); without the timeout the test's own timeout fails it.
    const answer = await new Promise<string>((resolve) => {
      let data = '';
      socket.on('data', (d) => (data += d));
      socket.on('close', () => resolve(data));
    });
    expect(answer).toMatch(/^HTTP\/1.1 408/);
  });

  test('metrics on their own port', async () => {
    const server = await serveMetrics(pool.app.poolMetrics.registry, 0, '127.0.0.1');
    try {
      const port = (server.address() as net.AddressInfo).port;
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      for (const metric of ['botshard_pool_bots_assigned', 'botshard_pool_bots{', 'botshard_pool_model_bytes', 'botshard_pool_model_file_bytes', 'botshard_pool_model_load_seconds', 'botshard_pool_inference_seconds', 'botshard_pool_bot_requests_total', 'botshard_pool_queue_depth', 'botshard_pool_catalog_generation', 'botshard_pool_ready']) {
        expect(text).toContain(metric);
      }
      expect(text).toContain(`botshard_pool_catalog_generation{generation="${catalog.generation}"`);
      expect(text).toMatch(new RegExp(`botshard_pool_bots\\{state="ready",pool="[^"]+"\\} ${catalog.bots.length}\n`));
      expect(text).toMatch(/botshard_pool_bot_requests_total\{bot="support",outcome="ok",pool="[^"]+"\} \d+/);
      expect(text).not.toMatch(/inference_seconds_bucket\{[^}]*bot=/); // no per-bot histograms
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});

describe('isolation: a missing or corrupt model fails its bot only', () => {
  const catalog = parseCatalog(catalogInput([supportBot('good'), supportBot('corrupt'), supportBot('missing'), standaloneBot('wrong-labels', { intents: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] })]));
  let pool: RunningPool;

  beforeAll(async () => {
    const models = withModels(catalog);
    fs.writeFileSync(path.join(models, 'heads/corrupt.onnx'), 'this is not an ONNX model');
    fs.rmSync(path.join(models, 'heads/missing.onnx'));
    // A valid model whose output does not match the catalog: 2 probabilities for 3 intents.
    const other = parseCatalog(catalogInput([standaloneBot('wrong-labels')]));
    fs.copyFileSync(path.join(withModels(other), 'heads/wrong-labels.onnx'), path.join(models, 'heads/wrong-labels.onnx'));
    pool = await runPool({ pool: [...placement(catalog).values()][0], catalog, modelRoot: models });
  });
  afterAll(() => pool.close());

  test('the pool is ready and the good bot serves', async () => {
    expect((await getJson(`${pool.url}/v2/health/ready`)).status).toBe(200);
    expect((await postJson(`${pool.url}/v1/bots/good/predict`, { text: 'hello there' })).body.intent).toBe('greeting');
  });

  test.each([
    ['corrupt', /head heads\/corrupt.onnx failed to load/],
    ['missing', /head heads\/missing.onnx failed to load: ENOENT: no such file or directory, open '<path>'/],
    ['wrong-labels', /outputs 2 probabilities, the catalog lists 3 intents/],
  ])('%s: reported failed in /ready, 503 on inference', async (bot, reason) => {
    const ready = await getJson(`${pool.url}/v2/models/${bot}/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ name: bot, ready: false, state: 'failed', error: expect.stringMatching(reason) });
    const res = await postJson(`${pool.url}/v1/bots/${bot}/predict`, { text: 'hello' }, { 'x-request-id': `req-${bot}` });
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/failed to load/);
    expect(res.body.error).toContain(`(request id req-${bot};`);
    // No path of the pool's machine reaches a client: the log keeps them.
    for (const body of [ready.body.error, res.body.error]) {
      expect(body).not.toContain(os.tmpdir());
      expect(body).not.toMatch(/'\/[^']*'/);
    }
  });

  test('metrics count the failures', async () => {
    const bots = await pool.app.poolMetrics.bots.get();
    expect(bots.values.find((v) => v.labels.state === 'failed')!.value).toBe(3);
    expect(bots.values.find((v) => v.labels.state === 'ready')!.value).toBe(1);
  });
});
