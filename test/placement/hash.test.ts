import fc from 'fast-check';
import { scoreHi, scoreLo, toHex, xxh64 } from '@botshard/runtime';
// The reference: the xxHash authors' C implementation compiled to WebAssembly.
import xxhash from 'xxhash-wasm';

describe('xxh64', () => {
  let reference: (b: Uint8Array) => bigint;
  beforeAll(async () => {
    reference = (await xxhash()).h64Raw;
  });

  it('matches the published vectors', () => {
    expect(toHex(xxh64(''))).toBe('ef46db3751d8e999');
    expect(toHex(xxh64('a'))).toBe('d24ec4f1a98c6e5b');
    expect(toHex(xxh64('abc'))).toBe('44bc2cf5ad770999');
  });

  it('matches the reference implementation on any bytes, short and long', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(toHex(xxh64(bytes))).toBe(reference(bytes).toString(16).padStart(16, '0'));
      }),
      { numRuns: 2000 },
    );
  });

  it('hashes strings as their UTF-8 bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(xxh64(s)).toEqual(xxh64(new TextEncoder().encode(s)));
      }),
    );
  });
});

describe('rendezvous score', () => {
  it('is fmix32 of the low halves, then fmix32 of the high halves xor that, in 32-bit integer arithmetic', () => {
    // An independent formulation in BigInt: multiplication modulo 2^32.
    const M = 0xffffffffn;
    const fmix = (h: bigint) => {
      h ^= h >> 16n;
      h = (h * 0x85ebca6bn) & M;
      h ^= h >> 13n;
      h = (h * 0xc2b2ae35n) & M;
      return h ^ (h >> 16n);
    };
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (k, p) => {
        const lo = fmix((k ^ p) & M);
        const hi = fmix(((k >> 32n) ^ (p >> 32n) ^ lo) & M);
        const l = scoreLo(Number(k & M), Number(p & M));
        expect([scoreHi(Number(k >> 32n), Number(p >> 32n), l), l]).toEqual([Number(hi), Number(lo)]);
      }),
      { numRuns: 2000 },
    );
  });

  it('ranks pools for a key independently of other keys: each of 8 pools comes first for about 1/8 of keys', () => {
    const pools = Array.from({ length: 8 }, (_, i) => xxh64(`pool-${i}`));
    const wins = new Array(8).fill(0);
    for (let k = 0; k < 16000; k++) {
      const key = xxh64(`bot-${k}`);
      let best = -1;
      let bestHi = -1;
      let bestLo = -1;
      pools.forEach((p, i) => {
        const lo = scoreLo(key.lo, p.lo);
        const hi = scoreHi(key.hi, p.hi, lo);
        if (hi > bestHi || (hi === bestHi && lo > bestLo)) [best, bestHi, bestLo] = [i, hi, lo];
      });
      wins[best] += 1;
    }
    for (const w of wins) expect(Math.abs(w - 2000)).toBeLessThan(200);
  });
});
