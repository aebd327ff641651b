/** `botshard router`: runs the router until SIGTERM. Flags win over environment variables. */
import * as fs from 'node:fs';
import { CatalogError } from '../catalog';
import { PlacementError } from '../placement';
import { SettingsError, exitOnSignals, exitWithParent, integerSetting, portOf, serveMetrics } from '../serve/process';
import type { PoolAddress } from './upstream';

export interface RouterCommandFlags {
  catalog?: string;
  poolUrl?: string;
  poolUrls?: string;
  port?: string;
  metricsPort?: string;
  host?: string;
  tenantKeys?: string;
}

export interface RouterSettings {
  catalog: string;
  /** A template with {pool}, or a JSON file mapping pool names to URLs (local mode; re-read when it changes). */
  poolUrl: string;
  poolUrlsFile: boolean;
  port: number;
  metricsPort: number;
  host: string;
  drainSeconds: number;
  tenantKeys?: string;
  tenantRate?: number;
  pollMs?: number;
  logLevel: string;
}

export function routerSettings(flags: RouterCommandFlags, env: NodeJS.ProcessEnv): RouterSettings {
  const catalog = flags.catalog ?? env.BOTSHARD_CATALOG;
  if (!catalog) throw new SettingsError('the catalog is missing: pass --catalog PATH or set BOTSHARD_CATALOG (a catalog .json or the folder where its ConfigMaps are mounted)');
  const map = flags.poolUrls ?? env.BOTSHARD_POOL_URLS;
  const template = flags.poolUrl ?? env.BOTSHARD_POOL_URL;
  if (!map && !template) throw new SettingsError('pool addresses are missing: pass --pool-url http://{pool}.{namespace}.svc.cluster.local:8080 (or set BOTSHARD_POOL_URL), or --pool-urls FILE');
  const keys = flags.tenantKeys ?? env.BOTSHARD_TENANT_KEYS;
  return {
    catalog,
    poolUrl: map ?? template!,
    poolUrlsFile: map !== undefined,
    port: integerSetting('--port / BOTSHARD_PORT', flags.port ?? env.BOTSHARD_PORT, 0, 65535) ?? 8080,
    metricsPort: integerSetting('--metrics-port / BOTSHARD_METRICS_PORT', flags.metricsPort ?? env.BOTSHARD_METRICS_PORT, 0, 65535) ?? 9090,
    host: flags.host ?? env.BOTSHARD_HOST ?? '0.0.0.0',
    drainSeconds: integerSetting('BOTSHARD_DRAIN_SECONDS', env.BOTSHARD_DRAIN_SECONDS, 0, 3600) ?? 20,
    // A Secret mounted with `optional: true` may be absent: auth is on only when the folder holds keys.
    tenantKeys: keys && fs.existsSync(keys) && fs.readdirSync(keys).some((f) => !f.startsWith('.')) ? keys : undefined,
    tenantRate: integerSetting('BOTSHARD_TENANT_RATE', env.BOTSHARD_TENANT_RATE, 1, 10_000_000),
    pollMs: integerSetting('BOTSHARD_POLL_MS', env.BOTSHARD_POLL_MS, 10, 3_600_000),
    logLevel: env.BOTSHARD_LOG_LEVEL ?? 'info',
  };
}

/** Pool addresses from a JSON file `{ "<pool>": "http://127.0.0.1:port" }`, re-read when the file changes
 * (checked at most every 200 ms: not a file system call per request). */
export function poolUrlsFile(file: string): PoolAddress {
  let mtime = -1;
  let checked = 0;
  let urls: Record<string, string> = {};
  return (pool) => {
    const now = Date.now();
    if (now - checked >= 200 || urls[pool] === undefined) {
      checked = now;
      try {
        const m = fs.statSync(file).mtimeMs;
        if (m !== mtime) {
          urls = JSON.parse(fs.readFileSync(file, 'utf8'));
          mtime = m;
        }
      } catch {
        // keep the last good map: the file may be mid-write
      }
    }
    return urls[pool];
  };
}

/** Starts the router and its metrics port; drains on SIGTERM/SIGINT. Resolves once listening. */
export async function startRouter(s: RouterSettings): Promise<{ port: number; metricsPort: number }> {
  process.title = 'botshard-router';
  const { buildRouter } = await import('./server');
  const app = buildRouter({
    catalog: s.catalog,
    poolUrl: s.poolUrlsFile ? poolUrlsFile(s.poolUrl) : s.poolUrl,
    tenantKeys: s.tenantKeys,
    tenantRate: s.tenantRate,
    pollMs: s.pollMs,
    logger: { level: s.logLevel, base: { service: 'botshard-router', pid: process.pid } },
  });
  await app.listen({ port: s.port, host: s.host });
  const metrics = await serveMetrics(app.router.metrics.registry, s.metricsPort, s.host);
  const port = portOf(app.server);
  const metricsPort = portOf(metrics);
  // Lifecycle lines are logged whatever the level: tools read the bound ports from "listening".
  const lifecycle = app.log.child({}, { level: 'info' });
  lifecycle.info({ port, metricsPort, host: s.host, generation: app.router.table.generation, auth: s.tenantKeys !== undefined }, 'listening');
  exitOnSignals(lifecycle, s.drainSeconds, async () => {
    app.router.ready = false;
    await app.close(); // waits for in-flight requests; new ones get 503
    await new Promise<void>((resolve) => metrics.close(() => resolve()));
  });
  exitWithParent();
  return { port, metricsPort };
}

/** The `botshard router` command: starts in the background; logs are JSON lines. */
export function routerCommand(flags: RouterCommandFlags): string {
  let settings: RouterSettings;
  try {
    settings = routerSettings(flags, process.env);
  } catch (e) {
    process.stderr.write(`botshard router: ${(e as Error).message}\n`);
    process.exit(2);
  }
  startRouter(settings).catch((e: Error) => {
    const known = e instanceof CatalogError || e instanceof PlacementError || e instanceof SettingsError || (e as NodeJS.ErrnoException).code === 'EADDRINUSE';
    process.stderr.write(`botshard router: ${known ? e.message : (e.stack ?? e.message)}\n`);
    process.exit(1);
  });
  return '';
}
