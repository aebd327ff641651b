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
 * Headline: coldMemoryOverAllLoaded (fleet RSS with overcommit / all loaded), coldHotP99OverAllLoaded
 * (p99 of hits with overcommit / p99 of all requests with every bot loaded), coldFirstRequestP99Ms (p99
 * of misses: a head load, its encoder resident), coldHitRatePct, coldPoolReadyMs (next to
 * allLoadedPoolReadyMs), coldCpuPerRequestOverAllLoaded (pool CPU per answered request, overcommit / all
 * loaded). Writes bench/results/cold.{json,md}.
 */
import * as path from 'node:path';
import { Pool as HttpPool } from 'undici';
import { Catalog, Pool as PoolPlan, parseCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { fleetCatalog } from './fleet';
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
async function drive(pools: Array<{ url: string; draw: () => string; into?: Sample }>, seconds: number, seed: number): Promise<void> {
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
async function runBatch(batch: Array<{ setting: Setting; pool: PoolPlan }>, dirs: Record<Setting, string>, models: string, weights: Map<string, number>, seed: number, into: Record<Setting, Measured>): Promise<void> {
  const children: Child[] = [];
  try {
    for (const { setting, pool } of batch) {
      const child = await startPool({ pool: pool.name, catalog: dirs[setting], models, workers: CORES });
      children.push(child);
      into[setting].readyMs.push(child.readyMs);
    }
    const targets = batch.map(({ pool }, i) => ({ url: children[i].url, draw: sampler(pool.bots, weights, seed * 100 + i + 1) }));
    await drive(targets, WARMUP_S, 2 * seed);
    const samples = batch.map(() => emptySample());
    const cpuBefore = children.map((c) => cpuMsOf(c.pid));
    await drive(targets.map((t, i) => ({ ...t, into: samples[i] })), MEASURE_S, 2 * seed + 1);
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
  const plans = { allLoaded: plan(catalogs.allLoaded), overcommit: plan(catalogs.overcommit) };
  // An evenly spread sample of each setting's pools.
  const chosen = (s: Setting) => {
    const pools = plans[s].pools;
    const n = Math.min(SAMPLE, pools.length);
    return Array.from({ length: n }, (_, i) => pools[Math.floor((i * pools.length) / n)]);
  };
  const measured = Object.fromEntries(SETTINGS.map((s) => [s, { readyMs: [], rssMiB: [], cpuMs: 0, answered: 0, sample: emptySample() } as Measured])) as Record<Setting, Measured>;
  for (let r = 0; r < ROUNDS; r++) {
    for (let b = 0; b < SAMPLE; b += AT_ONCE) {
      // Which setting starts first alternates: a pool started later waits less for the drive.
      const order = (r + b / AT_ONCE) % 2 === 0 ? SETTINGS : [...SETTINGS].reverse();
      const batch = order.flatMap((setting) => chosen(setting).slice(b, b + AT_ONCE).map((pool) => ({ setting, pool })));
      await runBatch(batch, dirs, models, weights, r * 100 + b + 1, measured);
    }
  }
  const a = measured.allLoaded.sample;
  const o = measured.overcommit.sample;
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const fleet = (s: Setting) => mean(measured[s].rssMiB) * plans[s].pools.length;
  const cpuPerRequest = (s: Setting) => (measured[s].cpuMs * 1000) / Math.max(1, measured[s].answered);
  const headline = {
    coldMemoryOverAllLoaded: round(fleet('overcommit') / fleet('allLoaded'), 2),
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
      pools: plans[s].pools.length,
      sampledPools: chosen(s).length,
      botsPerPool: round(mean(chosen(s).map((p) => p.bots.length))),
      fleetRssMiB: round(fleet(s)),
      poolRssMiB: round(median(measured[s].rssMiB)),
      poolReadyMs: Math.round(median(measured[s].readyMs)),
      requests: x.all.length,
      errors: x.errors,
      p50Ms: round(percentile(x.all, 50), 2),
      p99Ms: round(percentile(x.all, 99), 2),
      cpuUsPerRequest: Math.round(cpuPerRequest(s)),
    };
  };
  const result = {
    benchmark: 'cold',
    date: new Date().toISOString(),
    headline,
    machine: machine(),
    settings: { bots: BOTS, overcommit: OVERCOMMIT, zipfS: ZIPF_S, sampledPools: SAMPLE, poolsAtOnce: AT_ONCE, requestsPerSecondPerPool: RATE, warmupSeconds: WARMUP_S, measureSeconds: MEASURE_S, rounds: ROUNDS, workersPerPool: CORES },
    allLoaded: describe('allLoaded'),
    overcommit: { ...describe('overcommit'), hits: o.hits.length, misses: o.misses.length, hitP50Ms: round(percentile(o.hits, 50), 2), hitP99Ms: round(percentile(o.hits, 99), 2), missP50Ms: round(percentile(o.misses, 50), 2), missP99Ms: round(percentile(o.misses, 99), 2) },
    seconds: Math.round((Date.now() - started) / 1000),
  };
  writeResult('cold', result, report(result));
  log(`wrote cold.json and cold.md in ${result.seconds} s`);
}

function report(r: any): string {
  const row = (name: string, x: any) => `| ${name} | ${x.pools} (${x.sampledPools} run) | ${x.botsPerPool} | ${x.poolRssMiB} | ${x.fleetRssMiB} | ${x.poolReadyMs} | ${x.requests} | ${x.errors} | ${x.p50Ms} | ${x.p99Ms} | ${x.cpuUsPerRequest} |`;
  return [
    '# Cold bots: loaded on demand against every bot loaded',
    '',
    `${r.date}, ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Command: \`npm run bench:cold\`; ${r.seconds} s.`,
    '',
    `${r.settings.bots} bots of bench/fleet.ts (pools of 1 GiB at fill factor 0.75, 8 encoders declared 48 MiB, heads 2-8 MiB; demo models), requests drawn from a Zipf distribution (s = ${r.settings.zipfS}) over the bots. Every bot loaded (today) against \`overcommit: ${r.settings.overcommit}\`. ${r.settings.sampledPools} pools of each setting run for real (evenly spread over the plan, ${r.settings.workersPerPool} inference workers each), each offered ${r.settings.requestsPerSecondPerPool} requests per second for its own bots (open loop, Poisson arrivals: the same offered load in both settings). The settings run side by side: ${r.settings.poolsAtOnce} pools of each at the same moment (both see the same machine; each pool has at least the half core its manifest requests), ${r.settings.warmupSeconds} s of warm-up, then ${r.settings.measureSeconds} s measured; ${r.settings.rounds} rounds over the sample. Fleet memory: the sample's mean RSS times the pool count. Pool CPU: user + system time of the pool processes over the measured window, per answered request.`,
    '',
    '| setting | pools | bots per pool | pool RSS MiB | fleet RSS MiB | pool ready ms | requests | errors | p50 ms | p99 ms | pool CPU us a request |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
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
