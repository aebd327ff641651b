/**
 * Placement rule by rule on small catalogs (runtime/src/placement: plan, pools, diff, json, warnings):
 * the golden vectors; bounded-load rendezvous hashing checked against a few lines written from the rule
 * (each bot in the first pool of its ranking that had room); pool names; automatic pool counts; the
 * strategies; pins and dedicated pools; overcommit; every error and warning a user reads; and what a
 * diff of two plans reports. Fast and deterministic (the randomised and large-scale properties live in
 * plan.test.ts, locality.test.ts and oracle.test.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog, parseCatalog } from '@botshard/runtime/catalog';
import { scoreHi, scoreLo, toHex, xxh64 } from '@botshard/runtime/hash';
import { PlacementError, Topology, countMoves, diffTopologies, fillLimit, placementWarnings, plan, poolFor, poolName, poolNames, topologyToJson } from '@botshard/runtime/placement';
import { costIn, localityKey, newPool, put, scaled } from '@botshard/runtime/placement/pools';
import { syntheticCatalog } from '../../bench/synthetic';
import { GOLDEN_CATALOGS } from '../golden/generate';

const MiB = 1024 * 1024;

interface BotSpec {
  id: string;
  memory: number;
  encoder?: string;
  realtime?: boolean;
  properties?: Record<string, string | number | boolean>;
  pin?: string;
  tenant?: string;
  head?: string;
  intents?: string[];
}

/** A catalog input of one group (or the given ones) holding the given bots; memory figures are bytes. */
function input(o: { bots: BotSpec[]; groups?: any[]; group?: Record<string, unknown>; encoders?: Record<string, number>; strategy?: string }): any {
  return {
    platform: o.strategy ? { strategy: o.strategy } : {},
    tenants: [{ id: 't' }],
    encoders: Object.entries(o.encoders ?? {}).map(([id, memory]) => ({ id, path: `${id}.onnx`, memory, tokenizer: { kind: 'hashing', buckets: 8 }, dimensions: 4 })),
    groups: (o.groups ?? [{ name: 'g', realtime: true, memory: 10 * MiB, locality: 'none', ...o.group }]).map((g) => ({ poolOverhead: MiB, ...g })),
    bots: o.bots.map((b) => ({
      id: b.id,
      tenant: b.tenant ?? 't',
      realtime: b.realtime ?? true,
      ...(b.properties ? { properties: b.properties } : {}),
      model: { head: b.head ?? `${b.id}.onnx`, memory: b.memory, ...(b.encoder ? { encoder: b.encoder } : {}) },
      intents: (b.intents ?? ['a']).map((name) => ({ name })),
      ...(b.pin ? { pin: b.pin } : {}),
    })),
  };
}

const catalogOf = (o: Parameters<typeof input>[0]) => parseCatalog(input(o));
const bots = (n: number, memory: number, extra: (i: number) => Partial<BotSpec> = () => ({})): BotSpec[] => Array.from({ length: n }, (_, i) => ({ id: `bot-${i}`, memory, ...extra(i) }));

/** The 64-bit rendezvous score of two strings, as a BigInt (from the hash primitives only). */
function score(key: string, pool: string): bigint {
  const k = xxh64(key);
  const p = xxh64(pool);
  const lo = scoreLo(k.lo, p.lo);
  return (BigInt(scoreHi(k.hi, p.hi, lo)) << 32n) | BigInt(lo);
}

/** The rule's name of shared pool `i` of a group: `<group>-` and 5 base-36 digits of a hash. */
function ruleName(group: string, i: number, salt = 0): string {
  const h = xxh64(salt === 0 ? `${group}#${i}` : `${group}#${i}#${salt}`);
  return `${group}-${(h.lo % 36 ** 5).toString(36).padStart(5, '0')}`;
}

/**
 * Bounded-load rendezvous hashing, written from the rule: bots in ascending order of their id's score
 * against "botshard/order" (then id); each to the first pool, by descending score of its key against the
 * pool, whose used memory plus the bot's cost stays within the limit (a key shared by several bots first
 * within the fill factor, then within the budget).
 */
function ruleHashing(catalog: Catalog, group: Catalog['groups'][number], names: string[], memory = group.memory): Map<string, string> | string {
  const encoderBytes = new Map(catalog.encoders.map((e) => [e.id, e.memory]));
  const members = catalog.bots.filter((b) => b.pin === undefined);
  const state = names.map((name) => ({ name, used: group.poolOverhead, encoders: new Set<string>() }));
  const soft = Math.floor((memory * Math.round(group.fillFactor * 1000)) / 1000);
  const ordered = [...members].sort((a, b) => {
    const d = score(a.id, 'botshard/order') - score(b.id, 'botshard/order');
    return d < 0n ? -1 : d > 0n ? 1 : a.id < b.id ? -1 : 1;
  });
  const out = new Map<string, string>();
  for (const bot of ordered) {
    const key = localityKey(group, bot);
    const ranking = [...state].sort((a, b) => {
      const d = score(key, b.name) - score(key, a.name);
      return d < 0n ? -1 : d > 0n ? 1 : 0;
    });
    const cost = (p: (typeof state)[number]) => bot.model.memory + (bot.model.encoder && !p.encoders.has(bot.model.encoder) ? encoderBytes.get(bot.model.encoder)! : 0);
    const shared = key !== bot.id;
    const pick = (shared ? ranking.find((p) => p.used + cost(p) <= soft) : undefined) ?? ranking.find((p) => p.used + cost(p) <= memory);
    if (!pick) return bot.id;
    pick.used += cost(pick);
    if (bot.model.encoder) pick.encoders.add(bot.model.encoder);
    out.set(bot.id, pick.name);
  }
  return out;
}

describe('golden vectors', () => {
  test('the recorded assignments of the seeded catalogs (every locality, balanced included)', () => {
    const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../golden/placement.json'), 'utf8'));
    for (const [name, opts] of Object.entries(GOLDEN_CATALOGS)) {
      const catalog = parseCatalog(syntheticCatalog(opts));
      const topology = plan(catalog);
      expect([name, topology.generation]).toEqual([name, golden.catalogs[name].generation]);
      expect(topology.pools.map((p) => p.name)).toEqual(golden.catalogs[name].pools);
      expect(Object.fromEntries(topology.assignment)).toEqual(golden.catalogs[name].assignment);
    }
    expect(toHex(xxh64('realtime#0'))).toBe(golden.xxh64['realtime#0']);
  });
});

