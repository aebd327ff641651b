/**
 * The one set-up of the router's forwarding parts: the routing table, admission (tenant keys, rate limit,
 * group slots: one of each for REST and gRPC), the forwarding loop with its circuits, gRPC connections to
 * pools and the metrics, for the Node router (router/server.ts), which serves both protocols over them.
 */
import type { CatalogIndex } from '../catalog';
import type { PoolAddress } from './addresses';
import { Admission } from './admission';
import { PoolChannels } from './channels';
import { FORWARDING_DEFAULTS, Forwarder } from './forward';
import { InFlight, RouterMetrics } from './metrics';
import { RoutingTable } from './table';
import { RateLimiter, TenantKeys } from './tenants';

export interface RouterPartsOptions {
  /** The catalog's placement index at start. */
  catalog: CatalogIndex;
  /** Where pools answer gRPC. */
  grpcAddress: PoolAddress;
  /** Tenant API keys, when the router was given a folder of them. @default - none */
  keys?: TenantKeys;
  /** Requests per second per tenant (token bucket), with bursts of twice that. @default - no rate limit */
  tenantRate?: number;
  /** The clock (ms) the tenant rate limit reads: tests inject one. @default - performance.now (monotonic) */
  now?: () => number;
  /** Requests forwarded at once per pool group. @default - limits.ts `groupConcurrency` */
  groupConcurrency?: Readonly<Record<string, number>>;
  /** Attempts per request over the bot's current and previous pool. @default FORWARDING_DEFAULTS.maxAttempts */
  maxAttempts?: number;
  /** Consecutive failures (no answer: connection refused or reset, or a timeout) that open a pool's circuit. @default FORWARDING_DEFAULTS.circuitThreshold */
  circuitThreshold?: number;
  /** How long an open circuit keeps a pool from being called before one probe. @default FORWARDING_DEFAULTS.circuitCooldownMs */
  circuitCooldownMs?: number;
  /** Collect Node process metrics too (not when another registry of the process does). */
  processMetrics: boolean;
}

export interface RouterParts {
  table: RoutingTable;
  metrics: RouterMetrics;
  admission: Admission;
  forwarder: Forwarder;
  /** gRPC connections to pools. */
  channels: PoolChannels;
  /** Where pools answer gRPC. */
  address: PoolAddress;
  /** Requests taken and not answered yet. */
  inFlight: InFlight;
  /** Applies a new catalog generation; throws, keeping the current one, if it cannot be placed. */
  update(catalog: CatalogIndex): void;
  /** Closes the connections to pools. */
  close(): void;
}

export function routerParts(o: RouterPartsOptions): RouterParts {
  const table = new RoutingTable(o.catalog);
  // Requests being forwarded per group: admission takes and gives back slots, the metrics read them.
  const inflight = new Map<string, number>();
  const metrics = new RouterMetrics(o.processMetrics, inflight);
  metrics.setGeneration(table.generation);
  const limiter = o.tenantRate ? new RateLimiter(o.tenantRate, o.tenantRate * 2, o.now) : undefined;
  const channels = new PoolChannels();
  return {
    table,
    metrics,
    admission: new Admission({ table, metrics, inflight, keys: o.keys, limiter, groupConcurrency: o.groupConcurrency }),
    forwarder: new Forwarder({
      table,
      metrics,
      maxAttempts: o.maxAttempts ?? FORWARDING_DEFAULTS.maxAttempts,
      circuitThreshold: o.circuitThreshold ?? FORWARDING_DEFAULTS.circuitThreshold,
      circuitCooldownMs: o.circuitCooldownMs ?? FORWARDING_DEFAULTS.circuitCooldownMs,
    }),
    channels,
    address: o.grpcAddress,
    inFlight: new InFlight(metrics),
    update(catalog) {
      table.update(catalog);
      metrics.setGeneration(catalog.generation);
      channels.retain(table.pools());
    },
    close: () => channels.close(),
  };
}
