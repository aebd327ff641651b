/**
 * XXH64 (seed 0, https://github.com/Cyan4973/xxHash): `xxh64()` of a string's UTF-8 bytes or of bytes,
 * and `Xxh64Stream` over bytes given in pieces (the catalog's generation hashes its canonical JSON as it
 * is written, never holding the whole text). Integer arithmetic only: a 64-bit value is two int32 halves
 * (hi, lo), products from 16-bit limbs with Math.imul, made unsigned only in `digest()`, so any xxHash
 * library gives the same values (test/placement/hash-rules.test.ts checks them against the authors' code).
 * Long inputs run their 32-byte stripes in WebAssembly (xxh64-wasm.ts) when it can.
 */
import { wasmStripes } from './xxh64-wasm';

// XXH64 primes as int32 (hi, lo).
const P1H = 0x9e3779b1 | 0, P1L = 0x85ebca87 | 0;
const P2H = 0xc2b2ae3d | 0, P2L = 0x27d4eb4f | 0;
const P3H = 0x165667b1 | 0, P3L = 0x9e3779f9 | 0;
const P4H = 0x85ebca77 | 0, P4L = 0xc2b2ae63 | 0;
const P5H = 0x27d4eb2f | 0, P5L = 0x165667c5 | 0;

/** Scratch result (hi, lo) of the arithmetic below: a typed array, so that storing it never allocates. */
const R = new Int32Array(2);

/** (aH,aL) * (bH,bL) mod 2^64 -> R: the low halves' full product from four 16-bit partial products. */
function mul(aH: number, aL: number, bH: number, bL: number): void {
  const a0 = aL & 0xffff, a1 = aL >>> 16, b0 = bL & 0xffff, b1 = bL >>> 16;
  const p00 = Math.imul(a0, b0), p01 = Math.imul(a0, b1), p10 = Math.imul(a1, b0), p11 = Math.imul(a1, b1);
  const c1 = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const c2 = (p01 >>> 16) + (p10 >>> 16) + (p11 & 0xffff) + (c1 >>> 16);
  R[1] = (p00 & 0xffff) | (c1 << 16);
  R[0] = (((c2 & 0xffff) | (((p11 >>> 16) + (c2 >>> 16)) << 16)) + Math.imul(aH, bL) + Math.imul(aL, bH)) | 0;
}

/** (aH,aL) + (bH,bL) mod 2^64 -> R. */
function add(aH: number, aL: number, bH: number, bL: number): void {
  const lo = (aL + bL) | 0;
  R[1] = lo;
  R[0] = (aH + bH + ((lo >>> 0) < (aL >>> 0) ? 1 : 0)) | 0;
}

/** Rotate left by n, 0 < n < 32 -> R. */
function rotl(h: number, l: number, n: number): void {
  R[0] = (h << n) | (l >>> (32 - n));
  R[1] = (l << n) | (h >>> (32 - n));
}

/**
 * XXH64 round: rotl(acc + lane * P2, 31) * P1 -> R. The hot loop, written out in locals with the
 * primes' 16-bit limbs as literals (P2 = c2b2ae3d 27d4eb4f, P1 = 9e3779b1 85ebca87), so that nothing goes
 * through R or a module constant until the end.
 */
