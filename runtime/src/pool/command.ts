/** `botshard pool`: runs one pool server until SIGTERM. Flags win over environment variables. */
import { ServerFlags, ServerSettings, integerSetting, runApp, runServerCommand, serverSettings } from '../serve/process';
import { SettingsError } from '../commands/failure';

export interface PoolCommandFlags extends ServerFlags {
  pool?: string;
  models?: string;
}

/** Settings of a pool process, from flags and `BOTSHARD_*` environment variables. */
export interface PoolSettings extends ServerSettings {
  pool: string;
  models?: string;
  /** BOTSHARD_MODEL_CACHE: folder for downloaded models. */
  modelCache?: string;
  /** BOTSHARD_S3_ENDPOINT: an S3-compatible endpoint (path-style requests). */
  s3Endpoint?: string;
  timeoutMs?: number;
  concurrency?: number;
  workers?: number;
  moveGraceMs?: number;
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
  const seconds = (name: string, v: string | undefined) => {
    const n = integerSetting(name, v, 0, 86_400);
    return n === undefined ? undefined : n * 1000;
  };
  return {
    ...serverSettings(flags, env),
    pool,
    models: flags.models ?? env.BOTSHARD_MODELS,
    modelCache: env.BOTSHARD_MODEL_CACHE || undefined,
    s3Endpoint: s3Endpoint(env.BOTSHARD_S3_ENDPOINT),
    timeoutMs: integerSetting('BOTSHARD_TIMEOUT_MS', env.BOTSHARD_TIMEOUT_MS, 1, 3_600_000),
    concurrency: integerSetting('BOTSHARD_CONCURRENCY', env.BOTSHARD_CONCURRENCY, 1, 100_000),
    workers: integerSetting('BOTSHARD_WORKERS', env.BOTSHARD_WORKERS, 1, 256),
    moveGraceMs: seconds('BOTSHARD_MOVE_GRACE_SECONDS', env.BOTSHARD_MOVE_GRACE_SECONDS),
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
  return runApp(app, s, app.poolMetrics.registry, { generation: app.pool.catalog?.generation });
}

/** The `botshard pool` command: starts in the background, returns nothing to print (logs are JSON lines). */
export function poolCommand(flags: PoolCommandFlags): string {
  return runServerCommand('pool', () => poolSettings(flags, process.env), startPool);
}
