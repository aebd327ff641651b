import * as path from 'node:path';
import { readCatalogInput } from './load';
import { normalizeCatalog } from './normalize';
import { CatalogError } from './problems';
import { Catalog } from './types';

let typescriptRegistered = false;

/** Loads `bots.config.ts` (or .js): its default export, or its `catalog` export. Only CLI commands
 * that read the config load TypeScript at run time; pools and router read the normalised JSON. */
export function readConfigInput(file: string): unknown {
  const absolute = path.resolve(file);
  if (/\.[cm]?ts$/.test(absolute) && !typescriptRegistered) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('ts-node').register({ transpileOnly: true, compilerOptions: { module: 'commonjs' } });
    typescriptRegistered = true;
  }
  let mod: Record<string, unknown>;
  // A config edited while `botshard up` runs must be read anew, not from the module cache.
  delete require.cache[absolute];
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(absolute);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const reason = err.code === 'MODULE_NOT_FOUND' && err.message.includes(absolute) ? 'does not exist' : `cannot be loaded: ${err.message.split('\n')[0]}`;
    throw new CatalogError([{ path: 'file', message: reason, hint: 'check the path and that the file compiles' }], file);
  }
  return mod.default ?? mod.catalog ?? mod;
}

/** Loads a catalog from a config (`.ts`/`.js`) or a normalised catalog (`.json` file or folder), validated. */
export function loadAnyCatalog(location: string): Catalog {
  const input = /\.[cm]?[jt]s$/.test(location) ? readConfigInput(location) : readCatalogInput(location);
  const result = normalizeCatalog(input);
  if (!result.ok) throw new CatalogError(result.problems, location);
  return result.catalog;
}