describe('bounded-load hashing', () => {
  test('with room everywhere, each bot is in its top-ranked pool', () => {
    const c = catalogOf({ bots: bots(40, 10_000), group: { pools: 5, memory: 10 * MiB } });
    const t = plan(c);
    const names = [0, 1, 2, 3, 4].map((i) => ruleName('g', i));
    expect(t.pools.map((p) => p.name)).toEqual(names);
    expect(Object.fromEntries(t.assignment)).toEqual(Object.fromEntries(ruleHashing(c, c.groups[0], names) as Map<string, string>));
    // And that is the top pool by score (no pool is full).
    for (const bot of c.bots) {
      const top = [...names].sort((a, b) => (score(bot.id, b) > score(bot.id, a) ? 1 : -1))[0];
      expect(poolFor(bot.id, t)).toBe(top);
    }
  });

  test('tight budgets: a bot spills to the next pool of its ranking that has room, in the fixed hash order', () => {
    // 4 pools of 10 MiB (1 MiB overhead) for 30 bots of 1 MiB: about 3/4 full, many top pools fill up.
    const c = catalogOf({ bots: bots(30, MiB), group: { pools: 4 } });
    const names = [0, 1, 2, 3].map((i) => ruleName('g', i));
    const t = plan(c);
    expect(Object.fromEntries(t.assignment)).toEqual(Object.fromEntries(ruleHashing(c, c.groups[0], names) as Map<string, string>));
    for (const p of t.pools) expect(p.used).toBe(MiB + p.bots.length * MiB);
    expect(Math.max(...t.pools.map((p) => p.used))).toBe(10 * MiB);
  });

  test('every pool used to the last byte: a bot fits when used + its cost equals the budget', () => {
    const c = catalogOf({ bots: bots(9, MiB), group: { pools: 1 } });
    expect(plan(c).pools[0]).toMatchObject({ used: 10 * MiB, bots: c.bots.map((b) => b.id) });
    expect(() => plan(catalogOf({ bots: bots(10, MiB), group: { pools: 1 } }))).toThrow(PlacementError);
  });

  test('bots sharing an encoder fill their pool to the fill factor before spilling; their encoder counted once per pool', () => {
    const spec = { bots: bots(24, MiB / 2, () => ({ encoder: 'e' })), encoders: { e: 2 * MiB }, group: { pools: 3, locality: 'encoder', memory: 10 * MiB, fillFactor: 0.6 } };
    // A fixed count with a locality key is balanced; this checks hashing, so the count is automatic here.
    const c = catalogOf({ ...spec, group: { ...spec.group, pools: 'auto' } });
    const t = plan(c);
    const names = t.pools.map((p) => p.name);
    expect(names).toEqual(names.map((_, i) => ruleName('g', i)));
    expect(Object.fromEntries(t.assignment)).toEqual(Object.fromEntries(ruleHashing(c, c.groups[0], names) as Map<string, string>));
    for (const p of t.pools) {
      expect(p.used).toBe(MiB + 2 * MiB + (p.bots.length * MiB) / 2);
      expect(p.used).toBeLessThanOrEqual(fillLimit(c.groups[0]));
      expect(p.encoders).toEqual(['e']);
    }
  });

  test('a property as the locality key: bots with the same value share a ranking, bots without it rank alone', () => {
    const c = catalogOf({
      bots: bots(30, 200_000, (i) => (i % 3 === 2 ? {} : { properties: { lang: i % 3 === 0 ? 'en' : 'de' } })),
      group: { locality: { property: 'lang' }, memory: 4 * MiB, poolOverhead: 0, fillFactor: 0.5 },
    });
    const t = plan(c);
    const names = t.pools.map((p) => p.name);
    expect(names.length).toBeGreaterThan(1);
    expect(Object.fromEntries(t.assignment)).toEqual(Object.fromEntries(ruleHashing(c, c.groups[0], names) as Map<string, string>));
  });
});

describe('pool names', () => {
  test('<group>-<5 base-36 digits of a hash of the group and the index>, stable as pools are added', () => {
    expect(poolName('realtime', 0)).toBe(ruleName('realtime', 0));
    expect(poolName('realtime', 7)).toBe(ruleName('realtime', 7));
    expect(poolName('realtime', 0)).toMatch(/^realtime-[0-9a-z]{5}$/);
    // Short hashes are padded with "0" to 5 digits (about 1 in 36 of them).
    const names = Array.from({ length: 300 }, (_, i) => poolName('g', i));
    expect(names).toEqual(names.map((_, i) => ruleName('g', i)));
    expect(names.filter((n) => n.startsWith('g-0')).length).toBeGreaterThan(0);
    for (const n of names) expect(n).toMatch(/^g-[0-9a-z]{5}$/);
    const two = plan(catalogOf({ bots: bots(10, 1000), group: { pools: 2 } })).pools.map((p) => p.name);
    const three = plan(catalogOf({ bots: bots(10, 1000), group: { pools: 3 } })).pools.map((p) => p.name);
    expect(three.slice(0, 2)).toEqual(two);
  });

  test('a name already taken (a dedicated pool) is salted until free', () => {
    const first = ruleName('g', 0);
    expect(poolName('g', 0, new Set([first]))).toBe(ruleName('g', 0, 1));
    expect(poolName('g', 0, new Set([first, ruleName('g', 0, 1)]))).toBe(ruleName('g', 0, 2));
    expect(poolName('g', 0, new Set(['other']))).toBe(first);
    // In a plan: a dedicated pool named like the first shared pool.
    const c = catalogOf({ bots: [...bots(3, 1000), { id: 'vip-bot', memory: 1000, pin: first }], group: { pools: 1, dedicatedPools: [first] } });
    expect(plan(c).groups[0].pools).toEqual([ruleName('g', 0, 1), first]);
  });

  test('never two alike: a group whose suffixes collide gets a salted name for the later pool, and earlier names stay', () => {
    // The first group name (g0, g1, ...) with two of its first 20,000 indices on one suffix (odds per group ~3 in 1).
    let found: { group: string; first: number; second: number } | undefined;
    for (let g = 0; !found; g++) {
      const seen = new Map<string, number>();
      for (let i = 0; i < 20_000 && !found; i++) {
        const name = ruleName(`g${g}`, i);
        if (seen.has(name)) found = { group: `g${g}`, first: seen.get(name)!, second: i };
        seen.set(name, i);
      }
    }
    const { group, first, second } = found;
    const names = poolNames(group, second + 1);
    expect(new Set(names).size).toBe(second + 1);
    expect(names[first]).toBe(ruleName(group, first));
    expect(names[second]).not.toBe(names[first]);
    expect(names[second]).toMatch(new RegExp(`^${group}-[0-9a-z]{5}$`));
    // Every other name is the unsalted one: the catalogs that plan today keep their names.
    expect(names.filter((n, i) => n !== ruleName(group, i))).toEqual([names[second]]);
    // Stable as pools are added: the first k names of k + 1 pools are the names of k pools.
    expect(poolNames(group, second + 5).slice(0, second + 1)).toEqual(names);
    // In a plan: as many pools as the collision needs, each with its own name (before: "used twice").
    const t = plan(catalogOf({ bots: bots(2, 1000), group: { name: group, pools: second + 1 } }));
    expect(t.pools.map((p) => p.name).sort()).toEqual([...names].sort());
  });

  test('pool names over many groups and counts: distinct, prefix-stable, and the plain hash wherever it is free', () => {
    for (let g = 0; g < 40; g++) {
      const group = `group-${g}`;
      const taken = new Set([ruleName(group, g % 7), 'unrelated']);
      const names = poolNames(group, 200 + g * 10, taken);
      expect(new Set(names).size).toBe(names.length);
      for (const n of names) expect(taken.has(n)).toBe(false);
      expect(poolNames(group, 50, taken)).toEqual(names.slice(0, 50));
      const before = new Set<string>();
      names.forEach((n, i) => {
        if (!taken.has(ruleName(group, i)) && !before.has(ruleName(group, i))) expect([i, n]).toEqual([i, ruleName(group, i)]);
        before.add(n);
      });
    }
  });

  test('two pools of the same name are refused (strategy dedicated: a bot named like a dedicated pool)', () => {
    const c = catalogOf({ bots: [{ id: 'x', memory: 1000 }], group: { dedicatedPools: ['g-x'] }, strategy: 'dedicated' });
    expect(() => plan(c)).toThrow(new PlacementError('pool name "g-x" of group "g" is used twice: rename the group, the bot or the dedicated pool'));
  });

  test('poolFor: the pool of a bot by id or by bot, undefined for a bot not placed', () => {
    const c = catalogOf({ bots: bots(3, 1000), group: { pools: 2 } });
    const t = plan(c);
    expect(poolFor('bot-1', t)).toBe(t.assignment.get('bot-1'));
    expect(poolFor({ id: 'bot-2' }, t)).toBe(t.assignment.get('bot-2'));
    expect(poolFor('nobody', t)).toBeUndefined();
  });
});

