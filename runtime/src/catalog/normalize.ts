/**
 * Validation and normalisation of a whole catalog: each section is read by its own module (platform and
 * tenants, encoders, groups, bots), then the references between them are checked. Every problem is
 * reported, in the order of the sections and of their fields.
 */
import { botPath, normalizeBot } from './bots';
import { canonicalGeneration } from './canonical';
import { Checker } from './checker';
import { normalizeEncoders } from './encoders';
import { normalizeGroups } from './groups';
import { normalizePlatform, normalizeTenants } from './platform';
import { CatalogError, Problem, show } from './problems';
import { Shared, plainBot, plainObjectsAreOwn } from './plain-bot';
import { checkReferences } from './references';
import { Bot, CATALOG_API_VERSION, Catalog } from './types';

const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The outcome of validating a catalog: the normalised catalog, or every problem found. */
export type NormalizeResult = { ok: true; catalog: Catalog } | { ok: false; problems: Problem[] };

/**
 * Validates and normalises a catalog input; throws one CatalogError listing every problem (named after
 * `source`, the file it came from, when given). What every loader, construct, test and benchmark uses.
 */
export function parseCatalog(input: unknown, source?: string): Catalog {
  const result = normalizeCatalog(input);
  if (!result.ok) throw new CatalogError(result.problems, source);
  return result.catalog;
}

/**
 * Validates and normalises a catalog: every problem is reported at once, with its path and a fix.
 * Accepts what `defineCatalog()` takes and its own output (a normalised catalog), whose `generation`
 * must then match its content. Never throws, whatever the input.
 */
export function normalizeCatalog(input: unknown): NormalizeResult {
  const c = new Checker();
  try {
    const o = c.object(input, 'catalog', ['apiVersion', 'kind', 'generation', 'platform', 'tenants', 'encoders', 'groups', 'bots'], ['tenants', 'groups', 'bots']);
    if (!o) return { ok: false, problems: c.problems };
    if (o.apiVersion !== undefined && o.apiVersion !== CATALOG_API_VERSION) {
      c.add('apiVersion', `unsupported apiVersion ${show(o.apiVersion)}`, `this runtime reads ${CATALOG_API_VERSION}; regenerate the catalog with the matching botshard`);
    }
    if (o.kind !== undefined && o.kind !== 'Catalog') c.add('kind', `must be "Catalog", got ${show(o.kind)}`, 'set kind to "Catalog"');
    const platform = normalizePlatform(c, o.platform);
    const tenants = normalizeTenants(c, o.tenants);
    const encoders = normalizeEncoders(c, o.encoders);
    const groups = normalizeGroups(c, o.groups);
    const bots = normalizeBots(c, o.bots, new Shared([...tenants.map((t) => t.id), ...encoders.map((e) => e.id)]));
    const content = { platform, tenants, encoders, groups, bots: bots.filter((b): b is Bot => b !== undefined) };
    // Sorted by id here, once: equal ids are then neighbours, and only when some are does the exact
    // check (in input order, with paths) run.
    const sorted = content.bots.slice().sort(byId);
    if (sorted.some((b, i) => i > 0 && b.id === sorted[i - 1].id)) {
      c.uniqueAt(bots.length, (i) => bots[i]?.id, (i) => `${botPath(i, bots[i])}.id`, 'bot id');
    }
    checkReferences(c, { apiVersion: CATALOG_API_VERSION, kind: 'Catalog', ...content });
    if (c.problems.length > 0) return { ok: false, problems: c.problems };

    content.tenants.sort(byId);
    content.encoders.sort(byId);
    content.bots = sorted;
    const generation = canonicalGeneration(content);
    if (o.generation !== undefined && o.generation !== generation) {
      c.add('generation', `${show(o.generation)} does not match the content (computed ${show(generation)})`, 'the file was edited by hand or is incomplete: regenerate it with `botshard catalog`');
      return { ok: false, problems: c.problems };
    }
    return { ok: true, catalog: { apiVersion: CATALOG_API_VERSION, kind: 'Catalog', generation, ...content } };
  } catch (e) {
    // A validator that throws is a bug; still, the caller gets a problem, not a crash.
    c.add('catalog', `could not be validated: ${(e as Error)?.message ?? show(e)}`, 'report this input as a botshard bug');
    return { ok: false, problems: c.problems };
  }
}

/**
 * The bots, in input order (undefined where one is not an object): each read by `plainBot` when it
 * breaks no rule, else by the Checker, which reports its problems.
 */
function normalizeBots(c: Checker, v: unknown, shared: Shared): Array<Bot | undefined> {
  const plain = plainObjectsAreOwn();
  return c.array(v, 'bots').map((b, i) => (plain ? plainBot(b, shared) : undefined) ?? normalizeBot(c, b, botPath(i, b)));
}
