/**
 * The HAProxy configuration of the router's HAProxy mode: one frontend that answers what the Node router
 * answers itself (health, server metadata, and the admission rules of routing/admission-rules.ts, rendered
 * from that list: bad ids, API keys, unknown bots, tenants, rate limits) with the same JSON errors, and one
 * backend per pool with its group's timeout and concurrency. Where each bot
 * goes is a map (`bots.map`: bot id -> pool), which the control plane changes live through the Runtime
 * API; a reload is only needed when the set of pools or their addresses change.
 */
import * as path from 'node:path';
import { MAX_BOT_ID } from '../catalog';
import { ADMISSION_RULES, AdmissionRule, MODEL_VERSION_PATTERN, RefusalFields, RefusalReason } from '../routing/admission-rules';

/** A pool as HAProxy reaches it. */
export interface Backend {
  pool: string;
  /** `http://host:port` (or https), or undefined while the pool has no address yet (local mode: not started). */
  url?: string;
  /** The group's deadline: the pool answers 504 itself by then. */
  timeoutMs: number;
  /** Requests sent to the pool at once (the group's concurrency x its max replicas); more wait in a queue. */
  maxconn: number;
}

export interface ConfigInput {
  host: string;
  port: number;
  /** Port of HAProxy's Prometheus exporter (`/metrics`). */
  metricsPort: number;
  /** Folder of the maps and the Runtime API socket. */
  dir: string;
  backends: Backend[];
  /** The catalog asks for tenant API keys. */
  auth: boolean;
  /** Requests per second per tenant, when limited. */
  tenantRate?: number;
  /** Server name and version in `GET /v2`. */
  version: string;
}

/** The files HAProxy reads, in the control plane's folder. */
export function files(dir: string) {
  return {
    config: path.join(dir, 'haproxy.cfg'),
    socket: path.join(dir, 'admin.sock'),
    /** bot id -> pool (the backend's name). */
    bots: path.join(dir, 'bots.map'),
    /** bot id -> tenant. */
    owners: path.join(dir, 'owners.map'),
    /** SHA-256 (hex) of an API key -> tenant. */
    keys: path.join(dir, 'keys.map'),
    /** `ready`, `keys` -> 1 or 0; `generation` -> the catalog generation. */
    state: path.join(dir, 'state.map'),
  };
}

/** A JSON error answer; `lf`: the message holds `%[...]` samples (log-format). */
function answer(status: number, message: string, condition: string, o: { lf?: boolean; headers?: string } = {}): string {
  const body = `{"error":"${message.replace(/"/g, '\\"')}"}`;
  return `  http-request return status ${status} content-type application/json ${o.headers ?? ''}${o.lf ? 'lf-string' : 'string'} '${body}' ${condition}`.replace(/  +/g, ' ').replace(/^ /, '  ');
}

const BOT_ID = `^[a-z0-9]([a-z0-9-]{0,${MAX_BOT_ID - 2}}[a-z0-9])?$`;

/** How HAProxy checks one admission rule: the lines that fetch what it needs, the condition of its refusal, the fields its message names. */
interface HaproxyCheck<R extends RefusalReason> {
  /** Lines before the refusal (setting the variables it reads). */
  before?: string[];
  /** The refusal's condition (`if ...` or `unless ...`). */
  condition: string;
  fields: RefusalFields[R];
  /** Lines after the refusal. */
  after?: string[];
}

/**
 * Each admission rule as HAProxy checks it, or why it is not a frontend rule: a rule left out is off in
 * this configuration (API keys, rate limit) or enforced elsewhere (the group limit: each backend's
 * `maxconn` and queue, answered by the 503 `http-error`).
 */
function haproxyChecks(c: ConfigInput, f: ReturnType<typeof files>): { [R in RefusalReason]?: HaproxyCheck<R> } {
  const state = `map(${f.state})`;
  const auth = c.auth;
  return {
    bad_id: { before: ['  http-request set-var(txn.bot) path,field(4,/)'], condition: `unless { var(txn.bot) -m reg ${BOT_ID} }`, fields: {} },
    no_keys: auth
      ? {
          before: ['  http-request set-var(txn.key) req.hdr(x-api-key)', '  http-request set-var(txn.key) req.hdr(authorization),regsub("^Bearer +","") if { req.hdr(authorization) -m beg "Bearer " }'],
          condition: `unless { str(keys),${state} -m str 1 }`,
          fields: {},
        }
      : undefined,
    no_key: auth ? { condition: 'unless { var(txn.key) -m len gt 0 }', fields: {} } : undefined,
    bad_key: auth ? { before: [`  http-request set-var(txn.tenant) var(txn.key),digest(sha256),hex,lower,map(${f.keys})`], condition: 'unless { var(txn.tenant) -m found }', fields: {} } : undefined,
    unknown_bot: {
      before: [`  http-request set-var(txn.pool) var(txn.bot),map(${f.bots})`],
      condition: 'unless { var(txn.pool) -m found }',
      fields: { bot: '%[var(txn.bot)]', generation: `%[str(generation),${state}]` },
      after: [`  http-request set-var(txn.owner) var(txn.bot),map(${f.owners})`],
    },
    other_tenant: auth ? { condition: 'unless { var(txn.tenant),strcmp(txn.owner) eq 0 }', fields: { bot: '%[var(txn.bot)]' } } : undefined,
    rate_limit: c.tenantRate ? { before: ['  http-request track-sc0 var(txn.owner) table tenant_rates'], condition: `if { sc_http_req_rate(0) gt ${c.tenantRate} }`, fields: { tenant: '%[var(txn.owner)]' } } : undefined,
  };
}

