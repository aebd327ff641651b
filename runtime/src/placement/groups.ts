import { Catalog, IndexBot, PoolGroup, selectorMatches } from '../catalog';

/**
 * The group that holds a bot, the first rule of placement: a pinned bot belongs to the group of its
 * dedicated pool; any other bot to the first group, in catalog order, whose selector takes it.
 */
export function groupOf(catalog: Pick<Catalog, 'groups'>, bot: IndexBot): PoolGroup | undefined {
  if (bot.pin !== undefined) return catalog.groups.find((g) => g.dedicatedPools.includes(bot.pin!));
  for (const g of catalog.groups) if (selectorMatches(g.selector, bot)) return g;
  return undefined;
}
