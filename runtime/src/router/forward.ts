/**
 * Forwarding an admitted request: to the bot's pool, falling back to its previous pool while it moves
 * (or to the pool a 404 names as the holder), each pool behind a circuit breaker. The loop is the same for
 * REST and gRPC; a transport says how to call a pool and what its answer means. Every call a circuit lets
 * through ends in success() or failure(): no probe is left half-open.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProtocolError, holderOf, sendError, sendProblem } from '../oip';
import { Circuit } from './circuit';
import { RouterMetrics } from './metrics';
import { Route, RoutingTable } from './table';
import { PoolAddress, UpstreamError, Upstreams, responseHeaders } from './upstream';

/** Responses up to this size are read whole and sent in one write; larger ones are streamed. */
const SMALL_BODY = 64 * 1024;
/** Request headers passed on to the pool. */
const FORWARDED_HEADERS = ['content-type', 'accept', 'traceparent', 'tracestate', 'inference-header-content-length'];

/** The 504 of a request whose caller stopped waiting first (it cancelled, or its own deadline passed): no one reads it. */
export class CallerGone extends ProtocolError {}

/** Attempts, circuit threshold and cooldown when none are given. */
export const FORWARDING_DEFAULTS = { maxAttempts: 3, circuitThreshold: 5, circuitCooldownMs: 2000 } as const;

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

/** A pool's answer, as the loop sees it. */
export interface PoolAnswer<R> {
  answer: R;
  /** For the metrics: the HTTP status (of a gRPC status: its HTTP equivalent). */
  code: number;
  /** The pool does not hold the bot and names the pool that does. */
  holder?: string;
  /** The pool holds the bot and cannot run it now (loading, full): another candidate may. */
  unavailable: boolean;
  /** Releases an answer that is not passed on. */
  discard(): Promise<void>;
}

/** How to reach pools over one protocol. */
export interface Transport<R> {
  /** The protocol: circuits and metrics are per protocol (a pool's gRPC port failing leaves its REST open). */
  name: 'rest' | 'grpc';
  /** Where a pool answers on this protocol; undefined while it has no address. */
  address(pool: string): string | undefined;
  /** Calls the pool; throws an UpstreamError when no answer came back. */
  call(pool: string, address: string, deadline: number): Promise<PoolAnswer<R>>;
}

type Upstream = Awaited<ReturnType<Upstreams['forward']>>;

export class Forwarder {
  private readonly upstreams = new Upstreams({ keepAliveMs: 60_000 });
  private readonly circuits = new Map<string, Circuit>();

  constructor(private readonly o: ForwarderOptions) {}

