/**
 * The catalog pipeline at fleet scale, for bench:catalog (issue #33): `normalizeCatalog` then `plan()`
 * of a synthetic catalog (bench/synthetic.ts: encoder locality, its two default groups, pools of 4Gi)
 * at 100,000 / 300,000 / 1,000,000 bots, each run in a fresh child process that does only that, as
 * `plan(parseCatalog(config))` would: the input is dropped once normalised. Measured in the child: the
 * wall and CPU time of each step, and its peak RSS (VmHWM of /proc/self/status, read once the plan is
 * made). Then, outside what the peak counts: the catalog's generation alone (canonical JSON and XXH64,
 * part of normalize) and the size of the catalog as JSON. One more row normalises 100,000 bots that each
 * carry three pre- and post-processing rules (the same patterns for every bot, as bots built from one
 * template have).
 *
 * Run as a child: ts-node bench/catalog-pipeline.ts <bots> [rules].
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CatalogInput, canonicalGeneration, normalizeCatalog, plan } from '@botshard/runtime';
import { SMOKE, Spread, log, spread } from './processes';
import { syntheticCatalog } from './synthetic';

export const PIPELINE_SIZES = SMOKE ? [3000] : (process.env.BENCH_PIPELINE_SIZES ?? '100000,300000,1000000').split(',').map(Number);
const PIPELINE_ROUNDS = Number(process.env.BENCH_PIPELINE_ROUNDS ?? (SMOKE ? 1 : 3));
/** Bots of the row whose bots carry rules. */
export const RULES_BOTS = SMOKE ? 3000 : 100_000;

/** What the rows' catalogs are (the generator's options; no other key). */
export const PIPELINE_CATALOG = { generator: 'bench/synthetic.ts', locality: 'encoder', groups: 'realtime and batch (its defaults)', poolMemory: '4Gi' } as const;

/** One child's measurement. */
interface Sample {
  bots: number;
  rules: boolean;
  pools: number;
  normalizeMs: number;
  normalizeCpuMs: number;
  planMs: number;
  planCpuMs: number;
  /** VmHWM once the plan is made, MiB; and VmRSS before the catalog was built (the process itself). */
  peakRssMiB: number;
  processRssMiB: number;
  generationMs: number;
  catalogJsonBytes: number;
}

export interface PipelineRow {
  bots: number;
  rules: boolean;
  pools: number;
  catalogJsonBytes: number;
  normalizeMs: Spread;
  normalizeCpuMs: Spread;
  planMs: Spread;
  planCpuMs: Spread;
  peakRssMiB: Spread;
  processRssMiB: Spread;
  generationMs: Spread;
}

const statusKiB = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]);

/** The same three rules on every bot: two rewrites and an entity. */
function withRules(input: CatalogInput): CatalogInput {
  const preprocess = [
    { pattern: '\\s+', replace: ' ' },
    { pattern: '\\b(pls|plz)\\b', replace: 'please', flags: 'i' },
  ];
  const postprocess = { entities: [{ name: 'order', pattern: 'order #?([0-9]{4,10})', flags: 'i' }] };
  return { ...input, bots: input.bots.map((b) => ({ ...b, preprocess, postprocess })) };
}

function child(bots: number, rules: boolean): Sample {
  const processRssMiB = statusKiB('VmRSS') / 1024;
  let input: CatalogInput | undefined = syntheticCatalog({ bots, locality: 'encoder' });
  if (rules) input = withRules(input);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const result = normalizeCatalog(input);
  const normalizeMs = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  input = undefined;
  if (!result.ok) throw new Error(`the synthetic catalog has ${result.problems.length} problems, the first: ${JSON.stringify(result.problems[0])}`);
  const t1 = performance.now();
  const topology = plan(result.catalog);
  const planMs = performance.now() - t1;
  const c2 = process.cpuUsage(c0);
  const peakRssMiB = statusKiB('VmHWM') / 1024;
  const { apiVersion: _a, kind: _k, generation: _g, ...content } = result.catalog;
  const t2 = performance.now();
  canonicalGeneration(content);
  const generationMs = performance.now() - t2;
  // The catalog as one JSON file, counted bot by bot: never made into one string, the largest thing this process would hold.
  const bots_ = result.catalog.bots;
  const catalogJsonBytes = Buffer.byteLength(JSON.stringify({ ...result.catalog, bots: [] })) + bots_.reduce((n, b) => n + Buffer.byteLength(JSON.stringify(b)), 0) + Math.max(0, bots_.length - 1);
  const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
  return {
    bots, rules, pools: topology.pools.length, normalizeMs, normalizeCpuMs: cpuMs(c1), planMs, planCpuMs: cpuMs(c2) - cpuMs(c1),
    peakRssMiB, processRssMiB, generationMs, catalogJsonBytes,
  };
}

function run(bots: number, rules: boolean): Sample {
  const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, String(bots), ...(rules ? ['rules'] : [])], {
    cwd: path.join(__dirname, '..'),
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`pipeline child (${bots} bots${rules ? ', rules' : ''}) failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Sample;
}

/** Every size (and the rules row), PIPELINE_ROUNDS children each; medians, min and max. */
export function measurePipeline(): PipelineRow[] {
  const cases = [...PIPELINE_SIZES.map((bots) => ({ bots, rules: false })), { bots: RULES_BOTS, rules: true }];
  return cases.map(({ bots, rules }) => {
    const runs = Array.from({ length: PIPELINE_ROUNDS }, () => {
      const s = run(bots, rules);
      log(`pipeline ${bots} bots${rules ? ' with 3 rules each' : ''}: normalize ${Math.round(s.normalizeMs)} ms (CPU ${Math.round(s.normalizeCpuMs)}), plan ${Math.round(s.planMs)} ms (CPU ${Math.round(s.planCpuMs)}), peak RSS ${Math.round(s.peakRssMiB)} MiB, ${s.pools} pools`);
      return s;
    });
    const s = (k: keyof Sample, digits = 0) => spread(runs.map((x) => x[k] as number), digits);
    return {
      bots, rules, pools: runs[0].pools, catalogJsonBytes: runs[0].catalogJsonBytes,
      normalizeMs: s('normalizeMs'), normalizeCpuMs: s('normalizeCpuMs'), planMs: s('planMs'), planCpuMs: s('planCpuMs'),
      peakRssMiB: s('peakRssMiB', 1), processRssMiB: s('processRssMiB', 1), generationMs: s('generationMs'),
    };
  });
}

/** `1m`, `300k`: a headline key's size suffix. */
export const sizeKey = (bots: number) => (bots >= 1_000_000 ? `${bots / 1_000_000}m` : bots >= 1000 ? `${bots / 1000}k` : `${bots}`);

/** The headline figures of the rows: times are medians, the peak RSS the largest of the rounds. */
export function pipelineHeadline(rows: PipelineRow[]): Record<string, number> {
  const headline: Record<string, number> = {};
  for (const row of rows) {
    const k = sizeKey(row.bots);
    if (row.rules) {
      headline[`normalizeMsRules${k}`] = row.normalizeMs.median;
      continue;
    }
    headline[`normalizeMs${k}`] = row.normalizeMs.median;
    headline[`planMs${k}`] = row.planMs.median;
    headline[`catalogPeakRssMiB${k}`] = row.peakRssMiB.max;
  }
  return headline;
}

if (require.main === module) {
  process.stdout.write(`${JSON.stringify(child(Number(process.argv[2]), process.argv[3] === 'rules'))}\n`);
}
