/**
 * `botshard up`: the whole sharded platform on one machine. One process per pool (the same
 * `botshard pool` command a container runs) and the router, on loopback ports, reading a catalog
 * folder written the way kubelet writes a mounted ConfigMap. Editing the config re-plans and swaps the
 * catalog, so bots move live as in a cluster. Crashed processes restart with backoff; Ctrl-C, SIGTERM
 * or the end of the process that started `up` drains the router, then the pools, and leaves nothing
 * behind (no process, no port, no temp folder).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Catalog, formatMemory, writeCatalogFolder } from '../catalog';
import { nodeArgs } from '../node-options';
import { loadAnyCatalog } from '../catalog/config';
import { Topology, plan } from '../placement';
import { table } from '../commands/output';
import { haproxyVersion } from '../haproxy/command';
import { hashKey } from '../router/tenants';
import { SettingsError, exitWithFailure, isKnown } from '../commands/failure';
import { grpcPortBeside } from '../serve/process';
import { WriteResult, writeDemoModels } from './models';

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
  /** How long a pool that no longer has bots keeps serving moved bots before it stops. @default 30000 */
  moveGraceMs?: number;
  /** Folder of tenant API key hashes for the router (the catalog must set `platform.auth: "tenant-keys"`). @default - one key per tenant generated for this run when the catalog requires keys */
  tenantKeys?: string;
  /** What carries the requests: the Node router, or HAProxy driven by `botshard haproxy` (needs `haproxy` installed). @default 'node' */
  router?: 'node' | 'haproxy';
  /** Where output goes. @default process.stdout */
  out?: NodeJS.WritableStream;
}

interface Child {
  name: string;
  kind: 'pool' | 'router';
  /** Port to listen on: 0 until the first start has bound one, then kept across restarts. */
  port: number;
  /** Its gRPC port, the same way (0: none yet). */
  grpcPort: number;
  /** Its metrics port, once listening (the router's serves `botshard status`). */
  metricsPort?: number;
  proc?: ChildProcess;
  ready: boolean;
  restarts: number;
  backoffMs: number;
  /** Set when the child should not be restarted. */
  retired: boolean;
  startedAt: number;
  /** Has answered ready since it was last started. */
  wasReady: boolean;
  /** Last line it wrote to stderr (why it exited, when it did at start-up). */
  lastError?: string;
  /** Its "drained" line: how many responses the drain cut off (0 unless the drain limit passed or a bug). */
  drained?: { unfinished: number };
  /** The router's count of requests it never answered while it stopped (botshard_router_requests_aborted_total), from its "drained" line or, past its drain limit, its last line. */
  aborted?: number;
}

export class LocalPlatform {
  private readonly state = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-up-'));
  private readonly catalogDir = path.join(this.state, 'catalog');
  private readonly poolUrlsFile = path.join(this.state, 'pools.json');
  private readonly poolGrpcFile = path.join(this.state, 'pools-grpc.json');
  readonly logDir = path.join(this.state, 'logs');
  private readonly children = new Map<string, Child>();
  private readonly out: NodeJS.WritableStream;
  private readonly modelRoot: string;
  private catalog!: Catalog;
  private topology!: Topology;
  private stopping = false;
  private watching = false;
  /** Why `up` cannot go on: a child that exits at start-up because of its settings is not restarted. */
  private fatal?: Error;
  /** Keys generated for this run when the catalog requires keys and none were given: tenant -> key. */
  private readonly demoKeys = new Map<string, string>();
  private keysDir?: string;

