/**
 * npm run bench:cold
 *
 * Cold bots loaded on demand (issue #16) against every bot loaded, side by side on the same machine and
 * the same catalog: 10,000 bots of bench/fleet.ts (pools of 1 GiB, 8 shared encoders), once as today
 * (every bot resident: plan() makes about 90 pools) and once with `overcommit: 3` (a pool is assigned
 * three times its memory in bots, about 30 pools, and keeps resident what fits its memory at the fill
 * factor). Requests follow a Zipf distribution over the bots (s = 1.1, ranks a seeded shuffle): a few
 * bots take most requests, most are rarely asked.
 *
 * 90 real pools do not fit this 2-core machine: an evenly spread sample of pools runs for each setting
 * (real `botshard pool` processes on 127.0.0.1, 2 inference workers each), each offered the requests
 * of its own bots from the same distribution at a fixed rate (open loop, Poisson arrivals); fleet memory
 * is the sample's mean RSS times the pool count. The two settings run side by side, at the same moment:
 * a batch is a few pools of each setting (2 + 2 by default), so the drift of this shared machine (the
 * same code's p99 moves 2x between runs minutes apart) falls on both alike, and each pool has at least
 * the half core its manifest requests (6 pools at once on 2 cores gave a third, and measured the
 * machine's run queue). A warm-up (not measured) lets the resident sets and the encoders settle first,
 * then every answer is timed and classified by the pool's `botshard-residency` header (hit: resident;
 * miss: loaded for that request). Pool CPU is read from /proc over the measured window: what on-demand
 * loading costs in CPU is a figure of its own.
 *
 * All of it with real-sized heads (each as large as its bot declares, 2-8 MiB of real weights, written
 * for the bots of the pools that run) at SIZED_RATE requests per second per pool: the headline and the
 * main rows; then with real-sized heads at RATE (`sizedAt200Rps`, the headline's figures suffixed
 * At200Rps: the overcommit pools need more than the half core each requests, and the machine saturates), and with tiny demo heads (a few KiB, not
 * their declared size) at RATE (`tinyHeads`, suffixed TinyHeads).
 *
 * Headline: coldMemoryOverAllLoaded (fleet RSS with overcommit / all loaded), coldHotP99OverAllLoaded
 * (p99 of hits with overcommit / p99 of all requests with every bot loaded), coldFirstRequestP99Ms (p99
 * of misses: a head load, its encoder resident), coldHitRatePct, coldPoolReadyMs (next to
 * allLoadedPoolReadyMs), coldCpuPerRequestOverAllLoaded (pool CPU per answered request, overcommit / all
 * loaded). Writes bench/results/cold.{json,md}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool as HttpPool } from 'undici';
import { Catalog, Pool as PoolPlan, parseCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { POOL_MEMORY, fleetCatalog } from './fleet';
import { Child, CORES, cpuMsOf, log, machine, MiB, percentile, rng, round, rssOf, sleep, SMOKE, startPool, stopAll, tempDir, writeResult } from './processes';

const BOTS = SMOKE ? 400 : Number(process.env.BENCH_BOTS ?? 10000);
const OVERCOMMIT = 3;
const ZIPF_S = 1.1;
/** Pools of each setting that run for real. */
const SAMPLE = SMOKE ? 1 : Number(process.env.BENCH_SAMPLE_POOLS ?? 6);
/** Requests per second offered to each pool (open loop), and the connections each pool's client may open. */
const RATE = Number(process.env.BENCH_RATE ?? 200);
const CONNECTIONS = 64;
const WARMUP_S = SMOKE ? 0.5 : Number(process.env.BENCH_WARMUP_SECONDS ?? 10);
const MEASURE_S = SMOKE ? 1 : Number(process.env.BENCH_SECONDS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 2));
/** Pools of each setting that run at once (side by side with as many of the other setting). */
const AT_ONCE = Number(process.env.BENCH_POOLS_AT_ONCE ?? 2);

type Setting = 'allLoaded' | 'overcommit';
type Heads = 'sized' | 'tiny';
/**
 * Real-sized heads: requests per second per pool. A miss loads a 2-8 MiB head (milliseconds of CPU each):
 * at RATE, the overcommit pools need about the half core each requests and queue; this rate leaves both
 * settings below it, so their latencies compare. Both rates run (see RUNS).
 */
