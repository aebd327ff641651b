/**
 * The inference router: one entry point that sends each request to the pool holding its bot, computed
 * with the same placement as the pools. `buildRouter()` returns the fastify app; `listen` is the caller's.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions, LogController } from 'fastify';
import { Catalog, MAX_BOT_ID, isBotId, loadCatalog } from '../catalog';
import { ErrorResponse, LiveResponse, ReadyResponse, ServerMetadataResponse, isHealthProbe } from '../oip';
import { CatalogWatcher } from '../catalog/watch';
import { Circuit } from './circuit';
import { PoolAddresses } from './readiness';
import { SettingsError } from '../commands/failure';
import { RouterMetrics } from './metrics';
import { Route, RoutingTable } from './table';
import { RateLimiter, TenantKeys } from './tenants';
import { PoolAddress, UpstreamError, Upstreams, poolAddress, responseHeaders } from './upstream';

export const POOL_HEADER = 'x-botshard-pool';
const SERVER_NAME = 'botshard-router';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const SERVER_VERSION: string = require('../../package.json').version;

const VERSION = /^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$/;
const REQUEST_ID = /^[0-9A-Za-z._:-]{1,128}$/;
/** Responses up to this size are read whole and sent in one write; larger ones are streamed. */
const SMALL_BODY = 64 * 1024;

export interface RouterOptions {
  /** A catalog file or folder (watched for changes), or a catalog object (not watched). */
  catalog: string | Catalog;
  /** Where pools answer: a template with `{pool}` and `{namespace}`, or a function (local mode). */
  poolUrl: string | PoolAddress;
  /** Folder of tenant API key hashes (a mounted Secret: one file per tenant id), followed for changes. Used when the catalog's `platform.auth` is "tenant-keys"; without keys then, the router is not ready and refuses every request. @default - none */
  tenantKeys?: string;
  /** Requests per second per tenant (token bucket), with bursts of twice that. @default - no rate limit */
  tenantRate?: number;
  /** Requests forwarded at once per pool group. @default - the group's concurrency x its pools x its max replicas */
  groupConcurrency?: Readonly<Record<string, number>>;
  /** Attempts per request over the bot's current and previous pool. @default 3 */
  maxAttempts?: number;
  /** Consecutive connection failures that open a pool's circuit. @default 5 */
  circuitThreshold?: number;
  /** How long an open circuit keeps a pool from being called before one probe. @default 2000 */
  circuitCooldownMs?: number;
  /** Most bytes in a request body (413 beyond). @default 1 MiB */
  bodyLimit?: number;
  /** Time to receive a request's headers. @default 10000 */
  headersTimeoutMs?: number;
  /** Time to receive a whole request. @default 30000 */
  requestTimeoutMs?: number;
  /** Idle keep-alive time of client connections: above a typical load balancer's 60 s. @default 65000 */
  keepAliveTimeoutMs?: number;
  /** Catalog polling interval (fs.watch also reports changes). @default 5000 */
  pollMs?: number;
  /** @default - JSON lines at level info */
  logger?: FastifyServerOptions['logger'];
  /** Collect Node process metrics too. @default true */
  processMetrics?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    router: RouterState;
  }
}

/** What the router holds: its routing table, metrics, and readiness. */
export interface RouterState {
  table: RoutingTable;
  metrics: RouterMetrics;
  /** Set on SIGTERM: the router reports not ready from then on. */
  draining: boolean;
  /** Pools of the current catalog that requests cannot reach yet (no address, or a host that does not resolve). */
  unroutable(): string[];
  /** Ready: not draining, and every bot of the catalog can be routed (every pool has an address). */
  readonly ready: boolean;
  /** Applies a new catalog (what the watcher does on a change). Throws, keeping the old one, if it cannot be placed. */
  update(catalog: Catalog): void;
}

function sendError(reply: FastifyReply, status: number, error: string, retryAfter?: number): FastifyReply {
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  return reply.code(status).type('application/json').send(JSON.stringify({ error }));
}

