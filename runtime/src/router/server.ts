/**
 * The inference router: one entry point that sends each request to the pool holding its bot, computed
 * with the same placement as the pools. `buildRouter()` returns the fastify app; `listen` is the caller's.
 */
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { Catalog, CatalogIndex, openCatalog } from '../catalog';
import { createApp } from '../serve/app';
import { followCatalog } from '../serve/catalog';
import { PlatformStatus, platformStatus, replicasAt } from '../status';
import { PoolAddress, poolAddress, poolGrpcAddress } from '../routing/addresses';
import { routerGrpcMethods } from '../routing/grpc';
import { RouterMetrics } from '../routing/metrics';
import { RouterPartsOptions, routerParts } from '../routing/parts';
import { PoolAddresses, routerReady } from '../routing/readiness';
import { RoutingTable } from '../routing/table';
import { TenantKeys, checkKeysAtStart } from '../routing/tenants';
import { RestForwarder } from './rest-forward';
import { proxyRoutes } from './routes';

const SERVER_NAME = 'botshard-router';

export interface RouterOptions {
  /** A catalog file or folder (watched for changes), or a catalog object (not watched). */
  catalog: string | Catalog;
  /** Where pools answer: a template with `{pool}` and `{namespace}`, or a function (local mode). */
  poolUrl: string | PoolAddress;
  /** Where every pool replica answers (for the status: rollouts summed over replicas): a URL whose host resolves to them all, or a function. @default - only each pool's Service */
  poolReplicas?: string | (() => Promise<string[]>);
  /** Where pools answer gRPC: a template `{pool}.{namespace}.svc.cluster.local:8081`, or a function. @default - the host of `poolUrl` (a template) on port 8081; none for a function */
  poolGrpc?: string | PoolAddress;
  /** Folder of tenant API key hashes (a mounted Secret: one file per tenant id), followed for changes. Used when the catalog's `platform.auth` is "tenant-keys"; without keys then, the router is not ready and refuses every request. @default - none */
  tenantKeys?: string;
  /** Requests per second per tenant (token bucket), with bursts of twice that. @default - no rate limit */
  tenantRate?: RouterPartsOptions['tenantRate'];
  /** The clock (ms) the tenant rate limit reads: tests inject one. @default - performance.now (monotonic) */
  now?: RouterPartsOptions['now'];
  /** Requests forwarded at once per pool group. @default - the group's concurrency x its pools x its max replicas */
  groupConcurrency?: RouterPartsOptions['groupConcurrency'];
  /** Attempts per request over the bot's current and previous pool. @default 3 */
  maxAttempts?: number;
  /** Consecutive failures (no answer: connection refused or reset, or a timeout) that open a pool's circuit. @default 5 */
  circuitThreshold?: number;
  /** How long an open circuit keeps a pool from being called before one probe. @default 2000 */
  circuitCooldownMs?: number;
  /** Most bytes in a request body (413 beyond). @default APP_DEFAULTS.bodyLimit (1 MiB) */
  bodyLimit?: number;
  /** Time to receive a request's headers. @default APP_DEFAULTS.headersTimeoutMs */
  headersTimeoutMs?: number;
  /** Time to receive a whole request. @default APP_DEFAULTS.requestTimeoutMs */
  requestTimeoutMs?: number;
  /** Idle keep-alive time of client connections: above a typical load balancer's 60 s. @default APP_DEFAULTS.keepAliveTimeoutMs */
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
  /** Pools of the current catalog that requests cannot reach yet (no address, or a host that does not resolve). */
  unroutable(): string[];
  /** Ready: not draining, and every bot of the catalog can be routed (every pool has an address). */
  readonly ready: boolean;
  /** Applies a new catalog (what the watcher does on a change). Throws, keeping the old one, if it cannot be placed. */
  update(catalog: CatalogIndex): void;
  /** What `botshard status` shows: every pool of the current generation, asked directly (served on the metrics port). */
  status(): Promise<PlatformStatus>;
}

