/** `botshard router`: runs the router until SIGTERM. Flags win over environment variables. */
import { runApp, runServerCommand } from '../serve/process';
import { STATUS_PATH } from '../status';
import type { PoolAddress } from '../routing/addresses';
import { RouterCommandFlags, RouterSettings, grpcAddresses, poolUrlsFile, routerSettings } from '../routing/settings';

/** Starts the router and its metrics port; drains on SIGTERM/SIGINT. Resolves once listening. */
export async function startRouter(s: RouterSettings): Promise<{ port: number; metricsPort: number; grpcPort?: number }> {
  process.title = 'botshard-router';
  const { buildRouter } = await import('./server');
  // The namespace of a template is the catalog's, known once the router has opened it.
  let grpc: PoolAddress = () => undefined;
  const app = buildRouter({
    catalog: s.catalog,
    poolUrl: s.poolUrlsFile ? poolUrlsFile(s.poolUrl) : s.poolUrl,
    poolGrpc: (pool) => grpc(pool),
    poolReplicas: s.poolReplicas,
    tenantKeys: s.tenantKeys,
    tenantRate: s.tenantRate,
    pollMs: s.pollMs,
    logger: { level: s.logLevel, base: { service: 'botshard-router', pid: process.pid } },
  });
  grpc = grpcAddresses(s, app.router.table.catalog.platform.namespace);
  // `botshard status` reads the platform's state on the metrics port, which only monitoring may reach.
  const { port, metricsPort, grpcPort } = await runApp(app, s, app.router.metrics.registry, { generation: app.router.table.generation, auth: app.router.table.catalog.platform.auth ?? 'none' }, { [STATUS_PATH]: () => app.router.status() });
  return { port, metricsPort, grpcPort };
}

/** The `botshard router` command: starts in the background; logs are JSON lines. */
export function routerCommand(flags: RouterCommandFlags): string {
  return runServerCommand('router', () => routerSettings(flags, process.env), startRouter);
}
