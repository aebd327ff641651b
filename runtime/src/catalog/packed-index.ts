/**
 * The packed placement index: the placement index of a catalog in fixed-width binary records (XXH64 of
 * the bot's id, its memory, the XXH64 of its locality key, its tenant, encoder, pin and placement
 * properties, the XXH64 of its full definition), split per pool group and, inside a group, into 2^bits
 * parts by the top bits of the id hash. Each part is named by the SHA-256 of its bytes (content
 * addressed), so editing, adding or removing one bot rewrites exactly one part, and a part that holds
 * the same bots is the same object in every generation. A small JSON manifest names the generation, the
 * settings (the catalog without its bots, one more content-addressed object) and every part.
 *
 * Meant for the model store at fleet scale (docs/fleet-scale.md): a small ConfigMap names the manifest,
 * a pool fetches the manifest, the settings and its own group's parts (only those it does not hold yet),
 * and plans from them exactly as from the catalog; the router fetches every group. The ConfigMap folder
 * (placement-index.ts) stays the default; nothing reads this format yet but tests and bench/fleet-scale.ts.
 * The byte layout of a part is in packed-format.ts.
 */
import { createHash } from 'node:crypto';
import { U64, xxh64 } from '../hash';
import { groupOf } from '../placement/groups';
import { localityKey } from '../placement/pools';
import { PropertyValue } from './input';
import { normalizeCatalog } from './normalize';
import { Attributes, FORMAT, HEADER_BYTES, PackedEntry, PartDictionary, PartFormatError, RECORD_BYTES, encodePart, readDictionary, readHeader } from './packed-format';
import { placementProperties } from './placement-index';
import { CatalogError, Problem, show } from './problems';
import { CATALOG_API_VERSION, CatalogIndex, IndexBot, PoolGroup } from './types';

export const PACKED_KIND = 'PackedCatalogIndex';
/** Parts aim at this many bots: about 60 KB each, so one bot's change costs a pool about that. */
export const DEFAULT_RECORDS_PER_PART = 1024;
const MAX_BUCKET_BITS = 24;
const MAX_PART_RECORDS = 0xffff;
const HASH = /^[0-9a-f]{64}$/;

/** One pool group's parts: part i holds the group's bots whose id hash starts with the `bucketBits` bits of i. */
export interface PackedGroup {
  name: string;
  bucketBits: number;
  /** Part i's name: the SHA-256 of its bytes, hex. */
  parts: string[];
  /** Bots in part i. */
  records: number[];
}

/** What the small ConfigMap points at: the generation and the name of every object of the index. */
export interface PackedManifest {
  apiVersion: typeof CATALOG_API_VERSION;
  kind: typeof PACKED_KIND;
  format: typeof FORMAT;
  generation: string;
  /** Name of the settings object: the catalog without its bots (and without its generation), JSON. */
  settings: string;
  /** In the catalog's group order. */
  groups: PackedGroup[];
}

export interface PackedIndex {
  manifest: PackedManifest;
  /** The manifest as stored (JSON) and its name (SHA-256, hex): what the ConfigMap names. */
  manifestBytes: Buffer;
  manifestName: string;
  /** The settings object and every part, by name. */
  blobs: Map<string, Buffer>;
}

export interface PackOptions {
  /** The bots a part aims at. @default DEFAULT_RECORDS_PER_PART */
  recordsPerPart?: number;
  /**
   * The manifest this index replaces: a group keeps its number of parts while its parts stay within half
   * and twice the aim, so an edit rewrites one part rather than re-splitting the group.
   */
  previous?: PackedManifest;
  /** The hash of bot `i` of the index's full definition. @default XXH64 of its JSON for a full definition (a Catalog's bot), else 0 */
  definitionHash?: (bot: IndexBot, i: number) => U64;
}

const ZERO: U64 = Object.freeze({ hi: 0, lo: 0 });
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const bucketOf = (hi: number, bits: number) => (bits === 0 ? 0 : hi >>> (32 - bits));
const defaultDefinitionHash = (bot: IndexBot): U64 => ('intents' in bot ? xxh64(JSON.stringify(bot)) : ZERO);

/** The placement properties of a bot (names sorted) and its pin, or undefined when it has neither. */
function attributesOf(bot: IndexBot, keep: ReadonlySet<string>): Attributes | undefined {
  const kept = Object.keys(bot.properties).filter((k) => keep.has(k)).sort();
  if (kept.length === 0 && bot.pin === undefined) return undefined;
  const out: Attributes = {};
  if (bot.pin !== undefined) out.pin = bot.pin;
  if (kept.length > 0) out.properties = Object.fromEntries(kept.map((k) => [k, bot.properties[k]]));
  return out;
}

