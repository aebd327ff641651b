/**
 * npm run bench:scale
 *
 * Horizontal scale: the same bots (bench/fleet.ts, pools of 4 GiB so that one pool can hold them all)
 * with 1, 2 and 4 pools, each pool a real `botshard pool` process on 127.0.0.1 with the machine's
 * cores shared among them (workers per pool = max(1, cores / pools)). The same closed-loop load is sent
 * straight to each bot's pool (round robin over every bot), the pool counts alternating in each round,
 * all pools running throughout. Also, from plan() with fixed pool counts: how many bots move on each
 * step (1 -> 2 -> 3 -> 4, and 2 -> 4) against the optimal (m - n) / m (1/(n+1) for one pool added),
 * with encoder locality (as run) and without. Writes bench/results/scale.{json,md}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog, Topology, parseCatalog, plan, writeCatalogFolder } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { fleetBot, fleetCatalog } from './fleet';
import { CORES, Child, SMOKE, Spread, fmt, log, machine, mapLimit, predictLoad, round, spread, startPool, stopAll, tempDir, writeResult } from './processes';

const BOTS = SMOKE ? 5 : 200;
const POOLS = SMOKE ? [1, 2] : [1, 2, 4];
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 3));
const SECONDS = Number(process.env.BENCH_SECONDS ?? (SMOKE ? 0.5 : 4));
const CONNECTIONS = 16;
const MEMORY = '4Gi';

const catalogFor = (pools: number, locality: 'encoder' | 'none' = 'encoder', bots = BOTS, memory = MEMORY): Catalog =>
  parseCatalog(fleetCatalog({ bots, pools, memory, locality }));

/** Closed loop: CONNECTIONS requests in flight for `seconds`, each to the next bot, sent to that bot's pool. */
async function load(urlOf: Map<string, string>, bots: string[], seconds: number) {
  const r = await predictLoad((bot) => urlOf.get(bot)!, bots, seconds, CONNECTIONS);
  return { rps: r.rps, p50: round(r.p50, 2), p99: round(r.p99, 2), errors: r.errors };
}

function moves(locality: 'encoder' | 'none', bots: number, memory = MEMORY) {
  const steps: Array<[number, number]> = [[1, 2], [2, 3], [3, 4], [2, 4]];
  const topo = new Map<number, Topology>();
  for (const n of [1, 2, 3, 4]) topo.set(n, plan(catalogFor(n, locality, bots, memory)));
  return steps.map(([from, to]) => {
    const a = topo.get(from)!.assignment;
    const b = topo.get(to)!.assignment;
    const old = new Set(topo.get(from)!.pools.map((p) => p.name));
    let moved = 0;
    let betweenOld = 0;
    for (const [bot, pool] of a) {
      if (b.get(bot) === pool) continue;
      moved++;
      if (old.has(b.get(bot)!)) betweenOld++;
    }
    return {
      locality,
      bots,
      poolMemory: memory,
      from,
      to,
      moved,
      movedPct: round((100 * moved) / a.size, 2),
      optimalPct: round((100 * (to - from)) / to, 2),
      betweenOldPools: betweenOld,
      botsPerPoolAfter: topo.get(to)!.pools.map((p) => p.bots.length),
    };
  });
}

/**
 * The locality figures of issue #15, from plan() alone: pool counts 1 -> 2 -> 3 -> 4 and 8 -> 9 for 200 and
 * 10,000 bots (pool budgets large enough that memory never binds). minPoolShare: the smallest pool's planned
 * bytes (overhead excluded) over the mean, worst over the counts 2, 3, 4, 8 and 9; movedOverOptimalPp: the
 * worst step's moved share minus the optimal, in points; encoderLoadsRatio: encoder loads (pool x encoder)
 * summed over those counts, with encoder locality over without.
 */
