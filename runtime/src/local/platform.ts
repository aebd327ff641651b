/**
 * The local platform of `botshard up`: the whole sharded platform on one machine. One process per pool
 * (the same `botshard pool` command a container runs) and the router, on loopback ports, reading a
 * catalog folder written the way kubelet writes a mounted ConfigMap. Editing the config re-plans and
 * swaps the catalog, so bots move live as in a cluster. Stopping drains the router, then the pools, and
 * leaves nothing behind (no process, no port, no temp folder). The processes themselves are run by the
 * supervisor (supervisor.ts); what is printed is in console.ts.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Catalog, writeCatalogFolder } from '../catalog';
import { loadAnyCatalog } from '../catalog/config';
import { DRAIN_MARGIN_MS, MOVE_GRACE_MS } from '../catalog/defaults';
import { SettingsError, isKnown } from '../commands/failure';
import { haproxyVersion } from '../haproxy/command';
import { writeAtomic } from '../io/atomic-write';
import { Topology, plan } from '../placement';
import { hashKey } from '../routing/tenants';
import { grpcPortBeside } from '../serve/process';
import { demoModelLines, stopSummary, upTable } from './console';
import { writeDemoModels } from './models';
import { Child, Supervisor } from './supervisor';

const BIN = path.join(__dirname, '../../bin/botshard.js');

export interface UpOptions {
  config: string;
  /** Router port. @default 8080 */
  port: number;
  /** The router's gRPC port. @default - the one after `port` (8081), any free one when `port` is 0 */
  grpcPort?: number;
  /** Model folder. @default - the catalog's modelRoot, next to the config */
  models?: string;
  /** Seconds each process drains on shutdown. @default 5 */
  drainSeconds?: number;
  /** How long a pool that no longer has bots keeps serving moved bots before it stops. @default MOVE_GRACE_MS (30000) */
  moveGraceMs?: number;
  /** Folder of tenant API key hashes for the router (the catalog must set `platform.auth: "tenant-keys"`). @default - one key per tenant generated for this run when the catalog requires keys */
  tenantKeys?: string;
  /** What carries the requests: the Node router, or HAProxy driven by `botshard haproxy` (needs `haproxy` installed). @default 'node' */
  router?: 'node' | 'haproxy';
  /** Where output goes. @default process.stdout */
  out?: NodeJS.WritableStream;
}

export class LocalPlatform {
  private readonly state = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-up-'));
  private readonly catalogDir = path.join(this.state, 'catalog');
  private readonly poolUrlsFile = path.join(this.state, 'pools.json');
  private readonly poolGrpcFile = path.join(this.state, 'pools-grpc.json');
  readonly logDir = path.join(this.state, 'logs');
  private readonly out: NodeJS.WritableStream;
  private readonly modelRoot: string;
  private readonly moveGraceMs: number;
  private readonly supervisor: Supervisor;
  private catalog!: Catalog;
  private topology!: Topology;
  private watching = false;
  /** Keys generated for this run when the catalog requires keys and none were given: tenant -> key. */
  private readonly demoKeys = new Map<string, string>();
  private keysDir?: string;

  constructor(private readonly opts: UpOptions) {
    this.out = opts.out ?? process.stdout;
    fs.mkdirSync(this.logDir);
    this.modelRoot = opts.models ?? '';
    this.moveGraceMs = opts.moveGraceMs ?? MOVE_GRACE_MS;
    const { BOTSHARD_TENANT_KEYS: _keys, ...env } = process.env; // the router gets `up`'s keys as a flag, or none
    this.supervisor = new Supervisor({
      logDir: this.logDir,
      say: (line) => this.say(line),
      args: (child) => this.args(child),
      env: {
        ...env,
        BOTSHARD_DRAIN_SECONDS: String(opts.drainSeconds ?? 5),
        BOTSHARD_POLL_MS: '200',
        BOTSHARD_MOVE_GRACE_SECONDS: String(Math.round(this.moveGraceMs / 1000)),
      },
      onListening: (child) => {
        if (child.kind === 'pool') this.writePoolUrls();
      },
    });
  }

  private say(line: string): void {
    this.out.write(`${line}\n`);
  }

