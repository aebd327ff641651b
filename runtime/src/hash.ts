/**
 * 64-bit hashing, in integer arithmetic only: placement scores and catalog generations. A module of its
 * own (neither catalog/ nor placement/) because both use it and placement imports the catalog.
 *
 * Placement must give the same answer in every process and every language, so nothing in the
 * decision path uses floating-point maths beyond exact integer operations on values below 2^53.
 * A 64-bit value is carried as two unsigned 32-bit halves (hi, lo); JavaScript numbers hold them
 * exactly. XXH64 is the standard algorithm (https://github.com/Cyan4973/xxHash), so any xxHash
 * library reproduces `xxh64()`; `mix64()` is MurmurHash3's 64-bit finalizer.
 */

/** A 64-bit unsigned integer as two unsigned 32-bit halves. */
export interface U64 {
  readonly hi: number;
  readonly lo: number;
}

// Scratch registers: the arithmetic helpers write their result here instead of allocating.
let rHi = 0;
let rLo = 0;

/** (aHi,aLo) * (bHi,bLo) mod 2^64 -> rHi, rLo. Splits the low halves into 16-bit limbs so every
 * partial product stays below 2^53 and is exact. */
function mul(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const a0 = aLo & 0xffff;
  const a1 = aLo >>> 16;
  const b0 = bLo & 0xffff;
  const b1 = bLo >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33
  const lo = a0 * b0 + (mid % 0x10000) * 0x10000; // < 2^33
  const carry = Math.floor(lo / 0x100000000);
  rLo = lo >>> 0;
  rHi = (a1 * b1 + Math.floor(mid / 0x10000) + carry + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) >>> 0;
}

