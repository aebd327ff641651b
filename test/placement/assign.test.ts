/**
 * Bounded-load hashing (rule 3 of README "Placement"), as runtime/src/placement/assign.ts does it for a
 * million bots: typed arrays, a radix sort for the walk's order, and for bots sharing a key a cursor that
 * skips the pools that can no longer take any of them. Here it must place exactly as the plain form it
 * replaced (`reference`: every bot scans its whole ranking from the top), on random groups made to spill:
 * few keys, small pools, heads from nothing to most of a pool, bots with and without an encoder.
 */
import fc from 'fast-check';
import { IndexBot, PoolGroup, parseCatalog } from '@botshard/runtime/catalog';
import { U64, compareU64, scoreHi, scoreLo, xxh64 } from '@botshard/runtime/hash';
import { assign, orderBy } from '@botshard/runtime/placement/assign';
import { PoolState, costIn, fillLimit, localityKey, newPool, put } from '@botshard/runtime/placement/pools';

const ORDER_SALT = xxh64('botshard/order');

/** Rule 3 as it was written before: one object per bot, a comparison sort, and a scan from the top of the ranking for every bot. */
function reference(group: PoolGroup, bots: readonly IndexBot[], pools: PoolState[], encoderBytes: ReadonlyMap<string, number>): IndexBot | undefined {
  const rank = (k: U64, id: U64) => {
    const score = (h: U64, p: PoolState) => {
      const lo = scoreLo(h.lo, p.hash.lo);
      return [scoreHi(h.hi, p.hash.hi, lo), lo];
    };
    return pools.map((_, i) => i).sort((a, b) => {
      const [sa, sb] = [score(k, pools[a]), score(k, pools[b])];
      const c = compareU64(sb[0], sb[1], sa[0], sa[1]);
      if (c !== 0) return c;
      const [ta, tb] = [score(id, pools[a]), score(id, pools[b])];
      return compareU64(tb[0], tb[1], ta[0], ta[1]);
    });
  };
  const ordered = bots.map((bot) => {
    const id = xxh64(bot.id);
    const lo = scoreLo(id.lo, ORDER_SALT.lo);
    return { bot, id, key: localityKey(group, bot), hi: scoreHi(id.hi, ORDER_SALT.hi, lo), lo };
  });
  ordered.sort((a, b) => compareU64(a.hi, a.lo, b.hi, b.lo) || (a.bot.id < b.bot.id ? -1 : 1));
  const fits = (pool: PoolState, bot: IndexBot, limit = pool.budget) => pool.used + costIn(pool, bot, encoderBytes) <= limit;
  const rankings = new Map<string, number[]>();
  for (const { bot, id, key } of ordered) {
    const shared = key !== bot.id;
    let ranking = rankings.get(key);
    if (!ranking) ranking = rank(shared ? xxh64(key) : id, id);
    if (shared) rankings.set(key, ranking);
    const index = (shared ? ranking.find((i) => fits(pools[i], bot, fillLimit(group))) : undefined) ?? ranking.find((i) => fits(pools[i], bot));
    if (index === undefined) return bot;
    put(pools[index], bot, costIn(pools[index], bot, encoderBytes));
  }
  return undefined;
}

const MiB = 1024 * 1024;

/** A random group and its bots, normalised (so that every default is filled). */
const scenario = fc
  .record({
    bots: fc.array(fc.record({ memory: fc.constantFrom(0, 1, 2, 3, 5, 8, 13, 40), encoder: fc.constantFrom(undefined, 'e0', 'e1', 'e2', 'e3'), lang: fc.constantFrom(undefined, 'en', 'fr') }), { minLength: 1, maxLength: 300 }),
    locality: fc.constantFrom<any>('none', 'encoder', { property: 'lang' }),
    pools: fc.integer({ min: 1, max: 14 }),
    memory: fc.constantFrom(48, 64, 100, 200),
    fillFactor: fc.constantFrom(0.5, 0.75, 0.9, 1),
  })
  .map((s) => {
    const catalog = parseCatalog({
      tenants: [{ id: 't' }],
      encoders: ['e0', 'e1', 'e2', 'e3'].map((id, i) => ({ id, path: `${id}.onnx`, memory: `${[4, 8, 16, 1][i]}Mi`, tokenizer: { kind: 'hashing', buckets: 8 }, dimensions: 4 })),
      groups: [{ name: 'g', realtime: true, memory: `${s.memory}Mi`, poolOverhead: '2Mi', fillFactor: s.fillFactor, locality: s.locality }],
      bots: s.bots.map((b, i) => ({
        id: `bot-${i}`,
        tenant: 't',
        realtime: true,
        ...(b.lang ? { properties: { lang: b.lang } } : {}),
        model: { head: `h${i}.onnx`, memory: b.memory * MiB, ...(b.encoder ? { encoder: b.encoder } : {}) },
        intents: [{ name: 'x' }],
      })),
    });
    return { group: catalog.groups[0], bots: catalog.bots, pools: s.pools, encoderBytes: new Map(catalog.encoders.map((e) => [e.id, e.memory])) };
  });

const poolsOf = (group: PoolGroup, n: number) => Array.from({ length: n }, (_, i) => newPool(`g-${i}`, group));
const shape = (pools: PoolState[]) => pools.map((p) => ({ used: p.used, bots: [...p.bots].sort(), encoders: [...p.encoders].sort() }));

describe('assign', () => {
  it('places every bot as a scan of its whole ranking would, or fails on the same bot', () => {
    let spilled = 0;
    fc.assert(
      fc.property(scenario, ({ group, bots, pools: n, encoderBytes }) => {
        const [ours, theirs] = [poolsOf(group, n), poolsOf(group, n)];
        const [a, b] = [assign(group, bots, ours, encoderBytes), reference(group, bots, theirs, encoderBytes)];
        expect(a?.id).toBe(b?.id);
        if (a === undefined) {
          expect(shape(ours)).toEqual(shape(theirs));
          // Each pool's bots come in the order of `bots` (sorted), so that plan() sorts them in one pass.
          for (const p of ours) expect(p.bots).toEqual([...p.bots].sort());
          if (ours.some((p) => p.used > fillLimit(group))) spilled++;
        }
      }),
      { numRuns: 400 },
    );
    expect(spilled).toBeGreaterThan(10);
  });
});

describe('orderBy', () => {
  it('sorts indices by a 64-bit value, ties by the comparator, as a comparison sort does', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(0, 1, 0xffff, 0x10000, 0xffffffff), fc.constantFrom(0, 7, 0x8000, 0xffffffff), fc.nat(3)), { maxLength: 200 }), (xs) => {
        const hi = Uint32Array.from(xs, (x) => x[0]);
        const lo = Uint32Array.from(xs, (x) => x[1]);
        const tie = (a: number, b: number) => xs[a][2] - xs[b][2] || a - b;
        const expected = xs.map((_, i) => i).sort((a, b) => compareU64(hi[a], lo[a], hi[b], lo[b]) || tie(a, b));
        expect([...orderBy(hi, lo, tie)]).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});
