/**
 * Balanced locality (runtime/src/placement/balance.ts): with a locality key and memory to spare, pools
 * stay near the mean, a new pool takes only its share, and bots sharing a key still share few pools.
 */
import fc from 'fast-check';
import { PlacementError, Topology, parseCatalog, plan } from '@botshard/runtime';
import { syntheticCatalog } from '../../bench/synthetic';
import { moved } from '../support/plan';

const heads = (t: Topology) => t.pools.map((p) => p.bots.length);

describe('plan: balanced locality', () => {
  it('leaves no pool empty and none over budget, for random catalogs and pool counts', () => {
    let placed = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 4, max: 50 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 8 }),
        fc.constantFrom('encoder' as const, { property: 'language' }),
        fc.constantFrom('512Mi', '1Gi', '4Gi', '16Gi'),
        (pools, botsPerPool, seed, encoders, locality, memory) => {
          let topology: Topology;
          try {
            topology = plan(parseCatalog(syntheticCatalog({ bots: pools * botsPerPool, seed, locality, memory, pools, encoders, oneGroup: true })));
          } catch (e) {
            if (e instanceof PlacementError) return; // the fixed count cannot hold the bots: said, not placed
            throw e;
          }
          placed++;
          for (const p of topology.pools) {
            expect(p.used).toBeLessThanOrEqual(p.budget);
            expect(p.bots.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 300, seed: 20261202 },
    );
    expect(placed).toBeGreaterThan(200);
  });
});

describe('plan: balanced locality as pools are added', () => {
  const counts = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const catalogFor = (bots: number, pools: number, locality: 'encoder' | 'none') =>
    parseCatalog(syntheticCatalog({ bots, seed: 21, locality, pools, oneGroup: true, memory: '64Gi' }));

  it.each([200, 3000])('%i bots: a new pool takes only its share, every pool stays near the mean, encoders stay together', (bots) => {
    const on = new Map(counts.map((n) => [n, plan(catalogFor(bots, n, 'encoder'))]));
    const off = new Map(counts.map((n) => [n, plan(catalogFor(bots, n, 'none'))]));
    let loadsOn = 0;
    let loadsOff = 0;
    for (const n of counts) {
      const topology = on.get(n)!;
      const sizes = topology.pools.map((p) => p.used);
      const mean = sizes.reduce((a, x) => a + x, 0) / n;
      expect(Math.min(...sizes) / mean).toBeGreaterThanOrEqual(0.5);
      expect(Math.max(...sizes) / mean).toBeLessThanOrEqual(1.5);
      loadsOn += topology.pools.reduce((a, p) => a + p.encoders.length, 0);
      loadsOff += off.get(n)!.pools.reduce((a, p) => a + p.encoders.length, 0);
      if (n === 1) continue;
      // From n-1 to n pools: bots move only to the new pool, about 1/n of them.
      const before = on.get(n - 1)!;
      const m = moved(before, topology);
      expect(m.betweenOld).toBe(0);
      expect(m.moved / m.total).toBeGreaterThan(1 / n - 0.05);
      expect(m.moved / m.total).toBeLessThan(1 / n + 0.05);
    }
    expect(loadsOn / loadsOff).toBeLessThanOrEqual(0.5);
    expect(heads(on.get(9)!).every((count) => count > 0)).toBe(true);
  });

  it('many pools (60 for 3,000 bots, 8 encoders): every pool near the mean, each with few encoders', () => {
    const topology = plan(catalogFor(3000, 60, 'encoder'));
    const sizes = topology.pools.map((p) => p.used);
    const mean = sizes.reduce((a, x) => a + x, 0) / sizes.length;
    expect(Math.min(...sizes) / mean).toBeGreaterThanOrEqual(0.5);
    expect(Math.max(...sizes) / mean).toBeLessThanOrEqual(2);
    // 8 encoders over 60 pools: about 1 + 8/60 each when keys are cut cleanly; a sliver of every key would be 8.
    expect(topology.pools.reduce((a, p) => a + p.encoders.length, 0) / 60).toBeLessThanOrEqual(2.5);
  });
});
