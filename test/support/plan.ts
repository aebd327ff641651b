import { Catalog, countMoves, parseCatalog, plan } from '@botshard/runtime';
import { SyntheticOptions, syntheticCatalog } from '../../bench/synthetic';

/** A normalised synthetic catalog. */
export function synthetic(opts: SyntheticOptions): Catalog {
  return parseCatalog(syntheticCatalog(opts));
}

/** The same catalog with some groups' pool counts changed. */
export function withPools(catalog: Catalog, pools: Record<string, number | 'auto'>): Catalog {
  const input = JSON.parse(JSON.stringify(catalog));
  delete input.generation;
  for (const g of input.groups) if (pools[g.name] !== undefined) g.pools = pools[g.name];
  return parseCatalog(input);
}

/** Bots that changed pool between two topologies (see countMoves). */
export const moved = countMoves;

export { plan };
