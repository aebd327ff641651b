/**
 * The gRPC side of the server shell, beside the REST app: one `grpc-js` server speaking the protocol's
 * `inference.GRPCInferenceService`, answering health and server metadata itself (as `createApp` does over
 * REST) and the model methods with the handlers it is given. Errors are ProtocolErrors, sent as statuses.
 * It drains with the app: GOAWAY to clients, then in-flight calls finish.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { ProtocolError } from '../oip';
import { MODEL_METHODS, ModelMethod, RAW, grpcError, inferenceService, metadataValue } from '../oip/grpc';

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

export type ModelHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, requestId: string) => Promise<GrpcReply>;

export interface GrpcEndpointOptions {
  /** Server metadata, as `GET /v2` gives it. */
  name: string;
  version: string;
  extensions: string[];
  /** Whether the server is ready (false while draining, whatever this says). */
  ready(): boolean;
  /** The handlers of ModelReady, ModelMetadata and ModelInfer. */
  models: Record<ModelMethod, ModelHandler>;
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
    });
    const definition = inferenceService();
    const service: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...definition };
    if (o.raw) {
      for (const m of MODEL_METHODS) service[m] = { ...definition[m], requestDeserialize: RAW.deserialize, responseSerialize: RAW.serialize as (b: unknown) => Buffer };
    }
    const own = {
      ServerLive: async () => ({ message: { live: true } }),
      ServerReady: async () => ({ message: { ready: !this.draining && o.ready() } }),
      ServerMetadata: async () => ({ message: { name: o.name, version: o.version, extensions: o.extensions } }),
    };
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const [method, handle] of Object.entries({ ...own, ...o.models })) implementation[method] = this.unary(method, handle);
    this.server.addService(service, implementation);
  }

  /** Binds `host:port` (0: any free port); resolves with the port. */
  listen(port: number, host: string): Promise<number> {
    const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    return new Promise((resolve, reject) =>
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) return reject(new Error(`gRPC cannot listen on ${address}: ${err.message}`));
        this.address = `${host.includes(":") ? `[${host}]` : host}:${bound}`;
        resolve(bound);
      }),
    );
  }

  /** Not ready from now on; clients are told (GOAWAY) to open new calls elsewhere; calls in flight go on. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    if (this.address) this.server.drain(this.address, 60_000);
  }

  /** Stops taking calls and resolves once those in flight are answered (or after `graceMs`, cut off). */
  close(graceMs = 30_000): Promise<void> {
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
      const given = metadataValue(call.metadata, 'x-request-id');
      const requestId = given && /^[0-9A-Za-z._:-]{1,128}$/.test(given) ? given : randomUUID();
      const done = (code: grpc.status) => onCall?.(method, code, Number(process.hrtime.bigint() - started) / 1e9);
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
