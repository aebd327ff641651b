/**
 * `botshard haproxy`: the router's HAProxy mode. HAProxy carries the requests, REST and gRPC; this process
 * plans the catalog, writes HAProxy's configuration and maps, starts HAProxy (master-worker) and keeps its
 * maps in line with the catalog, the pools' readiness and the tenant keys through the Runtime API. It
 * answers gRPC's health and server metadata for HAProxy, on a loopback port.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CatalogIndex, openCatalog } from '../catalog';
import { SettingsError } from '../commands/failure';
import { freePort } from '../io/free-port';
import { poolAddress } from '../routing/addresses';
import { RouterCommandFlags, RouterSettings, grpcAddresses, poolUrlsFile, routerSettings } from '../routing/settings';
import { TenantKeys, checkKeysAtStart, keysRequired } from '../routing/tenants';
import { catalogWatcher } from '../serve/catalog';
import { GrpcEndpoint } from '../serve/grpc';
import { APP_DEFAULTS } from '../serve/app';
import { BINARY_EXTENSION } from '../oip/binary';
import { Log, ProbeAnswer, RunnableServer, integerSetting, runServer, runServerCommand } from '../serve/process';
import { CONTROL_LIVE_PATH, CONTROL_READY_PATH, STATUS_PATH, platformStatus, replicasAt } from '../status';
import { HaproxyApi } from './api';
import { HaproxyControl } from './control';
import { GRPC_FRONTEND } from './grpc-config';

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
  /**
   * HAProxy runs beside this process, not under it (a second container of the same pod sharing `stateDir`):
   * it starts once the configuration is written, reloads through its master socket, and stops on its own.
   */
  external: boolean;
}

