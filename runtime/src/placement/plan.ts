import { Catalog, CatalogIndex, IndexBot, PoolGroup, Problem, Strategy, formatProblems } from '../catalog';
import { groupOf } from './groups';
import { xxh64 } from '../hash';
import { assign } from './assign';
import { balance } from './balance';
import { PoolState, costIn, fillLimit, newPool, put, scaled } from './pools';

/** One pool: a Deployment in Kubernetes, a process locally. Memory figures are bytes. */
export interface Pool {
  name: string;
  group: string;
  /** Takes only the bots pinned to it (or, with strategy "dedicated", its one bot). */
  dedicated: boolean;
  /** The pool's memory budget: its container's memory request and limit. */
  budget: number;
  /** What placement may assign it: the budget, times the group's overcommit when set (then `used` may exceed the budget). */
  capacity: number;
  /** Planned memory: overhead + each distinct encoder once + each bot's head. */
  used: number;
  /** Bot ids, sorted. */
  bots: string[];
  /** Distinct encoder ids, sorted. */
  encoders: string[];
}

export interface GroupTopology {
  name: string;
  /** Names of the group's pools: shared pools in index order, then dedicated ones. */
  pools: string[];
}

/** Which pool holds which bot, for one catalog generation. Same catalog, same topology, in any process. */
export interface Topology {
  generation: string;
  strategy: Catalog['platform']['strategy'];
  groups: GroupTopology[];
  pools: Pool[];
  /** bot id -> pool name */
  assignment: ReadonlyMap<string, string>;
}

/** The catalog cannot be placed: a bot that fits no pool, or a group whose bots do not fit. */
export class PlacementError extends Error {
  constructor(
    message: string,
    /** Every problem found, each with its field path, when there are several of a kind. */
    readonly problems: readonly Problem[] = [],
  ) {
    super(problems.length > 0 ? `${message}\n${formatProblems(problems)}` : message);
    this.name = 'PlacementError';
  }
}

/** Options for experiments and benchmarks; production code plans from the catalog alone. */
export interface PlanOptions {
  /** Overrides the pool count of groups, by group name. */
  readonly pools?: Readonly<Record<string, number>>;
}

const SUFFIX_SPACE = 36 ** 5;

/**
 * Name of shared pool `index` of a group: `<group>-<5 base-36 characters of a hash>`, stable as pools are
 * added. A name in `taken` is drawn again with a salt (`poolNames` passes the names before it).
 */
export function poolName(group: string, index: number, taken?: ReadonlySet<string>): string {
  for (let salt = 0; ; salt++) {
    const h = xxh64(salt === 0 ? `${group}#${index}` : `${group}#${index}#${salt}`);
    const name = `${group}-${(h.lo % SUFFIX_SPACE).toString(36).padStart(5, '0')}`;
    if (!taken?.has(name)) return name;
  }
}

/**
 * The names of a group's first `count` shared pools, never two alike: pool i is drawn against the dedicated
 * pools' names (`taken`) and the names of pools 0..i-1, so adding pools never renames one, and a group whose
 * suffixes would collide (about k²/(2·36⁵) for k pools) gets a salted name for the later pool instead of an
 * error. Where no suffix collides, every name is `poolName(group, i)`.
 */
export function poolNames(group: string, count: number, taken: ReadonlySet<string> = new Set()): string[] {
  const drawn = new Set(taken);
  return Array.from({ length: count }, (_, i) => {
    const name = poolName(group, i, drawn);
    drawn.add(name);
    return name;
  });
}

/** The pool that holds a bot in this topology, or undefined for a bot not in the catalog. */
export function poolFor(bot: string | Pick<IndexBot, 'id'>, topology: Topology): string | undefined {
  return topology.assignment.get(typeof bot === 'string' ? bot : bot.id);
}

/** The group as hashing sees it: with overcommit, each pool's memory times the overcommit (integer bytes). */
function capacityGroup(group: PoolGroup): PoolGroup {
  if (group.overcommit === undefined) return group;
  return { ...group, memory: scaled(group.memory, group.overcommit) };
}

