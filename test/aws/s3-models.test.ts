/**
 * Pools that fetch their models from S3: a real S3-protocol server (s3rver) on loopback, the real SDK
 * client through the standard credential chain, real ONNX models through the real pool server.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BotInput, Catalog, catalogSource, parseCatalog, plan } from '@botshard/runtime';
import { planPool } from '@botshard/runtime/pool/plan';
import { demoModels } from '@botshard/runtime/local/models';
import { ModelFetchError, ModelStore } from '@botshard/runtime/pool/store';
import { RunningPool, catalogInput, ensureBuilt, getJson, postJson, runPool, supportBot, tempDir } from '../pool/support';
import { refusedPort } from '../support/refused';
import { BUCKET, Proxy, S3Server, sha256, startProxy, startS3, useS3rverCredentials } from './support';

const IDS = ['s3-verified', 's3-plain', 's3-tampered'];
const headKey = (id: string) => `heads/${id}.onnx`;

let s3: S3Server;
let restoreEnv: () => void;
let files: Map<string, Uint8Array>;

/** The test catalog with every model in S3, the verified and tampered heads and the encoder with their sha256. */
function s3Catalog(extra: (id: string) => Partial<BotInput> = () => ({})): Catalog {
  const digest = (key: string) => sha256(files.get(key)!);
  const bots = IDS.map((id) =>
    supportBot(id, {
      model: {
        head: `s3://${BUCKET}/${headKey(id)}`,
        memory: '2Mi',
        encoder: 'encoder-en',
        ...(id === 's3-plain' ? {} : { sha256: digest(headKey(id)) }),
      },
      ...extra(id),
    }),
  );
  const input = catalogInput(bots);
  return parseCatalog({ ...input, encoders: input.encoders!.map((e) => ({ ...e, path: `s3://${BUCKET}/encoders/en.onnx`, sha256: digest('encoders/en.onnx') })) });
}

beforeAll(async () => {
  ensureBuilt();
  restoreEnv = useS3rverCredentials();
  s3 = await startS3();
  files = demoModels(parseCatalog(catalogInput(IDS.map((id) => supportBot(id)))));
  for (const [key, bytes] of files) await s3.put(key, bytes);
  // The object in the bucket was replaced by another (valid) model: its digest no longer matches the catalog's.
  await s3.put(headKey('s3-tampered'), files.get('encoders/en.onnx')!);
});
afterAll(async () => {
  await s3?.close();
  restoreEnv?.();
});

const predict = (pool: RunningPool, bot: string, text: string) => postJson(`${pool.url}/v1/bots/${bot}/predict`, { text });