const SIZED_RATE = Number(process.env.BENCH_SIZED_RATE ?? 100);
/**
 * What runs, in order, each a kind of head at a rate ("sized@100"): the first is the headline's; the
 * others' figures follow it in the headline with a suffix (TinyHeads, or AtNRps). BENCH_RUNS for shorter
 * runs while developing; the results name what ran.
 */
const RUNS = (process.env.BENCH_RUNS ?? (SMOKE ? `sized@${RATE},tiny@${RATE}` : `sized@${SIZED_RATE},sized@${RATE},tiny@${RATE}`)).split(',').map((x) => {
  const [heads, rate] = x.split('@');
  return { heads: heads as Heads, rate: Number(rate) };
});
/** What each kind of head is, as the results and figures name it. */
const HEADS: Record<Heads, string> = {
  sized: 'real-sized heads (each as large as its bot declares, 2-8 MiB of real weights)',
  tiny: 'tiny demo heads (a few KiB, not their declared size)',
};


/** Each bot's Zipf weight: 1 / rank^s, ranks a seeded shuffle of the bots. */
function zipfWeights(ids: string[], seed: number): Map<string, number> {
  const random = rng(seed);
  const order = [...ids];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return new Map(order.map((id, r) => [id, 1 / (r + 1) ** ZIPF_S]));
}

/** Draws bots from their weights (cumulative sums, binary search). */
function sampler(bots: string[], weights: Map<string, number>, seed: number): () => string {
  const cumulative: number[] = [];
  let total = 0;
  for (const b of bots) cumulative.push((total += weights.get(b)!));
  const random = rng(seed);
  return () => {
    const x = random() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return bots[lo];
  };
}

interface Sample {
  hits: number[];
  misses: number[];
  /** Every answered request's latency, ms (hits and misses, or plain answers without overcommit). */
  all: number[];
  errors: number;
}

/**
 * Open-loop load: requests arrive at `rate` per second per pool (Poisson: exponential gaps, sent on 2 ms
 * ticks), whatever the answers, so both settings are compared at the same offered load and a slow
 * answer does not slow the arrivals (a closed loop at saturation would compare throughput, not latency).
 */
async function drive(pools: Array<{ url: string; draw: () => string; into?: Sample }>, seconds: number, seed: number, rate: number): Promise<void> {
  const body = JSON.stringify({ text: 'where is my order' });
  await Promise.all(
    pools.map(async ({ url, draw, into }, p) => {
      const client = new HttpPool(url, { connections: CONNECTIONS, pipelining: 1 });
      const random = rng(seed * 7919 + p + 1);
      const pending: Array<Promise<void>> = [];
      const send = async (bot: string) => {
        const t = performance.now();
        try {
          const res = await client.request({ method: 'POST', path: `/v1/bots/${bot}/predict`, headers: { 'content-type': 'application/json' }, body });
          await res.body.text();
          const ms = performance.now() - t;
          if (!into) return;
          if (res.statusCode !== 200) {
            into.errors++;
            return;
          }
          into.all.push(ms);
          const residency = res.headers['botshard-residency'];
          if (residency === 'hit') into.hits.push(ms);
          else if (residency === 'miss') into.misses.push(ms);
        } catch {
          if (into) into.errors++;
        }
      };
      const start = performance.now();
      const end = start + seconds * 1000;
      let next = start - Math.log(1 - random()) * (1000 / rate);
      while (next < end) {
        const now = performance.now();
        while (next <= now && next < end) {
          pending.push(send(draw()));
          next += -Math.log(1 - random()) * (1000 / rate);
        }
        await sleep(Math.max(0, Math.min(2, next - performance.now())));
      }
      await Promise.all(pending);
      await client.close();
    }),
  );
}

/** What one setting's pools measured. */
interface Measured {
  readyMs: number[];
  rssMiB: number[];
  /** Pool CPU (all threads) over the measured window, ms, and the requests answered meanwhile. */
  cpuMs: number;
  answered: number;
  sample: Sample;
}

const emptySample = (): Sample => ({ hits: [], misses: [], all: [], errors: 0 });
const SETTINGS: Setting[] = ['allLoaded', 'overcommit'];

