/**
 * The compact placement index: what `plan()` and the router need of every bot (id, tenant, group
 * selector inputs, memory, encoder, pin), one short row per bot, with where the bot's full definition
 * sits in the catalog parts (part, byte offset, length). It travels beside the parts as its own files,
 * so a router reads only the index, and a pool reads the index and then only its own bots' definitions.
 */
import { CatalogPart, Span, chunk, linesJson, serializePart } from './parts';
import { normalizeCatalog } from './normalize';
import { CatalogError, Problem, show } from './problems';
import { PropertyValue } from './input';
import { CATALOG_API_VERSION, Catalog, CatalogIndex, IndexBot } from './types';

/**
 * One bot: `[id, tenant, realtime, memory, encoder, part, offset, length, pin?, properties?]`, tenant and
 * encoder as positions in the header's (sorted) lists, -1 for none; realtime 1 or 0.
 */
export type IndexRow = [string, number, number, number, number, number, number, number, (string | null)?, Record<string, PropertyValue>?];

/** One file of the index: part 0 carries the catalog's settings (everything but the bots). */
export interface IndexPart {
  apiVersion: typeof CATALOG_API_VERSION;
  kind: 'CatalogIndex';
  generation: string;
  part: number;
  parts: number;
  catalog?: Omit<Catalog, 'bots'>;
  bots: IndexRow[];
}

/** Where a bot's definition is: its catalog part and the byte span there. */
export interface Location extends Span {
  part: number;
}

/** File name of index part `i` in the catalog folder. */
export function indexFileName(i: number): string {
  return `index-${String(i).padStart(4, '0')}.json`;
}

/** Whether a catalog folder file is an index part (not a catalog part). */
export function isIndexFile(name: string): boolean {
  return /^index-\d+\.json$/.test(name);
}

/** The property names pool groups select on or co-locate by: all the index keeps of a bot's properties. */
export function placementProperties(catalog: Pick<Catalog, 'groups'>): Set<string> {
  const keys = new Set<string>();
  for (const g of catalog.groups) {
    for (const k of Object.keys(g.selector.properties)) keys.add(k);
    if (typeof g.locality === 'object') keys.add(g.locality.property);
  }
  return keys;
}

/** Shared by every bot without placement properties (most of them). */
const EMPTY: Record<string, PropertyValue> = Object.freeze({}) as Record<string, PropertyValue>;

/** What the index keeps of a bot: `keep` names the properties kept (`placementProperties`), in name order. */
export function indexBotOf(bot: IndexBot, keep: ReadonlySet<string>): IndexBot {
  const properties = Object.entries(bot.properties).filter(([k]) => keep.has(k)).sort(([a], [b]) => (a < b ? -1 : 1));
  const out: IndexBot = {
    id: bot.id,
    tenant: bot.tenant,
    realtime: bot.realtime,
    properties: properties.length > 0 ? Object.fromEntries(properties) : EMPTY,
    model: bot.model.encoder !== undefined ? { memory: bot.model.memory, encoder: bot.model.encoder } : { memory: bot.model.memory },
  };
  if (bot.pin !== undefined) out.pin = bot.pin;
  return out;
}

/** A part of the index as its file holds it: one row per line, like the catalog parts. */
export function indexText(part: IndexPart): string {
  const { bots, ...head } = part;
  return linesJson(head, bots.map((r) => JSON.stringify(r))).text;
}

/**
 * The index of a catalog split into `parts` (as `splitCatalog` made them and `serializePart` writes
 * them), in files of at most `maxBytes` each. `spans`: each part's bot spans, when the caller has
 * serialized the parts already.
 */
export function buildIndex(catalog: Catalog, parts: readonly CatalogPart[], maxBytes = 900 * 1024, spans: readonly (readonly Span[])[] = parts.map((p) => serializePart(p).spans)): IndexPart[] {
  const { bots: _bots, ...header } = catalog;
  const tenants = new Map(catalog.tenants.map((t, i) => [t.id, i]));
  const encoders = new Map(catalog.encoders.map((e, i) => [e.id, i]));
  const keep = placementProperties(catalog);
  const rows: IndexRow[] = [];
  parts.forEach((part, p) => {
    part.bots.forEach((full, i) => {
      const bot = indexBotOf(full, keep);
      const row: IndexRow = [bot.id, tenants.get(bot.tenant) ?? -1, bot.realtime ? 1 : 0, bot.model.memory, bot.model.encoder !== undefined ? encoders.get(bot.model.encoder) ?? -1 : -1, part.part, spans[p][i].offset, spans[p][i].length];
      const hasProperties = bot.properties !== EMPTY;
      if (bot.pin !== undefined || hasProperties) row.push(bot.pin ?? null);
      if (hasProperties) row.push(bot.properties);
      rows.push(row);
    });
  });
  const chunks = chunk(rows, (row) => Buffer.byteLength(JSON.stringify(row)) + 2, maxBytes, (i) => 200 + (i === 0 ? JSON.stringify(header).length : 0));
  return chunks.map((rows, i) => ({
    apiVersion: CATALOG_API_VERSION,
    kind: 'CatalogIndex',
    generation: catalog.generation,
    part: i,
    parts: chunks.length,
    ...(i === 0 ? { catalog: header } : {}),
    bots: rows,
  }));
}