describe('pool counts', () => {
  test('auto: the fewest pools whose memory at the fill factor holds the bots', () => {
    // Fill limit 7.5 MiB, overhead 1 MiB: 6.5 MiB of bots per pool.
    const count = (n: number, memory: number) => plan(catalogOf({ bots: bots(n, memory), group: { fillFactor: 0.75 } })).pools.length;
    expect(count(13, MiB / 2)).toBe(1); // 6.5 MiB exactly
    expect(count(14, MiB / 2)).toBe(2);
    expect(count(26, MiB / 2)).toBe(2);
    expect(count(27, MiB / 2)).toBe(3);
    expect(count(1, MiB)).toBe(1);
  });

  test('auto counts an encoder in every pool its scattered bots reach, once per pool when its bots are co-located', () => {
    // 20 bots of 0.25 MiB on a 2 MiB encoder; pools hold 6.5 MiB at the fill factor.
    const spec = (locality: string) => ({ bots: bots(20, MiB / 4, () => ({ encoder: 'e' })), encoders: { e: 2 * MiB }, group: { fillFactor: 0.75, locality } });
    // Co-located: heads 5 MiB + the encoder in ceil(7/6.5) = 2 pools: 9 MiB, 2 pools.
    expect(plan(catalogOf(spec('encoder'))).pools.length).toBe(2);
    // Scattered: with n pools the encoder is in min(n, 20) of them: 5 + 2n <= 6.5n from n = 2... 5 + 4 = 9 <= 13.
    expect(plan(catalogOf(spec('none'))).pools.length).toBe(2);
    // A larger encoder makes the difference: 5 + 5n <= 6.5n needs n = 4 scattered; co-located 2 pools x 5 + 5 = 15 <= 19.5 at 3.
    const big = (locality: string) => ({ ...spec(locality), encoders: { e: 5 * MiB } });
    expect(plan(catalogOf(big('none'))).pools.length).toBe(4);
    expect(plan(catalogOf(big('encoder'))).pools.length).toBe(3);
  });

  test('auto: a bot without an encoder adds no encoder bytes; an unknown size counts as none', () => {
    const c = catalogOf({ bots: [...bots(13, MiB / 2)], encoders: { e: 5 * MiB }, group: { fillFactor: 0.75 } });
    expect(plan(c).pools.length).toBe(1);
  });

  test('auto with a fill factor that leaves nothing after the overhead: the whole pool counts', () => {
    // Fill limit 0.5 MiB is below the 1 MiB overhead: pools are sized by the 9 MiB left of their whole 10 MiB.
    expect(plan(catalogOf({ bots: bots(18, MiB), group: { fillFactor: 0.05 } })).pools.length).toBe(2);
    expect(plan(catalogOf({ bots: bots(19, MiB), group: { fillFactor: 0.05 } })).pools.length).toBe(3);
  });

  test('auto sizes by the fill factor, not by the budget: two bots that would share a pool get two', () => {
    // 4 + 4 MiB fit a 10 MiB pool (1 MiB overhead), but not its 6.5 MiB at the fill factor.
    expect(plan(catalogOf({ bots: bots(2, 4 * MiB), group: { fillFactor: 0.75 } })).pools.length).toBe(2);
    expect(plan(catalogOf({ bots: bots(5, 3 * MiB), group: { fillFactor: 0.75 } })).pools.length).toBe(3);
  });

  test('auto grows the count when hashing leaves a bot without room at the count the memory asks for', () => {
    // 9 bots, 59.7 MiB of heads, 8 MiB per pool at the fill factor 0.9: 7 pools by memory, but hashing needs 8.
    const memories = [6239784, 4643856, 6631384, 8768512, 7108872, 9213296, 5266872, 6460512, 3869160];
    const c = catalogOf({ bots: memories.map((memory, i) => ({ id: `b4-${i}`, memory })), group: { fillFactor: 0.9 } });
    const t = plan(c);
    expect(t.pools.length).toBe(8);
    expect(() => plan(c, { pools: { g: 7 } })).toThrow(/^group "g" cannot fit its 9 bots in 7 pools of 10\.0 MiB/);
    for (const p of t.pools) expect(p.used).toBeLessThanOrEqual(10 * MiB);
  });

  test('auto when the fill factor leaves exactly the overhead: the whole pool counts', () => {
    // Fill limit 1 MiB = the overhead: sized by the 9 MiB left of the whole pool, 3 bots of 2 MiB: 1 pool.
    expect(plan(catalogOf({ bots: bots(3, 2 * MiB), group: { fillFactor: 0.1 } })).pools.length).toBe(1);
  });

  test('options.pools overrides a group\'s count (benchmarks), "auto" or fixed', () => {
    const c = catalogOf({ bots: bots(10, 1000), group: { pools: 2 } });
    expect(plan(c, { pools: { g: 5 } }).pools.length).toBe(5);
    expect(plan(c, { pools: { other: 5 } }).pools.length).toBe(2);
    expect(plan(c).pools.length).toBe(2);
  });
});

