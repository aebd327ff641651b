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
    const botSize = Buffer.byteLength(JSON.stringify(bot)) + 1;
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
