/**
 * npm run bench:router
 *
 * The same load (autocannon, in this process) sent straight to a pool and through the router, in one
 * run, alternating rounds so that drift on this shared machine hits both alike. The pool and the
 * router are real `botshard` processes on 127.0.0.1. Reports the throughput ratio and the latency the
 * router adds (p50, p99). Writes bench/results/router.{json,md}.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import autocannon from 'autocannon';
import { CatalogInput, normalizeCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';

const BIN = path.join(__dirname, '../runtime/bin/botshard.js');
const RESULTS = path.join(__dirname, 'results');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 16;

function start(args: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BOTSHARD_LOG_LEVEL: 'warn', BOTSHARD_PARENT_PID: String(process.pid) } });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
    // The `listening` line is logged at info; ask for it through a level the process still prints.
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'listening') resolve({ proc, port: entry.port });
      } catch {
        // not JSON
      }
    });
  });
}

async function ready(port: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/health/ready`);
      if (res.status === 200) return;
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} never became ready`);
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function run(url: string, bots: string[]): Promise<Figures> {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: bots.map((bot) => ({
      method: 'POST',
      path: `/v2/models/${bot}/infer`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: ['I forgot my password'] }] }),
    })),
  });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-bench-router-'));
  const intents = [
    { name: 'password_reset', examples: ['I forgot my password', 'reset my password'] },
    { name: 'billing', examples: ['my bill is wrong', 'question about my invoice'] },
  ];
  const input: CatalogInput = {
    tenants: [{ id: 'bench' }],
    encoders: [{ id: 'encoder-en', path: 'encoders/en.onnx', memory: '8Mi', tokenizer: { kind: 'hashing', buckets: 4096 }, dimensions: 64 }],
    groups: [{ name: 'rt', realtime: true, memory: '1Gi', pools: 1, concurrency: 256 }],
    bots: Array.from({ length: 8 }, (_, i) => ({ id: `bot-${i}`, tenant: 'bench', realtime: true, model: { head: `heads/bot-${i}.onnx`, memory: '2Mi', encoder: 'encoder-en' }, intents })),
  };
  const normal = normalizeCatalog(input);
  if (!normal.ok) throw new Error(JSON.stringify(normal.problems));
  const catalog = normal.catalog;
  const models = path.join(state, 'models');
  writeDemoModels(catalog, models);
  const catalogDir = path.join(state, 'catalog');
  writeCatalogFolder(catalogDir, catalog);
  const poolName = plan(catalog).pools[0].name;
  const children: ChildProcess[] = [];
  try {
    const pool = await start(['pool', '--pool', poolName, '--catalog', catalogDir, '--models', models, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1']);
    children.push(pool.proc);
    await ready(pool.port);
    const urls = path.join(state, 'pools.json');
    fs.writeFileSync(urls, JSON.stringify({ [poolName]: `http://127.0.0.1:${pool.port}` }));
    const router = await start(['router', '--catalog', catalogDir, '--pool-urls', urls, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1']);
    children.push(router.proc);
    await ready(router.port);
    const bots = catalog.bots.map((b) => b.id);
    // Warm-up: connections, JIT, model caches.
    await run(`http://127.0.0.1:${pool.port}`, bots);
    const direct: Figures[] = [];
    const routed: Figures[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      direct.push(await run(`http://127.0.0.1:${pool.port}`, bots));
      routed.push(await run(`http://127.0.0.1:${router.port}`, bots));
    }
    const summary = (xs: Figures[]) => ({
      rps: { median: median(xs.map((x) => x.rps)), min: Math.min(...xs.map((x) => x.rps)), max: Math.max(...xs.map((x) => x.rps)) },
      p50: median(xs.map((x) => x.p50)),
      p99: median(xs.map((x) => x.p99)),
      errors: xs.reduce((s, x) => s + x.errors + x.non2xx, 0),
    });
    const d = summary(direct);
    const r = summary(routed);
    const result = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      load: { connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS, bots: bots.length, request: 'POST /v2/models/{bot}/infer, one text' },
      direct: { ...d, runs: direct },
      router: { ...r, runs: routed },
      throughputRatio: r.rps.median / d.rps.median,
      addedLatencyMs: { p50: r.p50 - d.p50, p99: r.p99 - d.p99 },
    };
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'router.json'), `${JSON.stringify(result, null, 2)}\n`);
    const md = [
      '# Router benchmark',
      '',
      `${result.date}, ${result.machine.cpus} cores (${result.machine.cpu}), ${result.machine.memoryGiB} GiB, Node ${result.machine.node}. Command: \`npm run bench:router\`.`,
      `Load: autocannon, ${CONNECTIONS} connections, ${SECONDS} s per run, ${ROUNDS} rounds alternating direct and routed, ${bots.length} bots in one pool process; the router is its own process; all on 127.0.0.1.`,
      '',
      '| path | requests/s median (min-max) | p50 ms | p99 ms | errors |',
      '|---|---:|---:|---:|---:|',
      `| direct to the pool | ${d.rps.median.toFixed(0)} (${d.rps.min.toFixed(0)}-${d.rps.max.toFixed(0)}) | ${d.p50} | ${d.p99} | ${d.errors} |`,
      `| through the router | ${r.rps.median.toFixed(0)} (${r.rps.min.toFixed(0)}-${r.rps.max.toFixed(0)}) | ${r.p50} | ${r.p99} | ${r.errors} |`,
      '',
      `Throughput through the router: ${(100 * result.throughputRatio).toFixed(1)}% of direct (target: at least 70%). Added latency: p50 ${result.addedLatencyMs.p50.toFixed(2)} ms, p99 ${result.addedLatencyMs.p99.toFixed(2)} ms (target: under 1 ms p50).`,
      '',
      'On a 2-core machine the router, the pool (with its inference worker threads) and the load generator share two cores, so routed throughput also pays for the CPU the router takes from the pool.',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(RESULTS, 'router.md'), md);
    process.stdout.write(md);
  } finally {
    for (const c of children) c.kill('SIGTERM');
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
