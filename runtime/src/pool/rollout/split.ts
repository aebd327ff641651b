/**
 * Which requests a candidate takes: a fixed point in [0, 1) per bot and key (a conversation key, or else
 * the request id), compared with the share. The same key always lands on the same side, so a conversation
 * never flips between versions, and raising the share only moves keys towards the candidate.
 */
import { xxh64 } from '../../hash';

/** The point of a key for a bot, uniform in [0, 1). */
export function splitPoint(bot: string, key: string): number {
  const h = xxh64(`${bot}\n${key}`);
  return (h.hi * 2 ** 21 + (h.lo >>> 11)) / 2 ** 53;
}

/** Whether the request with this key goes to (or, for a shadow, is copied to) the candidate. */
export function takesCandidate(bot: string, key: string, share: number): boolean {
  return share >= 1 || (share > 0 && splitPoint(bot, key) < share);
}
