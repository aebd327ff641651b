/**
 * The bytes of one part of the packed placement index (packed-index.ts): a fixed header, fixed-width
 * records (one per bot, sorted by the bot's id hash), the bots' ids, and a small JSON dictionary of the
 * strings the records point at. All integers little-endian; a 64-bit value is two 32-bit halves, hi first.
 *
 * ```
 * header (32 bytes)   0 "BSPI"  4 u16 format  6 u16 record bytes  8 u32 records  12 u32 id bytes
 *                     16 u32 dictionary bytes  20 u32 bucket  24 u8 bucket bits  25..31 zero
 * record (40 bytes)   0 u64 XXH64(id)  8 u64 XXH64(locality key)  16 u64 XXH64(definition JSON), 0: none
 *                     24 u32 memory low  28 u16 memory high  30 u8 flags (1: realtime)  31 u8 id length
 *                     32 u16 tenant  34 u16 encoder + 1 (0: none)  36 u16 attributes + 1 (0: none)  38 u16 zero
 * ids                 UTF-8, in record order, each as long as its record says
 * dictionary          JSON { group, tenants, encoders, attributes: [{ pin?, properties? }] }
 * ```
 * The locality key is the one placement ranks pools by (`localityKey`: the encoder, a property, or the
 * bot's id); the group is the part's. Nothing here depends on the catalog's generation, so a part that
 * holds the same bots is the same bytes in every generation.
 */
import { U64 } from '../hash';
import { PropertyValue } from './input';

export const MAGIC = 'BSPI';
export const FORMAT = 1;
export const HEADER_BYTES = 32;
export const RECORD_BYTES = 40;
/** Dictionary positions are 16-bit: a part holds at most this many distinct tenants, encoders or attribute sets. */
export const MAX_DICTIONARY = 0xffff;
/** Memory is 48 bits: 256 TiB. */
const MEMORY_LIMIT = 2 ** 48;

/** What a bot carries beyond its id, tenant, realtime, memory and encoder: its pin and its placement properties. */
export interface Attributes {
  pin?: string;
  properties?: Record<string, PropertyValue>;
}

/** The strings a part's records point at. */
export interface PartDictionary {
  group: string;
  tenants: string[];
  encoders: string[];
  attributes: Attributes[];
}

/** One bot as the writer packs it. */
export interface PackedEntry {
  id: string;
  tenant: string;
  realtime: boolean;
  memory: number;
  encoder?: string;
  /** Pin and placement properties, or undefined (most bots). */
  attributes?: Attributes;
  idHash: U64;
  keyHash: U64;
  definition: U64;
}

/** The header of a part, as read. */
export interface PartHeader {
  records: number;
  idBytes: number;
  dictionaryBytes: number;
  bucket: number;
  bucketBits: number;
}

/** A part that cannot be read: what is wrong with its bytes. The caller names the part and the fix. */
export class PartFormatError extends Error {}

/** Positions of distinct values, in first-seen order. */
class Positions<T> {
  readonly values: T[] = [];
  private readonly at = new Map<string, number>();
  of(key: string, value: T): number {
    let i = this.at.get(key);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(value);
      this.at.set(key, i);
    }
    return i;
  }
}