/** Each group's bots as packed, by the rules placement uses (`groupOf`, `localityKey`); a bot without a group is refused. */
function entriesByGroup(index: CatalogIndex, definitionHash: (bot: IndexBot, i: number) => U64): PackedEntry[][] {
  const keep = placementProperties(index);
  const position = new Map(index.groups.map((g, i) => [g.name, i]));
  const out: PackedEntry[][] = index.groups.map(() => []);
  const keyHashes = new Map<string, U64>();
  const problems: Problem[] = [];
  index.bots.forEach((bot, i) => {
    const group = groupOf(index, bot);
    if (!group) {
      problems.push({ path: `bots (${bot.id})`, message: 'matches no pool group', hint: 'widen a group selector, or pin it to a dedicated pool that exists' });
      return;
    }
    const idHash = xxh64(bot.id);
    const key = localityKey(group, bot);
    let keyHash = key === bot.id ? idHash : keyHashes.get(key);
    if (!keyHash) keyHashes.set(key, (keyHash = xxh64(key)));
    const { memory, encoder } = bot.model;
    out[position.get(group.name)!].push({ id: bot.id, tenant: bot.tenant, realtime: bot.realtime, memory, encoder, attributes: attributesOf(bot, keep), idHash, keyHash, definition: definitionHash(bot, i) });
  });
  if (problems.length > 0) throw new CatalogError(problems, 'packed index');
  return out;
}

