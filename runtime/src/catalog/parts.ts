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
  const chunks: Catalog['bots'][] = [[]];
  const envelope = (i: number) => JSON.stringify({ apiVersion: CATALOG_API_VERSION, kind: 'CatalogPart', generation: catalog.generation, part: i, parts: 99999, bots: [] }).length;
  let size = envelope(0) + JSON.stringify(header).length + 12;
  for (const bot of bots) {
    const botSize = Buffer.byteLength(JSON.stringify(bot)) + 2; // one bot per line: ",\n"
    if (botSize + envelope(0) > maxBytes) {
      throw new Error(`bot "${bot.id}" takes ${botSize} bytes of catalog JSON, more than one part may hold (${maxBytes}); shorten its intents, examples or rules`);
    }
    if (size + botSize > maxBytes) {
      chunks.push([]);
      size = envelope(chunks.length - 1);
    }
    chunks[chunks.length - 1].push(bot);
    size += botSize;
  }
  return chunks.map((chunk, i) => ({
    apiVersion: CATALOG_API_VERSION,
    kind: 'CatalogPart',
    generation: catalog.generation,
    part: i,
    parts: chunks.length,
    ...(i === 0 ? { catalog: header } : {}),
    bots: chunk,
  }));
}

/** Where a bot's definition sits in its part's file: byte offset and length of its JSON. */
export interface Span {
  offset: number;
  length: number;
}

/**
 * A part as its file holds it: JSON with one bot per line (valid JSON read as is, and a YAML block in
 * dist/ whose diff shows exactly the bots that changed), and the byte span of each bot's line. The one
 * way parts are written, so the placement index can point into them.
 */
export function serializePart(part: CatalogPart): { text: string; spans: Span[] } {
  const { bots, ...head } = part;
  const header = JSON.stringify(head);
  if (bots.length === 0) return { text: `${header.slice(0, -1)},"bots":[]}\n`, spans: [] };
  const lines = bots.map((b) => JSON.stringify(b));
  let offset = Buffer.byteLength(header) - 1 + ',"bots":[\n'.length;
  const spans = lines.map((line) => {
    const length = Buffer.byteLength(line);
    const span = { offset, length };
    offset += length + 2; // ",\n"
    return span;
  });
  return { text: `${header.slice(0, -1)},"bots":[\n${lines.join(',\n')}\n]}\n`, spans };
}
