/**
 * `botshard haproxy`: the router's HAProxy mode. HAProxy carries the requests; this process plans the
 * catalog, writes HAProxy's configuration and maps, starts HAProxy (master-worker) and keeps its maps in
 * line with the catalog, the pools' readiness and the tenant keys through the Runtime API.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCatalog } from '../catalog';
import { CatalogWatcher } from '../catalog/watch';
import { SettingsError } from '../commands/failure';
import { RouterCommandFlags, RouterSettings, poolUrlsFile, routerSettings } from '../router/command';
import { TenantKeys } from '../router/tenants';
import { poolAddress } from '../router/upstream';
import { Log, exitOnSignals, exitWithParent, integerSetting, portOf, runServerCommand, serveMetrics } from '../serve/process';
import { HaproxyControl } from './control';

const VERSION: string = require('../../package.json').version;

export interface HaproxyFlags extends RouterCommandFlags {
  haproxyMetricsPort?: string;
}

export interface HaproxySettings extends RouterSettings {
  /** Port of HAProxy's own Prometheus exporter. */
  haproxyMetricsPort: number;
  /** The haproxy binary. */
  bin: string;
  /** Where the configuration, maps and Runtime API socket go. @default - a new temporary folder */
  stateDir?: string;
}

export function haproxySettings(flags: HaproxyFlags, env: NodeJS.ProcessEnv): HaproxySettings {
  return {
    ...routerSettings(flags, env),
    haproxyMetricsPort: integerSetting('--haproxy-metrics-port / BOTSHARD_HAPROXY_METRICS_PORT', flags.haproxyMetricsPort ?? env.BOTSHARD_HAPROXY_METRICS_PORT, 0, 65535) ?? 9101,
    bin: env.BOTSHARD_HAPROXY || 'haproxy',
    stateDir: env.BOTSHARD_HAPROXY_DIR || undefined,
  };
}

/** HAProxy's version, or a SettingsError saying how to install it. */
export function haproxyVersion(bin: string): string {
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  const version = /HAProxy version (\d+\.\d+)/.exec(r.stdout ?? '')?.[1];
  if (r.error || !version) {
    throw new SettingsError(`HAProxy is not installed (no "${bin}" to run): install it (Debian/Ubuntu: apt-get install haproxy; 2.4 or later), set BOTSHARD_HAPROXY to its path, or use the Node router (botshard router)`);
  }
  const [major, minor] = version.split('.').map(Number);
  if (major < 2 || (major === 2 && minor < 4)) throw new SettingsError(`HAProxy ${version} is too old for botshard's HAProxy mode: 2.4 or later is needed (map versions, http-request return)`);
  return version;
}

/** JSON lines in pino's shape (level numbers, `msg`), as the pools and the Node router log. */
function jsonLog(base: object, level: string): Log & { debug(obj: object, msg: string): void } {
  const levels: Record<string, number> = { debug: 20, info: 30, warn: 40, error: 50 };
  const min = levels[level] ?? 30;
  const line = (n: number) => (obj: object, msg: string) => {
    if (n >= min || msg === 'listening' || msg === 'drained: exiting') process.stdout.write(`${JSON.stringify({ level: n, time: Date.now(), ...base, ...obj, msg })}\n`);
  };
  return { debug: line(20), info: line(30), warn: line(40), error: line(50) };
}