/** Builds the router app. The catalog watcher starts with the app and stops when it closes. */
export function buildRouter(opts: RouterOptions): FastifyInstance {
  // The router reads only the placement index: it never needs a bot's rules or model.
  const initial = typeof opts.catalog === 'string' ? openCatalog(opts.catalog).index : opts.catalog;
  const address: PoolAddress = typeof opts.poolUrl === 'string' ? poolAddress(opts.poolUrl, initial.platform.namespace) : opts.poolUrl;
  const replicas = typeof opts.poolReplicas === 'string' ? replicasAt(opts.poolReplicas) : opts.poolReplicas;
  const grpcAddress: PoolAddress = typeof opts.poolGrpc === 'function' ? opts.poolGrpc : poolGrpcAddress(opts.poolGrpc ?? opts.poolUrl, initial.platform.namespace);
  const addresses = new PoolAddresses(address);
  let abortedBeforeDrain = 0;
  const app = createApp({
    name: SERVER_NAME,
    extensions: ['botshard_routing'],
    ready: () => state.ready,
    body: 'bytes',
    logger: opts.logger ?? { level: 'info', base: { service: SERVER_NAME } },
    bodyLimit: opts.bodyLimit,
    headersTimeoutMs: opts.headersTimeoutMs,
    requestTimeoutMs: opts.requestTimeoutMs,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs,
    // The parts below exist before the endpoint listens.
    grpc: { raw: true, models: routerGrpcMethods(() => parts) },
    onDrain: () => {
      abortedBeforeDrain = parts.inFlight.aborted;
    },
    // The process's last line says how many requests the router did not answer while it drained. Every
    // request still unanswered as it exits is one (at the drain limit; or one whose connection was closed
    // under it too late for its close to be seen): counted, and its connection closed, so that no answer
    // goes out after the count (a gRPC call cut off is refused instead: routerGrpcMethods).
    onExit: () => {
      parts.inFlight.cutOff();
      app.server.closeAllConnections();
      return { aborted: parts.inFlight.aborted - abortedBeforeDrain };
    },
  });
  // After the app: the keys log their changes through its logger, the first load included.
  const keys = opts.tenantKeys
    ? new TenantKeys(opts.tenantKeys, (k) => {
        if (k.problem) app.log.error({ tenantKeys: k.location }, `${k.problem}: requests are refused (401) and the router is not ready until keys are back`);
        else app.log.info({ tenantKeys: k.location, keys: k.size }, 'tenant API keys loaded');
      })
    : undefined;
  const parts = routerParts({ ...opts, catalog: initial, grpcAddress, keys, processMetrics: opts.processMetrics ?? true });
  const { table, metrics, admission } = parts;
  const rest = new RestForwarder(parts.forwarder, address, metrics);
  const state: RouterState = {
    table,
    metrics,
    unroutable: () => addresses.unroutable(table.pools()),
    get ready() {
      return routerReady({ draining: app.draining, allRoutable: () => this.unroutable().length === 0, keysRequired: admission.authRequired, keys: keys?.size ?? 0 });
    },
    update: (catalog) => parts.update(catalog),
    async status() {
      return platformStatus({ router: { generation: table.generation, dataPlane: 'node' }, pools: [...table.pools()], address, replicas });
    },
  };
  app.decorate('router', state);

  checkKeysAtStart(table.catalog, keys);
  if (!admission.authRequired && keys && keys.size > 0) app.log.warn({ tenantKeys: keys.location }, 'tenant keys are given but the catalog sets platform.auth to "none": requests are not authenticated');
  if (keys) {
    keys.follow(opts.pollMs ?? 5000);
    app.addHook('onClose', async () => keys.stop());
  }
  if (typeof opts.catalog === 'string') followCatalog(app, { location: opts.catalog, generation: table.generation, pollMs: opts.pollMs, apply: (source) => state.update(source.index), reloads: metrics.catalogReloads });
  app.addHook('onClose', async () => {
    parts.close();
    await rest.close();
  });

  app.register(proxyRoutes, { admission, rest, inFlight: parts.inFlight });

  return app;
}
