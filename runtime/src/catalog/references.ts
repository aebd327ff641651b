/** What the sections of a catalog say about each other. */
import { botPath } from './bots';
import { Checker } from './checker';
import { closest, show } from './problems';
import { selectorMatches } from './selector';
import { Catalog } from './types';

/**
 * The checks across sections, once each section is read: every bot's tenant, encoder and pinned pool
 * exist, and every unpinned bot has a group whose selector takes it.
 */
export function checkReferences(c: Checker, catalog: Omit<Catalog, 'generation'>): void {
  const tenants = new Set(catalog.tenants.map((t) => t.id));
  const encoders = new Set(catalog.encoders.map((e) => e.id));
  const dedicated = catalog.groups.flatMap((g) => g.dedicatedPools);
  catalog.bots.forEach((bot, i) => {
    const p = botPath(i, bot);
    if (bot.tenant !== '' && !tenants.has(bot.tenant)) {
      const guess = closest(bot.tenant, [...tenants]);
      c.add(`${p}.tenant`, `unknown tenant ${show(bot.tenant)}`, guess ? `did you mean "${guess}"? or add it to tenants` : 'add it to tenants');
    }
    const encoder = (id: string | undefined, path: string) => {
      if (id === undefined || id === '' || encoders.has(id)) return;
      const guess = closest(id, [...encoders]);
      c.add(path, `unknown encoder ${show(id)}`, guess ? `did you mean "${guess}"? or add it to encoders` : 'add it to encoders');
    };
    encoder(bot.model.encoder, `${p}.model.encoder`);
    encoder(bot.model.candidate?.encoder, `${p}.model.candidate.encoder`);
    if (bot.pin !== undefined && bot.pin !== '' && !dedicated.includes(bot.pin)) {
      const guess = closest(bot.pin, dedicated);
      c.add(
        `${p}.pin`,
        `pins to pool ${show(bot.pin)}, which does not exist`,
        guess ? `did you mean "${guess}"?` : dedicated.length ? `pin to one of ${dedicated.join(', ')}` : 'declare it in a group\'s dedicatedPools',
      );
    }
    if (bot.pin === undefined && catalog.groups.length > 0 && bot.id !== '' && !catalog.groups.some((g) => selectorMatches(g.selector, bot))) {
      c.add(p, `bot ${show(bot.id)} (realtime: ${bot.realtime}, properties: ${show(bot.properties)}) matches no pool group`, 'widen a group selector, add a group, or pin the bot');
    }
  });
}
