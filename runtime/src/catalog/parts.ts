import { CATALOG_API_VERSION, Catalog } from './types';

/** One part of a catalog split to fit Kubernetes ConfigMaps: part 0 carries everything but most bots. */
export interface CatalogPart {
  apiVersion: typeof CATALOG_API_VERSION;
  kind: 'CatalogPart';
  generation: string;
  part: number;
  parts: number;
  catalog?: Omit<Catalog, 'bots'>;
  bots: Catalog['bots'];
}

/** File name of part `i` in the catalog folder. */
export function partFileName(i: number): string {
  return `catalog-${String(i).padStart(4, '0')}.json`;
}

/**
 * Splits a catalog into parts whose JSON stays under `maxBytes` each (ConfigMaps hold at most 1 MiB).
 * Bots keep their (sorted) order; a bot larger than `maxBytes` on its own is an error.
 */
export function splitCatalog(catalog: Catalog, maxBytes = 900 * 1024): CatalogPart[] {
  const { bots, ...header } = catalog;
  const envelope = (i: number) => JSON.stringify({ apiVersion: CATALOG_API_VERSION, kind: 'CatalogPart', generation: catalog.generation, part: i, parts: 99999, bots: [] }).length;
  const chunks = chunk(bots, (bot) => {
    const botSize = Buffer.byteLength(JSON.stringify(bot)) + 2; // one bot per line: ",\n"
    if (botSize + envelope(0) > maxBytes) {
      throw new Error(`bot "${bot.id}" takes ${botSize} bytes of catalog JSON, more than one part may hold (${maxBytes}); shorten its intents, examples or rules`);
    }
    return botSize;
  }, maxBytes, (i) => envelope(i) + (i === 0 ? JSON.stringify(header).length + 12 : 0));
  return chunks.map((run, i) => ({
    apiVersion: CATALOG_API_VERSION,
    kind: 'CatalogPart',
    generation: catalog.generation,
    part: i,
    parts: chunks.length,
    ...(i === 0 ? { catalog: header } : {}),
    bots: run,
  }));
}

/** Where a bot's definition sits in its part's file: byte offset and length of its JSON. */
export interface Span {
  offset: number;
  length: number;
}

/**
 * Splits items, in order, into runs whose sizes stay under `maxBytes` with each run's envelope (`start`
 * of the run's position); a run holds at least one item.
 */
export function chunk<T>(items: readonly T[], sizeOf: (item: T) => number, maxBytes: number, start: (run: number) => number): T[][] {
  const chunks: T[][] = [[]];
  let size = start(0);
  for (const item of items) {
    const itemSize = sizeOf(item);
    if (size + itemSize > maxBytes && chunks[chunks.length - 1].length > 0) {
      chunks.push([]);
      size = start(chunks.length - 1);
    }
    chunks[chunks.length - 1].push(item);
    size += itemSize;
  }
  return chunks;
}

/**
 * JSON of `head` with a `bots` list written one item per line (valid JSON read as is, and a YAML block in
 * dist/ whose diff shows exactly the items that changed), and the byte span of each item's line.
 */
export function linesJson(head: object, lines: readonly string[]): { text: string; spans: Span[] } {
  const header = JSON.stringify(head);
  if (lines.length === 0) return { text: `${header.slice(0, -1)},"bots":[]}\n`, spans: [] };
  let offset = Buffer.byteLength(header) - 1 + ',"bots":[\n'.length;
  const spans = lines.map((line) => {
    const length = Buffer.byteLength(line);
    const span = { offset, length };
    offset += length + 2; // ",\n"
    return span;
  });
  return { text: `${header.slice(0, -1)},"bots":[\n${lines.join(',\n')}\n]}\n`, spans };
}

/** A part as its file holds it (`linesJson`): the one way parts are written, so the placement index can point into them. */
export function serializePart(part: CatalogPart): { text: string; spans: Span[] } {
  const { bots, ...head } = part;
  return linesJson(head, bots.map((b) => JSON.stringify(b)));
}
