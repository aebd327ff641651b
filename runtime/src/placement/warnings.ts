import { Catalog, formatMemory } from '../catalog';
import { Topology } from './plan';

/**
 * What a valid plan may still get wrong for its owner: a pool with no bots is a Deployment (and its
 * autoscaler's minimum replicas) that costs money and serves nothing.
 */
export function placementWarnings(catalog: Catalog, topology: Topology): string[] {
  const lines: string[] = [];
  for (const pool of topology.pools.filter((p) => p.bots.length === 0)) {
    const group = catalog.groups.find((g) => g.name === pool.group)!;
    const placed = topology.pools.filter((p) => p.group === group.name && !p.dedicated).reduce((n, p) => n + p.bots.length, 0);
    const fix = pool.dedicated
      ? `pin bots to it or remove it from groups[].dedicatedPools of "${group.name}"`
      : `lower groups[].pools of "${group.name}" (${group.pools} for ${placed} bots) or set it to "auto"`;
    lines.push(`warning: pool ${pool.name} holds no bots but is deployed with at least ${group.replicas.min} replicas of ${formatMemory(pool.budget)} (fix: ${fix})`);
  }
  return lines;
}
