/**
 * The protocol's rules that pool and router both know: one error shape (`{"error": ...}`), the header
 * naming the pool that answered, "a 404 names the pool that holds the bot" and "503 while loading".
 * The pool sends these replies; the router reads them to decide where a request goes next.
 */
import type { FastifyReply } from 'fastify';

/** The pool that answered; on a 404, the pool that holds the bot (the router then tries that one). */
export const POOL_HEADER = 'x-botshard-pool';

/** The error reply: `{"error": message}`, with `Retry-After` (seconds) when retrying later can succeed. */
export function sendError(reply: FastifyReply, status: number, message: string, retryAfterSeconds?: number): FastifyReply {
  if (retryAfterSeconds !== undefined) reply.header('retry-after', String(retryAfterSeconds));
  return reply.code(status).send({ error: message });
}

/** 404 for a bot that another pool holds: the pool header names the holder. */
export function sendHeldElsewhere(reply: FastifyReply, bot: string, here: string, holder: string): FastifyReply {
  reply.header(POOL_HEADER, holder);
  return sendError(reply, 404, `bot "${bot}" is not served by pool "${here}": pool "${holder}" holds it`);
}

/** 503 for a bot that is placed here and not loaded yet: retry in a second (here, or at its previous pool). */
export function sendLoading(reply: FastifyReply, bot: string): FastifyReply {
  return sendError(reply, 503, `bot "${bot}" is loading`, 1);
}

/** The pool a 404 names as the bot's holder, or undefined when the answer is not "held elsewhere". */
export function holderOf(status: number, headers: Record<string, string | string[] | undefined>): string | undefined {
  const holder = headers[POOL_HEADER];
  return status === 404 && typeof holder === 'string' ? holder : undefined;
}
