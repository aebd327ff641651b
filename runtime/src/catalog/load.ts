import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCatalog } from './normalize';
import { CatalogPart } from './parts';
import { isIndexFile } from './placement-index';
import { CatalogError, Problem, show } from './problems';
import { Catalog } from './types';

function fail(source: string, path: string, message: string, hint: string): never {
  throw new CatalogError([{ path, message, hint }], source);
}

/** Reads and parses one JSON file; a CatalogError naming the file when it cannot be read or parsed. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    fail(file, 'file', `cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'check the path');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    fail(file, 'file', `is not valid JSON: ${(e as Error).message}`, 'regenerate it with `botshard catalog`');
  }
}

/** Joins the parts of a split catalog back into one catalog input, checking that all are there and agree. */
export function joinParts(values: unknown[], source: string): unknown {
  const problems: Problem[] = [];
  const parts = values as Partial<CatalogPart>[];
  const generations = [...new Set(parts.map((p) => p?.generation))];
  if (generations.length !== 1) {
    problems.push({ path: 'generation', message: `parts disagree on the generation: ${show(generations)}`, hint: 'the folder is mid-update or mixes two catalogs; wait for the update to finish' });
  }
  const count = parts[0]?.parts;
  const seen = new Set(parts.map((p) => p?.part));
  if (typeof count !== 'number' || parts.some((p) => p?.parts !== count) || seen.size !== parts.length || parts.length !== count || ![...seen].every((i) => typeof i === 'number' && i >= 0 && i < count)) {
    problems.push({ path: 'parts', message: `expected parts 0..${show(count)} once each, found ${show([...seen])}`, hint: 'mount every catalog ConfigMap into the same folder' });
  }
  const head = parts.find((p) => p?.part === 0)?.catalog;
  if (!head) problems.push({ path: 'part 0', message: 'no part carries the catalog header', hint: 'mount every catalog ConfigMap into the same folder' });
  if (problems.length > 0) throw new CatalogError(problems, source);
  const sorted = [...parts].sort((a, b) => (a.part ?? 0) - (b.part ?? 0));
  return { ...head, bots: sorted.flatMap((p) => (Array.isArray(p.bots) ? p.bots : [])) };
}

/**
 * The catalog files of a folder, sorted: `.json`, not hidden (a mounted ConfigMap folder holds `..data`
 * and timestamped hidden folders beside them), and not a link left dangling by a swap (kubelet removes it
 * next). `index`: only the placement index's files (true) or only the catalog's (false); both when undefined.
 */
export function catalogFiles(location: string, index?: boolean): string[] {
  return fs
    .readdirSync(location)
    .filter((f) => f.endsWith('.json') && !f.startsWith('.') && (index === undefined || isIndexFile(f) === index) && fs.existsSync(path.join(location, f)))
    .sort();
}

/** Reads the catalog input at a path: a JSON file (catalog or a single part) or a folder of parts. */
export function readCatalogInput(location: string): unknown {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(location);
  } catch (e) {
    fail(location, 'file', `cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'check the path');
  }
  if (!stat.isDirectory()) {
    const value = readJsonFile(location);
    return (value as Partial<CatalogPart>)?.kind === 'CatalogPart' ? joinParts([value], location) : value;
  }
  const files = catalogFiles(location, false);
  if (files.length === 0) fail(location, 'folder', 'holds no .json catalog files', 'point at the folder where the catalog ConfigMaps are mounted');
  const values = files.map((f) => readJsonFile(path.join(location, f)));
  if (values.length === 1 && (values[0] as Partial<CatalogPart>)?.kind !== 'CatalogPart') return values[0];
  return joinParts(values, location);
}

/** Loads and validates a normalised catalog (file or folder). Throws a CatalogError listing every problem. */
export function loadCatalog(location: string): Catalog {
  return parseCatalog(readCatalogInput(location), location);
}
