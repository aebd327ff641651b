/**
 * The router's gRPC model methods: read the bot from the request's bytes (field 1, without decoding the
 * tensors), admit it as REST requests are (API keys from metadata), and forward the message unchanged to
 * the bot's pool over a kept HTTP/2 connection, with the same fallbacks and circuits. The pool's answer,
 * status and metadata come back as they were.
 */
import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { CatalogIndex } from '../catalog';
import { POOL_HEADER, ProtocolError } from '../oip';
import { MODEL_METHODS, ModelMethod, RAW, metadataValue, methodPath, stringField } from '../oip/grpc';
import { GrpcEndpoint, GrpcStatusError, ModelHandler } from '../serve/grpc';
import { Admission } from './admission';
import { Forwarder, PoolAnswer, Transport } from './forward';
import { RouterMetrics } from './metrics';
import { RoutingTable } from './table';
import { RateLimiter, TenantKeys } from './tenants';
import { VERSION } from './routes';
import { PoolAddress, UpstreamError } from './upstream';

/** Metadata passed on to the pool (credentials stay at the router). */
const FORWARDED_METADATA = ['traceparent', 'tracestate'];
/** Pool metadata passed back to the caller. */
const RETURNED_METADATA = [POOL_HEADER, 'botshard-residency', 'retry-after', 'grpc-retry-pushback-ms'];

type Answer = { message: Buffer; metadata: grpc.Metadata } | { status: Partial<grpc.StatusObject> };

/** One HTTP/2 channel per pool address, kept for the router's life (replaced when a pool's address changes). */
export class PoolChannels {
  private readonly clients = new Map<string, { address: string; client: grpc.Client }>();