function localityFigures(bots: number, memory: string) {
  const counts = [1, 2, 3, 4, 8, 9];
  const of = (locality: 'encoder' | 'none') => new Map(counts.map((n) => [n, plan(catalogFor(n, locality, bots, memory))]));
  const on = of('encoder');
  const off = of('none');
  const overhead = catalogFor(1, 'encoder', bots, memory).groups[0].poolOverhead;
  let minShare = Infinity;
  let loadsOn = 0;
  let loadsOff = 0;
  for (const n of counts.slice(1)) {
    const used = on.get(n)!.pools.map((p) => p.used - overhead);
    minShare = Math.min(minShare, Math.min(...used) / (used.reduce((a, x) => a + x, 0) / used.length));
    loadsOn += on.get(n)!.pools.reduce((a, p) => a + p.encoders.length, 0);
    loadsOff += off.get(n)!.pools.reduce((a, p) => a + p.encoders.length, 0);
  }
  let worst = -Infinity;
  for (const [from, to] of [[1, 2], [2, 3], [3, 4], [8, 9]]) {
    const a = on.get(from)!.assignment;
    const b = on.get(to)!.assignment;
    let moved = 0;
    for (const [bot, pool] of a) if (b.get(bot) !== pool) moved++;
    worst = Math.max(worst, (100 * moved) / a.size - (100 * (to - from)) / to);
  }
  // What one more bot in the catalog moves at 9 pools (others than itself).
  const input = fleetCatalog({ bots, pools: 9, memory, locality: 'encoder' });
  const plus = plan(parseCatalog({ ...input, bots: [...input.bots, fleetBot(bots)] }));
  let oneBotMoves = 0;
  for (const [bot, pool] of on.get(9)!.assignment) if (plus.assignment.get(bot) !== pool) oneBotMoves++;
  return { bots, poolMemory: memory, minPoolShare: round(minShare, 2), movedOverOptimalPp: round(worst, 1), encoderLoadsRatio: round(loadsOn / loadsOff, 2), oneBotMoves, botsPerPool: Object.fromEntries(counts.map((n) => [n, on.get(n)!.pools.map((p) => p.bots.length)])) };
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const work = tempDir('scale');
  const children: Child[] = [];
  const runs = new Map<number, Array<{ rps: number; p50: number; p99: number; errors: number }>>(POOLS.map((n) => [n, []]));
  const layouts: Array<{ pools: number; workersPerPool: number; botsPerPool: number[] }> = [];
  try {
    const models = path.join(work, 'models');
    writeDemoModels(catalogFor(1), models);
    const urls = new Map<number, Map<string, string>>();
    for (const n of POOLS) {
      const catalog = catalogFor(n);
      const dir = path.join(work, `catalog-${n}`);
      writeCatalogFolder(dir, catalog);
      const topology = plan(catalog);
      const workers = Math.max(1, Math.floor(CORES / n));
      const started = await mapLimit(topology.pools, CORES, async (p) => {
        const c = await startPool({ pool: p.name, catalog: dir, models, workers });
        children.push(c);
        return c;
      });
      const urlOfPool = new Map(topology.pools.map((p, i) => [p.name, started[i].url]));
      urls.set(n, new Map([...topology.assignment].map(([bot, pool]) => [bot, urlOfPool.get(pool)!])));
      layouts.push({ pools: n, workersPerPool: workers, botsPerPool: topology.pools.map((p) => p.bots.length) });
    }
    const bots = catalogFor(1).bots.map((b) => b.id);
    for (const n of POOLS) await load(urls.get(n)!, bots, SMOKE ? 0.3 : 1); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < POOLS.length; i++) {
        const n = POOLS[(i + r) % POOLS.length];
        const m = await load(urls.get(n)!, bots, SECONDS);
        runs.get(n)!.push(m);
        log(`round ${r + 1}, ${n} pools: ${m.rps} req/s, p50 ${m.p50} ms, p99 ${m.p99} ms, ${m.errors} errors`);
      }
    }
  } finally {
    await stopAll(children);
    fs.rmSync(work, { recursive: true, force: true });
  }
  const throughput = POOLS.map((n) => {
    const xs = runs.get(n)!;
    return {
      ...layouts.find((l) => l.pools === n)!,
      rps: spread(xs.map((x) => x.rps), 0) as Spread,
      p50: spread(xs.map((x) => x.p50), 2),
      p99: spread(xs.map((x) => x.p99), 2),
      errors: xs.reduce((a, x) => a + x.errors, 0),
    };
  });
  const moved = [...moves('encoder', BOTS), ...moves('none', BOTS), ...(SMOKE ? [] : [...moves('encoder', 2000, '64Gi'), ...moves('none', 2000, '64Gi')])];
  const locality = SMOKE ? [localityFigures(BOTS, MEMORY)] : [localityFigures(200, MEMORY), localityFigures(10000, '256Gi')];
  const worstOf = (f: (x: ReturnType<typeof localityFigures>) => number, pick: (...xs: number[]) => number) => pick(...locality.map(f));
  const headline = {
    localityMinPoolShare: worstOf((x) => x.minPoolShare, Math.min),
    localityMovedOverOptimalPp: worstOf((x) => x.movedOverOptimalPp, Math.max),
    localityEncoderLoadsRatio: worstOf((x) => x.encoderLoadsRatio, Math.max),
  };
  const result = {
    benchmark: 'scale',
    date: new Date().toISOString(),
    headline,
    locality,
    machine: machine(),
    setup: { bots: BOTS, poolMemory: MEMORY, connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS, load: 'closed loop, POST /v1/bots/{bot}/predict straight to the bot\'s pool, round robin over every bot', smoke: SMOKE },
    throughput,
    moved,
    seconds: Math.round((Date.now() - startedAt) / 1000),
  };
  writeResult('scale', result, markdown(result));
  log(`wrote scale.json and scale.md in ${result.seconds} s`);
}