describe('errors', () => {
  test('every bot too big for a pool of its group, at once, each with its path and fix', () => {
    const c = catalogOf({
      bots: [
        { id: 'big', memory: 9.5 * MiB, encoder: 'e' },
        { id: 'huge', memory: 20 * MiB },
        { id: 'fits', memory: 9 * MiB },
      ],
      encoders: { e: MiB },
    });
    let error: PlacementError | undefined;
    try {
      plan(c);
    } catch (e) {
      error = e as PlacementError;
    }
    expect(error).toBeInstanceOf(PlacementError);
    expect(error!.name).toBe('PlacementError');
    expect(error!.problems).toEqual([
      { path: 'bots (big).model.memory', message: 'needs 11.5 MiB in a pool (overhead 1.0 MiB + head 9.5 MiB + encoder 1.0 MiB) but a pool of group "g" has 10.0 MiB', hint: 'raise groups[].memory of "g" or shrink the model' },
      { path: 'bots (huge).model.memory', message: 'needs 21.0 MiB in a pool (overhead 1.0 MiB + head 20.0 MiB) but a pool of group "g" has 10.0 MiB', hint: 'raise groups[].memory of "g" or shrink the model' },
    ]);
    expect(error!.message).toBe(
      '2 bots cannot fit in a pool of their group:\n' +
        '  - bots (big).model.memory: needs 11.5 MiB in a pool (overhead 1.0 MiB + head 9.5 MiB + encoder 1.0 MiB) but a pool of group "g" has 10.0 MiB (fix: raise groups[].memory of "g" or shrink the model)\n' +
        '  - bots (huge).model.memory: needs 21.0 MiB in a pool (overhead 1.0 MiB + head 20.0 MiB) but a pool of group "g" has 10.0 MiB (fix: raise groups[].memory of "g" or shrink the model)',
    );
    expect(() => plan(catalogOf({ bots: [{ id: 'huge', memory: 20 * MiB, pin: 'vip' }], group: { dedicatedPools: ['vip'] } }))).toThrow(/^1 bot cannot fit in a pool of its group:\n {2}- bots \(huge\)\.model\.memory: /);
    // Exactly the pool's memory fits.
    expect(plan(catalogOf({ bots: [{ id: 'exact', memory: 9 * MiB }] })).pools[0].used).toBe(10 * MiB);
    // Single: the one pool grows to fit.
    expect(plan(catalogOf({ bots: [{ id: 'huge', memory: 20 * MiB }], strategy: 'single' })).pools[0]).toMatchObject({ used: 21 * MiB, budget: 21 * MiB });
  });

  test('a fixed count that cannot hold its bots names the bot left over and the fix', () => {
    const c = catalogOf({ bots: bots(10, 3 * MiB), group: { pools: 2 } });
    expect(() => plan(c)).toThrow(/^group "g" cannot fit its 10 bots in 2 pools of 10\.0 MiB \(bot "bot-\d+" found no room\): raise groups\[\]\.pools, set it to "auto", or raise groups\[\]\.memory$/);
    const over = catalogOf({ bots: bots(10, 3 * MiB), group: { pools: 2, overcommit: 1.2 } });
    expect(() => plan(over)).toThrow(/^group "g" cannot fit its 10 bots in 2 pools of 12\.0 MiB \(10\.0 MiB x overcommit 1\.2\) \(bot "bot-\d+" found no room\)/);
  });

  test('a bot that matches no group (a catalog not validated) is refused', () => {
    const c = catalogOf({ bots: bots(1, 1000) });
    const unmatched = { ...c, groups: [{ ...c.groups[0], selector: { realtime: false, properties: {} } }] };
    expect(() => plan(unmatched)).toThrow(new PlacementError('bot "bot-0" matches no pool group: widen a group selector or pin it'));
  });

  test('a dedicated pool too small for its pinned bots', () => {
    const c = catalogOf({ bots: bots(3, 4 * MiB, () => ({ pin: 'vip' })), group: { dedicatedPools: ['vip'] } });
    expect(() => plan(c)).toThrow(new PlacementError('dedicated pool "vip" needs 13.0 MiB for its pinned bots but has 10.0 MiB: raise groups[].memory of "g" or pin fewer bots to it'));
    expect(plan(catalogOf({ bots: bots(2, 4.5 * MiB, () => ({ pin: 'vip' })), group: { dedicatedPools: ['vip'] } })).pools[0].used).toBe(10 * MiB);
  });

  test('PlacementError without problems is its message alone', () => {
    const e = new PlacementError('m');
    expect([e.message, e.problems, e.name]).toEqual(['m', [], 'PlacementError']);
    expect(new PlacementError('m', [{ path: 'p', message: 'x', hint: 'h' }]).message).toBe('m\n  - p: x (fix: h)');
  });
});

