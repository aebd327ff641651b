/**
 * The pool server: an Open Inference Protocol v2 endpoint for the bots the catalog assigns to this
 * pool. `buildPoolServer()` returns the fastify app (tests call `app.inject()`); `listen` is the caller's.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FastifyBaseLogger, FastifyInstance, FastifyServerOptions } from 'fastify';
import { Catalog, CatalogIndex, CatalogSource, catalogSource, openCatalog } from '../catalog';
import { POOL_HEADER } from '../oip';
import { createApp } from '../serve/app';
import { followCatalog } from '../serve/catalog';
import { PoolMetrics } from './metrics';
import * as grpc from '@grpc/grpc-js';
import { httpStatusOf } from '../oip/grpc';
import { poolGrpcMethods } from './grpc';
import { ModelService, withoutPaths } from './models';
import { modelRoutes } from './routes';
import { PoolEngine } from './engine';
import { PlannedCatalog, planPool } from './plan';
import { PoolStatus, RolloutStatus, STATUS_PATH } from '../status';
import { Rollout, servingVersion } from './rollout/rollouts';
import { botCounts, failedBots, failedVersions } from './gauges';
import { HotSet } from './hot-set';
import { sizesOf } from './sizes';
import { ModelStore, ModelStoreOptions } from './store';
import { LaneSettings, Lanes, laneSettings } from './lanes';
import { reportQuarantine } from './quarantine';
import { MOVE_GRACE_MS } from '../catalog/defaults';
import { availableCpus } from '../io/cpus';

export const SERVER_NAME = 'botshard-pool';

export interface PoolServerOptions {
  /** This pool's name, as the placement names it (`<group>-<suffix>`, or a dedicated pool's name). */
  pool: string;
  /** A catalog file or folder (watched for changes), or a catalog object (not watched). */
  catalog: string | Catalog;
  /** Folder that the catalog's model paths are relative to. @default - the catalog's `platform.modelRoot`, relative to the catalog's folder */
  modelRoot?: string;
  /** Folder for models downloaded from s3:// and https:// locations. @default - `<modelRoot>/.cache`, or `<tmpdir>/botshard-models` when that is read-only */
  modelCache?: string;
  /** Download settings of the model store (S3 endpoint, concurrency, retries). @default - see ModelStoreOptions */
  modelStore?: Omit<ModelStoreOptions, 'root' | 'cacheDir' | 'registry'>;
  /** Inference worker threads. @default - the CPUs available, at most 4 */
  workers?: number;
  /** Deadline of an inference request, over the catalog's (local use: the catalog is the source). @default - the pool group's `timeoutMs`, followed live */
  timeoutMs?: number;
  /** Inference requests queued per worker before shedding with 503 (per bot: half of it, at least 2), over the catalog's (local use). @default - the pool group's `concurrency`, followed live */
  concurrency?: number;
  /** Most texts in one inference request. @default 64 */
  maxBatch?: number;
  /** Most characters in one text. @default 4096 */
  maxTextLength?: number;
  /** Most bytes in a request body (413 beyond). @default APP_DEFAULTS.bodyLimit (1 MiB) */
  bodyLimit?: number;
  /** Time to receive a request's headers. @default APP_DEFAULTS.headersTimeoutMs */
  headersTimeoutMs?: number;
  /** Time to receive a whole request. @default APP_DEFAULTS.requestTimeoutMs */
  requestTimeoutMs?: number;
  /** How often Node checks the two timeouts above. @default APP_DEFAULTS.timeoutCheckMs */
  timeoutCheckMs?: number;
  /** Idle time of a keep-alive connection (above the router's idle time, so the pool never closes first). @default APP_DEFAULTS.keepAliveTimeoutMs */
  keepAliveTimeoutMs?: number;
  /** How long a bot that moved to another pool keeps being served here. @default MOVE_GRACE_MS (catalog/defaults.ts) */
  moveGraceMs?: number;
  /** Catalog polling interval (fs.watch also reports changes). @default 5000 */
  pollMs?: number;
  /** Models loading at once. @default - 2 per worker */
  loadConcurrency?: number;
  /** First pause before a bot that failed to load is loaded again (doubling, up to 5 minutes). @default 5000 */
  retryMs?: number;
  /** fastify logger: `false`, or pino options. @default - JSON lines at level info, with the pool name */
  logger?: FastifyServerOptions['logger'];
  /** Collect Node process metrics (memory, CPU, event loop) too. @default true */
  processMetrics?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The pool's engine (bots, catalog, readiness, lanes). */
    pool: PoolEngine;
    poolMetrics: PoolMetrics;
  }
}

