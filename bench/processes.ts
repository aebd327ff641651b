/**
 * What the process-based benchmarks share: start `botshard pool` / `botshard router` processes on
 * 127.0.0.1 and wait for them, read their memory, stop them (always: every child is also killed when
 * this process exits or fails), bounded-concurrency helpers, spreads and the results folder.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { Pool as HttpPool } from 'undici';
import { PROCESS_ENV, nodeArgs } from '@botshard/runtime';
import { inferenceService } from '@botshard/runtime/oip/grpc';

export const ROOT = path.resolve(__dirname, '..');
export const BIN = path.join(ROOT, 'runtime/bin/botshard.js');
/** Where results go: bench/results, or BENCH_RESULTS_DIR (the smoke test uses a temp dir). */
export const RESULTS = process.env.BENCH_RESULTS_DIR ? path.resolve(process.env.BENCH_RESULTS_DIR) : path.join(__dirname, 'results');
/** BENCH_SMOKE=1: the smallest run that still exercises every path (for the smoke test). */
export const SMOKE = process.env.BENCH_SMOKE === '1';
export const CORES = os.availableParallelism();

/** A seeded xorshift32 in [0, 1). */
export function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  port: number;
  /** Its metrics port, when it has one (pools, routers). */
  metricsPort?: number;
  url: string;
  /** performance.now() when spawned, when listening, when /v2/health/ready first answered 200. */
  spawnedAt: number;
  readyAt: number;
  /** readyAt - spawnedAt, ms. */
  readyMs: number;
}

const live = new Set<ChildProcess>();
let hooked = false;

/** Kill every child still running when this process ends, however it ends. */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const c of live) c.kill('SIGKILL');
  };
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  /** Give up after this long (ms). @default 300000 */
  timeoutMs?: number;
  /** Extra arguments after the command. */
  args: string[];
  name: string;
}

/** A child this process kills when it ends, however it ends (a bench stopped halfway leaves no pool behind). */
export function killedOnExit(proc: ChildProcess): void {
  hookExit();
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
}

/** Spawns `botshard <args>`, waits for its `listening` line, then for /v2/health/ready to answer 200. */
export async function startBotshard(opts: StartOptions): Promise<Child> {
  hookExit();
  const spawnedAt = performance.now();
  // As in the manifests: botshard's Node options (NODE_OPTIONS there).
  const proc = spawn(process.execPath, [...nodeArgs(), BIN, ...opts.args], {
    env: { ...PROCESS_ENV, ...process.env, BOTSHARD_LOG_LEVEL: 'warn', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killedOnExit(proc);
  let stderr = '';
  proc.stderr!.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const timeoutMs = opts.timeoutMs ?? 300_000;
  try {
    const { port, metricsPort } = await new Promise<{ port: number; metricsPort?: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${opts.name}: no "listening" line within ${timeoutMs} ms`)), timeoutMs);
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${opts.name} exited with ${code ?? signal} before listening: ${stderr.trim().slice(-1000)}`));
      });
      readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
        if (!line.includes('"listening"')) return;
        try {
          const entry = JSON.parse(line);
          if (entry.msg === 'listening') {
            clearTimeout(timer);
            resolve({ port: entry.port, metricsPort: entry.metricsPort });
          }
        } catch {
          // not JSON
        }
      });
    });
    proc.removeAllListeners('exit');
    proc.once('exit', () => live.delete(proc));
    const url = `http://127.0.0.1:${port}`;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`${opts.name} exited with ${proc.exitCode}: ${stderr.trim().slice(-1000)}`);
      const res = await fetch(`${url}/v2/health/ready`).catch(() => undefined);
      if (res) await res.arrayBuffer().catch(() => undefined);
      if (res?.status === 200) break;
      if (performance.now() - spawnedAt > timeoutMs) throw new Error(`${opts.name} not ready within ${timeoutMs} ms`);
      await sleep(20);
    }
    const readyAt = performance.now();
    return { name: opts.name, proc, pid: proc.pid!, port, metricsPort, url, spawnedAt, readyAt, readyMs: readyAt - spawnedAt };
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
}

export interface PoolStart {
  pool: string;
  catalog: string;
  models: string;
  workers?: number;
  env?: Record<string, string | undefined>;
  /** CPU list for taskset (e.g. "0"), to give a pool its own core as a CPU limit would. */
  cpus?: string;
}

