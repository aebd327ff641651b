/** A pool group's selector: how it is written and which bots it takes. */
import { Checker, isObj } from './checker';
import { show } from './problems';
import { PropertyValue } from './input';
import { IndexBot, Selector } from './types';

function normalizePropertyValues(c: Checker, v: unknown, p: string): PropertyValue[] {
  const values = Array.isArray(v) ? v : [v];
  const out: PropertyValue[] = [];
  values.forEach((x, i) => {
    if (typeof x === 'string' || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x))) out.push(x);
    else c.add(Array.isArray(v) ? `${p}[${i}]` : p, `must be a string, number or boolean, got ${show(x)}`, 'use a plain value');
  });
  return [...new Set(out)].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

export function normalizeSelector(c: Checker, v: unknown, p: string, realtime: boolean): Selector {
  if (v === undefined) return { realtime, properties: {} };
  const o = c.object(v, p, ['realtime', 'properties']);
  const selector: Selector = { properties: {} };
  if (!o) return selector;
  if (o.realtime !== undefined) selector.realtime = c.boolean(o.realtime, `${p}.realtime`, false);
  if (o.properties !== undefined) {
    const props = c.object(o.properties, `${p}.properties`, Object.keys(isObj(o.properties) ? o.properties : {}));
    for (const [k, val] of Object.entries(props ?? {})) {
      c.propertyKey(k, `${p}.properties.${k}`);
      selector.properties[k] = normalizePropertyValues(c, val, `${p}.properties.${k}`);
    }
  }
  return selector;
}

/**
 * Whether a group's selector takes a bot: what a selector means, read by the catalog's check that every
 * unpinned bot has a group and by placement's `groupOf` (which group holds a bot).
 */
export function selectorMatches(selector: Selector, bot: IndexBot): boolean {
  if (selector.realtime !== undefined && selector.realtime !== bot.realtime) return false;
  // for ... in, not Object.entries: called for every bot of the catalog, it allocates nothing.
  const properties = selector.properties;
  for (const key in properties) {
    if (!Object.prototype.hasOwnProperty.call(properties, key)) continue;
    const v = bot.properties[key];
    if (v === undefined || !properties[key].includes(v)) return false;
  }
  return true;
}
