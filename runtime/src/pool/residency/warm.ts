import type { FastifyBaseLogger } from 'fastify';
import type { Bot } from '../../catalog';
import type { OnDemand } from './on-demand';

/**
 * The loads that warm an overcommitted pool's resident set: its warm and pinned bots, then the bots its
 * traffic kept resident before a restart (`recorded`, most recent first), as many as fit beside them
 * without evicting anything. Adds them to `tasks`; `count` ends as the warm bots that did not fit.
 */
export function warmTasks(onDemand: OnDemand, o: { assigned: Bot[]; warm: Bot[]; recorded: string[]; tasks: Array<() => Promise<void>>; isCold(id: string): boolean; log: FastifyBaseLogger }): { count: number } {
  const warmCold = { count: 0 };
  const byId = new Map(o.assigned.map((b) => [b.id, b]));
  const warmed = new Set(o.warm.map((b) => b.id));
  const hot = o.recorded.map((id) => byId.get(id)).filter((b): b is Bot => b !== undefined && !warmed.has(b.id) && o.isCold(b.id));
  if (hot.length > 0) o.log.info({ bots: hot.length, recorded: o.recorded.length }, 'loading the bots this pool had resident before it restarted');
  for (const bot of o.warm) {
    o.tasks.push(async () => {
      if (!(await onDemand.warm(bot)) && o.isCold(bot.id)) warmCold.count++;
    });
  }
  for (const bot of hot) {
    o.tasks.push(async () => {
      await onDemand.warm(bot);
    });
  }
  return warmCold;
}