/** Pools of both settings at once: each started on its own (its time to ready), then all driven together. */
async function runBatch(batch: Array<{ setting: Setting; pool: PoolPlan }>, fleet: Fleet, models: string, rate: number, seed: number, into: Record<Setting, Measured>): Promise<void> {
  const children: Child[] = [];
  try {
    for (const { setting, pool } of batch) {
      const child = await startPool({ pool: pool.name, catalog: fleet.dirs[setting], models, workers: CORES });
      children.push(child);
      into[setting].readyMs.push(child.readyMs);
    }
    const targets = batch.map(({ pool }, i) => ({ url: children[i].url, draw: sampler(pool.bots, fleet.weights, seed * 100 + i + 1) }));
    await drive(targets, WARMUP_S, 2 * seed, rate);
    const samples = batch.map(() => emptySample());
    const cpuBefore = children.map((c) => cpuMsOf(c.pid));
    await drive(targets.map((t, i) => ({ ...t, into: samples[i] })), MEASURE_S, 2 * seed + 1, rate);
    const cpuMs = children.map((c, i) => cpuMsOf(c.pid) - cpuBefore[i]);
    await sleep(500);
    const lines: string[] = [];
    for (const setting of SETTINGS) {
      const m = into[setting];
      const mine = batch.flatMap((b, i) => (b.setting === setting ? [i] : []));
      const sample = emptySample();
      for (const i of mine) {
        const x = samples[i];
        sample.hits.push(...x.hits);
        sample.misses.push(...x.misses);
        sample.all.push(...x.all);
        sample.errors += x.errors;
        m.rssMiB.push(rssOf(children[i].pid) / MiB);
        m.cpuMs += cpuMs[i];
      }
      m.answered += sample.all.length;
      m.sample.hits.push(...sample.hits);
      m.sample.misses.push(...sample.misses);
      m.sample.all.push(...sample.all);
      m.sample.errors += sample.errors;
      const cpu = mine.reduce((a, i) => a + cpuMs[i], 0);
      lines.push(`${setting} ${mine.map((i) => batch[i].pool.name).join('/')}: ${sample.all.length} answered (${sample.hits.length} hits), ${sample.errors} errors, p99 ${round(percentile(sample.all, 99), 2)} ms${sample.hits.length ? `, hits p99 ${round(percentile(sample.hits, 99), 2)} ms` : ''}, pool CPU ${Math.round((cpu * 1000) / Math.max(1, sample.all.length))} us a request`);
    }
    log(lines.join('; '));
  } finally {
    await stopAll(children);
  }
}

const median = (xs: number[]) => percentile(xs, 50);
const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;

/** The catalogs of both settings, their plans and the pools of each that run for real. */
interface Fleet {
  catalogs: Record<Setting, Catalog>;
  dirs: Record<Setting, string>;
  plans: Record<Setting, ReturnType<typeof plan>>;
  chosen: Record<Setting, PoolPlan[]>;
  weights: Map<string, number>;
}

function fleetOf(work: string): Fleet {
  const catalogs: Record<Setting, Catalog> = {
    allLoaded: parseCatalog(fleetCatalog({ bots: BOTS })),
    overcommit: parseCatalog(fleetCatalog({ bots: BOTS, overcommit: OVERCOMMIT })),
  };
  const dirs = {} as Record<Setting, string>;
  for (const s of SETTINGS) {
    dirs[s] = path.join(work, s);
    writeCatalogFolder(dirs[s], catalogs[s]);
  }
  const plans = { allLoaded: plan(catalogs.allLoaded), overcommit: plan(catalogs.overcommit) };
  // An evenly spread sample of each setting's pools.
  const sample = (s: Setting) => {
    const pools = plans[s].pools;
    const n = Math.min(SAMPLE, pools.length);
    return Array.from({ length: n }, (_, i) => pools[Math.floor((i * pools.length) / n)]);
  };
  const weights = zipfWeights(catalogs.allLoaded.bots.map((b) => b.id), 20261202);
  return { catalogs, dirs, plans, chosen: { allLoaded: sample('allLoaded'), overcommit: sample('overcommit') }, weights };
}

/**
 * Writes one kind of demo models: tiny heads for every bot, or real-sized heads (each as large as its bot
 * declares) for the bots of the pools that run only (thousands of files of 2-8 MiB otherwise).
 */
function writeModels(fleet: Fleet, heads: Heads, models: string): void {
  const t0 = Date.now();
  const catalog = fleet.catalogs.allLoaded;
  if (heads === 'tiny') writeDemoModels(catalog, models);
  else {
    const ids = new Set(SETTINGS.flatMap((s) => fleet.chosen[s].flatMap((p) => p.bots)));
    writeDemoModels({ ...catalog, bots: catalog.bots.filter((b) => ids.has(b.id)) }, models, { sized: true });
  }
  log(`${heads} heads written in ${Math.round((Date.now() - t0) / 1000)} s`);
}

