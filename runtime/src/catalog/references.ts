/** What the sections of a catalog say about each other. */
import { botPath } from './bots';
import { Checker } from './checker';
import { closest, show } from './problems';
import { selectorMatches } from './selector';
import { Bot, Catalog } from './types';

/** What a bot's references are checked against. */
interface Known {
  tenants: ReadonlySet<string>;
  encoders: ReadonlySet<string>;
  dedicated: readonly string[];
  groups: Catalog['groups'];
}

/**
 * The checks across sections, once each section is read: every bot's tenant, encoder and pinned pool
 * exist, and every unpinned bot has a group whose selector takes it. A bot's path is built only for a
 * problem.
 */
export function checkReferences(c: Checker, catalog: Omit<Catalog, 'generation'>): void {
  const known: Known = {
    tenants: new Set(catalog.tenants.map((t) => t.id)),
    encoders: new Set(catalog.encoders.map((e) => e.id)),
    dedicated: catalog.groups.flatMap((g) => g.dedicatedPools),
    groups: catalog.groups,
  };
  const bots = catalog.bots;
  for (let i = 0; i < bots.length; i++) {
    const bot = bots[i];
    const plain = (bot.tenant === '' || known.tenants.has(bot.tenant)) && knownEncoder(known, bot.model.encoder) && knownEncoder(known, bot.model.candidate?.encoder);
    if (!plain || bot.pin !== undefined || !hasGroup(known, bot)) checkBot(c, known, bot, botPath(i, bot));
  }
}

function knownEncoder(known: Known, id: string | undefined): boolean {
  return id === undefined || id === '' || known.encoders.has(id);
}

function hasGroup(known: Known, bot: Bot): boolean {
  if (known.groups.length === 0 || bot.id === '') return true;
  for (const g of known.groups) if (selectorMatches(g.selector, bot)) return true;
  return false;
}

/** Every reference of one bot, reported at `p`. */
function checkBot(c: Checker, known: Known, bot: Bot, p: string): void {
  if (bot.tenant !== '' && !known.tenants.has(bot.tenant)) {
    const guess = closest(bot.tenant, [...known.tenants]);
    c.add(`${p}.tenant`, `unknown tenant ${show(bot.tenant)}`, guess ? `did you mean "${guess}"? or add it to tenants` : 'add it to tenants');
  }
  const encoder = (id: string | undefined, path: string) => {
    if (knownEncoder(known, id)) return;
    const guess = closest(id!, [...known.encoders]);
    c.add(path, `unknown encoder ${show(id)}`, guess ? `did you mean "${guess}"? or add it to encoders` : 'add it to encoders');
  };
  encoder(bot.model.encoder, `${p}.model.encoder`);
  encoder(bot.model.candidate?.encoder, `${p}.model.candidate.encoder`);
  const dedicated = known.dedicated;
  if (bot.pin !== undefined && bot.pin !== '' && !dedicated.includes(bot.pin)) {
    const guess = closest(bot.pin, dedicated);
    c.add(
      `${p}.pin`,
      `pins to pool ${show(bot.pin)}, which does not exist`,
      guess ? `did you mean "${guess}"?` : dedicated.length ? `pin to one of ${dedicated.join(', ')}` : 'declare it in a group\'s dedicatedPools',
    );
  }
  if (bot.pin === undefined && !hasGroup(known, bot)) {
    c.add(p, `bot ${show(bot.id)} (realtime: ${bot.realtime}, properties: ${show(bot.properties)}) matches no pool group`, 'widen a group selector, add a group, or pin the bot');
  }
}
