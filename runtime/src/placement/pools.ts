import { IndexBot, PoolGroup } from '../catalog';
import { U64, xxh64 } from '../hash';

/** A pool while a group is being placed. Memory figures are bytes. */
export interface PoolState {
  name: string;
  hash: U64;
  used: number;
  budget: number;
  bots: string[];
  encoders: Set<string>;
}

export function newPool(name: string, group: PoolGroup): PoolState {
  return { name, hash: xxh64(name), used: group.poolOverhead, budget: group.memory, bots: [], encoders: new Set() };
}

/** What a bot adds to a pool: its head, plus its encoder if the pool does not hold it yet. */
export function costIn(pool: PoolState, bot: IndexBot, encoderBytes: ReadonlyMap<string, number>): number {
  const enc = bot.model.encoder;
  return bot.model.memory + (enc !== undefined && !pool.encoders.has(enc) ? encoderBytes.get(enc) ?? 0 : 0);
}

export function put(pool: PoolState, bot: IndexBot, cost: number): void {
  pool.used += cost;
  pool.bots.push(bot.id);
  if (bot.model.encoder !== undefined) pool.encoders.add(bot.model.encoder);
}

/** The key a bot ranks pools by: its locality key when the group asks for one, else its id
 * (bot ids cannot contain ":", so the two never collide). */
export function localityKey(group: PoolGroup, bot: IndexBot): string {
  const locality = group.locality;
  if (locality === 'encoder' && bot.model.encoder !== undefined) return `encoder:${bot.model.encoder}`;
  if (typeof locality === 'object') {
    const v = bot.properties[locality.property];
    if (v !== undefined) return `property:${locality.property}=${JSON.stringify(v)}`;
  }
  return bot.id;
}

/** Bytes times a factor of the catalog (fill factor, overcommit), read to 3 decimals: integer bytes, the same in any language. */
export function scaled(bytes: number, factor: number): number {
  return Math.floor((bytes * Math.round(factor * 1000)) / 1000);
}

/** A pool's memory at the group's fill factor, in integer bytes. */
export function fillLimit(group: PoolGroup): number {
  return scaled(group.memory, group.fillFactor);
}
