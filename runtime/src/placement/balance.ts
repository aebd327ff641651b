import { IndexBot, PoolGroup } from '../catalog';
import { U64, compareU64, scoreHi, scoreLo, xxh64 } from '../hash';
import { PoolState, costIn, fillLimit, localityKey, put } from './pools';

/**
 * Balanced locality: how a group with a locality key and a fixed pool count places its bots.
 *
 * Bounded-load hashing alone co-locates bots sharing a key so well that, with few keys, whole pools
 * stay empty and a new pool takes whole keys (far more than its share). Here each key is a line of
 * bytes (its bots in the order of their id's hash, each as long as its head) cut into segments; bots
 * without a key share one key, "free". The group's pools are built one at a time in index order, each
 * from the ones before it:
 *
 * - pool 0 holds every key whole;
 * - pool q takes `target = total / (q + 1)` from pools 0..q-1: first, from any of them (in index order),
 *   what it holds above the cap `total / level + total / level / 4`, taken from its keys in q's
 *   rendezvous order, where level is the largest of 1, 2, ..., 8, 10, 12, 15, ... (each the last plus
 *   a quarter of it, at least 1) not above q + 1 (a cap that fell with every pool would cut every pool
 *   a sliver at every step, and each new pool would take a little of every key); then, key by key in
 *   q's rendezvous order, from that key's holders down to `target - target / 4`. Always from the high
 *   end of a segment and from a key's last segments first; and pool q never goes past the fill factor:
 *   when the bots landing in a piece would take it there, the cut falls between two bots, before the
 *   first that does not fit (from the high end).
 *
 * A bot lands in the segment that holds the middle of its bytes. Pool n-1's step is the only
 * difference between n-1 and n pools, so adding a pool moves only the bots it takes (1/n, the optimal);
 * every pool ends near the band around the mean, and pools take the keys they rank first, so a key
 * spreads over few pools. Divisions round down; positions are whole or half bytes, exact in any language.
 *
 * The result stands if every pool fits its budget (pool 0 keeps what the others could not take);
 * otherwise the group falls back to bounded-load hashing. Returns whether it stands.
 */
export function balance(group: PoolGroup, bots: readonly IndexBot[], pools: PoolState[], encoderBytes: ReadonlyMap<string, number>): boolean {
  const n = pools.length;
  let total = 0;
  for (const bot of bots) total += bot.model.memory;
  const keys = keysOf(group, bots);
  const load = new Array<number>(n).fill(0);
  load[0] = total;
  for (const key of keys) key.segments = [{ from: 0, to: key.weight, pool: 0 }];
  const state: Balancing = { group, keys, pools, load, total, limit: fillLimit(group), encoderBytes };

  // The cap moves down in steps of about a quarter: level runs 1, 2, ..., 8, 10, 12, 15, 18, 22, ...
  const step = (level: number) => Math.max(1, Math.floor(level / 4));
  let level = 1;
  for (let q = 1; q < n; q++) {
    while (level + step(level) <= q + 1) level += step(level);
    buildPool(state, q, level);
  }

  for (const key of keys) {
    let s = 0;
    key.bots.forEach((bot, j) => {
      while (s < key.segments.length - 1 && key.segments[s].to <= middle(key, j)) s++;
      const pool = pools[key.segments[s].pool];
      put(pool, bot, costIn(pool, bot, encoderBytes));
    });
  }
  return pools.every((p) => p.used <= p.budget);
}

/** What the pools' steps share: the keys' segments and each pool's load (bytes of segments it holds) change at each step. */
interface Balancing {
  group: PoolGroup;
  keys: Key[];
  pools: PoolState[];
  load: number[];
  total: number;
  /** Bytes a pool may use at the fill factor. */
  limit: number;
  encoderBytes: ReadonlyMap<string, number>;
}

