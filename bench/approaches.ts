/**
 * npm run bench:approaches
 *
 * Memory and start-up of the three approaches on the same bots, each pool a real `botshard pool`
 * process on 127.0.0.1 with real ONNX models (bench/fleet.ts: 8 shared encoders, a head per bot):
 * - dedicated: one process per bot (plan() with strategy "dedicated"), 1 inference worker each;
 * - single: one process with every bot, a worker per core;
 * - sharded: the pools plan() sizes (about 100 bots each), a worker per core.
 * Twice: with real-sized heads (the main rows: each head as large as its bot declares, 2-8 MiB of real
 * weights, `DemoModelOptions.sized`) and with tiny demo heads (a few KiB, not their declared size: what
 * the runtime itself costs per process and per bot). For 25 / 50 / 100 bots all three run for real.
 * Tiny heads: single and sharded at 1,000 and 10,000 bots. Real-sized heads: single and sharded at 1,000
 * bots, then at the largest count one process can hold on this machine (largestSingle: grown from the
 * bytes per bot measured at 1,000 while single stays within BENCH_SINGLE_BUDGET_GIB, 12 by default, and
 * sharded within what the machine has available less a reserve), then sharded at 10,000 bots (a sample
 * of its pools; single is extrapolated there: it does not fit). Dedicated beyond 100 bots is extrapolated
 * from its measured memory per process. Each figure: sum of RSS (and PSS) of every process settled
 * (SETTLE_MS after all are ready) and of their peaks (VmHWM), wall time from the first spawn to the
 * last ready (processes started at most CORES at a time) and the slowest process's own time to ready. Rounds alternate the approaches so that drift on this
 * shared machine hits all alike. Also: the base memory of an idle pool process (no bots) with 1 and 2
 * workers, the cost of a request on either kind of head, and the overhead of sharding at 1,000
 * real-sized bots: (sharded RSS - the bots' own bytes) / the bots' own bytes, where the bots' own bytes
 * are the RSS of the single process holding them less that of an idle pool process (same workers); and
 * the same at 1,000 real-sized bots with glibc's default malloc (GLIBC_DEFAULT_ENV: without the fixed mmap
 * threshold every botshard process runs with, PROCESS_ENV), to show what the pools' allocator would leave
 * behind. Writes bench/results/approaches.{json,md}.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Catalog, Pool as PoolPlan, Strategy, parseCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import anchors from './anchors.json';
import { POOL_MEMORY, fleetCatalog } from './fleet';
import { CORES, Child, MiB, cpuMsOf, SMOKE, Spread, fmt, log, machine, mapLimit, memAvailable, peakRssOf, predictLoad, pssOf, round, rssOf, sleep, spread, startPool, stopAll, tempDir, writeResult } from './processes';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 3));
const SMALL = SMOKE ? [5] : (process.env.BENCH_SMALL ?? '25,50,100').split(',').map(Number);
/** Tiny heads: the large sizes (single and sharded). */
const LARGE = SMOKE ? [] : (process.env.BENCH_LARGE ?? '1000,10000').split(',').filter(Boolean).map(Number);
/** Real-sized heads: the large sizes before the largest single (single and sharded); the overhead of sharding is read at OVERHEAD_BOTS. */
const SIZED_LARGE = SMOKE ? [] : (process.env.BENCH_SIZED_LARGE ?? '1000').split(',').filter(Boolean).map(Number);
/** Real-sized heads: the fleet run sharded only, beyond what one process can hold (0: none). */
const SIZED_FLEET = SMOKE ? 0 : Number(process.env.BENCH_SIZED_FLEET ?? 10000);
/** Which kinds of heads run (for shorter runs while developing; the results name what ran). */
const KINDS = (process.env.BENCH_HEADS ?? 'sized,tiny').split(',') as Heads[];
const OVERHEAD_BOTS = 1000;
/** The share of this machine one process may take for the largest single, GiB. */
const SINGLE_BUDGET_GIB = Number(process.env.BENCH_SINGLE_BUDGET_GIB ?? 12);
/** The most the sharded fleet of the largest single may take, GiB (this benchmark stays within about 16 GiB). */
const FLEET_CAP_GIB = Number(process.env.BENCH_FLEET_CAP_GIB ?? 14);
/** Memory left to the machine's other work when the largest single and its sharded fleet are sized, GiB. */
const RESERVE_GIB = Number(process.env.BENCH_RESERVE_GIB ?? 4);
/** Rounds for sizes with more pools than MAX_POOLS (10,000 bots: about 90 processes and a minute a round). */
const LARGEST_ROUNDS = Number(process.env.BENCH_LARGEST_ROUNDS ?? 1);
/** Rounds of the dedicated fleet (100 processes, about two minutes a round on 2 cores). */
const DEDICATED_ROUNDS = Number(process.env.BENCH_DEDICATED_ROUNDS ?? (SMOKE ? 1 : 2));
/** Dedicated rounds that go up to the largest small size; the others stop at the size before it (time budget). */
const DEDICATED_FULL_ROUNDS = Number(process.env.BENCH_DEDICATED_FULL_ROUNDS ?? 1);
/**
 * From the last process ready to reading memory: V8's memory reducer gives back what start-up left on
 * each process's heap several seconds after the process goes idle (`npm run bench:memory` has an idle
 * pool's RSS second by second), and a deployment idles between load waves for far longer. Each
 * process's peak (VmHWM) is read too.
 */
const SETTLE_MS = SMOKE ? 200 : 25_000;
/** How long the idle pool's CPU use is watched. */
const IDLE_MS = SMOKE ? 200 : 1000;
/** Seconds of closed-loop requests per round when a request's cost is measured. */
const REQUEST_SECONDS = SMOKE ? 0.5 : Number(process.env.BENCH_REQUEST_SECONDS ?? 5);
/** More processes than this for one approach: run a sample of them (see runApproach). */
const MAX_POOLS = Number(process.env.BENCH_MAX_POOLS ?? 24);
const SAMPLE_POOLS = Number(process.env.BENCH_SAMPLE_POOLS ?? 12);
const STRATEGIES: Strategy[] = ['dedicated', 'single', 'sharded'];
/** Dedicated processes hold one bot: one inference worker is all they need (its cheapest set-up). */
const workersFor = (s: Strategy) => (s === 'dedicated' ? 1 : CORES);

