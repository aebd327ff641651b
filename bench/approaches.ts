/**
 * npm run bench:approaches
 *
 * Memory and start-up of the three approaches on the same bots, each pool a real `botshard pool`
 * process on 127.0.0.1 with real ONNX models (bench/fleet.ts: 8 shared encoders, a head per bot):
 * - dedicated: one process per bot (plan() with strategy "dedicated"), 1 inference worker each;
 * - single: one process with every bot, a worker per core;
 * - sharded: the pools plan() sizes (about 100 bots each), a worker per core.
 * For 25 / 50 / 100 bots all three run for real; for 1,000 and 10,000 single and sharded run for real
 * and dedicated is extrapolated from its measured memory per process. Each figure: sum of RSS (and
 * PSS) of every process once all are ready, wall time from the first spawn to the last ready (processes
 * started at most CORES at a time) and the slowest process's own time to ready. Rounds alternate the
 * approaches so that drift on this shared machine hits all alike. Also: the base memory of an idle pool
 * process (no bots) with 1 and 2 workers. Writes bench/results/approaches.{json,md}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Strategy, parseCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import anchors from './anchors.json';
import { POOL_MEMORY, fleetCatalog } from './fleet';
import { CORES, Child, MiB, cpuMsOf, SMOKE, Spread, fmt, log, machine, mapLimit, pssOf, round, rssOf, sleep, spread, startPool, stopAll, tempDir, writeResult,  } from './processes';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 3));
const SMALL = SMOKE ? [5] : (process.env.BENCH_SMALL ?? '25,50,100').split(',').map(Number);
const LARGE = SMOKE ? [] : (process.env.BENCH_LARGE ?? '1000,10000').split(',').filter(Boolean).map(Number);
/** Rounds for the largest size (10,000 bots: about 90 processes and a minute a round). */
const LARGEST_ROUNDS = Number(process.env.BENCH_LARGEST_ROUNDS ?? 1);
/** Rounds of the dedicated fleet (100 processes, about two minutes a round on 2 cores). */
const DEDICATED_ROUNDS = Number(process.env.BENCH_DEDICATED_ROUNDS ?? (SMOKE ? 1 : 2));
/** Dedicated rounds that go up to the largest small size; the others stop at the size before it (time budget). */
const DEDICATED_FULL_ROUNDS = Number(process.env.BENCH_DEDICATED_FULL_ROUNDS ?? 1);
const SETTLE_MS = SMOKE ? 200 : 1000;
/** How long the idle pool's CPU use is watched. */
const IDLE_MS = SMOKE ? 200 : 1000;
/** More processes than this for one approach: run a sample of them (see runApproach). */
const MAX_POOLS = Number(process.env.BENCH_MAX_POOLS ?? 24);
const SAMPLE_POOLS = Number(process.env.BENCH_SAMPLE_POOLS ?? 12);
const STRATEGIES: Strategy[] = ['dedicated', 'single', 'sharded'];
/** Dedicated processes hold one bot: one inference worker is all they need (its cheapest set-up). */
const workersFor = (s: Strategy) => (s === 'dedicated' ? 1 : CORES);

