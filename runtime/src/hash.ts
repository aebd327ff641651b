/**
 * 64-bit hashing, in integer arithmetic only: placement scores and catalog generations. A module of its
 * own (neither catalog/ nor placement/) because both use it and placement imports the catalog.
 *
 * Placement must give the same answer in every process and every language, so nothing in the
 * decision path uses floating-point maths. A 64-bit value is carried as two unsigned 32-bit halves
 * (hi, lo); JavaScript numbers hold them exactly. XXH64 (xxh64.ts) is the standard algorithm, so any
 * xxHash library reproduces `xxh64()`; `fmix32()` is MurmurHash3's 32-bit finalizer.
 */

export { Xxh64Stream, xxh64 } from './xxh64';
import type { U64 } from './xxh64';
export type { U64 };

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