type Heads = 'sized' | 'tiny';

/**
 * The pools' environment measured beside the shipped one at OVERHEAD_BOTS real-sized bots: glibc's
 * default malloc, without the fixed mmap threshold of PROCESS_ENV (runtime/src/node-options.ts says why
 * it is fixed). An undefined value removes the variable from the child's environment.
 */
const GLIBC_DEFAULT_ENV: Record<string, string | undefined> = { MALLOC_MMAP_THRESHOLD_: undefined };
const GLIBC_DEFAULT_LABEL = 'sized-glibc-default';
/** Rounds of that variant (0: not run). */
const VARIANT_ROUNDS = SMOKE ? 0 : Number(process.env.BENCH_VARIANT_ROUNDS ?? Math.min(ROUNDS, 2));
/** What each kind of head is, as the results and figures name it. */
const HEADS: Record<Heads, string> = {
  sized: 'real-sized heads (each as large as its bot declares, 2-8 MiB of real weights)',
  tiny: 'tiny demo heads (a few KiB, not their declared size)',
};

interface Run {
  processes: number;
  rssMiB: number;
  pssMiB: number;
  /** The sum of each process's peak RSS (VmHWM): what start-up took at its height. */
  peakRssMiB: number;
  /** First spawn to last ready, processes started at most CORES at a time. */
  wallMs: number;
  /** The slowest process's own time from spawn to ready (what a cluster starting every pod at once would wait). */
  slowestReadyMs: number;
  /** CPU time all processes used until each was ready, s: the work of starting, whatever the concurrency. */
  cpuSeconds: number;
  perProcessRssMiB: number[];
  /** Set when only a sample of the pools ran and the sums were scaled. */
  sampled?: { started: number; of: number };
}

interface Started {
  child: Child;
  cpuMs: number;
}

/** A catalog folder of `bots` bots planned with one strategy, and its pools. */
interface Setup {
  bots: number;
  dir: string;
  catalog: Catalog;
  pools: PoolPlan[];
}

/** Runs by "heads/bots/strategy". */
type Runs = Map<string, Run[]>;

/** The catalogs, written once each into the work folder. */
class Setups {
  private readonly made = new Map<string, Setup>();
  constructor(private readonly work: string) {}

  get(bots: number, strategy: Strategy): Setup {
    const key = `${bots}/${strategy}`;
    let s = this.made.get(key);
    if (!s) {
      const catalog = parseCatalog(fleetCatalog({ bots, strategy }));
      const dir = path.join(this.work, `catalog-${bots}-${strategy}`);
      writeCatalogFolder(dir, catalog);
      s = { bots, dir, catalog, pools: plan(catalog).pools };
      this.made.set(key, s);
    }
    return s;
  }
}

/** The pools that run for real: all, or beyond MAX_POOLS an evenly spread sample of SAMPLE_POOLS. */
function sampleOf(pools: PoolPlan[]): PoolPlan[] {
  if (pools.length <= MAX_POOLS) return pools;
  return Array.from({ length: SAMPLE_POOLS }, (_, i) => pools[Math.floor((i * pools.length) / SAMPLE_POOLS)]);
}

/** Starts pools at most CORES at a time; returns them with the CPU each used until ready. */
async function startMany(catalogDir: string, models: string, pools: string[], strategy: Strategy, into: Started[], env?: Record<string, string | undefined>): Promise<number> {
  const t0 = performance.now();
  await mapLimit(pools, CORES, async (pool) => {
    const child = await startPool({ pool, catalog: catalogDir, models, workers: workersFor(strategy), env });
    into.push({ child, cpuMs: 0 });
    into[into.length - 1].cpuMs = cpuMsOf(child.pid);
  });
  return performance.now() - t0;
}

function measure(started: Started[], wallMs: number): Run {
  const rss = started.map((s) => rssOf(s.child.pid));
  const pss = started.map((s) => pssOf(s.child.pid));
  return {
    processes: started.length,
    rssMiB: round(rss.reduce((a, b) => a + b, 0) / MiB),
    pssMiB: round(pss.reduce((a, b) => a + b, 0) / MiB),
    peakRssMiB: round(started.reduce((a, s) => a + peakRssOf(s.child.pid), 0) / MiB),
    wallMs: Math.round(wallMs),
    slowestReadyMs: Math.round(Math.max(...started.map((s) => s.child.readyMs))),
    cpuSeconds: round(started.reduce((a, s) => a + s.cpuMs, 0) / 1000, 2),
    perProcessRssMiB: rss.map((r) => round(r / MiB)),
  };
}

/**
 * Runs an approach's pools for real. Beyond MAX_POOLS processes (sharded at 10,000 bots: about 90), an
 * evenly spread sample of SAMPLE_POOLS of them runs, each loading exactly its own bots from the full
 * catalog as it would in a cluster, and the sums (memory, CPU, wall time) are scaled by pools / sample.
 */
async function runApproach(setup: Setup, models: string, strategy: Strategy, env?: Record<string, string | undefined>): Promise<Run> {
  const started: Started[] = [];
  const chosen = sampleOf(setup.pools);
  try {
    const wallMs = await startMany(setup.dir, models, chosen.map((p) => p.name), strategy, started, env);
    await sleep(SETTLE_MS);
    const run = measure(started, wallMs);
    if (chosen.length === setup.pools.length) return run;
    const k = setup.pools.length / chosen.length;
    return {
      ...run,
      processes: setup.pools.length,
      rssMiB: round(run.rssMiB * k),
      pssMiB: round(run.pssMiB * k),
      peakRssMiB: round(run.peakRssMiB * k),
      wallMs: Math.round(run.wallMs * k),
      cpuSeconds: round(run.cpuSeconds * k, 2),
      sampled: { started: chosen.length, of: setup.pools.length },
    };
  } finally {
    await stopAll(started.map((s) => s.child));
  }
}

