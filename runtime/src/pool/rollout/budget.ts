/**
 * The declared memory a candidate must fit beside (rule 5 of model rollouts: placement never sees a
 * candidate, so it loads into the pool's headroom or is refused). A plain pool: its overhead, the heads of
 * the bots it holds and their encoders, against the group's memory. An overcommitted pool: its resident set
 * against the memory it keeps resident.
 */
import type { Encoder, PoolGroup } from '../../catalog';
import { BotEntry, isResident } from '../loading';

export interface Budget {
  used: number;
  limit: number;
  /** Encoders counted in `used` (a candidate on one of them adds only its head). */
  encoders: ReadonlySet<string>;
  /** What the limit is, for the refusal message. */
  what: string;
  /** Loaded candidates are counted in `used` already (the resident set counts them with their bots). */
  counted?: boolean;
}

/** The budget of a pool that loads every bot it holds. */
export function declaredBudget(group: PoolGroup, bots: ReadonlyMap<string, BotEntry>, encoderById: ReadonlyMap<string, Encoder>): Budget {
  let used = group.poolOverhead;
  const encoders = new Set<string>();
  for (const e of bots.values()) {
    if (!isResident(e) && e.state !== 'loading') continue;
    used += e.bot.model.memory;
    const enc = e.bot.model.encoder;
    if (enc !== undefined && !encoders.has(enc)) used += (encoders.add(enc), encoderById.get(enc)?.memory ?? 0);
  }
  return { used, limit: group.memory, encoders, what: 'its memory' };
}

/** The budget of an overcommitted pool: what it keeps resident (overhead included) against its resident limit. */
export function residentBudget(resident: { used: number; limit: number }, bots: ReadonlyMap<string, BotEntry>): Budget {
  const encoders = new Set<string>();
  for (const e of bots.values()) if (isResident(e) && e.bot.model.encoder !== undefined) encoders.add(e.bot.model.encoder);
  return { used: resident.used, limit: resident.limit, encoders, what: 'the memory it keeps resident', counted: true };
}
