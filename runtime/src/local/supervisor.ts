/**
 * The process supervisor of `botshard up`: runs each pool and the router as a child process, follows
 * what each prints (where it listens, its drain report, its errors) into its log, restarts one that exits
 * with backoff, and stops them all, the router before the pools. It knows nothing of catalogs: the
 * platform (platform.ts) tells it what to run.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { SettingsError } from '../commands/failure';
import { PROCESS_ENV, nodeArgs } from '../node-options';

/** The wait before the first restart of a child (doubled at each quick exit). */
export const FIRST_BACKOFF_MS = 500;
/** The longest wait between restarts. */
export const MAX_BACKOFF_MS = 10_000;
/** A child that ran this long before exiting was healthy: its next restart waits the first backoff again. */
export const STEADY_RUN_MS = 30_000;

/** The wait before restarting a child that ran `ranMs` and last waited `previousMs`. */
export function nextBackoff(previousMs: number, ranMs: number): number {
  return ranMs > STEADY_RUN_MS ? FIRST_BACKOFF_MS : Math.min(previousMs * 2, MAX_BACKOFF_MS);
}

export interface Child {
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

/** What a child is before it first starts. */
export type ChildSpec = Pick<Child, 'name' | 'kind' | 'port' | 'grpcPort'>;

export interface SupervisorOptions {
  /** Folder of the children's logs (`<name>.log`, appended across restarts). */
  logDir: string;
  /** Writes one line of `botshard up`'s output. */
  say: (line: string) => void;
  /** The child's command line after node's own flags, read at each start (its ports by then are kept). */
  args: (child: Child) => string[];
  /** The children's environment (the supervisor adds BOTSHARD_PARENT_PID: a child exits when `up` does). */
  env: NodeJS.ProcessEnv;
  /** Called when a child says where it listens. */
  onListening?: (child: Child) => void;
}

/** One line a child prints (pino JSON); only these fields are read. */
interface LogEntry {
  msg?: string;
  port?: number;
  metricsPort?: number;
  grpcPort?: number;
  level?: number;
  unfinished?: number;
  aborted?: number;
}

export class Supervisor {
  readonly children = new Map<string, Child>();
  private stoppingAll = false;
  /** Why the children cannot run: one exited at start-up because of its settings and is not restarted. */
  private fatal?: Error;

  constructor(private readonly opts: SupervisorOptions) {}

  /** Set once `stop` has begun: no child is restarted from then on. */
  get stopping(): boolean {
    return this.stoppingAll;
  }

  /** Whether the child's current process is still running. */
  static running(child: Child | undefined): boolean {
    const proc = child?.proc;
    return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
  }

