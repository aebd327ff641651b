/**
 * The gRPC side of the server shell, beside the REST app: one `grpc-js` server speaking the protocol's
 * `inference.GRPCInferenceService`, answering health and server metadata itself (as `createApp` does over
 * REST) and the model methods with the handlers it is given. Errors are ProtocolErrors, sent as statuses.
 * It drains with the app: GOAWAY to clients, then in-flight calls finish.
 */
import * as grpc from '@grpc/grpc-js';
import { ProtocolError } from '../oip';
import { MODEL_METHODS, ModelMethod, RAW, SERVICE, grpcError, healthService, inferenceService, metadataValue } from '../oip/grpc';
import { requestIdOf } from './request-id';

/** What a model method answers: the response message (bytes when raw), and metadata to send before it. */
export interface GrpcReply {
  message: unknown;
  metadata?: grpc.Metadata;
}

/** A failure that already is a gRPC status (the router relays a pool's as it came). */
export class GrpcStatusError extends Error {
  constructor(readonly status: Partial<grpc.StatusObject>) {
    super(status.details);
  }
}

/** A model method: the call (its request decoded, or its bytes when raw), the request id, the decoded request. */
export type ModelHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, requestId: string) => Promise<GrpcReply>;

export interface GrpcEndpointOptions {
  /** Server metadata, as `GET /v2` gives it. */
  name: string;
  version: string;
  extensions: string[];
  /** Whether the server is ready (false while draining, whatever this says). */
  ready(): boolean;
  /** The handlers of ModelReady, ModelMetadata and ModelInfer; none: they answer UNIMPLEMENTED (HAProxy carries them). */
  models?: Record<ModelMethod, ModelHandler>;
  /** Model methods take and give encoded bytes (the router forwards them undecoded). @default false */
  raw?: boolean;
  /** Metadata sent with every answer and error (the pool names itself). */
  stamp?: grpc.Metadata;
  /** Most bytes in a request message (RESOURCE_EXHAUSTED beyond), as the REST body limit. */
  maxMessageBytes: number;
  /** Called after every call (metrics): the method, its status code and its duration in seconds. */
  onCall?(method: string, code: grpc.status, seconds: number): void;
  /** Where bugs are logged (their callers get INTERNAL "internal error", as over REST). */
  log: { error(obj: object, msg: string): void };
}

/** The longest a drain waits for gRPC calls in flight (their deadlines, and the process's drain limit, come first). */
const DRAIN_LIMIT_MS = 60 * 60_000;

export class GrpcEndpoint {
  private readonly server: grpc.Server;
  private address?: string;
  private draining = false;