export function haproxySettings(flags: HaproxyFlags, env: NodeJS.ProcessEnv): HaproxySettings {
  const settings: HaproxySettings = {
    ...routerSettings(flags, env),
    haproxyMetricsPort: integerSetting('--haproxy-metrics-port / BOTSHARD_HAPROXY_METRICS_PORT', flags.haproxyMetricsPort ?? env.BOTSHARD_HAPROXY_METRICS_PORT, 0, 65535) ?? 9101,
    bin: env.BOTSHARD_HAPROXY || 'haproxy',
    stateDir: env.BOTSHARD_HAPROXY_DIR || undefined,
    external: env.BOTSHARD_HAPROXY_EXTERNAL === '1' || env.BOTSHARD_HAPROXY_EXTERNAL === 'true',
  };
  if (settings.external && !settings.stateDir) throw new SettingsError('BOTSHARD_HAPROXY_EXTERNAL needs BOTSHARD_HAPROXY_DIR: the folder HAProxy reads its configuration from (shared with its container)');
  return settings;
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startHaproxyRouter(s: HaproxySettings): Promise<{ port: number; metricsPort: number; grpcPort: number; haproxyMetricsPort: number }> {
  process.title = 'botshard-haproxy';
  if (!s.external) haproxyVersion(s.bin);
  const log = jsonLog({ service: 'botshard-haproxy', pid: process.pid }, s.logLevel);
  const catalog = openCatalog(s.catalog).index;
  const address = s.poolUrlsFile ? poolUrlsFile(s.poolUrl) : poolAddress(s.poolUrl, catalog.platform.namespace);
  const keys = s.tenantKeys ? new TenantKeys(s.tenantKeys) : undefined;
  checkKeysAtStart(catalog, keys);
  const dir = s.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-haproxy-'));
  fs.mkdirSync(dir, { recursive: true });
  // HAProxy needs numbers in its configuration: `--port 0` picks free ones here.
  const port = s.port === 0 ? await freePort(s.host) : s.port;
  const grpcPort = s.grpcPort === 0 ? await freePort(s.host) : s.grpcPort;
  const haproxyMetricsPort = s.haproxyMetricsPort === 0 ? await freePort(s.host) : s.haproxyMetricsPort;

  let haproxy: DataPlane | undefined;
  // gRPC's health and server metadata, for HAProxy (which cannot answer a gRPC message itself) on loopback.
  const own: GrpcEndpoint = new GrpcEndpoint({
    name: 'botshard-router',
    version: VERSION,
    extensions: ['botshard_routing', 'botshard_haproxy', BINARY_EXTENSION],
    ready: (): boolean => control.ready,
    maxMessageBytes: APP_DEFAULTS.bodyLimit,
    log,
  });
  const controlGrpc: string = `127.0.0.1:${await own.listen(0, '127.0.0.1')}`;
  const control: HaproxyControl = new HaproxyControl({
    catalog,
    address,
    grpcAddress: grpcAddresses(s, catalog.platform.namespace),
    keys,
    log,
    config: { host: s.host, port, grpcPort, controlGrpc, metricsPort: haproxyMetricsPort, dir, tenantRate: s.tenantRate, version: VERSION },
    reload: () => haproxy!.reload(),
  });
  const config = control.prepare();
  haproxy = s.external ? await besideUs(dir, control.api) : await underUs(s.bin, config, dir, control.api, log);
  control.start();
  await control.sync();

  const watcher = catalogWatcher(log, {
    location: s.catalog,
    generation: catalog.generation,
    pollMs: s.pollMs,
    apply: (next) => void control.update(next.index),
    reloads: control.metrics.catalogReloads,
  });
  watcher.start();
  keys?.follow(s.pollMs ?? 5000);

  const stop = {
    following: () => {
      watcher.stop();
      keys?.stop();
    },
    haproxy: async () => {
      await haproxy.stop();
      if (!s.stateDir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  const running = await runServer(controlPlane({ port, grpcPort }, control, own, log, stop), s, control.metrics.registry, fields(catalog, control, haproxyMetricsPort, dir), {
    // The control container's probes (docs/router.md, "HAProxy mode"): its loop alive, the catalog applied to HAProxy.
    [CONTROL_LIVE_PATH]: async () => probe(control, 'live'),
    [CONTROL_READY_PATH]: async () => probe(control, 'ready'),
    [STATUS_PATH]: () => platformStatus({ router: { generation: control.generation, dataPlane: 'haproxy' }, pools: control.pools(), address, replicas: s.poolReplicas ? replicasAt(s.poolReplicas) : undefined }),
  });
  return { port, metricsPort: running.metricsPort, grpcPort, haproxyMetricsPort };
}

/** A probe of the control container: 200 or 503, with what it is based on. */
function probe(control: HaproxyControl, which: 'live' | 'ready'): ProbeAnswer {
  const h = control.health();
  return new ProbeAnswer(h[which], h.body);
}

/** What the "listening" line adds to the ports. */
function fields(catalog: CatalogIndex, control: HaproxyControl, haproxyMetricsPort: number, dir: string): object {
  return { haproxyMetricsPort, generation: control.generation, auth: keysRequired(catalog) ? 'tenant-keys' : 'none', dataPlane: 'haproxy', dir };
}

/**
 * The control plane as `runServer` runs it: HAProxy listens on both ports already. Its drain: not ready
 * first, then HAProxy stops taking connections and answers the requests in flight, REST and gRPC; then it
 * stops, closing the idle keep-alive connections (as the Node router does). A soft stop would keep those
 * until their next request, for as long as `hard-stop-after`. `stop`: following the catalog and the keys
 * (first: no change during the drain), and HAProxy itself (last).
 */
function controlPlane(ports: { port: number; grpcPort: number }, control: HaproxyControl, own: GrpcEndpoint, log: Log, stop: { following(): void; haproxy(): Promise<void> }): RunnableServer {
  return {
    lifecycle: log,
    listen: async () => ports,
    async drain() {
      await control.drain();
      control.stop();
      stop.following();
      // HAProxy already gone: nothing in flight.
      for (const frontend of ['botshard', GRPC_FRONTEND]) await control.api.command(`disable frontend ${frontend}`).catch(() => undefined);
      const inFlight = new RegExp(` fe=(botshard|${GRPC_FRONTEND}) `);
      while (inFlight.test(await control.api.command('show sess').catch(() => ''))) await sleep(50);
      await stop.haproxy();
      await own.close(1000);
    },
    // HAProxy answers the requests: none is this process's to cut off.
    unfinishedResponses: 0,
    exiting: () => ({}),
  };
}

function pidIn(info: string): string | undefined {
  return /^Pid: (\d+)/m.exec(info)?.[1];
}

/** HAProxy as the control plane drives it: reload its configuration, stop it. */
interface DataPlane {
  /** Resolves once a new worker with the new configuration serves. */
  reload(): Promise<void>;
  /** Resolves once HAProxy has stopped (or, beside us, once it is no longer ours to stop). */
  stop(): Promise<void>;
}

/** Waits for HAProxy to answer on its Runtime API socket. */
async function answering(api: HaproxyApi, withinMs: number): Promise<void> {
  for (const end = Date.now() + withinMs; !(await api.alive()); ) {
    if (Date.now() > end) throw new Error(`HAProxy did not open its Runtime API socket (${api.socket}) within ${withinMs / 1000} s`);
    await sleep(50);
  }
}

/** After `signal` (which starts a reload), waits until a new worker answers on the Runtime API. */
async function reloaded(api: HaproxyApi, signal: () => Promise<unknown>): Promise<void> {
  const before = pidIn(await api.command('show info'));
  await signal();
  for (let i = 0; i < 200; i++) {
    await sleep(50);
    const now = pidIn(await api.command('show info').catch(() => ''));
    if (now !== undefined && now !== before) return;
  }
  throw new Error('HAProxy did not reload within 10 s');
}

/**
 * HAProxy as our child (master-worker), checked, started and reloaded through its master socket as the
 * container beside us is. It runs under a shell that holds a pipe from us: if this process dies without
 * stopping it (SIGKILL, a crash), the pipe closes and the shell stops HAProxy, so no orphan keeps the port.
 */
async function underUs(bin: string, config: string, dir: string, api: HaproxyApi, log: Log): Promise<DataPlane> {
  const check = spawnSync(bin, ['-c', '-q', '-f', config], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`HAProxy refuses the generated configuration ${config}: ${(check.stderr || check.stdout).trim()}`);
  const master = path.join(dir, 'master.sock');
  const guard = '"$0" -W -db -q -S "$1" -f "$2" </dev/null & hp=$!; read _; kill -TERM $hp 2>/dev/null; wait $hp';
  const child: ChildProcess = spawn('sh', ['-c', guard, bin, master, config], { stdio: ['pipe', 'inherit', 'inherit'] });
  let stopping = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => {
    if (stopping) return;
    log.error({ code, signal }, 'HAProxy exited: the router exits too (its supervisor restarts it)');
    process.exit(1);
  });
  await answering(api, 10_000);
  const beside = await besideUs(dir, api);
  return {
    reload: beside.reload,
    async stop() {
      stopping = true;
      child.stdin!.end(); // the shell stops HAProxy
      await exited;
    },
  };
}

/**
 * HAProxy in another container of the pod, started on the configuration this process wrote into the shared
 * folder (`haproxy -W -S <dir>/master.sock -f <dir>/haproxy.cfg`): reloaded through its master socket; it
 * stops when its own container is told to (after its preStop pause, by when we have drained).
 */
async function besideUs(dir: string, api: HaproxyApi): Promise<DataPlane> {
  await answering(api, 120_000);
  const master = new HaproxyApi(path.join(dir, 'master.sock'));
  for (const end = Date.now() + 10_000; !(await master.command('show proc').then((p) => p.includes('master'), () => false)); ) {
    if (Date.now() > end) throw new Error(`HAProxy did not open its master socket (${master.socket}) within 10 s`);
    await sleep(50);
  }
  const reload = () => reloaded(api, () => master.command('reload'));
  // This control plane may be a restarted one, and HAProxy may hold maps older than the files it just
  // wrote (a catalog applied while it was down): HAProxy loads them now.
  await reload();
  return { reload, stop: async () => undefined };
}

/** The `botshard haproxy` command: starts in the background; logs are JSON lines. */
export function haproxyCommand(flags: HaproxyFlags): string {
  return runServerCommand('haproxy', () => haproxySettings(flags, process.env), startHaproxyRouter);
}
