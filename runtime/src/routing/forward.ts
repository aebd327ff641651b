/**
 * Forwarding an admitted request: to the bot's pool, falling back to its previous pool while it moves
 * (or to the pool a 404 names as the holder), each pool behind a circuit breaker. The loop is the same for
 * REST (router/rest.ts) and gRPC (grpc.ts); a transport says how to call a pool and what its answer means.
 * Every call a circuit lets through ends in success() or failure(): no probe is left half-open.
 */
import { ProtocolError } from '../oip';
import { Circuit } from './circuit';
import { RouterMetrics } from './metrics';
import { Route, RoutingTable } from './table';

/** The 504 of a request whose caller stopped waiting first (it cancelled, or its own deadline passed): no one reads it. */
export class CallerGone extends ProtocolError {}

/** Why forwarding failed before a response came back. */
export type UpstreamFailure = 'connect' | 'timeout' | 'reset';

/** A pool call that brought no answer back: what a transport throws, and what the loop counts against the pool's circuit. */
export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamFailure,
    readonly pool: string,
    message: string,
  ) {
    super(message);
  }
}

/** Attempts, circuit threshold and cooldown when none are given. */
export const FORWARDING_DEFAULTS = { maxAttempts: 3, circuitThreshold: 5, circuitCooldownMs: 2000 } as const;

export interface ForwarderOptions {
  table: RoutingTable;
  metrics: RouterMetrics;
  /** Attempts per request over the bot's current and previous pool. */
  maxAttempts: number;
  /** Consecutive failures (no answer: connection refused or reset, or a timeout) that open a pool's circuit. */
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

export class Forwarder {
  private readonly circuits = new Map<string, Circuit>();

  constructor(private readonly o: ForwarderOptions) {}

  /**
   * Sends a request to the bot's pool (or its fallbacks): the pool that answered and its answer. Throws a
   * ProtocolError when none did: 504 once the deadline is spent, else 503 (circuit open, unreachable).
   * `caller`: the caller's own deadline (sooner than the group's wins) and its cancel; a call that ends for
   * those reasons does not count against the pool's circuit.
   */
  async forward<R>(route: Route, transport: Transport<R>, caller: { deadline?: number; signal?: { readonly aborted: boolean } } = {}): Promise<{ pool: string; answer: R }> {
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

  private circuit(pool: string): Circuit {
    let c = this.circuits.get(pool);
    if (!c) this.circuits.set(pool, (c = new Circuit(this.o.circuitThreshold, this.o.circuitCooldownMs)));
    return c;
  }
}