  /**
   * Sends a request to the bot's pool (or its fallbacks): the pool that answered and its answer. Throws a
   * ProtocolError when none did: 504 once the deadline is spent, else 503 (circuit open, unreachable).
   * `caller`: the caller's own deadline (sooner than the group's wins) and its cancel; a call that ends for
   * those reasons does not count against the pool's circuit.
   */
  async forward<R>(route: Route, transport: Transport<R>, caller: { deadline?: number; signal?: AbortSignal } = {}): Promise<{ pool: string; answer: R }> {
    const { metrics, table } = this.o;
    const group = route.group.name;
    const protocol = transport.name;
    const started = process.hrtime.bigint();
    const groupDeadline = Date.now() + route.group.timeoutMs;
    const deadline = Math.min(groupDeadline, caller.deadline ?? Infinity);
    const callersFault = () => caller.signal?.aborted === true || (deadline < groupDeadline && Date.now() >= deadline);
    const candidates = [route.pool, ...(route.previousPool ? [route.previousPool] : [])];
    const tried = new Set<string>();
    let lastError: UpstreamError | undefined;
    let circuitOpen: string | undefined;
    for (let attempt = 0; attempt < this.o.maxAttempts && candidates.length > 0; attempt++) {
      const pool = candidates.shift()!;
      if (tried.has(pool)) continue;
      tried.add(pool);
      // No address yet: nothing is called, so the circuit is not asked (and no probe is taken).
      const address = transport.address(pool);
      if (!address) {
        lastError = new UpstreamError('connect', pool, `pool "${pool}" has no address yet`);
        continue;
      }
      const circuit = this.circuit(`${protocol}:${pool}`);
      if (!circuit.allow()) {
        metrics.upstreamErrors.inc({ pool, kind: 'circuit_open' });
        circuitOpen = pool;
        continue;
      }
      let res: PoolAnswer<R>;
      try {
        res = await transport.call(pool, address, deadline);
      } catch (e) {
        lastError = e as UpstreamError;
        if (callersFault()) {
          circuit.abandon();
          break;
        }
        metrics.upstreamErrors.inc({ pool, kind: lastError.kind });
        circuit.failure(); // a timeout too: the pool did not answer in time
        if (lastError.kind === 'timeout') break; // the deadline is spent: no retry
        continue;
      }
      circuit.success();
      // The pool does not have the bot (yet) or cannot run it now: try the holder it names, or the next candidate.
      const nextHolder = res.holder !== undefined && res.holder !== pool && table.knows(res.holder) && !tried.has(res.holder) ? res.holder : undefined;
      if ((res.holder !== undefined || res.unavailable) && (candidates.length > 0 || nextHolder)) {
        await res.discard();
        metrics.upstreamErrors.inc({ pool, kind: 'not_ready' });
        if (nextHolder) candidates.unshift(nextHolder);
        continue;
      }
      if (pool !== route.pool) metrics.fallbacks.inc({ group });
      metrics.requests.inc({ group, pool, code: String(res.code), protocol });
      metrics.latency.observe({ group, pool }, Number(process.hrtime.bigint() - started) / 1e9);
      return { pool, answer: res.answer };
    }
    const gone = callersFault();
    if (lastError?.kind === 'timeout' || gone) {
      const pool = lastError?.pool ?? route.pool;
      metrics.requests.inc({ group, pool, code: '504', protocol });
      const bound = deadline < groupDeadline ? "the caller's deadline" : `pool group "${group}" allows ${route.group.timeoutMs} ms`;
      const message = `${lastError?.message ?? `pool "${pool}" did not answer in time`} (${bound})`;
      throw gone ? new CallerGone(504, message) : new ProtocolError(504, message);
    }
    const pool = lastError?.pool ?? circuitOpen ?? route.pool;
    metrics.requests.inc({ group, pool, code: '503', protocol });
    const retryAfterSeconds = circuitOpen ? this.circuit(`${protocol}:${circuitOpen}`).retryAfterSeconds() : 1;
    throw new ProtocolError(503, lastError ? lastError.message : `pool "${pool}" is failing; calls to it are paused`, { retryAfterSeconds });
  }

  /** Forwards a REST request for `route` to `path` on the bot's pool (or its fallbacks) and sends the answer on. */
  async forwardRest(request: FastifyRequest, reply: FastifyReply, route: Route, path: string): Promise<FastifyReply> {
    const headers: Record<string, string> = { 'x-request-id': request.id };
    for (const name of FORWARDED_HEADERS) {
      const v = request.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    const method = request.method as 'GET' | 'POST';
    const body = method === 'POST' ? (Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)) : undefined;
    const transport: Transport<Upstream> = {
      name: 'rest',
      address: this.o.address,
      call: async (pool, origin, deadline) => {
        const res = await this.upstreams.forward({ pool, origin, method, path, headers, body, deadline });
        return { answer: res, code: res.statusCode, holder: holderOf(res.statusCode, res.headers), unavailable: res.statusCode === 503, discard: () => res.body.dump() };
      },
    };
    try {
      const { pool, answer } = await this.forward(route, transport);
      return await this.relay(reply, pool, answer);
    } catch (e) {
      if (e instanceof ProtocolError) return sendProblem(reply, e);
      throw e;
    }
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
