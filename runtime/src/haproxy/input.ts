/** What the HAProxy configuration is rendered from: the pools, the ports, and the files HAProxy reads. */
import * as path from 'node:path';

/** A pool as HAProxy reaches it. */
export interface Backend {
  pool: string;
  /** `http://host:port` (or https), or undefined while the pool has no address yet (local mode: not started). */
  url?: string;
  /** Where the pool answers gRPC (`host:port`, plaintext HTTP/2), or undefined while it has no address. */
  grpc?: string;
  /** The group's deadline: the pool answers 504 itself by then. */
  timeoutMs: number;
  /** Requests sent to the pool at once (the group's concurrency x its max replicas); more wait in a queue. */
  maxconn: number;
}

export interface ConfigInput {
  host: string;
  port: number;
  /** Port of the gRPC frontend (Open Inference gRPC, HTTP/2 without TLS). */
  grpcPort: number;
  /** The control plane's own gRPC endpoint (`host:port`): it answers health and server metadata. */
  controlGrpc: string;
  /** Port of HAProxy's Prometheus exporter (`/metrics`). */
  metricsPort: number;
  /** Folder of the maps and the Runtime API socket. */
  dir: string;
  backends: Backend[];
  /** The catalog asks for tenant API keys. */
  auth: boolean;
  /** Requests per second per tenant, when limited. */
  tenantRate?: number;
  /** Server name and version in `GET /v2`. */
  version: string;
}

/** The files HAProxy reads, in the control plane's folder. */
export function files(dir: string) {
  return {
    config: path.join(dir, 'haproxy.cfg'),
    socket: path.join(dir, 'admin.sock'),
    /** bot id -> pool (the backend's name). */
    bots: path.join(dir, 'bots.map'),
    /** bot id -> tenant. */
    owners: path.join(dir, 'owners.map'),
    /** SHA-256 (hex) of an API key -> tenant. */
    keys: path.join(dir, 'keys.map'),
    /** `ready`, `keys` -> 1 or 0; `generation` -> the catalog generation. */
    state: path.join(dir, 'state.map'),
  };
}

