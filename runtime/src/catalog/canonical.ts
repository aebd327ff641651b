/**
 * Canonical JSON (object keys sorted at every level) and the generation hashed from it. The text is
 * written as UTF-8 bytes into a buffer handed on whenever it fills: the generation hashes each buffer
 * and drops it, so a catalog's text is never held whole, and building it makes no string per value.
 */
import { Xxh64Stream, toHex } from '../hash';

/** Bytes handed on at a time. */
const BUFFER = 1 << 16;
const utf8 = new TextEncoder();

/** An object's keys sorted, each with the UTF-8 bytes of its `"key":`. */
interface SortedKeys {
  keys: string[];
  quoted: Uint8Array[];
}

/** Objects of one shape (the same keys in the same order) share their sorted keys: found by first key, then compared. */
const shapes = new Map<string, Array<{ keys: string[]; sorted: SortedKeys }>>();
/** The cache stops growing here (a catalog has few field names; bots' properties may have many). */
const SHAPES_MAX = 10_000;
const SHAPES_PER_KEY = 16;
const NO_KEYS: SortedKeys = { keys: [], quoted: [] };

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An object's keys in sorted order (as `Object.keys(o).sort()`), with their quoted forms. */
function keysOf(o: object): SortedKeys {
  const keys = Object.keys(o);
  if (keys.length === 0) return NO_KEYS;
  const known = shapes.get(keys[0]);
  if (known) {
    for (const shape of known) if (sameKeys(shape.keys, keys)) return shape.sorted;
  }
  const sortedKeys = [...keys].sort();
  const sorted = { keys: sortedKeys, quoted: sortedKeys.map((k) => utf8.encode(`${JSON.stringify(k)}:`)) };
  if (shapes.size < SHAPES_MAX && (known?.length ?? 0) < SHAPES_PER_KEY) {
    if (known) known.push({ keys, sorted });
    else shapes.set(keys[0], [{ keys, sorted }]);
  }
  return sorted;
}

/**
 * Writes the canonical JSON of a value as UTF-8 into a reused buffer, handing each full buffer to `sink`.
 * What JSON has no text for (undefined, a function) writes nothing in an array and `undefined` as an
 * object's value, as `canonicalJson` always has.
 */
class CanonicalWriter {
  private readonly bytes = new Uint8Array(BUFFER);
  private at = 0;
  private readonly frozenText = new Map<object, Uint8Array>();

  constructor(private readonly sink: (bytes: Uint8Array, length: number) => void) {}

  write(value: unknown, missing: string): void {
    if (typeof value === 'string') this.string(value);
    else if (value !== null && typeof value === 'object') {
      if (Object.isFrozen(value)) this.frozen(value);
      else this.objectOrArray(value);
    } else if (typeof value === 'number' || typeof value === 'boolean') {
      // What JSON.stringify writes for them ("null" for NaN and the infinities), all ASCII.
      this.ascii(typeof value === 'boolean' || Number.isFinite(value) ? String(value) : 'null');
    } else {
      this.text(JSON.stringify(value) ?? missing);
    }
  }

  private objectOrArray(v: object): void {
    if (Array.isArray(v)) this.array(v);
    else this.object(v as Record<string, unknown>);
  }

  private array(list: unknown[]): void {
    this.byte(0x5b); // [
    for (let i = 0; i < list.length; i++) {
      if (i > 0) this.byte(0x2c); // ,
      this.write(list[i], '');
    }
    this.byte(0x5d); // ]
  }

  private object(o: Record<string, unknown>): void {
    let first = true;
    this.byte(0x7b); // {
    const { keys, quoted } = keysOf(o);
    for (let i = 0; i < keys.length; i++) {
      const v = o[keys[i]];
      if (v === undefined) continue;
      if (!first) this.byte(0x2c);
      first = false;
      this.raw(quoted[i]);
      this.write(v, 'undefined');
    }
    this.byte(0x7d); // }
  }

  /**
   * A frozen object's or list's text, written once per writer: bots share their frozen intents, lists
   * of them and empty postprocess (see Catalog), and nothing in a frozen value changes while a catalog
   * is written.
   */
  private frozen(o: object): void {
    let text = this.frozenText.get(o);
    if (!text) {
      const pieces: Uint8Array[] = [];
      const w = new CanonicalWriter((bytes, length) => pieces.push(bytes.slice(0, length < 0 ? bytes.length : length)));
      w.objectOrArray(o);
      w.flush();
      text = Buffer.concat(pieces);
      if (this.frozenText.size < SHAPES_MAX) this.frozenText.set(o, text);
    }
    this.raw(text);
  }

  /** Hands on what the buffer holds. */
  flush(): void {
    if (this.at > 0) this.sink(this.bytes, this.at);
    this.at = 0;
  }

  private byte(b: number): void {
    if (this.at === BUFFER) this.flush();
    this.bytes[this.at++] = b;
  }

  private raw(b: Uint8Array): void {
    if (this.at + b.length > BUFFER) this.flush();
    if (b.length > BUFFER) return this.sink(b, b.length);
    if (b.length > 64) this.bytes.set(b, this.at);
    else {
      const bytes = this.bytes;
      const at = this.at;
      for (let i = 0; i < b.length; i++) bytes[at + i] = b[i];
    }
    this.at += b.length;
  }

  /** A string as JSON: copied byte for byte when it is printable ASCII without `"` or `\`, else as JSON.stringify writes it. */
  private string(s: string): void {
    if (this.at + s.length + 2 > BUFFER) this.flush();
    const start = this.at;
    if (s.length + 2 <= BUFFER) {
      const b = this.bytes;
      let at = start;
      b[at++] = 0x22;
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
          at = -1;
          break;
        }
        b[at++] = c;
      }
      if (at > 0) {
        b[at++] = 0x22;
        this.at = at;
        return;
      }
    }
    this.text(JSON.stringify(s));
  }

  /** ASCII text: its characters are its bytes. */
  private ascii(s: string): void {
    if (this.at + s.length > BUFFER) this.flush();
    const bytes = this.bytes;
    const at = this.at;
    for (let i = 0; i < s.length; i++) bytes[at + i] = s.charCodeAt(i);
    this.at += s.length;
  }

  /** Text of any length, as UTF-8. */
  private text(s: string): void {
    if (s.length * 3 > BUFFER - this.at) this.flush();
    if (s.length * 3 <= BUFFER) this.at += utf8.encodeInto(s, this.bytes.subarray(this.at)).written;
    else this.sink(utf8.encode(s), -1);
  }
}

/** JSON with object keys sorted at every level: the same content always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const pieces: string[] = [];
  const decoder = new TextDecoder();
  const writer = new CanonicalWriter((bytes, length) => pieces.push(decoder.decode(length < 0 ? bytes : bytes.subarray(0, length), { stream: true })));
  writer.write(value, '');
  writer.flush();
  pieces.push(decoder.decode());
  return pieces.join('');
}

/** The generation of a catalog's content: XXH64 of the UTF-8 bytes of its canonical JSON, as 16 hex digits. */
export function canonicalGeneration(content: unknown): string {
  const hash = new Xxh64Stream();
  const writer = new CanonicalWriter((bytes, length) => hash.update(bytes, length < 0 ? bytes.length : length));
  writer.write(content, '');
  writer.flush();
  return toHex(hash.digest());
}
