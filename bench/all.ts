/**
 * npm run bench
 *
 * Every benchmark in sequence, each in its own process (so none inherits another's heap or children),
 * then the report. Writes the duration of each to bench/results/run.json, which the report quotes.
 * BENCH_ONLY=approaches,isolation runs a subset (the report always runs). A failing benchmark is
 * reported and the others still run; the exit code is then 1.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RESULTS, ROOT } from './processes';

// 'fleet-scale' writes results/fleet.json (bench/fleet.ts is the catalog the others share, not a benchmark).
const ALL = ['placement', 'synth', 'pool', 'router', 'approaches', 'catalog', 'cold', 'isolation', 'batching', 'scale', 'rollout', 'fleet-scale', 'memory'];
const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const TS_NODE = require.resolve('ts-node/dist/bin.js', { paths: [ROOT] });

function runOne(name: string): { seconds: number; ok: boolean } {
  const started = performance.now();
  process.stderr.write(`\n=== bench/${name}.ts\n`);
  const r = spawnSync(process.execPath, [TS_NODE, '--transpile-only', path.join(__dirname, `${name}.ts`)], { cwd: ROOT, stdio: 'inherit', env: process.env });
  const seconds = Math.round((performance.now() - started) / 1000);
  const ok = r.status === 0;
  process.stderr.write(`=== ${name}: ${ok ? 'done' : `FAILED (exit ${r.status ?? r.signal})`} in ${seconds} s\n`);
  return { seconds, ok };
}

function main(): void {
  const started = performance.now();
  const loadBefore = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const durations: Record<string, number> = {};
  const failed: string[] = [];
  for (const name of ALL.filter((n) => !only || only.includes(n))) {
    const r = runOne(name);
    durations[name] = r.seconds;
    if (!r.ok) failed.push(name);
  }
  const totalSeconds = Math.round((performance.now() - started) / 1000);
  fs.mkdirSync(RESULTS, { recursive: true });
  if (!only) fs.writeFileSync(path.join(RESULTS, 'run.json'), `${JSON.stringify({ date: new Date().toISOString(), totalSeconds, durations, failed, loadAverage: { before: loadBefore, after: os.loadavg().map((x) => Math.round(x * 100) / 100) } }, null, 2)}\n`);
  const report = runOne('report');
  if (!report.ok) failed.push('report');
  process.stderr.write(`\nall benchmarks: ${totalSeconds} s${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}\n`);
  process.exit(failed.length ? 1 : 0);
}

main();