function markdown(r: any): string {
  return [
    '# Horizontal scale: 1, 2 and 4 pools',
    '',
    `${r.date}, ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Command: \`npm run bench:scale\`; ${r.seconds} s.`,
    '',
    `The same ${r.setup.bots} bots (bench/fleet.ts, pools of ${r.setup.poolMemory}) with a fixed pool count, every pool a real process on 127.0.0.1, all running throughout. Load: ${r.setup.load}, ${r.setup.connections} connections, ${r.setup.seconds} s per run, ${r.setup.rounds} rounds with the pool counts alternating; median (min-max).`,
    '',
    '| pools | workers per pool | bots per pool | requests/s | p50 ms | p99 ms | errors |',
    '|---:|---:|---|---:|---:|---:|---:|',
    ...r.throughput.map((t: any) => `| ${t.pools} | ${t.workersPerPool} | ${t.botsPerPool.join(', ')} | ${fmt(t.rps)} | ${fmt(t.p50)} | ${fmt(t.p99)} | ${t.errors} |`),
    '',
    `On this ${r.machine.cpus}-core machine every pool and the load generator share the same cores, so more pools cannot add throughput here: the figures show what splitting costs (more processes, the same cores). On a cluster each pool brings its own CPU.`,
    '',
    'Bots moved when pools are added (plan() with fixed pool counts; optimal = (m - n) / m, i.e. 1/(n+1) when one pool is added):',
    '',
    '| locality | bots | pool budget | step | moved | optimal | moved between old pools | bots per pool after |',
    '|---|---:|---:|---|---:|---:|---:|---|',
    ...r.moved.map((m: any) => `| ${m.locality} | ${m.bots} | ${m.poolMemory} | ${m.from} -> ${m.to} | ${m.movedPct}% (${m.moved}) | ${m.optimalPct}% | ${m.betweenOldPools} | ${m.botsPerPoolAfter.join(', ')} |`),
    '',
    'Locality figures (issue #15), encoder locality, pool counts 1 -> 2 -> 3 -> 4 and 8 -> 9 (plan() alone): smallest pool\'s planned bytes over the mean (worst count), worst step\'s moved share above the optimal, encoder loads summed over the counts 2-9 with locality over without (targets: >= 0.5, <= 10 points, <= 0.5):',
    '',
    '| bots | pool budget | min pool share | moved over optimal | encoder loads ratio | others moved by one more bot (9 pools) | bots per pool (2, 3, 4, 8, 9 pools) |',
    '|---:|---:|---:|---:|---:|---:|---|',
    ...r.locality.map((l: any) => `| ${l.bots} | ${l.poolMemory} | ${l.minPoolShare} | ${l.movedOverOptimalPp} pp | ${l.encoderLoadsRatio} | ${l.oneBotMoves} | ${[2, 3, 4, 8, 9].map((n) => l.botsPerPool[n].join('/')).join('; ')} |`),
    '',
    `Headline: ${Object.entries(r.headline).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    '',
    'No bot moves between pools that existed before: every move goes to the new pool. With encoder locality and a fixed count the group is placed by balanced locality (README, "Placement", rule 4): n pools are n-1 pools plus what pool n-1 takes, so a new pool takes its share and no more, every pool stays within about a quarter of the mean in bytes of heads, and an encoder spans few pools. The price is stability under catalog edits: one more bot shifts every cut a little, so a few bots next to cuts move with it (the last column; bounded-load hashing moved about 0.5% of bots for one bot at auto counts).',
    '',
  ].join('\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
