import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { Catalog, PlacementError, normalizeCatalog, parseCatalog, plan, poolFor, toHex, xxh64 } from '@botshard/runtime';
import { syntheticCatalog } from '../../bench/synthetic';
import { GOLDEN_CATALOGS } from '../golden/generate';
import { smallCatalog } from '../support/catalogs';
import { moved, synthetic, withPools } from '../support/plan';

const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../golden/placement.json'), 'utf8'));
const encoderLoads = (catalog: Catalog) => plan(catalog).pools.reduce((s, p) => s + p.encoders.length, 0);

/** The same value with every object's keys in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)]));
  return value;
}

describe('plan: determinism', () => {
  it('matches the golden vectors', () => {
    for (const [s, hex] of Object.entries(golden.xxh64)) expect(toHex(xxh64(s))).toBe(hex);
    for (const [name, opts] of Object.entries(GOLDEN_CATALOGS)) {
      const want = golden.catalogs[name];
      expect(want.options).toEqual(opts);
      const catalog = synthetic(opts);
      expect(catalog.generation).toBe(want.generation); // else the synthetic generator changed, not placement
      const topology = plan(catalog);
      expect(topology.pools.map((p) => p.name)).toEqual(want.pools);
      expect(Object.fromEntries(topology.assignment)).toEqual(want.assignment);
    }
  });

  it('gives the same assignment in a separate process', () => {
    const catalog = synthetic({ bots: 3000, seed: 11, locality: 'encoder' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-plan-'));
    const file = path.join(dir, 'catalog.json');
    fs.writeFileSync(file, JSON.stringify(catalog));
    const out = execFileSync(process.execPath, [path.join(__dirname, '../../runtime/bin/botshard.js'), 'plan', '--catalog', file, '--json'], { encoding: 'utf8' });
    const child = JSON.parse(out) as { pools: Array<{ name: string; bots: string[] }> };
    const here = plan(catalog);
    expect(child.pools.map((p) => [p.name, p.bots])).toEqual(here.pools.map((p) => [p.name, p.bots]));
  });

  it('does not depend on the order of bots or of object keys', () => {
    const input = syntheticCatalog({ bots: 300, seed: 5, locality: 'encoder', memory: '512Mi' }) as any;
    const reference = parseCatalog(input);
    const expected = [...plan(reference).assignment].sort();
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 300, maxLength: 300 }), fc.boolean(), (keys, reverse) => {
        const shuffled = { ...input, bots: input.bots.map((b: unknown, i: number) => [keys[i], b]).sort((a: any, b: any) => a[0] - b[0]).map((x: any) => x[1]) };
        const c = parseCatalog(reverse ? reverseKeys(shuffled) : shuffled);
        expect(c.generation).toBe(reference.generation);
        expect([...plan(c).assignment].sort()).toEqual(expected);
      }),
      { numRuns: 15 },
    );
  });
});

describe('plan: minimal disruption (locality off, 10,000 bots)', () => {
  const base = synthetic({ bots: 10000, seed: 3, locality: 'none', oneGroup: true, pools: 10, memory: '8Gi' });
  const before = plan(base);

  it('adding an 11th pool moves at most 1/11 + 1 point of the bots, under 1 point between old pools', () => {
    const after = plan(withPools(base, { realtime: 11 }));
    const m = moved(before, after);
    expect(after.pools).toHaveLength(11);
    expect(m.moved / m.total).toBeLessThanOrEqual(1 / 11 + 0.01);
    expect(m.betweenOld / m.total).toBeLessThan(0.01);
    // The bots that move go to the new pool.
    const added = after.pools.find((p) => !before.pools.some((q) => q.name === p.name))!;
    expect(added.bots.length).toBeGreaterThan(0.8 * (m.total / 11));
  });

  it('removing a pool moves its own bots plus under 1 point of the others', () => {
    const after = plan(withPools(base, { realtime: 9 }));
    const removed = before.pools.find((p) => !after.pools.some((q) => q.name === p.name))!;
    const m = moved(before, after);
    expect(m.moved - removed.bots.length).toBeGreaterThanOrEqual(0);
    expect((m.moved - removed.bots.length) / m.total).toBeLessThan(0.01);
  });

  // With encoder locality a fixed count is placed by balanced locality (test/placement/locality.test.ts).
  it.each(['none', 'encoder'] as const)('adding or removing one bot moves few others (locality %s)', (locality) => {
    const input = syntheticCatalog({ bots: 2000, seed: 9, locality, oneGroup: true, pools: 6, memory: '4Gi' }) as any;
    const reference = plan(parseCatalog(input));
    let worst = 0;
    for (let i = 0; i < 8; i++) {
      const removedBot = input.bots[i * 250];
      const without = plan(parseCatalog({ ...input, bots: input.bots.filter((b: any) => b !== removedBot) }));
      const others = [...without.assignment].filter(([bot, pool]) => reference.assignment.get(bot) !== pool).length;
      const added = { ...removedBot, id: `new-bot-${i}` };
      const withOne = plan(parseCatalog({ ...input, bots: [...input.bots, added] }));
      const others2 = [...reference.assignment].filter(([bot, pool]) => withOne.assignment.get(bot) !== pool).length;
      worst = Math.max(worst, others, others2);
    }
    expect(worst).toBeLessThanOrEqual(20); // 1% of 2,000
  });
});

describe('plan: memory and co-location', () => {
  it('never puts a pool over its budget, whatever the catalog', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.constantFrom('none' as const, 'encoder' as const, { property: 'language' }),
        fc.constantFrom('512Mi', '1Gi', '4Gi'),
        (bots, seed, locality, memory) => {
          for (const p of plan(synthetic({ bots, seed, locality, memory })).pools) {
            expect(p.used).toBeLessThanOrEqual(p.budget);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('auto sizes each group to the fewest pools that fit at the fill factor', () => {
    const catalog = synthetic({ bots: 3000, seed: 4, locality: 'none' });
    const topology = plan(catalog);
    for (const group of catalog.groups) {
      const pools = topology.pools.filter((p) => p.group === group.name && !p.dedicated);
      const used = pools.reduce((s, p) => s + p.used, 0);
      expect(used / (pools.length * group.memory)).toBeLessThanOrEqual(group.fillFactor + 0.02);
      // One pool fewer would run the group above its fill factor.
      const fewer = plan(catalog, { pools: { [group.name]: pools.length - 1 } }).pools.filter((p) => p.group === group.name);
      expect(fewer.reduce((s, p) => s + p.used, 0) / (fewer.length * group.memory)).toBeGreaterThan(group.fillFactor - 0.02);
    }
  });

  it('co-locates bots that share an encoder: fewer encoder loads than plain rendezvous on the same bots', () => {
    const input = syntheticCatalog({ bots: 5000, seed: 6, locality: 'none', pools: 12, oneGroup: true, memory: '6Gi' }) as any;
    const plain = encoderLoads(parseCatalog(input));
    const local = encoderLoads(parseCatalog({ ...input, groups: input.groups.map((g: any) => ({ ...g, locality: 'encoder' })) }));
    expect(plain).toBe(12 * 8); // every pool loads every encoder
    // A fixed count is balanced (test/placement/locality.test.ts): 12 pools share 8 encoders at about 2.7 each.
    expect(local).toBeLessThanOrEqual(plain * 0.4);
  });

  it('names every bot that cannot fit any pool of its group, each with its field path', () => {
    const input = smallCatalog();
    input.bots[0].model.memory = '600Mi';
    input.bots[2].model.memory = '700Mi';
    let error: PlacementError | undefined;
    try {
      plan(parseCatalog(input));
    } catch (e) {
      error = e as PlacementError;
    }
    expect(error).toBeInstanceOf(PlacementError);
    expect(error!.message).toMatch(/^2 bots cannot fit in a pool of their group:/);
    expect(error!.problems.map((p) => p.path).sort()).toEqual([`bots (${input.bots[0].id}).model.memory`, `bots (${input.bots[2].id}).model.memory`].sort());
    expect(error!.message).toMatch(/bots \(acme-support\)\.model\.memory: needs 800\.0 MiB in a pool \(overhead .* \+ head 600\.0 MiB .*\) but a pool of group "realtime" has 512\.0 MiB \(fix: raise groups\[\]\.memory of "realtime"/);
  });

  it('says when a group with a fixed pool count cannot fit its bots', () => {
    const catalog = synthetic({ bots: 2000, seed: 2, locality: 'none', pools: 1, memory: '1Gi' });
    expect(() => plan(catalog)).toThrow(PlacementError);
    expect(() => plan(catalog)).toThrow(/group "realtime" cannot fit its \d+ bots in 1 pools .* raise groups\[\]\.pools/);
  });
});

describe('plan: pins and dedicated pools', () => {
  const input = syntheticCatalog({ bots: 2000, seed: 12, locality: 'none', pinned: 0.01 }) as any;
  const catalog = parseCatalog(input);
  const topology = plan(catalog);
  const pinned = catalog.bots.filter((b) => b.pin);

  it('puts pinned bots on their pool and no other bot there', () => {
    expect(pinned.length).toBeGreaterThan(5);
    const vip = topology.pools.find((p) => p.name === 'vip')!;
    expect(vip.dedicated).toBe(true);
    expect(vip.bots).toEqual(pinned.map((b) => b.id).sort());
    expect(vip.used).toBeLessThanOrEqual(vip.budget);
    expect(topology.pools.filter((p) => p.name !== 'vip').every((p) => p.bots.every((id) => !pinned.some((b) => b.id === id)))).toBe(true);
  });

  it('never moves pinned bots on any other change', () => {
    const changes = [
      { ...input, bots: input.bots.slice(100).concat(input.bots.slice(0, 100).filter((b: any) => b.pin)) },
      { ...input, groups: input.groups.map((g: any) => ({ ...g, pools: 3 })) },
      { ...input, groups: input.groups.map((g: any) => ({ ...g, locality: 'encoder' })) },
    ];
    for (const change of changes) {
      const after = plan(parseCatalog(change));
      for (const bot of pinned) expect(poolFor(bot, after)).toBe('vip');
      expect(after.pools.find((p) => p.name === 'vip')!.bots.every((id) => pinned.some((b) => b.id === id))).toBe(true);
    }
  });
});

describe('plan: the three strategies', () => {
  const input = smallCatalog();
  const ids = (t: ReturnType<typeof plan>) => [...t.assignment.keys()].sort();

  it('sharded, dedicated and single place the same bots', () => {
    const [sharded, dedicated, single] = (['sharded', 'dedicated', 'single'] as const).map((strategy) => plan(parseCatalog({ ...input, platform: { strategy } })));
    expect(ids(dedicated)).toEqual(ids(sharded));
    expect(ids(single)).toEqual(ids(sharded));
    // dedicated: one pool per bot; single: one shared pool per group (plus the declared dedicated pool)
    expect(dedicated.pools.every((p) => p.bots.length === 1)).toBe(true);
    expect(poolFor('globex-batch', dedicated)).toBe('batch-globex-batch');
    expect(single.pools.filter((p) => !p.dedicated).map((p) => p.group)).toEqual(['realtime', 'batch']);
  });
});

describe('poolFor', () => {
  it('answers the pool of a known bot and undefined for an unknown one', () => {
    const topology = plan(parseCatalog(smallCatalog()));
    expect(poolFor('acme-vip', topology)).toBe('vip');
    expect(poolFor('globex-batch', topology)).toMatch(/^batch-[a-z0-9]{5}$/);
    expect(poolFor('nobody', topology)).toBeUndefined();
    expect(normalizeCatalog(smallCatalog()).ok).toBe(true);
  });
});