/** A `botshard pool` process on 127.0.0.1 (random ports), ready. */
export function startPool(p: PoolStart): Promise<Child> {
  const env: Record<string, string | undefined> = { BOTSHARD_TIMEOUT_MS: '30000', BOTSHARD_CONCURRENCY: '256', ...p.env };
  if (p.workers) env.BOTSHARD_WORKERS = String(p.workers);
  return startBotshard({
    name: p.pool,
    env,
    args: ['pool', '--pool', p.pool, '--catalog', p.catalog, '--models', p.models, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1'],
  });
}

/** A `botshard router` process in front of the given pool URLs, ready. */
export function startRouter(catalog: string, poolUrls: Record<string, string>, dir: string): Promise<Child> {
  const file = path.join(dir, `pool-urls-${Date.now()}.json`);
  fs.writeFileSync(file, JSON.stringify(poolUrls));
  return startBotshard({ name: 'router', args: ['router', '--catalog', catalog, '--pool-urls', file, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1'] });
}

/** Stops children: SIGTERM, then SIGKILL after `graceMs`; resolves once every one has exited. */
export async function stopAll(children: Iterable<Child | ChildProcess>, graceMs = 5000): Promise<void> {
  const procs = [...children].map((c) => ('proc' in c ? c.proc : c));
  await Promise.all(
    procs.map(
      (proc) =>
        new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
          proc.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          proc.kill('SIGTERM');
        }),
    ),
  );
}

/** Runs `f` over `items` with at most `limit` at once; results in item order. Stops starting new ones after a failure. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, f: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed: unknown;
  const lane = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        out[i] = await f(items[i], i);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failed !== undefined) throw failed;
  return out;
}

/** Resident set size of a process (VmRSS), bytes. */
export const rssOf = (pid: number): number => statusBytes(pid, 'VmRSS');

/** The most RSS a process has had (VmHWM), bytes. */
export const peakRssOf = (pid: number): number => statusBytes(pid, 'VmHWM');

/** A size field of /proc/<pid>/status (kB there), bytes. */
function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/** Memory this machine can still give without swapping (MemAvailable), bytes: what a benchmark may take is checked against it. */
export function memAvailable(): number {
  return Number(/MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;
}

/** CPU time (user + system) a process has used so far, ms (clock ticks of 10 ms). */
export function cpuMsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields 14 and 15 of stat (utime, stime), counted after the command name (which may hold ") "): 12 and 13 here.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time of a process and every process under it (the HAProxy mode: its control plane, and HAProxy's master and worker), ms. */
export function treeCpuMsOf(pid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // gone while listing
    }
  }
  let total = 0;
  for (const queue = [pid]; queue.length > 0; ) {
    const next = queue.pop()!;
    try {
      total += cpuMsOf(next);
    } catch {
      continue;
    }
    queue.push(...(children.get(next) ?? []));
  }
  return total;
}

/** Proportional set size (shared pages divided among the processes sharing them), bytes; 0 when unavailable. */
export function pssOf(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))![1]) * 1024;
  } catch {
    return 0;
  }
}

/** Whether a program runs here (an anchor or a data plane a benchmark compares with). */
export function installed(bin: string, args: string[]): boolean {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

export const MiB = 1048576;
export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function spread(xs: number[], digits = 1): Spread {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: round(mid, digits), min: round(s[0], digits), max: round(s[s.length - 1], digits), runs: s.length };
}

/** "12.3 (11.0-14.2)" */
export const fmt = (s: Spread | undefined, unit = '') => (s ? `${s.median}${unit} (${s.min}-${s.max})` : 'n/a');

export const percentile = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

export function machine() {
  return {
    cpus: CORES,
    cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown',
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    /** 1/5/15-minute load averages when the results were written: others' work on this shared machine shows here. */
    loadAverage: os.loadavg().map((x) => round(x, 2)),
  };
}

export function writeResult(name: string, json: unknown, md: string): void {
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
  fs.writeFileSync(path.join(RESULTS, `${name}.md`), md.endsWith('\n') ? md : `${md}\n`);
}