/** Every round over the sample, both settings side by side, with one kind of head at `rate` requests per second per pool. */
async function runHeads(fleet: Fleet, models: string, rate: number): Promise<Record<Setting, Measured>> {
  const measured = Object.fromEntries(SETTINGS.map((s) => [s, { readyMs: [], rssMiB: [], cpuMs: 0, answered: 0, sample: emptySample() } as Measured])) as Record<Setting, Measured>;
  for (let r = 0; r < ROUNDS; r++) {
    for (let b = 0; b < SAMPLE; b += AT_ONCE) {
      // Which setting starts first alternates: a pool started later waits less for the drive.
      const order = (r + b / AT_ONCE) % 2 === 0 ? SETTINGS : [...SETTINGS].reverse();
      const batch = order.flatMap((setting) => fleet.chosen[setting].slice(b, b + AT_ONCE).map((pool) => ({ setting, pool })));
      await runBatch(batch, fleet, models, rate, r * 100 + b + 1, measured);
    }
  }
  return measured;
}

/** One kind of head's figures: the headline ratios and each setting's row. */
function summaryOf(fleet: Fleet, measured: Record<Setting, Measured>) {
  const a = measured.allLoaded.sample;
  const o = measured.overcommit.sample;
  const fleetRss = (s: Setting) => mean(measured[s].rssMiB) * fleet.plans[s].pools.length;
  const cpuPerRequest = (s: Setting) => (measured[s].cpuMs * 1000) / Math.max(1, measured[s].answered);
  const headline = {
    coldMemoryOverAllLoaded: round(fleetRss('overcommit') / fleetRss('allLoaded'), 2),
    coldHotP99OverAllLoaded: round(percentile(o.hits, 99) / percentile(a.all, 99), 2),
    coldFirstRequestP99Ms: round(percentile(o.misses, 99), 1),
    coldHitRatePct: round((100 * o.hits.length) / (o.hits.length + o.misses.length), 1),
    coldPoolReadyMs: Math.round(median(measured.overcommit.readyMs)),
    allLoadedPoolReadyMs: Math.round(median(measured.allLoaded.readyMs)),
    coldCpuPerRequestOverAllLoaded: round(cpuPerRequest('overcommit') / cpuPerRequest('allLoaded'), 2),
  };
  const describe = (s: Setting) => {
    const x = measured[s].sample;
    return {
      pools: fleet.plans[s].pools.length,
      sampledPools: fleet.chosen[s].length,
      botsPerPool: round(mean(fleet.chosen[s].map((p) => p.bots.length))),
      fleetRssMiB: round(fleetRss(s)),
      poolRssMiB: round(median(measured[s].rssMiB)),
      poolReadyMs: Math.round(median(measured[s].readyMs)),
      requests: x.all.length,
      errors: x.errors,
      p50Ms: round(percentile(x.all, 50), 2),
      p99Ms: round(percentile(x.all, 99), 2),
      cpuUsPerRequest: Math.round(cpuPerRequest(s)),
    };
  };
  const overcommit = { ...describe('overcommit'), hits: o.hits.length, misses: o.misses.length, hitP50Ms: round(percentile(o.hits, 50), 2), hitP99Ms: round(percentile(o.hits, 99), 2), missP50Ms: round(percentile(o.misses, 50), 2), missP99Ms: round(percentile(o.misses, 99), 2) };
  return { headline, allLoaded: describe('allLoaded'), overcommit };
}

/** A run's figures, with what ran. */
type Summary = { heads: string; requestsPerSecondPerPool: number } & ReturnType<typeof summaryOf>;