  private models(catalog: Catalog): string {
    return this.modelRoot || path.resolve(path.dirname(this.opts.config), catalog.platform.modelRoot);
  }

  /** Validates, plans, writes models and catalog, starts every process and waits until all are ready. */
  async start(): Promise<void> {
    this.catalog = loadAnyCatalog(this.opts.config);
    this.topology = plan(this.catalog);
    if (this.opts.router === 'haproxy') haproxyVersion(process.env.BOTSHARD_HAPROXY || 'haproxy');
    if (this.opts.port !== 0) await checkPortFree(this.opts.port, '--port');
    if (this.routerGrpcPort !== 0) await checkPortFree(this.routerGrpcPort, '--grpc-port');
    this.keysDir = this.tenantKeys();
    this.reportDemoModels(this.catalog);
    writeCatalogFolder(this.catalogDir, this.catalog);
    this.writePoolUrls();
    for (const pool of this.topology.pools) this.supervisor.start({ name: pool.name, kind: 'pool', port: 0, grpcPort: 0 });
    this.supervisor.start({ name: 'router', kind: 'router', port: this.opts.port, grpcPort: this.routerGrpcPort });
    await this.supervisor.waitReady([...this.supervisor.children.values()], 180_000);
    this.print();
    fs.watchFile(this.opts.config, { interval: 300 }, (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs) void this.reload();
    });
    this.watching = true;
  }

  private get routerGrpcPort(): number {
    return this.opts.grpcPort ?? grpcPortBeside(this.opts.port);
  }

  private args(child: Child): string[] {
    const common = ['--port', String(child.port), '--grpc-port', String(child.grpcPort), '--metrics-port', '0', '--host', '127.0.0.1', '--catalog', this.catalogDir];
    if (child.kind === 'router') {
      const command = this.opts.router === 'haproxy' ? ['haproxy', '--haproxy-metrics-port', '0'] : ['router'];
      return [BIN, ...command, ...common, '--pool-urls', this.poolUrlsFile, '--pool-grpc-urls', this.poolGrpcFile, ...(this.keysDir ? ['--tenant-keys', this.keysDir] : [])];
    }
    return [BIN, 'pool', '--pool', child.name, ...common, '--models', this.models(this.catalog)];
  }

  /**
   * The router's keys folder: the one given (only with `platform.auth: "tenant-keys"`), or, when the
   * catalog requires keys and none are given, one key per tenant generated into this run's folder.
   */
  private tenantKeys(): string | undefined {
    const required = this.catalog.platform.auth === 'tenant-keys';
    const given = this.opts.tenantKeys;
    if (given && !required) {
      throw new SettingsError(`tenant keys are given (${given}) but ${this.opts.config} sets no authentication: set platform.auth to 'tenant-keys' to require API keys, or drop --tenant-keys / BOTSHARD_TENANT_KEYS`);
    }
    if (!required) return undefined;
    if (given) return path.resolve(given);
    const dir = path.join(this.state, 'tenant-keys');
    fs.mkdirSync(dir);
    for (const tenant of this.catalog.tenants) {
      const key = `bsk_${tenant.id}_${randomBytes(12).toString('hex')}`;
      this.demoKeys.set(tenant.id, key);
      fs.writeFileSync(path.join(dir, tenant.id), `${hashKey(key)}\n`);
    }
    return dir;
  }

  /** The router finds pools through this file; it re-reads it when it changes. */
  private writePoolUrls(): void {
    const urls: Record<string, string> = {};
    const grpc: Record<string, string> = {};
    for (const c of this.supervisor.children.values()) {
      if (c.kind !== 'pool' || c.retired) continue;
      if (c.port > 0) urls[c.name] = `http://127.0.0.1:${c.port}`;
      if (c.grpcPort > 0) grpc[c.name] = `127.0.0.1:${c.grpcPort}`;
    }
    writeAtomic(this.poolUrlsFile, JSON.stringify(urls, null, 2));
    writeAtomic(this.poolGrpcFile, JSON.stringify(grpc, null, 2));
  }

  /** Writes the demo models the catalog's bots lack and says what was written (the folder named is the current catalog's). */
  private reportDemoModels(catalog: Catalog): void {
    const written = writeDemoModels(catalog, this.models(catalog));
    for (const line of demoModelLines(written, this.models(this.catalog))) this.say(line);
  }

  private print(): void {
    const view = {
      catalog: this.catalog,
      topology: this.topology,
      children: this.supervisor.children,
      haproxy: this.opts.router === 'haproxy',
      demoKeys: this.demoKeys,
      keysDir: this.keysDir,
      logDir: this.logDir,
      config: this.opts.config,
    };
    for (const line of upTable(view)) this.say(line);
  }

  /** Re-plans after a config edit: new pools start, the catalog swaps, pools without bots retire after the grace period. */
  async reload(): Promise<void> {
    if (this.supervisor.stopping) return;
    let catalog: Catalog;
    let topology: Topology;
    try {
      catalog = loadAnyCatalog(this.opts.config);
      topology = plan(catalog);
    } catch (e) {
      if (isKnown(e)) {
        this.say(`[up] ${this.opts.config} changed but is not valid; still serving generation ${this.catalog.generation}:\n${(e as Error).message}`);
        return;
      }
      throw e;
    }
    if (catalog.generation === this.catalog.generation) return;
    const before = new Set(this.topology.pools.map((p) => p.name));
    const now = new Set(topology.pools.map((p) => p.name));
    this.reportDemoModels(catalog);
    this.catalog = catalog;
    this.topology = topology;
    writeCatalogFolder(this.catalogDir, catalog);
    const children = this.supervisor.children;
    const added = topology.pools.filter((p) => !before.has(p.name) || children.get(p.name)?.retired);
    for (const pool of added) {
      const existing = children.get(pool.name);
      if (existing) existing.retired = false;
      if (!Supervisor.running(existing)) this.supervisor.start({ name: pool.name, kind: 'pool', port: 0, grpcPort: 0 });
    }
    const removed = [...before].filter((p) => !now.has(p));
    this.say(`[up] ${this.opts.config} changed: generation ${catalog.generation}; pools added: ${added.map((p) => p.name).join(', ') || 'none'}; pools removed: ${removed.join(', ') || 'none'}`);
    for (const name of removed) setTimeout(() => this.retire(name), this.moveGraceMs + DRAIN_MARGIN_MS).unref();
    try {
      await this.supervisor.waitReady(added.map((p) => children.get(p.name)!), 180_000);
      this.print();
    } catch {
      // stopping, or a pool that keeps failing: its restarts are reported
    }
  }

  /**
   * Stops a pool the catalog no longer has, once its moved bots are served elsewhere: it keeps serving
   * them for the move grace, and the drain margin lets it answer what it took before the router moved on.
   */
  private retire(name: string): void {
    if (this.supervisor.stopping || this.topology.pools.some((p) => p.name === name)) return;
    const child = this.supervisor.children.get(name);
    if (!child) return;
    child.retired = true;
    this.writePoolUrls();
    child.proc?.kill('SIGTERM');
    this.say(`[up] pool ${name} retired`);
  }

  /**
   * Stops the router (it drains in-flight requests), then the pools; kills what does not exit in time.
   * Resolves with what happened: which processes drained, how many responses their drains cut off, and
   * how many requests the router says it never answered (when it says: the HAProxy mode does not).
   */
  async stop(): Promise<string> {
    if (this.supervisor.stopping) return '';
    if (this.watching) fs.unwatchFile(this.opts.config);
    const stopped = await this.supervisor.stop(((this.opts.drainSeconds ?? 5) + 5) * 1000);
    // Catalog, pool addresses and logs: nothing of this run is left in the temp folder.
    fs.rmSync(this.state, { recursive: true, force: true });
    return stopSummary(stopped);
  }

  /** Kills every child at once (a second Ctrl-C), and removes this run's temp folder. */
  kill(): void {
    this.supervisor.kill();
    fs.rmSync(this.state, { recursive: true, force: true });
  }
}

/** Fails at once, naming the port, when something already listens on it (instead of a router that restarts forever). */
function checkPortFree(port: number, flag: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE' ? new SettingsError(`port ${port} is already in use, so the router cannot listen on it: stop what holds it (e.g. an earlier botshard up), or pass ${flag} N (${flag} 0 picks a free port)`) : e);
    });
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}
