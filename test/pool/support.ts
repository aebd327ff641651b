/** Shared set-up of the pool tests: small catalogs, real demo models in a temp dir, real servers on loopback. */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { BotInput, Catalog, CatalogInput, plan, writeCatalogFolder } from '@botshard/runtime';
import { STANDALONE_DIMENSIONS, buildHeadModel, embeddingTable, writeDemoModels } from '@botshard/runtime/local/models';
import { PoolServerOptions, buildPoolServer } from '@botshard/runtime/pool/server';
import type { LaneSettings } from '@botshard/runtime/pool/lanes';
import { groupDefaults } from '@botshard/runtime/catalog';

export const ROOT = path.resolve(__dirname, '../..');

/** The worker threads and the CLI run from runtime/lib: compile once per test file (quick when up to date). */
export function ensureBuilt(): void {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-b', 'runtime'], { cwd: ROOT, stdio: 'inherit' });
}

/** Lane settings as a real-time group's defaults would give them, with `o` over them (tests that start lanes alone). */
export function settings(o: Partial<LaneSettings> = {}): LaneSettings {
  const { concurrency, timeoutMs, quarantineShare, batchWindowMs, batchMaxRows } = groupDefaults(true);
  return { concurrency, timeoutMs, quarantineShare, batchWindowMs, batchMaxRows, ...o };
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `botshard-${prefix}-`));
}

export const SUPPORT = [
  { name: 'password_reset', examples: ['I forgot my password', 'reset my password please', 'cannot log in to my account'] },
  { name: 'billing', examples: ['why was I charged twice', 'question about my invoice', 'my bill is wrong'] },
  { name: 'greeting', examples: ['hello there', 'hi good morning', 'hey'] },
];

/** A support bot with an encoder, rewrite rules, a threshold and an entity rule. */
export function supportBot(id: string, extra: Partial<BotInput> = {}): BotInput {
  return {
    id,
    tenant: 'acme',
    realtime: true,
    model: { head: `heads/${id}.onnx`, memory: '2Mi', encoder: 'encoder-en' },
    intents: SUPPORT,
    preprocess: [
      { pattern: '[\\w.+-]+@[\\w-]+\\.[\\w.]+', replace: ' email ' },
      { pattern: '\\s+', replace: ' ' },
    ],
    postprocess: { threshold: 0.5, fallback: 'human_handoff', entities: [{ name: 'ticket', pattern: '\\b(?:ticket|case)\\s*#?\\s*([0-9]{4,10})', flags: 'i' }] },
    ...extra,
  };
}

/** A bot without an encoder: its head takes the token ids and holds its own embedding bag. */
export function standaloneBot(id: string, extra: Partial<BotInput> = {}): BotInput {
  return {
    id,
    tenant: 'acme',
    realtime: true,
    model: { head: `heads/${id}.onnx`, memory: '1Mi' },
    intents: [
      { name: 'yes', examples: ['yes please', 'sure thing', 'absolutely yes'] },
      { name: 'no', examples: ['no thanks', 'not at all', 'absolutely not'] },
    ],
    ...extra,
  };
}

/** A catalog input with one real-time group of `pools` pools. */
export function catalogInput(bots: BotInput[], pools = 1): CatalogInput {
  return {
    tenants: [{ id: 'acme' }],
    encoders: [{ id: 'encoder-en', path: 'encoders/en.onnx', memory: '4Mi', tokenizer: { kind: 'hashing', buckets: 1024 }, dimensions: 64 }],
    groups: [{ name: 'rt', realtime: true, memory: '1Gi', pools, poolOverhead: '100Mi', locality: 'none' }],
    bots,
  };
}


/** The pool that holds each bot. */
export function placement(catalog: Catalog): Map<string, string> {
  return new Map(plan(catalog).assignment);
}

/** Writes a catalog as a mounted ConfigMap does (small parts, `..data` swapped atomically); again to update it. */
export function writeMountedCatalog(dir: string, catalog: Catalog): void {
  writeCatalogFolder(dir, catalog, 4096);
}

export interface RunningPool {
  app: FastifyInstance;
  url: string;
  /** Its gRPC endpoint, `127.0.0.1:<port>`. */
  grpc: string;
  close(): Promise<void>;
}

/** Builds a pool server, listens on 127.0.0.1 with free ports (REST and gRPC), and waits until it reports ready. */
export async function runPool(opts: PoolServerOptions): Promise<RunningPool> {
  const app = await buildPoolServer({ logger: false, processMetrics: false, workers: 2, ...opts });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const grpcPort = await app.grpc!.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  await until(() => app.pool.ready, 20_000, 'the pool to be ready');
  return { app, url, grpc: `127.0.0.1:${grpcPort}`, close: () => app.close() };
}

/** A pool server for every pool of the catalog's plan (one worker each), and their addresses by pool name. */
export async function runPoolsOf(catalog: Catalog): Promise<{ pools: RunningPool[]; urls: Map<string, string>; grpcs: Map<string, string> }> {
  const models = withModels(catalog);
  const pools: RunningPool[] = [];
  const urls = new Map<string, string>();
  const grpcs = new Map<string, string>();
  for (const pool of plan(catalog).pools) {
    const running = await runPool({ pool: pool.name, catalog, modelRoot: models, workers: 1 });
    pools.push(running);
    urls.set(pool.name, running.url);
    grpcs.set(pool.name, running.grpc);
  }
  return { pools, urls, grpcs };
}

