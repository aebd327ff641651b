/**
 * `npm run bench:synth`: time and peak memory of synthesizing the manifests for 1k / 10k / 20k
 * synthetic bots (and the three strategies at 1k), with the object, file and byte counts of dist/.
 * Each measurement runs in a fresh child process (as `cdk8s synth` runs the app), three times; the
 * median time and the largest peak RSS are reported. Writes bench/results/synth.json and synth.md.
 * Target (issue 3): 10k bots under 10 s on this machine.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Strategy } from '@botshard/runtime';

interface Sample {
  bots: number;
  strategy: Strategy;
  /** Milliseconds: validate + normalise the catalog input. */
  normalizeMs: number;
  /** Milliseconds: plan placement and build the construct tree. */
  buildMs: number;
  /** Milliseconds: validate the tree and write the YAML files. */
  writeMs: number;
  totalMs: number;
  peakRssMiB: number;
  pools: number;
  objects: number;
  configMaps: number;
  files: number;
  bytes: number;
  largestObjectBytes: number;
}

const RUNS = 3;
const CASES: Array<{ bots: number; strategy: Strategy }> = [
  { bots: 1000, strategy: 'sharded' },
  { bots: 10000, strategy: 'sharded' },
  { bots: 20000, strategy: 'sharded' },
  { bots: 1000, strategy: 'dedicated' },
  { bots: 1000, strategy: 'single' },
];