  client(pool: string, address: string): grpc.Client {
    const known = this.clients.get(pool);
    if (known?.address === address) return known.client;
    known?.client.close();
    const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      // Keep idle connections open and notice dead ones: a ping every 30 s, even without calls.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    this.clients.set(pool, { address, client });
    return client;
  }

  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/**
 * A gRPC router on its own, beside a data plane that carries REST only (HAProxy mode): its own routing
 * table, admission (the same tenant keys; its own rate limiter and group slots) and forwarder, and its
 * metrics in a registry to merge with the control plane's.
 */
export function standaloneGrpcRouter(o: {
  catalog: CatalogIndex;
  /** Pools' REST addresses (the forwarder's circuits are per pool name). */
  address: PoolAddress;
  grpcAddress: PoolAddress;
  keys?: TenantKeys;
  tenantRate?: number;
  version: string;
  ready(): boolean;
  log: { error(obj: object, msg: string): void };
}): { endpoint: GrpcEndpoint; registry: Registry; update(catalog: CatalogIndex): void; close(): Promise<void> } {
  const table = new RoutingTable(o.catalog);
  const inflight = new Map<string, number>();
  const metrics = new RouterMetrics(false, inflight);
  metrics.setGeneration(table.generation);
  const limiter = o.tenantRate ? new RateLimiter(o.tenantRate, o.tenantRate * 2) : undefined;
  const admission = new Admission({ table, metrics, inflight, keys: o.keys, limiter });
  const forwarder = new Forwarder({ table, metrics, address: o.address, maxAttempts: 3, circuitThreshold: 5, circuitCooldownMs: 2000 });
  const channels = new PoolChannels();
  const endpoint = new GrpcEndpoint({
    name: 'botshard-router',
    version: o.version,
    extensions: ['botshard_routing', 'botshard_haproxy', 'binary_tensor_data'],
    ready: o.ready,
    models: routerGrpcMethods(() => ({ admission, forwarder, address: o.grpcAddress, channels })),
    raw: true,
    maxMessageBytes: 1024 * 1024,
    log: o.log,
  });
  return {
    endpoint,
    registry: metrics.registry,
    update(catalog) {
      table.update(catalog);
      metrics.setGeneration(catalog.generation);
    },
    async close() {
      await endpoint.close();
      channels.close();
      await forwarder.close();
    },
  };
}

/** The model methods of the router's gRPC endpoint (raw: messages as bytes). */
export function routerGrpcMethods(parts: () => { admission: Admission; forwarder: Forwarder; address: PoolAddress; channels: PoolChannels }): Record<ModelMethod, ModelHandler> {
  const handler = (method: ModelMethod): ModelHandler => async (call, requestId) => {
    const o = parts();
    const message = call.request as Buffer;
    let bot: string | undefined;
    let version: string | undefined;
    try {
      bot = stringField(message, 1);
      version = stringField(message, 2);
    } catch (e) {
      throw new ProtocolError(400, `the ${method} request is not a valid message: ${(e as Error).message}`);
    }
    if (!bot) throw new ProtocolError(400, `the ${method} request names no model: set ${method === 'ModelInfer' ? 'model_name' : 'name'} to a bot id`);
    if (version && !VERSION.test(version)) throw new ProtocolError(400, `invalid model version ${JSON.stringify(version.slice(0, 80))}`);
    const route = o.admission.admit(bot, { authorization: metadataValue(call.metadata, 'authorization'), 'x-api-key': metadataValue(call.metadata, 'x-api-key') });
    try {
      const outgoing = new grpc.Metadata();
      outgoing.set('x-request-id', requestId);
      for (const key of FORWARDED_METADATA) {
        const v = metadataValue(call.metadata, key);
        if (v !== undefined) outgoing.set(key, v);
      }
      const transport: Transport<Answer> = {
        address: o.address,
        call: (pool, address, deadline) => callPool(o.channels.client(pool, address), pool, method, message, outgoing, deadline),
      };
      const { answer } = await o.forwarder.forward(route, transport);
      if ('status' in answer) throw new GrpcStatusError(answer.status);
      return { message: answer.message, metadata: answer.metadata };
    } finally {
      o.admission.release(route);
    }
  };
  return Object.fromEntries(MODEL_METHODS.map((m) => [m, handler(m)])) as Record<ModelMethod, ModelHandler>;
}

/**
 * One call to a pool. An error status that carries the pool's name is the pool's answer (NOT_FOUND naming
 * the holder, UNAVAILABLE while loading, ...); one without it never reached the pool (connection refused,
 * reset, deadline), and is an UpstreamError for the loop.
 */
function callPool(client: grpc.Client, pool: string, method: ModelMethod, message: Buffer, metadata: grpc.Metadata, deadline: number): Promise<PoolAnswer<Answer>> {
  return new Promise((resolve, reject) => {
    let initial = new grpc.Metadata();
    const call = client.makeUnaryRequest(methodPath(method), RAW.serialize, RAW.deserialize, message, metadata, { deadline }, (err, response) => {
      const discard = async () => undefined;
      if (!err) return resolve({ answer: { message: response!, metadata: returned(initial) }, code: 'OK', unavailable: false, discard });
      const trailers = err.metadata ?? new grpc.Metadata();
      const answeredBy = metadataValue(trailers, POOL_HEADER) ?? metadataValue(initial, POOL_HEADER);
      if (answeredBy === undefined) {
        if (err.code === grpc.status.DEADLINE_EXCEEDED) return reject(new UpstreamError('timeout', pool, `pool "${pool}" did not answer in time`));
        if (err.code === grpc.status.UNAVAILABLE) return reject(new UpstreamError('connect', pool, `pool "${pool}" is unreachable over gRPC (${err.details})`));
        return reject(new UpstreamError('reset', pool, `pool "${pool}" failed the call (${grpc.status[err.code]}: ${err.details})`));
      }
      const status = { code: err.code, details: err.details, metadata: returned(trailers) };
      resolve({
        answer: { status },
        code: grpc.status[err.code] ?? String(err.code),
        // As over REST: a NOT_FOUND names the pool that holds the bot (itself, when the bot is not in its catalog).
        holder: err.code === grpc.status.NOT_FOUND ? answeredBy : undefined,
        unavailable: err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.RESOURCE_EXHAUSTED,
        discard,
      });
    });
    call.on('metadata', (m) => (initial = m));
  });
}

/** The pool metadata a caller gets back. */
function returned(from: grpc.Metadata): grpc.Metadata {
  const out = new grpc.Metadata();
  for (const key of RETURNED_METADATA) for (const v of from.get(key)) out.add(key, v);
  return out;
}