/** Waits for a condition, polling; fails with what it waited for (a function: read when it fails, e.g. a process's output so far). */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A catalog with its demo models written to a fresh folder. */
export function withModels(catalog: Catalog): string {
  const dir = tempDir('models');
  writeDemoModels(catalog, dir);
  return dir;
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/**
 * A request through fastify's `inject` (no socket: the same routes, hooks, parser and error handler), with
 * the shape of `postJson` / `getJson`. For tests of what a server answers; sockets have their own tests.
 */
export async function injectJson(app: FastifyInstance, method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await app.inject({
    method,
    url,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const out = new Headers();
  for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) out.set(name, String(value));
  return { status: res.statusCode, headers: out, body: res.body ? JSON.parse(res.body) : undefined };
}

export async function getJson(url: string): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

// onnxruntime-node's typed arrays come from Node's realm, not jest's sandbox: tests run sessions in a
// worker thread (as the pool does), through this small script.
const ONNX_RUNNER = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ort);
parentPort.once('message', async ({ model, runs }) => {
  let session;
  try {
    session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const results = [];
    for (const feeds of runs) {
      const inputs = {};
      for (const [name, t] of Object.entries(feeds)) {
        inputs[name] = new ort.Tensor(t.type, t.type === 'int64' ? BigInt64Array.from(t.data.map(BigInt)) : Float32Array.from(t.data), t.dims);
      }
      const out = await session.run(inputs);
      const plain = {};
      for (const [name, t] of Object.entries(out)) plain[name] = { dims: [...t.dims], data: Array.from(t.data, Number) };
      results.push(plain);
    }
    parentPort.postMessage({ ok: true, inputs: session.inputNames, outputs: session.outputNames, results });
  } catch (e) {
    parentPort.postMessage({ ok: false, error: e.message });
  }
  // Release the session and let the thread end by itself: terminating it can abort the process.
  await session?.release();
  parentPort.close();
});
`;

export interface TensorJson {
  type: 'int64' | 'float32';
  data: number[];
  dims: number[];
}

/** Loads a model in a worker thread with onnxruntime-node and runs it on each set of feeds. */
export async function runOnnx(model: Uint8Array, runs: Array<Record<string, TensorJson>>): Promise<{ inputs: string[]; outputs: string[]; results: Array<Record<string, { dims: number[]; data: number[] }>> }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
  const worker = new Worker(ONNX_RUNNER, { eval: true, workerData: { ort: require.resolve('onnxruntime-node', { paths: [ROOT] }) } });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  const answer = await new Promise<any>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.postMessage({ model, runs });
  });
  await exited;
  if (!answer.ok) throw new Error(answer.error);
  return answer;
}

/** A real model that takes seconds per request on one core (200 products of 1024 x 1024 matrices by default). */
export function slowModels(catalog: Catalog, rounds = 200): string {
  const models = withModels(catalog);
  const head = buildHeadModel({
    weights: new Float32Array(STANDALONE_DIMENSIONS * 2),
    dimensions: STANDALONE_DIMENSIONS,
    labels: 2,
    bag: { table: embeddingTable(1, 'slow', 4096, STANDALONE_DIMENSIONS), buckets: 4096 },
    slow: { size: 1024, rounds },
  });
  fs.writeFileSync(path.join(models, 'heads/slow.onnx'), head);
  return models;
}

export interface PoolProcess {
  child: ChildProcess;
  url: string;
  metricsUrl: string;
  /** Every JSON log line so far. */
  logs: any[];
  /** Resolves on 'close' (the last log lines are read by then). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Collects a child's JSON log lines (stdout; other lines are skipped) into `logs` and resolves with its
 * "listening" line; rejects if it exits before.
 */
export function listeningLine(child: ChildProcess, logs: any[], what: string): Promise<any> {
  let buffer = '';
  return new Promise<any>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      buffer += d;
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line);
        logs.push(entry);
        if (entry.msg === 'listening') resolve(entry);
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before listening`)));
  });
}

/** Starts `node runtime/bin/botshard.js pool ...` on ports 0 and waits for its "listening" log line and readiness. */
export async function spawnPool(o: { pool: string; catalogFile: string; models: string; env?: Record<string, string> }): Promise<PoolProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, 'runtime/bin/botshard.js'), 'pool', '--pool', o.pool, '--catalog', o.catalogFile, '--models', o.models, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1'], {
    cwd: ROOT,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: any[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const entry = await listeningLine(child, logs, 'pool');
  const url = `http://127.0.0.1:${entry.port}`;
  await until(async () => (await getJson(`${url}/v2/health/ready`)).status === 200, 20_000, 'the pool to be ready');
  return { child, url, metricsUrl: `http://127.0.0.1:${entry.metricsPort}/metrics`, logs, exited };
}

/** Waits until the pool's metrics show a request in a worker (no fixed sleep: the pool says so itself). */
export async function inWorker(pool: { metricsUrl: string }): Promise<void> {
  await until(async () => /^botshard_pool_queue_depth\{[^}]*\} [1-9]/m.test(await (await fetch(pool.metricsUrl)).text()), 10_000, 'the request to reach a worker');
}