describe('strategies, pins and pools', () => {
  const spec = { bots: [...bots(4, MiB, (i) => ({ encoder: i < 2 ? 'e' : undefined })), { id: 'pinned', memory: MiB, pin: 'vip', encoder: 'e' }], encoders: { e: 2 * MiB }, group: { dedicatedPools: ['vip'], pools: 2 } };

  test('sharded: shared pools (sorted bots and encoders, planned memory) then the dedicated ones', () => {
    const c = catalogOf(spec);
    const t = plan(c);
    expect(t.strategy).toBe('sharded');
    expect(t.generation).toBe(c.generation);
    expect(t.groups).toEqual([{ name: 'g', pools: [ruleName('g', 0), ruleName('g', 1), 'vip'] }]);
    const vip = t.pools.find((p) => p.name === 'vip')!;
    expect(vip).toEqual({ name: 'vip', group: 'g', dedicated: true, budget: 10 * MiB, capacity: 10 * MiB, used: 4 * MiB, bots: ['pinned'], encoders: ['e'] });
    for (const p of t.pools.filter((x) => !x.dedicated)) {
      expect(p.bots).toEqual([...p.bots].sort());
      const withE = p.bots.filter((b) => b === 'bot-0' || b === 'bot-1');
      expect(p.encoders).toEqual(withE.length ? ['e'] : []);
      expect(p.used).toBe(MiB + p.bots.length * MiB + (withE.length ? 2 * MiB : 0));
      expect([p.group, p.dedicated, p.budget, p.capacity]).toEqual(['g', false, 10 * MiB, 10 * MiB]);
    }
    expect(t.assignment.get('pinned')).toBe('vip');
    expect(t.assignment.size).toBe(5);
  });

  test("a pool's encoders are listed sorted, whatever order its bots came in", () => {
    const t = plan(catalogOf({ bots: bots(12, MiB / 4, (i) => ({ encoder: `enc-${(i * 7) % 6}` })), encoders: Object.fromEntries(Array.from({ length: 6 }, (_, k) => [`enc-${k}`, MiB / 4])), group: { pools: 1 } }));
    expect(t.pools[0].encoders).toEqual(['enc-0', 'enc-1', 'enc-2', 'enc-3', 'enc-4', 'enc-5']);
  });

  test('dedicated: a pool of its own for each bot, named after it; pins still go to their pool', () => {
    const t = plan(catalogOf({ ...spec, strategy: 'dedicated' }));
    expect(t.pools.map((p) => [p.name, p.bots, p.dedicated, p.used])).toEqual([
      ['g-bot-0', ['bot-0'], true, 4 * MiB],
      ['g-bot-1', ['bot-1'], true, 4 * MiB],
      ['g-bot-2', ['bot-2'], true, 2 * MiB],
      ['g-bot-3', ['bot-3'], true, 2 * MiB],
      ['vip', ['pinned'], true, 4 * MiB],
    ]);
  });

  test('single: one pool per group holding every bot that is not pinned, its budget grown to fit', () => {
    const t = plan(catalogOf({ ...spec, strategy: 'single' }));
    expect(t.pools.map((p) => [p.name, p.bots, p.dedicated, p.used, p.budget])).toEqual([
      [ruleName('g', 0), ['bot-0', 'bot-1', 'bot-2', 'bot-3'], false, 7 * MiB, 10 * MiB],
      ['vip', ['pinned'], true, 4 * MiB, 10 * MiB],
    ]);
    const grown = plan(catalogOf({ bots: bots(12, MiB), strategy: 'single' })).pools[0];
    expect([grown.used, grown.budget, grown.capacity]).toEqual([13 * MiB, 13 * MiB, 13 * MiB]);
    // A group whose bots are all pinned has no shared pool; a group without any bot keeps one, empty.
    expect(plan(catalogOf({ bots: [{ id: 'p', memory: MiB, pin: 'vip' }], group: { dedicatedPools: ['vip'] }, strategy: 'single' })).pools.map((p) => p.name)).toEqual(['vip']);
    const empty = plan(parseCatalog(input({ bots: [{ id: 'x', memory: MiB }], groups: [{ name: 'g', realtime: true, memory: 10 * MiB }, { name: 'h', realtime: true, memory: 10 * MiB }], strategy: 'single' })));
    expect(empty.groups.map((g) => g.pools.length)).toEqual([1, 1]);
    expect(empty.pools[1].bots).toEqual([]);
  });

  test('sharded: a group without bots has no shared pool, only its dedicated ones', () => {
    const t = plan(parseCatalog(input({ bots: [{ id: 'x', memory: MiB }], groups: [{ name: 'g', realtime: true, memory: 10 * MiB }, { name: 'h', realtime: true, memory: 10 * MiB, dedicatedPools: ['d'] }] })));
    expect(t.groups).toEqual([
      { name: 'g', pools: [ruleName('g', 0)] },
      { name: 'h', pools: ['d'] },
    ]);
  });

  test('bots go to the first group whose selector takes them; pinned bots to their pool\'s group', () => {
    const c = parseCatalog(
      input({
        bots: [{ id: 'rt', memory: MiB }, { id: 'batch', memory: MiB, realtime: false }, { id: 'vip', memory: MiB, realtime: false, pin: 'v' }],
        groups: [
          { name: 'a', realtime: true, memory: 10 * MiB, dedicatedPools: ['v'] },
          { name: 'b', realtime: false, memory: 10 * MiB },
        ],
      }),
    );
    const t = plan(c);
    expect(t.pools.map((p) => [p.group, p.bots])).toEqual([
      ['a', ['rt']],
      ['a', ['vip']],
      ['b', ['batch']],
    ]);
  });
});

describe('overcommit', () => {
  test('shared pools are placed against memory x overcommit; the budget stays the memory, the capacity says how far', () => {
    // 25 bots of 1 MiB, pools of 10 MiB (1 MiB overhead) x 2.5: 25 MiB of capacity each.
    const c = catalogOf({ bots: bots(25, MiB), group: { overcommit: 2.5, fillFactor: 1 } });
    const t = plan(c);
    expect(t.pools.length).toBe(2);
    for (const p of t.pools) expect([p.budget, p.capacity]).toEqual([10 * MiB, 25 * MiB]);
    expect(Math.max(...t.pools.map((p) => p.used))).toBeGreaterThan(10 * MiB);
    expect(topologyToJson(t).pools[0].memory).toEqual({ used: t.pools[0].used, budget: 10 * MiB, capacity: 25 * MiB });
    // Dedicated pools are not overcommitted.
    const vip = plan(catalogOf({ bots: [...bots(3, MiB), { id: 'p', memory: MiB, pin: 'vip' }], group: { overcommit: 2, dedicatedPools: ['vip'] } })).pools.find((p) => p.name === 'vip')!;
    expect([vip.budget, vip.capacity]).toEqual([10 * MiB, 10 * MiB]);
  });

  test('the overcommitted memory is read to 3 decimals, in whole bytes', () => {
    expect(scaled(1000, 1.2344)).toBe(1234);
    expect(scaled(1000, 1.2346)).toBe(1235);
    expect(scaled(999, 0.5)).toBe(499);
    expect(scaled(3, 0.3333)).toBe(0);
    expect(scaled(10, 0.3339)).toBe(3);
    expect(fillLimit({ memory: 1000, fillFactor: 0.75 } as any)).toBe(750);
    expect(fillLimit({ memory: 1001, fillFactor: 0.7505 } as any)).toBe(751);
  });
});

describe('pools.ts', () => {
  const group = (locality: any) => ({ name: 'g', memory: 100, poolOverhead: 10, fillFactor: 1, locality }) as any;
  const bot = (o: { encoder?: string; properties?: Record<string, unknown> } = {}) => ({ id: 'b1', properties: o.properties ?? {}, model: { memory: 5, ...(o.encoder ? { encoder: o.encoder } : {}) } }) as any;

  test('localityKey: the encoder, a property value (as JSON), else the bot id', () => {
    expect(localityKey(group('encoder'), bot({ encoder: 'e' }))).toBe('encoder:e');
    expect(localityKey(group('encoder'), bot())).toBe('b1');
    expect(localityKey(group('none'), bot({ encoder: 'e' }))).toBe('b1');
    expect(localityKey(group({ property: 'lang' }), bot({ properties: { lang: 'en' } }))).toBe('property:lang="en"');
    expect(localityKey(group({ property: 'n' }), bot({ properties: { n: 1 } }))).toBe('property:n=1');
    expect(localityKey(group({ property: 'lang' }), bot({ encoder: 'e' }))).toBe('b1');
  });

  test('a new pool starts at the overhead; a bot costs its head, plus its encoder where the pool lacks it', () => {
    const p = newPool('p', group('none'));
    expect([p.name, p.used, p.budget, p.bots, [...p.encoders]]).toEqual(['p', 10, 100, [], []]);
    expect(p.hash).toEqual(xxh64('p'));
    const sizes = new Map([['e', 20]]);
    expect(costIn(p, bot({ encoder: 'e' }), sizes)).toBe(25);
    expect(costIn(p, bot({ encoder: 'unknown' }), sizes)).toBe(5);
    put(p, bot({ encoder: 'e' }), 25);
    expect([p.used, p.bots, [...p.encoders]]).toEqual([35, ['b1'], ['e']]);
    expect(costIn(p, bot({ encoder: 'e' }), sizes)).toBe(5);
    put(p, bot(), 5);
    expect([...p.encoders]).toEqual(['e']);
  });
});