describe('a pool whose models are in S3', () => {
  let pool: RunningPool;
  let cache: string;
  let catalog: Catalog;
  let before: number;

  beforeAll(async () => {
    catalog = s3Catalog();
    cache = tempDir('model-cache');
    before = s3.requests.length;
    // The model root is empty: every model must come from the store.
    pool = await runPool({ ...poolOf(catalog), catalog, modelRoot: tempDir('empty-root'), modelCache: cache, modelStore: { s3Endpoint: s3.endpoint, backoffMs: 20 } });
  });
  afterAll(() => pool?.close());

  test('fetches the encoder and the heads from S3 and serves them', async () => {
    for (const id of ['s3-verified', 's3-plain']) {
      const res = await predict(pool, id, 'I forgot my password');
      expect(res.status).toBe(200);
      expect(res.body.intent).toBe('password_reset');
    }
    expect(s3.gets('encoders/en.onnx')).toBe(1); // shared by three bots, fetched once
    expect(s3.gets(headKey('s3-verified'))).toBe(1);
    expect(s3.gets(headKey('s3-plain'))).toBe(1);
    // Cached under the URI (and digest), written whole: no partial file is left.
    const cached = fs.readdirSync(cache);
    expect(cached.filter((f) => f.endsWith('.part'))).toEqual([]);
    expect(cached).toHaveLength(3); // the encoder and two heads: the tampered download was not kept
    expect(cached.filter((f) => f.endsWith(`-${sha256(files.get(headKey('s3-verified'))!)}.onnx`))).toHaveLength(1);
  });

  test('a sha256 mismatch fails that bot only, in its ready state and the metrics, without retrying', async () => {
    const ready = await getJson(`${pool.url}/v2/models/s3-tampered/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ name: 's3-tampered', ready: false, state: 'failed' });
    expect(ready.body.error).toMatch(/s3:\/\/botshard-models\/heads\/s3-tampered\.onnx: sha256 mismatch: the catalog expects [0-9a-f]{64}, the file has [0-9a-f]{64}/);
    expect(s3.gets(headKey('s3-tampered'))).toBe(1);
    const res = await predict(pool, 's3-tampered', 'hello');
    expect(res.status).toBe(503);
    expect((await getJson(`${pool.url}/v2/health/ready`)).status).toBe(200);
    const metrics = await pool.app.poolMetrics.registry.metrics();
    expect(metrics).toMatch(/botshard_pool_model_downloads_total\{source="s3",result="mismatch",pool="[^"]+"\} 1/);
    expect(metrics).toMatch(/botshard_pool_bots\{state="failed",pool="[^"]+"\} 1/);
    expect(metrics).toMatch(/botshard_pool_bots\{state="ready",pool="[^"]+"\} 2/);
    expect(fs.readdirSync(cache)).toHaveLength(3);
  });

  test('a catalog reload reuses the downloaded models: no new request for the same URI and sha256', async () => {
    const seen = s3.requests.length;
    // A new threshold changes every bot's definition: all three reload.
    const next = s3Catalog(() => ({ postprocess: { threshold: 0.3, fallback: 'human_handoff' } }));
    await pool.app.pool.apply(planPool(catalogSource(next), poolOf(next).pool));
    expect(pool.app.pool.catalog?.generation).toBe(next.generation);
    expect((await predict(pool, 's3-verified', 'why was I charged twice')).body.intent).toBe('billing');
    expect((await predict(pool, 's3-plain', 'hello there')).body.intent).toBe('greeting');
    // Only the failed bot's model is asked for again (a failure is not cached).
    expect(s3.requests.slice(seen)).toEqual([`GET /${BUCKET}/${headKey('s3-tampered')}`]);
    expect(s3.requests.length - before).toBe(5);
  });

  test('a new pool process on the same cache folder downloads only what has no sha256', async () => {
    const seen = s3.requests.length;
    const second = await runPool({ ...poolOf(catalog), catalog, modelRoot: tempDir('empty-root'), modelCache: cache, modelStore: { s3Endpoint: s3.endpoint } });
    try {
      expect((await predict(second, 's3-verified', 'I forgot my password')).body.intent).toBe('password_reset');
      expect(s3.requests.slice(seen).sort()).toEqual([`GET /${BUCKET}/${headKey('s3-plain')}`, `GET /${BUCKET}/${headKey('s3-tampered')}`]);
    } finally {
      await second.close();
    }
  });
});

describe('an unreachable model store', () => {
  test('is retried with backoff, then reported on the bot, in bounded time; the pool stays up', async () => {
    const port = await refusedPort();
    const retries: Array<{ attempt: number; delayMs: number }> = [];
    const catalog = s3Catalog();
    const started = Date.now();
    const pool = await runPool({
      ...poolOf(catalog),
      catalog,
      modelRoot: tempDir('empty-root'),
      modelCache: tempDir('model-cache'),
      modelStore: { s3Endpoint: `http://127.0.0.1:${port}`, attempts: 3, backoffMs: 100, onRetry: (r) => retries.push(r) },
      retryMs: 600_000, // the download's own retries only: loading failed bots again is tested in pool/worker-death
    });
    try {
      const elapsed = Date.now() - started;
      for (const id of IDS) {
        const ready = await getJson(`${pool.url}/v2/models/${id}/ready`);
        expect(ready.body.state).toBe('failed');
        expect(ready.body.error).toMatch(/encoders\/en\.onnx: S3 is unreachable: .*ECONNREFUSED.* \(gave up after 3 attempts\)/);
      }
      // One encoder download shared by the three bots: 2 retries, waiting 100 then 200 ms.
      expect(retries.map((r) => [r.attempt, r.delayMs])).toEqual([[1, 100], [2, 200]]);
      expect(elapsed).toBeGreaterThanOrEqual(300);
      expect((await getJson(`${pool.url}/v2/health/live`)).status).toBe(200);
      const metrics = await pool.app.poolMetrics.registry.metrics();
      expect(metrics).toMatch(/botshard_pool_model_downloads_total\{source="s3",result="failed",pool="[^"]+"\} 1/);
    } finally {
      await pool.close();
    }
  });
});