/**
 * Dedicated for every small size in one go: a dedicated process holds its one bot whatever the others,
 * so the deployment of the first 50 bots is that of the first 25 plus 25 more processes. Start them in
 * batches up to each size and measure at each (the wall time excludes the pauses to measure).
 */
async function runDedicated(setup: Setup, models: string, sizes: number[]): Promise<Map<number, Run>> {
  const started: Started[] = [];
  const out = new Map<number, Run>();
  const pools = setup.pools.map((p) => p.name);
  try {
    let wallMs = 0;
    let from = 0;
    for (const n of sizes) {
      wallMs += await startMany(setup.dir, models, pools.slice(from, n), 'dedicated', started);
      from = n;
      await sleep(SETTLE_MS);
      out.set(n, measure(started, wallMs));
    }
    return out;
  } finally {
    await stopAll(started.map((s) => s.child));
  }
}

interface Cell {
  bots: number;
  strategy: Strategy;
  measured: boolean;
  processes: number;
  rssMiB: Spread;
  pssMiB?: Spread;
  peakRssMiB?: Spread;
  wallMs?: Spread;
  slowestReadyMs?: Spread;
  cpuSeconds?: Spread;
  /** Median RSS of one process across all runs. */
  perProcessRssMiB?: Spread;
  sampled?: { started: number; of: number };
  note?: string;
}

function summarize(bots: number, strategy: Strategy, runs: Run[]): Cell {
  return {
    bots,
    strategy,
    measured: true,
    processes: runs[0].processes,
    rssMiB: spread(runs.map((r) => r.rssMiB)),
    pssMiB: spread(runs.map((r) => r.pssMiB)),
    peakRssMiB: spread(runs.map((r) => r.peakRssMiB)),
    wallMs: spread(runs.map((r) => r.wallMs), 0),
    cpuSeconds: spread(runs.map((r) => r.cpuSeconds), 2),
    slowestReadyMs: spread(runs.map((r) => r.slowestReadyMs), 0),
    perProcessRssMiB: spread(runs.flatMap((r) => r.perProcessRssMiB)),
    ...(runs[0].sampled ? { sampled: runs[0].sampled, note: `${runs[0].sampled.started} of ${runs[0].sampled.of} pools started for real; memory, CPU and wall time scaled by ${runs[0].sampled.of} / ${runs[0].sampled.started}` } : {}),
  };
}

/** Adds a run to `runs` (under its kind of head, or a variant's label) and logs it. */
function record(runs: Runs, label: string, bots: number, strategy: Strategy, run: Run): void {
  const key = `${label}/${bots}/${strategy}`;
  runs.set(key, [...(runs.get(key) ?? []), run]);
  log(`${label}, ${bots} bots ${strategy}: ${run.processes} processes, RSS ${run.rssMiB} MiB, all ready in ${run.wallMs} ms (slowest ${run.slowestReadyMs} ms, ${run.cpuSeconds} CPU s)`);
}

/** Single and sharded at `bots`, `rounds` rounds, alternating which goes first (sharded first in odd rounds, counted from `first`). */
async function runPair(setups: Setups, runs: Runs, label: string, models: string, bots: number, rounds: number, first = 0, env?: Record<string, string | undefined>): Promise<void> {
  for (let r = first; r < first + rounds; r++) {
    for (const strategy of (r % 2 ? ['sharded', 'single'] : ['single', 'sharded']) as Strategy[]) {
      record(runs, label, bots, strategy, await runApproach(setups.get(bots, strategy), models, strategy, env));
    }
  }
}

/** Rounds at a size: fewer where the sharded fleet is sampled (about a minute a round). */
const roundsAt = (setups: Setups, bots: number) => (setups.get(bots, 'sharded').pools.length > MAX_POOLS ? Math.min(ROUNDS, LARGEST_ROUNDS) : ROUNDS);

/** The small sizes (all three approaches) then the `large` ones (single and sharded), with one kind of head. */
async function runSizes(setups: Setups, runs: Runs, heads: Heads, models: string, large: number[]): Promise<void> {
  const dedicated = setups.get(Math.max(...SMALL), 'dedicated');
  for (let r = 0; r < ROUNDS; r++) {
    // Small sizes: single and sharded alternate; the dedicated fleet (all small sizes in one go) goes first in
    // even rounds and last in odd ones, so no approach always meets the machine in the same state.
    const others = async () => {
      for (const bots of SMALL) await runPair(setups, runs, heads, models, bots, 1, r);
    };
    const ded = async () => {
      if (r >= DEDICATED_ROUNDS) return;
      const sizes = r < DEDICATED_FULL_ROUNDS || SMALL.length === 1 ? SMALL : SMALL.slice(0, -1);
      for (const [bots, run] of await runDedicated(dedicated, models, sizes)) record(runs, heads, bots, 'dedicated', run);
    };
    if (r % 2) {
      await others();
      await ded();
    } else {
      await ded();
      await others();
    }
  }
  for (const bots of large) await runPair(setups, runs, heads, models, bots, roundsAt(setups, bots));
}