describe('balanced locality (a fixed count with a locality key)', () => {
  /** 60 bots on 3 encoders, 4 pools of 8 MiB with room to spare. */
  const spec = (pools: number, extra: Record<string, unknown> = {}) => ({
    bots: bots(60, 100_000 + 0, (i) => ({ encoder: `e${i % 3}`, memory: 100_000 + (i % 7) * 10_000 })),
    encoders: { e0: 500_000, e1: 700_000, e2: 300_000 },
    group: { pools, locality: 'encoder', memory: 8 * MiB, poolOverhead: MiB, ...extra },
  });

  test('no pool is empty, none past the fill factor, and pools stay near the mean', () => {
    for (const n of [2, 3, 4, 6]) {
      const c = catalogOf(spec(n));
      const t = plan(c);
      const heads = t.pools.map((p) => p.bots.reduce((s, id) => s + c.bots.find((b) => b.id === id)!.model.memory, 0));
      const total = heads.reduce((a, b) => a + b, 0);
      expect(t.pools).toHaveLength(n);
      for (const p of t.pools) {
        expect(p.bots.length).toBeGreaterThan(0);
        expect(p.used).toBeLessThanOrEqual(fillLimit(c.groups[0]));
      }
      for (const h of heads) expect(Math.abs(h - total / n)).toBeLessThanOrEqual(total / n / 2);
    }
  });

  test('adding a pool moves bots only to the new pool', () => {
    for (const n of [2, 4]) {
      const before = plan(catalogOf(spec(n)));
      const after = plan(catalogOf(spec(n + 1)));
      const newPool = after.pools[n].name;
      for (const [bot, pool] of before.assignment) {
        const now = after.assignment.get(bot)!;
        expect([bot, now === pool || now === newPool]).toEqual([bot, true]);
      }
      expect(countMoves(before, after).betweenOld).toBe(0);
    }
  });

  test('an encoder stays on few pools (far fewer than bounded-load hashing spreads it)', () => {
    const t = plan(catalogOf(spec(4)));
    const loads = t.pools.reduce((s, p) => s + p.encoders.length, 0);
    expect(loads).toBeLessThanOrEqual(6);
  });

  test('a balanced plan that would put a pool over its budget falls back to hashing', () => {
    // A fill factor of 1 with pools nearly full: balancing cannot keep every pool within budget.
    const c = catalogOf({ bots: bots(18, MiB, (i) => ({ encoder: `e${i % 2}` })), encoders: { e0: MiB, e1: MiB }, group: { pools: 2, locality: 'encoder', memory: 12 * MiB, poolOverhead: MiB, fillFactor: 1 } });
    const t = plan(c);
    for (const p of t.pools) expect(p.used).toBeLessThanOrEqual(12 * MiB);
    expect(t.assignment.size).toBe(18);
  });
});

describe('balanced locality: small catalogs near the fill factor (recorded assignments)', () => {
  /**
   * Seeded catalogs of one group with a fixed count and encoder locality, sized so that pools fill up to
   * the fill factor while they are built (the cut between two bots, the cap on what pool 0 keeps).
   * Their assignments are golden vectors like test/golden/placement.json: placement must not change
   * without intent (test/placement/oracle.test.ts checks plan() against a second implementation).
   */
  type Tight = { n: number; pools: number; keys: number; free: number; fill: number; memory: number; enc: number; seed: number; size?: 'kib' | 'quarters' | 'eighths' };
  function tight(o: Tight) {
    let s = o.seed;
    const rnd = () => {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      return s / 0x7fffffff;
    };
    // Head sizes: any byte count, whole KiB, or quarters or eighths of a MiB (ties between a cut and a middle).
    const size = () => {
      if (o.size === 'kib') return Math.floor(((0.2 + rnd()) * MiB) / 2 / 1024) * 1024;
      if (o.size === 'quarters') return ((1 + Math.floor(rnd() * 6)) * MiB) / 4;
      if (o.size === 'eighths') return ((1 + Math.floor(rnd() * 12)) * MiB) / 8;
      return Math.floor(((0.2 + rnd()) * MiB) / 2);
    };
    const specs: BotSpec[] = Array.from({ length: o.n }, (_, i) => {
      const k = Math.floor(rnd() * (o.keys + o.free));
      return { id: `bot-${i}`, memory: size(), ...(k < o.keys ? { encoder: `e${k}` } : {}) };
    });
    return catalogOf({ bots: specs, encoders: Object.fromEntries(Array.from({ length: o.keys }, (_, k) => [`e${k}`, o.enc])), group: { memory: o.memory, locality: 'encoder', fillFactor: o.fill, pools: o.pools } });
  }
  const short = (t: Topology) => t.pools.map((p) => p.bots.map((id) => id.slice(4)).join(' '));

  test.each([
    [{ n: 40, pools: 3, keys: 1, free: 0, fill: 0.75, memory: 10 * MiB, enc: MiB, seed: 1 }, ['0 1 13 14 17 2 20 24 27 33 34 35 37 38 4 6 7 9', '11 12 19 23 26 28 3 30 31', '10 15 16 18 21 22 25 29 32 36 39 5 8']],
    [{ n: 40, pools: 4, keys: 3, free: 1, fill: 0.75, memory: 8 * MiB, enc: MiB / 2, seed: 2 }, ['11 14 15 16 20 27 28 3 7', '0 10 13 23 25 31 34 35 39 4', '12 17 18 19 21 26 29 33 36 38 5 8', '1 2 22 24 30 32 37 6 9']],
    [{ n: 60, pools: 4, keys: 2, free: 1, fill: 0.6, memory: 12 * MiB, enc: MiB, seed: 3 }, ['1 12 13 20 21 23 24 27 28 29 33 35 36 38 39 48 54 6', '10 11 16 17 18 26 30 32 44 45 50 51 53 56 59', '15 2 37 40 41 42 43 47 5 55 7', '0 14 19 22 25 3 31 34 4 46 49 52 57 58 8 9']],
    [{ n: 30, pools: 2, keys: 2, free: 0, fill: 0.5, memory: 12 * MiB, enc: MiB, seed: 4 }, ['0 1 10 11 13 14 15 20 21 22 25 29 3 4 5 6 7 8', '12 16 17 18 19 2 23 24 26 27 28 9']],
    [{ n: 50, pools: 5, keys: 4, free: 1, fill: 0.8, memory: 8 * MiB, enc: MiB / 4, seed: 6 }, ['0 1 14 15 16 20 35 37 4 40 7 9', '12 13 17 18 31 34 38 43 45 46 48 49', '24 27 41 42 44 6 8', '21 22 28 29 33 36 5', '10 11 19 2 23 25 26 3 30 32 39 47']],
    // A pool filled to exactly its fill factor (6 MiB): the last bot that fits exactly is taken.
    [{ n: 48, pools: 4, keys: 4, free: 1, fill: 0.6, memory: 10 * MiB, enc: MiB / 4, seed: 909471, size: 'kib' }, ['12 14 15 20 22 26 29 3 33 35 36 39 40 7 9', '1 11 13 16 17 19 23 27 28 30 32 34 43 44', '2 37 38 41 42 46 6', '0 10 18 21 24 25 31 4 45 47 5 8']],
    // Cuts that fall exactly on a bot's middle: the bot lands above the cut.
    [{ n: 28, pools: 3, keys: 3, free: 0, fill: 0.9, memory: 12 * MiB, enc: MiB / 2, seed: 823580, size: 'quarters' }, ['0 1 14 20 24 4', '12 15 18 19 2 21 22 23 5 6', '10 11 13 16 17 25 26 27 3 7 8 9']],
    [{ n: 54, pools: 6, keys: 2, free: 1, fill: 1, memory: 12 * MiB, enc: MiB / 4, seed: 331532, size: 'quarters' }, ['1 14 20 33 35 38 4 46 9', '11 15 16 19 21 23 26 30 32 44', '10 18 25 28 3 39 47 5', '0 17 2 24 27 40 41 53 6 7', '13 22 34 37 42 45 51 8', '12 29 31 36 43 48 49 50 52']],
    // A pool at exactly its budget (a fill factor of 1): the balanced plan stands.
    [{ n: 59, pools: 5, keys: 1, free: 1, fill: 1, memory: 12 * MiB, enc: MiB / 4, seed: 454695, size: 'eighths' }, ['0 14 17 20 27 34 35 38 4 45 46 55 56 57 58 9', '12 19 21 26 28 3 30 39 44', '16 18 2 22 25 31 32 36 41 47 49', '1 24 33 37 40 42 43 51 53 54 8', '10 11 13 15 23 29 48 5 50 52 6 7']],
  ] as Array<[Tight, string[]]>)('%j', (o, expected) => {
    const c = tight(o);
    const t = plan(c);
    expect(short(t)).toEqual(expected);
    // What the construction promises: pools built after pool 0 never past the fill factor; pool 0 within its budget.
    for (const p of t.pools.slice(1)) expect(p.used).toBeLessThanOrEqual(fillLimit(c.groups[0]));
    expect(t.pools[0].used).toBeLessThanOrEqual(o.memory);
  });

  test('when balancing would put pool 0 over its budget, the group is placed by bounded-load hashing instead', () => {
    const c = tight({ n: 40, pools: 2, keys: 2, free: 0, fill: 0.5, memory: 12 * MiB, enc: MiB, seed: 5 });
    const t = plan(c);
    expect(Object.fromEntries(t.assignment)).toEqual(Object.fromEntries(ruleHashing(c, c.groups[0], t.pools.map((p) => p.name)) as Map<string, string>));
    expect(t.pools[1].used).toBeGreaterThan(fillLimit(c.groups[0]));
    expect(short(t)).toEqual(['0 14 16 17 18 2 20 22 23 26 27 28 29 32 34 35 36 37 6', '1 10 11 12 13 15 19 21 24 25 3 30 31 33 38 39 4 5 7 8 9']);
  });
});