/** An admission rule's lines in the frontend. */
function refusal<R extends RefusalReason>(rule: AdmissionRule<R>, check: HaproxyCheck<R>): string[] {
  const message = rule.message(check.fields);
  const headers = [...Object.entries(rule.headers ?? {}), ...(rule.retryAfterSeconds !== undefined ? [['retry-after', String(rule.retryAfterSeconds)]] : [])].map(([k, v]) => `hdr ${k} ${v} `).join('');
  return [...(check.before ?? []), answer(rule.status, message, check.condition, { lf: message.includes('%['), headers }), ...(check.after ?? [])];
}

export function renderConfig(c: ConfigInput): string {
  const f = files(c.dir);
  const map = (file: string) => `map(${file})`;
  const version = MODEL_VERSION_PATTERN;
  const lines = [
    '# Generated by `botshard haproxy`: the router\'s HAProxy mode. Do not edit; the control plane rewrites it.',
    'global',
    `  stats socket ${f.socket} mode 600 level admin expose-fd listeners`,
    '  master-worker',
    // A reload's old process ends its connections by then at the latest.
    '  hard-stop-after 30s',
    '  tune.bufsize 32768',
    '',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    // On a reload, idle client connections get their next answer with "Connection: close" instead of being
    // closed under a request that is on its way: no client sees a reset.
    '  option idle-close-on-response',
    '  http-reuse always',
    '  timeout connect 2s',
    '  timeout client 75s',
    '  timeout http-request 10s',
    '  timeout http-keep-alive 75s',
    '  timeout queue 1s',
    '  timeout server 30s',
    '  timeout check 2s',
    // HAProxy's own refusals, in the protocol's error shape.
    `  http-error status 503 content-type application/json string '{"error":"no pool can take this request now (not ready, or at its concurrency limit); retry later"}'`,
    `  http-error status 504 content-type application/json string '{"error":"the pool did not answer in time"}'`,
    `  http-error status 502 content-type application/json string '{"error":"the pool answered with an invalid response"}'`,
    `  http-error status 400 content-type application/json string '{"error":"bad request"}'`,
    `  http-error status 408 content-type application/json string '{"error":"the request was not received in time"}'`,
    '',
    'frontend metrics',
    `  bind ${c.host}:${c.metricsPort}`,
    '  http-request use-service prometheus-exporter if { path /metrics }',
    `  http-request return status 404 content-type application/json string '{"error":"not found: GET /metrics"}'`,
    '',
    'frontend botshard',
    `  bind ${c.host}:${c.port}`,
    '  option http-buffer-request',
    '  http-request set-header x-request-id %[uuid] unless { req.hdr(x-request-id) -m reg ^[A-Za-z0-9._:-]{1,128}$ }',
    '  http-request set-var(txn.request_id) req.hdr(x-request-id)',
    '  http-after-response set-header x-request-id %[var(txn.request_id)]',
    `  http-request return status 200 content-type application/json string '{"live":true}' if { path /v2/health/live }`,
    `  http-request return status 200 content-type application/json string '{"ready":true}' if { path /v2/health/ready } { str(ready),${map(f.state)} -m str 1 }`,
    `  http-request return status 503 content-type application/json string '{"ready":false}' if { path /v2/health/ready }`,
    `  http-request return status 200 content-type application/json string '{"name":"botshard-router","version":"${c.version}","extensions":["botshard_routing","botshard_haproxy","binary_tensor_data"]}' if { path /v2 /v2/ }`,
    `  acl model_path path_reg ^/v2/models/[^/]+(/versions/${version})?(/ready)?$`,
    `  acl infer_path path_reg ^/v2/models/[^/]+(/versions/${version})?/infer$`,
    '  acl predict_path path_reg ^/v1/bots/[^/]+/predict$',
    '  acl known_route method GET HEAD model_path',
    '  acl known_route method POST infer_path',
    '  acl known_route method POST predict_path',
    answer(404, 'no route %[method] %[path,json(utf8s)]', 'unless known_route', { lf: true }),
  ];
  const checks = haproxyChecks(c, f) as Record<RefusalReason, HaproxyCheck<RefusalReason> | undefined>;
  for (const rule of ADMISSION_RULES) {
    const check = checks[rule.reason];
    if (check) lines.push(...refusal(rule, check));
  }
  lines.push('  use_backend %[var(txn.pool)]', '');
  if (c.tenantRate) lines.push('backend tenant_rates', '  stick-table type string len 64 size 100k expire 10s store http_req_rate(1s)', '');
  for (const b of c.backends) lines.push(...backend(b));
  return `${lines.join('\n')}\n`;
}

/** A pool's address as HAProxy takes it: host, port, TLS or not. */
export function serverAddress(url: string): { host: string; port: number; tls: boolean } {
  const u = new URL(url);
  const tls = u.protocol === 'https:';
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || (tls ? 443 : 80)), tls };
}

/**
 * A pool's backend: its one server (the pool's Service, or its loopback port in local mode), health-checked
 * on readiness. A pool without an address yet gets a server in maintenance, which the control plane points
 * at the pool (`set server ... addr`) once it has one.
 */
function backend(b: Backend): string[] {
  const a = b.url ? serverAddress(b.url) : undefined;
  const where = a ? `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}` : '127.0.0.1:1 disabled';
  const tls = a?.tls ? ` ssl verify required ca-file @system-ca sni str(${a.host})` : '';
  return [
    `backend ${b.pool}`,
    '  option httpchk GET /v2/health/ready',
    '  http-check expect status 200',
    `  timeout server ${b.timeoutMs + 1000}`,
    `  server ${b.pool} ${where} check inter 1s fall 2 rise 1 maxconn ${b.maxconn} init-addr last,libc,none${tls}`,
    '',
  ];
}
