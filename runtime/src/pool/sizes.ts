/**
 * The sizes of the models a pool holds: declared by the catalog (`memory`) against measured when they
 * loaded (measure.ts), for the metrics, each bot's metadata and the pool's status. Only a report: the
 * pool's budget and placement count the declared sizes.
 */
import type { ModelSize, PoolSizes } from '../status';
import { BotEntry, isResident } from './loading';
import type { Rollout } from './rollout/rollouts';

/** What the sizes are read from: the pool's bots, its encoders, its candidate versions. */
export interface SizeSource {
  readonly bots: ReadonlyMap<string, BotEntry>;
  readonly encoders: { sizes(): Array<ModelSize & { encoder: string }> };
  readonly rollouts: { all(): Iterable<Rollout> };
}

/** A bot's head: declared, and measured while it is loaded (undefined otherwise). */
export function headSize(entry: BotEntry): { declared: number; measured?: number } {
  return { declared: entry.bot.model.memory, ...(isResident(entry) && entry.headMeasuredBytes > 0 ? { measured: entry.headMeasuredBytes } : {}) };
}

/** The models loaded: summed (each encoder once, loaded candidates included), per bot (sorted) and per encoder. */
export function sizesOf(source: SizeSource): PoolSizes {
  const bots: PoolSizes['bots'] = [];
  for (const entry of source.bots.values()) {
    const { declared, measured } = headSize(entry);
    if (measured !== undefined) bots.push({ bot: entry.bot.id, declared, measured });
  }
  bots.sort((a, b) => (a.bot < b.bot ? -1 : 1));
  const encoders = source.encoders.sizes().sort((a, b) => (a.encoder < b.encoder ? -1 : a.encoder > b.encoder ? 1 : a.measured - b.measured));
  const sum = { declared: 0, measured: 0 };
  const add = (s: ModelSize) => {
    sum.declared += s.declared;
    sum.measured += s.measured;
  };
  bots.forEach(add);
  encoders.forEach(add);
  for (const r of source.rollouts.all()) {
    const measured = r.loaded?.state === 'ready' ? r.loaded.headMeasuredBytes : 0;
    if (measured > 0) add({ declared: r.loaded!.bot.model.memory, measured });
  }
  return { ...sum, bots, encoders };
}
