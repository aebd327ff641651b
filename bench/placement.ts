/**
 * npm run bench:placement
 *
 * plan() time and peak memory for 1k / 10k / 100k synthetic bots (each size in a fresh process),
 * poolFor lookups per second, bots moved on pool add/remove against the optimal 1/(n+1) and against
 * modulo hashing (the baseline), bots moved when one bot comes or goes, and encoder loads with
 * locality against plain rendezvous. Writes bench/results/placement.{json,md}.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Catalog, Topology, countMoves, parseCatalog, plan, poolFor, xxh64 } from '@botshard/runtime';
import { SyntheticOptions, syntheticCatalog } from './synthetic';

const RESULTS = path.join(__dirname, 'results');


const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

/** Child mode: plan one size, print timings and peak RSS as JSON. */
function measureSize(bots: number, locality: 'none' | 'encoder'): void {
  const catalog = parseCatalog(syntheticCatalog({ bots, seed: 1, locality }));
  const rssBefore = process.resourceUsage().maxRSS;
  const times: number[] = [];
  let topology: Topology | undefined;
  for (let i = 0; i < 5; i++) {
    const t = process.hrtime.bigint();
    topology = plan(catalog);
    times.push(ms(t));
  }
  // Baseline: one XXH64 per bot, the least any placement by hashing must do.
  const t = process.hrtime.bigint();
  for (const bot of catalog.bots) xxh64(bot.id);
  const hashOnly = ms(t);
  const ids = catalog.bots.map((b) => b.id);
  const lookups = 2_000_000;
  const l = process.hrtime.bigint();
  let found = 0;
  for (let i = 0; i < lookups; i++) if (poolFor(ids[i % ids.length], topology!) !== undefined) found++;
  const lookupNs = (ms(l) * 1e6) / lookups;
  if (found !== lookups) throw new Error('poolFor missed a bot');
  process.stdout.write(
    JSON.stringify({
      bots,
      locality,
      pools: topology!.pools.length,
      planMs: { median: median(times), min: Math.min(...times), max: Math.max(...times), runs: times.length },
      hashOnlyMs: hashOnly,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      planRssGrowthMiB: (process.resourceUsage().maxRSS - rssBefore) / 1024,
      poolForNs: lookupNs,
    }),
  );
}

function movedFraction(before: Topology, after: Topology) {
  const m = countMoves(before, after);
  return { moved: m.moved / m.total, betweenOld: m.betweenOld / m.total };
}

/** Modulo hashing, the baseline: pool = hash(bot) mod n. */
function moduloMoved(catalog: Catalog, n: number, m: number): number {
  let moved = 0;
  for (const bot of catalog.bots) {
    const h = xxh64(bot.id).lo;
    if (h % n !== h % m) moved++;
  }
  return moved / catalog.bots.length;
}

function disruption(locality: SyntheticOptions['locality']) {
  const n = 10;
  const opts: SyntheticOptions = { bots: 10000, seed: 3, locality, oneGroup: true, pools: n, memory: '12Gi' };
  const input = syntheticCatalog(opts);
  const withCount = (count: number) => parseCatalog({ ...input, groups: input.groups.map((g) => ({ ...g, pools: count })) });
  const base = withCount(n);
  const before = plan(base);
  const add = movedFraction(before, plan(withCount(n + 1)));
  const removeTopology = plan(withCount(n - 1));
  const removed = before.pools.find((p) => !removeTopology.pools.some((q) => q.name === p.name))!;
  const remove = movedFraction(before, removeTopology);
  const encoderLoads = before.pools.reduce((s, p) => s + p.encoders.length, 0);
  const utilisation = before.pools.map((p) => p.used / p.budget);
  return {
    locality,
    bots: opts.bots,
    pools: n,
    add: { moved: add.moved, optimal: 1 / (n + 1), betweenOldPools: add.betweenOld, moduloBaseline: moduloMoved(base, n, n + 1) },
    remove: { moved: remove.moved, ownBots: removed.bots.length / opts.bots, others: remove.moved - removed.bots.length / opts.bots, moduloBaseline: moduloMoved(base, n, n - 1) },
    encoderLoads,
    utilisation: { min: Math.min(...utilisation), max: Math.max(...utilisation) },
  };
}

