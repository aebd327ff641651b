/**
 * The admission rules of routing/admission-rules.ts as HAProxy checks them, for both of its frontends:
 * REST reads the bot from the path, gRPC from field 1 of the request message. Each frontend renders a
 * refusal in its protocol (a JSON error, or a trailers-only gRPC status) from the same rule and check.
 */
import { MAX_BOT_ID } from '../catalog';
import { ADMISSION_RULES, AdmissionRule, RefusalFields, RefusalReason } from '../routing/admission-rules';
import type { ConfigInput, files } from './input';

const BOT_ID = `^[a-z0-9]([a-z0-9-]{0,${MAX_BOT_ID - 2}}[a-z0-9])?$`;

/** How HAProxy checks one admission rule: the lines that fetch what it needs, the condition of its refusal, the fields its message names. */
export interface HaproxyCheck<R extends RefusalReason = RefusalReason> {
  /** Lines before the refusal (setting the variables it reads). */
  before?: string[];
  /** The refusal's condition: `if` or `unless` an ACL in braces. */
  when: 'if' | 'unless';
  acl: string;
  fields: RefusalFields[R];
  /** Lines after the refusal. */
  after?: string[];
}

/**
 * Each admission rule as HAProxy checks it, or why it is not a frontend rule: a rule left out is off in
 * this configuration (API keys, rate limit) or enforced elsewhere (the group limit: each backend's
 * `maxconn` and queue, answered by the 503 `http-error`). `bot`: the sample that reads the bot id.
 * Both frontends track tenants in one table, so a tenant's rate counts its REST and gRPC requests together.
 */
function haproxyChecks(c: ConfigInput, f: ReturnType<typeof files>, bot: string): { [R in RefusalReason]?: HaproxyCheck<R> } {
  const state = `map(${f.state})`;
  const auth = c.auth;
  return {
    bad_id: { before: [`  http-request set-var(txn.bot) ${bot}`], when: 'unless', acl: `{ var(txn.bot) -m reg ${BOT_ID} }`, fields: {} },
    no_keys: auth
      ? {
          before: ['  http-request set-var(txn.key) req.hdr(x-api-key)', '  http-request set-var(txn.key) req.hdr(authorization),regsub("^Bearer +","") if { req.hdr(authorization) -m beg "Bearer " }'],
          when: 'unless',
          acl: `{ str(keys),${state} -m str 1 }`,
          fields: {},
        }
      : undefined,
    no_key: auth ? { when: 'unless', acl: '{ var(txn.key) -m len gt 0 }', fields: {} } : undefined,
    bad_key: auth ? { before: [`  http-request set-var(txn.tenant) var(txn.key),digest(sha256),hex,lower,map(${f.keys})`], when: 'unless', acl: '{ var(txn.tenant) -m found }', fields: {} } : undefined,
    unknown_bot: {
      before: [`  http-request set-var(txn.pool) var(txn.bot),map(${f.bots})`],
      when: 'unless',
      acl: '{ var(txn.pool) -m found }',
      fields: { bot: '%[var(txn.bot)]', generation: `%[str(generation),${state}]` },
      after: [`  http-request set-var(txn.owner) var(txn.bot),map(${f.owners})`],
    },
    other_tenant: auth ? { when: 'unless', acl: '{ var(txn.tenant),strcmp(txn.owner) eq 0 }', fields: { bot: '%[var(txn.bot)]' } } : undefined,
    rate_limit: c.tenantRate ? { before: ['  http-request track-sc0 var(txn.owner) table tenant_rates'], when: 'if', acl: `{ sc_http_req_rate(0) gt ${c.tenantRate} }`, fields: { tenant: '%[var(txn.owner)]' } } : undefined,
  };
}

/** How a frontend answers a refusal: the `http-request return` of a rule, its message and its headers, under `condition`. */
export type Refuse = (rule: AdmissionRule, message: string, headers: Array<[string, string]>, condition: string) => string;

/**
 * The admission lines of a frontend, in the rules' order. `bot`: the sample that reads the bot id; `only`:
 * an ACL name that limits every line to the requests it matches (gRPC: the model methods).
 */
export function admissionLines(c: ConfigInput, f: ReturnType<typeof files>, o: { bot: string; only?: string; refuse: Refuse }): string[] {
  const checks = haproxyChecks(c, f, o.bot) as Record<RefusalReason, HaproxyCheck | undefined>;
  // Lines that set variables: `... if { x }` becomes `... if only { x }`, and an unconditional line gets `if only`.
  const guard = (line: string) => (!o.only ? line : line.includes(' if ') ? line.replace(' if ', ` if ${o.only} `) : `${line} if ${o.only}`);
  const lines: string[] = [];
  for (const rule of ADMISSION_RULES) {
    const check = checks[rule.reason];
    if (!check) continue;
    const message = rule.message(check.fields);
    const headers: Array<[string, string]> = [...Object.entries(rule.headers ?? {}), ...(rule.retryAfterSeconds !== undefined ? [['retry-after', String(rule.retryAfterSeconds)] as [string, string]] : [])];
    const condition = o.only ? (check.when === 'if' ? `if ${o.only} ${check.acl}` : `if ${o.only} !${check.acl}`) : `${check.when} ${check.acl}`;
    lines.push(...(check.before ?? []).map(guard), o.refuse(rule, message, headers, condition), ...(check.after ?? []).map(guard));
  }
  return lines;
}
