/** `botshard pool`: runs one pool server until SIGTERM. Flags win over environment variables. */
import { CatalogError } from '../catalog';
import { PlacementError } from '../placement';
import { SettingsError, exitOnSignals, exitWithParent, integerSetting, portOf, serveMetrics } from '../serve/process';

export interface PoolCommandFlags {
  pool?: string;
  catalog?: string;
  models?: string;
  port?: string;
  metricsPort?: string;
  host?: string;
}

/** Settings of a pool process, from flags and `BOTSHARD_*` environment variables. */
export interface PoolSettings {
  pool: string;
  catalog: string;
  models?: string;
  /** BOTSHARD_MODEL_CACHE: folder for downloaded models. */
  modelCache?: string;
  /** BOTSHARD_S3_ENDPOINT: an S3-compatible endpoint (path-style requests). */
  s3Endpoint?: string;
  port: number;
  metricsPort: number;
  host: string;
  drainSeconds: number;
  timeoutMs?: number;
  concurrency?: number;
  workers?: number;
  moveGraceMs?: number;
  pollMs?: number;
  logLevel: string;
}

function s3Endpoint(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (!/^https?:\/\/[^/]+/.test(value)) {
    throw new SettingsError(`BOTSHARD_S3_ENDPOINT must be an http:// or https:// URL, got ${JSON.stringify(value)}: set it to your S3-compatible store, e.g. http://minio.storage.svc:9000, or unset it for AWS S3`);
  }
  return value;
}

export function poolSettings(flags: PoolCommandFlags, env: NodeJS.ProcessEnv): PoolSettings {
  const pool = flags.pool ?? env.BOTSHARD_POOL;
  if (!pool) throw new SettingsError('the pool name is missing: pass --pool NAME or set BOTSHARD_POOL (`botshard plan` lists the pools)');
  const catalog = flags.catalog ?? env.BOTSHARD_CATALOG;
  if (!catalog) throw new SettingsError('the catalog is missing: pass --catalog PATH or set BOTSHARD_CATALOG (a catalog .json or the folder where its ConfigMaps are mounted)');
  const seconds = (name: string, v: string | undefined) => {
    const n = integerSetting(name, v, 0, 86_400);
    return n === undefined ? undefined : n * 1000;
  };
  return {
    pool,
    catalog,
    models: flags.models ?? env.BOTSHARD_MODELS,
    modelCache: env.BOTSHARD_MODEL_CACHE || undefined,
    s3Endpoint: s3Endpoint(env.BOTSHARD_S3_ENDPOINT),
    port: integerSetting('--port / BOTSHARD_PORT', flags.port ?? env.BOTSHARD_PORT, 0, 65535) ?? 8080,
    metricsPort: integerSetting('--metrics-port / BOTSHARD_METRICS_PORT', flags.metricsPort ?? env.BOTSHARD_METRICS_PORT, 0, 65535) ?? 9090,
    host: flags.host ?? env.BOTSHARD_HOST ?? '0.0.0.0',
    drainSeconds: integerSetting('BOTSHARD_DRAIN_SECONDS', env.BOTSHARD_DRAIN_SECONDS, 0, 3600) ?? 20,
    timeoutMs: integerSetting('BOTSHARD_TIMEOUT_MS', env.BOTSHARD_TIMEOUT_MS, 1, 3_600_000),
    concurrency: integerSetting('BOTSHARD_CONCURRENCY', env.BOTSHARD_CONCURRENCY, 1, 100_000),
    workers: integerSetting('BOTSHARD_WORKERS', env.BOTSHARD_WORKERS, 1, 256),
    moveGraceMs: seconds('BOTSHARD_MOVE_GRACE_SECONDS', env.BOTSHARD_MOVE_GRACE_SECONDS),
    pollMs: integerSetting('BOTSHARD_POLL_MS', env.BOTSHARD_POLL_MS, 10, 3_600_000),
    logLevel: env.BOTSHARD_LOG_LEVEL ?? 'info',
  };
}

/** Starts the pool and its metrics port; drains on SIGTERM/SIGINT. Resolves once listening. */
export async function startPool(s: PoolSettings): Promise<{ port: number; metricsPort: number; close(): Promise<void> }> {
  process.title = `botshard-pool ${s.pool}`;
  // Loaded here, not at the top: other `botshard` commands stay quick to start.
  const { buildPoolServer } = await import('./server');
  const app = await buildPoolServer({
    pool: s.pool,
    catalog: s.catalog,
    modelRoot: s.models,
    modelCache: s.modelCache,
    modelStore: s.s3Endpoint ? { s3Endpoint: s.s3Endpoint } : undefined,
    timeoutMs: s.timeoutMs,
    concurrency: s.concurrency,
    workers: s.workers,
    moveGraceMs: s.moveGraceMs,
    pollMs: s.pollMs,
    // process.stdout writes synchronously to files and pipes on Linux: no log line is lost at exit.
    logger: { level: s.logLevel, base: { pool: s.pool, pid: process.pid }, stream: process.stdout },
  });
  await app.listen({ port: s.port, host: s.host });
  const metrics = await serveMetrics(app.poolMetrics.registry, s.metricsPort, s.host);
  const port = portOf(app.server);
  const metricsPort = portOf(metrics);
  // Lifecycle lines are logged whatever the level: tools read the bound ports from "listening".
  const lifecycle = app.log.child({}, { level: 'info' });
  lifecycle.info({ port, metricsPort, host: s.host, generation: app.pool.catalog?.generation }, 'listening');

  const close = async () => {
    await app.drain();
    await new Promise<void>((resolve) => metrics.close(() => resolve()));
  };
  exitOnSignals(lifecycle, s.drainSeconds, close);
  exitWithParent();
  return { port, metricsPort, close };
}

/** The `botshard pool` command: starts in the background, returns nothing to print (logs are JSON lines). */
export function poolCommand(flags: PoolCommandFlags): string {
  let settings: PoolSettings;
  try {
    settings = poolSettings(flags, process.env);
  } catch (e) {
    process.stderr.write(`botshard pool: ${(e as Error).message}\n`);
    process.exit(2);
  }
  startPool(settings).catch((e: Error) => {
    const known = e instanceof CatalogError || e instanceof PlacementError || e instanceof SettingsError || (e as NodeJS.ErrnoException).code === 'EADDRINUSE';
    process.stderr.write(`botshard pool: ${known ? e.message : (e.stack ?? e.message)}\n`);
    process.exit(1);
  });
  return '';
}