/**
 * Reads the parts of an index (parsed JSON, any order): the catalog as placement sees it, and where each
 * bot's definition is (by the bot's position in `index.bots`). Checks that the parts are complete, agree
 * on the generation, and that every row is well formed.
 */
export function readIndex(values: unknown[], source: string): { index: CatalogIndex; locations: Int32Array } {
  const parts = values as Partial<IndexPart>[];
  const problems: Problem[] = [];
  const generations = [...new Set(parts.map((p) => p?.generation))];
  if (generations.length !== 1 || typeof generations[0] !== 'string') {
    problems.push({ path: 'generation', message: `index parts disagree on the generation: ${show(generations)}`, hint: 'the folder is mid-update or mixes two catalogs; wait for the update to finish' });
  }
  const count = parts[0]?.parts;
  const seen = new Set(parts.map((p) => p?.part));
  if (parts.some((p) => p?.kind !== 'CatalogIndex' || p.apiVersion !== CATALOG_API_VERSION)) {
    problems.push({ path: 'kind', message: `every index file must be kind "CatalogIndex" of ${CATALOG_API_VERSION}`, hint: 'regenerate the catalog with the matching botshard' });
  }
  if (typeof count !== 'number' || parts.some((p) => p?.parts !== count) || seen.size !== parts.length || parts.length !== count) {
    problems.push({ path: 'parts', message: `expected index parts 0..${show(typeof count === 'number' ? count - 1 : count)} once each, found ${show([...seen])}`, hint: 'mount every catalog index ConfigMap into the same folder' });
  }
  const head = parts.find((p) => p?.part === 0)?.catalog;
  if (!head) problems.push({ path: 'index part 0', message: 'carries no catalog settings', hint: 'mount every catalog index ConfigMap into the same folder' });
  if (problems.length > 0) throw new CatalogError(problems, source);
  // The settings are checked as in any catalog (a catalog without bots).
  const { apiVersion: _a, kind: _k, generation: _g, ...settings } = head as Omit<Catalog, 'bots'>;
  const checked = normalizeCatalog({ ...settings, bots: [] });
  if (!checked.ok) throw new CatalogError(checked.problems, `${source} (index part 0)`);
  const { tenants, encoders } = checked.catalog;
  const sorted = [...parts].sort((a, b) => (a.part ?? 0) - (b.part ?? 0));
  const total = sorted.reduce((n, p) => n + (Array.isArray(p.bots) ? p.bots.length : 0), 0);
  const bots: IndexBot[] = new Array(total);
  const locations = new Int32Array(total * 3);
  const wrong = (row: unknown, why: string): never => {
    throw new CatalogError([{ path: `bots (${show(Array.isArray(row) ? row[0] : row)})`, message: `index row ${show(row)} ${why}`, hint: 'regenerate the catalog with `botshard catalog` or `npm run synth`' }], source);
  };
  const isIndex = (v: unknown, max: number) => Number.isInteger(v) && (v as number) >= -1 && (v as number) < max;
  let n = 0;
  for (const part of sorted) {
    for (const row of (part.bots ?? []) as unknown[]) {
      if (!Array.isArray(row) || row.length < 8 || typeof row[0] !== 'string') wrong(row, 'is not [id, tenant, realtime, memory, encoder, part, offset, length, pin?, properties?]');
      const [id, tenant, realtime, memory, encoder, at, offset, length, pin, properties] = row as IndexRow;
      if (!isIndex(tenant, tenants.length) || !isIndex(encoder, encoders.length)) wrong(row, 'names a tenant or encoder the settings do not list');
      if (!Number.isInteger(memory) || memory < 0 || !Number.isInteger(at) || at < 0 || !Number.isInteger(offset) || offset < 0 || !Number.isInteger(length) || length <= 0) wrong(row, 'has a memory, part or span that is not a whole number');
      if ((pin !== undefined && pin !== null && typeof pin !== 'string') || (properties !== undefined && (typeof properties !== 'object' || properties === null || Array.isArray(properties)))) {
        wrong(row, 'has a pin that is not a string or properties that are not an object');
      }
      const bot: IndexBot = { id, tenant: tenant >= 0 ? tenants[tenant].id : '', realtime: realtime === 1, properties: properties ?? EMPTY, model: encoder >= 0 ? { memory, encoder: encoders[encoder].id } : { memory } };
      if (typeof pin === 'string') bot.pin = pin;
      bots[n] = bot;
      locations[3 * n] = at;
      locations[3 * n + 1] = offset;
      locations[3 * n + 2] = length;
      n++;
    }
  }
  return { index: { ...checked.catalog, generation: generations[0] as string, bots }, locations };
}