/** Pool q's step (see `balance`): it takes its share from pools 0..q-1, first what they hold above the cap of `level`. */
function buildPool(state: Balancing, q: number, level: number): void {
  const { group, keys, pools, load, total, limit, encoderBytes } = state;
  const target = Math.floor(total / (q + 1));
  const lower = target - Math.floor(target / 4);
  const cap = Math.floor(total / level) + Math.floor(total / level / 4);
  const order = preference(keys, pools[q].hash);
  let taken = 0;
  // Pool q's memory as the bots it takes land: never past the fill factor.
  let used = group.poolOverhead;
  const encoders = new Set<string>();
  /**
   * Moves up to `wanted` bytes from the high end of segment i of a key to pool q, fewer if the bots
   * landing in them would take q past the fill factor (then the cut falls between two bots); returns
   * what it moved.
   */
  const take = (key: Key, i: number, wanted: number): number => {
    const seg = key.segments[i];
    let amount = Math.min(wanted, seg.to - seg.from);
    if (amount <= 0) return 0;
    const first = landing(key, seg.to - amount);
    const added = new Set<string>();
    let cost = 0;
    let j = landing(key, seg.to) - 1;
    for (; j >= first; j--) {
      const bot = key.bots[j];
      const enc = bot.model.encoder;
      const extra = bot.model.memory + (enc !== undefined && !encoders.has(enc) && !added.has(enc) ? encoderBytes.get(enc) ?? 0 : 0);
      if (used + cost + extra > limit) break;
      cost += extra;
      if (enc !== undefined) added.add(enc);
    }
    if (j >= first) amount = seg.to - key.ends[j];
    if (amount <= 0) return 0;
    used += cost;
    for (const enc of added) encoders.add(enc);
    load[seg.pool] -= amount;
    load[q] += amount;
    taken += amount;
    if (amount === seg.to - seg.from) seg.pool = q;
    else {
      key.segments.splice(i + 1, 0, { from: seg.to - amount, to: seg.to, pool: q });
      seg.to -= amount;
    }
    return amount;
  };
  for (let p = 0; p < q && taken < target; p++) {
    let excess = Math.min(load[p] - cap, target - taken);
    for (let k = 0; k < order.length && excess > 0; k++) {
      const key = order[k];
      for (let i = key.segments.length - 1; i >= 0 && excess > 0; i--) {
        const seg = key.segments[i];
        if (seg.pool !== p) continue;
        excess -= take(key, i, excess);
      }
    }
  }
  for (let k = 0; k < order.length && taken < target; k++) {
    const key = order[k];
    for (let i = key.segments.length - 1; i >= 0 && taken < target; i--) {
      const seg = key.segments[i];
      if (seg.pool === q) continue;
      take(key, i, Math.min(target - taken, load[seg.pool] - lower));
    }
  }
}

interface Segment {
  from: number;
  to: number;
  /** Index of the pool holding these bytes. */
  pool: number;
}

interface Key {
  name: string;
  hash: U64;
  /** In the order of their id's hash (then id). */
  bots: IndexBot[];
  /** Where each bot's bytes end on the key's line (a bot's bytes are the head's). */
  ends: number[];
  weight: number;
  segments: Segment[];
}

/** Bots by locality key; bots without one (their key would be their own id) share one key, "free". */
function keysOf(group: PoolGroup, bots: readonly IndexBot[]): Key[] {
  const byName = new Map<string, IndexBot[]>();
  for (const bot of bots) {
    const key = localityKey(group, bot);
    const name = key === bot.id ? 'free' : key;
    let list = byName.get(name);
    if (!list) byName.set(name, (list = []));
    list.push(bot);
  }
  return [...byName].map(([name, list]) => {
    const hashed = list.map((bot) => ({ bot, h: xxh64(bot.id) }));
    hashed.sort((a, b) => compareU64(a.h.hi, a.h.lo, b.h.hi, b.h.lo) || (a.bot.id < b.bot.id ? -1 : 1));
    const ends: number[] = [];
    let at = 0;
    for (const { bot } of hashed) ends.push((at += bot.model.memory));
    return { name, hash: xxh64(name), bots: hashed.map((x) => x.bot), ends, weight: at, segments: [] };
  });
}

/** The middle of bot j's bytes on its key's line (a half-byte position: compared, never stored). */
function middle(key: Key, j: number): number {
  return key.ends[j] - key.bots[j].model.memory / 2;
}

/** The first bot whose middle is at or after a position: the first to land at or after a cut there. */
function landing(key: Key, at: number): number {
  let lo = 0;
  let hi = key.bots.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (middle(key, mid) < at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Keys by descending rendezvous score against a pool (equal scores by name). */
function preference(keys: readonly Key[], pool: U64): Key[] {
  const scored = keys.map((key) => {
    const lo = scoreLo(key.hash.lo, pool.lo);
    return { key, hi: scoreHi(key.hash.hi, pool.hi, lo), lo };
  });
  scored.sort((a, b) => compareU64(b.hi, b.lo, a.hi, a.lo) || (a.key.name < b.key.name ? -1 : 1));
  return scored.map((s) => s.key);
}