function round(aH: number, aL: number, kH: number, kL: number): void {
  // lane * P2
  let a0 = kL & 0xffff, a1 = kL >>> 16;
  let p00 = Math.imul(a0, 0xeb4f), p01 = Math.imul(a0, 0x27d4), p10 = Math.imul(a1, 0xeb4f), p11 = Math.imul(a1, 0x27d4);
  let c1 = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  let c2 = (p01 >>> 16) + (p10 >>> 16) + (p11 & 0xffff) + (c1 >>> 16);
  const mL = (p00 & 0xffff) | (c1 << 16);
  const mH = (((c2 & 0xffff) | (((p11 >>> 16) + (c2 >>> 16)) << 16)) + Math.imul(kH, 0x27d4eb4f) + Math.imul(kL, 0xc2b2ae3d | 0)) | 0;
  // + acc, rotl 31
  const sL = (aL + mL) | 0;
  const sH = (aH + mH + ((sL >>> 0) < (aL >>> 0) ? 1 : 0)) | 0;
  const rH = (sH << 31) | (sL >>> 1);
  const rL = (sL << 31) | (sH >>> 1);
  // * P1
  a0 = rL & 0xffff;
  a1 = rL >>> 16;
  p00 = Math.imul(a0, 0xca87); p01 = Math.imul(a0, 0x85eb); p10 = Math.imul(a1, 0xca87); p11 = Math.imul(a1, 0x85eb);
  c1 = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  c2 = (p01 >>> 16) + (p10 >>> 16) + (p11 & 0xffff) + (c1 >>> 16);
  R[1] = (p00 & 0xffff) | (c1 << 16);
  R[0] = (((c2 & 0xffff) | (((p11 >>> 16) + (c2 >>> 16)) << 16)) + Math.imul(rH, 0x85ebca87 | 0) + Math.imul(rL, 0x9e3779b1 | 0)) | 0;
}

/** h ^ round(0, v), times P1, plus P4 -> R: how the four lanes fold into one. */
function merge(hH: number, hL: number, vH: number, vL: number): void {
  round(0, 0, vH, vL);
  mul(hH ^ R[0], hL ^ R[1], P1H, P1L);
  add(R[0], R[1], P4H, P4L);
}

/** How far each lane turns when the four are summed. */
const LANE_ROTATION = [1, 7, 12, 18];
/** The first and last lanes' start: P1 + P2 and -P1. */
add(P1H, P1L, P2H, P2L);
const V1H = R[0], V1L = R[1];
add(~P1H, ~P1L, 0, 1);
const V4H = R[0], V4L = R[1];

/** A 64-bit unsigned integer as two unsigned 32-bit halves. */
export interface U64 {
  readonly hi: number;
  readonly lo: number;
}

/** Pieces shorter than this stay in JavaScript: copying them into WebAssembly's memory costs more than it saves. */
const WASM_FROM = 1024;

/** XXH64 of a stream: `update` with each piece in order, then `digest`. */
export class Xxh64Stream {
  /** The four lanes (hi, lo each), from v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1. */
  private readonly v = new Int32Array(8);
  /** Bytes not yet in a 32-byte stripe, and how many. */
  private readonly pending = new Uint8Array(32);
  private readonly pendingView = new DataView(this.pending.buffer);
  private held = 0;
  private total = 0;

  /** Whether long pieces run in WebAssembly when it can (xxh64-wasm.ts); `wasm: false` keeps them in JavaScript (tests check both). */
  private readonly wasm: boolean;

  constructor(o: { wasm?: boolean } = {}) {
    this.wasm = o.wasm !== false;
    this.reset();
  }

  /** Back to the empty stream. */
  reset(): void {
    const v = this.v;
    v[0] = V1H; v[1] = V1L; v[2] = P2H; v[3] = P2L; v[4] = 0; v[5] = 0; v[6] = V4H; v[7] = V4L;
    this.held = 0;
    this.total = 0;
  }

  /** Hashes the first `length` bytes of `bytes` after what came before. */
  update(bytes: Uint8Array, length = bytes.length): void {
    this.total += length;
    let p = 0;
    const pending = this.pending;
    if (this.held > 0) {
      p = Math.min(32 - this.held, length);
      for (let i = 0; i < p; i++) pending[this.held + i] = bytes[i];
      this.held += p;
      if (this.held < 32) return;
      this.stripes(this.pendingView, 0, 32);
      this.held = 0;
    }
    const end = p + ((length - p) & ~31);
    const wasm = this.wasm && end - p >= WASM_FROM ? wasmStripes() : undefined;
    if (wasm) wasm(this.v, bytes, p, end);
    else if (end > p) this.stripes(new DataView(bytes.buffer, bytes.byteOffset, end), p, end);
    for (let i = end; i < length; i++) pending[i - end] = bytes[i];
    this.held = length - end;
  }

