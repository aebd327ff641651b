/**
 * The catalog's generation is XXH64 of its canonical JSON. canonical.ts writes that text as UTF-8 bytes
 * in pieces and hashes them as they come (xxh64.ts), never holding the whole text: here it must
 * give, for any value, exactly what the former one-string form gave (`reference` below, the code it
 * replaced), and the stream hash exactly `xxh64()` of the joined bytes (itself checked against the xxHash
 * authors' implementation in test/placement/hash.test.ts), however the bytes are cut.
 */
import fc from 'fast-check';
import xxhash from 'xxhash-wasm';
import { canonicalGeneration, canonicalJson } from '@botshard/runtime/catalog/canonical';
import { WASM_CHUNK, wasmStripes } from '@botshard/runtime/xxh64-wasm';
import { parseCatalog } from '@botshard/runtime/catalog/normalize';
import { Xxh64Stream, toHex, xxh64 } from '@botshard/runtime/hash';
import { syntheticCatalog } from '../../bench/synthetic';

/** canonicalJson as it was: one string, built by joining the text of every value. */
function reference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${reference((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Any UTF-16 code unit: lone surrogates, control characters, quotes and backslashes included. */
const unit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const text = fc.oneof(fc.string({ unit }), fc.string(), fc.constantFrom('', '"', '\\', '\u2028', 'é日本', '\ud800', 'a\u0000b'));
const leaf = fc.oneof(text, fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.constantFrom(-0, NaN, Infinity, 1e21, 5e-324));
const value = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 6 }),
  object: fc.dictionary(fc.oneof(text, fc.constantFrom('id', 'name', '10', '9', '__proto__x')), tie('value'), { maxKeys: 6 }),
})).value;

describe('canonical JSON', () => {
  it('is the former text for any value', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(reference(v));
        if (v !== undefined) expect(canonicalGeneration(v)).toBe(toHex(xxh64(reference(v))));
      }),
      { numRuns: 3000 },
    );
  });

  it('escapes each character as JSON.stringify does', () => {
    const chars = [...Array.from({ length: 0x100 }, (_, i) => i), 0x2028, 0x2029, 0xd800, 0xdfff, 0xfeff, 0xffff].map((c) => String.fromCharCode(c));
    const v = { each: chars.map((c) => `x${c}y`), all: chars.join(''), [chars.join('')]: 1 };
    expect(canonicalJson(v)).toBe(reference(v));
    expect(canonicalGeneration(v)).toBe(toHex(xxh64(reference(v))));
  });

  it('writes what JSON has no text for as before: nothing in an array, "undefined" as an object value', () => {
    const odd = { f: () => 1, s: Symbol('x'), u: undefined, list: [() => 1, undefined, Symbol('y'), 1] };
    expect(canonicalJson(odd)).toBe(reference(odd));
    expect(canonicalJson(odd)).toBe('{"f":undefined,"list":[,,,1],"s":undefined}');
  });

  it('is the same across the pieces it is written in: long strings, many values, shared frozen objects', () => {
    const frozen = Object.freeze({ name: 'shared', examples: Object.freeze([]) });
    const big = Object.freeze({ text: 'é'.repeat(50_000), more: 'x'.repeat(70_000) });
    const values = [
      { long: 'a'.repeat(200_000), unicode: '日本'.repeat(40_000) },
      Array.from({ length: 20_000 }, (_, i) => ({ i, s: `v${i}`, frozen })),
      { big, again: big, list: [big, frozen, frozen] },
      Array.from({ length: 3000 }, (_, i) => ({ [`k${i % 7}`]: i, z: [i, -i], a: { b: { c: `${i}` } } })),
    ];
    for (const v of values) {
      expect(canonicalJson(v)).toBe(reference(v));
      expect(canonicalGeneration(v)).toBe(toHex(xxh64(reference(v))));
    }
  });

  it("gives a normalised catalog the generation of its content's former text", () => {
    const catalog = parseCatalog(syntheticCatalog({ bots: 3000, seed: 3, locality: 'encoder', pinned: 0.01 }));
    const { apiVersion: _a, kind: _k, generation, ...content } = catalog;
    expect(generation).toBe(toHex(xxh64(reference(content))));
  });
});

describe('XXH64 over bytes in pieces', () => {
  let reference: (b: Uint8Array) => bigint;
  beforeAll(async () => {
    reference = (await xxhash()).h64Raw;
  });
  const referenceHex = (b: Uint8Array) => reference(b).toString(16).padStart(16, '0');

  it('runs its main loop in WebAssembly here (JavaScript where there is none)', () => {
    expect(wasmStripes()).toBeDefined();
  });

  it.each([true, false])('is xxh64 of the bytes joined, however they are cut, and the xxHash reference (WebAssembly: %s)', (wasm) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2600 }), fc.array(fc.nat({ max: 2600 }), { maxLength: 8 }), (bytes, cuts) => {
        const stream = new Xxh64Stream({ wasm });
        let at = 0;
        for (const cut of [...cuts.map((c) => c % (bytes.length + 1)), bytes.length].sort((a, b) => a - b)) {
          stream.update(bytes.subarray(at, cut));
          at = cut;
        }
        const h = stream.digest();
        expect(h).toEqual(xxh64(bytes));
        expect(toHex(h)).toBe(referenceHex(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it.each([true, false])('is the same over long inputs, in pieces larger than its WebAssembly memory (WebAssembly: %s)', (wasm) => {
    const bytes = Uint8Array.from({ length: 3 * WASM_CHUNK + 77 }, (_, i) => (i * 2654435761) >>> 24);
    for (const piece of [WASM_CHUNK * 2 + 5, 1000, 31]) {
      const stream = new Xxh64Stream({ wasm });
      for (let at = 0; at < bytes.length; at += piece) stream.update(bytes.subarray(at, at + piece));
      expect(toHex(stream.digest())).toBe(referenceHex(bytes));
    }
  });

  it('digests what it has so far, goes on after, and starts over on reset', () => {
    const bytes = Uint8Array.from({ length: 100 }, (_, i) => i * 7);
    const stream = new Xxh64Stream();
    stream.update(bytes.subarray(0, 40));
    expect(stream.digest()).toEqual(xxh64(bytes.subarray(0, 40)));
    stream.update(bytes.subarray(40), 30);
    expect(stream.digest()).toEqual(xxh64(bytes.subarray(0, 70)));
    stream.reset();
    expect(stream.digest()).toEqual(xxh64(''));
  });

  it('hashes a string as its UTF-8 bytes, short (in a reused buffer) or long', () => {
    const utf8 = new TextEncoder();
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit }), fc.string({ unit: 'binary' }), fc.string({ minLength: 80, maxLength: 300 })), (s) => {
        expect(toHex(xxh64(s))).toBe(referenceHex(utf8.encode(s)));
      }),
      { numRuns: 2000 },
    );
  });
});