interface Run {
  processes: number;
  rssMiB: number;
  pssMiB: number;
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

/** Starts pools at most CORES at a time; returns them with the CPU each used until ready. */
async function startMany(catalogDir: string, models: string, pools: string[], strategy: Strategy, into: Started[]): Promise<number> {
  const t0 = performance.now();
  await mapLimit(pools, CORES, async (pool) => {
    const child = await startPool({ pool, catalog: catalogDir, models, workers: workersFor(strategy) });
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
async function runApproach(catalogDir: string, models: string, pools: string[], strategy: Strategy): Promise<Run> {
  const started: Started[] = [];
  const sampled = pools.length > MAX_POOLS;
  const chosen = sampled ? Array.from({ length: SAMPLE_POOLS }, (_, i) => pools[Math.floor((i * pools.length) / SAMPLE_POOLS)]) : pools;
  try {
    const wallMs = await startMany(catalogDir, models, chosen, strategy, started);
    await sleep(SETTLE_MS);
    const run = measure(started, wallMs);
    if (!sampled) return run;
    const k = pools.length / chosen.length;
    return {
      ...run,
      processes: pools.length,
      rssMiB: round(run.rssMiB * k),
      pssMiB: round(run.pssMiB * k),
      wallMs: Math.round(run.wallMs * k),
      cpuSeconds: round(run.cpuSeconds * k, 2),
      sampled: { started: chosen.length, of: pools.length },
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
async function runDedicated(catalogDir: string, models: string, pools: string[], sizes: number[]): Promise<Map<number, Run>> {
  const started: Started[] = [];
  const out = new Map<number, Run>();
  try {
    let wallMs = 0;
    let from = 0;
    for (const n of sizes) {
      wallMs += await startMany(catalogDir, models, pools.slice(from, n), 'dedicated', started);
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
    wallMs: spread(runs.map((r) => r.wallMs), 0),
    cpuSeconds: spread(runs.map((r) => r.cpuSeconds), 2),
    slowestReadyMs: spread(runs.map((r) => r.slowestReadyMs), 0),
    perProcessRssMiB: spread(runs.flatMap((r) => r.perProcessRssMiB)),
    ...(runs[0].sampled ? { sampled: runs[0].sampled, note: `${runs[0].sampled.started} of ${runs[0].sampled.of} pools started for real; memory, CPU and wall time scaled by ${runs[0].sampled.of} / ${runs[0].sampled.started}` } : {}),
  };
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const work = tempDir('approaches');
  const sizes = [...SMALL, ...LARGE];
  const cells: Cell[] = [];
  const base: Record<string, Spread> = {};
  try {
    const largest = Math.max(...sizes);
    const models = path.join(work, 'models');
    writeDemoModels(parseCatalog(fleetCatalog({ bots: largest })), models);
    const setups = new Map<string, { dir: string; pools: string[] }>();
    for (const bots of sizes) {
      for (const strategy of STRATEGIES) {
        if (strategy === 'dedicated' && bots !== Math.max(...SMALL)) continue;
        const catalog = parseCatalog(fleetCatalog({ bots, strategy }));
        const dir = path.join(work, `catalog-${bots}-${strategy}`);
        writeCatalogFolder(dir, catalog);
        setups.set(`${bots}/${strategy}`, { dir, pools: plan(catalog).pools.map((p) => p.name) });
      }
    }
    log(`models and catalogs ready in ${Math.round((Date.now() - startedAt) / 1000)} s`);

    // Base memory of an idle pool process: a pool name that holds no bot, so it loads nothing.
    const baseRuns: Record<string, number[]> = { '1': [], '2': [] };
    const basePss: Record<string, number[]> = { '1': [], '2': [] };
    const baseReady: number[] = [];
    const baseIdleCpu: Record<string, number[]> = { '1': [], '2': [] };
    const anyDir = setups.get(`${SMALL[0]}/sharded`)!.dir;
    for (let r = 0; r < (SMOKE ? 1 : Math.max(3, ROUNDS)); r++) {
      for (const workers of r % 2 ? [2, 1] : [1, 2]) {
        const c = await startPool({ pool: 'idle-pool', catalog: anyDir, models, workers });
        try {
          await sleep(SETTLE_MS);
          baseRuns[workers].push(rssOf(c.pid) / MiB);
          basePss[workers].push(pssOf(c.pid) / MiB);
          baseReady.push(c.readyMs);
          const cpu0 = cpuMsOf(c.pid);
          await sleep(IDLE_MS);
          baseIdleCpu[workers].push(((cpuMsOf(c.pid) - cpu0) / IDLE_MS) * 1000);
        } finally {
          await stopAll([c]);
        }
      }
    }
    base.rssMiB1Worker = spread(baseRuns['1']);
    base.rssMiB2Workers = spread(baseRuns['2']);
    base.pssMiB1Worker = spread(basePss['1']);
    base.readyMs = spread(baseReady, 0);
    base.idleCpuMsPerSecond1Worker = spread(baseIdleCpu['1']);
    base.idleCpuMsPerSecond2Workers = spread(baseIdleCpu['2']);
    log(`idle pool: ${fmt(base.rssMiB1Worker, ' MiB')} with 1 worker, ${fmt(base.rssMiB2Workers, ' MiB')} with 2`);

    const runs = new Map<string, Run[]>();
    const record = (bots: number, strategy: Strategy, run: Run) => {
      const key = `${bots}/${strategy}`;
      runs.set(key, [...(runs.get(key) ?? []), run]);
      log(`${bots} bots ${strategy}: ${run.processes} processes, RSS ${run.rssMiB} MiB, all ready in ${run.wallMs} ms (slowest ${run.slowestReadyMs} ms, ${run.cpuSeconds} CPU s)`);
    };
    const dedicated = setups.get(`${Math.max(...SMALL)}/dedicated`)!;
    for (let r = 0; r < ROUNDS; r++) {
      // Small sizes: single and sharded alternate; the dedicated fleet (all small sizes in one go) goes first in
      // even rounds and last in odd ones, so no approach always meets the machine in the same state.
      const others = async () => {
        for (const bots of SMALL) {
          for (const strategy of (r % 2 ? ['sharded', 'single'] : ['single', 'sharded']) as Strategy[]) {
            const setup = setups.get(`${bots}/${strategy}`)!;
            record(bots, strategy, await runApproach(setup.dir, models, setup.pools, strategy));
          }
        }
      };
      const ded = async () => {
        if (r >= DEDICATED_ROUNDS) return;
        const sizes = r < DEDICATED_FULL_ROUNDS || SMALL.length === 1 ? SMALL : SMALL.slice(0, -1);
        for (const [bots, run] of await runDedicated(dedicated.dir, models, dedicated.pools, sizes)) record(bots, 'dedicated', run);
      };
      if (r % 2) {
        await others();
        await ded();
      } else {
        await ded();
        await others();
      }
    }
    for (const bots of LARGE) {
      const rounds = bots === Math.max(...LARGE) ? Math.min(ROUNDS, LARGEST_ROUNDS) : ROUNDS;
      for (let r = 0; r < rounds; r++) {
        for (const strategy of (r % 2 ? ['sharded', 'single'] : ['single', 'sharded']) as Strategy[]) {
          const setup = setups.get(`${bots}/${strategy}`)!;
          record(bots, strategy, await runApproach(setup.dir, models, setup.pools, strategy));
        }
      }
    }
    for (const bots of sizes) for (const s of STRATEGIES) if (runs.has(`${bots}/${s}`)) cells.push(summarize(bots, s, runs.get(`${bots}/${s}`)!));

    // Dedicated beyond what runs for real: its measured memory per process (at the largest real size) times the bot count.
    const dedicatedReal = cells.filter((c) => c.strategy === 'dedicated').sort((a, b) => b.bots - a.bots)[0];
    for (const bots of LARGE) {
      const per = dedicatedReal.perProcessRssMiB!;
      cells.push({
        bots,
        strategy: 'dedicated',
        measured: false,
        processes: bots,
        rssMiB: { median: round(per.median * bots), min: round(per.min * bots), max: round(per.max * bots), runs: per.runs },
        note: `extrapolated: ${bots} x the RSS of one dedicated process measured at ${dedicatedReal.bots} bots`,
      });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }

  const cell = (bots: number, s: Strategy) => cells.find((c) => c.bots === bots && c.strategy === s);
  const ratios = [...SMALL, ...LARGE].map((bots) => {
    const d = cell(bots, 'dedicated');
    const sh = cell(bots, 'sharded');
    const si = cell(bots, 'single');
    return {
      bots,
      dedicatedOverSharded: d && sh ? round(d.rssMiB.median / sh.rssMiB.median, 1) : undefined,
      shardedOverSingle: si && sh ? round(sh.rssMiB.median / si.rssMiB.median, 2) : undefined,
      dedicatedMeasured: d?.measured ?? false,
    };
  });
  const sizeName = (bots: number) => (bots >= 1000 ? `${bots / 1000}k` : String(bots));
  const headline = Object.fromEntries(ratios.flatMap((r) => (r.shardedOverSingle !== undefined ? [[`shardedOverSingleMemory${sizeName(r.bots)}`, r.shardedOverSingle]] : [])));
  const result = {
    benchmark: 'approaches',
    date: new Date().toISOString(),
    headline,
    machine: machine(),
    setup: {
      catalog: 'bench/fleet.ts: one real-time group, 8 shared encoders (declared 48Mi), a head per bot (declared 2-8Mi), pools of ' + POOL_MEMORY + ', encoder locality; demo ONNX models (encoder 4,096 x 64, heads of a few KiB)',
      workers: { dedicated: 1, single: CORES, sharded: CORES },
      startConcurrency: CORES,
      settleMs: SETTLE_MS,
      rounds: ROUNDS,
      largestRounds: LARGE.length ? Math.min(ROUNDS, LARGEST_ROUNDS) : undefined,
      dedicatedRounds: Math.min(ROUNDS, DEDICATED_ROUNDS),
      dedicatedFullRounds: Math.min(ROUNDS, DEDICATED_ROUNDS, DEDICATED_FULL_ROUNDS),
      dedicatedIncremental: true,
      small: SMALL,
      large: LARGE,
      maxPools: MAX_POOLS,
      samplePools: SAMPLE_POOLS,
      smoke: SMOKE,
    },
    baseProcess: base,
    cells,
    ratios,
    seconds: Math.round((Date.now() - startedAt) / 1000),
  };
  writeResult('approaches', result, markdown(result));
  log(`wrote approaches.json and approaches.md in ${result.seconds} s`);
}

function markdown(r: any): string {
  const rows = r.cells.map(
    (c: Cell) =>
      `| ${c.bots} | ${c.strategy} | ${c.processes}${c.sampled ? ` (${c.sampled.started} run, scaled)` : ''} | ${c.measured ? fmt(c.rssMiB) : `~${c.rssMiB.median} (extrapolated)`} | ${c.pssMiB ? fmt(c.pssMiB) : '-'} | ${c.wallMs ? fmt(c.wallMs) : '-'} | ${c.slowestReadyMs ? fmt(c.slowestReadyMs) : '-'} | ${c.cpuSeconds ? fmt(c.cpuSeconds) : '-'} | ${c.perProcessRssMiB ? fmt(c.perProcessRssMiB) : '-'} |`,
  );
  const b = r.baseProcess;
  const seed = anchors.seed.perInstanceMemoryMB;
  return [
    '# Approaches: memory and start-up',
    '',
    `${r.date}, ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Command: \`npm run bench:approaches\`; ${r.seconds} s.`,
    '',
    `Catalog: ${r.setup.catalog}. Every pool is a real \`botshard pool\` process on 127.0.0.1; dedicated processes run 1 inference worker (a one-bot process needs no more: its cheapest set-up), single and sharded ${r.setup.workers.single}. Processes start at most ${r.setup.startConcurrency} at a time (one per core); memory is read ${r.setup.settleMs} ms after the last is ready (near the start-up peak, which a container's memory limit must hold; a pool idle for minutes can sit lower, as garbage from loading the catalog is collected). Figures: median (min-max) over ${r.setup.rounds} rounds (dedicated: ${r.setup.dedicatedRounds}, of which ${r.setup.dedicatedFullRounds} up to ${Math.max(...r.setup.small)} bots${r.setup.largestRounds ? `; ${r.setup.largestRounds} for the largest size` : ''}), the approaches alternating within each round. A dedicated process holds its one bot whatever the others, so each dedicated round starts the fleet once, in batches up to ${r.setup.small.join(', ')} processes, measuring at each (wall time without the pauses to measure).`,
    '',
    `**Base memory of one idle pool process** (Node + fastify + onnxruntime-node, no bots): ${fmt(b.rssMiB1Worker, ' MiB')} RSS with 1 inference worker, ${fmt(b.rssMiB2Workers, ' MiB')} with 2 (PSS with 1 worker: ${fmt(b.pssMiB1Worker, ' MiB')}); ready in ${fmt(b.readyMs, ' ms')}; idle, it uses ${fmt(b.idleCpuMsPerSecond1Worker, ' ms')} of CPU per second with 1 worker (${fmt(b.idleCpuMsPerSecond2Workers, ' ms')} with 2). Quoted, not measured here (bench/anchors.json): the seed's figures per instance, ${seed.tensorflow} MB (TensorFlow), ${seed.pytorch} MB (PyTorch).`,
    '',
    '| bots | approach | processes | RSS sum MiB | PSS sum MiB | all ready, ms (wall) | slowest process ready, ms | CPU s to ready | RSS per process MiB |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    '| bots | dedicated / sharded memory | sharded / single memory |',
    '|---:|---:|---:|',
    ...r.ratios.map((x: any) => `| ${x.bots} | ${x.dedicatedOverSharded ?? '-'}x${x.dedicatedMeasured ? '' : ' (dedicated extrapolated)'} | ${x.shardedOverSingle ?? '-'}x |`),
    '',
    'RSS counts each process as its own container would (shared library pages in every process); PSS divides pages shared between processes on this one machine among them.',
    '"All ready" is the wall time on this 2-core machine, where the processes take turns on the cores; "slowest process ready" is the longest time one process took from spawn to ready, which is what a cluster starting every pod at once on its own cores would wait.',
    '"CPU s to ready" sums the CPU time every process used from spawn to ready: the work of starting, whatever the concurrency.',
    `Beyond ${MAX_POOLS} processes (sharded at 10,000 bots) an evenly spread sample of ${SAMPLE_POOLS} pools runs for real, each loading exactly its own bots from the full catalog as in a cluster, and the sums are scaled by pools / sample ("scaled" above; the slowest-process time is the sample's). Starting all of them takes longer than this benchmark's time budget on 2 cores.`,
    'Dedicated at 1,000 and 10,000 bots is extrapolated (its measured RSS per process times the bot count), not run: that many processes do not fit this machine.',
    'The model files are small demo models, so the figures are the runtime\'s own costs; real weights add the same to every approach, except shared encoders, which dedicated loads once per bot.',
    '',
  ].join('\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
