import { Bot, Catalog, PoolGroup, groupOf } from '../catalog';
import { U64, compareU64, mix64, xxh64 } from './hash';

/** One pool: a Deployment in Kubernetes, a process locally. Memory figures are bytes. */
export interface Pool {
  name: string;
  group: string;
  /** Takes only the bots pinned to it (or, with strategy "dedicated", its one bot). */
  dedicated: boolean;
  /** The pool's memory budget: its container's memory request and limit. */
  budget: number;
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
  constructor(message: string) {
    super(message);
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

/** Name of shared pool `index` of a group: `<group>-<5 base-36 characters of a hash>`, stable as pools are added. */
export function poolName(group: string, index: number, taken?: ReadonlySet<string>): string {
  for (let salt = 0; ; salt++) {
    const h = xxh64(salt === 0 ? `${group}#${index}` : `${group}#${index}#${salt}`);
    const name = `${group}-${(h.lo % SUFFIX_SPACE).toString(36).padStart(5, '0')}`;
    if (!taken?.has(name)) return name;
  }
}

/** The pool that holds a bot in this topology, or undefined for a bot not in the catalog. */
export function poolFor(bot: string | Pick<Bot, 'id'>, topology: Topology): string | undefined {
  return topology.assignment.get(typeof bot === 'string' ? bot : bot.id);
}

interface PoolState {
  name: string;
  hash: U64;
  used: number;
  budget: number;
  bots: string[];
  encoders: Set<string>;
}

function newPool(name: string, group: PoolGroup): PoolState {
  return { name, hash: xxh64(name), used: group.poolOverhead, budget: group.memory, bots: [], encoders: new Set() };
}

function costIn(pool: PoolState, bot: Bot, encoderBytes: ReadonlyMap<string, number>): number {
  const enc = bot.model.encoder;
  return bot.model.memory + (enc !== undefined && !pool.encoders.has(enc) ? encoderBytes.get(enc) ?? 0 : 0);
}

function put(pool: PoolState, bot: Bot, cost: number): void {
  pool.used += cost;
  pool.bots.push(bot.id);
  if (bot.model.encoder !== undefined) pool.encoders.add(bot.model.encoder);
}

/** The key a bot ranks pools by: its locality key when the group asks for one, else its id. */
function localityKey(group: PoolGroup, bot: Bot): string {
  const locality = group.locality;
  if (locality === 'encoder') return bot.model.encoder !== undefined ? `encoder:${bot.model.encoder}` : `bot:${bot.id}`;
  if (typeof locality === 'object') {
    const v = bot.properties[locality.property];
    return v !== undefined ? `property:${locality.property}=${JSON.stringify(v)}` : `bot:${bot.id}`;
  }
  return `bot:${bot.id}`;
}

/**
 * Bounded-load rendezvous hashing weighted by memory: bots in a fixed hash order, each taking the
 * first pool in its ranking (by the integer score mix64(key, pool)) whose budget still fits it.
 * Returns the id of a bot that fits nowhere, or undefined when all are placed.
 */
function assign(group: PoolGroup, bots: readonly Bot[], pools: PoolState[], encoderBytes: ReadonlyMap<string, number>): Bot | undefined {
  const n = pools.length;
  const keyHashes = new Map<string, U64>();
  const ordered = bots.map((bot) => {
    const idHash = xxh64(bot.id);
    const key = localityKey(group, bot);
    let keyHash = keyHashes.get(key);
    if (!keyHash) {
      keyHash = key === `bot:${bot.id}` ? idHash : xxh64(key);
      keyHashes.set(key, keyHash);
    }
    const order = new Uint32Array(2);
    mix64(idHash.hi, idHash.lo, ORDER_SALT.hi, ORDER_SALT.lo, order);
    return { bot, idHash, keyHash, orderHi: order[0], orderLo: order[1] };
  });
  ordered.sort((a, b) => compareU64(a.orderHi, a.orderLo, b.orderHi, b.orderLo) || (a.bot.id < b.bot.id ? -1 : 1));

  const scores = new Uint32Array(2 * n);
  const tie = new Uint32Array(2);
  const tie2 = new Uint32Array(2);
  const out = new Uint32Array(2);
  // Bots sharing a locality key share a ranking: compute it once per key.
  const rankings = new Map<U64, number[]>();
  for (const { bot, idHash, keyHash } of ordered) {
    const ranking = rankings.get(keyHash);
    if (ranking) {
      const pool = ranking.map((i) => pools[i]).find((p) => p.used + costIn(p, bot, encoderBytes) <= p.budget);
      if (!pool) return bot;
      put(pool, bot, costIn(pool, bot, encoderBytes));
      continue;
    }
    let best = -1;
    for (let i = 0; i < n; i++) {
      mix64(keyHash.hi, keyHash.lo, pools[i].hash.hi, pools[i].hash.lo, out);
      scores[2 * i] = out[0];
      scores[2 * i + 1] = out[1];
      if (best < 0 || compareU64(out[0], out[1], scores[2 * best], scores[2 * best + 1]) > 0) best = i;
    }
    const shared = keyHash !== idHash;
    const rank = (): number[] => {
      const idx = Array.from({ length: n }, (_, i) => i);
      return idx.sort((a, b) => {
        const c = compareU64(scores[2 * b], scores[2 * b + 1], scores[2 * a], scores[2 * a + 1]);
        if (c !== 0) return c;
        // Equal scores for the key: tie-break by the bot id's own score.
        mix64(idHash.hi, idHash.lo, pools[a].hash.hi, pools[a].hash.lo, tie);
        mix64(idHash.hi, idHash.lo, pools[b].hash.hi, pools[b].hash.lo, tie2);
        return compareU64(tie2[0], tie2[1], tie[0], tie[1]);
      });
    };
    if (shared) {
      const r = rank();
      rankings.set(keyHash, r);
      best = r[0];
    }
    let pool = pools[best];
    let cost = costIn(pool, bot, encoderBytes);
    if (pool.used + cost > pool.budget) {
      const fit = (shared ? rankings.get(keyHash)! : rank()).map((i) => pools[i]).find((p) => p.used + costIn(p, bot, encoderBytes) <= p.budget);
      if (!fit) return bot;
      pool = fit;
      cost = costIn(pool, bot, encoderBytes);
    }
    put(pool, bot, cost);
  }
  return undefined;
}

/** The fewest pools whose budget at the fill factor holds the group's memory, encoders counted per pool that needs them. */
function autoPoolCount(group: PoolGroup, bots: readonly Bot[], encoderBytes: ReadonlyMap<string, number>): number {
  const fillPermille = Math.round(group.fillFactor * 1000);
  const target = Math.floor((group.memory * fillPermille) / 1000) - group.poolOverhead;
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
export function plan(catalog: Catalog, options: PlanOptions = {}): Topology {
  const encoderBytes = new Map(catalog.encoders.map((e) => [e.id, e.memory]));
  const byGroup = new Map<string, { pinned: Bot[]; hashed: Bot[] }>(catalog.groups.map((g) => [g.name, { pinned: [], hashed: [] }]));
  for (const bot of catalog.bots) {
    const group = groupOf(catalog, bot);
    if (!group) throw new PlacementError(`bot "${bot.id}" matches no pool group: widen a group selector or pin it`);
    byGroup.get(group.name)![bot.pin !== undefined ? 'pinned' : 'hashed'].push(bot);
  }
  const strategy = catalog.platform.strategy;
  const taken = new Set(catalog.groups.flatMap((g) => g.dedicatedPools));
  const pools: Pool[] = [];
  const groups: GroupTopology[] = [];
  const assignment = new Map<string, string>();
  const finish = (state: PoolState, group: PoolGroup, dedicated: boolean): void => {
    if (pools.some((p) => p.name === state.name)) {
      throw new PlacementError(`pool name "${state.name}" of group "${group.name}" is used twice: rename the group, the bot or the dedicated pool`);
    }
    const bots = state.bots.sort();
    pools.push({ name: state.name, group: group.name, dedicated, budget: state.budget, used: state.used, bots, encoders: [...state.encoders].sort() });
    for (const id of bots) assignment.set(id, state.name);
  };

  for (const group of catalog.groups) {
    const { pinned, hashed } = byGroup.get(group.name)!;
    for (const bot of [...pinned, ...hashed]) {
      const alone = group.poolOverhead + bot.model.memory + (bot.model.encoder !== undefined ? encoderBytes.get(bot.model.encoder) ?? 0 : 0);
      if (alone > group.memory && strategy !== 'single') {
        throw new PlacementError(
          `bot "${bot.id}" needs ${describe(alone)} (pool overhead + head + encoder) but a pool of group "${group.name}" has ${describe(group.memory)}: raise groups[].memory or shrink the model`,
        );
      }
    }
    const names: string[] = [];
    let shared: PoolState[] = [];
    if (strategy === 'dedicated') {
      shared = hashed.map((bot) => {
        const state = newPool(`${group.name}-${bot.id}`, group);
        put(state, bot, costIn(state, bot, encoderBytes));
        return state;
      });
    } else if (strategy === 'single') {
      const state = newPool(poolName(group.name, 0, taken), group);
      for (const bot of hashed) put(state, bot, costIn(state, bot, encoderBytes));
      state.budget = Math.max(state.budget, state.used);
      shared = hashed.length > 0 || group.dedicatedPools.length === 0 ? [state] : [];
    } else if (hashed.length > 0) {
      const fixed = options.pools?.[group.name] ?? (group.pools === 'auto' ? undefined : group.pools);
      for (let n = fixed ?? autoPoolCount(group, hashed, encoderBytes); ; n++) {
        shared = Array.from({ length: n }, (_, i) => newPool(poolName(group.name, i, taken), group));
        const unplaced = assign(group, hashed, shared, encoderBytes);
        if (!unplaced) break;
        if (fixed !== undefined || n >= hashed.length) {
          throw new PlacementError(
            `group "${group.name}" cannot fit its ${hashed.length} bots in ${n} pools of ${describe(group.memory)} (bot "${unplaced.id}" found no room): raise groups[].pools, set it to "auto", or raise groups[].memory`,
          );
        }
      }
    }
    for (const state of shared) {
      finish(state, group, strategy === 'dedicated');
      names.push(state.name);
    }
    for (const name of group.dedicatedPools) {
      const state = newPool(name, group);
      for (const bot of pinned.filter((b) => b.pin === name)) put(state, bot, costIn(state, bot, encoderBytes));
      if (state.used > state.budget) {
        throw new PlacementError(`dedicated pool "${name}" needs ${describe(state.used)} for its pinned bots but has ${describe(state.budget)}: raise groups[].memory of "${group.name}" or pin fewer bots to it`);
      }
      finish(state, group, true);
      names.push(name);
    }
    groups.push({ name: group.name, pools: names });
  }
  return { generation: catalog.generation, strategy, groups, pools, assignment };
}