/** Builds the pool server: loads the catalog, starts the lanes and begins loading this pool's bots. */
export async function buildPoolServer(opts: PoolServerOptions): Promise<FastifyInstance> {
  // From a folder with a placement index, only this pool's bots' definitions are read.
  const source = typeof opts.catalog === 'string' ? openCatalog(opts.catalog) : catalogSource(opts.catalog);
  const initial = source.index;
  const metrics = new PoolMetrics(opts.pool, opts.processMetrics ?? true);
  let engine: PoolEngine | undefined;
  let service: ModelService | undefined;
  const app = createApp({
    name: SERVER_NAME,
    ready: () => engine?.ready ?? false,
    body: 'json',
    onDrain: () => engine?.drain(),
    onResponse: (request, reply) => metrics.requestSeconds.observe({ route: request.routeOptions.url ?? 'unknown', code: String(reply.statusCode) }, reply.elapsedTime / 1000),
    logger: opts.logger ?? { level: 'info', base: { pool: opts.pool, pid: process.pid } },
    bodyLimit: opts.bodyLimit,
    headersTimeoutMs: opts.headersTimeoutMs,
    requestTimeoutMs: opts.requestTimeoutMs,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs,
    timeoutCheckMs: opts.timeoutCheckMs,
    grpc: {
      // The service is built below, before the endpoint listens.
      models: poolGrpcMethods(() => service!),
      stamp: poolStamp(opts.pool),
      // Codes as their HTTP equivalents: one vocabulary for dashboards and alerts; the route says gRPC.
      onCall: (method, code, seconds) => metrics.requestSeconds.observe({ route: `grpc ${method}`, code: String(httpStatusOf(code)) }, seconds),
    },
  });
  const log = app.log;
  // One inference worker per CPU the pool may use (a container's limit, not the node's cores), at most 4.
  const workerCount = opts.workers ?? Math.max(1, Math.min(4, availableCpus()));
  const { first, refused } = planFirst(source, opts, log);
  const group = first?.group;
  // Before the first catalog with this pool in its plan, the pool serves nothing: no settings needed.
  const lanes = startLanes(workerCount, group && laneSettings(group, opts), log, metrics, () => engine);
  const store = new ModelStore({
    onRetry: (r) => log.warn(r, 'model download failed: retrying'),
    ...opts.modelStore,
    root: opts.modelRoot ?? defaultModelRoot(opts.catalog, initial),
    cacheDir: opts.modelCache,
    registry: metrics.registry,
  });
  const pool = new PoolEngine({
    pool: opts.pool,
    store,
    lanes,
    metrics,
    log,
    moveGraceMs: opts.moveGraceMs ?? MOVE_GRACE_MS,
    loadConcurrency: opts.loadConcurrency ?? 2 * workerCount,
    concurrency: opts.concurrency,
    timeoutMs: opts.timeoutMs,
    retryMs: opts.retryMs,
    // Beside the model cache (an emptyDir in Kubernetes: it outlives a container restart).
    hotSet: new HotSet(() => store.cacheFolder(), opts.pool),
  });
  engine = pool;
  app.decorate('pool', pool);
  app.decorate('poolMetrics', metrics);

  // A catalog that cannot be used throws in planPool: refused, the current one (at start: none) keeps serving.
  const apply = (next: CatalogSource) => void pool.apply(planPool(next, opts.pool)).catch(() => undefined);
  if (first) void pool.apply(first).catch(() => undefined);
  else {
    metrics.catalogReloads.inc({ result: 'invalid' });
    log.error({ generation: initial.generation, problems: refused?.message }, 'catalog cannot be used: not ready until one that can arrives');
  }
  if (typeof opts.catalog === 'string') followCatalog(app, { location: opts.catalog, generation: initial.generation, pollMs: opts.pollMs, apply, reloads: metrics.catalogReloads });
  app.addHook('onClose', async () => {
    pool.close();
    await Promise.all([lanes.close(), store.close()]);
  });
  app.addHook('onRequest', (_request, reply, done) => {
    reply.header(POOL_HEADER, opts.pool);
    done();
  });
  app.get(STATUS_PATH, async (): Promise<PoolStatus> => statusOf(pool, opts.pool));
  service = new ModelService({ pool: opts.pool, engine: pool, metrics, maxBatch: opts.maxBatch ?? 64, maxTextLength: opts.maxTextLength ?? 4096, log });
  await app.register(modelRoutes, { service });
  return app;
}