/** The bytes of a part holding `entries` (already sorted) of bucket `bucket` of `group`. */
export function encodePart(group: string, bucketBits: number, bucket: number, entries: readonly PackedEntry[]): Buffer {
  const tenants = new Positions<string>();
  const encoders = new Positions<string>();
  const attributes = new Positions<Attributes>();
  const ids = entries.map((e) => Buffer.from(e.id, 'utf8'));
  const refs = entries.map((e) => [
    tenants.of(e.tenant, e.tenant),
    e.encoder === undefined ? 0 : encoders.of(e.encoder, e.encoder) + 1,
    e.attributes === undefined ? 0 : attributes.of(JSON.stringify(e.attributes), e.attributes) + 1,
  ]);
  if (Math.max(tenants.values.length, encoders.values.length + 1, attributes.values.length + 1) > MAX_DICTIONARY) {
    throw new PartFormatError(`more than ${MAX_DICTIONARY} distinct tenants, encoders or attribute sets in one part`);
  }
  const dictionary = Buffer.from(JSON.stringify({ group, tenants: tenants.values, encoders: encoders.values, attributes: attributes.values } satisfies PartDictionary), 'utf8');
  const idBytes = ids.reduce((n, id) => n + id.length, 0);
  const out = Buffer.alloc(HEADER_BYTES + entries.length * RECORD_BYTES + idBytes + dictionary.length);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt16LE(FORMAT, 4);
  out.writeUInt16LE(RECORD_BYTES, 6);
  out.writeUInt32LE(entries.length, 8);
  out.writeUInt32LE(idBytes, 12);
  out.writeUInt32LE(dictionary.length, 16);
  out.writeUInt32LE(bucket, 20);
  out.writeUInt8(bucketBits, 24);
  let idAt = HEADER_BYTES + entries.length * RECORD_BYTES;
  entries.forEach((e, i) => {
    const r = HEADER_BYTES + i * RECORD_BYTES;
    if (!Number.isInteger(e.memory) || e.memory < 0 || e.memory >= MEMORY_LIMIT) throw new PartFormatError(`bot "${e.id}" has a memory of ${e.memory} bytes, outside 0..2^48`);
    if (ids[i].length === 0 || ids[i].length > 0xff) throw new PartFormatError(`bot id "${e.id}" is not 1 to 255 bytes long`);
    out.writeUInt32LE(e.idHash.hi, r);
    out.writeUInt32LE(e.idHash.lo, r + 4);
    out.writeUInt32LE(e.keyHash.hi, r + 8);
    out.writeUInt32LE(e.keyHash.lo, r + 12);
    out.writeUInt32LE(e.definition.hi, r + 16);
    out.writeUInt32LE(e.definition.lo, r + 20);
    out.writeUInt32LE(e.memory % 2 ** 32, r + 24);
    out.writeUInt16LE(Math.floor(e.memory / 2 ** 32), r + 28);
    out.writeUInt8(e.realtime ? 1 : 0, r + 30);
    out.writeUInt8(ids[i].length, r + 31);
    out.writeUInt16LE(refs[i][0], r + 32);
    out.writeUInt16LE(refs[i][1], r + 34);
    out.writeUInt16LE(refs[i][2], r + 36);
    idAt += ids[i].copy(out, idAt);
  });
  dictionary.copy(out, idAt);
  return out;
}

/** The header of a part, its sizes checked against the bytes there are: a cut or padded part is refused. */
export function readHeader(b: Buffer): PartHeader {
  if (b.length < HEADER_BYTES) throw new PartFormatError(`is ${b.length} bytes, shorter than its ${HEADER_BYTES}-byte header (cut short)`);
  if (b.toString('latin1', 0, 4) !== MAGIC) throw new PartFormatError(`does not start with "${MAGIC}": not a part of a packed index`);
  const format = b.readUInt16LE(4);
  const recordBytes = b.readUInt16LE(6);
  if (format !== FORMAT || recordBytes !== RECORD_BYTES) throw new PartFormatError(`is format ${format} with ${recordBytes}-byte records; this botshard reads format ${FORMAT} with ${RECORD_BYTES}-byte records`);
  const header = { records: b.readUInt32LE(8), idBytes: b.readUInt32LE(12), dictionaryBytes: b.readUInt32LE(16), bucket: b.readUInt32LE(20), bucketBits: b.readUInt8(24) };
  const expected = HEADER_BYTES + header.records * RECORD_BYTES + header.idBytes + header.dictionaryBytes;
  if (b.length !== expected) throw new PartFormatError(`is ${b.length} bytes but its header declares ${expected} (${header.records} records)${b.length < expected ? ': cut short' : ''}`);
  return header;
}

/** The dictionary of a part whose header was read, checked for shape. */
export function readDictionary(b: Buffer, h: PartHeader): PartDictionary {
  const at = HEADER_BYTES + h.records * RECORD_BYTES + h.idBytes;
  let d: PartDictionary;
  try {
    d = JSON.parse(b.toString('utf8', at, at + h.dictionaryBytes));
  } catch {
    throw new PartFormatError('has a dictionary that is not JSON');
  }
  const strings = (xs: unknown) => Array.isArray(xs) && xs.every((x) => typeof x === 'string');
  const attributes = (xs: unknown) =>
    Array.isArray(xs) && xs.every((x) => typeof x === 'object' && x !== null && (x.pin === undefined || typeof x.pin === 'string') && (x.properties === undefined || (typeof x.properties === 'object' && x.properties !== null)));
  if (typeof d?.group !== 'string' || !strings(d.tenants) || !strings(d.encoders) || !attributes(d.attributes)) {
    throw new PartFormatError('has a dictionary without its group, tenants, encoders and attributes');
  }
  return d;
}