describe('diffTopologies and countMoves', () => {
  const base = () => input({ bots: bots(12, MiB, (i) => ({ encoder: i % 2 ? 'e' : undefined, ...(i === 11 ? { pin: 'vip' } : {}) })), encoders: { e: MiB }, group: { pools: 3, locality: 'none', dedicatedPools: ['vip', 'vip2'] } });
  const planned = (i: any) => {
    const catalog = parseCatalog(i);
    return { catalog, topology: plan(catalog) };
  };

  test('no change: every bot unchanged, nothing to reload', () => {
    const a = planned(base());
    expect(diffTopologies(a, a)).toEqual({ moves: [], counts: {}, poolsAdded: [], poolsRemoved: [], unchanged: 12, reloads: [], rollouts: [] });
    expect(countMoves(a.topology, a.topology)).toEqual({ moved: 0, betweenOld: 0, total: 12 });
  });

  test('bots added and removed, a pin changed, the changed fields of a bot that stays', () => {
    const before = planned(base());
    const next = base();
    next.bots = next.bots.filter((b: any) => b.id !== 'bot-0');
    next.bots.push({ ...next.bots[0], id: 'new-bot' });
    const moving = next.bots.find((b: any) => b.id === 'bot-11');
    moving.pin = 'vip2';
    const stay = next.bots.find((b: any) => b.id === 'bot-3');
    stay.model.head = 'other.onnx';
    stay.intents = [{ name: 'b' }];
    next.encoders[0].dimensions = 8;
    const after = planned(next);
    const d = diffTopologies(before, after);
    expect(d.moves).toEqual([
      { bot: 'bot-0', from: before.topology.assignment.get('bot-0'), reason: 'bot removed' },
      { bot: 'bot-11', from: 'vip', to: 'vip2', reason: 'pin changed' },
      { bot: 'new-bot', to: after.topology.assignment.get('new-bot'), reason: 'bot added' },
    ]);
    expect(d.counts).toEqual({ 'bot removed': 1, 'pin changed': 1, 'bot added': 1 });
    expect(d.unchanged).toBe(10);
    expect(d.reloads).toEqual([
      { bot: 'bot-1', pool: after.topology.assignment.get('bot-1'), changed: ['encoder e'] },
      { bot: 'bot-3', pool: after.topology.assignment.get('bot-3'), changed: ['intents', 'model.head', 'encoder e'] },
      { bot: 'bot-5', pool: after.topology.assignment.get('bot-5'), changed: ['encoder e'] },
      { bot: 'bot-7', pool: after.topology.assignment.get('bot-7'), changed: ['encoder e'] },
      { bot: 'bot-9', pool: after.topology.assignment.get('bot-9'), changed: ['encoder e'] },
    ]);
    expect([d.poolsAdded, d.poolsRemoved]).toEqual([[], []]);
  });

  test('moves are listed by bot id, and name only the pools there are (no "from" for a new bot, no "to" for one gone)', () => {
    const before = planned(base());
    const next = base();
    next.bots = next.bots.filter((b: any) => b.id !== 'bot-5');
    next.bots.push({ ...next.bots[0], id: 'a-first' }, { ...next.bots[0], id: 'z-last' });
    const d = diffTopologies(before, planned(next));
    expect(d.moves.map((m) => m.bot)).toEqual(['a-first', 'bot-5', 'z-last']);
    expect(d.moves.map((m) => Object.keys(m).sort())).toEqual([
      ['bot', 'reason', 'to'],
      ['bot', 'from', 'reason'],
      ['bot', 'reason', 'to'],
    ]);
  });

  test('a field added or removed counts as changed; an encoder swapped is model.encoder, not the encoder\'s own change', () => {
    const before = planned(base());
    const next = base();
    next.bots[2].properties = { tier: 'gold' };
    next.bots[4].model.encoder = 'e';
    next.encoders[0].dimensions = 8;
    const d = diffTopologies(before, planned(next));
    const of = (id: string) => d.reloads.find((r) => r.bot === id)?.changed;
    expect(of('bot-2')).toEqual(['properties']);
    expect(of('bot-4')).toEqual(['model.encoder']);
  });

  test('pools added and removed: bots that move there are "pool added", from there "pool removed", others "rebalanced"', () => {
    const three = planned(base());
    const more = base();
    more.groups[0].pools = 5;
    const five = planned(more);
    const up = diffTopologies(three, five);
    expect(up.poolsAdded).toEqual([five.topology.pools[3].name, five.topology.pools[4].name].sort());
    expect(up.poolsRemoved).toEqual([]);
    expect(up.moves.length).toBeGreaterThan(0);
    for (const m of up.moves) expect(m.reason).toBe('pool added');
    const counts = countMoves(three.topology, five.topology);
    expect(counts).toEqual({ moved: up.moves.length, betweenOld: 0, total: 12 });
    const down = diffTopologies(five, three);
    expect(down.poolsRemoved).toEqual(up.poolsAdded);
    for (const m of down.moves) expect(m.reason).toBe(three.topology.pools.some((p) => p.name === m.from) ? 'rebalanced' : 'pool removed');
    expect(down.moves.filter((m) => m.reason === 'pool removed').length).toBeGreaterThan(0);
    expect(countMoves(five.topology, three.topology).betweenOld).toBe(down.moves.filter((m) => m.reason === 'rebalanced').length);
    expect(down.counts['pool removed']).toBe(down.moves.filter((m) => m.reason === 'pool removed').length);
  });

  test('a bot that moves to another group is "group changed"; between pools of the same set, "rebalanced"', () => {
    const two = (realtime: boolean) =>
      input({
        bots: [{ id: 'mover', memory: MiB, realtime }, ...bots(6, MiB)],
        groups: [
          { name: 'a', realtime: true, memory: 10 * MiB, pools: 2, locality: 'none' },
          { name: 'b', realtime: false, memory: 10 * MiB, pools: 1, locality: 'none' },
        ],
      });
    const d = diffTopologies(planned(two(true)), planned(two(false)));
    expect(d.moves.find((m) => m.bot === 'mover')).toEqual({ bot: 'mover', from: expect.stringMatching(/^a-/), to: expect.stringMatching(/^b-/), reason: 'group changed' });
    expect(d.reloads).toEqual([]);
    // Same pools, tighter memory: bots spill elsewhere among the same pools.
    const loose = input({ bots: bots(30, MiB), group: { pools: 4 } });
    const tight = input({ bots: bots(30, MiB), group: { pools: 4, memory: 9 * MiB } });
    const r = diffTopologies(planned(loose), planned(tight));
    expect(r.poolsAdded).toEqual([]);
    for (const m of r.moves) expect(m.reason).toBe('rebalanced');
    expect(r.moves.length).toBeGreaterThan(0);
  });

  test('countMoves: bots placed in both only, and those moved between pools that exist in both', () => {
    const mk = (assignment: Record<string, string>, poolNames: string[]): Topology => ({ generation: 'x', strategy: 'sharded', groups: [], pools: poolNames.map((name) => ({ name }) as any), assignment: new Map(Object.entries(assignment)) });
    const before = mk({ a: 'p1', b: 'p1', c: 'p2', d: 'p3' }, ['p1', 'p2', 'p3']);
    const after = mk({ a: 'p1', b: 'p2', c: 'p4', e: 'p1' }, ['p1', 'p2', 'p4']);
    // b moved between p1 and p2 (both in both); c moved to a new pool; d is gone (not counted).
    expect(countMoves(before, after)).toEqual({ moved: 2, betweenOld: 1, total: 4 });
    const fromGone = mk({ x: 'p3' }, ['p1', 'p3']);
    expect(countMoves(fromGone, mk({ x: 'p1' }, ['p1']))).toEqual({ moved: 1, betweenOld: 0, total: 1 });
  });
});