/** The base memory of an idle pool process, with 1 and 2 workers: a pool name that holds no bot, so it loads nothing. */
async function measureBase(setup: Setup, models: string): Promise<Record<string, Spread>> {
  const rss: Record<string, number[]> = { '1': [], '2': [] };
  const pss: Record<string, number[]> = { '1': [], '2': [] };
  const idleCpu: Record<string, number[]> = { '1': [], '2': [] };
  const ready: number[] = [];
  for (let r = 0; r < (SMOKE ? 1 : Math.max(3, ROUNDS)); r++) {
    for (const workers of r % 2 ? [2, 1] : [1, 2]) {
      const c = await startPool({ pool: 'idle-pool', catalog: setup.dir, models, workers });
      try {
        await sleep(SETTLE_MS);
        rss[workers].push(rssOf(c.pid) / MiB);
        pss[workers].push(pssOf(c.pid) / MiB);
        ready.push(c.readyMs);
        const cpu0 = cpuMsOf(c.pid);
        await sleep(IDLE_MS);
        idleCpu[workers].push(((cpuMsOf(c.pid) - cpu0) / IDLE_MS) * 1000);
      } finally {
        await stopAll([c]);
      }
    }
  }
  const base = {
    rssMiB1Worker: spread(rss['1']),
    rssMiB2Workers: spread(rss['2']),
    pssMiB1Worker: spread(pss['1']),
    readyMs: spread(ready, 0),
    idleCpuMsPerSecond1Worker: spread(idleCpu['1']),
    idleCpuMsPerSecond2Workers: spread(idleCpu['2']),
  };
  log(`idle pool: ${fmt(base.rssMiB1Worker, ' MiB')} with 1 worker, ${fmt(base.rssMiB2Workers, ' MiB')} with 2`);
  return base;
}

/** Writes the real-sized demo models of the `bots` of a catalog (every encoder, each head at its declared size). */
function writeSized(models: string, catalog: Catalog, bots?: readonly string[]): void {
  const t0 = Date.now();
  const ids = bots && new Set(bots);
  const r = writeDemoModels({ ...catalog, bots: ids ? catalog.bots.filter((b) => ids.has(b.id)) : catalog.bots }, models, { sized: true });
  log(`real-sized models: ${r.written.length} written, ${r.unchanged.length} already there, in ${Math.round((Date.now() - t0) / 1000)} s`);
}

/** How the largest count one process holds with real-sized heads was chosen. */
interface LargestSingle {
  bots: number;
  how: string;
  /** Bytes per real-sized bot measured at OVERHEAD_BOTS: single's RSS less an idle pool's, per bot, MiB. */
  perBotMiB: Spread;
  /** What a sharded pool takes beside its bots' bytes, measured at OVERHEAD_BOTS (the most over the runs), MiB. */
  perPoolMiB: number;
  singleBudgetMiB: number;
  fleetCapMiB: number;
  /** MemAvailable when it was chosen, and what was left to the machine's other work. */
  availableMiB: number;
  reserveMiB: number;
  predictedSingleMiB: number;
  predictedShardedMiB: number;
}

/**
 * The largest bot count one process holds on this machine with real-sized heads, as this benchmark may
 * run it: grown by 100 from OVERHEAD_BOTS while the single process (an idle pool plus the bytes per bot
 * measured at OVERHEAD_BOTS) stays within SINGLE_BUDGET_GIB, and its sharded fleet (the same bots plus
 * what each pool took beside its bots at OVERHEAD_BOTS) within FLEET_CAP_GIB and what the machine has
 * available less RESERVE_GIB.
 */
function largestSingle(setups: Setups, runs: Runs, idleMiB: number): LargestSingle | undefined {
  const [single, sharded] = [runs.get(`sized/${OVERHEAD_BOTS}/single`), runs.get(`sized/${OVERHEAD_BOTS}/sharded`)];
  if (!single || !sharded) return undefined;
  const perBot = spread(single.map((r) => (r.rssMiB - idleMiB) / OVERHEAD_BOTS), 3);
  const pools1k = setups.get(OVERHEAD_BOTS, 'sharded').pools.length;
  const perPoolMiB = round(Math.max(...sharded.map((r) => (r.rssMiB - OVERHEAD_BOTS * perBot.min) / pools1k)));
  const singleBudgetMiB = SINGLE_BUDGET_GIB * 1024;
  const fleetCapMiB = FLEET_CAP_GIB * 1024;
  const availableMiB = round(memAvailable() / MiB, 0);
  const reserveMiB = RESERVE_GIB * 1024;
  const predict = (bots: number) => {
    const pools = plan(parseCatalog(fleetCatalog({ bots }))).pools.length;
    return { single: idleMiB + bots * perBot.max, sharded: bots * perBot.max + pools * perPoolMiB };
  };
  const fits = (bots: number) => {
    const p = predict(bots);
    return p.single <= singleBudgetMiB && p.sharded <= Math.min(fleetCapMiB, availableMiB - reserveMiB);
  };
  let bots = OVERHEAD_BOTS;
  while (fits(bots + 100)) bots += 100;
  const p = predict(bots);
  const how =
    `the largest multiple of 100 bots whose single process (an idle pool process, ${round(idleMiB)} MiB, plus ${perBot.max} MiB per bot: the most measured at ${OVERHEAD_BOTS} bots) stays within ${SINGLE_BUDGET_GIB} GiB (about half of this machine's memory), ` +
    `and whose sharded fleet (the same bots plus ${perPoolMiB} MiB per pool, what each pool took beside its bots at ${OVERHEAD_BOTS}) within ${FLEET_CAP_GIB} GiB (this benchmark's ceiling) and the ${round(availableMiB / 1024)} GiB then available less ${RESERVE_GIB} GiB left to other work`;
  log(`largest single with real-sized heads: ${bots} bots (predicted ${round(p.single)} MiB single, ${round(p.sharded)} MiB sharded)`);
  return { bots, how, perBotMiB: perBot, perPoolMiB, singleBudgetMiB, fleetCapMiB, availableMiB, reserveMiB, predictedSingleMiB: round(p.single), predictedShardedMiB: round(p.sharded) };
}

/** One kind of head's (or variant's) cells: each size and approach that ran, ascending. */
function cellsOf(runs: Runs, label: string): Cell[] {
  const sizes = [...new Set([...runs.keys()].filter((k) => k.startsWith(`${label}/`)).map((k) => Number(k.split('/')[1])))].sort((a, b) => a - b);
  return sizes.flatMap((bots) => STRATEGIES.flatMap((s) => (runs.has(`${label}/${bots}/${s}`) ? [summarize(bots, s, runs.get(`${label}/${bots}/${s}`)!)] : [])));
}

