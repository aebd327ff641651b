import { IndexBot, PoolGroup } from '../catalog';
import { U64, compareU64, scoreHi, scoreLo, xxh64 } from '../hash';
import { PoolState, fillLimit, localityKey } from './pools';

const ORDER_SALT = xxh64('botshard/order');

/**
 * The group's bots as `assign` reads them, in typed arrays filled in one pass over the bots (rather than
 * an object per bot, each visited at random in the walk): each bot's id hash, head, encoder (an index
 * into `encoders`, -1 for none) and locality key (an index into `keys`, -1: it ranks pools by its own id).
 */
interface Walk {
  idHi: Uint32Array;
  idLo: Uint32Array;
  memory: Float64Array;
  encoder: Int32Array;
  /** The group's encoder ids, and the bytes of each. */
  encoders: string[];
  encoderBytes: Float64Array;
  key: Int32Array;
  /** The hashes of the shared locality keys. */
  keys: U64[];
  /** Bot indices in the fixed hash order: by the id's hash salted with ORDER_SALT, then by id. */
  order: Uint32Array;
}

/** Index of `value` in `list`, added when new. */
function indexIn(index: Map<string, number>, list: string[], value: string): number {
  let i = index.get(value);
  if (i === undefined) {
    index.set(value, (i = list.length));
    list.push(value);
  }
  return i;
}

function walk(group: PoolGroup, bots: readonly IndexBot[], encoderBytes: ReadonlyMap<string, number>): Walk {
  const m = bots.length;
  const w: Walk = {
    idHi: new Uint32Array(m), idLo: new Uint32Array(m), memory: new Float64Array(m), encoder: new Int32Array(m),
    encoders: [], encoderBytes: new Float64Array(0), key: new Int32Array(m), keys: [], order: new Uint32Array(0),
  };
  const orderHi = new Uint32Array(m);
  const orderLo = new Uint32Array(m);
  const encoderIndex = new Map<string, number>();
  const keyIndex = new Map<string, number>();
  const keyNames: string[] = [];
  const encoderKey: number[] = [];
  for (let b = 0; b < m; b++) {
    const bot = bots[b];
    const h = xxh64(bot.id);
    w.idHi[b] = h.hi;
    w.idLo[b] = h.lo;
    orderLo[b] = scoreLo(h.lo, ORDER_SALT.lo);
    orderHi[b] = scoreHi(h.hi, ORDER_SALT.hi, orderLo[b]);
    w.memory[b] = bot.model.memory;
    const e = bot.model.encoder === undefined ? -1 : indexIn(encoderIndex, w.encoders, bot.model.encoder);
    w.encoder[b] = e;
    if (group.locality === 'encoder') {
      // The key of an encoder's bots, made once per encoder.
      w.key[b] = e < 0 ? -1 : (encoderKey[e] ??= indexIn(keyIndex, keyNames, localityKey(group, bot)));
    } else {
      // Bot ids cannot contain ":", so a key other than the id is a shared one (see localityKey).
      const k = localityKey(group, bot);
      w.key[b] = k === bot.id ? -1 : indexIn(keyIndex, keyNames, k);
    }
  }
  w.encoderBytes = Float64Array.from(w.encoders, (e) => encoderBytes.get(e) ?? 0);
  w.keys = keyNames.map((k) => xxh64(k));
  w.order = orderBy(orderHi, orderLo, (a, b) => (bots[a].id < bots[b].id ? -1 : 1));
  return w;
}

/**
 * Indices 0..m-1 sorted by the 64-bit (hi, lo), equal ones by `tie`: a radix sort (four stable passes
 * of 16 bits): linear in the bots, where a comparison sort is n log n.
 */
