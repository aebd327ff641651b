/**
 * Each new benchmark starts, runs in its tiny mode (BENCH_SMOKE=1: a handful of bots, one short run)
 * and writes well-formed results into a temp folder (BENCH_RESULTS_DIR); the report gathers them.
 * Figures are not asserted (this machine is shared): only that they are present, finite and positive.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureBuilt } from '../pool/support';

const ROOT = path.resolve(__dirname, '../..');
const TS_NODE = require.resolve('ts-node/dist/bin.js', { paths: [ROOT] });
let dir: string;

function bench(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TS_NODE, '--transpile-only', path.join(ROOT, `bench/${name}.ts`)], {
      cwd: ROOT,
      env: { ...process.env, BENCH_SMOKE: '1', BENCH_QUIET: '1', BENCH_RESULTS_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench/${name}.ts exited with ${code}:\n${output.slice(-3000)}`))));
  });
}

const json = (name: string) => JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8'));
const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;
const spreadOk = (s: any) => positive(s?.median) && positive(s?.min) && positive(s?.max) && s.min <= s.median && s.median <= s.max && s.runs >= 1;

beforeAll(async () => {
  ensureBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-bench-smoke-'));
  // Independent benchmarks run side by side, then the report gathers their results.
  await Promise.all(['approaches', 'isolation', 'scale', 'catalog'].map(bench));
  await bench('batching');
  await bench('cold');
  await bench('report');
}, 240_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('catalog: pool and router with the index and with the whole catalog, the baseline pool, a headline', () => {
  const r = json('catalog');
  expect(r.benchmark).toBe('catalog');
  const [size] = r.sizes;
  expect(size.bots).toBe(300);
  for (const k of ['poolReadyMs', 'poolRssMiB']) for (const s of ['index', 'whole', 'own']) expect([k, s, spreadOk(size[k][s])]).toEqual([k, s, true]);
  for (const k of ['routerRssMiB', 'routerReadyMs', 'routerApplyMs']) for (const s of ['index', 'whole']) expect([k, s, spreadOk(size[k][s])]).toEqual([k, s, true]);
  expect(size.indexBytes).toBeLessThan(size.catalogBytes);
  for (const k of ['poolReadyMs300', 'routerRssMiB300', 'routerApplyMs300']) expect([k, positive(r.headline[k])]).toEqual([k, true]);
});

test('cold: both settings measured, hits and misses told apart, a headline', () => {
  const r = json('cold');
  expect(r.benchmark).toBe('cold');
  expect(r.allLoaded.errors).toBe(0);
  expect(r.overcommit.errors).toBe(0);
  expect(r.overcommit.pools).toBeLessThan(r.allLoaded.pools); // three times the bots per pool
  expect(r.overcommit.misses).toBeGreaterThan(0); // cold bots were loaded on their first request
  expect(r.overcommit.hits).toBeGreaterThan(0);
  for (const k of ['coldMemoryOverAllLoaded', 'coldHotP99OverAllLoaded', 'coldFirstRequestP99Ms', 'coldHitRatePct', 'coldPoolReadyMs', 'allLoadedPoolReadyMs']) expect([k, positive(r.headline[k])]).toEqual([k, true]);
  expect(fs.readFileSync(path.join(dir, 'cold.md'), 'utf8')).toMatch(/^# Cold bots/);
});

test('approaches: every approach measured, base memory, ratios', () => {
  const r = json('approaches');
  expect(r.benchmark).toBe('approaches');
  expect(r.setup.smoke).toBe(true);
  expect(spreadOk(r.baseProcess.rssMiB1Worker)).toBe(true);
  expect(spreadOk(r.baseProcess.rssMiB2Workers)).toBe(true);
  expect(spreadOk(r.baseProcess.readyMs)).toBe(true);
  expect(r.cells.map((c: any) => c.strategy).sort()).toEqual(['dedicated', 'sharded', 'single']);
  for (const c of r.cells) {
    expect(c).toMatchObject({ bots: 5, measured: true });
    expect(positive(c.processes)).toBe(true);
    for (const k of ['rssMiB', 'pssMiB', 'peakRssMiB', 'wallMs', 'slowestReadyMs', 'cpuSeconds', 'perProcessRssMiB']) expect([k, spreadOk(c[k])]).toEqual([k, true]);
  }
  expect(r.cells.find((c: any) => c.strategy === 'dedicated').processes).toBe(5);
  expect(r.cells.find((c: any) => c.strategy === 'single').processes).toBe(1);
  expect(positive(r.ratios[0].dedicatedOverSharded)).toBe(true);
  expect(fs.readFileSync(path.join(dir, 'approaches.md'), 'utf8')).toMatch(/^# Approaches/);
});

test('isolation: healthy-bot latencies for every set-up and set', () => {
  const r = json('isolation');
  expect(r.benchmark).toBe('isolation');
  expect(r.setup.brokenBotState.state).toBe('failed');
  expect(positive(r.setup.slowRequestMs)).toBe(true);
  expect(r.rows.map((x: any) => `${x.setup}/${x.set}/${x.relation}`)).toEqual([
    'clean/A/none', 'clean/B/none', 'single/A/same pool', 'single/B/same pool', 'sharded/A/same pool', 'sharded/B/different pool',
  ]);
  for (const row of r.rows) {
    expect(spreadOk(row.p50) && spreadOk(row.p99) && spreadOk(row.max)).toBe(true);
    expect(row.ok + row.failed).toBeGreaterThan(0);
  }
  expect(r.rows.filter((x: any) => x.setup === 'clean').every((x: any) => x.ok > 0)).toBe(true);
  for (const k of ['isolationSamePoolFailedPct', 'isolationDifferentPoolFailedPct', 'isolationSingleProcessFailedPct']) expect([k, Number.isFinite(r.headline[k]) && r.headline[k] >= 0]).toEqual([k, true]);
  for (const k of ['isolationSamePoolP99OverClean', 'isolationDifferentPoolP99OverClean']) expect([k, positive(r.headline[k])]).toEqual([k, true]);
  // Where the pool ran the slow bot after each flood: its metadata says.
  for (const f of r.floods) expect(typeof f.slowBot.quarantined).toBe('boolean');
});

test('batching: throughput with and without batching, and the real-time p50 it adds', () => {
  const r = json('batching');
  expect(r.benchmark).toBe('batching');
  expect(r.rows.map((x: any) => x.setup)).toEqual(['batched', 'unbatched', 'realtimeBatched', 'realtimeUnbatched']);
  for (const row of r.rows) expect([row.setup, spreadOk(row.p50) && spreadOk(row.p99), row.failed]).toEqual([row.setup, true, 0]);
  expect(spreadOk(r.rows[0].rps) && spreadOk(r.rows[1].rps)).toBe(true);
  expect(positive(r.headline.batchingSpeedupBatch) && positive(r.headline.batchingP99OverUnbatched)).toBe(true);
  expect(Number.isFinite(r.headline.batchingAddedP50MsRealtime)).toBe(true);
  expect(fs.readFileSync(path.join(dir, 'batching.md'), 'utf8')).toMatch(/^# Batching across bots/);
});

test('scale: throughput per pool count and bots moved per step', () => {
  const r = json('scale');
  expect(r.throughput.map((t: any) => t.pools)).toEqual([1, 2]);
  for (const t of r.throughput) {
    expect(spreadOk(t.rps) && spreadOk(t.p50) && spreadOk(t.p99)).toBe(true);
    expect(t.botsPerPool.reduce((a: number, b: number) => a + b, 0)).toBe(r.setup.bots);
  }
  expect(r.moved.length).toBeGreaterThan(0);
  for (const m of r.moved) {
    expect(m.movedPct).toBeGreaterThanOrEqual(0);
    expect(m.movedPct).toBeLessThanOrEqual(100);
    expect(positive(m.optimalPct)).toBe(true);
  }
  // The locality figures: a share, points above the optimal, a ratio of encoder loads.
  expect(r.headline.localityMinPoolShare).toBeGreaterThanOrEqual(0);
  expect(r.headline.localityMinPoolShare).toBeLessThanOrEqual(1);
  expect(Number.isFinite(r.headline.localityMovedOverOptimalPp)).toBe(true);
  expect(positive(r.headline.localityEncoderLoadsRatio)).toBe(true);
});

test('report: REPORT.md with headlines and three SVG charts', () => {
  const md = fs.readFileSync(path.join(dir, 'REPORT.md'), 'utf8');
  expect(md).toMatch(/^# botshard benchmark report/);
  expect(md).toMatch(/commit `[0-9a-f]+/);
  expect(md).toContain('## Headlines');
  for (const svg of ['memory-by-bots.svg', 'startup-by-bots.svg', 'isolation-p99.svg']) {
    expect(md).toContain(`](${svg})`);
    const text = fs.readFileSync(path.join(dir, svg), 'utf8');
    expect(text.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(text).not.toMatch(/NaN|undefined|Infinity/);
  }
});
