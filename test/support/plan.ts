import { Catalog, Topology, plan } from '@botshard/runtime';
import { SyntheticOptions, syntheticCatalog } from '../../bench/synthetic';
import { normalized } from './catalogs';

/** A normalised synthetic catalog. */
export function synthetic(opts: SyntheticOptions): Catalog {
  return normalized(syntheticCatalog(opts));
}

/** The same catalog with some groups' pool counts changed. */
export function withPools(catalog: Catalog, pools: Record<string, number | 'auto'>): Catalog {
  const input = JSON.parse(JSON.stringify(catalog));
  delete input.generation;
  for (const g of input.groups) if (pools[g.name] !== undefined) g.pools = pools[g.name];
  return normalized(input);
}

/** Fraction of the bots of both topologies that changed pool, and of those, how many moved between pools that exist in both. */
export function moved(before: Topology, after: Topology): { moved: number; betweenOld: number; total: number } {
  const oldPools = new Set(before.pools.map((p) => p.name));
  const newPools = new Set(after.pools.map((p) => p.name));
  let count = 0;
  let betweenOld = 0;
  for (const [bot, from] of before.assignment) {
    const to = after.assignment.get(bot);
    if (to === undefined || to === from) continue;
    count += 1;
    if (oldPools.has(to) && newPools.has(from)) betweenOld += 1;
  }
  return { moved: count, betweenOld, total: before.assignment.size };
}

export { plan };