/**
 * Cells beyond what ran: dedicated at every size above its largest measured one (its RSS per process times
 * the bots), and single where only sharded ran (an idle pool plus the bytes per bot measured, `perBotMiB`).
 */
function extrapolated(cells: Cell[], idleMiB: number, perBotMiB?: Spread): Cell[] {
  const sizes = [...new Set(cells.map((c) => c.bots))];
  const out: Cell[] = [];
  const dedicatedReal = cells.filter((c) => c.strategy === 'dedicated').sort((a, b) => b.bots - a.bots)[0];
  for (const bots of sizes.filter((b) => dedicatedReal && b > dedicatedReal.bots)) {
    const per = dedicatedReal.perProcessRssMiB!;
    const rssMiB = { median: round(per.median * bots), min: round(per.min * bots), max: round(per.max * bots), runs: per.runs };
    out.push({ bots, strategy: 'dedicated', measured: false, processes: bots, rssMiB, note: `extrapolated: ${bots} x the RSS of one dedicated process measured at ${dedicatedReal.bots} bots` });
  }
  for (const bots of sizes.filter((b) => perBotMiB && !cells.some((c) => c.bots === b && c.strategy === 'single'))) {
    const at = (x: number) => round(idleMiB + bots * x);
    const rssMiB = { median: at(perBotMiB!.median), min: at(perBotMiB!.min), max: at(perBotMiB!.max), runs: perBotMiB!.runs };
    const beyond = rssMiB.median * MiB > os.totalmem() ? `more than this machine's ${round(os.totalmem() / 2 ** 30)} GiB` : `beyond this benchmark's share of this machine (${SINGLE_BUDGET_GIB} GiB)`;
    out.push({ bots, strategy: 'single', measured: false, processes: 1, rssMiB, note: `extrapolated, not run: an idle pool process plus ${bots} x the bytes per bot measured at ${OVERHEAD_BOTS} bots, ${beyond}` });
  }
  return out;
}

function ratiosOf(cells: Cell[]) {
  const cell = (bots: number, s: Strategy) => cells.find((c) => c.bots === bots && c.strategy === s);
  return [...new Set(cells.map((c) => c.bots))].map((bots) => {
    const [d, sh, si] = [cell(bots, 'dedicated'), cell(bots, 'sharded'), cell(bots, 'single')];
    return {
      bots,
      dedicatedOverSharded: d && sh ? round(d.rssMiB.median / sh.rssMiB.median, 1) : undefined,
      shardedOverSingle: si && sh ? round(sh.rssMiB.median / si.rssMiB.median, 2) : undefined,
      dedicatedMeasured: d?.measured ?? false,
      singleMeasured: si?.measured ?? false,
    };
  });
}

/** The overhead of sharding at OVERHEAD_BOTS real-sized bots, and what the bots' models take against their files. */
interface Overhead {
  bots: number;
  singleRssMiB: number;
  shardedRssMiB: number;
  /** Peak RSS (the sum of each process's VmHWM): start-up at its height, before the memory reducer. */
  singlePeakRssMiB?: number;
  shardedPeakRssMiB?: number;
  pools: number;
  /** An idle pool process with as many workers as single and sharded have. */
  idlePoolRssMiB: number;
  /** The bots' own bytes: single's RSS less an idle pool's. */
  botsMeasuredMiB: number;
  /** Their files: each head, each encoder once; and what the catalog declares for them. */
  headFilesMiB: number;
  encoderFilesMiB: number;
  declaredHeadsMiB: number;
  /** RSS the loaded models take over their files' bytes. */
  loadedOverFileBytes: number;
  /** Encoder sessions: over all sharded pools (each loads the encoders its bots use) and in single (each once). */
  encoderCopies: { sharded: number; single: number };
  /** (sharded - bots' measured bytes) / bots' measured bytes x 100. */
  pct: number;
}

function overheadOf(cells: Cell[], base: Record<string, Spread>, setups: Setups, models: string): Overhead | undefined {
  const cell = (s: Strategy) => cells.find((c) => c.bots === OVERHEAD_BOTS && c.strategy === s && c.measured);
  const [single, sharded] = [cell('single'), cell('sharded')];
  if (!single || !sharded) return undefined;
  const setup = setups.get(OVERHEAD_BOTS, 'sharded');
  const idle = base.rssMiB2Workers.median;
  const botsMiB = single.rssMiB.median - idle;
  const size = (file: string) => fs.statSync(path.join(models, file)).size / MiB;
  const headFilesMiB = setup.catalog.bots.reduce((n, b) => n + size(b.model.head), 0);
  const encoders = [...new Set(setup.pools.flatMap((p) => p.encoders))];
  const encoderFilesMiB = encoders.reduce((n, id) => n + size(setup.catalog.encoders.find((e) => e.id === id)!.path), 0);
  return {
    bots: OVERHEAD_BOTS,
    singleRssMiB: single.rssMiB.median,
    shardedRssMiB: sharded.rssMiB.median,
    singlePeakRssMiB: single.peakRssMiB?.median,
    shardedPeakRssMiB: sharded.peakRssMiB?.median,
    pools: setup.pools.length,
    idlePoolRssMiB: idle,
    botsMeasuredMiB: round(botsMiB),
    headFilesMiB: round(headFilesMiB),
    encoderFilesMiB: round(encoderFilesMiB),
    declaredHeadsMiB: round(setup.catalog.bots.reduce((n, b) => n + b.model.memory, 0) / MiB),
    loadedOverFileBytes: round(botsMiB / (headFilesMiB + encoderFilesMiB), 2),
    encoderCopies: { sharded: setup.pools.reduce((n, p) => n + p.encoders.length, 0), single: encoders.length },
    pct: round((100 * (sharded.rssMiB.median - botsMiB)) / botsMiB),
  };
}