/** Quiet when BENCH_QUIET=1 (the smoke test); progress goes to stderr otherwise. */
export const log = (msg: string) => {
  if (process.env.BENCH_QUIET !== '1') process.stderr.write(`${msg}\n`);
};

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `botshard-bench-${prefix}-`));
}

/**
 * Closed-loop load: `connections` `predict` requests in flight for `seconds`, each to the next bot, sent to
 * the URL `urlOf` gives for it (keep-alive undici pools, one per URL). Only to 127.0.0.1, bounded in time.
 */
export async function predictLoad(urlOf: (bot: string) => string, bots: string[], seconds: number, connections = 16, text = 'where is my order') {
  const clients = new Map<string, HttpPool>();
  for (const url of new Set(bots.map(urlOf))) clients.set(url, new HttpPool(url, { connections, pipelining: 1 }));
  const body = JSON.stringify({ text });
  const call = async (bot: string) => {
    const res = await clients.get(urlOf(bot))!.request({ method: 'POST', path: `/v1/bots/${bot}/predict`, headers: { 'content-type': 'application/json' }, body });
    await res.body.text();
    return res.statusCode === 200;
  };
  return closedLoop(bots, seconds, connections, call).finally(() => Promise.all([...clients.values()].map((c) => c.close())));
}

/** One ModelInfer request per bot, encoded once: one text as `raw_input_contents` (as Triton's clients send it). */
function encodedInferRequests(bots: string[], text: string): Map<string, Buffer> {
  const service = inferenceService();
  const raw = Buffer.alloc(4 + Buffer.byteLength(text));
  raw.writeUInt32LE(Buffer.byteLength(text));
  raw.write(text, 4);
  return new Map(bots.map((bot) => [bot, service.ModelInfer.requestSerialize({ model_name: bot, inputs: [{ name: 'text', datatype: 'BYTES', shape: [1] }], raw_input_contents: [raw] })]));
}

/** HTTP/2 connections of the gRPC load generator: calls spread over them in turn. */
export const GRPC_CHANNELS = 4;

/**
 * Closed-loop gRPC load: `concurrency` ModelInfer calls in flight over GRPC_CHANNELS HTTP/2 connections
 * for `seconds`, each to the next bot. Messages are encoded once and answers are not decoded, as
 * autocannon and `inferLoad` send fixed bodies and do not parse answers.
 */
export async function grpcInferLoad(target: string, bots: string[], seconds: number, concurrency = 16, text = 'where is my order') {
  const clients = Array.from({ length: GRPC_CHANNELS }, () => new grpc.Client(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  const requests = encodedInferRequests(bots, text);
  const same = (b: Buffer) => b;
  let turn = 0;
  const call = (bot: string) =>
    new Promise<boolean>((resolve) => clients[turn++ % clients.length].makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', same, same, requests.get(bot)!, new grpc.Metadata(), {}, (err) => resolve(!err)));
  return closedLoop(bots, seconds, concurrency, call).finally(() => clients.forEach((c) => c.close()));
}

/** The same load as `grpcInferLoad` over REST: `POST /v2/models/{bot}/infer` with one text (JSON), undici keep-alive connections. */
export async function inferLoad(url: string, bots: string[], seconds: number, concurrency = 16, text = 'where is my order') {
  const client = new HttpPool(url, { connections: concurrency, pipelining: 1 });
  const body = JSON.stringify({ inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: [text] }] });
  const call = async (bot: string) => {
    const res = await client.request({ method: 'POST', path: `/v2/models/${bot}/infer`, headers: { 'content-type': 'application/json' }, body });
    await res.body.arrayBuffer();
    return res.statusCode === 200;
  };
  return closedLoop(bots, seconds, concurrency, call).finally(() => client.close());
}

async function closedLoop(bots: string[], seconds: number, concurrency: number, call: (bot: string) => Promise<boolean>) {
  const latencies: number[] = [];
  let errors = 0;
  let i = 0;
  const end = performance.now() + seconds * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      const bot = bots[i++ % bots.length];
      const t = performance.now();
      const ok = await call(bot).catch(() => false);
      if (ok) latencies.push(performance.now() - t);
      else errors++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = (performance.now() - started) / 1000;
  return { requests: latencies.length, errors, rps: Math.round(latencies.length / elapsed), p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}