/** A free port on the host (for `--port 0`: HAProxy needs a number in its configuration). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startHaproxyRouter(s: HaproxySettings): Promise<{ port: number; metricsPort: number; haproxyMetricsPort: number }> {
  process.title = 'botshard-haproxy';
  haproxyVersion(s.bin);
  const log = jsonLog({ service: 'botshard-haproxy', pid: process.pid }, s.logLevel);
  const catalog = loadCatalog(s.catalog);
  const address = s.poolUrlsFile ? poolUrlsFile(s.poolUrl) : poolAddress(s.poolUrl, catalog.platform.namespace);
  const auth = catalog.platform.auth === 'tenant-keys';
  const keys = s.tenantKeys ? new TenantKeys(s.tenantKeys) : undefined;
  if (auth && !keys) throw new SettingsError('the catalog requires API keys (platform.auth: "tenant-keys") and no tenant keys folder is given: pass --tenant-keys DIR or set BOTSHARD_TENANT_KEYS');
  if (auth && keys?.problem) throw new SettingsError(`the catalog requires API keys (platform.auth: "tenant-keys") and ${keys.problem}`);
  const dir = s.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-haproxy-'));
  fs.mkdirSync(dir, { recursive: true });
  const port = s.port === 0 ? await freePort(s.host) : s.port;
  const haproxyMetricsPort = s.haproxyMetricsPort === 0 ? await freePort(s.host) : s.haproxyMetricsPort;

  let child: ChildProcess | undefined;
  const control = new HaproxyControl({
    catalog,
    address,
    keys,
    log,
    config: { host: s.host, port, metricsPort: haproxyMetricsPort, dir, tenantRate: s.tenantRate, version: VERSION },
    reload: async () => {
      const before = await control.api.command('show info');
      child?.kill('SIGUSR2');
      for (let i = 0; i < 200; i++) {
        await sleep(50);
        const now = await control.api.command('show info').catch(() => '');
        if (now.includes('Pid:') && pidIn(now) !== pidIn(before)) return;
      }
      throw new Error('HAProxy did not reload within 10 s');
    },
  });
  const config = control.prepare();
  const check = spawnSync(s.bin, ['-c', '-q', '-f', config], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`HAProxy refuses the generated configuration ${config}: ${(check.stderr || check.stdout).trim()}`);

  child = spawn(s.bin, ['-W', '-db', '-q', '-f', config], { stdio: ['ignore', 'inherit', 'inherit'] });
  let stopping = false;
  child.once('exit', (code, signal) => {
    if (stopping) return;
    log.error({ code, signal }, 'HAProxy exited: the router exits too (its supervisor restarts it)');
    process.exit(1);
  });
  for (let i = 0; !(await control.api.alive()); i++) {
    if (i > 200) throw new Error(`HAProxy did not open its Runtime API socket (${path.join(dir, 'admin.sock')}) within 10 s`);
    await sleep(50);
  }
  control.start();
  await control.sync();

  const watcher = new CatalogWatcher({
    location: s.catalog,
    generation: catalog.generation,
    pollMs: s.pollMs,
    onCatalog: (next) => {
      try {
        void control.update(next);
      } catch (e) {
        control.metrics.catalogReloads.inc({ result: 'invalid' });
        log.error({ generation: next.generation, problems: (e as Error).message }, 'catalog changed but cannot be used: ignored, the current one keeps serving');
        return;
      }
      control.metrics.catalogReloads.inc({ result: 'applied' });
      log.info({ generation: next.generation }, 'catalog changed: applied');
    },
    onInvalid: (e) => {
      control.metrics.catalogReloads.inc({ result: 'invalid' });
      log.error({ problems: e.message }, 'catalog changed but cannot be used: ignored, the current one keeps serving');
    },
  });
  watcher.start();
  keys?.follow(s.pollMs ?? 5000);

  const metrics = await serveMetrics(control.metrics.registry, s.metricsPort, s.host);
  const metricsPort = portOf(metrics);
  log.info({ port, metricsPort, haproxyMetricsPort, host: s.host, generation: control.generation, auth: auth ? 'tenant-keys' : 'none', dataPlane: 'haproxy', dir }, 'listening');

  exitOnSignals(log, s.drainSeconds, async () => {
    // Not ready first, then HAProxy's soft stop: it stops listening and ends once in-flight requests are answered.
    await control.drain();
    control.stop();
    watcher.stop();
    keys?.stop();
    stopping = true;
    // HAProxy stops taking connections and answers the requests in flight; then it stops, closing the
    // idle keep-alive connections (as the Node router does). A soft stop would keep those until their
    // next request, for as long as `hard-stop-after`.
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    await control.api.command('disable frontend botshard');
    while (/ fe=botshard /.test(await control.api.command('show sess').catch(() => ''))) await sleep(50);
    child!.kill('SIGTERM');
    await exited;
    await new Promise<void>((resolve) => metrics.close(() => resolve()));
    if (!s.stateDir) fs.rmSync(dir, { recursive: true, force: true });
  });
  exitWithParent();
  return { port, metricsPort, haproxyMetricsPort };
}

function pidIn(info: string): string | undefined {
  return /^Pid: (\d+)/m.exec(info)?.[1];
}

/** The `botshard haproxy` command: starts in the background; logs are JSON lines. */
export function haproxyCommand(flags: HaproxyFlags): string {
  return runServerCommand('haproxy', () => haproxySettings(flags, process.env), startHaproxyRouter);
}
