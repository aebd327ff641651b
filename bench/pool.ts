/**
 * npm run bench:pool
 *
 * The pool server with real ONNX demo models, each pool a real `botshard pool` process on 127.0.0.1:
 * - time to ready and RSS for pools of 0 / 100 / 500 / 2,000 bots, and memory per bot beyond its
 *   model weights ((RSS - RSS of an empty pool - bytes of model files loaded) / bots);
 * - requests per second and p50/p99 latency for one bot and across many bots (POST /v1/bots/{bot}/predict,
 *   keep-alive connections from this process), against the same encoder + head called in a bare
 *   onnxruntime-node loop (one thread, no HTTP) in the same run;
 * - gRPC beside REST: ModelInfer (raw_input_contents) and POST /v2/models/{bot}/infer (JSON) from the same
 *   closed loop, alternating, across many bots.
 * Bounded: a few minutes at most. Writes bench/results/pool.{json,md}. PROFILE=<folder> profiles the pools.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Catalog, parseCatalog, plan } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { GRPC_CHANNELS, cpuMsOf, grpcInferLoad, inferLoad, predictLoad } from './processes';
import { syntheticCatalog } from './synthetic';

const ROOT = path.resolve(__dirname, '..');
const RESULTS = path.join(__dirname, 'results');
const SIZES = process.env.SIZES ? process.env.SIZES.split(',').map(Number) : [100, 500, 2000];
const LOAD_SECONDS = 5;
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 16);
const WORKERS = Number(process.env.W ?? Math.max(1, Math.min(4, os.availableParallelism())));


/** N bots in one group of one pool (so one process holds them all), 8 shared encoders. */
function catalogOf(bots: number): Catalog {
  return parseCatalog(syntheticCatalog({ bots, seed: 1, oneGroup: true, pools: 1, memory: '256Gi', encoders: 8 }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mib = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

interface Running {
  child: ChildProcess;
  url: string;
  /** `127.0.0.1:<gRPC port>`. */
  grpc: string;
  readyMs: number;
}

async function startPool(catalogFile: string, models: string, pool: string): Promise<Running> {
  const started = Date.now();
  // PROFILE=<folder>: each pool writes a CPU profile there when it stops (node --cpu-prof).
  const profile = process.env.PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.PROFILE)}`] : [];
  const child = spawn(process.execPath, [...profile, path.join(ROOT, 'runtime/bin/botshard.js'), 'pool', '--pool', pool, '--catalog', catalogFile, '--models', models, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1'], {
    env: { ...process.env, BOTSHARD_LOG_LEVEL: 'info', BOTSHARD_WORKERS: String(WORKERS), BOTSHARD_TIMEOUT_MS: '30000', BOTSHARD_CONCURRENCY: '256' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [port, grpcPort] = await new Promise<[number, number]>((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (d) => {
      buffer += d;
      const m = /"port":(\d+)[^\n]*"grpcPort":(\d+)[^\n]*"msg":"listening"/.exec(buffer);
      if (m) resolve([Number(m[1]), Number(m[2])]);
      if (buffer.length > 1e6) buffer = buffer.slice(-1e5);
    });
    child.once('exit', (code) => reject(new Error(`pool exited with ${code}`)));
  });
  child.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    const res = await fetch(`${url}/v2/health/ready`).catch(() => undefined);
    if (res?.status === 200) break;
    if (Date.now() - started > 120_000) throw new Error('pool not ready within 120 s');
    await sleep(10);
  }
  return { child, url, grpc: `127.0.0.1:${grpcPort}`, readyMs: Date.now() - started };
}

async function stop(r: Running): Promise<void> {
  const exited = new Promise((resolve) => r.child.once('exit', resolve));
  r.child.kill('SIGTERM');
  await exited;
}

const TINY_TEXT = 'where is my order and my refund';
/** 16 words: 31 tokens with the bigrams, the sequence length a realistic encoder sees. */
const REALISTIC_TEXT = 'hello I ordered a blue jacket last week and it still has not arrived where is my order now';

/** Closed-loop load: CONNECTIONS requests in flight for `seconds`, each to the next bot of `bots`. */
async function load(url: string, bots: string[], seconds: number, text = TINY_TEXT) {
  const r = await predictLoad(() => url, bots, seconds, CONNECTIONS, text);
  return { requests: r.requests, errors: r.errors, rps: r.rps, p50Ms: round(r.p50), p99Ms: round(r.p99) };
}

/** `load`, plus the CPU time (all threads) the server process `pid` spent per answered request, in µs. */
async function loadWithCpu(pid: number, url: string, bots: string[], seconds: number, text = TINY_TEXT) {
  const before = cpuMsOf(pid);
  const r = await load(url, bots, seconds, text);
  return { ...r, cpuUsPerRequest: Math.round(((cpuMsOf(pid) - before) * 1000) / Math.max(1, r.requests)) };
}

/**
 * The floor of any HTTP server here: a fastify route answering `POST /v1/bots/{bot}/predict` with a fixed
 * body of `bytes` bytes, in its own process, loaded like the pool (same client, connections and run).
 * `hop`: the route first sends the request's text to a worker thread that sends it straight back, the
 * requests of one event-loop turn in one message as the pool does: the floor of any server that keeps
 * its model off the HTTP thread.
 */
async function fixedRoute(bytes: number, bots: string[], seconds: number, hop = false) {
  const body = JSON.stringify({ bot: 'x', intent: 'x', confidence: 0.5, entities: [], pool: 'x', pad: '' });
  const fixed = JSON.stringify({ ...JSON.parse(body), pad: 'x'.repeat(Math.max(0, bytes - body.length)) });
  const worker = `
    const { Worker } = require('node:worker_threads');
    const w = new Worker("require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m))", { eval: true });
    const waiting = new Map(); let next = 0; let batch = []; let flush;
    w.on('message', (answers) => { for (const a of answers) { waiting.get(a.id)(); waiting.delete(a.id); } });
    const hop = (text) => new Promise((resolve) => {
      waiting.set(++next, resolve); batch.push({ id: next, text });
      flush ??= setImmediate(() => { flush = undefined; w.postMessage(batch); batch = []; });
    });`;
  const code = `
    const app = require(${JSON.stringify(require.resolve('fastify'))})({ logger: false });
    ${hop ? worker : ''}
    app.post('/v1/bots/:bot/predict', async (request, reply) => { ${hop ? 'await hop(request.body.text);' : ''} return reply.type('application/json').send(${JSON.stringify(fixed)}); });
    app.listen({ port: 0, host: '127.0.0.1' }).then(() => process.stdout.write(String(app.server.address().port) + '\\n'));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
      child.once('exit', (c) => reject(new Error(`fixed-route server exited with ${c}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    await load(url, bots, 1); // warm-up
    return { bytes: fixed.length, ...(await loadWithCpu(child.pid!, url, bots, seconds)) };
  } finally {
    child.kill('SIGKILL');
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/**
 * The same encoder + head in a bare onnxruntime-node loop, in `threads` worker threads at once (as many as
 * the pool's inference workers: the same cores): tokenize, run, argmax. No HTTP, no queue, no scheduling.
 */
async function bareLoop(encoderFile: string, headFile: string, buckets: number, seconds: number, threads = 1, text = TINY_TEXT) {
  const runs = await Promise.all(Array.from({ length: threads }, () => bareThread(encoderFile, headFile, buckets, seconds, text)));
  const lat = runs.flat();
  return { threads, requests: lat.length, rps: Math.round(lat.length / seconds), p50Ms: round(pct(lat, 50)), p99Ms: round(pct(lat, 99)) };
}

async function bareThread(encoderFile: string, headFile: string, buckets: number, seconds: number, text: string): Promise<number[]> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const ort = require(workerData.ort);
    const { tokenize } = require(workerData.tokenizer);
    (async () => {
      const o = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', enableCpuMemArena: false, enableMemPattern: false, extra: { session: { intra_op: { allow_spinning: '0' } } } };
      const enc = await ort.InferenceSession.create(workerData.encoder, o);
      const head = await ort.InferenceSession.create(workerData.head, o);
      const lat = [];
      const end = Date.now() + workerData.seconds * 1000;
      while (Date.now() < end) {
        const t = performance.now();
        const ids = tokenize(workerData.text, { buckets: workerData.buckets, maxTokens: 64 });
        const input = new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
        const { embedding } = await enc.run({ input_ids: input });
        const { probabilities } = await head.run({ embedding });
        let best = 0; for (let j = 1; j < probabilities.data.length; j++) if (probabilities.data[j] > probabilities.data[best]) best = j;
        lat.push(performance.now() - t);
      }
      parentPort.postMessage(lat);
      await enc.release();
      await head.release();
    })();`;
  const worker = new Worker(code, {
    eval: true,
    workerData: { ort: require.resolve('onnxruntime-node'), tokenizer: path.join(ROOT, 'runtime/lib/pool/tokenizer.js'), encoder: encoderFile, head: headFile, buckets, seconds, text },
  });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  const lat = await new Promise<number[]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await exited; // sessions released, the thread ends by itself (terminating it can abort the process)
  return lat;
}

/** The pool against the bare loop with the transformer-shaped encoder: 100 bots on 2 encoders, 31-token texts. */
async function realistic(work: string) {
  const catalog = parseCatalog(syntheticCatalog({ bots: 100, seed: 1, oneGroup: true, pools: 1, memory: '256Gi', encoders: 2 }));
  const models = path.join(work, 'models-realistic');
  writeDemoModels(catalog, models, { encoder: { transformer: {} } });
  const file = path.join(work, 'catalog-realistic.json');
  fs.writeFileSync(file, JSON.stringify(catalog));
  const running = await startPool(file, models, plan(catalog).pools[0].name);
  const bots = catalog.bots.map((b) => b.id);
  let pool;
  try {
    await load(running.url, bots, 1, REALISTIC_TEXT); // warm-up
    pool = await load(running.url, bots, LOAD_SECONDS, REALISTIC_TEXT);
  } finally {
    await stop(running);
  }
  const bot = catalog.bots[0];
  const encoder = catalog.encoders.find((e) => e.id === bot.model.encoder)!;
  const bare = await bareLoop(path.join(models, encoder.path), path.join(models, bot.model.head), encoder.tokenizer.buckets, LOAD_SECONDS, WORKERS, REALISTIC_TEXT);
  console.log(`realistic encoder, ${bots.length} bots: pool ${pool.rps} req/s (p50 ${pool.p50Ms} ms); bare loop, ${WORKERS} threads: ${bare.rps} runs/s (p50 ${bare.p50Ms} ms)`);
  return { bots: bots.length, encoders: catalog.encoders.length, text: REALISTIC_TEXT, pool, bareLoop: bare };
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-bench-pool-'));
  const startedAt = Date.now();
  const sizes: Array<Record<string, number>> = [];
  let emptyPool = { readyMs: 0, rssMiB: 0 };
  let throughput: Record<string, unknown> = {};
  try {
    // An empty pool: the process, fastify, the worker threads and onnxruntime, no bots.
    const empty = catalogOf(10);
    const emptyFile = path.join(work, 'empty.json');
    fs.writeFileSync(emptyFile, JSON.stringify(empty));
    const base = await startPool(emptyFile, path.join(work, 'none'), 'no-such-pool');
    await sleep(500);
    const baseRss = rssOf(base.child.pid!);
    await stop(base);
    console.log(`empty pool: ready ${base.readyMs} ms, RSS ${mib(baseRss)} MiB`);
    emptyPool = { readyMs: base.readyMs, rssMiB: mib(baseRss) };

    for (const n of SIZES) {
      const catalog = catalogOf(n);
      const models = path.join(work, `models-${n}`);
      writeDemoModels(catalog, models);
      const file = path.join(work, `catalog-${n}.json`);
      fs.writeFileSync(file, JSON.stringify(catalog));
      const pool = plan(catalog).pools[0].name;
      const encoders = new Set(catalog.bots.map((b) => b.model.encoder!));
      const modelBytes =
        catalog.bots.reduce((s, b) => s + fs.statSync(path.join(models, b.model.head)).size, 0) +
        catalog.encoders.filter((e) => encoders.has(e.id)).reduce((s, e) => s + fs.statSync(path.join(models, e.path)).size, 0);
      const running = await startPool(file, models, pool);
      await sleep(500);
      const rss = rssOf(running.child.pid!);
      const perBot = (rss - baseRss - modelBytes) / n;
      const previous = sizes[sizes.length - 1];
      // Marginal: what each bot added since the previous size (fixed costs such as the encoders' sessions cancel out).
      const marginal = previous ? ((rss - previous.rssBytes) - (modelBytes - previous.modelBytes)) / (n - previous.bots) : perBot;
      const row = { bots: n, readyMs: running.readyMs, rssMiB: mib(rss), modelMiB: mib(modelBytes), perBotKiB: Math.round(perBot / 1024), marginalPerBotKiB: Math.round(marginal / 1024), rssBytes: rss, modelBytes };
      sizes.push(row);
      console.log(`${n} bots: ready ${row.readyMs} ms, RSS ${row.rssMiB} MiB, model files ${row.modelMiB} MiB, beyond weights ${row.perBotKiB} KiB per bot (marginal ${row.marginalPerBotKiB} KiB)`);
      if (n === 500) {
        const bots = catalog.bots.map((b) => b.id);
        await load(running.url, bots.slice(0, 1), 1); // warm-up
        const one = await load(running.url, bots.slice(0, 1), LOAD_SECONDS);
        console.log(`one bot: ${one.rps} req/s, p50 ${one.p50Ms} ms, p99 ${one.p99Ms} ms, ${one.errors} errors`);
        const many = await loadWithCpu(running.child.pid!, running.url, bots, LOAD_SECONDS);
        console.log(`${bots.length} bots: ${many.rps} req/s, p50 ${many.p50Ms} ms, p99 ${many.p99Ms} ms, ${many.errors} errors, pool CPU ${many.cpuUsPerRequest} us/request`);
        // The pool's CPU per request (all its threads, inference included) tells the server's cost apart from
        // the load generator's, which shares this machine's two cores.
        type Measured = Awaited<ReturnType<typeof inferLoad>> & { cpuUs: number };
        const measured = async (run: () => ReturnType<typeof inferLoad>): Promise<Measured> => {
          const before = cpuMsOf(running.child.pid!);
          const r = await run();
          return { ...r, cpuUs: ((cpuMsOf(running.child.pid!) - before) * 1000) / Math.max(1, r.requests) };
        };
        const protocols = { rest: [] as Measured[], grpc: [] as Measured[] };
        await grpcInferLoad(running.grpc, bots, 1, CONNECTIONS); // warm-up
        for (let round = 0; round < 2; round++) {
          protocols.rest.push(await measured(() => inferLoad(running.url, bots, LOAD_SECONDS, CONNECTIONS)));
          protocols.grpc.push(await measured(() => grpcInferLoad(running.grpc, bots, LOAD_SECONDS, CONNECTIONS)));
        }
        const best = (xs: Measured[]) => {
          const x = [...xs].sort((a, b) => b.rps - a.rps)[0];
          return { rps: x.rps, p50Ms: round(x.p50), p99Ms: round(x.p99), poolCpuUsPerRequest: Math.round(x.cpuUs), errors: xs.reduce((s, r) => s + r.errors, 0) };
        };
        const rest = best(protocols.rest);
        const viaGrpc = best(protocols.grpc);
        console.log(`${bots.length} bots, ModelInfer: REST ${rest.rps} req/s (p50 ${rest.p50Ms} ms, pool CPU ${rest.poolCpuUsPerRequest} us/request), gRPC ${viaGrpc.rps} req/s (p50 ${viaGrpc.p50Ms} ms, pool CPU ${viaGrpc.poolCpuUsPerRequest} us/request)`);
        await stop(running);
        const bot = catalog.bots[0];
        const encoder = catalog.encoders.find((e) => e.id === bot.model.encoder)!;
        const bare = await bareLoop(path.join(models, encoder.path), path.join(models, bot.model.head), encoder.tokenizer.buckets, LOAD_SECONDS);
        console.log(`bare onnxruntime-node loop (1 thread): ${bare.rps} runs/s, p50 ${bare.p50Ms} ms, p99 ${bare.p99Ms} ms`);
        const responseBytes = Buffer.byteLength(JSON.stringify({ bot: bots[0], intent: 'track_order', confidence: 0.123456789, entities: [], pool }));
        const fixed = await fixedRoute(responseBytes, bots, LOAD_SECONDS);
        console.log(`fixed fastify route (${fixed.bytes} bytes): ${fixed.rps} req/s, p50 ${fixed.p50Ms} ms, CPU ${fixed.cpuUsPerRequest} us/request`);
        const hop = await fixedRoute(responseBytes, bots, LOAD_SECONDS, true);
        console.log(`fixed fastify route through a worker thread and back: ${hop.rps} req/s, p50 ${hop.p50Ms} ms, CPU ${hop.cpuUsPerRequest} us/request`);
        throughput = { poolBots: n, connections: CONNECTIONS, seconds: LOAD_SECONDS, oneBot: one, manyBots: { bots: bots.length, ...many }, restInfer: rest, grpcInfer: viaGrpc, bareLoop: bare, fixedRoute: fixed, hopRoute: hop };
      } else {
        await stop(running);
      }
    }
    if (!process.env.SIZES || process.env.REALISTIC === '1') throughput.realistic = await realistic(work);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }

  // loadAverage: others' work on this shared machine when the results were written.
  const machine = { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, workers: WORKERS, loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100) };
  const t0 = throughput as { manyBots?: { rps: number; p50Ms: number; cpuUsPerRequest: number }; restInfer?: { rps: number; poolCpuUsPerRequest: number }; grpcInfer?: { rps: number; p50Ms: number; poolCpuUsPerRequest: number }; bareLoop?: { rps: number; p50Ms: number }; fixedRoute?: { rps: number; cpuUsPerRequest: number }; hopRoute?: { rps: number; cpuUsPerRequest: number }; realistic?: { pool: { rps: number }; bareLoop: { rps: number; p50Ms: number } } } | undefined;
  const largest = sizes[sizes.length - 1];
  // The figures the pool's issues quote: throughput against the bare model loop, and memory per bot.
  const headline: Record<string, number> = {
    ...(t0?.manyBots ? { poolRequestsPerSecond: t0.manyBots.rps, poolP50Ms: t0.manyBots.p50Ms, poolCpuUsPerRequest: t0.manyBots.cpuUsPerRequest } : {}),
    ...(t0?.bareLoop ? { bareLoopRunsPerSecond: t0.bareLoop.rps, bareLoopP50Ms: t0.bareLoop.p50Ms } : {}),
    ...(t0?.restInfer && t0.grpcInfer
      ? {
          restInferRequestsPerSecond: t0.restInfer.rps,
          grpcRequestsPerSecond: t0.grpcInfer.rps,
          grpcThroughputOverRest: Math.round((t0.grpcInfer.rps / t0.restInfer.rps) * 100) / 100,
          grpcPoolCpuPerRequestOverRest: Math.round((t0.grpcInfer.poolCpuUsPerRequest / t0.restInfer.poolCpuUsPerRequest) * 100) / 100,
        }
      : {}),
    ...(t0?.manyBots && t0.bareLoop ? { bareLoopOverPool: Math.round((t0.bareLoop.rps / t0.manyBots.rps) * 100) / 100 } : {}),
    ...(largest ? { largestPoolBots: largest.bots, largestPoolRssMiB: largest.rssMiB, marginalPerBotKiB: largest.marginalPerBotKiB } : {}),
    ...(t0?.manyBots && t0.fixedRoute
      ? { fixedRouteRequestsPerSecond: t0.fixedRoute.rps, fixedRouteCpuUsPerRequest: t0.fixedRoute.cpuUsPerRequest, tinyThroughputOverFixedRoute: Math.round((t0.manyBots.rps / t0.fixedRoute.rps) * 100) / 100 }
      : {}),
    ...(t0?.hopRoute && t0.fixedRoute
      ? { hopRouteRequestsPerSecond: t0.hopRoute.rps, hopRouteCpuUsPerRequest: t0.hopRoute.cpuUsPerRequest, hopRouteOverFixedRoute: Math.round((t0.hopRoute.rps / t0.fixedRoute.rps) * 100) / 100 }
      : {}),
    ...(t0?.realistic
      ? {
          realisticPoolRequestsPerSecond: t0.realistic.pool.rps,
          realisticBareLoopRunsPerSecond: t0.realistic.bareLoop.rps,
          realisticBareLoopP50Ms: t0.realistic.bareLoop.p50Ms,
          realisticThroughputOverBareLoop: Math.round((t0.realistic.pool.rps / t0.realistic.bareLoop.rps) * 100) / 100,
        }
      : {}),
  };
  const result = { benchmark: 'pool', date: new Date().toISOString(), headline, machine, emptyPool, sizes, throughput, seconds: Math.round((Date.now() - startedAt) / 1000) };
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'pool.json'), `${JSON.stringify(result, null, 2)}\n`);
  const t = throughput as any;
  const md = [
    '# bench:pool',
    '',
    `\`npm run bench:pool\`, ${result.date.slice(0, 10)}: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, ${WORKERS} inference workers per pool.`,
    'Each pool is a real `botshard pool` process on 127.0.0.1 with the demo models of a synthetic catalog',
    '(8 shared encoders of 4,096 x 64 float32, one small head per bot). Load comes from the same machine.',
    '',
    `Empty pool (process, fastify, ${WORKERS} worker threads, onnxruntime, no bots): ${result.emptyPool.rssMiB} MiB RSS, ready in ${result.emptyPool.readyMs} ms.`,
    '',
    '| bots | time to ready | RSS | model files | per bot beyond its weights | marginal per bot |',
    '|---:|---:|---:|---:|---:|---:|',
    ...sizes.map((s) => `| ${s.bots} | ${s.readyMs} ms | ${s.rssMiB} MiB | ${s.modelMiB} MiB | ${s.perBotKiB} KiB | ${s.marginalPerBotKiB} KiB |`),
    '',
    'Per bot beyond its weights = (RSS - RSS of the empty pool - bytes of the model files loaded) / bots; it includes',
    'the fixed cost of the 8 encoder sessions, spread over the bots. Marginal = the same difference between one size',
    'and the previous one, divided by the bots added: the cost of one more bot.',
    '',
    `Throughput on the ${t.poolBots}-bot pool, ${t.connections} keep-alive connections for ${t.seconds} s each, \`POST /v1/bots/{bot}/predict\`:`,
    '',
    '| load | requests/s | p50 | p99 |',
    '|---|---:|---:|---:|',
    `| one bot | ${t.oneBot.rps} | ${t.oneBot.p50Ms} ms | ${t.oneBot.p99Ms} ms |`,
    `| ${t.manyBots.bots} bots, round robin; pool CPU ${t.manyBots.cpuUsPerRequest} us/request | ${t.manyBots.rps} | ${t.manyBots.p50Ms} ms | ${t.manyBots.p99Ms} ms |`,
    ...(t.restInfer ? [`| ${t.manyBots.bots} bots, \`POST /v2/models/{bot}/infer\` (REST, JSON), same closed loop as gRPC; pool CPU ${t.restInfer.poolCpuUsPerRequest} us/request | ${t.restInfer.rps} | ${t.restInfer.p50Ms} ms | ${t.restInfer.p99Ms} ms |`] : []),
    ...(t.grpcInfer ? [`| ${t.manyBots.bots} bots, gRPC \`ModelInfer\` (raw_input_contents, ${GRPC_CHANNELS} HTTP/2 connections); pool CPU ${t.grpcInfer.poolCpuUsPerRequest} us/request | ${t.grpcInfer.rps} | ${t.grpcInfer.p50Ms} ms | ${t.grpcInfer.p99Ms} ms |`] : []),
    `| bare onnxruntime-node loop (same encoder + head, 1 thread, no HTTP) | ${t.bareLoop.rps} | ${t.bareLoop.p50Ms} ms | ${t.bareLoop.p99Ms} ms |`,
    `| a fastify route answering a fixed ${t.fixedRoute.bytes}-byte body (the floor of any HTTP server here); CPU ${t.fixedRoute.cpuUsPerRequest} us/request | ${t.fixedRoute.rps} | ${t.fixedRoute.p50Ms} ms | ${t.fixedRoute.p99Ms} ms |`,
    ...(t.hopRoute ? [`| the same route passing each text through a worker thread and back (the floor of a server that keeps its model off the HTTP thread); CPU ${t.hopRoute.cpuUsPerRequest} us/request | ${t.hopRoute.rps} | ${t.hopRoute.p50Ms} ms | ${t.hopRoute.p99Ms} ms |`] : []),
    '',
    ...(t.realistic
      ? [
          `With the transformer-shaped demo encoder (4 layers of width 256; ${t.realistic.bots} bots on ${t.realistic.encoders} encoders; texts of 31 tokens):`,
          '',
          '| load | requests/s | p50 | p99 |',
          '|---|---:|---:|---:|',
          `| pool, ${t.realistic.bots} bots round robin | ${t.realistic.pool.rps} | ${t.realistic.pool.p50Ms} ms | ${t.realistic.pool.p99Ms} ms |`,
          `| bare onnxruntime-node loop, ${t.realistic.bareLoop.threads} threads (the pool's workers) | ${t.realistic.bareLoop.rps} | ${t.realistic.bareLoop.p50Ms} ms | ${t.realistic.bareLoop.p99Ms} ms |`,
          '',
        ]
      : []),
    `Headline: ${JSON.stringify(headline)}`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(RESULTS, 'pool.md'), md);
  console.log(`\nwrote bench/results/pool.json and pool.md in ${result.seconds} s`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
