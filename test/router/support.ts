/** Set-up shared by the router tests: real pool servers (from the pool tests' support) and a real router on loopback. */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import * as grpc from '@grpc/grpc-js';
import { RouterOptions, buildRouter } from '@botshard/runtime/router/server';
import { GrpcClient, inferRequest } from '../support/grpc';

export interface RunningRouter {
  app: FastifyInstance;
  url: string;
  /** Its gRPC endpoint, `127.0.0.1:<port>`. */
  grpc: string;
  close(): Promise<void>;
}

/**
 * A router on 127.0.0.1 with free ports (REST and gRPC); pool addresses from `urls` and gRPC ones from
 * `grpcs` (live maps: pools may appear later).
 */
export async function runRouter(opts: Omit<RouterOptions, 'poolUrl'> & { urls: Map<string, string>; grpcs?: Map<string, string> }): Promise<RunningRouter> {
  const { urls, grpcs, ...rest } = opts;
  const app = buildRouter({ logger: false, processMetrics: false, pollMs: 100, ...rest, poolUrl: (pool) => urls.get(pool), poolGrpc: (pool) => grpcs?.get(pool) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const grpcPort = await app.grpc!.listen(0, '127.0.0.1');
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, grpc: `127.0.0.1:${grpcPort}`, close: () => app.close() };
}

/**
 * Sends `predict` requests from `workers` loops until `stop()` resolves; records every outcome in order.
 * A request that gets no HTTP answer is recorded with status 0 and the error's code. Bounded in time.
 */
export function load(url: string, bots: string[], workers = 4, maxMs = 30_000) {
  const statuses: number[] = [];
  const outcomes: Array<{ bot: string; status: number }> = [];
  const failures: Array<{ status: number; bot: string; body: string }> = [];
  const pools = new Map<string, string>();
  let running = true;
  const end = Date.now() + maxMs;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = w; running && Date.now() < end; i += workers) {
      const bot = bots[i % bots.length];
      let status = 0;
      let body = '';
      let pool = '';
      try {
        const res = await fetch(`${url}/v1/bots/${bot}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'I forgot my password' }) });
        body = await res.text();
        status = res.status;
        pool = res.headers.get('x-botshard-pool') ?? '';
      } catch (e) {
        const err = e as Error & { cause?: { code?: string; message?: string } };
        body = err.cause?.code ?? err.cause?.message ?? err.message;
        await new Promise((r) => setTimeout(r, 20));
      }
      statuses.push(status);
      outcomes.push({ bot, status });
      if (status !== 200) failures.push({ status, bot, body });
      else pools.set(bot, pool);
    }
  });
  return {
    statuses,
    outcomes,
    failures,
    /** The pool that last answered each bot. */
    pools,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * The gRPC twin of `load`: `workers` loops of ModelInfer calls (texts typed and raw in turn) until `stop()`;
 * every outcome recorded, failures with their status, the pool that last answered each bot. Bounded in time.
 */
export function grpcLoad(target: string, bots: string[], workers = 4, maxMs = 30_000) {
  const client = new GrpcClient(target);
  const failures: string[] = [];
  const pools = new Map<string, string>();
  let calls = 0;
  let running = true;
  const end = Date.now() + maxMs;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = w; running && Date.now() < end; i += workers) {
      const bot = bots[i % bots.length];
      const out = await client.call('ModelInfer', inferRequest(bot, ['I forgot my password'], { raw: i % 2 === 0 }));
      calls++;
      if (out.code !== grpc.status.OK) failures.push(`${bot}: ${grpc.status[out.code]} ${out.details}`);
      else pools.set(bot, out.metadata['x-botshard-pool']);
    }
  });
  return {
    failures,
    pools,
    get calls() {
      return calls;
    },
    async stop() {
      running = false;
      await Promise.all(loops);
      client.close();
    },
  };
}

/** Total requests a pool's HTTP metrics counted. */
export async function poolRequestCount(pool: FastifyInstance): Promise<number> {
  const metrics = await pool.poolMetrics.registry.getMetricsAsJSON();
  const requests = metrics.find((m) => m.name === 'botshard_pool_request_seconds');
  return (requests?.values ?? []).filter((v) => (v as { metricName?: string }).metricName === 'botshard_pool_request_seconds_count').reduce((s, v) => s + Number(v.value), 0);
}