export function orderBy(hi: Uint32Array, lo: Uint32Array, tie: (a: number, b: number) => number): Uint32Array {
  const m = hi.length;
  let from = new Uint32Array(m);
  let to = new Uint32Array(m);
  for (let i = 0; i < m; i++) from[i] = i;
  const count = new Uint32Array(0x10001);
  for (const [word, shift] of [[lo, 0], [lo, 16], [hi, 0], [hi, 16]] as const) {
    count.fill(0);
    for (let i = 0; i < m; i++) count[((word[i] >>> shift) & 0xffff) + 1]++;
    for (let d = 1; d <= 0xffff; d++) count[d] += count[d - 1];
    for (let i = 0; i < m; i++) {
      const x = from[i];
      to[count[(word[x] >>> shift) & 0xffff]++] = x;
    }
    [from, to] = [to, from];
  }
  const same = (a: number, b: number) => hi[a] === hi[b] && lo[a] === lo[b];
  for (let i = 0; i < m; ) {
    let end = i + 1;
    while (end < m && same(from[i], from[end])) end++;
    if (end - i > 1) from.subarray(i, end).sort(tie);
    i = end;
  }
  return from;
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

/** The scores of a key against every pool, into (hi, lo). */
function score(kHi: number, kLo: number, poolHi: Uint32Array, poolLo: Uint32Array, hi: Uint32Array, lo: Uint32Array): void {
  for (let i = 0; i < poolHi.length; i++) {
    lo[i] = scoreLo(kLo, poolLo[i]);
    hi[i] = scoreHi(kHi, poolHi[i], lo[i]);
  }
}

/**
 * For each position of the walk, the smallest head of the bots of its key from there on: a pool that
 * cannot take that many bytes more will never take another bot of the key.
 */
function smallestAhead(w: Walk): Float64Array {
  const least = new Float64Array(w.keys.length).fill(Infinity);
  const ahead = new Float64Array(w.order.length);
  for (let j = w.order.length - 1; j >= 0; j--) {
    const b = w.order[j];
    const k = w.key[b];
    if (k < 0) continue;
    least[k] = Math.min(least[k], w.memory[b]);
    ahead[j] = least[k];
  }
  return ahead;
}

/** The pool a bot ranks first by its own id (the common case: it has room, and no full ranking is needed). */
function ownPool(kHi: number, kLo: number, poolHi: Uint32Array, poolLo: Uint32Array): number {
  let best = 0;
  let bestHi = -1;
  let bestLo = -1;
  for (let i = 0; i < poolHi.length; i++) {
    const l = scoreLo(kLo, poolLo[i]);
    const h = scoreHi(kHi, poolHi[i], l);
    if (h > bestHi || (h === bestHi && l > bestLo)) {
      best = i;
      bestHi = h;
      bestLo = l;
    }
  }
  return best;
}

/**
 * Bounded-load rendezvous hashing weighted by memory: bots in a fixed hash order, each taking the
 * first pool in its ranking (by the integer score of its key and the pool) whose budget still fits
 * it. Returns a bot that fits nowhere, or undefined when all are placed, each pool's `bots` then in
 * the order of `bots` (sorted, as a catalog's are, so that sorting them again takes one pass).
 *
 * Bots sharing a key share a ranking, walked from a cursor (one for the fill factor, one for the
 * budget): the pools before it cannot take even the smallest bot of the key still to come, and never
 * will (a pool only fills up), so the walk finds what a scan from the top would, in about one pass over
 * the ranking per key instead of one per bot.
 */
export function assign(group: PoolGroup, bots: readonly IndexBot[], pools: PoolState[], encoderBytes: ReadonlyMap<string, number>): IndexBot | undefined {
  const n = pools.length;
  const w = walk(group, bots, encoderBytes);
  const ahead = smallestAhead(w);
  const encoders = w.encoders.length;
  /** has[p * encoders + e]: pool p holds encoder e. */
  const has = new Uint8Array(n * encoders);
  pools.forEach((pool, p) => w.encoders.forEach((e, i) => (has[p * encoders + i] = pool.encoders.has(e) ? 1 : 0)));
  /** What bot b adds to pool p: its head, plus its encoder if the pool does not hold it yet. */
  const cost = (p: number, b: number) => {
    const e = w.encoder[b];
    return w.memory[b] + (e >= 0 && has[p * encoders + e] === 0 ? w.encoderBytes[e] : 0);
  };
  // The head alone not fitting rejects a full pool without looking at its encoders.
  const fits = (p: number, b: number, limit = pools[p].budget) => pools[p].used + w.memory[b] <= limit && pools[p].used + cost(p, b) <= limit;
  // Bots sharing a locality key would fill their first pool to the brim before spilling; fill it only
  // to the group's fill factor first, so co-located pools keep the same headroom as the others.
  const soft = fillLimit(group);
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  const poolHi = Uint32Array.from(pools, (p) => p.hash.hi);
  const poolLo = Uint32Array.from(pools, (p) => p.hash.lo);
  const rankings: Array<number[] | undefined> = new Array(w.keys.length);
  const from = { soft: new Int32Array(w.keys.length), hard: new Int32Array(w.keys.length) };
  /** The first pool of key k's ranking from its cursor that fits bot b (at walk position j) under `limit` (else each pool's budget); advances the cursor. */
  const first = (ranking: number[], k: number, j: number, b: number, cursor: Int32Array, limit?: number) => {
    let i = cursor[k];
    while (i < n && pools[ranking[i]].used + ahead[j] > (limit ?? pools[ranking[i]].budget)) i++;
    cursor[k] = i;
    for (; i < n; i++) if (fits(ranking[i], b, limit)) return ranking[i];
    return -1;
  };
  const where = new Int32Array(bots.length);
  for (let j = 0; j < w.order.length; j++) {
    const b = w.order[j];
    const k = w.key[b];
    let p: number;
    if (k < 0) {
      p = ownPool(w.idHi[b], w.idLo[b], poolHi, poolLo);
      if (!fits(p, b)) {
        score(w.idHi[b], w.idLo[b], poolHi, poolLo, hi, lo);
        p = rank(hi, lo, { hi: w.idHi[b], lo: w.idLo[b] }, pools).find((i) => fits(i, b)) ?? -1;
      }
    } else {
      let ranking = rankings[k];
      if (!ranking) {
        score(w.keys[k].hi, w.keys[k].lo, poolHi, poolLo, hi, lo);
        ranking = rankings[k] = rank(hi, lo, { hi: w.idHi[b], lo: w.idLo[b] }, pools);
      }
      p = first(ranking, k, j, b, from.soft, soft);
      if (p < 0) p = first(ranking, k, j, b, from.hard);
    }
    if (p < 0) return bots[b];
    pools[p].used += cost(p, b);
    const e = w.encoder[b];
    if (e >= 0 && has[p * encoders + e] === 0) {
      has[p * encoders + e] = 1;
      pools[p].encoders.add(w.encoders[e]);
    }
    where[b] = p;
  }
  for (let b = 0; b < bots.length; b++) pools[where[b]].bots.push(bots[b].id);
  return undefined;
}