/** (aHi,aLo) + (bHi,bLo) mod 2^64 -> rHi, rLo. */
function add(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const lo = aLo + bLo;
  rLo = lo >>> 0;
  rHi = (aHi + bHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** rotate left by n (0 < n < 64) -> rHi, rLo. */
function rotl(hi: number, lo: number, n: number): void {
  if (n === 32) {
    rHi = lo;
    rLo = hi;
    return;
  }
  if (n > 32) {
    const t = hi;
    hi = lo;
    lo = t;
    n -= 32;
  }
  rHi = ((hi << n) | (lo >>> (32 - n))) >>> 0;
  rLo = ((lo << n) | (hi >>> (32 - n))) >>> 0;
}

// XXH64 primes as (hi, lo).
const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;

/** XXH64 round: acc = rotl(acc + lane * P2, 31) * P1 -> rHi, rLo. */
function round(accHi: number, accLo: number, laneHi: number, laneLo: number): void {
  mul(laneHi, laneLo, P2H, P2L);
  add(accHi, accLo, rHi, rLo);
  rotl(rHi, rLo, 31);
  mul(rHi, rLo, P1H, P1L);
}

function read32(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

const encoder = new TextEncoder();
const scratch = new Uint8Array(256);

/** The UTF-8 bytes of a string, in a reused buffer when it is short (hashing ids must not allocate). */
function utf8(s: string): { bytes: Uint8Array; length: number } {
  if (s.length * 3 > scratch.length) return { bytes: encoder.encode(s), length: -1 };
  const { written } = encoder.encodeInto(s, scratch);
  return { bytes: scratch, length: written };
}

/**
 * XXH64's main loop over the 32-byte stripes of an input of 32 bytes or more, and the merge of its four
 * lanes: the hash so far is left in (rHi, rLo); returns the offset of the first byte not consumed.
 */
function stripes(b: Uint8Array, len: number): number {
  let p = 0;
  let hHi: number;
  let hLo: number;
  // v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1
  add(P1H, P1L, P2H, P2L);
  let v1h = rHi, v1l = rLo;
  let v2h = P2H, v2l = P2L;
  let v3h = 0, v3l = 0;
  add(~P1H >>> 0, ~P1L >>> 0, 0, 1);
  let v4h = rHi, v4l = rLo;
  while (p + 32 <= len) {
    round(v1h, v1l, read32(b, p + 4), read32(b, p)); v1h = rHi; v1l = rLo;
    round(v2h, v2l, read32(b, p + 12), read32(b, p + 8)); v2h = rHi; v2l = rLo;
    round(v3h, v3l, read32(b, p + 20), read32(b, p + 16)); v3h = rHi; v3l = rLo;
    round(v4h, v4l, read32(b, p + 28), read32(b, p + 24)); v4h = rHi; v4l = rLo;
    p += 32;
  }
  rotl(v1h, v1l, 1); hHi = rHi; hLo = rLo;
  rotl(v2h, v2l, 7); add(hHi, hLo, rHi, rLo); hHi = rHi; hLo = rLo;
  rotl(v3h, v3l, 12); add(hHi, hLo, rHi, rLo); hHi = rHi; hLo = rLo;
  rotl(v4h, v4l, 18); add(hHi, hLo, rHi, rLo); hHi = rHi; hLo = rLo;
  for (const [vh, vl] of [[v1h, v1l], [v2h, v2l], [v3h, v3l], [v4h, v4l]]) {
    round(0, 0, vh, vl);
    hHi = (hHi ^ rHi) >>> 0;
    hLo = (hLo ^ rLo) >>> 0;
    mul(hHi, hLo, P1H, P1L);
    add(rHi, rLo, P4H, P4L);
    hHi = rHi; hLo = rLo;
  }
  rHi = hHi; rLo = hLo;
  return p;
}

/** XXH64's final mix. */
function avalanche(hHi: number, hLo: number): U64 {
  // h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32
  hLo = (hLo ^ (hHi >>> 1)) >>> 0;
  mul(hHi, hLo, P2H, P2L); hHi = rHi; hLo = rLo;
  hLo = (hLo ^ ((hLo >>> 29) | (hHi << 3))) >>> 0;
  hHi = (hHi ^ (hHi >>> 29)) >>> 0;
  mul(hHi, hLo, P3H, P3L); hHi = rHi; hLo = rLo;
  hLo = (hLo ^ hHi) >>> 0;
  return { hi: hHi, lo: hLo };
}

/** XXH64 of the bytes (or of the UTF-8 encoding of a string) with seed 0. */
export function xxh64(input: string | Uint8Array): U64 {
  let b: Uint8Array;
  let len: number;
  if (typeof input === 'string') {
    const u = utf8(input);
    b = u.bytes;
    len = u.length < 0 ? b.length : u.length;
  } else {
    b = input;
    len = b.length;
  }
  let p = 0;
  let hHi = P5H;
  let hLo = P5L;
  if (len >= 32) {
    p = stripes(b, len);
    hHi = rHi; hLo = rLo;
  }
  add(hHi, hLo, Math.floor(len / 0x100000000), len >>> 0);
  hHi = rHi; hLo = rLo;
  while (p + 8 <= len) {
    round(0, 0, read32(b, p + 4), read32(b, p));
    hHi = (hHi ^ rHi) >>> 0;
    hLo = (hLo ^ rLo) >>> 0;
    rotl(hHi, hLo, 27);
    mul(rHi, rLo, P1H, P1L);
    add(rHi, rLo, P4H, P4L);
    hHi = rHi; hLo = rLo;
    p += 8;
  }
  if (p + 4 <= len) {
    mul(0, read32(b, p), P1H, P1L);
    hHi = (hHi ^ rHi) >>> 0;
    hLo = (hLo ^ rLo) >>> 0;
    rotl(hHi, hLo, 23);
    mul(rHi, rLo, P2H, P2L);
    add(rHi, rLo, P3H, P3L);
    hHi = rHi; hLo = rLo;
    p += 4;
  }
  while (p < len) {
    mul(0, b[p], P5H, P5L);
    hHi = (hHi ^ rHi) >>> 0;
    hLo = (hLo ^ rLo) >>> 0;
    rotl(hHi, hLo, 11);
    mul(rHi, rLo, P1H, P1L);
    hHi = rHi; hLo = rLo;
    p += 1;
  }
  return avalanche(hHi, hLo);
}

/** MurmurHash3's 32-bit finalizer. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The rendezvous score of a (key, pool) pair from their 64-bit hashes, as a 64-bit value
 * `(scoreHi(...), scoreLo(...))` compared hi first: lo = fmix32(kLo ^ pLo), hi = fmix32(kHi ^ pHi ^ lo).
 * Four 32-bit multiplications: cheap enough for 100,000 bots times hundreds of pools.
 */
export function scoreLo(kLo: number, pLo: number): number {
  return fmix32((kLo ^ pLo) >>> 0);
}

export function scoreHi(kHi: number, pHi: number, lo: number): number {
  return fmix32((kHi ^ pHi ^ lo) >>> 0);
}

/** The 16 lowercase hex digits of a 64-bit value. */
export function toHex(h: U64): string {
  return h.hi.toString(16).padStart(8, '0') + h.lo.toString(16).padStart(8, '0');
}

/** Compares two 64-bit values: negative, zero or positive. */
export function compareU64(aHi: number, aLo: number, bHi: number, bLo: number): number {
  return aHi !== bHi ? aHi - bHi : aLo - bLo;
}
