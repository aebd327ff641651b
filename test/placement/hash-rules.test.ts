/**
 * runtime/src/hash.ts against the xxHash authors' C implementation (compiled to WebAssembly) at every
 * input length up to 300 bytes and on strings long enough to leave the reused buffer: every branch of
 * XXH64 (the 32-byte stripes, the 8-, 4- and 1-byte tails), the carry between the 32-bit halves, and the
 * small helpers placement ranks with. Deterministic and fast: part of the mutation tests' Hash module.
 */
import { compareU64, fmix32, scoreHi, scoreLo, toHex, xxh64 } from '@botshard/runtime/hash';
import xxhash from 'xxhash-wasm';

let reference: (b: Uint8Array) => bigint;
beforeAll(async () => {
  reference = (await xxhash()).h64Raw;
});

const hex = (b: Uint8Array) => reference(b).toString(16).padStart(16, '0');

/** Deterministic bytes covering the whole 0..255 range (high bits set too). */
function bytes(length: number, seed: number): Uint8Array {
  let x = seed >>> 0 || 1;
  return Uint8Array.from({ length }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) & 0xff;
  });
}

describe('xxh64 against the reference implementation', () => {
  test('every length from 0 to 300 bytes (each stripe and tail combination)', () => {
    for (let n = 0; n <= 300; n++) {
      const b = bytes(n, n + 1);
      expect([n, toHex(xxh64(b))]).toEqual([n, hex(b)]);
    }
  });

  test('all-0xff and all-zero inputs (sign and carry of every 32-bit operation)', () => {
    for (const n of [1, 3, 4, 7, 8, 31, 32, 33, 64, 100]) {
      for (const fill of [0x00, 0xff, 0x80]) {
        const b = new Uint8Array(n).fill(fill);
        expect([n, fill, toHex(xxh64(b))]).toEqual([n, fill, hex(b)]);
      }
    }
  });

  test('a sum whose low half is exactly 2^32 - 1 carries nothing into the high half', () => {
    // First stripe lane chosen so that v1.lo + (lane * P2).lo = 0xffffffff in the first round.
    const M = 0x100000000n;
    const P1L = 0x85ebca87n;
    const P2L = 0x27d4eb4fn;
    const v1l = (P1L + P2L) % M;
    // The inverse of P2L modulo 2^32 (Newton's iteration; P2L is odd).
    let inv = P2L;
    for (let i = 0; i < 5; i++) inv = (inv * (2n - P2L * inv)) % M;
    inv = ((inv % M) + M) % M;
    expect((inv * P2L) % M).toBe(1n);
    const laneLo = Number(((0xffffffffn - v1l) * inv) % M);
    const b = bytes(32, 99);
    new DataView(b.buffer).setUint32(0, laneLo, true);
    expect(toHex(xxh64(b))).toBe(hex(b));
  });

  test('strings are hashed as their UTF-8 bytes, short (the reused buffer) and long (over 85 characters)', () => {
    const enc = new TextEncoder();
    const alphabet = ['a', 'Z', '0', '-', 'é', '日', '本', '😀', '\u0000', '\u07ff'];
    for (let n = 0; n <= 300; n += 7) {
      const s = Array.from({ length: n }, (_, i) => alphabet[(i * 7 + n) % alphabet.length]).join('');
      expect([n, toHex(xxh64(s))]).toEqual([n, hex(enc.encode(s))]);
    }
    for (const s of ['x'.repeat(85), 'x'.repeat(86), 'x'.repeat(300), 'é'.repeat(200), '😀'.repeat(100)]) {
      expect([s.length, toHex(xxh64(s))]).toEqual([s.length, hex(enc.encode(s))]);
    }
  });

  test('a long string hashed after a short one (the reused buffer holds no leftovers)', () => {
    const enc = new TextEncoder();
    const short = 'bot-1';
    const long = 'y'.repeat(1000);
    expect(toHex(xxh64(short))).toBe(hex(enc.encode(short)));
    expect(toHex(xxh64(long))).toBe(hex(enc.encode(long)));
    expect(toHex(xxh64(short))).toBe(hex(enc.encode(short)));
  });
});

describe('helpers', () => {
  test('toHex writes both halves as 8 lowercase hex digits each', () => {
    expect(toHex({ hi: 1, lo: 0xab })).toBe('00000001000000ab');
    expect(toHex({ hi: 0xffffffff, lo: 0 })).toBe('ffffffff00000000');
  });

  test('compareU64 orders by the high half, then by the low half', () => {
    expect(Math.sign(compareU64(1, 0, 0, 0xffffffff))).toBe(1);
    expect(Math.sign(compareU64(0, 0xffffffff, 1, 0))).toBe(-1);
    expect(Math.sign(compareU64(0, 1, 1, 1))).toBe(-1);
    expect(Math.sign(compareU64(7, 5, 7, 3))).toBe(1);
    expect(Math.sign(compareU64(7, 3, 7, 5))).toBe(-1);
    expect(compareU64(7, 3, 7, 3)).toBe(0);
  });

  test('fmix32 and the rendezvous score match a BigInt formulation', () => {
    const M = 0xffffffffn;
    const fmix = (x: bigint) => {
      let h = x;
      h ^= h >> 16n;
      h = (h * 0x85ebca6bn) & M;
      h ^= h >> 13n;
      h = (h * 0xc2b2ae35n) & M;
      return Number(h ^ (h >> 16n));
    };
    for (const x of [0, 1, 0x80000000, 0xffffffff, 0x12345678, 0xdeadbeef]) expect(fmix32(x)).toBe(fmix(BigInt(x)));
    const k = xxh64('bot-1');
    const p = xxh64('pool-1');
    const lo = scoreLo(k.lo, p.lo);
    expect(lo).toBe(fmix(BigInt((k.lo ^ p.lo) >>> 0)));
    expect(scoreHi(k.hi, p.hi, lo)).toBe(fmix(BigInt((k.hi ^ p.hi ^ lo) >>> 0)));
  });
});
