/**
 * A catalog as a running process reads it: the placement index of every bot, and the full definitions
 * of only the bots asked for. From a catalog folder with an index, definitions are read from the parts
 * by the byte spans the index gives (nothing else of the parts is read); from a plain catalog file or a
 * folder without an index, the whole catalog is loaded and validated, as before.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { catalogFiles, loadCatalog, readJsonFile } from './load';
import { normalizeCatalog } from './normalize';
import { partFileName } from './parts';
import { indexBotOf, placementProperties, readIndex } from './placement-index';
import { CatalogError, Problem, show } from './problems';
import { Bot, Catalog, CatalogIndex } from './types';

export interface CatalogSource {
  /** Every setting, and every bot as placement sees it. */
  readonly index: CatalogIndex;
  /**
   * The full, validated definitions of these bots (ids of this index), sorted by id. Throws a
   * CatalogError naming the bot and the fix when one is missing, malformed or disagrees with the index.
   */
  definitions(ids: readonly string[]): Bot[];
  /** Bot definitions read so far (a folder with an index), or undefined (the whole catalog was loaded). */
  readonly definitionsRead?: number;
}

/** A source over a catalog already in memory. */
export function catalogSource(catalog: Catalog): CatalogSource {
  let byId: Map<string, Bot> | undefined;
  return {
    index: catalog,
    definitions(ids) {
      byId ??= new Map(catalog.bots.map((b) => [b.id, b]));
      return ids.map((id) => {
        const bot = byId!.get(id);
        if (!bot) throw new CatalogError([{ path: `bots (${id})`, message: 'is not in the catalog', hint: 'plan from the same catalog generation' }]);
        return bot;
      }).sort((a, b) => (a.id < b.id ? -1 : 1));
    },
  };
}

/** The index files of a catalog folder, or none (a file, or a folder without an index). */
function indexFiles(location: string): string[] {
  return fs.statSync(location).isDirectory() ? catalogFiles(location, true) : [];
}

/** Opens the catalog at a location (file or folder): its index, and its definitions on demand. */
export function openCatalog(location: string): CatalogSource {
  let files: string[];
  try {
    files = indexFiles(location);
  } catch (e) {
    throw new CatalogError([{ path: 'file', message: `cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, hint: 'check the path' }], location);
  }
  if (files.length === 0) return catalogSource(loadCatalog(location));
  const { index, locations } = readIndex(files.map((f) => readJsonFile(path.join(location, f))), location);
  return new IndexedFolder(location, index, locations);
}

/** The generation a catalog part file says it belongs to: read from its first bytes. */
function partGeneration(fd: number): string | undefined {
  const head = Buffer.alloc(512);
  const n = fs.readSync(fd, head, 0, head.length, 0);
  return /"generation":"([^"]*)"/.exec(head.subarray(0, n).toString('utf8'))?.[1];
}

class IndexedFolder implements CatalogSource {
  definitionsRead = 0;
  private rows?: Map<string, number>;

  constructor(
    private readonly dir: string,
    readonly index: CatalogIndex,
    private readonly locations: Int32Array,
  ) {}

  definitions(ids: readonly string[]): Bot[] {
    if (ids.length === 0) return [];
    this.rows ??= new Map(this.index.bots.map((b, i) => [b.id, i]));
    const byPart = new Map<number, number[]>();
    for (const id of ids) {
      const row = this.rows.get(id);
      if (row === undefined) throw this.error(id, 'is not in the index', 'plan from the same catalog generation');
      const part = this.locations[3 * row];
      const rows = byPart.get(part);
      if (rows) rows.push(row);
      else byPart.set(part, [row]);
    }
    const read: unknown[] = [];
    for (const [part, rows] of byPart) {
      const file = path.join(this.dir, partFileName(part));
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch (e) {
        throw this.error(this.index.bots[rows[0]].id, `is in catalog part ${partFileName(part)}, which cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'mount every catalog ConfigMap into the same folder');
      }
      try {
        const generation = partGeneration(fd);
        if (generation !== this.index.generation) {
          throw this.error(this.index.bots[rows[0]].id, `is in ${partFileName(part)} of generation ${show(generation)}, the index is ${show(this.index.generation)}`, 'the folder is mid-update; the next change applies it');
        }
        for (const row of rows) {
          const length = this.locations[3 * row + 2];
          const buffer = Buffer.alloc(length);
          fs.readSync(fd, buffer, 0, length, this.locations[3 * row + 1]);
          const id = this.index.bots[row].id;
          let value: unknown;
          try {
            value = JSON.parse(buffer.toString('utf8'));
          } catch {
            throw this.error(id, `has no definition where the index points (${partFileName(part)}, bytes ${this.locations[3 * row + 1]}+${length})`, 'regenerate the catalog: its parts were edited or written without their index');
          }
          if ((value as { id?: unknown })?.id !== id) {
            throw this.error(id, `has no definition where the index points (${partFileName(part)} has ${show((value as { id?: unknown })?.id)} there)`, 'regenerate the catalog: its parts were edited or written without their index');
          }
          read.push(value);
          this.definitionsRead++;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
    return this.validate(read);
  }

  /** The definitions checked as any catalog's bots are (with this catalog's settings), and against the index. */
  private validate(values: unknown[]): Bot[] {
    const { apiVersion: _a, kind: _k, generation: _g, bots: _b, ...settings } = this.index;
    const result = normalizeCatalog({ ...settings, bots: values });
    if (!result.ok) throw new CatalogError(result.problems, this.dir);
    const keep = placementProperties(this.index);
    const problems: Problem[] = [];
    for (const bot of result.catalog.bots) {
      const actual = JSON.stringify(indexBotOf(bot, keep));
      const indexed = JSON.stringify(indexBotOf(this.index.bots[this.rows!.get(bot.id)!], keep));
      if (actual !== indexed) {
        problems.push({ path: `bots (${bot.id})`, message: `the definition (${actual}) disagrees with the index (${indexed})`, hint: 'regenerate the catalog: its parts and index come from different catalogs' });
      }
    }
    if (problems.length > 0) throw new CatalogError(problems, this.dir);
    return result.catalog.bots;
  }

  private error(id: string, message: string, hint: string): CatalogError {
    return new CatalogError([{ path: `bots (${id})`, message, hint }], this.dir);
  }
}
