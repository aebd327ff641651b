import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The router's Prometheus metrics. Labels stay bounded: groups and pools, never bots or tenants' keys. */
export class RouterMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'botshard_router_requests_total', help: 'Requests by group, pool, HTTP status code (gRPC statuses as their HTTP equivalent) and protocol (rest, grpc)', labelNames: ['group', 'pool', 'code', 'protocol'], registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'botshard_router_request_duration_seconds',
    help: 'Time from request to response headers, by group and pool',
    labelNames: ['group', 'pool'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({ name: 'botshard_router_upstream_errors_total', help: 'Upstream failures by kind (connect, timeout, reset, circuit_open, not_ready)', labelNames: ['pool', 'kind'], registers: [this.registry] });
  readonly fallbacks = new Counter({ name: 'botshard_router_fallbacks_total', help: 'Requests served by the previous generation\'s pool while a bot moves', labelNames: ['group'], registers: [this.registry] });
  readonly rejected = new Counter({ name: 'botshard_router_rejected_total', help: 'Requests refused before forwarding, by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly catalogReloads = new Counter({ name: 'botshard_router_catalog_reloads_total', help: 'Catalog changes seen, by result (applied, invalid: kept the current one)', labelNames: ['result'], registers: [this.registry] });
  readonly generation = new Gauge({ name: 'botshard_router_catalog_generation_info', help: 'Catalog generation in use (value 1)', labelNames: ['generation'], registers: [this.registry] });
  readonly aborted = new Counter({
    name: 'botshard_router_requests_aborted_total',
    help:
      'Forwarded requests the router took and never answered, by protocol (rest, grpc) and reason: client (the client closed or reset its connection before the response was sent whole, or cancelled its gRPC call, its deadline included), ' +
      'shutdown (the router exited with it in flight: its drain passed BOTSHARD_DRAIN_SECONDS; counted as it exits, so its "drain took longer" log line says how many)',
    labelNames: ['protocol', 'reason'],
    registers: [this.registry],
  });
  readonly inflight: Gauge;

  /** `inflight`: requests being forwarded per group, read when scraped (nothing to update per request). */
  constructor(processMetrics = true, inflight: ReadonlyMap<string, number> = new Map()) {
    this.inflight = new Gauge({
      name: 'botshard_router_inflight_requests',
      help: 'Requests being forwarded, by group',
      labelNames: ['group'],
      registers: [this.registry],
      collect() {
        for (const [group, n] of inflight) this.set({ group }, n);
      },
    });
    // Every series of the aborted counter exists from the start (at 0): an alert or a test reads 0, not "no data".
    for (const protocol of ['rest', 'grpc']) for (const reason of ['client', 'shutdown']) this.aborted.inc({ protocol, reason }, 0);
    // Node's process metrics under their standard names (process_*, nodejs_*), as in the pools: dashboards and alerts find them.
    if (processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  setGeneration(generation: string): void {
    this.generation.reset();
    this.generation.set({ generation }, 1);
  }
}

/**
 * Requests the router has taken and not answered yet, to count those it never answers
 * (`botshard_router_requests_aborted_total`). Each request taken ends once: answered, or abandoned by its
 * client (counted `client`); `cutOff()` counts every one still unanswered as `shutdown` (the process exits
 * with it) and forgets them all.
 */
export class InFlight {
  private readonly open = new Set<{ protocol: 'rest' | 'grpc'; answered?: () => boolean }>();
  /** Aborted requests counted since start, both reasons and protocols (what the drain reports). */
  aborted = 0;

  constructor(private readonly metrics: RouterMetrics) {}

  /**
   * Takes a request; returns its end (`abandoned`: its client went away before the answer was sent whole),
   * which says whether the request was still open: false when cutOff() counted it already, or on a second
   * call. `answered`: whether its answer is sent whole, asked by cutOff() (a REST response can be finished
   * before its end is called).
   */
  take(protocol: 'rest' | 'grpc', answered?: () => boolean): (abandoned: boolean) => boolean {
    const entry = { protocol, answered };
    this.open.add(entry);
    return (abandoned) => {
      const open = this.open.delete(entry);
      if (open && abandoned) this.count(protocol, 'client');
      return open;
    };
  }

  /** Counts every request still unanswered as aborted by the router's shutdown; returns how many there were. */
  cutOff(): number {
    let n = 0;
    for (const entry of this.open) {
      if (entry.answered?.()) continue;
      this.count(entry.protocol, 'shutdown');
      n += 1;
    }
    this.open.clear();
    return n;
  }

  private count(protocol: 'rest' | 'grpc', reason: 'client' | 'shutdown'): void {
    this.metrics.aborted.inc({ protocol, reason });
    this.aborted += 1;
  }
}