/**
 * What a request costs on each kind of head: a single process of the largest small size, one request in
 * flight at a time over its bots (so the latency is the request's own), and the pool's CPU per request;
 * the kinds alternate over two rounds.
 */
async function requestCost(setups: Setups, models: Record<Heads, string>): Promise<Record<string, unknown>> {
  const setup = setups.get(Math.max(...SMALL), 'single');
  const bots = setup.catalog.bots.map((b) => b.id);
  const seen: Record<string, { p50: number[]; p99: number[]; cpuUs: number[]; requests: number; errors: number }> = {};
  for (let r = 0; r < (SMOKE ? 1 : 2); r++) {
    for (const heads of r % 2 ? [...KINDS].reverse() : KINDS) {
      const child = await startPool({ pool: setup.pools[0].name, catalog: setup.dir, models: models[heads], workers: CORES });
      try {
        await predictLoad(() => child.url, bots, Math.min(1, REQUEST_SECONDS), 1); // every head run once
        const cpu0 = cpuMsOf(child.pid);
        const x = await predictLoad(() => child.url, bots, REQUEST_SECONDS, 1);
        const s = (seen[heads] ??= { p50: [], p99: [], cpuUs: [], requests: 0, errors: 0 });
        s.p50.push(x.p50);
        s.p99.push(x.p99);
        s.cpuUs.push(((cpuMsOf(child.pid) - cpu0) * 1000) / Math.max(1, x.requests));
        s.requests += x.requests;
        s.errors += x.errors;
        log(`${heads} heads: a request ${round(x.p50, 2)} ms at p50, ${x.requests} requests`);
      } finally {
        await stopAll([child]);
      }
    }
  }
  return Object.fromEntries(Object.entries(seen).map(([k, s]) => [k, { bots: setup.bots, p50Ms: spread(s.p50, 2), p99Ms: spread(s.p99, 2), poolCpuUsPerRequest: spread(s.cpuUs, 0), requests: s.requests, errors: s.errors }]));
}