/** Entries in their bucket: 2^bits lists, each sorted by id hash (then id). */
function buckets(entries: readonly PackedEntry[], bits: number): PackedEntry[][] {
  const out: PackedEntry[][] = Array.from({ length: 2 ** bits }, () => []);
  for (const e of entries) out[bucketOf(e.idHash.hi, bits)].push(e);
  for (const list of out) list.sort((a, b) => a.idHash.hi - b.idHash.hi || a.idHash.lo - b.idHash.lo || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}

/** How many bits split a group of `count` bots: the previous count while it stays near the aim, else the fewest that reach it. */
function bucketBitsFor(count: number, aim: number, previous: number | undefined): number {
  if (previous !== undefined && previous <= MAX_BUCKET_BITS && count <= 2 * aim * 2 ** previous && 2 * count >= aim * 2 ** previous) return previous;
  let bits = 0;
  while (count > aim * 2 ** bits && bits < MAX_BUCKET_BITS) bits++;
  return bits;
}

/**
 * Packs a catalog's placement index (a Catalog or a CatalogIndex): the manifest, and the settings and
 * parts by name. Deterministic: the same bots give the same parts, whatever their order.
 */
export function packIndex(index: CatalogIndex, options: PackOptions = {}): PackedIndex {
  const aim = Math.max(1, options.recordsPerPart ?? DEFAULT_RECORDS_PER_PART);
  const { bots: _bots, generation, apiVersion, kind: _kind, ...settings } = index;
  const blobs = new Map<string, Buffer>();
  const put = (bytes: Buffer) => {
    const name = sha256(bytes);
    blobs.set(name, bytes);
    return name;
  };
  const settingsName = put(Buffer.from(JSON.stringify(settings), 'utf8'));
  const byGroup = entriesByGroup(index, options.definitionHash ?? defaultDefinitionHash);
  const groups = index.groups.map((group, g): PackedGroup => {
    const previous = options.previous?.groups.find((p) => p.name === group.name)?.bucketBits;
    let bits = bucketBitsFor(byGroup[g].length, aim, previous);
    let split = buckets(byGroup[g], bits);
    // 16-bit dictionary positions: a part never holds more than 65,535 bots (only a skewed catalog gets near).
    while (split.some((b) => b.length > MAX_PART_RECORDS) && bits < MAX_BUCKET_BITS) split = buckets(byGroup[g], ++bits);
    const parts = split.map((entries, bucket) => {
      try {
        return put(encodePart(group.name, bits, bucket, entries));
      } catch (e) {
        if (!(e instanceof PartFormatError)) throw e;
        throw new CatalogError([{ path: `groups (${group.name})`, message: `cannot be packed: ${e.message}`, hint: 'shorten the bot id or the model memory named, or raise recordsPerPart so parts split differently' }], 'packed index');
      }
    });
    return { name: group.name, bucketBits: bits, parts, records: split.map((b) => b.length) };
  });
  const manifest: PackedManifest = { apiVersion, kind: PACKED_KIND, format: FORMAT, generation, settings: settingsName, groups };
  const manifestBytes = Buffer.from(JSON.stringify(manifest), 'utf8');
  return { manifest, manifestBytes, manifestName: sha256(manifestBytes), blobs };
}

/**
 * The names a process must fetch to move from `previous` (undefined: it holds nothing) to `next`, reading
 * only `groups` (default: all): the settings if they changed, and the parts it does not hold.
 */
export function partsToFetch(previous: PackedManifest | undefined, next: PackedManifest, groups?: readonly string[]): string[] {
  const wanted = (m: PackedManifest) => m.groups.filter((g) => !groups || groups.includes(g.name));
  const held = new Set(previous ? [previous.settings, ...wanted(previous).flatMap((g) => g.parts)] : []);
  return [...new Set([next.settings, ...wanted(next).flatMap((g) => g.parts)])].filter((name) => !held.has(name));
}

// ---------------------------------------------------------------- reading

export interface ReadPackedOptions {
  /** Read only these groups' parts (a pool: its own group). @default every group (the router) */
  groups?: readonly string[];
  /** Named in errors. @default "packed index" */
  source?: string;
}

export interface PackedRead {
  /** Every setting, and the bots of the groups read (in part order, not by id). */
  index: CatalogIndex;
  /** XXH64 of each bot's full definition (hi, lo per bot, as in `index.bots`); 0 when the writer had none. */
  definitions: Uint32Array;
  /** Objects read and their bytes (manifest not counted). */
  objectsRead: number;
  bytesRead: number;
}

const refuse = (source: string, path: string, message: string, hint: string): never => {
  throw new CatalogError([{ path, message, hint }], source);
};
const REPUBLISH = 'publish the packed index again from the catalog (the store holds every object under the SHA-256 of its bytes)';
const REFETCH = `fetch it again from the model store; if the store's copy is bad too, ${REPUBLISH}`;

/** The manifest, checked for shape: every problem at once. */
function checkManifest(value: unknown, source: string): PackedManifest {
  const m = value as Partial<PackedManifest> | undefined;
  const problems: Problem[] = [];
  const add = (path: string, message: string) => problems.push({ path: `manifest.${path}`, message, hint: `the manifest is not a ${PACKED_KIND} of format ${FORMAT}: ${REPUBLISH}` });
  if (typeof m !== 'object' || m === null) return refuse(source, 'manifest', `is not an object: ${show(value)}`, REPUBLISH);
  if (m.apiVersion !== CATALOG_API_VERSION || m.kind !== PACKED_KIND || m.format !== FORMAT) add('kind', `is ${show([m.apiVersion, m.kind, m.format])}, expected ${show([CATALOG_API_VERSION, PACKED_KIND, FORMAT])}`);
  if (typeof m.generation !== 'string') add('generation', `is not a string: ${show(m.generation)}`);
  if (typeof m.settings !== 'string' || !HASH.test(m.settings)) add('settings', `is not a SHA-256 name: ${show(m.settings)}`);
  if (!Array.isArray(m.groups)) add('groups', `is not a list: ${show(m.groups)}`);
  (Array.isArray(m.groups) ? m.groups : []).forEach((g: Partial<PackedGroup>, i) => {
    const bits = g?.bucketBits;
    const n = typeof bits === 'number' && Number.isInteger(bits) && bits >= 0 && bits <= MAX_BUCKET_BITS ? 2 ** bits : -1;
    if (typeof g?.name !== 'string' || n < 0) add(`groups[${i}]`, `has no name or a bucketBits outside 0..${MAX_BUCKET_BITS}: ${show(g)}`);
    else if (!Array.isArray(g.parts) || g.parts.length !== n || !g.parts.every((p) => typeof p === 'string' && HASH.test(p))) add(`groups[${i}] (${g.name}).parts`, `must be ${n} SHA-256 names`);
    else if (!Array.isArray(g.records) || g.records.length !== n || !g.records.every((r) => Number.isInteger(r) && r >= 0)) add(`groups[${i}] (${g.name}).records`, `must be ${n} counts`);
  });
  if (problems.length > 0) throw new CatalogError(problems, source);
  return m as PackedManifest;
}

/** An object of the index by name, its bytes checked against the name. */
function fetchObject(blob: (name: string) => Uint8Array | undefined, name: string, what: string, source: string): Buffer {
  const bytes = blob(name);
  if (!bytes) return refuse(source, what, `is missing: no object ${name}`, REFETCH);
  const actual = sha256(bytes);
  if (actual !== name) refuse(source, what, `does not match its name: ${bytes.length} bytes whose SHA-256 is ${actual}; corrupt or cut short`, REFETCH);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Shared by every bot without placement properties, and by bots of the same memory and encoder. */
const EMPTY: Record<string, PropertyValue> = Object.freeze({}) as Record<string, PropertyValue>;

/** What decoding needs across parts: the settings, and the strings and objects bots share. */
interface Decoder {
  settings: Omit<CatalogIndex, 'bots'>;
  tenants: Map<string, string>;
  encoders: Map<string, string>;
  models: Map<string | undefined, Map<number, IndexBot['model']>>;
  keyHashes: Map<string, U64>;
  bots: IndexBot[];
  definitions: Uint32Array;
  n: number;
}

/** Model objects shared by every bot of the same encoder and memory (frozen: nothing may edit them), by encoder. */
function modelsOf(d: Decoder, encoder: string | undefined): Map<number, IndexBot['model']> {
  let models = d.models.get(encoder);
  if (!models) d.models.set(encoder, (models = new Map()));
  return models;
}

/**
 * What placement makes of a bot depends on its realtime, encoder and attributes, not on its id: its group
 * (`groupOf`) and its locality key (`localityKey`: null when it is the bot's own id). Computed once per
 * combination in a part, from the first bot that has it.
 */
function ruleOf(d: Decoder, group: PoolGroup, bot: IndexBot): { group: PoolGroup | undefined; key: U64 | null } {
  const key = localityKey(group, bot);
  let hash: U64 | null = null;
  if (key !== bot.id) {
    hash = d.keyHashes.get(key) ?? xxh64(key);
    d.keyHashes.set(key, hash);
  }
  return { group: groupOf(d.settings, bot), key: hash };
}

/** Decodes one part into `d.bots`; throws PartFormatError saying what is wrong with it. */
function decodePart(d: Decoder, group: PoolGroup, bits: number, bucket: number, records: number, b: Buffer): void {
  const h = readHeader(b);
  if (h.records !== records || h.bucket !== bucket || h.bucketBits !== bits) {
    throw new PartFormatError(`is bucket ${h.bucket} of ${2 ** h.bucketBits} with ${h.records} bots, but the manifest lists it as bucket ${bucket} of ${2 ** bits} with ${records}`);
  }
  const dict: PartDictionary = readDictionary(b, h);
  if (dict.group !== group.name) throw new PartFormatError(`belongs to group "${dict.group}", not "${group.name}"`);
  const lookup = (map: Map<string, string>, name: string, kind: string) => map.get(name) ?? fail(`names ${kind} "${name}", which the catalog settings do not list`);
  const tenants = dict.tenants.map((t) => lookup(d.tenants, t, 'tenant'));
  const encoders = [undefined, ...dict.encoders.map((e) => lookup(d.encoders, e, 'encoder'))];
  const models = encoders.map((e) => modelsOf(d, e));
  const rules = new Map<number, ReturnType<typeof ruleOf>>();
  let idAt = HEADER_BYTES + h.records * RECORD_BYTES;
  const idEnd = idAt + h.idBytes;
  for (let i = 0; i < h.records; i++) {
    const r = HEADER_BYTES + i * RECORD_BYTES;
    const idHi = b.readUInt32LE(r);
    const idLength = b[r + 31];
    const id = b.toString('utf8', idAt, (idAt += idLength));
    const t = b.readUInt16LE(r + 32);
    const e = b.readUInt16LE(r + 34);
    const a = b.readUInt16LE(r + 36);
    if (idLength === 0 || idAt > idEnd || t >= tenants.length || e >= encoders.length || a > dict.attributes.length) fail(`has record ${i} (${show(id)}) pointing outside the part`);
    if (bucketOf(idHi, bits) !== bucket) fail(`holds bot "${id}", whose id hash is not in bucket ${bucket}`);
    const attributes = a === 0 ? undefined : dict.attributes[a - 1];
    const memory = b.readUInt32LE(r + 24) + b.readUInt16LE(r + 28) * 2 ** 32;
    const realtime = (b[r + 30] & 1) === 1;
    let model = models[e].get(memory);
    if (!model) models[e].set(memory, (model = Object.freeze(e === 0 ? { memory } : { memory, encoder: encoders[e] })));
    const bot: IndexBot = { id, tenant: tenants[t], realtime, properties: attributes?.properties ?? EMPTY, model };
    if (attributes?.pin !== undefined) bot.pin = attributes.pin;
    // The writer grouped and keyed the bot by the rules placement uses: a disagreement is refused.
    const combination = (e * 0x10000 + a) * 2 + (realtime ? 1 : 0);
    let rule = rules.get(combination);
    if (!rule) rules.set(combination, (rule = ruleOf(d, group, bot)));
    if (rule.group !== group) fail(`holds bot "${id}", which the catalog's selectors put in group "${rule.group?.name}"`);
    const [kHi, kLo] = rule.key ? [rule.key.hi, rule.key.lo] : [idHi, b.readUInt32LE(r + 4)];
    if (b.readUInt32LE(r + 8) !== kHi || b.readUInt32LE(r + 12) !== kLo) fail(`holds bot "${id}" with a locality key hash that is not XXH64 of ${show(localityKey(group, bot))}`);
    d.definitions[2 * d.n] = b.readUInt32LE(r + 16);
    d.definitions[2 * d.n + 1] = b.readUInt32LE(r + 20);
    d.bots[d.n++] = bot;
  }
  if (idAt !== idEnd) fail(`has ${h.idBytes} bytes of ids but its records use ${idAt - (idEnd - h.idBytes)}`);
}

function fail(message: string): never {
  throw new PartFormatError(message);
}

/** The settings object, checked as any catalog's settings are (a catalog without bots). */
function readSettings(m: PackedManifest, blob: (name: string) => Uint8Array | undefined, source: string): { settings: Omit<CatalogIndex, 'bots'>; bytes: number } {
  const bytes = fetchObject(blob, m.settings, `settings (${m.settings})`, source);
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return refuse(source, `settings (${m.settings})`, 'is not JSON', REFETCH);
  }
  const checked = normalizeCatalog({ ...value, bots: [] });
  if (!checked.ok) throw new CatalogError(checked.problems, `${source} (settings ${m.settings})`);
  const { bots: _bots, ...settings } = checked.catalog;
  const names = settings.groups.map((g) => g.name);
  if (JSON.stringify(names) !== JSON.stringify(m.groups.map((g) => g.name))) refuse(source, 'manifest.groups', `are ${show(m.groups.map((g) => g.name))}, the settings' groups are ${show(names)}`, REPUBLISH);
  return { settings: { ...settings, generation: m.generation }, bytes: bytes.length };
}

/**
 * Reads a packed index: the manifest (parsed JSON) and its objects by name (`blob`, from wherever they were
 * fetched). Checks every object against its name, every part against the manifest, and every bot against
 * the rules of placement; a problem is a CatalogError naming the object and the fix. Planning from the
 * result gives the catalog's plan for the groups read (placement plans each group on its own).
 */
export function readPackedIndex(manifest: unknown, blob: (name: string) => Uint8Array | undefined, options: ReadPackedOptions = {}): PackedRead {
  const source = options.source ?? 'packed index';
  const m = checkManifest(manifest, source);
  const { settings, bytes: settingsBytes } = readSettings(m, blob, source);
  const unknown = (options.groups ?? []).filter((g) => !m.groups.some((x) => x.name === g));
  if (unknown.length > 0) refuse(source, 'groups', `${show(unknown)}: not a group of this catalog (its groups: ${show(m.groups.map((g) => g.name))})`, 'read the groups the catalog has: a pool reads its own');
  const groups = m.groups.filter((g) => !options.groups || options.groups.includes(g.name));
  const total = groups.reduce((n, g) => n + g.records.reduce((a, b) => a + b, 0), 0);
  const d: Decoder = {
    settings,
    tenants: new Map(settings.tenants.map((t) => [t.id, t.id])),
    encoders: new Map(settings.encoders.map((e) => [e.id, e.id])),
    models: new Map(),
    keyHashes: new Map(),
    bots: new Array(total),
    definitions: new Uint32Array(2 * total),
    n: 0,
  };
  let bytesRead = settingsBytes;
  for (const g of groups) {
    const group = settings.groups.find((x) => x.name === g.name)!;
    g.parts.forEach((name, bucket) => {
      const what = `part ${bucket} of group "${g.name}" (${name})`;
      const bytes = fetchObject(blob, name, what, source);
      bytesRead += bytes.length;
      try {
        decodePart(d, group, g.bucketBits, bucket, g.records[bucket], bytes);
      } catch (e) {
        if (!(e instanceof PartFormatError)) throw e;
        refuse(source, what, e.message, REFETCH);
      }
    });
  }
  const objectsRead = 1 + groups.reduce((n, g) => n + g.parts.length, 0);
  return { index: { ...settings, bots: d.bots }, definitions: d.definitions, objectsRead, bytesRead };
}
