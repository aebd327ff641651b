import type { FastifyBaseLogger } from 'fastify';
import type { PoolMetrics } from '../metrics';
import type { QuarantineChange } from './lane';

/** Reports each move into the quarantine lane or out of it: logged once per move, and counted. */
export function reportQuarantine(log: FastifyBaseLogger, metrics: PoolMetrics): (change: QuarantineChange) => void {
  return ({ bot, confined, meanMs, slowMs }) => {
    const fields = { bot, meanMs: Math.round(meanMs), slowMs: Math.round(slowMs) };
    metrics.quarantineChanges.inc({ to: confined ? 'quarantine' : 'shared' });
    if (confined) log.warn(fields, 'bot quarantined: its runs take too long, it now runs in a lane of its own');
    else log.info(fields, 'bot released from quarantine: its runs are fast again');
  };
}
