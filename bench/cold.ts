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
 * is the sample's mean RSS times the pool count. A warm-up (not measured) lets the resident sets and
 * the encoders settle first, then every answer is timed and classified by the pool's
 * `botshard-residency` header (hit: resident; miss: loaded for that request).
 *
 * Headline: coldMemoryOverAllLoaded (fleet RSS with overcommit / all loaded), coldHotP99OverAllLoaded
 * (p99 of hits with overcommit / p99 of all requests with every bot loaded), coldFirstRequestP99Ms (p99
 * of misses: a head load, its encoder resident), coldHitRatePct, coldPoolReadyMs (next to
 * allLoadedPoolReadyMs). Writes bench/results/cold.{json,md}.
 */
import * as path from 'node:path';
import { Pool as HttpPool } from 'undici';
import { Catalog, parseCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { fleetCatalog } from './fleet';
import { CORES, Child, MiB, SMOKE, log, machine, percentile, round, rssOf, sleep, startPool, stopAll, tempDir, writeResult } from './processes';

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

type Setting = 'allLoaded' | 'overcommit';

/** A seeded xorshift32 in [0, 1). */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

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
 * Open-loop load: requests arrive at RATE per second per pool (Poisson: exponential gaps, sent on 2 ms
 * ticks), whatever the answers, so both settings are compared at the same offered load and a slow
 * answer does not slow the arrivals (a closed loop at saturation would compare throughput, not latency).
 */
async function drive(pools: Array<{ url: string; draw: () => string }>, seconds: number, seed: number, into?: Sample): Promise<void> {
  const body = JSON.stringify({ text: 'where is my order' });
  await Promise.all(
    pools.map(async ({ url, draw }, p) => {
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
      let next = start - Math.log(1 - random()) * (1000 / RATE);
      while (next < end) {
        const now = performance.now();
        while (next <= now && next < end) {
          pending.push(send(draw()));
          next += -Math.log(1 - random()) * (1000 / RATE);
        }
        await sleep(Math.max(0, Math.min(2, next - performance.now())));
      }
      await Promise.all(pending);
      await client.close();
    }),
  );
}

interface SettingRun {
  pools: number;
  sampled: number;
  botsPerPool: number;
  readyMs: number[];
  rssMiB: number[];
  fleetRssMiB: number;
  sample: Sample;
}

async function runSetting(setting: Setting, catalog: Catalog, dir: string, models: string, weights: Map<string, number>, round_: number): Promise<SettingRun> {
  const topology = plan(catalog);
  const chosen = Array.from({ length: Math.min(SAMPLE, topology.pools.length) }, (_, i) => topology.pools[Math.floor((i * topology.pools.length) / Math.min(SAMPLE, topology.pools.length))]);
  const children: Child[] = [];
  try {
    const readyMs: number[] = [];
    // One at a time: each pool's time to ready on its own, as a pod starting on its own node.
    for (const p of chosen) {
      const child = await startPool({ pool: p.name, catalog: dir, models, workers: CORES });
      children.push(child);
      readyMs.push(child.readyMs);
    }
    const targets = chosen.map((p, i) => ({ url: children[i].url, draw: sampler(p.bots, weights, 1000 * round_ + i + 1) }));
    await drive(targets, WARMUP_S, 2 * round_);
    const sample: Sample = { hits: [], misses: [], all: [], errors: 0 };
    await drive(targets, MEASURE_S, 2 * round_ + 1, sample);
    await sleep(500);
    const rssMiB = children.map((c) => rssOf(c.pid) / MiB);
    const mean = rssMiB.reduce((a, x) => a + x, 0) / rssMiB.length;
    log(`${setting}: ${topology.pools.length} pools (${chosen.length} run), ready ${readyMs.map((x) => Math.round(x)).join('/')} ms, RSS ${rssMiB.map((x) => round(x)).join('/')} MiB, ${sample.all.length} answered (${sample.hits.length} hits, ${sample.misses.length} misses), ${sample.errors} errors, p99 ${round(percentile(sample.all, 99), 2)} ms`);
    return { pools: topology.pools.length, sampled: chosen.length, botsPerPool: round(chosen.reduce((a, p) => a + p.bots.length, 0) / chosen.length), readyMs, rssMiB, fleetRssMiB: mean * topology.pools.length, sample };
  } finally {
    await stopAll(children);
  }
}

const median = (xs: number[]) => percentile(xs, 50);

async function main(): Promise<void> {
  const started = Date.now();
  const work = tempDir('cold');
  const catalogs: Record<Setting, Catalog> = {
    allLoaded: parseCatalog(fleetCatalog({ bots: BOTS })),
    overcommit: parseCatalog(fleetCatalog({ bots: BOTS, overcommit: OVERCOMMIT })),
  };
  const models = path.join(work, 'models');
  writeDemoModels(catalogs.allLoaded, models);
  const dirs = {} as Record<Setting, string>;
  for (const s of ['allLoaded', 'overcommit'] as Setting[]) {
    dirs[s] = path.join(work, s);
    writeCatalogFolder(dirs[s], catalogs[s]);
  }
  const weights = zipfWeights(catalogs.allLoaded.bots.map((b) => b.id), 20261202);
  const runs: Record<Setting, SettingRun[]> = { allLoaded: [], overcommit: [] };
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which setting goes first: drift on this shared machine hits both alike.
    const order: Setting[] = r % 2 === 0 ? ['allLoaded', 'overcommit'] : ['overcommit', 'allLoaded'];
    for (const s of order) runs[s].push(await runSetting(s, catalogs[s], dirs[s], models, weights, r));
  }
  const pooled = (s: Setting) => {
    const all = runs[s].flatMap((x) => x.sample.all);
    const hits = runs[s].flatMap((x) => x.sample.hits);
    const misses = runs[s].flatMap((x) => x.sample.misses);
    const errors = runs[s].reduce((a, x) => a + x.sample.errors, 0);
    return { all, hits, misses, errors };
  };
  const a = pooled('allLoaded');
  const o = pooled('overcommit');
  const fleet = (s: Setting) => median(runs[s].map((x) => x.fleetRssMiB));
  const headline = {
    coldMemoryOverAllLoaded: round(fleet('overcommit') / fleet('allLoaded'), 2),
    coldHotP99OverAllLoaded: round(percentile(o.hits, 99) / percentile(a.all, 99), 2),
    coldFirstRequestP99Ms: round(percentile(o.misses, 99), 1),
    coldHitRatePct: round((100 * o.hits.length) / (o.hits.length + o.misses.length), 1),
    coldPoolReadyMs: Math.round(median(runs.overcommit.flatMap((x) => x.readyMs))),
    allLoadedPoolReadyMs: Math.round(median(runs.allLoaded.flatMap((x) => x.readyMs))),
  };
  const describe = (s: Setting) => ({
    pools: runs[s][0].pools,
    sampledPools: runs[s][0].sampled,
    botsPerPool: runs[s][0].botsPerPool,
    fleetRssMiB: round(fleet(s)),
    poolRssMiB: round(median(runs[s].flatMap((x) => x.rssMiB))),
    poolReadyMs: Math.round(median(runs[s].flatMap((x) => x.readyMs))),
    requests: (s === 'allLoaded' ? a : o).all.length,
    errors: (s === 'allLoaded' ? a : o).errors,
    p50Ms: round(percentile((s === 'allLoaded' ? a : o).all, 50), 2),
    p99Ms: round(percentile((s === 'allLoaded' ? a : o).all, 99), 2),
  });
  const result = {
    benchmark: 'cold',
    date: new Date().toISOString(),
    headline,
    machine: machine(),
    settings: { bots: BOTS, overcommit: OVERCOMMIT, zipfS: ZIPF_S, sampledPools: SAMPLE, requestsPerSecondPerPool: RATE, warmupSeconds: WARMUP_S, measureSeconds: MEASURE_S, rounds: ROUNDS, workersPerPool: CORES },
    allLoaded: describe('allLoaded'),
    overcommit: { ...describe('overcommit'), hits: o.hits.length, misses: o.misses.length, hitP50Ms: round(percentile(o.hits, 50), 2), hitP99Ms: round(percentile(o.hits, 99), 2), missP50Ms: round(percentile(o.misses, 50), 2), missP99Ms: round(percentile(o.misses, 99), 2) },
    seconds: Math.round((Date.now() - started) / 1000),
  };
  writeResult('cold', result, report(result));
  log(`wrote cold.json and cold.md in ${result.seconds} s`);
}