/** Real-sized heads: the small and large sizes, the largest single and its sharded fleet, then sharded at SIZED_FLEET (sampled). */
async function runSized(setups: Setups, runs: Runs, models: string, idleMiB: number): Promise<LargestSingle | undefined> {
  await runSizes(setups, runs, 'sized', models, SIZED_LARGE);
  if (VARIANT_ROUNDS > 0 && SIZED_LARGE.includes(OVERHEAD_BOTS)) await runPair(setups, runs, GLIBC_DEFAULT_LABEL, models, OVERHEAD_BOTS, VARIANT_ROUNDS, 0, GLIBC_DEFAULT_ENV);
  const largest = largestSingle(setups, runs, idleMiB);
  if (largest && largest.bots > OVERHEAD_BOTS) {
    writeSized(models, setups.get(largest.bots, 'single').catalog);
    await runPair(setups, runs, 'sized', models, largest.bots, Number(process.env.BENCH_LARGEST_SINGLE_ROUNDS ?? Math.min(ROUNDS, 2)));
  }
  if (SIZED_FLEET > 0) {
    const setup = setups.get(SIZED_FLEET, 'sharded');
    writeSized(models, setup.catalog, sampleOf(setup.pools).flatMap((p) => p.bots));
    for (let r = 0; r < roundsAt(setups, SIZED_FLEET); r++) record(runs, 'sized', SIZED_FLEET, 'sharded', await runApproach(setup, models, 'sharded'));
  }
  return largest;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const work = tempDir('approaches');
  const setups = new Setups(work);
  const runs: Runs = new Map();
  const models: Record<Heads, string> = { sized: path.join(work, 'models-sized'), tiny: path.join(work, 'models-tiny') };
  let base: Record<string, Spread>;
  let largest: LargestSingle | undefined;
  let overhead: Overhead | undefined;
  let defaultOverhead: Overhead | undefined;
  let cost: Record<string, unknown>;
  try {
    if (KINDS.includes('tiny')) writeDemoModels(setups.get(Math.max(...SMALL, ...LARGE), 'single').catalog, models.tiny);
    if (KINDS.includes('sized')) writeSized(models.sized, setups.get(Math.max(...SMALL, ...SIZED_LARGE), 'single').catalog);
    log(`models and catalogs ready in ${Math.round((Date.now() - startedAt) / 1000)} s`);
    base = await measureBase(setups.get(SMALL[0], 'sharded'), models[KINDS[0]]);
    cost = await requestCost(setups, models);
    if (KINDS.includes('sized')) largest = await runSized(setups, runs, models.sized, base.rssMiB2Workers.median);
    if (KINDS.includes('tiny')) await runSizes(setups, runs, 'tiny', models.tiny, LARGE);
    if (KINDS.includes('sized')) overhead = overheadOf(cellsOf(runs, 'sized'), base, setups, models.sized);
    if (KINDS.includes('sized')) defaultOverhead = overheadOf(cellsOf(runs, GLIBC_DEFAULT_LABEL), base, setups, models.sized);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const idle = base.rssMiB2Workers.median;
  const sizedCells = cellsOf(runs, 'sized');
  const cells = [...sizedCells, ...extrapolated(sizedCells, idle, largest?.perBotMiB)];
  const tinyMeasured = cellsOf(runs, 'tiny');
  const tinyCells = [...tinyMeasured, ...extrapolated(tinyMeasured, idle)];
  const ratios = ratiosOf(cells);
  const tinyRatios = ratiosOf(tinyCells);
  const result = {
    benchmark: 'approaches',
    date: new Date().toISOString(),
    headline: { ...headlineOf(ratios, tinyRatios, largest, overhead), shardingOverheadPctGlibcDefault: defaultOverhead?.pct },
    machine: machine(),
    setup: setupOf(largest),
    baseProcess: base,
    requestCost: cost,
    largestSingle: largest,
    overhead,
    heads: HEADS.sized,
    cells,
    ratios,
    tinyHeads: { heads: HEADS.tiny, cells: tinyCells, ratios: tinyRatios },
    glibcDefault: defaultOverhead && { without: Object.keys(GLIBC_DEFAULT_ENV), heads: HEADS.sized, cells: cellsOf(runs, GLIBC_DEFAULT_LABEL), overhead: defaultOverhead },
    seconds: Math.round((Date.now() - startedAt) / 1000),
  };
  writeResult('approaches', result, markdown(result));
  log(`wrote approaches.json and approaches.md in ${result.seconds} s`);
}

type Ratio = ReturnType<typeof ratiosOf>[number];
const sizeName = (bots: number) => (bots >= 1000 && bots % 1000 === 0 ? `${bots / 1000}k` : String(bots));

/** The headline: real-sized comparisons first, then the tiny heads' (named so). */
function headlineOf(ratios: Ratio[], tiny: Ratio[], largest: LargestSingle | undefined, overhead: Overhead | undefined): Record<string, number | undefined> {
  const at = (rs: Ratio[], bots: number | undefined) => rs.find((r) => r.bots === bots);
  return {
    shardedOverSingleMemoryRealSized: at(ratios, largest?.bots)?.shardedOverSingle,
    largestSingleBotsRealSized: largest?.bots,
    shardingOverheadPct: overhead?.pct,
    dedicatedOverSharded1k: at(tiny, 1000)?.dedicatedOverSharded,
    dedicatedOverSharded1kRealSized: at(ratios, 1000)?.dedicatedOverSharded,
    shardedOverSingleMemory1kRealSized: at(ratios, 1000)?.shardedOverSingle,
    loadedModelsOverFileBytes: overhead?.loadedOverFileBytes,
    ...Object.fromEntries(tiny.flatMap((r) => (r.shardedOverSingle !== undefined ? [[`shardedOverSingleMemory${sizeName(r.bots)}TinyHeads`, r.shardedOverSingle]] : []))),
  };
}

function setupOf(largest: LargestSingle | undefined) {
  return {
    catalog: `bench/fleet.ts: one real-time group, 8 shared encoders (declared 48Mi), a head per bot (declared 2-8Mi), pools of ${POOL_MEMORY}, encoder locality; demo ONNX models: encoders of 4,096 x 64 (1 MiB, not their declared size), heads either real-sized or tiny`,
    kinds: KINDS,
    workers: { dedicated: 1, single: CORES, sharded: CORES },
    startConcurrency: CORES,
    settleMs: SETTLE_MS,
    rounds: ROUNDS,
    largestRounds: Math.min(ROUNDS, LARGEST_ROUNDS),
    dedicatedRounds: Math.min(ROUNDS, DEDICATED_ROUNDS),
    dedicatedFullRounds: Math.min(ROUNDS, DEDICATED_ROUNDS, DEDICATED_FULL_ROUNDS),
    dedicatedIncremental: true,
    small: SMALL,
    large: { tiny: LARGE, sized: [...SIZED_LARGE, ...(largest && largest.bots > OVERHEAD_BOTS ? [largest.bots] : []), ...(SIZED_FLEET ? [SIZED_FLEET] : [])] },
    overheadBots: OVERHEAD_BOTS,
    requestSeconds: REQUEST_SECONDS,
    maxPools: MAX_POOLS,
    samplePools: SAMPLE_POOLS,
    smoke: SMOKE,
  };
}

/** The variant with glibc's default malloc, in a sentence. */
function glibcDefaultText(v: { without: string[]; cells: Cell[]; overhead: Overhead }): string {
  const o = v.overhead;
  const ready = (s: Strategy) => v.cells.find((c) => c.bots === o.bots && c.strategy === s)?.slowestReadyMs;
  return (
    `**The same ${o.bots} bots with glibc's default malloc** (without \`${v.without.join(' ')}\` in the pools' environment: glibc's mmap threshold then rises to the largest block freed, so after the first model files the later ones' buffers come from the threads' heaps, and what is freed stays there): ` +
    `single ${o.singleRssMiB} MiB, sharded ${o.shardedRssMiB} MiB, the bots' own ${o.botsMeasuredMiB} MiB, overhead of sharding **${o.pct}%**; slowest process ready ${fmt(ready('single'), ' ms')} single, ${fmt(ready('sharded'), ' ms')} sharded.`
  );
}

function markdown(r: any): string {
  const row = (c: Cell) =>
    `| ${c.bots} | ${c.strategy} | ${c.processes}${c.sampled ? ` (${c.sampled.started} run, scaled)` : ''} | ${c.measured ? fmt(c.rssMiB) : `~${c.rssMiB.median} (extrapolated)`} | ${c.pssMiB ? fmt(c.pssMiB) : '-'} | ${c.wallMs ? fmt(c.wallMs) : '-'} | ${c.slowestReadyMs ? fmt(c.slowestReadyMs) : '-'} | ${c.cpuSeconds ? fmt(c.cpuSeconds) : '-'} | ${c.perProcessRssMiB ? fmt(c.perProcessRssMiB) : '-'} |`;
  const tables = (cells: Cell[], ratios: Ratio[]) => [
    '| bots | approach | processes | RSS sum MiB | PSS sum MiB | all ready, ms (wall) | slowest process ready, ms | CPU s to ready | RSS per process MiB |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
    ...cells.map(row),
    '',
    '| bots | dedicated / sharded memory | sharded / single memory |',
    '|---:|---:|---:|',
    ...ratios.map((x) => `| ${x.bots} | ${x.dedicatedOverSharded ?? '-'}x${x.dedicatedOverSharded !== undefined && !x.dedicatedMeasured ? ' (dedicated extrapolated)' : ''} | ${x.shardedOverSingle ?? '-'}x${x.shardedOverSingle !== undefined && !x.singleMeasured ? ' (single extrapolated)' : ''} |`),
    '',
  ];
  const b = r.baseProcess;
  const seed = anchors.seed.perInstanceMemoryMB;
  const l = r.largestSingle as LargestSingle | undefined;
  const o = r.overhead as Overhead | undefined;
  const cost = (k: Heads) => r.requestCost[k] && `${HEADS[k]}: ${fmt(r.requestCost[k].p50Ms, ' ms')} at p50 (p99 ${fmt(r.requestCost[k].p99Ms, ' ms')}), ${fmt(r.requestCost[k].poolCpuUsPerRequest, ' µs')} of pool CPU a request`;
  return [
    '# Approaches: memory and start-up',
    '',
    `${r.date}, ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Command: \`npm run bench:approaches\`; ${r.seconds} s.`,
    '',
    `Catalog: ${r.setup.catalog}. Every pool is a real \`botshard pool\` process on 127.0.0.1; dedicated processes run 1 inference worker (a one-bot process needs no more: its cheapest set-up), single and sharded ${r.setup.workers.single}. Processes start at most ${r.setup.startConcurrency} at a time (one per core); memory is read ${r.setup.settleMs} ms after the last is ready, once V8's memory reducer has given back the garbage of start-up (what a deployment holds between load waves); each process's peak (VmHWM, what a container's memory limit must hold at start-up) is summed beside it. Figures: median (min-max) over ${r.setup.rounds} rounds (dedicated: ${r.setup.dedicatedRounds}, of which ${r.setup.dedicatedFullRounds} up to ${Math.max(...r.setup.small)} bots; ${r.setup.largestRounds} where the sharded pools are sampled), the approaches alternating within each round. A dedicated process holds its one bot whatever the others, so each dedicated round starts the fleet once, in batches up to ${r.setup.small.join(', ')} processes, measuring at each (wall time without the pauses to measure).`,
    '',
    `**Base memory of one idle pool process** (Node + fastify + onnxruntime-node, no bots): ${fmt(b.rssMiB1Worker, ' MiB')} RSS with 1 inference worker, ${fmt(b.rssMiB2Workers, ' MiB')} with 2 (PSS with 1 worker: ${fmt(b.pssMiB1Worker, ' MiB')}); ready in ${fmt(b.readyMs, ' ms')}; idle, it uses ${fmt(b.idleCpuMsPerSecond1Worker, ' ms')} of CPU per second with 1 worker (${fmt(b.idleCpuMsPerSecond2Workers, ' ms')} with 2). Quoted, not measured here (bench/anchors.json): the seed's figures per instance, ${seed.tensorflow} MB (TensorFlow), ${seed.pytorch} MB (PyTorch).`,
    '',
    `**A request** (one in flight at a time over the ${Math.max(...r.setup.small)} bots of a single process): ${[cost('sized'), cost('tiny')].filter(Boolean).join('; ')}.`,
    '',
    `## ${HEADS.sized}`,
    '',
    'Each head is written at its declared size (`botshard models --sized`, `DemoModelOptions.sized`): a hidden layer Relu(e W1) W2 of real weights, multiplied at every request, that computes the same e W as the tiny head (same answers).',
    ...(l ? ['', `**Largest single process**: ${l.bots} bots, chosen as ${l.how}: predicted ${l.predictedSingleMiB} MiB single and ${l.predictedShardedMiB} MiB sharded.`] : []),
    ...(o
      ? [
          '',
          `**Overhead of sharding at ${o.bots} bots**: sharded ${o.shardedRssMiB} MiB in ${o.pools} pools against the bots' own ${o.botsMeasuredMiB} MiB (single's ${o.singleRssMiB} MiB less an idle pool process's ${o.idlePoolRssMiB} MiB): **${o.pct}%** (pool bases plus each pool's copy of the encoders its bots use: ${o.encoderCopies.sharded} encoder sessions against ${o.encoderCopies.single} in single). At their peak (VmHWM, start-up at its height) sharded took ${o.shardedPeakRssMiB} MiB and single ${o.singlePeakRssMiB} MiB. The bots' files: ${o.headFilesMiB} MiB of heads (declared ${o.declaredHeadsMiB} MiB) and ${o.encoderFilesMiB} MiB of encoders; loaded, they take ${o.loadedOverFileBytes}x their files' bytes (onnxruntime pre-packs MatMul weights for its kernels).`,
        ]
      : []),
    ...(r.glibcDefault ? ['', glibcDefaultText(r.glibcDefault)] : []),
    '',
    ...tables(r.cells, r.ratios),
    `## ${HEADS.tiny}`,
    '',
    'The same runs with heads of a few KiB: what the runtime itself costs per process and per bot.',
    '',
    ...tables(r.tinyHeads.cells, r.tinyHeads.ratios),
    'RSS counts each process as its own container would (shared library pages in every process); PSS divides pages shared between processes on this one machine among them.',
    '"All ready" is the wall time on this 2-core machine, where the processes take turns on the cores; "slowest process ready" is the longest time one process took from spawn to ready, which is what a cluster starting every pod at once on its own cores would wait.',
    '"CPU s to ready" sums the CPU time every process used from spawn to ready: the work of starting, whatever the concurrency.',
    `Beyond ${r.setup.maxPools} processes (sharded at 10,000 bots) an evenly spread sample of ${r.setup.samplePools} pools runs for real, each loading exactly its own bots from the full catalog as in a cluster, and the sums are scaled by pools / sample ("scaled" above; the slowest-process time is the sample's). Starting all of them takes longer than this benchmark's time budget on 2 cores.`,
    'Dedicated beyond the small sizes is extrapolated (its measured RSS per process times the bot count), not run: that many processes do not fit this machine. With real-sized heads, single beyond the largest count it holds here is extrapolated too.',
    'The encoders are 1 MiB demo encoders in both kinds (declared 48 MiB): the copies of an encoder in several pools cost 1 MiB each here.',
    '',
  ].join('\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