  constructor(private readonly opts: UpOptions) {
    this.out = opts.out ?? process.stdout;
    fs.mkdirSync(this.logDir);
    this.modelRoot = opts.models ?? '';
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
    this.reportDemoModels(writeDemoModels(this.catalog, this.models(this.catalog)));
    writeCatalogFolder(this.catalogDir, this.catalog);
    this.writePoolUrls();
    for (const pool of this.topology.pools) this.spawn({ name: pool.name, kind: 'pool', port: 0, grpcPort: 0 });
    this.spawn({ name: 'router', kind: 'router', port: this.opts.port, grpcPort: this.routerGrpcPort });
    await this.waitReady([...this.children.values()], 180_000);
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

  private spawn(spec: Pick<Child, 'name' | 'kind' | 'port' | 'grpcPort'>): Child {
    const child: Child = this.children.get(spec.name) ?? { ...spec, ready: false, restarts: 0, backoffMs: 500, retired: false, startedAt: 0, wasReady: false };
    this.children.set(spec.name, child);
    child.ready = false;
    child.wasReady = false;
    child.startedAt = Date.now();
    const log = fs.createWriteStream(path.join(this.logDir, `${child.name}.log`), { flags: 'a' });
    // Its own process group: a Ctrl-C in the terminal reaches `up` only, which stops the router before the pools.
    const { BOTSHARD_TENANT_KEYS: _keys, ...env } = process.env; // the router gets `up`'s keys as a flag, or none
    const proc = spawn(process.execPath, [...nodeArgs(), ...this.args(child)], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...env,
        BOTSHARD_PARENT_PID: String(process.pid),
        BOTSHARD_DRAIN_SECONDS: String(this.opts.drainSeconds ?? 5),
        BOTSHARD_POLL_MS: '200',
        BOTSHARD_MOVE_GRACE_SECONDS: String(Math.round((this.opts.moveGraceMs ?? 30_000) / 1000)),
      },
    });
    child.proc = proc;
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      log.write(`${line}\n`);
      let entry: { msg?: string; port?: number; metricsPort?: number; grpcPort?: number; level?: number; unfinished?: number; aborted?: number };
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if (entry.msg === 'listening' && typeof entry.port === 'number') {
        child.port = entry.port;
        if (typeof entry.metricsPort === 'number') child.metricsPort = entry.metricsPort;
        if (typeof entry.grpcPort === 'number') child.grpcPort = entry.grpcPort;
        if (child.kind === 'pool') this.writePoolUrls();
      }
      if (entry.msg === 'drained: exiting') child.drained = { unfinished: entry.unfinished ?? 0 };
      if (typeof entry.aborted === 'number' && (entry.msg === 'drained: exiting' || entry.msg?.startsWith('drain took longer'))) child.aborted = entry.aborted;
      if ((entry.level ?? 0) >= 50) this.say(`[${child.name}] ${entry.msg}`);
    });
    readline.createInterface({ input: proc.stderr! }).on('line', (line) => {
      log.write(`${line}\n`);
      child.lastError = line;
      this.say(`[${child.name}] ${line}`);
    });
    proc.on('exit', (code, signal) => {
      log.end();
      if (this.stopping || child.retired || child.proc !== proc) return;
      child.ready = false;
      // Exit 2 (bad settings) or 1 before it was ever ready (it could not start): a restart would fail the same way.
      if (code === 2 || (code === 1 && !child.wasReady)) {
        child.retired = true;
        this.fatal = new SettingsError(`${child.kind} ${child.name} could not start (exit code ${code}): ${child.lastError ?? 'see its log'}`);
        this.say(`[up] ${child.kind} ${child.name} could not start (exit code ${code}); not restarting it`);
        return;
      }
      child.restarts += 1;
      const ranLong = Date.now() - child.startedAt > 30_000;
      child.backoffMs = ranLong ? 500 : Math.min(child.backoffMs * 2, 10_000);
      this.say(`[up] ${child.kind} ${child.name} exited (${signal ?? `code ${code}`}); restart ${child.restarts} in ${child.backoffMs} ms`);
      setTimeout(() => {
        if (this.stopping || child.retired) return;
        this.spawn(child);
        this.waitReady([child], 180_000).then(
          () => this.say(`[up] ${child.kind} ${child.name} is back on port ${child.port}`),
          () => undefined,
        );
      }, child.backoffMs).unref();
    });
    return child;
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
    for (const c of this.children.values()) {
      if (c.kind !== 'pool' || c.retired) continue;
      if (c.port > 0) urls[c.name] = `http://127.0.0.1:${c.port}`;
      if (c.grpcPort > 0) grpc[c.name] = `127.0.0.1:${c.grpcPort}`;
    }
    for (const [file, map] of [[this.poolUrlsFile, urls], [this.poolGrpcFile, grpc]] as const) {
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(map, null, 2));
      fs.renameSync(`${file}.tmp`, file);
    }
  }

  private async waitReady(children: Child[], timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (const child of children) {
      while (!child.ready) {
        if (this.fatal) throw this.fatal;
        if (this.stopping) throw new Error('stopping');
        if (Date.now() > end) throw new Error(`${child.kind} ${child.name} was not ready after ${timeoutMs / 1000} s: see ${path.join(this.logDir, `${child.name}.log`)}`);
        if (child.port > 0) {
          try {
            const res = await fetch(`http://127.0.0.1:${child.port}/v2/health/ready`, { signal: AbortSignal.timeout(1000) });
            await res.arrayBuffer();
            child.ready = res.status === 200;
            child.wasReady ||= child.ready;
          } catch {
            // not listening yet
          }
        }
        if (!child.ready) await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Says which demo models were written and why; your own model files are never overwritten. */
  private reportDemoModels(r: WriteResult): void {
    const root = this.models(this.catalog);
    const list = (paths: string[]) => paths.slice(0, 5).join(', ') + (paths.length > 5 ? `, and ${paths.length - 5} more` : '');
    if (r.written.length > 0) this.say(`wrote ${r.written.length} demo models to ${root}, because these model files were missing: ${list(r.written)} (demo models answer the config's example utterances; put your own files at these paths to use them)`);
    if (r.updated.length > 0) this.say(`updated ${r.updated.length} demo models in ${root} to the config's intents: ${list(r.updated)}`);
    if (r.kept.length > 0) this.say(`using your own model files (not demo models) for: ${list(r.kept)}`);
  }

  /** The table of pools and a request to try. */
  private print(): void {
    const rows = this.topology.pools.map((p) => {
      const c = this.children.get(p.name)!;
      return [p.name, p.group, String(p.bots.length), `${formatMemory(p.used)} / ${formatMemory(p.budget)}`, String(c.port), String(c.grpcPort || '-'), String(c.proc?.pid ?? '-')];
    });
    const router = this.children.get('router')!;
    const haproxy = this.opts.router === 'haproxy';
    rows.push([haproxy ? 'router (HAProxy)' : 'router', '-', String(this.topology.assignment.size), '-', String(router.port), String(router.grpcPort), String(router.proc?.pid ?? '-')]);
    this.say(`\nbotshard is up: catalog generation ${this.catalog.generation}, ${this.topology.assignment.size} bots in ${this.topology.pools.length} pools\n`);
    this.say(table(['POOL', 'GROUP', 'BOTS', 'MEMORY', 'PORT', 'GRPC', 'PID'], rows, [false, false, true, true, true, true, true]));
    const bot = this.catalog.bots.find((b) => b.intents[0]?.examples.length) ?? this.catalog.bots[0];
    if (bot) {
      const text = bot.intents[0].examples[0] ?? 'hello';
      const demoKey = this.demoKeys.get(bot.tenant);
      const auth = demoKey ? ` -H 'authorization: Bearer ${demoKey}'` : this.keysDir ? ' -H "authorization: Bearer $BOTSHARD_API_KEY"' : '';
      this.say(`\ntry it:\n  curl -s http://127.0.0.1:${router.port}/v1/bots/${bot.id}/predict${auth} -H 'content-type: application/json' -d '${JSON.stringify({ text }).replace(/'/g, "'\\''")}'`);
      if (this.keysDir && !demoKey) this.say(`  (BOTSHARD_API_KEY: an API key of tenant "${bot.tenant}", whose SHA-256 is in ${this.keysDir}/${bot.tenant})`);
      this.say(`gRPC (Open Inference Protocol, inference.GRPCInferenceService; README "gRPC and binary tensors"): 127.0.0.1:${router.grpcPort}`);
    }
    if (this.demoKeys.size > 0) {
      this.say(`\nAPI keys generated for this run (platform.auth is "tenant-keys"; pass --tenant-keys DIR to use your own):`);
      for (const [tenant, key] of this.demoKeys) this.say(`  ${tenant}: ${key}`);
    }
    const status = router.metricsPort ? `\nstatus: npx botshard status --url http://127.0.0.1:${router.metricsPort}` : '';
    this.say(`${status}\nlogs: ${this.logDir} (removed when up stops)\nedit ${this.opts.config} to move bots live; Ctrl-C stops everything\n`);
  }

  /** Re-plans after a config edit: new pools start, the catalog swaps, pools without bots retire after the grace period. */
  async reload(): Promise<void> {
    if (this.stopping) return;
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
    this.reportDemoModels(writeDemoModels(catalog, this.models(catalog)));
    this.catalog = catalog;
    this.topology = topology;
    writeCatalogFolder(this.catalogDir, catalog);
    const added = topology.pools.filter((p) => !before.has(p.name) || this.children.get(p.name)?.retired);
    for (const pool of added) {
      const existing = this.children.get(pool.name);
      if (existing) existing.retired = false;
      if (!existing?.proc || existing.proc.exitCode !== null || existing.proc.signalCode !== null) this.spawn({ name: pool.name, kind: 'pool', port: 0, grpcPort: 0 });
    }
    const removed = [...before].filter((p) => !now.has(p));
    this.say(`[up] ${this.opts.config} changed: generation ${catalog.generation}; pools added: ${added.map((p) => p.name).join(', ') || 'none'}; pools removed: ${removed.join(', ') || 'none'}`);
    for (const name of removed) {
      setTimeout(() => {
        if (this.stopping || this.topology.pools.some((p) => p.name === name)) return;
        const child = this.children.get(name);
        if (!child) return;
        child.retired = true;
        this.writePoolUrls();
        child.proc?.kill('SIGTERM');
        this.say(`[up] pool ${name} retired`);
      }, (this.opts.moveGraceMs ?? 30_000) + 2000).unref();
    }
    try {
      await this.waitReady(added.map((p) => this.children.get(p.name)!), 180_000);
      this.print();
    } catch {
      // stopping, or a pool that keeps failing: its restarts are reported
    }
  }

  /**
   * Stops the router (it drains in-flight requests), then the pools; kills what does not exit in time.
   * Resolves with what happened: which processes drained, how many responses their drains cut off, and
   * how many requests the router says it never answered (when it says: the HAProxy mode does not).
   */
  async stop(): Promise<string> {
    if (this.stopping) return '';
    this.stopping = true;
    if (this.watching) fs.unwatchFile(this.opts.config);
    const graceMs = ((this.opts.drainSeconds ?? 5) + 5) * 1000;
    const stopAll = async (children: Child[]) => {
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              const proc = c.proc;
              if (!proc || proc.exitCode !== null || proc.signalCode !== null) return resolve();
              const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs);
              proc.once('exit', () => {
                clearTimeout(kill);
                resolve();
              });
              proc.kill('SIGTERM');
            }),
        ),
      );
    };
    const all = [...this.children.values()].filter((c) => c.proc && c.proc.exitCode === null && c.proc.signalCode === null);
    // 'close' comes after the child's output has ended: its "drained" line has been read by then.
    const closed = all.map((c) => new Promise<void>((resolve) => c.proc!.once('close', () => resolve())));
    await stopAll(all.filter((c) => c.kind === 'router'));
    await stopAll(all.filter((c) => c.kind === 'pool'));
    await Promise.all(closed);
    // Catalog, pool addresses and logs: nothing of this run is left in the temp folder.
    fs.rmSync(this.state, { recursive: true, force: true });
    const pools = all.filter((c) => c.kind === 'pool' && c.drained).length;
    const router = all.some((c) => c.kind === 'router' && c.drained);
    const cutOff = all.reduce((n, c) => n + (c.drained?.unfinished ?? 0), 0);
    const killed = all.filter((c) => !c.drained).map((c) => c.name);
    const aborted = all.find((c) => c.kind === 'router' && c.aborted !== undefined)?.aborted;
    const abortedText = aborted === undefined ? '' : `, ${aborted} request${aborted === 1 ? '' : 's'} aborted by the router`;
    return `${router ? 'router and ' : ''}${pools} pool${pools === 1 ? '' : 's'} drained, ${cutOff} response${cutOff === 1 ? '' : 's'} cut off${abortedText}${killed.length > 0 ? `; did not drain: ${killed.join(', ')}` : ''}`;
  }

  /** Kills every child at once (a second Ctrl-C), and removes this run's temp folder. */
  kill(): void {
    for (const c of this.children.values()) c.proc?.kill('SIGKILL');
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

/** The `botshard up` command: runs until SIGINT/SIGTERM. */
export function upCommand(opts: { config: string; port?: string; grpcPort?: string; models?: string; tenantKeys?: string; router?: string }): string {
  const portOf = (flag: string, value: string | undefined, fallback: number) => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65535) exitWithFailure('botshard up', new SettingsError(`${flag} must be an integer from 0 to 65535, got ${JSON.stringify(value)}`), 'settings');
    return n;
  };
  const port = portOf('--port', opts.port, 8080);
  const grpcPort = portOf('--grpc-port', opts.grpcPort, grpcPortBeside(port));
  const router = opts.router ?? 'node';
  if (router !== 'node' && router !== 'haproxy') {
    exitWithFailure('botshard up', new SettingsError(`--router must be "node" (the Node router) or "haproxy" (HAProxy carries the requests), got ${JSON.stringify(router)}`), 'settings');
  }
  const platform = new LocalPlatform({ config: opts.config, port, grpcPort, models: opts.models, tenantKeys: opts.tenantKeys ?? (process.env.BOTSHARD_TENANT_KEYS || undefined), router });
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n[up] ${reason}: stopping the router, then the pools (Ctrl-C again to kill at once)\n`);
    platform.stop().then((summary) => {
      process.stdout.write(`[up] stopped: ${summary}\n`);
      process.exit(0);
    });
  };
  // Under `npm start` one Ctrl-C can arrive twice (from the terminal and forwarded by npm): only a signal
  // a second or more after the first means "kill at once".
  let firstSignal = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignal > 0 && Date.now() - firstSignal >= 1000) {
      platform.kill();
      process.exit(130);
    }
    if (firstSignal === 0) firstSignal = Date.now();
    stop(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Whatever ends the process that started `up` (npm, a CI timeout, a process manager) ends the platform
  // too, even when the signal never reaches `up`: an orphaned `up` would keep every port. Never "at once":
  // npm may pass the signal on and exit before `up` has stopped.
  const parent = process.ppid;
  const orphaned = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(orphaned);
    stop('the process that started botshard up has ended');
  }, 250);
  orphaned.unref();
  platform.start().catch(async (e: Error) => {
    await platform.stop();
    exitWithFailure('botshard up', e);
  });
  return '';
}
