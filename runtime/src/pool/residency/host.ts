/** What the resident set asks of the pool's engine: load a cold bot, evict a resident one, and their states. */
import type { FastifyBaseLogger } from 'fastify';
import type { Encoder } from '../../catalog';
import { BotEntry, Loader, isResident } from '../loading';
import type { PoolMetrics } from '../metrics';
import type { Rollouts } from '../rollout/rollouts';
import type { ResidencyHost } from './on-demand';

export interface EngineParts {
  bots: Map<string, BotEntry>;
  loader: Loader;
  rollouts: Rollouts;
  log: FastifyBaseLogger;
  metrics: PoolMetrics;
  encoderOf(id: string | undefined): Encoder | undefined;
}

/** The resident set's callbacks on the engine's bots; a bot's candidate is unloaded and loaded with it. */
export function engineResidencyHost(e: EngineParts): ResidencyHost {
  return {
    load: async (id) => {
      const entry = e.bots.get(id);
      if (!entry || entry.state !== 'cold') return { ready: false, error: 'changed while it waited for room' };
      await e.loader.load(entry.bot, e.encoderOf(entry.bot.model.encoder), entry.definitionHash);
      const after = e.bots.get(id);
      if (after?.state === 'ready') void e.rollouts.resume(id);
      return { ready: after?.state === 'ready', error: after?.error };
    },
    evict: (id) => evict(e, id),
    idle: (id) => {
      const entry = e.bots.get(id);
      return !!entry && isResident(entry) && entry.inflight === 0;
    },
    cold: (id) => e.bots.get(id)?.state === 'cold',
    encoderBytes: (id) => e.encoderOf(id)?.memory ?? 0,
    metrics: e.metrics,
  };
}

/** Unloads a resident bot to make room: it stays assigned here, cold. */
function evict(e: EngineParts, id: string): void {
  const entry = e.bots.get(id);
  if (!entry || !isResident(entry)) return;
  e.rollouts.suspend(id);
  if (entry.state === 'leaving') {
    // Moved away and idle: gone, as after its grace period.
    e.bots.delete(id);
    e.loader.release(entry);
  } else {
    e.loader.release(entry);
    Object.assign(entry, { state: 'cold', lane: -1, headKey: '', headBytes: 0, headMeasuredBytes: 0, encoderKey: undefined });
  }
  e.log.debug({ bot: id }, 'bot evicted (asked least lately)');
}
