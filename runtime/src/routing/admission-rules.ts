/**
 * What both data planes check before they forward a request, in this order, and how each refusal
 * answers: its status, its message, its headers. The Node router applies the rules in-process
 * (admission.ts); the HAProxy control plane renders them into HAProxy's frontend (haproxy/config.ts),
 * so a message changed here changes in both. Messages take what they name as fields: the Node router
 * passes the request's values, HAProxy its sample expressions (`%[var(txn.bot)]`).
 */
import { MAX_BOT_ID } from '../catalog';

/** What each rule's message names. */
export interface RefusalFields {
  /** `bad_id`: the id as received, JSON-quoted (it may hold anything); left out where it cannot be quoted (HAProxy). */
  bad_id: { id?: string };
  no_keys: Record<string, never>;
  no_key: Record<string, never>;
  bad_key: Record<string, never>;
  unknown_bot: { bot: string; generation: string };
  other_tenant: { bot: string };
  rate_limit: { tenant: string };
  group_concurrency: { group: string };
}

/** A refusal's name: the `reason` label of `botshard_router_rejected_total`. */
export type RefusalReason = keyof RefusalFields;

export interface AdmissionRule<R extends RefusalReason = RefusalReason> {
  reason: R;
  /** The HTTP status of the refusal (gRPC: its equivalent). */
  status: number;
  message(fields: RefusalFields[R]): string;
  /** Response headers (gRPC: metadata) of the refusal. */
  headers?: Readonly<Record<string, string>>;
  /** Seconds after which a retry can succeed (`Retry-After`); the Node router's rate limiter says its own wait. */
  retryAfterSeconds?: number;
  /** A refusal because the platform is full (gRPC: RESOURCE_EXHAUSTED rather than UNAVAILABLE). */
  overloaded?: boolean;
}

const BEARER = { 'www-authenticate': 'Bearer' } as const;

/** The rules by reason. */
export const RULES: { readonly [R in RefusalReason]: AdmissionRule<R> } = {
  /** Checks that the bot id is lowercase letters, digits and "-", at most MAX_BOT_ID characters. */
  bad_id: {
    reason: 'bad_id',
    status: 400,
    message: (f) => `invalid bot id${f.id === undefined ? '' : ` ${f.id}`}: bot ids are lowercase letters, digits and "-", at most ${MAX_BOT_ID} characters`,
  },
  // The API key before the bot is looked up: without a key, known and unknown bots look the same.
  /** Checks that the catalog asks for API keys (platform.auth: "tenant-keys") and the router has some. */
  no_keys: {
    reason: 'no_keys',
    status: 401,
    message: () => 'API keys are required and none are configured on this router; retry later',
    headers: BEARER,
  },
  /** Checks that the request sends an API key (`Authorization: Bearer <key>` or `x-api-key`). */
  no_key: {
    reason: 'no_key',
    status: 401,
    message: () => 'an API key is required: send "Authorization: Bearer <key>"',
    headers: BEARER,
  },
  /** Checks that the API key's SHA-256 is one of a tenant's. */
  bad_key: {
    reason: 'bad_key',
    status: 401,
    message: () => 'the API key is not valid',
    headers: BEARER,
  },
  /** Checks that the bot is in the current catalog generation. */
  unknown_bot: {
    reason: 'unknown_bot',
    status: 404,
    message: (f) => `unknown bot "${f.bot}": it is not in catalog generation ${f.generation}`,
  },
  /** Checks that the API key's tenant owns the bot. */
  other_tenant: {
    reason: 'other_tenant',
    status: 403,
    message: (f) => `this API key may not use bot "${f.bot}"`,
  },
  /** Checks that the bot's tenant is within its rate (BOTSHARD_TENANT_RATE). */
  rate_limit: {
    reason: 'rate_limit',
    status: 429,
    message: (f) => `tenant "${f.tenant}" is over its rate limit`,
    retryAfterSeconds: 1,
  },
  /** Checks that the bot's pool group has a free slot (limits.ts). */
  group_concurrency: {
    reason: 'group_concurrency',
    status: 503,
    message: (f) => `pool group "${f.group}" is at its concurrency limit`,
    retryAfterSeconds: 1,
    overloaded: true,
  },
};

/** The rules in the order they are checked. */
export const ADMISSION_RULES: readonly AdmissionRule[] = [RULES.bad_id, RULES.no_keys, RULES.no_key, RULES.bad_key, RULES.unknown_bot, RULES.other_tenant, RULES.rate_limit, RULES.group_concurrency] as AdmissionRule[];

/** A model version as a path segment (or the gRPC request's `model_version`) may carry it: the catalog's rule. */
export { MODEL_VERSION, MODEL_VERSION_PATTERN } from '../catalog/names';
