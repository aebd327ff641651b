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
    // Node's process metrics under their standard names (process_*, nodejs_*), as in the pools: dashboards and alerts find them.
    if (processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  setGeneration(generation: string): void {
    this.generation.reset();
    this.generation.set({ generation }, 1);
  }
}