/** Builds the router app. The catalog watcher starts with the app and stops when it closes. */
export function buildRouter(opts: RouterOptions): FastifyInstance {
  const initial = typeof opts.catalog === 'string' ? loadCatalog(opts.catalog) : opts.catalog;
  const table = new RoutingTable(initial);
  const inflight = new Map<string, number>();
  const metrics = new RouterMetrics(opts.processMetrics ?? true, inflight);
  metrics.setGeneration(table.generation);
  const address: PoolAddress = typeof opts.poolUrl === 'string' ? poolAddress(opts.poolUrl, initial.platform.namespace) : opts.poolUrl;
  const upstreams = new Upstreams({ keepAliveMs: 60_000 });
  const circuits = new Map<string, Circuit>();
  const circuit = (pool: string) => {
    let c = circuits.get(pool);
    if (!c) circuits.set(pool, (c = new Circuit(opts.circuitThreshold ?? 5, opts.circuitCooldownMs ?? 2000)));
    return c;
  };
  /** The catalog asks for API keys: without them nothing is served (fail closed, never "auth off"). */
  const authRequired = () => table.catalog.platform.auth === 'tenant-keys';
  const limiter = opts.tenantRate ? new RateLimiter(opts.tenantRate, opts.tenantRate * 2) : undefined;
  const maxAttempts = opts.maxAttempts ?? 3;

  const app = Fastify({
    logger: opts.logger ?? { level: 'info', base: { service: SERVER_NAME } },
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    requestTimeout: opts.requestTimeoutMs ?? 30_000,
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 65_000,
    connectionTimeout: opts.headersTimeoutMs ?? 10_000,
    return503OnClosing: true,
    // Two info lines per request cost more than forwarding it: requests log at debug (5xx at warn).
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    routerOptions: { maxParamLength: 256 },
    // Malformed or overlong URLs get the protocol's error shape too, without echoing the URL back.
    frameworkErrors: (error, _request, reply) => {
      const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
      sendError(reply, status, status === 414 ? 'the URL is too long' : 'malformed URL');
    },
  });
  // Node's own header timeout (fastify leaves Node's defaults except requestTimeout).
  app.server.headersTimeout = opts.headersTimeoutMs ?? 10_000;

  const keys = opts.tenantKeys
    ? new TenantKeys(opts.tenantKeys, (k) => {
        if (k.problem) app.log.error({ tenantKeys: k.location }, `${k.problem}: requests are refused (401) and the router is not ready until keys are back`);
        else app.log.info({ tenantKeys: k.location, keys: k.size }, 'tenant API keys loaded');
      })
    : undefined;
  if (authRequired()) {
    if (!keys) throw new SettingsError('the catalog requires API keys (platform.auth: "tenant-keys") and no tenant keys folder is given: pass --tenant-keys DIR or set BOTSHARD_TENANT_KEYS (a folder with one file of SHA-256 key hashes per tenant)');
    if (keys.problem) throw new SettingsError(`the catalog requires API keys (platform.auth: "tenant-keys") and ${keys.problem}: add the key hashes (docs/router.md, "Tenants") or fix the path`);
  } else if (keys && keys.size > 0) {
    app.log.warn({ tenantKeys: keys.location }, 'tenant keys are given but the catalog sets platform.auth to "none": requests are not authenticated');
  }

  const addresses = new PoolAddresses(address);
  const state: RouterState = {
    table,
    metrics,
    draining: false,
    unroutable: () => addresses.unroutable(table.pools()),
    get ready() {
      return !this.draining && this.unroutable().length === 0 && (!authRequired() || (keys?.size ?? 0) > 0);
    },
    update(catalog) {
      table.update(catalog);
      metrics.setGeneration(catalog.generation);
      app.log.info({ generation: catalog.generation, previous: table.previousGeneration }, 'catalog updated');
    },
  };
  app.decorate('router', state);

  // Bodies are forwarded as received (bytes, up to bodyLimit), so a request can be retried on another pool.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error: { statusCode?: number; message: string; code?: string }, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    const message = error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `request body is larger than ${opts.bodyLimit ?? 1024 * 1024} bytes` : status >= 500 ? 'internal error' : error.message;
    return sendError(reply, status, message);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, `no route ${request.method} ${request.url.split('?')[0].slice(0, 200)}`));

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // Draining: the client learns to open its next connection elsewhere.
    if (state.draining) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    const line = { method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime };
    if (reply.statusCode >= 500 && !isHealthProbe(request.routeOptions.url)) request.log.warn(line, 'request failed');
    else request.log.debug(line, 'request');
  });

  if (typeof opts.catalog === 'string') {
    const location = opts.catalog;
    const watcher = new CatalogWatcher({
      location,
      generation: table.generation,
      pollMs: opts.pollMs,
      onCatalog: (catalog) => {
        try {
          state.update(catalog);
          metrics.catalogReloads.inc({ result: 'applied' });
        } catch (e) {
          metrics.catalogReloads.inc({ result: 'invalid' });
          app.log.error({ err: e }, 'new catalog cannot be placed; keeping the current one');
        }
      },
      onInvalid: (e) => {
        metrics.catalogReloads.inc({ result: 'invalid' });
        app.log.error({ problems: e.message }, 'invalid catalog ignored; keeping the current one');
      },
    });
    app.addHook('onReady', async () => watcher.start());
    app.addHook('onClose', async () => watcher.stop());
  }
  if (keys) {
    keys.follow(opts.pollMs ?? 5000);
    app.addHook('onClose', async () => keys.stop());
  }
  app.addHook('onClose', async () => upstreams.close());

  const errorSchema = { '4xx': ErrorResponse, '5xx': ErrorResponse };
  app.get('/v2/health/live', { schema: { response: { 200: LiveResponse } } }, async () => ({ live: true }));
  app.get('/v2/health/ready', { schema: { response: { 200: ReadyResponse, 503: ReadyResponse } } }, async (_req, reply) => {
    const ready = state.ready;
    reply.code(ready ? 200 : 503);
    return { ready };
  });
  // The protocol's OpenAPI document writes the server metadata path as `/v2/`; clients use both.
  for (const url of ['/v2', '/v2/']) {
    app.get(url, { schema: { response: { 200: ServerMetadataResponse, ...errorSchema } } }, async () => ({
      name: SERVER_NAME,
      version: SERVER_VERSION,
      extensions: ['botshard_routing'],
    }));
  }

  /**
   * Authentication, before the bot is looked up (so that without a key, known and unknown bots look the
   * same): the caller's tenant, null when the catalog asks for no authentication, or the 401 sent.
   */
  function authenticate(request: FastifyRequest, reply: FastifyReply): string | null | FastifyReply {
    if (!authRequired()) return null;
    const refuse = (reason: string, message: string) => {
      metrics.rejected.inc({ reason });
      reply.header('www-authenticate', 'Bearer');
      return sendError(reply, 401, message);
    };
    if (!keys || keys.size === 0) return refuse('no_keys', 'API keys are required and none are configured on this router; retry later');
    const auth = request.headers.authorization;
    const key = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7).trim() : (request.headers['x-api-key'] as string | undefined);
    if (!key) return refuse('no_key', 'an API key is required: send "Authorization: Bearer <key>"');
    const tenant = keys.tenantOf(key);
    return tenant === undefined ? refuse('bad_key', 'the API key is not valid') : tenant;
  }

  /** Tenant isolation and rate limit: a reply when refused, undefined when allowed. */
  function admit(reply: FastifyReply, route: Route, tenant: string | null): FastifyReply | undefined {
    if (tenant !== null && tenant !== route.tenant) {
      metrics.rejected.inc({ reason: 'other_tenant' });
      return sendError(reply, 403, `this API key may not use bot "${route.bot}"`);
    }
    if (limiter) {
      const wait = limiter.take(route.tenant);
      if (wait > 0) {
        metrics.rejected.inc({ reason: 'rate_limit' });
        return sendError(reply, 429, `tenant "${route.tenant}" is over its rate limit`, wait);
      }
    }
    return undefined;
  }

  function groupLimit(route: Route): number {
    const configured = opts.groupConcurrency?.[route.group.name];
    if (configured !== undefined) return configured;
    return route.group.concurrency * Math.max(1, table.poolCount(route.group.name)) * route.group.replicas.max;
  }

  /** Forwards to the bot's pool, falling back to its previous pool (or the pool a 404 names) while it moves. */
  async function forward(request: FastifyRequest, reply: FastifyReply, bot: string, pathOf: (bot: string) => string): Promise<FastifyReply> {
    if (!isBotId(bot)) {
      metrics.rejected.inc({ reason: 'bad_id' });
      return sendError(reply, 400, `invalid bot id ${JSON.stringify(bot.slice(0, 80))}: bot ids are lowercase letters, digits and "-", at most ${MAX_BOT_ID} characters`);
    }
    const tenant = authenticate(request, reply);
    if (typeof tenant === 'object' && tenant !== null) return tenant;
    const route = table.route(bot);
    if (!route) {
      metrics.rejected.inc({ reason: 'unknown_bot' });
      return sendError(reply, 404, `unknown bot "${bot}": it is not in catalog generation ${table.generation}`);
    }
    const refused = admit(reply, route, tenant);
    if (refused) return refused;
    const group = route.group.name;
    const busy = inflight.get(group) ?? 0;
    if (busy >= groupLimit(route)) {
      metrics.rejected.inc({ reason: 'group_concurrency' });
      return sendError(reply, 503, `pool group "${group}" is at its concurrency limit`, 1);
    }
    inflight.set(group, busy + 1);
    const started = process.hrtime.bigint();
    const deadline = Date.now() + route.group.timeoutMs;
    const headers: Record<string, string> = { 'x-request-id': request.id };
    for (const name of ['content-type', 'accept', 'traceparent', 'tracestate']) {
      const v = request.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    const body = request.method === 'POST' ? (Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)) : undefined;
    const candidates = [route.pool, ...(route.previousPool ? [route.previousPool] : [])];
    const tried = new Set<string>();
    let lastError: UpstreamError | undefined;
    let circuitOpen: string | undefined;
    try {
      for (let attempt = 0; attempt < maxAttempts && candidates.length > 0; attempt++) {
        const pool = candidates.shift()!;
        if (tried.has(pool)) continue;
        tried.add(pool);
        // No address yet: nothing is called, so the circuit is not asked (and no probe is taken).
        const origin = address(pool);
        if (!origin) {
          lastError = new UpstreamError('connect', pool, `pool "${pool}" has no address yet`);
          continue;
        }
        const c = circuit(pool);
        if (!c.allow()) {
          metrics.upstreamErrors.inc({ pool, kind: 'circuit_open' });
          circuitOpen = pool;
          continue;
        }
        // From here every call ends in success() or failure(): a probe never leaves the circuit half-open.
        let res;
        try {
          res = await upstreams.forward({ pool, origin, method: request.method as 'GET' | 'POST', path: pathOf(bot), headers, body, deadline });
        } catch (e) {
          const err = e as UpstreamError;
          lastError = err;
          metrics.upstreamErrors.inc({ pool, kind: err.kind });
          c.failure(); // a timeout too: the pool did not answer in time
          if (err.kind === 'timeout') break; // the deadline is spent: no retry
          continue;
        }
        c.success();
        const holder = res.headers[POOL_HEADER];
        const notHere = res.statusCode === 404 && typeof holder === 'string';
        if ((notHere || res.statusCode === 503) && (candidates.length > 0 || (notHere && holder !== pool && table.knows(holder as string) && !tried.has(holder as string)))) {
          // The pool does not have the bot (yet) or is not ready: try the next candidate.
          await res.body.dump();
          metrics.upstreamErrors.inc({ pool, kind: 'not_ready' });
          if (notHere && holder !== pool && table.knows(holder as string) && !tried.has(holder as string)) candidates.unshift(holder as string);
          continue;
        }
        if (pool !== route.pool) metrics.fallbacks.inc({ group });
        metrics.requests.inc({ group, pool, code: String(res.statusCode) });
        metrics.latency.observe({ group, pool }, Number(process.hrtime.bigint() - started) / 1e9);
        // Small answers (all of OIP's JSON, in practice) go out in one write; large ones stream through.
        const length = Number(res.headers['content-length']);
        let answer: Buffer | typeof res.body = res.body;
        if (length >= 0 && length <= SMALL_BODY) {
          try {
            answer = Buffer.from(await res.body.arrayBuffer());
          } catch {
            metrics.upstreamErrors.inc({ pool, kind: 'reset' });
            return sendError(reply, 502, `pool "${pool}" closed the connection in the middle of its answer`);
          }
        }
        reply.code(res.statusCode).headers(responseHeaders(res.headers));
        return reply.send(answer);
      }
      if (lastError?.kind === 'timeout') {
        metrics.requests.inc({ group, pool: lastError.pool, code: '504' });
        return sendError(reply, 504, `${lastError.message} (pool group "${group}" allows ${route.group.timeoutMs} ms)`);
      }
      const pool = lastError?.pool ?? circuitOpen ?? route.pool;
      metrics.requests.inc({ group, pool, code: '503' });
      const retryAfter = circuitOpen ? circuit(circuitOpen).retryAfterSeconds() : 1;
      return sendError(reply, 503, lastError ? lastError.message : `pool "${pool}" is failing; calls to it are paused`, retryAfter);
    } finally {
      inflight.set(group, (inflight.get(group) ?? 1) - 1);
    }
  }

  type ModelRoute = { Params: { bot: string; version?: string } };
  /** The upstream path of a model route; undefined (and a 400 sent) for a malformed version. */
  const modelPath = (request: FastifyRequest<ModelRoute>, reply: FastifyReply, tail: string): ((bot: string) => string) | undefined => {
    const v = request.params.version;
    if (v !== undefined && !VERSION.test(v)) {
      sendError(reply, 400, `invalid model version ${JSON.stringify(v.slice(0, 80))}`);
      return undefined;
    }
    return (bot) => `/v2/models/${bot}${v !== undefined ? `/versions/${v}` : ''}${tail}`;
  };
  for (const prefix of ['/v2/models/:bot', '/v2/models/:bot/versions/:version']) {
    for (const [method, tail] of [['GET', ''], ['GET', '/ready'], ['POST', '/infer']] as const) {
      app.route<ModelRoute>({
        method,
        url: `${prefix}${tail}`,
        handler: async (request, reply) => {
          const pathOf = modelPath(request, reply, tail);
          return pathOf ? forward(request, reply, request.params.bot, pathOf) : reply;
        },
      });
    }
  }
  app.post<ModelRoute>('/v1/bots/:bot/predict', async (request, reply) => forward(request, reply, request.params.bot, (bot) => `/v1/bots/${bot}/predict`));

  return app;
}
