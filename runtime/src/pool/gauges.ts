import type { Encoders } from './encoders';
import { BotEntry, FailedVersion, isResident } from './loading';
import type { BotState, PoolState } from './metrics';
import type { Rollouts } from './rollout/rollouts';
import { sizesOf } from './sizes';

/** What the gauges (and the pool's status) read of the pool's engine. */
export interface GaugeSource {
  readonly bots: ReadonlyMap<string, BotEntry>;
  readonly encoders: Pick<Encoders, 'bytes' | 'sizes'>;
  readonly residentBytes: { used: number; limit: number } | undefined;
  readonly ready: boolean;
  readonly lanes: { readonly quarantined: ReadonlySet<string> };
  readonly rollouts: Pick<Rollouts, 'counts' | 'all'>;
}

/** What the state gauges show, read when metrics are read (a scrape): nothing to keep up to date on the request path. */
export function gaugesOf(engine: GaugeSource): PoolState {
  return {
    bots: () => botCounts(engine.bots),
    modelFileBytes: () => {
      let head = 0;
      for (const e of engine.bots.values()) if (isResident(e)) head += e.headBytes;
      for (const r of engine.rollouts.all()) head += r.loaded?.headBytes ?? 0;
      return { head, encoder: engine.encoders.bytes };
    },
    modelBytes: () => {
      const { declared, measured } = sizesOf(engine);
      return { declared, measured };
    },
    residentBytes: () => {
      const r = engine.residentBytes;
      return r && { resident: r.used, limit: r.limit };
    },
    ready: () => engine.ready,
    quarantined: () => engine.lanes.quarantined.size,
    versionsFailed: () => failedVersions(engine.bots).length,
    candidates: () => engine.rollouts.counts(),
  };
}

/** In an overcommitted pool: whether a bot is resident, cold or loading (undefined otherwise, and for a failed bot). */
export function residencyOf(entry: BotEntry, overcommitted: boolean): 'resident' | 'cold' | 'loading' | undefined {
  if (!overcommitted) return undefined;
  if (isResident(entry)) return 'resident';
  return entry.state === 'cold' || entry.state === 'loading' ? entry.state : undefined;
}

/** Bots per state. */
export function botCounts(bots: ReadonlyMap<string, BotEntry>): Record<BotState, number> {
  const counts: Record<BotState, number> = { loading: 0, ready: 0, failed: 0, leaving: 0, cold: 0 };
  for (const e of bots.values()) counts[e.state]++;
  return counts;
}

/** Failed bots and their errors. */
export function failedBots(bots: ReadonlyMap<string, BotEntry>): Array<{ bot: string; error: string }> {
  return [...bots.values()].filter((e) => e.state === 'failed').map((e) => ({ bot: e.bot.id, error: e.error ?? 'unknown' }));
}

/** Serving bots whose new version failed to load: they serve their previous one. */
export function failedVersions(bots: ReadonlyMap<string, BotEntry>): Array<{ bot: string } & FailedVersion> {
  return [...bots.values()].filter((e) => e.failedVersion && isResident(e)).map((e) => ({ bot: e.bot.id, ...e.failedVersion! }));
}
