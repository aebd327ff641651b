/**
 * XXH64's main loop in WebAssembly, where a 64-bit multiplication is one instruction (JavaScript needs
 * about a dozen 32-bit ones for it): the loop that hashes a catalog's canonical JSON, most of the bytes
 * the generation reads. The module is assembled here from its instructions (below, with the text form
 * of each), not shipped as a binary. Without WebAssembly (`node --jitless`) `wasmStripes()` is undefined
 * and xxh64.ts runs the loop in JavaScript; test/catalog/canonical.test.ts checks both against
 * `xxh64()`.
 */

/** Where the four lanes are (8 bytes each, little-endian) and where the bytes to hash are, in the module's memory. */
const LANES = 0;
const DATA = 64;
/** Bytes hashed per call (the data area; a multiple of 32). */
export const WASM_CHUNK = 1 << 16;

/** Unsigned and signed LEB128, the WebAssembly encoding of integers. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n ? b | 0x80 : b);
  } while (n);
  return out;
}
function sleb(n: bigint): number[] {
  const out: number[] = [];
  for (;;) {
    const b = Number(n & 0x7fn);
    n >>= 7n;
    if ((n === 0n && !(b & 0x40)) || (n === -1n && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
}
const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
const asSigned = (x: bigint) => BigInt.asIntN(64, x);

const P1 = asSigned(0x9e3779b185ebca87n);
const P2 = asSigned(0xc2b2ae3d27d4eb4fn);

/**
 * (func (export "s") (param $p i32) (param $end i32) (local $v1 i64) (local $v2 i64) (local $v3 i64) (local $v4 i64)
 *   ;; each lane from memory, then for every 32 bytes: v = rotl(v + load64(p + 8k) * P2, 31) * P1; lanes back.
 */
function body(): number[] {
  const lane = (k: number) => 2 + k; // local index of v(k+1)
  const code: number[] = [];
  for (let k = 0; k < 4; k++) code.push(0x41, 0, 0x29, 3, ...uleb(LANES + 8 * k), 0x21, lane(k)); // local.set v = load
  code.push(0x02, 0x40, 0x03, 0x40); // block, loop
  code.push(0x20, 0, 0x20, 1, 0x4f, 0x0d, 1); // br_if 1 (p >= end)
  for (let k = 0; k < 4; k++) {
    code.push(0x20, lane(k)); // local.get v
    code.push(0x20, 0, 0x29, 3, ...uleb(8 * k)); // i64.load offset=8k (p)
    code.push(0x42, ...sleb(P2), 0x7e, 0x7c); // i64.const P2; i64.mul; i64.add
    code.push(0x42, 31, 0x89); // i64.const 31; i64.rotl
    code.push(0x42, ...sleb(P1), 0x7e, 0x21, lane(k)); // i64.const P1; i64.mul; local.set v
  }
  code.push(0x20, 0, 0x41, 32, 0x6a, 0x21, 0); // p += 32
  code.push(0x0c, 0, 0x0b, 0x0b); // br 0 (loop); end loop; end block
  for (let k = 0; k < 4; k++) code.push(0x41, 0, 0x20, lane(k), 0x37, 3, ...uleb(LANES + 8 * k)); // i64.store offset
  const locals = [1, 4, 0x7e]; // one run of 4 i64 locals
  const fn = [...locals, ...code, 0x0b];
  return [...uleb(fn.length), ...fn];
}

function assemble(): Uint8Array {
  const pages = Math.ceil((DATA + WASM_CHUNK) / 65536);
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 0]), // type: (i32, i32) -> ()
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0, ...uleb(pages)]), // one memory of `pages` pages
    ...section(7, [2, 1, 0x6d, 2, 0, 1, 0x73, 0, 0]), // export "m" (memory 0), "s" (function 0)
    ...section(10, [1, ...body()]), // the function's body
  ]);
}

/** The little of the WebAssembly API used here (the runtime compiles without the DOM's types). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

/**
 * Runs XXH64's stripes over `bytes[p, end)` (end - p a multiple of 32) with the lanes in `v` (hi, lo
 * int32 halves, as xxh64.ts keeps them), updating `v`.
 */
type Stripes = (v: Int32Array, bytes: Uint8Array, p: number, end: number) => void;

let made: Stripes | undefined | null = null;

/**
 * The stripes in WebAssembly, the module assembled on the first call (a process that never hashes a long
 * input never makes it); undefined without WebAssembly (`node --jitless`).
 */
export function wasmStripes(): Stripes | undefined {
  if (made === null) made = makeStripes();
  return made;
}

function makeStripes(): Stripes | undefined {
  const wasm = (globalThis as { WebAssembly?: WebAssemblyApi }).WebAssembly;
  if (!wasm) return undefined;
  let instance: { exports: Record<string, unknown> };
  try {
    instance = new wasm.Instance(new wasm.Module(assemble()));
  } catch {
    return undefined;
  }
  const memory = (instance.exports.m as { buffer: ArrayBuffer }).buffer;
  const stripes = instance.exports.s as (p: number, end: number) => void;
  // The module's memory is little-endian whatever the machine's.
  const lanes = new DataView(memory, LANES, 32);
  const data = new Uint8Array(memory, DATA, WASM_CHUNK);
  return (v, bytes, p, end) => {
    for (let k = 0; k < 4; k++) {
      lanes.setInt32(8 * k, v[2 * k + 1], true);
      lanes.setInt32(8 * k + 4, v[2 * k], true);
    }
    while (p < end) {
      const n = Math.min(WASM_CHUNK, end - p);
      data.set(bytes.subarray(p, p + n));
      stripes(DATA, DATA + n);
      p += n;
    }
    for (let k = 0; k < 4; k++) {
      v[2 * k] = lanes.getInt32(8 * k + 4, true);
      v[2 * k + 1] = lanes.getInt32(8 * k, true);
    }
  };
}
