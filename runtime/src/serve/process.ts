/** What every long-running botshard process shares: settings from flags and env, a metrics port, and signal handling. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { SettingsError, exitWithFailure } from '../commands/failure';

/** An integer setting in [min, max], or undefined when not set. */
export function integerSetting(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new SettingsError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

/** The gRPC port when none is given: the one after the HTTP port (8081 beside 8080), any free one beside port 0. */
export function grpcPortBeside(port: number): number {
  return port === 0 ? 0 : port === 65535 ? 0 : port + 1;
}

/** What every server command takes: where the catalog is, where to listen, how long to drain. */
export interface ServerFlags {
  catalog?: string;
  port?: string;
  metricsPort?: string;
  grpcPort?: string;
  host?: string;
}

export interface ServerSettings {
  catalog: string;
  port: number;
  metricsPort: number;
  /** The protocol over gRPC (h2c). */
  grpcPort: number;
  host: string;
  drainSeconds: number;
  pollMs?: number;
  logLevel: string;
}

/** The settings shared by `botshard pool` and `botshard router`, from flags, then `BOTSHARD_*` variables. */
export function serverSettings(flags: ServerFlags, env: NodeJS.ProcessEnv): ServerSettings {
  const catalog = flags.catalog ?? env.BOTSHARD_CATALOG;
  if (!catalog) throw new SettingsError('the catalog is missing: pass --catalog PATH or set BOTSHARD_CATALOG (a catalog .json or the folder where its ConfigMaps are mounted)');
  const port = integerSetting('--port / BOTSHARD_PORT', flags.port ?? env.BOTSHARD_PORT, 0, 65535) ?? 8080;
  return {
    catalog,
    port,
    metricsPort: integerSetting('--metrics-port / BOTSHARD_METRICS_PORT', flags.metricsPort ?? env.BOTSHARD_METRICS_PORT, 0, 65535) ?? 9090,
    grpcPort: integerSetting('--grpc-port / BOTSHARD_GRPC_PORT', flags.grpcPort ?? env.BOTSHARD_GRPC_PORT, 0, 65535) ?? grpcPortBeside(port),
    host: flags.host ?? env.BOTSHARD_HOST ?? '0.0.0.0',
    drainSeconds: integerSetting('BOTSHARD_DRAIN_SECONDS', env.BOTSHARD_DRAIN_SECONDS, 0, 3600) ?? 20,
    pollMs: integerSetting('BOTSHARD_POLL_MS', env.BOTSHARD_POLL_MS, 10, 3_600_000),
    logLevel: env.BOTSHARD_LOG_LEVEL ?? 'info',
  };
}

/**
 * Runs a server command in the background: bad settings exit 2 with the message, a start that fails
 * exits 1 (a message for errors users can meet, a stack trace only for bugs). Returns nothing to print.
 */
export function runServerCommand<S>(name: string, settings: () => S, start: (s: S) => Promise<unknown>): string {
  let s: S;
  try {
    s = settings();
  } catch (e) {
    exitWithFailure(`botshard ${name}`, e, 'settings');
  }
  start(s).catch((e: Error) => exitWithFailure(`botshard ${name}`, e));
  return '';
}

/** More JSON answers of the metrics port (operators' paths, such as `/botshard/status`): path -> body (200), or a ProbeAnswer. */
export type MetricsPortRoutes = Record<string, () => Promise<object>>;

/** A metrics port answer with a status of its own (a probe: 200 or 503). */
export class ProbeAnswer {
  constructor(
    readonly ok: boolean,
    readonly body: object,
  ) {}
}

/** Serves `GET /metrics` of a registry on its own port (so NetworkPolicies can open it to monitoring only). */
export async function serveMetrics(registry: Registry, port: number, host: string, routes: MetricsPortRoutes = {}): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const route = req.method === 'GET' ? routes[req.url?.split('?')[0] ?? ''] : undefined;
    if (route) {
      route().then(
        (body) => {
          const probe = body instanceof ProbeAnswer ? body : undefined;
          res.writeHead(probe && !probe.ok ? 503 : 200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(probe ? probe.body : body));
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: err.message }));
        },
      );
      return;
    }
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: err.message }));
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'only GET /metrics is served on this port' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export function portOf(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}

export interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * On SIGTERM or SIGINT: run `drain` (stop taking work, finish what is in flight) and exit 0; exit at
 * once on a second signal, or when the drain takes longer than `drainSeconds`. `summary` adds to the
 * "drained" line, `atLimit` (which may cut off what is still in flight) to the line logged at the limit.
 */