  constructor(private readonly o: GrpcEndpointOptions) {
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': o.maxMessageBytes,
      // Clients' keepalive pings (grpc-js and Triton clients send them) are welcome every 10 s, even idle.
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 10_000,
      // A client keeps an HTTP/2 connection (to one replica behind a Service) for as long as it lives:
      // asking it to reconnect every 30 s spreads its calls over replicas the HPA adds. Calls in flight
      // finish on the old connection.
      'grpc.max_connection_age_ms': 30_000,
      'grpc.max_connection_age_grace_ms': 10 * 60_000,
      // channelz (grpc's own introspection service) is not served: no bookkeeping per call for it.
      'grpc.enable_channelz': 0,
    });
    const definition = inferenceService();
    // Model methods take their bytes as they came: the router forwards them (raw), the pool decodes them in
    // the handler, so that a malformed message is a 400 with the pool's metadata like any other (grpc-js
    // would answer INTERNAL itself, before any handler, without it).
    const service: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...definition };
    for (const m of MODEL_METHODS) service[m] = { ...definition[m], requestDeserialize: RAW.deserialize, ...(o.raw ? { responseSerialize: RAW.serialize as (b: unknown) => Buffer } : {}) };
    const decoded = (m: ModelMethod, handle: ModelHandler): ModelHandler => async (call, requestId) => {
      let request: unknown;
      try {
        request = definition[m].requestDeserialize(call.request as Buffer);
      } catch (e) {
        throw new ProtocolError(400, `the ${m} request is not a valid message: ${(e as Error).message}`);
      }
      return handle(Object.assign(call, { request }), requestId);
    };
    const handlers = o.models;
    const models = handlers ? Object.fromEntries(MODEL_METHODS.map((m) => [m, o.raw ? handlers[m] : decoded(m, handlers[m])])) : {};
    const own = {
      ServerLive: async () => ({ message: { live: true } }),
      ServerReady: async () => ({ message: { ready: !this.draining && o.ready() } }),
      ServerMetadata: async () => ({ message: { name: o.name, version: o.version, extensions: o.extensions } }),
    };
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const [method, handle] of Object.entries({ ...own, ...models })) implementation[method] = this.unary(method, handle);
    this.server.addService(service, implementation);
    // gRPC's standard health check (Kubernetes gRPC probes, grpc-health-probe): the server, or the protocol's
    // service by name, SERVING exactly when ServerReady is true. Watch is not served: grpc-js answers
    // UNIMPLEMENTED for a method without a handler.
    this.server.addService(healthService().service, {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const name = call.request.service;
        if (name !== '' && name !== SERVICE) return callback({ code: grpc.status.NOT_FOUND, details: `no service ${JSON.stringify(name)}: ask for "" or "${SERVICE}"` });
        callback(null, { status: !this.draining && o.ready() ? 'SERVING' : 'NOT_SERVING' });
      },
    });
  }

  /** Binds `host:port` (0: any free port); resolves with the port. */
  listen(port: number, host: string): Promise<number> {
    const at = (p: number) => `${host.includes(':') ? `[${host}]` : host}:${p}`;
    return new Promise((resolve, reject) =>
      this.server.bindAsync(at(port), grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) return reject(new Error(`gRPC cannot listen on ${at(port)}: ${err.message}`));
        this.address = at(bound);
        resolve(bound);
      }),
    );
  }

  /** Not ready from now on; clients are told (GOAWAY) to open new calls elsewhere; calls in flight go on. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    if (this.address) this.server.drain(this.address, DRAIN_LIMIT_MS);
  }

  /**
   * Stops taking calls and resolves once those in flight are answered (or after `graceMs`, cut off). The
   * process's own drain limit (BOTSHARD_DRAIN_SECONDS) bounds it first in practice.
   */
  close(graceMs = DRAIN_LIMIT_MS): Promise<void> {
    this.drain();
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      force.unref();
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  private unary(method: string, handle: ModelHandler): grpc.handleUnaryCall<unknown, unknown> {
    const { stamp, onCall } = this.o;
    return (call, callback) => {
      const started = process.hrtime.bigint();
      const requestId = requestIdOf(metadataValue(call.metadata, 'x-request-id'));
      // A call the client gave up on (its deadline, or cancelled) is counted as such, whatever we answered.
      const done = (code: grpc.status) => onCall?.(method, call.cancelled ? grpc.status.CANCELLED : code, Number(process.hrtime.bigint() - started) / 1e9);
      handle(call, requestId).then(
        (reply) => {
          const metadata = reply.metadata ?? new grpc.Metadata();
          if (stamp) metadata.merge(stamp);
          metadata.set('x-request-id', requestId);
          call.sendMetadata(metadata);
          callback(null, reply.message);
          done(grpc.status.OK);
        },
        (e: unknown) => {
          const status = e instanceof GrpcStatusError ? e.status : grpcError(e instanceof ProtocolError ? e : new ProtocolError(500, 'internal error'));
          if (!(e instanceof ProtocolError) && !(e instanceof GrpcStatusError)) this.o.log.error({ err: e, method, reqId: requestId }, 'gRPC call failed');
          const metadata = status.metadata ?? new grpc.Metadata();
          if (stamp && !(e instanceof GrpcStatusError)) for (const [k, v] of Object.entries(stamp.getMap())) if (metadata.get(k).length === 0) metadata.set(k, v);
          metadata.set('x-request-id', requestId);
          callback({ ...status, metadata });
          done(status.code ?? grpc.status.UNKNOWN);
        },
      );
    };
  }
}
