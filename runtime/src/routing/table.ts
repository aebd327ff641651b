import { CatalogIndex, IndexBot, PoolGroup } from '../catalog';
import { Topology, plan } from '../placement';

/** One catalog generation as the router sees it. */
export interface Generation {
  catalog: CatalogIndex;
  topology: Topology;
  /** bot id -> the bot as the index has it (its tenant) */
  bots: ReadonlyMap<string, IndexBot>;
  /** pool name -> its group */
  groupOfPool: ReadonlyMap<string, PoolGroup>;
  /** group name -> number of pools */
  poolCounts: ReadonlyMap<string, number>;
  /** pool names */
  poolNames: ReadonlySet<string>;
}

/** Where a request for a bot goes: its pool now, and its pool in the previous generation when that differs. */
export interface Route {
  bot: string;
  tenant: string;
  group: PoolGroup;
  pool: string;
  /** The pool that held the bot in the previous generation, while the bot moves. */
  previousPool?: string;
}

function generation(catalog: CatalogIndex): Generation {
  const topology = plan(catalog);
  const groups = new Map(catalog.groups.map((g) => [g.name, g]));
  const groupOfPool = new Map(topology.pools.map((p) => [p.name, groups.get(p.group)!]));
  // The index's own bot objects: one map entry per bot, nothing new per bot.
  const bots = new Map<string, IndexBot>();
  for (const bot of catalog.bots) bots.set(bot.id, bot);
  const poolCounts = new Map<string, number>();
  for (const p of topology.pools) poolCounts.set(p.group, (poolCounts.get(p.group) ?? 0) + 1);
  return { catalog, topology, bots, groupOfPool, poolCounts, poolNames: new Set(topology.pools.map((p) => p.name)) };
}

/**
 * The placement of the current and the previous catalog generation: while a bot moves, requests that
 * its new pool cannot serve yet go to the old one, so rebalancing loses no request.
 */
export class RoutingTable {
  private current: Generation;
  private previous?: Generation;

  constructor(catalog: CatalogIndex) {
    this.current = generation(catalog);
  }

  get generation(): string {
    return this.current.catalog.generation;
  }

  get previousGeneration(): string | undefined {
    return this.previous?.catalog.generation;
  }

  get catalog(): CatalogIndex {
    return this.current.catalog;
  }

  /** Makes `catalog` current; the current one becomes the previous. Plans before swapping, so a catalog
   * that cannot be placed throws and leaves the table as it was. */
  update(catalog: CatalogIndex): void {
    if (catalog.generation === this.current.catalog.generation) return;
    const next = generation(catalog);
    this.previous = this.current;
    this.current = next;
  }

  route(bot: string): Route | undefined {
    const info = this.current.bots.get(bot);
    if (!info) return undefined;
    const pool = this.current.topology.assignment.get(bot)!;
    const before = this.previous?.topology.assignment.get(bot);
    return {
      bot,
      tenant: info.tenant,
      group: this.current.groupOfPool.get(pool)!,
      pool,
      ...(before !== undefined && before !== pool ? { previousPool: before } : {}),
    };
  }

  /** Whether a pool exists in the current or the previous generation (a pool named by an upstream header must). */
  knows(pool: string): boolean {
    return this.current.poolNames.has(pool) || (this.previous?.poolNames.has(pool) ?? false);
  }

  /** Names of the pools of the current generation. */
  pools(): ReadonlySet<string> {
    return this.current.poolNames;
  }

  /** The group of a pool of the current generation. */
  groupOf(pool: string): PoolGroup | undefined {
    return this.current.groupOfPool.get(pool);
  }

  /** Pools of a group in the current generation. */
  poolCount(group: string): number {
    return this.current.poolCounts.get(group) ?? 0;
  }
}
