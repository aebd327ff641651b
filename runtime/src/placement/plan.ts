import { Catalog, CatalogIndex, IndexBot, PoolGroup, Problem, Strategy, formatProblems } from '../catalog';
import { groupOf } from './groups';
import { U64, compareU64, scoreHi, scoreLo, xxh64 } from '../hash';
import { balance } from './balance';
import { PoolState, costIn, fillLimit, localityKey, newPool, put, scaled } from './pools';

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
const ORDER_SALT = xxh64('botshard/order');

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

/** Pool indices by descending score of the key; equal scores (never seen, but possible) by the bot id's own score. */
function rank(hi: Uint32Array, lo: Uint32Array, idHash: U64, pools: readonly PoolState[]): number[] {
  const tie = (i: number) => {
    const l = scoreLo(idHash.lo, pools[i].hash.lo);
    return [scoreHi(idHash.hi, pools[i].hash.hi, l), l];
  };
  return Array.from({ length: pools.length }, (_, i) => i).sort((a, b) => {
    const c = compareU64(hi[b], lo[b], hi[a], lo[a]);
    if (c !== 0) return c;
    const [ta, tb] = [tie(a), tie(b)];
    return compareU64(tb[0], tb[1], ta[0], ta[1]);
  });
}

/**
 * Bounded-load rendezvous hashing weighted by memory: bots in a fixed hash order, each taking the
 * first pool in its ranking (by the integer score of its key and the pool) whose budget still fits
 * it. Returns a bot that fits nowhere, or undefined when all are placed.
 */
function assign(group: PoolGroup, bots: readonly IndexBot[], pools: PoolState[], encoderBytes: ReadonlyMap<string, number>): IndexBot | undefined {
  const n = pools.length;
  const keyHashes = new Map<string, U64>();
  const ordered = bots.map((bot) => {
    const idHash = xxh64(bot.id);
    const key = localityKey(group, bot);
    let keyHash = keyHashes.get(key);
    if (!keyHash) {
      keyHash = key === bot.id ? idHash : xxh64(key);
      keyHashes.set(key, keyHash);
    }
    const orderLo = scoreLo(idHash.lo, ORDER_SALT.lo);
    return { bot, idHash, keyHash, orderHi: scoreHi(idHash.hi, ORDER_SALT.hi, orderLo), orderLo };
  });
  ordered.sort((a, b) => compareU64(a.orderHi, a.orderLo, b.orderHi, b.orderLo) || (a.bot.id < b.bot.id ? -1 : 1));

  // The head alone not fitting rejects a full pool without looking at its encoders.
  const fits = (pool: PoolState, bot: IndexBot, limit = pool.budget) => pool.used + bot.model.memory <= limit && pool.used + costIn(pool, bot, encoderBytes) <= limit;
  // Bots sharing a locality key would fill their first pool to the brim before spilling; fill it only
  // to the group's fill factor first, so co-located pools keep the same headroom as the others.
  const soft = fillLimit(group);
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  const poolHi = Uint32Array.from(pools, (p) => p.hash.hi);
  const poolLo = Uint32Array.from(pools, (p) => p.hash.lo);
  // Bots sharing a locality key share a ranking: computed once per key.
  const rankings = new Map<U64, number[]>();
  for (const { bot, idHash, keyHash } of ordered) {
    const shared = keyHash !== idHash;
    let ranking = shared ? rankings.get(keyHash) : undefined;
    if (!ranking) {
      const kHi = keyHash.hi;
      const kLo = keyHash.lo;
      if (!shared) {
        // The common case: the top pool has room, and no full ranking is needed.
        let best = 0;
        let bestHi = -1;
        let bestLo = -1;
        for (let i = 0; i < n; i++) {
          const l = scoreLo(kLo, poolLo[i]);
          const h = scoreHi(kHi, poolHi[i], l);
          if (h > bestHi || (h === bestHi && l > bestLo)) {
            best = i;
            bestHi = h;
            bestLo = l;
          }
        }
        if (fits(pools[best], bot)) {
          put(pools[best], bot, costIn(pools[best], bot, encoderBytes));
          continue;
        }
      }
      for (let i = 0; i < n; i++) {
        lo[i] = scoreLo(kLo, poolLo[i]);
        hi[i] = scoreHi(kHi, poolHi[i], lo[i]);
      }
      ranking = rank(hi, lo, idHash, pools);
      if (shared) rankings.set(keyHash, ranking);
    }
    let index = shared ? ranking.find((i) => fits(pools[i], bot, soft)) : undefined;
    if (index === undefined) index = ranking.find((i) => fits(pools[i], bot));
    if (index === undefined) return bot;
    put(pools[index], bot, costIn(pools[index], bot, encoderBytes));
  }
  return undefined;
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
    const u = users.get(enc) ?? { bots: 0, heads: 0 };
    u.bots += 1;
    u.heads += bot.model.memory;
    users.set(enc, u);
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
  for (const group of groups) {
    const { pinned, hashed } = byGroup.get(group.name)!;
    for (const bot of [...pinned, ...hashed]) {
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
