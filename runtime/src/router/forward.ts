/**
 * Forwarding an admitted request: to the bot's pool, falling back to its previous pool while it moves
 * (or to the pool a 404 names as the holder), each pool behind a circuit breaker; then relaying the
 * answer. Every call a circuit lets through ends in success() or failure(): no probe is left half-open.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { holderOf, sendError } from '../oip';
import { Circuit } from './circuit';
import { RouterMetrics } from './metrics';
import { Route, RoutingTable } from './table';
import { PoolAddress, UpstreamError, Upstreams, responseHeaders } from './upstream';

/** Responses up to this size are read whole and sent in one write; larger ones are streamed. */
const SMALL_BODY = 64 * 1024;
/** Request headers passed on to the pool. */
const FORWARDED_HEADERS = ['content-type', 'accept', 'traceparent', 'tracestate'];

export interface ForwarderOptions {
  table: RoutingTable;
  metrics: RouterMetrics;
  address: PoolAddress;
  /** Attempts per request over the bot's current and previous pool. */
  maxAttempts: number;
  /** Consecutive failures that open a pool's circuit. */
  circuitThreshold: number;
  /** How long an open circuit keeps a pool from being called before one probe. */
  circuitCooldownMs: number;
}

type Upstream = Awaited<ReturnType<Upstreams['forward']>>;

export class Forwarder {
  private readonly upstreams = new Upstreams({ keepAliveMs: 60_000 });
  private readonly circuits = new Map<string, Circuit>();

  constructor(private readonly o: ForwarderOptions) {}

  /** Forwards `request` for `route` to `path` on the bot's pool (or its fallbacks) and sends the answer. */
  async forward(request: FastifyRequest, reply: FastifyReply, route: Route, path: string): Promise<FastifyReply> {
    const { metrics, table } = this.o;
    const group = route.group.name;
    const started = process.hrtime.bigint();
    const deadline = Date.now() + route.group.timeoutMs;
    const headers: Record<string, string> = { 'x-request-id': request.id };
    for (const name of FORWARDED_HEADERS) {
      const v = request.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    const body = request.method === 'POST' ? (Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)) : undefined;
    const candidates = [route.pool, ...(route.previousPool ? [route.previousPool] : [])];
    const tried = new Set<string>();
    let lastError: UpstreamError | undefined;
    let circuitOpen: string | undefined;
    for (let attempt = 0; attempt < this.o.maxAttempts && candidates.length > 0; attempt++) {
      const pool = candidates.shift()!;
      if (tried.has(pool)) continue;
      tried.add(pool);
      // No address yet: nothing is called, so the circuit is not asked (and no probe is taken).
      const origin = this.o.address(pool);
      if (!origin) {
        lastError = new UpstreamError('connect', pool, `pool "${pool}" has no address yet`);
        continue;
      }
      const circuit = this.circuit(pool);
      if (!circuit.allow()) {
        metrics.upstreamErrors.inc({ pool, kind: 'circuit_open' });
        circuitOpen = pool;
        continue;
      }
      let res: Upstream;
      try {
        res = await this.upstreams.forward({ pool, origin, method: request.method as 'GET' | 'POST', path, headers, body, deadline });
      } catch (e) {
        lastError = e as UpstreamError;
        metrics.upstreamErrors.inc({ pool, kind: lastError.kind });
        circuit.failure(); // a timeout too: the pool did not answer in time
        if (lastError.kind === 'timeout') break; // the deadline is spent: no retry
        continue;
      }
      circuit.success();
      // The pool does not have the bot (yet) or is not ready: try the holder it names, or the next candidate.
      const holder = holderOf(res.statusCode, res.headers);
      const nextHolder = holder !== undefined && holder !== pool && table.knows(holder) && !tried.has(holder) ? holder : undefined;
      if ((holder !== undefined || res.statusCode === 503) && (candidates.length > 0 || nextHolder)) {
        await res.body.dump();
        metrics.upstreamErrors.inc({ pool, kind: 'not_ready' });
        if (nextHolder) candidates.unshift(nextHolder);
        continue;
      }
      if (pool !== route.pool) metrics.fallbacks.inc({ group });
      metrics.requests.inc({ group, pool, code: String(res.statusCode) });
      metrics.latency.observe({ group, pool }, Number(process.hrtime.bigint() - started) / 1e9);
      return this.relay(reply, pool, res);
    }
    if (lastError?.kind === 'timeout') {
      metrics.requests.inc({ group, pool: lastError.pool, code: '504' });
      return sendError(reply, 504, `${lastError.message} (pool group "${group}" allows ${route.group.timeoutMs} ms)`);
    }
    const pool = lastError?.pool ?? circuitOpen ?? route.pool;
    metrics.requests.inc({ group, pool, code: '503' });
    const retryAfter = circuitOpen ? this.circuit(circuitOpen).retryAfterSeconds() : 1;
    return sendError(reply, 503, lastError ? lastError.message : `pool "${pool}" is failing; calls to it are paused`, retryAfter);
  }

  close(): Promise<void> {
    return this.upstreams.close();
  }

  /** Sends a pool's answer on: small ones (all of the protocol's JSON, in practice) in one write, large ones streamed. */
  private async relay(reply: FastifyReply, pool: string, res: Upstream): Promise<FastifyReply> {
    const length = Number(res.headers['content-length']);
    let answer: Buffer | Upstream['body'] = res.body;
    if (length >= 0 && length <= SMALL_BODY) {
      try {
        answer = Buffer.from(await res.body.arrayBuffer());
      } catch {
        this.o.metrics.upstreamErrors.inc({ pool, kind: 'reset' });
        return sendError(reply, 502, `pool "${pool}" closed the connection in the middle of its answer`);
      }
    }
    reply.code(res.statusCode).headers(responseHeaders(res.headers));
    return reply.send(answer);
  }

  private circuit(pool: string): Circuit {
    let c = this.circuits.get(pool);
    if (!c) this.circuits.set(pool, (c = new Circuit(this.o.circuitThreshold, this.o.circuitCooldownMs)));
    return c;
  }
}