  /** Starts a child (again, when one of that name exists: its ports and restart count are kept). */
  start(spec: ChildSpec): Child {
    const child: Child = this.children.get(spec.name) ?? { ...spec, ready: false, restarts: 0, backoffMs: FIRST_BACKOFF_MS, retired: false, startedAt: 0, wasReady: false };
    this.children.set(spec.name, child);
    child.ready = false;
    child.wasReady = false;
    child.startedAt = Date.now();
    const log = fs.createWriteStream(path.join(this.opts.logDir, `${child.name}.log`), { flags: 'a' });
    // Its own process group: a Ctrl-C in the terminal reaches `up` only, which stops the router before the pools.
    const proc = spawn(process.execPath, [...nodeArgs(), ...this.opts.args(child)], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...PROCESS_ENV, ...this.opts.env, BOTSHARD_PARENT_PID: String(process.pid) },
    });
    child.proc = proc;
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      log.write(`${line}\n`);
      this.read(child, line);
    });
    readline.createInterface({ input: proc.stderr! }).on('line', (line) => {
      log.write(`${line}\n`);
      child.lastError = line;
      this.opts.say(`[${child.name}] ${line}`);
    });
    proc.on('exit', (code, signal) => {
      log.end();
      if (this.stoppingAll || child.retired || child.proc !== proc) return;
      this.exited(child, code, signal);
    });
    return child;
  }

  /** Reads one line of a child's standard output: its ports, its drain report, its errors. */
  private read(child: Child, line: string): void {
    let entry: LogEntry;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    if (entry.msg === 'listening' && typeof entry.port === 'number') {
      child.port = entry.port;
      if (typeof entry.metricsPort === 'number') child.metricsPort = entry.metricsPort;
      if (typeof entry.grpcPort === 'number') child.grpcPort = entry.grpcPort;
      this.opts.onListening?.(child);
    }
    if (entry.msg === 'drained: exiting') child.drained = { unfinished: entry.unfinished ?? 0 };
    if (typeof entry.aborted === 'number' && (entry.msg === 'drained: exiting' || entry.msg?.startsWith('drain took longer'))) child.aborted = entry.aborted;
    if ((entry.level ?? 0) >= 50) this.opts.say(`[${child.name}] ${entry.msg}`);
  }

  /** A child exited on its own: restarted after its backoff, unless it could not start at all. */
  private exited(child: Child, code: number | null, signal: NodeJS.Signals | null): void {
    child.ready = false;
    // Exit 2 (bad settings) or 1 before it was ever ready (it could not start): a restart would fail the same way.
    if (code === 2 || (code === 1 && !child.wasReady)) {
      child.retired = true;
      this.fatal = new SettingsError(`${child.kind} ${child.name} could not start (exit code ${code}): ${child.lastError ?? 'see its log'}`);
      this.opts.say(`[up] ${child.kind} ${child.name} could not start (exit code ${code}); not restarting it`);
      return;
    }
    child.restarts += 1;
    child.backoffMs = nextBackoff(child.backoffMs, Date.now() - child.startedAt);
    this.opts.say(`[up] ${child.kind} ${child.name} exited (${signal ?? `code ${code}`}); restart ${child.restarts} in ${child.backoffMs} ms`);
    setTimeout(() => {
      if (this.stoppingAll || child.retired) return;
      this.start(child);
      this.waitReady([child], 180_000).then(
        () => this.opts.say(`[up] ${child.kind} ${child.name} is back on port ${child.port}`),
        () => undefined,
      );
    }, child.backoffMs).unref();
  }

  /** Resolves once every child answers ready on its port; rejects when one cannot start, on stop, or after `timeoutMs`. */
  async waitReady(children: Child[], timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (const child of children) {
      while (!child.ready) {
        if (this.fatal) throw this.fatal;
        if (this.stoppingAll) throw new Error('stopping');
        if (Date.now() > end) throw new Error(`${child.kind} ${child.name} was not ready after ${timeoutMs / 1000} s: see ${path.join(this.opts.logDir, `${child.name}.log`)}`);
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

  /**
   * Stops every running child, the router first (it drains in-flight requests), then the pools; kills
   * what has not exited after `graceMs`. Resolves with the children that were running, once their
   * output has been read (their "drained" lines included).
   */
  async stop(graceMs: number): Promise<Child[]> {
    this.stoppingAll = true;
    const stopAll = (children: Child[]) =>
      Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              const proc = c.proc;
              if (!proc || !Supervisor.running(c)) return resolve();
              const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs);
              proc.once('exit', () => {
                clearTimeout(kill);
                resolve();
              });
              proc.kill('SIGTERM');
            }),
        ),
      );
    const all = [...this.children.values()].filter((c) => Supervisor.running(c));
    // 'close' comes after the child's output has ended: its "drained" line has been read by then.
    const closed = all.map((c) => new Promise<void>((resolve) => c.proc!.once('close', () => resolve())));
    await stopAll(all.filter((c) => c.kind === 'router'));
    await stopAll(all.filter((c) => c.kind === 'pool'));
    await Promise.all(closed);
    return all;
  }

  /** Kills every child at once (a second Ctrl-C). */
  kill(): void {
    for (const c of this.children.values()) c.proc?.kill('SIGKILL');
  }
}
