/** Request ids, the same over REST (`x-request-id` header) and gRPC (`x-request-id` metadata). */
import { randomUUID } from 'node:crypto';

const REQUEST_ID = /^[0-9A-Za-z._:-]{1,128}$/;

/** The caller's request id when it is a sane one (letters, digits, `._:-`, at most 128), else a new UUID. */
export function requestIdOf(given: unknown): string {
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}
