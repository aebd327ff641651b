/**
 * The placement index: planning from it equals planning from the whole catalog, it keeps only what
 * placement reads, and a definition is read from the parts only where the index points, or refused
 * with a message that says why.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { Catalog, CatalogError, CatalogIndex, PlacementError, Topology, buildIndex, indexFileName, indexText, openCatalog, partFileName, plan, readIndex, splitCatalog, writeCatalogFolder } from '@botshard/runtime';
import { catalogOf, catalogShapeFields, catalogShapeMemory } from '../support/catalogs';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-index-'));

/** The index as a reader gets it: each index part serialized and parsed back. */
const indexOf = (catalog: Catalog, maxBytes: number) =>
  readIndex(buildIndex(catalog, splitCatalog(catalog, maxBytes), maxBytes).map((p) => JSON.parse(indexText(p))), 'test');

/** What a call throws: its class and message (or undefined when it returns). */
function refusalOf(f: () => unknown): { type: unknown; message: string } | undefined {
  try {
    f();
  } catch (e) {
    return { type: (e as Error).constructor, message: (e as Error).message };
  }
  return undefined;
}

describe('placement index', () => {
  it('plans exactly as the whole catalog does, for random catalogs (pins, property selectors, every locality), and refuses what it refuses', () => {
    let compared = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        fc.record({
          ...catalogShapeFields,
          maxBytes: fc.constantFrom(4096, 64 * 1024),
          memory: catalogShapeMemory,
        }),
        (o) => {
          const catalog = catalogOf(o);
          const { index } = indexOf(catalog, o.maxBytes);
          let expected: Topology;
          try {
            expected = plan(catalog);
          } catch (e) {
            if (!(e instanceof PlacementError)) throw e;
            // A catalog that cannot be placed: nor can its index, for the same reason.
            expect(refusalOf(() => plan(index))).toEqual({ type: PlacementError, message: e.message });
            refused++;
            return;
          }
          const topology = plan(index);
          expect(topology.generation).toBe(catalog.generation);
          expect(topology.pools).toEqual(expected.pools);
          expect(topology.assignment).toEqual(expected.assignment);
          compared++;
        },
      ),
      { numRuns: 60, seed: 20261202 },
    );
    // Most runs compare two plans; some (512Mi, 3 pools and many bots) compare two refusals.
    expect(refused).toBeGreaterThan(0);
    expect(compared).toBeGreaterThanOrEqual(45);
  });

  it('keeps only the properties a group selects or co-locates on, and is a fraction of the catalog', () => {
    // Every synthetic bot has a language and a tier: the index keeps the one placement reads, with its value.
    const rowsNotKeepingOnly = (catalog: Catalog, index: CatalogIndex, key: string) => {
      const properties = new Map(catalog.bots.map((b) => [b.id, b.properties]));
      expect(index.bots.map((b) => b.id)).toEqual(catalog.bots.map((b) => b.id));
      return index.bots.filter((b) => JSON.stringify(b.properties) !== JSON.stringify({ [key]: properties.get(b.id)![key] })).map((b) => `${b.id} ${JSON.stringify(b.properties)}`);
    };
    // Selected on (the gold group takes tier "gold"); the locality is by encoder, no property.
    const catalog = catalogOf({ bots: 2000, seed: 3, locality: 'encoder', pinned: 0.01, pools: 'auto', byTier: true });
    expect(new Set(catalog.bots.flatMap((b) => Object.keys(b.properties)))).toEqual(new Set(['language', 'tier']));
    const { index } = indexOf(catalog, 900 * 1024);
    expect(rowsNotKeepingOnly(catalog, index, 'tier')).toEqual([]);
    // Co-located on (the locality is by language), no selector on a property.
    const byLanguage = catalogOf({ bots: 500, seed: 3, locality: 'language', pinned: 0, pools: 'auto', byTier: false });
    expect(rowsNotKeepingOnly(byLanguage, indexOf(byLanguage, 900 * 1024).index, 'language')).toEqual([]);
    const pinned = catalog.bots.filter((b) => b.pin !== undefined).length;
    expect(pinned).toBeGreaterThan(0);
    expect(index.bots.filter((b) => b.pin !== undefined).length).toBe(pinned);
    const indexBytes = buildIndex(catalog, splitCatalog(catalog)).reduce((n, p) => n + indexText(p).length, 0);
    expect(indexBytes).toBeLessThan(JSON.stringify(catalog).length / 3);
  });

  it('reads from a folder only the definitions asked for, equal to the catalog\'s', () => {
    const catalog = catalogOf({ bots: 1500, seed: 9, locality: 'none', pinned: 0, pools: 'auto', byTier: false });
    const dir = tmp();
    writeCatalogFolder(dir, catalog, 64 * 1024);
    const source = openCatalog(dir);
    expect(source.definitionsRead).toBe(0);
    expect(plan(source.index).assignment).toEqual(plan(catalog).assignment);
    const some = [catalog.bots[1400].id, catalog.bots[3].id, catalog.bots[700].id];
    expect(source.definitions(some)).toEqual([catalog.bots[3], catalog.bots[700], catalog.bots[1400]]);
    expect(source.definitionsRead).toBe(3);
  });

  describe('refuses, naming the bot and the fix', () => {
    const catalog = catalogOf({ bots: 300, seed: 4, locality: 'none', pinned: 0, pools: 'auto', byTier: false });
    const bot = catalog.bots[150];
    const folder = () => {
      const dir = tmp();
      writeCatalogFolder(dir, catalog, 16 * 1024);
      return dir;
    };
    const partOf = (dir: string) => {
      const { index, locations } = readIndex([JSON.parse(fs.readFileSync(path.join(dir, indexFileName(0)), 'utf8'))], dir);
      return partFileName(locations[3 * index.bots.findIndex((b) => b.id === bot.id)]);
    };
    const refusal = (dir: string) => {
      try {
        openCatalog(dir).definitions([bot.id]);
      } catch (e) {
        expect(e).toBeInstanceOf(CatalogError);
        return (e as Error).message;
      }
      throw new Error('not refused');
    };

    it('a part rewritten without its index (other bytes where the index points)', () => {
      const dir = folder();
      const file = path.join(dir, partOf(dir));
      fs.writeFileSync(file, JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8'))));
      expect(refusal(dir)).toMatch(new RegExp(`bots \\(${bot.id}\\): has no definition where the index points.*regenerate the catalog`, 's'));
    });

    it('a part of another generation (mid-update)', () => {
      const dir = folder();
      const file = path.join(dir, partOf(dir));
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(`"generation":"${catalog.generation}"`, '"generation":"0000000000000000"'));
      expect(refusal(dir)).toMatch(/of generation "0000000000000000", the index is .*mid-update/s);
    });

    it('a missing part', () => {
      const dir = folder();
      fs.rmSync(path.join(dir, partOf(dir)));
      expect(refusal(dir)).toMatch(/which cannot be read \(ENOENT\).*mount every catalog ConfigMap/s);
    });

    it('a definition that disagrees with its index row', () => {
      const dir = folder();
      const file = path.join(dir, indexFileName(0));
      // Same length, another memory: the row still points at the bot, which says otherwise.
      const text = fs.readFileSync(file, 'utf8');
      const row = text.split('\n').find((l) => l.startsWith(`["${bot.id}"`))!;
      const changed = row.replace(`,${bot.model.memory},`, `,${String(bot.model.memory + 1).padStart(String(bot.model.memory).length, '0')},`);
      expect(changed).not.toBe(row);
      fs.rmSync(file);
      fs.writeFileSync(file, text.replace(row, changed));
      expect(refusal(dir)).toMatch(/disagrees with the index.*parts and index come from different catalogs/s);
    });

    it('a malformed index row', () => {
      const parts = buildIndex(catalog, splitCatalog(catalog)).map((p) => JSON.parse(indexText(p)));
      parts[0].bots[5][3] = 'lots';
      expect(() => readIndex(parts, 'dir')).toThrow(/index row .* has a memory, part or span that is not a whole number.*regenerate/s);
      const [first] = buildIndex(catalog, splitCatalog(catalog)).map((p) => JSON.parse(indexText(p)));
      expect(() => readIndex([{ ...first, parts: 2 }], 'dir')).toThrow(/expected index parts 0\.\.1 once each.*mount every catalog index ConfigMap/s);
    });
  });
});