/** The fewest pools whose budget at the fill factor holds the group's memory, encoders counted per pool that needs them. */
function autoPoolCount(group: PoolGroup, bots: readonly IndexBot[], encoderBytes: ReadonlyMap<string, number>): number {
  const target = fillLimit(group) - group.poolOverhead;
  const capacity = target > 0 ? target : group.memory - group.poolOverhead;
  let heads = 0;
  const users = new Map<string, { bots: number; heads: number }>();
  for (const bot of bots) {
    heads += bot.model.memory;
    const enc = bot.model.encoder;
    if (enc === undefined) continue;
    let u = users.get(enc);
    if (!u) users.set(enc, (u = { bots: 0, heads: 0 }));
    u.bots += 1;
    u.heads += bot.model.memory;
  }
  const colocated = group.locality === 'encoder';
  for (let n = 1; n < bots.length; n++) {
    let need = heads;
    for (const [enc, u] of users) {
      const size = encoderBytes.get(enc) ?? 0;
      // Co-located bots of an encoder fill as few pools as their heads need; scattered ones reach every pool.
      const spread = colocated ? Math.ceil((u.heads + size) / capacity) : u.bots;
      need += size * Math.max(1, Math.min(n, u.bots, spread));
    }
    if (need <= n * capacity) return n;
  }
  return Math.max(1, bots.length);
}

