/**
 * The resident set of an overcommitted pool (runtime/src/pool/residency.ts) under random request
 * sequences: the memory bound, the eviction order (least recently used first, busy bots kept) and
 * shared encoders, each checked against a plain recomputation.
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

describe('residency: least recently used within the declared memory', () => {
  it('never exceeds the limit, evicts the least recently used idle bots first and only as many as needed, keeps shared encoders while used', () => {
    let evictions = 0;
    let blocked = 0;
    fc.assert(
      fc.property(scenario, ({ costs, limit, requests }) => {
        const ids = [...costs.keys()];
        const r = new Residency(limit, OVERHEAD);
        // The reference: resident bots, least recently used first.
        let lru: string[] = [];
        for (const req of requests) {
          const id = ids[req.bot % ids.length];
          const busy = new Set(req.busy.map((b) => ids[b % ids.length]).filter((b) => b !== id));
          if (lru.includes(id)) {
            r.touch(id);
            lru = [...lru.filter((x) => x !== id), id];
          } else {
            const victims = r.victims(costs.get(id)!, (v) => !busy.has(v));
            // Expected: the shortest prefix of the idle bots in LRU order after whose removal the bot fits.
            const idle = lru.filter((x) => !busy.has(x));
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
  });
});
