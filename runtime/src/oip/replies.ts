/**
 * The protocol's rules that pool and router both know: one error shape (`{"error": ...}` over REST, a
 * status code and its details over gRPC), the header naming the pool that answered, "a 404 names the pool
 * that holds the bot" and "503 while loading". The pool sends these replies; the router reads them to
 * decide where a request goes next.
 */
import type { FastifyReply } from 'fastify';

/** The pool that answered; on a 404, the pool that holds the bot (the router then tries that one). Also gRPC metadata. */
export const POOL_HEADER = 'x-botshard-pool';

/** In an overcommitted pool: `hit` (the bot was resident) or `miss` (loaded for this request). Also gRPC metadata. */
export const RESIDENCY_HEADER = 'botshard-residency';

/**
 * A conversation key: a canary's share of a bot's requests is sticky per conversation (without one, the
 * request id decides). The header (also gRPC metadata), or the inference request's parameter.
 */
export const CONVERSATION_HEADER = 'x-conversation-id';
export const CONVERSATION_PARAMETER = 'conversation_id';

/** The conversation key of a request: its header, else its `conversation_id` parameter (a string or a number). */
export function conversationOf(header: unknown, parameter: unknown): string | undefined {
  if (typeof header === 'string' && header !== '') return header;
  if ((typeof parameter === 'string' && parameter !== '') || typeof parameter === 'number') return String(parameter);
  return undefined;
}

/**
 * A request that is refused or failed, whatever the transport: REST sends `status` and `{"error": message}`,
 * gRPC the matching status code (`grpcCodeOf`) with the message as its details.
 */
export class ProtocolError extends Error {
  constructor(
    /** The HTTP status. */
    readonly status: number,
    message: string,
    readonly o: {
      /** Seconds after which retrying can succeed (`Retry-After`). */
      retryAfterSeconds?: number;
      /** On a 404: the pool that holds the bot. */
      holder?: string;
      /** A 503 because queues are full (gRPC: RESOURCE_EXHAUSTED rather than UNAVAILABLE). */
      overloaded?: boolean;
      /** More response headers (gRPC: metadata), such as `www-authenticate` on a 401. */
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
  }
}

/** 404 for a bot that another pool holds: it names the holder. */
export function heldElsewhere(bot: string, here: string, holder: string): ProtocolError {
  return new ProtocolError(404, `bot "${bot}" is not served by pool "${here}": pool "${holder}" holds it`, { holder });
}

/** 503 for a bot that is placed here and not loaded yet: retry in a second (here, or at its previous pool). */
export function loadingError(bot: string): ProtocolError {
  return new ProtocolError(503, `bot "${bot}" is loading`, { retryAfterSeconds: 1 });
}

/** The error reply: `{"error": message}`, with `Retry-After` (seconds) when retrying later can succeed. */
export function sendError(reply: FastifyReply, status: number, message: string, retryAfterSeconds?: number): FastifyReply {
  if (retryAfterSeconds !== undefined) reply.header('retry-after', String(retryAfterSeconds));
  return reply.code(status).send({ error: message });
}

/** A ProtocolError as a REST reply (the holder in the pool header). */
export function sendProblem(reply: FastifyReply, e: ProtocolError): FastifyReply {
  if (e.o.holder !== undefined) reply.header(POOL_HEADER, e.o.holder);
  if (e.o.headers) reply.headers(e.o.headers);
  return sendError(reply, e.status, e.message, e.o.retryAfterSeconds);
}

/** The pool a 404 names as the bot's holder, or undefined when the answer is not "held elsewhere". */
export function holderOf(status: number, headers: Record<string, string | string[] | undefined>): string | undefined {
  const holder = headers[POOL_HEADER];
  return status === 404 && typeof holder === 'string' ? holder : undefined;
}
