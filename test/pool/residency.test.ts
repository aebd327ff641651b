/**
 * The resident set of an overcommitted pool (runtime/src/pool/residency.ts) under random request
 * sequences: the memory bound, the eviction order (asked least lately first, least recently used among
 * equals, counts halving as they age, busy bots kept) and shared encoders, each checked against a plain
 * recomputation; and why the order is not plain LRU: a stream of bots asked once does not push out a hot one.
 */
import fc from 'fast-check';
import { Residency, ResidentCost } from '@botshard/runtime/pool/residency';

const OVERHEAD = 100;

/** Declared bytes of a set of resident bots, recomputed from scratch. */
function declared(resident: string[], costs: Map<string, ResidentCost>): number {
  let bytes = OVERHEAD;
  const encoders = new Map<string, number>();
  for (const id of resident) {
    const c = costs.get(id)!;
    bytes += c.head;
    if (c.encoder !== undefined) encoders.set(c.encoder, c.encoderBytes);
  }
  for (const b of encoders.values()) bytes += b;
  return bytes;
}

const scenario = fc
  .record({
    bots: fc.array(fc.record({ head: fc.integer({ min: 1, max: 40 }), encoder: fc.constantFrom(undefined, 'e0', 'e1', 'e2') }), { minLength: 1, maxLength: 30, size: 'medium' }),
    encoderBytes: fc.tuple(fc.integer({ min: 5, max: 60 }), fc.integer({ min: 5, max: 60 }), fc.integer({ min: 5, max: 60 })),
    room: fc.integer({ min: 0, max: 120 }),
    aging: fc.integer({ min: 5, max: 60 }),
    requests: fc.array(fc.record({ bot: fc.nat(), busy: fc.array(fc.nat(), { maxLength: 3 }) }), { minLength: 1, maxLength: 200, size: 'medium' }),
  })
  .map((s) => {
    const costs = new Map<string, ResidentCost>(
      s.bots.map((b, i) => [`b${i}`, { head: b.head, encoder: b.encoder, encoderBytes: b.encoder ? s.encoderBytes[Number(b.encoder.slice(1))] : 0 }]),
    );
    // The limit holds the largest bot alone (placement refuses a bot that fits no pool), plus some room.
    const largest = Math.max(...[...costs.values()].map((c) => c.head + (c.encoder ? c.encoderBytes : 0)));
    return { ...s, costs, limit: OVERHEAD + largest + s.room };
  });

describe('residency: the bots asked least lately go first, within the declared memory', () => {
  it('never exceeds the limit, evicts idle bots in order (fewest requests lately, then least recently used) and only as many as needed, keeps shared encoders while used', () => {
    let evictions = 0;
    let blocked = 0;
    let agings = 0;
    let notLru = 0;
    fc.assert(
      fc.property(scenario, ({ costs, limit, requests, aging }) => {
        const ids = [...costs.keys()];
        const r = new Residency(limit, OVERHEAD, aging);
        // The reference: resident bots, least recently used first, and requests per bot lately.
        let lru: string[] = [];
        const heat = new Map<string, number>();
        let since = 0;
        // A request counts for its bot when it comes (the pool counts it then, before any load).
        const asked = (id: string) => {
          heat.set(id, (heat.get(id) ?? 0) + 1);
          if (++since >= Math.max(aging, 20 * lru.length)) {
            since = 0;
            agings++;
            for (const [b, n] of [...heat]) {
              if (n < 1) heat.delete(b);
              else heat.set(b, n / 2);
            }
          }
          r.touch(id);
          expect(r.heatOf(id)).toBe(heat.get(id) ?? 0);
        };
        for (const req of requests) {
          const id = ids[req.bot % ids.length];
          const busy = new Set(req.busy.map((b) => ids[b % ids.length]).filter((b) => b !== id));
          asked(id);
          if (lru.includes(id)) {
            lru = [...lru.filter((x) => x !== id), id];
          } else {
            const victims = r.victims(costs.get(id)!, (v) => !busy.has(v));
            // Expected: the shortest prefix of the idle bots in eviction order after whose removal the bot fits.
            const order = lru.map((x, i) => ({ x, i, h: heat.get(x) ?? 0 })).sort((a, b) => a.h - b.h || a.i - b.i).map((e) => e.x);
            const idle = order.filter((x) => !busy.has(x));
            let expected: string[] | undefined;
            for (let k = 0; k <= idle.length; k++) {
              const left = lru.filter((x) => !idle.slice(0, k).includes(x));
              if (declared([...left, id], costs) <= limit) {
                expected = idle.slice(0, k);
                break;
              }
            }
            expect(victims).toEqual(expected);
            if (!victims) {
              blocked++;
              continue; // the pool waits for a busy bot to finish
            }
            const lruIdle = lru.filter((x) => !busy.has(x));
            if (victims.some((v, i) => v !== lruIdle[i])) notLru++;
            for (const v of victims) r.remove(v);
            evictions += victims.length;
            r.add(id, costs.get(id)!);
            lru = [...lru.filter((x) => !victims.includes(x)), id];
          }
          expect(r.order()).toEqual(lru);
          expect(r.used).toBe(declared(lru, costs));
          expect(r.used).toBeLessThanOrEqual(limit);
          const inUse = new Set(lru.map((x) => costs.get(x)!.encoder).filter((e) => e !== undefined));
          expect(new Set(r.residentEncoders())).toEqual(inUse);
        }
      }),
      { numRuns: 300, seed: 20261202 },
    );
    expect(evictions).toBeGreaterThan(1000);
    expect(blocked).toBeGreaterThan(0);
    expect(agings).toBeGreaterThan(100);
    // The order is not LRU's in many evictions: the property checks the counts, not only recency.
    expect(notLru).toBeGreaterThan(100);
  });

  const cost: ResidentCost = { head: 10, encoderBytes: 0 };

  it('a stream of bots asked once does not push out a hot bot (plain LRU would)', () => {
    const r = new Residency(OVERHEAD + 30, OVERHEAD); // three bots fit
    const ask = (id: string) => {
      r.touch(id);
      if (!r.has(id)) {
        for (const v of r.victims(cost, () => true)!) r.remove(v);
        r.add(id, cost);
      }
    };
    for (let i = 0; i < 5; i++) ask('hot');
    for (let i = 0; i < 50; i++) ask(`once-${i}`);
    expect(r.has('hot')).toBe(true);
    expect(r.order()).toEqual(['hot', 'once-48', 'once-49']);
  });

  it('a bot hot long ago loses its place as its counts halve', () => {
    const r = new Residency(OVERHEAD + 20, OVERHEAD, 10); // two bots fit; counts halve every max(10, 20 per resident bot) requests
    const ask = (id: string) => {
      r.touch(id);
      if (!r.has(id)) {
        for (const v of r.victims(cost, () => true)!) r.remove(v);
        r.add(id, cost);
      }
    };
    for (let i = 0; i < 40; i++) ask('old'); // one resident: halved at 20 (20 -> 10) and at 40 (30 -> 15)
    expect(r.heatOf('old')).toBe(15);
    for (let i = 0; i < 20; i++) ask('recent'); // two resident: the next halving at 40 requests
    expect(r.heatOf('recent')).toBe(20);
    ask('new'); // without aging old (40 requests) would stay and recent (20) would go
    expect(r.order()).toEqual(['recent', 'new']);
    // Not asked again, a count halves away and is forgotten.
    for (let i = 0; i < 400; i++) ask(i % 2 === 0 ? 'recent' : 'new');
    expect(r.heatOf('old')).toBe(0);
  });
});