async function main(): Promise<void> {
  const started = Date.now();
  const work = tempDir('cold');
  const done: Array<{ heads: Heads; summary: Summary }> = [];
  try {
    const fleet = fleetOf(work);
    for (const heads of [...new Set(RUNS.map((x) => x.heads))]) {
      const models = path.join(work, `models-${heads}`);
      writeModels(fleet, heads, models);
      for (const { rate } of RUNS.filter((x) => x.heads === heads)) {
        log(`${heads} heads at ${rate} requests/s per pool`);
        done.push({ heads, summary: { heads: HEADS[heads], requestsPerSecondPerPool: rate, ...summaryOf(fleet, await runHeads(fleet, models, rate)) } });
      }
      fs.rmSync(models, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  // In the order RUNS gives: the first is the headline's, the others follow with a suffix.
  const ordered = RUNS.map((x) => done.find((d) => d.heads === x.heads && d.summary.requestsPerSecondPerPool === x.rate)!);
  const [first, ...others] = ordered;
  const suffix = (d: (typeof done)[number]) => (d.heads === 'tiny' ? 'TinyHeads' : `At${d.summary.requestsPerSecondPerPool}Rps`);
  const result = {
    benchmark: 'cold',
    date: new Date().toISOString(),
    headline: { ...first.summary.headline, ...Object.fromEntries(others.flatMap((d) => Object.entries(d.summary.headline).map(([k, v]) => [`${k}${suffix(d)}`, v]))) },
    machine: machine(),
    settings: { bots: BOTS, poolMemory: POOL_MEMORY, overcommit: OVERCOMMIT, zipfS: ZIPF_S, sampledPools: SAMPLE, poolsAtOnce: AT_ONCE, requestsPerSecondPerPool: first.summary.requestsPerSecondPerPool, warmupSeconds: WARMUP_S, measureSeconds: MEASURE_S, rounds: ROUNDS, workersPerPool: CORES, runs: RUNS.map((x) => `${x.heads}@${x.rate}`) },
    heads: first.summary.heads,
    allLoaded: first.summary.allLoaded,
    overcommit: first.summary.overcommit,
    ...Object.fromEntries(others.map((d) => [d.heads === 'tiny' ? 'tinyHeads' : `sized${suffix(d)}`, d.summary])),
    seconds: Math.round((Date.now() - started) / 1000),
  };
  writeResult('cold', result, report(result, others.map((d) => d.summary)));
  log(`wrote cold.json and cold.md in ${result.seconds} s`);
}

function report(r: any, others: Summary[]): string {
  const row = (name: string, x: any) => `| ${name} | ${x.pools} (${x.sampledPools} run) | ${x.botsPerPool} | ${x.poolRssMiB} | ${x.fleetRssMiB} | ${x.poolReadyMs} | ${x.requests} | ${x.errors} | ${x.p50Ms} | ${x.p99Ms} | ${x.cpuUsPerRequest} |`;
  const section = (x: any) => [
    '| setting | pools | bots per pool | pool RSS MiB | fleet RSS MiB | pool ready ms | requests | errors | p50 ms | p99 ms | pool CPU us a request |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    row('every bot loaded', x.allLoaded),
    row(`overcommit ${r.settings.overcommit}`, x.overcommit),
    '',
    `With overcommit: ${x.overcommit.hits} hits (p50 ${x.overcommit.hitP50Ms} ms, p99 ${x.overcommit.hitP99Ms} ms), ${x.overcommit.misses} misses (p50 ${x.overcommit.missP50Ms} ms, p99 ${x.overcommit.missP99Ms} ms: the head loaded for that request).`,
    '',
  ];
  return [
    '# Cold bots: loaded on demand against every bot loaded',
    '',
    `${r.date}, ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Command: \`npm run bench:cold\`; ${r.seconds} s.`,
    '',
    `${r.settings.bots} bots of bench/fleet.ts (pools of 1 GiB at fill factor 0.75, 8 encoders declared 48 MiB, heads 2-8 MiB; demo models: 1 MiB encoders, and heads of either kind below), requests drawn from a Zipf distribution (s = ${r.settings.zipfS}) over the bots. Every bot loaded (today) against \`overcommit: ${r.settings.overcommit}\`. ${r.settings.sampledPools} pools of each setting run for real (evenly spread over the plan, ${r.settings.workersPerPool} inference workers each), each offered a fixed rate of requests per second for its own bots (open loop, Poisson arrivals: the same offered load in both settings). The settings run side by side: ${r.settings.poolsAtOnce} pools of each at the same moment (both see the same machine; each pool has at least the half core its manifest requests), ${r.settings.warmupSeconds} s of warm-up, then ${r.settings.measureSeconds} s measured; ${r.settings.rounds} rounds over the sample. Fleet memory: the sample's mean RSS times the pool count. Pool CPU: user + system time of the pool processes over the measured window, per answered request.`,
    '',
    `## ${r.heads}, ${r.settings.requestsPerSecondPerPool} requests per second per pool`,
    '',
    ...section(r),
    `Headline: ${Object.entries(r.headline).map(([k, v]) => `${k} ${v}`).join(', ')} (targets: coldMemoryOverAllLoaded <= 0.35, coldHotP99OverAllLoaded <= 1.1, coldFirstRequestP99Ms <= 300, for the first run).`,
    '',
    ...others.flatMap((x) => [`## ${x.heads}, ${x.requestsPerSecondPerPool} requests per second per pool`, '', ...section(x)]),
  ].join('\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
