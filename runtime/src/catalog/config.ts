import * as path from 'node:path';
import { readCatalogInput } from './load';
import { parseCatalog } from './normalize';
import { CatalogError, Problem } from './problems';
import { Catalog } from './types';

let typescriptRegistered = false;

/** Loads `bots.config.ts` (or .js): its default export, or its `catalog` export. Only CLI commands
 * that read the config load TypeScript at run time; pools and router read the normalised JSON. */
export function readConfigInput(file: string): unknown {
  const absolute = path.resolve(file);
  // Under ts-node already (cdk8s synth, cdk synth): its instance compiles the config.
  const underTsNode = Symbol.for('ts-node.register.instance') in process;
  if (/\.[cm]?ts$/.test(absolute) && !typescriptRegistered && !underTsNode) {
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
    throw new CatalogError(loadProblems(e, absolute), file);
  }
  return mod.default ?? mod.catalog ?? mod;
}

/**
 * Why a config could not be loaded, located as the compiler locates it: every TypeScript diagnostic
 * (`bots.config.ts(121,1): error TS1136: ...`), or the line of the config where it threw when it ran.
 */
function loadProblems(e: unknown, absolute: string): Problem[] {
  const err = e as NodeJS.ErrnoException & { diagnosticText?: string };
  const shown = path.relative(process.cwd(), absolute) || absolute;
  if (err.code === 'MODULE_NOT_FOUND' && err.message.includes(`'${absolute}'`)) {
    return [{ path: shown, message: 'does not exist', hint: 'check the path (--config FILE)' }];
  }
  if (typeof err.diagnosticText === 'string') {
    return err.diagnosticText
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const at = /^(.*\(\d+,\d+\)): (.*)$/.exec(line);
        return { path: at ? at[1] : shown, message: at ? at[2] : line, hint: 'correct the TypeScript at that line and column' };
      });
  }
  // A runtime error: the first stack frame inside the config (ts-node maps it to the .ts line).
  const escaped = absolute.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const frame = new RegExp(`${escaped}:(\\d+):(\\d+)`).exec(err.stack ?? '');
  const where = frame ? `${shown}:${frame[1]}:${frame[2]}` : shown;
  const first = err.message.split('\n')[0];
  return [{ path: where, message: `${err.name ?? 'Error'}: ${first}`, hint: frame ? 'the config threw while it ran: fix that line' : 'the config threw while it ran' }];
}

/** Loads a catalog from a config (`.ts`/`.js`) or a normalised catalog (`.json` file or folder), validated. */
export function loadAnyCatalog(location: string): Catalog {
  return parseCatalog(/\.[cm]?[jt]s$/.test(location) ? readConfigInput(location) : readCatalogInput(location), location);
}
