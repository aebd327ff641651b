import { formatMemory } from '../catalog';
import { loadAnyCatalog } from '../catalog/config';
import { checkModelFiles, modelFileWarnings, modelRootOf } from '../catalog/model-files';
import { Topology, placementWarnings, plan, topologyToJson } from '../placement';
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
