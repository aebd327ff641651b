/** A catalog planned for one pool: what the pool's engine applies. */
import { Bot, CatalogIndex, CatalogSource, PoolGroup } from '../catalog';
import { Topology, plan } from '../placement';

/** A catalog planned for one pool: what `PoolEngine.apply` takes. */
export interface PlannedCatalog {
  catalog: CatalogIndex;
  topology: Topology;
  /** This pool's group, or undefined when the plan has no such pool. */
  group?: PoolGroup;
  /** The full definitions of this pool's bots. */
  assigned: Bot[];
  /** Bot definitions read from a folder with a placement index (undefined: the whole catalog was loaded). */
  definitionsRead?: number;
}

/**
 * Plans a catalog for one pool: its index planned, then the full definitions of this pool's bots only
 * read and validated. Throws a PlacementError or CatalogError when the catalog cannot be used.
 */
export function planPool(source: CatalogSource, pool: string): PlannedCatalog {
  const catalog = source.index;
  const topology = plan(catalog);
  const own = topology.pools.find((p) => p.name === pool);
  const assigned = source.definitions(own?.bots ?? []);
  return { catalog, topology, group: own && catalog.groups.find((g) => g.name === own.group), assigned, definitionsRead: source.definitionsRead };
}