function report(r: any): string {
  const row = (name: string, x: any) => `| ${name} | ${x.pools} (${x.sampledPools} run) | ${x.botsPerPool} | ${x.poolRssMiB} | ${x.fleetRssMiB} | ${x.poolReadyMs} | ${x.requests} | ${x.errors} | ${x.p50Ms} | ${x.p99Ms} |`;
  return [
    '# Cold bots: loaded on demand against every bot loaded',
    '',
    `${r.date}, ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Command: \`npm run bench:cold\`; ${r.seconds} s.`,
    '',
    `${r.settings.bots} bots of bench/fleet.ts (pools of 1 GiB at fill factor 0.75, 8 encoders declared 48 MiB, heads 2-8 MiB; demo models), requests drawn from a Zipf distribution (s = ${r.settings.zipfS}) over the bots. Every bot loaded (today) against \`overcommit: ${r.settings.overcommit}\`. ${r.settings.sampledPools} pools of each setting run for real (evenly spread over the plan, ${r.settings.workersPerPool} inference workers each), each offered ${r.settings.requestsPerSecondPerPool} requests per second for its own bots (open loop, Poisson arrivals: the same offered load in both settings); ${r.settings.warmupSeconds} s of warm-up, then ${r.settings.measureSeconds} s measured; ${r.settings.rounds} rounds, the settings alternating. Fleet memory: the sample's mean RSS times the pool count.`,
    '',
    '| setting | pools | bots per pool | pool RSS MiB | fleet RSS MiB | pool ready ms | requests | errors | p50 ms | p99 ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    row('every bot loaded', r.allLoaded),
    row(`overcommit ${r.settings.overcommit}`, r.overcommit),
    '',
    `With overcommit: ${r.overcommit.hits} hits (p50 ${r.overcommit.hitP50Ms} ms, p99 ${r.overcommit.hitP99Ms} ms), ${r.overcommit.misses} misses (p50 ${r.overcommit.missP50Ms} ms, p99 ${r.overcommit.missP99Ms} ms: the head loaded for that request).`,
    '',
    `Headline: ${Object.entries(r.headline).map(([k, v]) => `${k} ${v}`).join(', ')} (targets: coldMemoryOverAllLoaded <= 0.35, coldHotP99OverAllLoaded <= 1.1, coldFirstRequestP99Ms <= 300).`,
    '',
  ].join('\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