export function exitOnSignals(log: Log, drainSeconds: number, drain: () => Promise<void>, summary: () => object = () => ({}), atLimit: () => object = () => ({})): void {
  let stopping = false;
  // Die by the signal's default action (what a process without a handler does): exiting through
  // process.exit with native threads still running can abort in their teardown.
  const dieBy = (signal: NodeJS.Signals) => {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting at once');
      dieBy(signal);
      return;
    }
    stopping = true;
    log.info({ signal, drainSeconds }, 'signal received: draining');
    let limitPassed = false;
    const force = setTimeout(() => {
      limitPassed = true;
      let cut: object = {};
      try {
        cut = atLimit();
      } catch (err) {
        log.error({ err }, 'could not count the requests cut off');
      }
      log.error({ drainSeconds, ...cut }, 'drain took longer than BOTSHARD_DRAIN_SECONDS: exiting with requests still in flight');
      // The logger writes asynchronously (pino's file writes, done by libuv's threads in microseconds) and
      // death by a signal loses what it has not written yet: this line above all. A moment lets it out.
      setTimeout(() => dieBy('SIGTERM'), 200);
    }, drainSeconds * 1000);
    force.unref();
    drain().then(
      () => {
        if (limitPassed) return; // too late: the process dies by the signal (above), not as drained
        log.info(summary(), 'drained: exiting');
        process.exit(0);
      },
      (err: Error) => {
        log.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/**
 * When started by `botshard up` (BOTSHARD_PARENT_PID set), drain and exit if that parent goes away,
 * so that no orphan process is left behind even if `up` itself is killed.
 */
export function exitWithParent(env: NodeJS.ProcessEnv = process.env): void {
  const parent = Number(env.BOTSHARD_PARENT_PID);
  if (!Number.isInteger(parent) || parent <= 0) return;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      process.kill(process.pid, 'SIGTERM');
    }
  }, 1000);
  timer.unref();
}

/**
 * A server as `runServer` runs it: a fastify app (`runApp`), or the HAProxy mode's control plane, whose
 * data plane is another process.
 */
export interface RunnableServer {
  /** Where lifecycle lines go ("listening", "drained"): logged whatever the level. */
  lifecycle: Log;
  /** Starts listening; resolves with the bound ports. */
  listen(): Promise<{ port: number; grpcPort?: number }>;
  /** Reports not ready, then resolves once what is in flight is answered. */
  drain(): Promise<void>;
  /** Responses that ended before they were sent whole, since start. */
  readonly unfinishedResponses: number;
  /** Ends what the server still has in flight as the process exits; returns what to add to its last log line. */
  exiting(): object;
}

/**
 * Runs a server: listens, serves its metrics on their own port, logs "listening" (with `fields`; tools
 * read the bound ports from it), drains on SIGTERM/SIGINT and when the parent `up` goes away. The
 * "drained" line says how many responses were cut off during the drain (0 unless a bug or the limit),
 * with what the server adds when it exits (`exiting()`: the router says how many requests it aborted,
 * `aborted`); so does the line logged when the drain passes its limit.
 */
export async function runServer(server: RunnableServer, s: ServerSettings, registry: Registry, fields: object, routes: MetricsPortRoutes = {}): Promise<{ port: number; metricsPort: number; grpcPort?: number; close(): Promise<void> }> {
  const { port, grpcPort } = await server.listen();
  const metrics = await serveMetrics(registry, s.metricsPort, s.host, routes);
  const metricsPort = portOf(metrics);
  server.lifecycle.info({ port, metricsPort, grpcPort, host: s.host, ...fields }, 'listening');
  let unfinishedBefore = 0;
  const close = async () => {
    unfinishedBefore = server.unfinishedResponses;
    await server.drain();
    await new Promise<void>((resolve) => metrics.close(() => resolve()));
  };
  exitOnSignals(server.lifecycle, s.drainSeconds, close, () => ({ unfinished: server.unfinishedResponses - unfinishedBefore, ...server.exiting() }), () => server.exiting());
  exitWithParent();
  return { port, metricsPort, grpcPort, close };
}

/** Runs a built fastify app (pool or router) with `runServer`. */
export function runApp(app: FastifyInstance, s: ServerSettings, registry: Registry, fields: object, routes: MetricsPortRoutes = {}): Promise<{ port: number; metricsPort: number; grpcPort?: number; close(): Promise<void> }> {
  return runServer(
    {
      lifecycle: app.log.child({}, { level: 'info' }),
      async listen() {
        await app.listen({ port: s.port, host: s.host });
        const grpcPort = await app.grpc?.listen(s.grpcPort, s.host);
        return { port: portOf(app.server), grpcPort };
      },
      drain: () => app.drain(),
      get unfinishedResponses() {
        return app.unfinishedResponses;
      },
      exiting: () => app.exiting(),
    },
    s,
    registry,
    fields,
    routes,
  );
}