/** What every gRPC answer of the pool carries: its name, as REST answers carry it in a header. */
function poolStamp(pool: string): grpc.Metadata {
  const stamp = new grpc.Metadata();
  stamp.set(POOL_HEADER, pool);
  return stamp;
}

/** The pool's lanes, their events logged and measured. */
function startLanes(count: number, settings: LaneSettings | undefined, log: FastifyBaseLogger, metrics: PoolMetrics, engine: () => PoolEngine | undefined): Lanes {
  return new Lanes({
    lanes: count,
    settings,
    onThreadExit: (index, err) => log.error({ worker: index, err }, 'inference worker died: restarted, its models reloading'),
    onModelLost: (_index, key, err) => engine()?.modelLost(key, err),
    onQueueDepth: (index, depth) => metrics.queueDepth.set({ worker: String(index) }, depth),
    onQuarantine: reportQuarantine(log, metrics),
    onBatch: (_index, requests) => metrics.batchRequests.observe(requests),
  });
}

/**
 * The catalog the pool starts with, planned once (a catalog that cannot be used leaves the pool not ready
 * until one that can arrives). The catalog is the one source of group settings; an option
 * (BOTSHARD_TIMEOUT_MS, BOTSHARD_CONCURRENCY) is for local use, and says so when it wins.
 */
function planFirst(source: CatalogSource, opts: PoolServerOptions, log: FastifyBaseLogger): { first?: PlannedCatalog; refused?: Error } {
  let first: PlannedCatalog | undefined;
  let refused: Error | undefined;
  try {
    first = planPool(source, opts.pool);
  } catch (e) {
    refused = e as Error;
  }
  const group = first?.group;
  for (const [name, value, fromCatalog] of [['timeoutMs', opts.timeoutMs, group?.timeoutMs], ['concurrency', opts.concurrency, group?.concurrency]] as const) {
    if (value !== undefined) log.warn({ [name]: value, catalog: fromCatalog, group: group?.name }, `${name} set for this process overrides the pool group's ${name} in the catalog`);
  }
  return { first, refused };
}

/** What `/status` answers: the pool's state for `botshard status`. */
function statusOf(engine: PoolEngine, pool: string): PoolStatus {
  const own = engine.topology?.pools.find((p) => p.name === pool);
  return {
    pool,
    replica: os.hostname(),
    ready: engine.ready,
    generation: engine.catalog?.generation ?? null,
    bots: botCounts(engine.bots),
    failed: failedBots(engine.bots).slice(0, 50).map((f) => ({ bot: f.bot, error: withoutPaths(f.error) })),
    versionsFailed: failedVersions(engine.bots).slice(0, 50).map((f) => ({ bot: f.bot, head: f.head, error: withoutPaths(f.error), since: f.since, failures: f.failures })),
    rollouts: [...engine.rollouts.all()].map(rolloutStatus),
    queue: engine.queueDepths(),
    memoryBytes: process.memoryUsage().rss,
    budgetBytes: own?.budget ?? null,
    sizes: sizesOf(engine),
  };
}

function rolloutStatus(r: Rollout): RolloutStatus {
  const { candidate: c } = r;
  return {
    bot: r.bot.id,
    serving: servingVersion(r.bot),
    candidate: c.version,
    mode: c.mode,
    share: c.share,
    state: r.state,
    since: r.since,
    ...(r.error ? { error: withoutPaths(r.error) } : {}),
    ...(r.rolledBack ? { rolledBack: r.rolledBack } : {}),
    figures: r.figures,
  };
}

function defaultModelRoot(location: string | Catalog, catalog: CatalogIndex): string {
  if (typeof location !== 'string') return path.resolve(catalog.platform.modelRoot);
  const dir = fs.statSync(location).isDirectory() ? location : path.dirname(location);
  return path.resolve(dir, catalog.platform.modelRoot);
}