  /** The hash of everything given so far (the stream may go on). */
  digest(): U64 {
    const v = this.v;
    let hH = P5H, hL = P5L;
    if (this.total >= 32) {
      hH = 0;
      hL = 0;
      for (let i = 0; i < 8; i += 2) {
        rotl(v[i], v[i + 1], LANE_ROTATION[i / 2]);
        add(hH, hL, R[0], R[1]);
        hH = R[0]; hL = R[1];
      }
      for (let i = 0; i < 8; i += 2) {
        merge(hH, hL, v[i], v[i + 1]);
        hH = R[0]; hL = R[1];
      }
    }
    add(hH, hL, Math.floor(this.total / 0x100000000), this.total | 0);
    return this.tail(R[0], R[1]);
  }

  /** The bytes after the last stripe, 8, 4 and 1 at a time, then the final mix. */
  private tail(hH: number, hL: number): U64 {
    const d = this.pendingView;
    let p = 0;
    for (; p + 8 <= this.held; p += 8) {
      round(0, 0, d.getInt32(p + 4, true), d.getInt32(p, true));
      rotl(hH ^ R[0], hL ^ R[1], 27);
      mul(R[0], R[1], P1H, P1L);
      add(R[0], R[1], P4H, P4L);
      hH = R[0]; hL = R[1];
    }
    if (p + 4 <= this.held) {
      mul(0, d.getInt32(p, true), P1H, P1L);
      rotl(hH ^ R[0], hL ^ R[1], 23);
      mul(R[0], R[1], P2H, P2L);
      add(R[0], R[1], P3H, P3L);
      hH = R[0]; hL = R[1];
      p += 4;
    }
    for (; p < this.held; p++) {
      mul(0, this.pending[p], P5H, P5L);
      rotl(hH ^ R[0], hL ^ R[1], 11);
      mul(R[0], R[1], P1H, P1L);
      hH = R[0]; hL = R[1];
    }
    // h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32
    mul(hH, hL ^ (hH >>> 1), P2H, P2L);
    mul(R[0] ^ (R[0] >>> 29), R[1] ^ ((R[1] >>> 29) | (R[0] << 3)), P3H, P3L);
    return { hi: R[0] >>> 0, lo: (R[1] ^ R[0]) >>> 0 };
  }

  /** The 32-byte stripes of `d` from `p` to `end`, four lanes of 8 little-endian bytes each. */
  private stripes(d: DataView, p: number, end: number): void {
    const v = this.v;
    let v1h = v[0], v1l = v[1], v2h = v[2], v2l = v[3], v3h = v[4], v3l = v[5], v4h = v[6], v4l = v[7];
    for (; p < end; p += 32) {
      round(v1h, v1l, d.getInt32(p + 4, true), d.getInt32(p, true));
      v1h = R[0]; v1l = R[1];
      round(v2h, v2l, d.getInt32(p + 12, true), d.getInt32(p + 8, true));
      v2h = R[0]; v2l = R[1];
      round(v3h, v3l, d.getInt32(p + 20, true), d.getInt32(p + 16, true));
      v3h = R[0]; v3l = R[1];
      round(v4h, v4l, d.getInt32(p + 28, true), d.getInt32(p + 24, true));
      v4h = R[0]; v4l = R[1];
    }
    v[0] = v1h; v[1] = v1l; v[2] = v2h; v[3] = v2l; v[4] = v3h; v[5] = v3l; v[6] = v4h; v[7] = v4l;
  }
}

const oneShot = new Xxh64Stream();
const utf8 = new TextEncoder();
const scratch = new Uint8Array(256);

/** XXH64 of the bytes, or of a string's UTF-8 bytes (a short one encoded into a reused buffer: hashing ids allocates nothing but the result). */
export function xxh64(input: string | Uint8Array): U64 {
  oneShot.reset();
  if (typeof input !== 'string') oneShot.update(input);
  else if (input.length * 3 > scratch.length) oneShot.update(utf8.encode(input));
  else oneShot.update(scratch, ascii(input) ? input.length : utf8.encodeInto(input, scratch).written);
  return oneShot.digest();
}

/** Copies an ASCII string into `scratch` (a short id is quicker so than through TextEncoder); false if it is not ASCII. */
function ascii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return false;
    scratch[i] = c;
  }
  return true;
}