/** One measurement, in this (fresh) process. */
function measureOnce(bots: number, strategy: Strategy): Sample {
  // Loaded here so that the parent process stays small.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { normalizeCatalog, CatalogError } = require('@botshard/runtime') as typeof import('@botshard/runtime');
  const { syntheticCatalog } = require('./synthetic') as typeof import('./synthetic');
  const { App, YamlOutputType, ApiObject } = require('cdk8s') as typeof import('cdk8s');
  const { BotPlatform } = require('../constructs/index') as typeof import('../constructs/index');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const input = syntheticCatalog({ bots, seed: 7, locality: 'encoder' }) as any;
  input.platform = { strategy };
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-bench-synth-'));
  try {
    const t0 = performance.now();
    const result = normalizeCatalog(input);
    if (!result.ok) throw new CatalogError(result.problems);
    const t1 = performance.now();
    const app = new App({ outdir, yamlOutputType: YamlOutputType.FILE_PER_CHART });
    const platform = new BotPlatform(app, 'botshard', { catalog: result.catalog });
    const t2 = performance.now();
    app.synth();
    const t3 = performance.now();
    const files = fs.readdirSync(outdir);
    const objects = app.charts.flatMap((c) => c.node.findAll().filter((n): n is InstanceType<typeof ApiObject> => n instanceof ApiObject));
    const largest = Math.max(...objects.map((o) => Buffer.byteLength(JSON.stringify(o.toJson()))));
    return {
      bots,
      strategy,
      normalizeMs: t1 - t0,
      buildMs: t2 - t1,
      writeMs: t3 - t2,
      totalMs: t3 - t0,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      pools: platform.topology.pools.length,
      objects: objects.length,
      configMaps: platform.catalogConfigMaps.parts.length,
      files: files.length,
      bytes: files.reduce((n, f) => n + fs.statSync(path.join(outdir, f)).size, 0),
      largestObjectBytes: largest,
    };
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

function child(bots: number, strategy: Strategy): Sample {
  const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, '--one', String(bots), strategy], {
    cwd: path.join(__dirname, '..'),
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`bench child (${bots} bots, ${strategy}) failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Sample;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, d = 0) => Number(x.toFixed(d));

function main(): void {
  const results: Sample[] = [];
  for (const c of CASES) {
    const runs = Array.from({ length: RUNS }, () => child(c.bots, c.strategy));
    const first = runs[0];
    const row: Sample = {
      ...first,
      normalizeMs: round(median(runs.map((r) => r.normalizeMs))),
      buildMs: round(median(runs.map((r) => r.buildMs))),
      writeMs: round(median(runs.map((r) => r.writeMs))),
      totalMs: round(median(runs.map((r) => r.totalMs))),
      peakRssMiB: round(Math.max(...runs.map((r) => r.peakRssMiB)), 1),
    };
    results.push(row);
    process.stdout.write(
      `${String(c.bots).padStart(6)} bots  ${c.strategy.padEnd(9)}  ${String(row.totalMs).padStart(6)} ms (normalize ${row.normalizeMs}, plan+build ${row.buildMs}, validate+write ${row.writeMs})  ` +
        `peak RSS ${row.peakRssMiB} MiB  ${row.pools} pools  ${row.objects} objects (${row.configMaps} catalog ConfigMaps)  ${row.files} files  ${(row.bytes / 1024 / 1024).toFixed(2)} MiB  largest object ${(row.largestObjectBytes / 1024).toFixed(0)} KiB\n`,
    );
  }
  // loadAverage: others' work on this shared machine when the results were written.
  const env = { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', memoryGiB: round(os.totalmem() / 1024 ** 3, 1), loadAverage: os.loadavg().map((x) => round(x, 2)) };
  const outDir = path.join(__dirname, 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const ten = results.find((r) => r.bots === 10000 && r.strategy === 'sharded');
  const sharded = (bots: number) => results.find((r) => r.bots === bots && r.strategy === 'sharded');
  const headline: Record<string, number> = Object.fromEntries(
    [
      ['synthMs1k', sharded(1000)?.totalMs],
      ['synthMs10k', ten?.totalMs],
      ['synthMs20k', sharded(20000)?.totalMs],
      ['synthPeakRssMiB20k', sharded(20000)?.peakRssMiB],
      ['synthMs1kDedicated', results.find((r) => r.bots === 1000 && r.strategy === 'dedicated')?.totalMs],
    ].filter(([, v]) => v !== undefined),
  );
  fs.writeFileSync(path.join(outDir, 'synth.json'), `${JSON.stringify({ benchmark: 'synth', date: new Date().toISOString(), headline, runs: RUNS, environment: env, results }, null, 2)}\n`);
  const md = [
    '# Synth benchmark (`npm run bench:synth`)',
    '',
    `Fresh child process per run (as \`cdk8s synth\` runs the app), median of ${RUNS} runs, largest peak RSS. Synthetic catalogs`,
    '(`bench/synthetic.ts`, seed 7, locality by encoder, 4Gi pools). Time covers validating and normalising the catalog,',
    'planning placement, building the constructs, validating the tree and writing the YAML files; not process start-up.',
    `Machine: ${env.cpus} × ${env.cpu}, ${env.memoryGiB} GiB, Node ${env.node}.`,
    '',
    '| bots | strategy | total ms | normalize ms | plan+build ms | validate+write ms | peak RSS MiB | pools | objects | catalog ConfigMaps | files | MiB written | largest object KiB |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${r.bots} | ${r.strategy} | ${r.totalMs} | ${r.normalizeMs} | ${r.buildMs} | ${r.writeMs} | ${r.peakRssMiB} | ${r.pools} | ${r.objects} | ${r.configMaps} | ${r.files} | ${(r.bytes / 1024 / 1024).toFixed(2)} | ${(r.largestObjectBytes / 1024).toFixed(0)} |`,
    ),
    '',
    ten ? `Target: 10k bots under 10 s: ${ten.totalMs < 10000 ? 'met' : 'NOT met'} (${(ten.totalMs / 1000).toFixed(2)} s).` : '',
    '',
    'Sharded synthesis grows with the catalog size (ConfigMap bytes), not with objects: a few pools per thousand bots.',
    'With strategy `dedicated` every bot is a pool of 5 objects, and cdk8s spends about 1 ms per object validating,',
    'ordering and writing them, which dominates its row: one reason sharding is the default.',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(outDir, 'synth.md'), md);
  process.stdout.write(`\nwrote bench/results/synth.json and bench/results/synth.md\n`);
}

const one = process.argv.indexOf('--one');
if (one >= 0) {
  process.stdout.write(`${JSON.stringify(measureOnce(Number(process.argv[one + 1]), process.argv[one + 2] as Strategy))}\n`);
} else {
  main();
}