describe('topologyToJson and placementWarnings', () => {
  test('the JSON form: generation, strategy and each pool (capacity only when it differs from the budget)', () => {
    const c = catalogOf({ bots: bots(2, MiB, () => ({ encoder: 'e' })), encoders: { e: MiB }, group: { pools: 1 } });
    const t = plan(c);
    expect(topologyToJson(t)).toEqual({
      generation: c.generation,
      strategy: 'sharded',
      pools: [{ name: ruleName('g', 0), group: 'g', dedicated: false, memory: { used: 4 * MiB, budget: 10 * MiB }, encoders: ['e'], bots: ['bot-0', 'bot-1'] }],
    });
  });

  test('an empty pool is a warning with its fix: a shared one names the pool count, a dedicated one its pins', () => {
    const c = catalogOf({ bots: bots(1, MiB), group: { pools: 3, dedicatedPools: ['vip'], replicas: { min: 2, max: 3 } } });
    const t = plan(c);
    const empty = t.pools.filter((p) => p.bots.length === 0 && !p.dedicated).map((p) => p.name);
    expect(empty).toHaveLength(2);
    expect(placementWarnings(c, t)).toEqual([
      ...empty.map((name) => `warning: pool ${name} holds no bots but is deployed with at least 2 replicas of 10Mi (fix: lower groups[].pools of "g" (3 for 1 bots) or set it to "auto")`),
      'warning: pool vip holds no bots but is deployed with at least 2 replicas of 10Mi (fix: pin bots to it or remove it from groups[].dedicatedPools of "g")',
    ]);
    expect(placementWarnings(catalogOf({ bots: bots(4, MiB), group: { pools: 2 } }), plan(catalogOf({ bots: bots(4, MiB), group: { pools: 2 } })))).toEqual([]);
  });

  test("each warning names the empty pool's own group, its replicas and memory", () => {
    const c = parseCatalog(
      input({
        bots: [{ id: 'x', memory: MiB }, { id: 'y', memory: MiB, realtime: false }],
        groups: [
          { name: 'a', realtime: true, memory: 10 * MiB, pools: 1, locality: 'none', replicas: { min: 3, max: 4 } },
          { name: 'b', realtime: false, memory: 20 * MiB, pools: 2, locality: 'none', replicas: { min: 1, max: 2 } },
        ],
      }),
    );
    const t = plan(c);
    const empty = t.pools.find((p) => p.group === 'b' && p.bots.length === 0)!;
    expect(placementWarnings(c, t)).toEqual([`warning: pool ${empty.name} holds no bots but is deployed with at least 1 replicas of 20Mi (fix: lower groups[].pools of "b" (2 for 1 bots) or set it to "auto")`]);
  });

  test('the count of placed bots is per group and leaves out dedicated pools', () => {
    const c = parseCatalog(
      input({
        bots: [...bots(3, MiB), { id: 'p', memory: MiB, pin: 'vip' }, { id: 'other', memory: MiB, realtime: false }],
        groups: [
          { name: 'a', realtime: true, memory: 10 * MiB, pools: 4, locality: 'none', dedicatedPools: ['vip'] },
          { name: 'b', realtime: false, memory: 10 * MiB, pools: 1, locality: 'none' },
        ],
      }),
    );
    const warnings = placementWarnings(c, plan(c));
    expect(warnings.length).toBeGreaterThan(0);
    for (const w of warnings) expect(w).toMatch(/\(4 for 3 bots\)/);
  });
});