describe('the model store', () => {
  let proxy: Proxy | undefined;
  const stores: ModelStore[] = [];
  const storeOf = (opts: ConstructorParameters<typeof ModelStore>[0]) => {
    const store = new ModelStore(opts);
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await proxy?.close();
    proxy = undefined;
  });

  test('retries 5xx answers with exponential backoff, then succeeds', async () => {
    proxy = await startProxy(s3.endpoint, { fail: 2 });
    const delays: number[] = [];
    const store = storeOf({ root: tempDir('root'), cacheDir: tempDir('cache'), s3Endpoint: proxy.endpoint, backoffMs: 30, onRetry: (r) => delays.push(r.delayMs) });
    const key = headKey('s3-plain');
    const file = await store.resolve(`s3://${BUCKET}/${key}`, sha256(files.get(key)!));
    expect(fs.readFileSync(file)).toEqual(Buffer.from(files.get(key)!));
    expect(proxy.failed).toBe(2);
    expect(delays).toEqual([30, 60]);
    expect(store.attemptsMade).toBe(3);
  });

  test('does not retry what another attempt cannot fix (a missing object), and says how to fix it', async () => {
    const store = storeOf({ root: tempDir('root'), cacheDir: tempDir('cache'), s3Endpoint: s3.endpoint, backoffMs: 10 });
    const error = await store.resolve(`s3://${BUCKET}/heads/nobody.onnx`).catch((e) => e);
    expect(error).toBeInstanceOf(ModelFetchError);
    expect(error.message).toMatch(/s3:\/\/botshard-models\/heads\/nobody\.onnx: S3 answered 404 NoSuchKey \(fix: upload the object/);
    expect(store.attemptsMade).toBe(1);
  });

  test('downloads at most `concurrency` models at once, and the same model once', async () => {
    proxy = await startProxy(s3.endpoint, { delayMs: 150 });
    const store = storeOf({ root: tempDir('root'), cacheDir: tempDir('cache'), s3Endpoint: proxy.endpoint, concurrency: 2 });
    const keys = [...files.keys()];
    const all = await Promise.all([...keys, ...keys].map((k) => store.resolve(`s3://${BUCKET}/${k}`)));
    expect(new Set(all).size).toBe(keys.length);
    expect(store.attemptsMade).toBe(keys.length);
    expect(proxy.peak).toBe(2);
  });

  test('verifies local files against their sha256 too', async () => {
    const root = tempDir('root');
    fs.mkdirSync(path.join(root, 'heads'));
    fs.writeFileSync(path.join(root, 'heads/a.onnx'), files.get(headKey('s3-plain'))!);
    const store = storeOf({ root });
    const good = sha256(files.get(headKey('s3-plain'))!);
    expect(await store.resolve('heads/a.onnx', good)).toBe(path.join(root, 'heads/a.onnx'));
    await expect(store.resolve('heads/a.onnx', 'f'.repeat(64))).rejects.toThrow(/heads\/a\.onnx: sha256 mismatch/);
  });
});

/** The pool name that holds the test bots (one pool in the group). */
function poolOf(catalog: Catalog): { pool: string } {
  return { pool: plan(catalog).pools[0].name };
}
