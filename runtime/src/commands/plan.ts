import * as fs from 'node:fs';
import { formatMemory } from '../catalog';
import { loadAnyCatalog } from '../catalog/config';
import { checkModelFiles, modelFileWarnings, modelRootOf } from '../catalog/model-files';
import { Topology, placementWarnings, plan, topologyToJson } from '../placement';
import type { PlatformStatus } from '../status';
import { MARGIN, MeasuredModel, measuredModels, quantity, suggestedBytes } from '../status/sizes';
import { SettingsError } from './failure';
import { bar, table } from './output';

/** The human view of a topology: one row per pool. */
export function renderTopology(topology: Topology): string {
  const bots = topology.assignment.size;
  const head = `generation ${topology.generation}  strategy ${topology.strategy}  ${bots} bots in ${topology.pools.length} pools`;
  const rows = topology.pools.map((p) => [
    p.name + (p.dedicated ? ' *' : ''),
    p.group,
    String(p.bots.length),
    bar(p.used, p.budget),
    `${formatMemory(p.used)} / ${formatMemory(p.budget)}`,
    `${Math.round((100 * p.used) / p.budget)}%`,
    String(p.encoders.length),
  ]);
  const body = table(['POOL', 'GROUP', 'BOTS', 'MEMORY', 'USED / BUDGET', '', 'ENCODERS'], rows, [false, false, true, false, true, true, true]);
  const groups = topology.groups.map((g) => {
    const pools = topology.pools.filter((p) => p.group === g.name);
    const used = pools.reduce((s, p) => s + p.used, 0);
    const budget = pools.reduce((s, p) => s + p.budget, 0);
    return `group ${g.name}: ${pools.reduce((s, p) => s + p.bots.length, 0)} bots, ${pools.length} pools, ${formatMemory(used)} of ${formatMemory(budget)}, ${pools.reduce((s, p) => s + p.encoders.length, 0)} encoder loads`;
  });
  const note = topology.pools.some((p) => p.dedicated) ? '\n* dedicated pool: takes only the bots pinned to it' : '';
  return `${head}\n\n${body}\n\n${groups.join('\n')}${note}`;
}

/** `botshard plan`: which pool each bot lands in and how full each pool is. */
export function planCommand(opts: { config: string; json: boolean }): string {
  const catalog = loadAnyCatalog(opts.config);
  const topology = plan(catalog);
  // Warnings go to stderr: stdout stays the plan (and valid JSON with --json).
  const warnings = [...placementWarnings(catalog, topology), ...modelFileWarnings(checkModelFiles(catalog, modelRootOf(opts.config, catalog)))];
  for (const line of warnings) process.stderr.write(`${line}\n`);
  return opts.json ? JSON.stringify(topologyToJson(topology), null, 2) : renderTopology(topology);
}

/** The platform status in a file (`botshard status --json`, or the router's `/botshard/status`), checked. */
export function readStatusFile(file: string): PlatformStatus {
  const save = `save one with \`botshard status --json > ${file}\` (or curl the router's metrics port: /botshard/status)`;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new SettingsError(`--sizes ${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): ${save}`);
  }
  let status: unknown;
  try {
    status = JSON.parse(text);
  } catch (e) {
    throw new SettingsError(`--sizes ${file}: is not JSON (${(e as Error).message}): ${save}`);
  }
  const s = status as Partial<PlatformStatus> | null;
  if (typeof s !== 'object' || s === null || typeof s.router?.generation !== 'string' || !Array.isArray(s.pools)) {
    throw new SettingsError(`--sizes ${file}: is not a botshard status (an object with "router" and "pools"): ${save}`);
  }
  if (!s.pools.some((p) => 'sizes' in p && p.sizes)) {
    throw new SettingsError(`--sizes ${file}: no pool in it reports measured sizes (its pools are unreachable, or older than measured sizes): ${save} once the pools run this version`);
  }
  return s as PlatformStatus;
}

/** A bot's or encoder's suggested `memory`, where it differs from its declared one. */
export interface Suggestion {
  id: string;
  declared: number;
  measured: number;
  /** A Kubernetes quantity (`3Mi`). */
  suggested: string;
}

/**
 * `botshard plan --sizes FILE`: a `memory` per bot (and per encoder) from the sizes the pools measured, for
 * the models whose suggestion differs from their declared size, as lines to paste into bots.config.ts.
 */
export function sizesCommand(opts: { file: string; json: boolean }): string {
  const status = readStatusFile(opts.file);
  const measured = measuredModels(status);
  const suggest = (kind: MeasuredModel['kind']) =>
    measured.filter((m) => m.kind === kind && suggestedBytes(m.measured) !== m.declared).map((m): Suggestion => ({ id: m.id, declared: m.declared, measured: m.measured, suggested: quantity(suggestedBytes(m.measured)) }));
  const bots = suggest('bot');
  const encoders = suggest('encoder');
  if (opts.json) return JSON.stringify({ generation: status.router.generation, margin: MARGIN, bots, encoders }, null, 2);
  const count = (kind: MeasuredModel['kind']) => measured.filter((m) => m.kind === kind).length;
  const lines = [
    `// model.memory from the sizes the pools measured (catalog generation ${status.router.generation}): measured x ${MARGIN}, rounded up to a whole Mi.`,
    `// ${bots.length} of ${count('bot')} bots measured differ from their declared memory${bots.length > 0 ? '; in bots.config.ts, give each bot `memory: MEMORY[id] ?? ...`:' : '.'}`,
    ...block('MEMORY', bots),
  ];
  if (count('encoder') > 0) lines.push(`// ${encoders.length} of ${count('encoder')} encoders measured differ from their declared memory${encoders.length > 0 ? ' (an encoder\'s `memory`):' : '.'}`, ...block('ENCODER_MEMORY', encoders));
  return lines.join('\n');
}

/** A TypeScript object of suggested sizes, one line per model with its declared and measured sizes. */
function block(name: string, suggestions: Suggestion[]): string[] {
  if (suggestions.length === 0) return [];
  const width = Math.max(...suggestions.map((s) => s.id.length + s.suggested.length));
  const line = (s: Suggestion) => `  '${s.id}': '${s.suggested}',${' '.repeat(width - s.id.length - s.suggested.length)} // declared ${formatMemory(s.declared)}, measured ${formatMemory(s.measured)}`;
  return [`const ${name}: Record<string, string> = {`, ...suggestions.map(line), '};'];
}