function botChurn() {
  const input = syntheticCatalog({ bots: 2000, seed: 9, locality: 'none', oneGroup: true, pools: 6, memory: '4Gi' });
  const reference = plan(parseCatalog(input));
  const counts: number[] = [];
  for (let i = 0; i < 20; i++) {
    const gone = input.bots[i * 100];
    const without = plan(parseCatalog({ ...input, bots: input.bots.filter((b) => b !== gone) }));
    counts.push([...without.assignment].filter(([bot, pool]) => reference.assignment.get(bot) !== pool).length);
    const withOne = plan(parseCatalog({ ...input, bots: [...input.bots, { ...gone, id: `new-bot-${i}` }] }));
    counts.push([...reference.assignment].filter(([bot, pool]) => withOne.assignment.get(bot) !== pool).length);
  }
  return { bots: 2000, changes: counts.length, othersMoved: { mean: counts.reduce((a, b) => a + b, 0) / counts.length, worst: Math.max(...counts) } };
}

function main(): void {
  if (process.argv[2] === '--size') return measureSize(Number(process.argv[3]), process.argv[4] as 'none' | 'encoder');
  const sizes = (['encoder', 'none'] as const).flatMap((locality) =>
    [1000, 10000, 100000].map((bots) =>
      JSON.parse(execFileSync(process.execPath, [...process.execArgv, __filename, '--size', String(bots), locality], { encoding: 'utf8' })),
    ),
  );
  const moves = [disruption('none'), disruption('encoder')];
  const churn = botChurn();
  const size = (bots: number, locality: string) => sizes.find((s) => s.bots === bots && s.locality === locality);
  const pct2 = (x: number) => Math.round(x * 10000) / 100;
  const add = moves.find((d) => d.locality === 'none')!.add;
  const headline: Record<string, number> = {
    ...(size(100000, 'encoder') ? { planMs100kEncoder: Math.round(size(100000, 'encoder').planMs.median) } : {}),
    ...(size(100000, 'none') ? { planMs100kNone: Math.round(size(100000, 'none').planMs.median) } : {}),
    poolForNsMin: Math.round(Math.min(...sizes.map((s) => s.poolForNs))),
    poolForNsMax: Math.round(Math.max(...sizes.map((s) => s.poolForNs))),
    // One pool added to 10,000 bots in 10 pools, no locality: bots moved, the optimal 1/(n+1), modulo hashing, moves between old pools.
    addPoolMovedPct: pct2(add.moved),
    addPoolOptimalPct: pct2(add.optimal),
    addPoolModuloPct: pct2(add.moduloBaseline),
    addPoolBetweenOldPoolsPct: pct2(add.betweenOldPools),
    botChurnOthersMovedWorst: churn.othersMoved.worst,
  };
  const result = {
    benchmark: 'placement',
    date: new Date().toISOString(),
    headline,
    // loadAverage: others' work on this shared machine when the results were written.
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    sizes,
    disruption: moves,
    botChurn: churn,
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'placement.json'), `${JSON.stringify(result, null, 2)}\n`);
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const md = [
    '# Placement benchmark',
    '',
    `${result.date}, ${result.machine.cpus} cores (${result.machine.cpu}), ${result.machine.memoryGiB} GiB, Node ${result.machine.node}. Command: \`npm run bench:placement\`.`,
    '',
    '## plan() and poolFor (two groups, auto pool counts; each size in a fresh process)',
    '',
    '| locality | bots | pools | plan median (min-max) of 5 | one XXH64 per bot (baseline) | peak RSS | poolFor |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...sizes.map((s) => `| ${s.locality} | ${s.bots} | ${s.pools} | ${s.planMs.median.toFixed(1)} ms (${s.planMs.min.toFixed(1)}-${s.planMs.max.toFixed(1)}) | ${s.hashOnlyMs.toFixed(1)} ms | ${s.peakRssMiB.toFixed(0)} MiB | ${s.poolForNs.toFixed(0)} ns |`),
    '',
    '## Bots moved when a pool is added or removed (10,000 bots, 10 pools, one group)',
    '',
    '| locality | add: moved | optimal 1/(n+1) | between old pools | modulo hashing | remove: moved | its own bots | others | modulo hashing | encoder loads | pool use min-max |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...result.disruption.map((d) =>
      `| ${d.locality} | ${pct(d.add.moved)} | ${pct(d.add.optimal)} | ${pct(d.add.betweenOldPools)} | ${pct(d.add.moduloBaseline)} | ${pct(d.remove.moved)} | ${pct(d.remove.ownBots)} | ${pct(d.remove.others)} | ${pct(d.remove.moduloBaseline)} | ${d.encoderLoads} | ${pct(d.utilisation.min)}-${pct(d.utilisation.max)} |`,
    ),
    '',
    `## One bot added or removed (2,000 bots, 6 pools, ${result.botChurn.changes} changes)`,
    '',
    `Other bots moved per change: mean ${result.botChurn.othersMoved.mean.toFixed(2)}, worst ${result.botChurn.othersMoved.worst}.`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(RESULTS, 'placement.md'), md);
  process.stdout.write(md);
}

main();