function describe(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Plans the catalog: the pools of every group and the pool of every bot.
 * Pins first (dedicated pools take only their pinned bots); then each bot's group by selector;
 * inside a group, bounded-load rendezvous hashing weighted by memory (see `assign`).
 */
export function plan(catalog: CatalogIndex, options: PlanOptions = {}): Topology {
  const encoderBytes = new Map(catalog.encoders.map((e) => [e.id, e.memory]));
  const byGroup = botsByGroup(catalog);
  const strategy = catalog.platform.strategy;
  if (strategy !== 'single') checkBotsFit(catalog.groups, byGroup, encoderBytes);
  const taken = new Set(catalog.groups.flatMap((g) => g.dedicatedPools));
  const pools: Pool[] = [];
  const groups: GroupTopology[] = [];
  const assignment = new Map<string, string>();
  const names = new Set<string>();
  /** `budget`: the container's memory (a shared pool of an overcommitted group is placed against more, its state's budget). */
  const finish = (state: PoolState, group: PoolGroup, dedicated: boolean, budget = state.budget): void => {
    if (names.has(state.name)) {
      throw new PlacementError(`pool name "${state.name}" of group "${group.name}" is used twice: rename the group, the bot or the dedicated pool`);
    }
    names.add(state.name);
    const bots = state.bots.sort();
    pools.push({ name: state.name, group: group.name, dedicated, budget, capacity: state.budget, used: state.used, bots, encoders: [...state.encoders].sort() });
    for (const id of bots) assignment.set(id, state.name);
  };

  for (const group of catalog.groups) {
    const { pinned, hashed } = byGroup.get(group.name)!;
    const groupPools: string[] = [];
    for (const state of sharedPools(group, hashed, strategy, taken, encoderBytes, options)) {
      finish(state, group, strategy === 'dedicated', strategy === 'sharded' ? group.memory : state.budget);
      groupPools.push(state.name);
    }
    for (const name of group.dedicatedPools) {
      const state = newPool(name, group);
      for (const bot of pinned.filter((b) => b.pin === name)) put(state, bot, costIn(state, bot, encoderBytes));
      if (state.used > state.budget) {
        throw new PlacementError(`dedicated pool "${name}" needs ${describe(state.used)} for its pinned bots but has ${describe(state.budget)}: raise groups[].memory of "${group.name}" or pin fewer bots to it`);
      }
      finish(state, group, true);
      groupPools.push(name);
    }
    groups.push({ name: group.name, pools: groupPools });
  }
  return { generation: catalog.generation, strategy, groups, pools, assignment };
}

/** Each group's bots, pinned and hashed (in catalog order); throws on the first bot that has no group. */
function botsByGroup(catalog: CatalogIndex): Map<string, { pinned: IndexBot[]; hashed: IndexBot[] }> {
  const byGroup = new Map<string, { pinned: IndexBot[]; hashed: IndexBot[] }>(catalog.groups.map((g) => [g.name, { pinned: [], hashed: [] }]));
  for (const bot of catalog.bots) {
    const group = groupOf(catalog, bot);
    if (!group) throw new PlacementError(`bot "${bot.id}" matches no pool group: widen a group selector or pin it`);
    byGroup.get(group.name)![bot.pin !== undefined ? 'pinned' : 'hashed'].push(bot);
  }
  return byGroup;
}

/** Throws listing every bot too big for any pool of its group, all at once (not for "single": its one pool grows to fit). */
function checkBotsFit(groups: readonly PoolGroup[], byGroup: Map<string, { pinned: IndexBot[]; hashed: IndexBot[] }>, encoderBytes: Map<string, number>): void {
  const tooBig: Problem[] = [];
  // A head that fits beside the largest encoder fits beside its own: most bots need no encoder lookup.
  let largestEncoder = 0;
  for (const bytes of encoderBytes.values()) largestEncoder = Math.max(largestEncoder, bytes);
  for (const group of groups) {
    const { pinned, hashed } = byGroup.get(group.name)!;
    for (const bot of pinned.concat(hashed)) {
      if (group.poolOverhead + bot.model.memory + largestEncoder <= group.memory) continue;
      const encoder = bot.model.encoder !== undefined ? encoderBytes.get(bot.model.encoder) ?? 0 : 0;
      const alone = group.poolOverhead + bot.model.memory + encoder;
      if (alone <= group.memory) continue;
      tooBig.push({
        path: `bots (${bot.id}).model.memory`,
        message: `needs ${describe(alone)} in a pool (overhead ${describe(group.poolOverhead)} + head ${describe(bot.model.memory)}${encoder ? ` + encoder ${describe(encoder)}` : ''}) but a pool of group "${group.name}" has ${describe(group.memory)}`,
        hint: `raise groups[].memory of "${group.name}" or shrink the model`,
      });
    }
  }
  if (tooBig.length > 0) throw new PlacementError(`${tooBig.length} bot${tooBig.length === 1 ? '' : 's'} cannot fit in a pool of ${tooBig.length === 1 ? 'its' : 'their'} group:`, tooBig);
}

/** The pools of a group's hashed (unpinned) bots, by strategy: one per bot, one for all, or sharded by hashing. */
function sharedPools(group: PoolGroup, hashed: IndexBot[], strategy: Strategy, taken: Set<string>, encoderBytes: Map<string, number>, options: PlanOptions): PoolState[] {
  if (strategy === 'dedicated') {
    return hashed.map((bot) => {
      const state = newPool(`${group.name}-${bot.id}`, group);
      put(state, bot, costIn(state, bot, encoderBytes));
      return state;
    });
  }
  if (strategy === 'single') {
    const state = newPool(poolName(group.name, 0, taken), group);
    for (const bot of hashed) put(state, bot, costIn(state, bot, encoderBytes));
    state.budget = Math.max(state.budget, state.used);
    return hashed.length > 0 || group.dedicatedPools.length === 0 ? [state] : [];
  }
  if (hashed.length === 0) return [];
  // With overcommit, hashing places bots against the pool's memory times the overcommit (the pool keeps what fits resident).
  const placing = capacityGroup(group);
  const fixed = options.pools?.[group.name] ?? (group.pools === 'auto' ? undefined : group.pools);
  for (let n = fixed ?? autoPoolCount(placing, hashed, encoderBytes); ; n++) {
    const fresh = () => poolNames(group.name, n, taken).map((name) => newPool(name, placing));
    let shared = fresh();
    // A fixed count with a locality key: balanced (an auto count is sized by memory, which keeps its pools full).
    const balanced = fixed !== undefined && group.locality !== 'none';
    if (balanced && balance(placing, hashed, shared, encoderBytes)) return shared;
    if (balanced) shared = fresh();
    const unplaced = assign(placing, hashed, shared, encoderBytes);
    if (!unplaced) return shared;
    if (fixed !== undefined || n >= hashed.length) {
      throw new PlacementError(
        `group "${group.name}" cannot fit its ${hashed.length} bots in ${n} pools of ${describe(placing.memory)}${placing === group ? '' : ` (${describe(group.memory)} x overcommit ${group.overcommit})`} (bot "${unplaced.id}" found no room): raise groups[].pools, set it to "auto", or raise groups[].memory`,
      );
    }
  }
}
