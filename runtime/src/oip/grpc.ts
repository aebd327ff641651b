/**
 * The protocol over gRPC (`inference.GRPCInferenceService`, from `proto/open_inference_grpc.proto`), as
 * pool and router both use it: the service definition, statuses mapped from the REST ones, request
 * parameters as plain values, and the few wire-level reads the router needs to route without decoding.
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { POOL_HEADER, ProtocolError } from './replies';

export const SERVICE = 'inference.GRPCInferenceService';

/** The .proto ships with the package (`runtime/proto`), two folders above this file in src and in lib. */
const PROTO = path.join(__dirname, '..', '..', 'proto', 'open_inference_grpc.proto');

/** gRPC's standard health checking service, beside it. */
const HEALTH_PROTO = path.join(__dirname, '..', '..', 'proto', 'health.proto');

/** Messages as plain objects: fields as the .proto spells them (snake_case), int64 as numbers, enums by name, unset fields at their defaults. */
const AS_OBJECTS: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true, oneofs: true };

/** A message type's wire form both ways, as grpc-js calls them. */
function codecOf(type: protobuf.Type): { serialize: (value: object) => Buffer; deserialize: (bytes: Buffer) => object } {
  return {
    serialize: (value) => {
      // protobufjs would encode an array as an empty message.
      if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
      const bytes = type.encode(type.fromObject(value)).finish();
      // protobufjs writes Buffers in Node already: no copy.
      return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes) => type.toObject(type.decode(bytes), AS_OBJECTS),
  };
}

let loaded: { client: grpc.ServiceClientConstructor; health: grpc.ServiceClientConstructor } | undefined;

/**
 * A service of a .proto as grpc-js takes it, read with protobufjs (what @grpc/proto-loader does, without
 * loading all of `descriptor.proto` beside it into every process).
 */
function serviceOf(file: string, name: string): grpc.ServiceClientConstructor {
  const root = new protobuf.Root().loadSync(file, { keepCase: true });
  root.resolveAll();
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of root.lookupService(name).methodsArray) {
    const [request, response] = [codecOf(method.resolvedRequestType!), codecOf(method.resolvedResponseType!)];
    definition[method.name] = {
      path: `/${name}/${method.name}`,
      requestStream: !!method.requestStream,
      responseStream: !!method.responseStream,
      requestSerialize: request.serialize,
      requestDeserialize: request.deserialize,
      responseSerialize: response.serialize,
      responseDeserialize: response.deserialize,
      // The method's name in a generated client as well: client.modelInfer beside client.ModelInfer (the
      // protocols' method names are plain UpperCamelCase: lowering the first letter is their camelCase).
      originalName: method.name[0].toLowerCase() + method.name.slice(1),
    };
  }
  return grpc.makeGenericClientConstructor(definition, name);
}

function load() {
  loaded ??= { client: serviceOf(PROTO, SERVICE), health: serviceOf(HEALTH_PROTO, 'grpc.health.v1.Health') };
  return loaded;
}

/** `grpc.health.v1.Health`: its service definition and client constructor. */
export function healthService(): grpc.ServiceClientConstructor {
  return load().health;
}

/** The service definition (for `server.addService`). */
export function inferenceService(): grpc.ServiceDefinition {
  return load().client.service;
}

/** A generated client of the service (tests, benchmarks, and users' code can do the same with the .proto). */
export function inferenceClient(): grpc.ServiceClientConstructor {
  return load().client;
}

/** The methods that name a model (their request's field 1 is its name, field 2 its version). */
export const MODEL_METHODS = ['ModelReady', 'ModelMetadata', 'ModelInfer'] as const;
export type ModelMethod = (typeof MODEL_METHODS)[number];

/** `/inference.GRPCInferenceService/<method>`: the HTTP/2 path of a method. */
export function methodPath(method: string): string {
  return `/${SERVICE}/${method}`;
}

/** The gRPC status of a REST status (and of "overloaded": RESOURCE_EXHAUSTED, as a full queue is). */
export function grpcCodeOf(e: ProtocolError): grpc.status {
  if (e.o.overloaded) return grpc.status.RESOURCE_EXHAUSTED;
  switch (e.status) {
    case 400: return grpc.status.INVALID_ARGUMENT;
    case 401: return grpc.status.UNAUTHENTICATED;
    case 403: return grpc.status.PERMISSION_DENIED;
    case 404: return grpc.status.NOT_FOUND;
    case 413:
    case 429: return grpc.status.RESOURCE_EXHAUSTED;
    case 502:
    case 503: return grpc.status.UNAVAILABLE;
    case 504: return grpc.status.DEADLINE_EXCEEDED;
    default: return e.status >= 400 && e.status < 500 ? grpc.status.FAILED_PRECONDITION : grpc.status.INTERNAL;
  }
}

/** The HTTP status a gRPC status stands for (metrics keep one vocabulary of codes for both protocols). */
export function httpStatusOf(code: grpc.status): number {
  switch (code) {
    case grpc.status.OK: return 200;
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.OUT_OF_RANGE: return 400;
    case grpc.status.UNAUTHENTICATED: return 401;
    case grpc.status.PERMISSION_DENIED: return 403;
    case grpc.status.NOT_FOUND: return 404;
    case grpc.status.CANCELLED: return 499;
    case grpc.status.RESOURCE_EXHAUSTED: return 429;
    case grpc.status.FAILED_PRECONDITION: return 412;
    case grpc.status.UNIMPLEMENTED: return 501;
    case grpc.status.UNAVAILABLE: return 503;
    case grpc.status.DEADLINE_EXCEEDED: return 504;
    default: return 500;
  }
}

/**
 * A ProtocolError as a gRPC error: the status, the message as details, and in the trailers the pool that
 * answered (`x-botshard-pool`, or the holder on a NOT_FOUND), `retry-after` and gRPC's own retry pushback.
 */
export function grpcError(e: ProtocolError, pool?: string): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  const named = e.o.holder ?? pool;
  if (named !== undefined) metadata.set(POOL_HEADER, named);
  for (const [k, v] of Object.entries(e.o.headers ?? {})) metadata.set(k, v);
  if (e.o.retryAfterSeconds !== undefined) {
    metadata.set('retry-after', String(e.o.retryAfterSeconds));
    metadata.set('grpc-retry-pushback-ms', String(e.o.retryAfterSeconds * 1000));
  }
  return { code: grpcCodeOf(e), details: e.message, metadata };
}

/** A call's deadline (ms since epoch), if its caller set one. */
export function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : undefined;
}

/** A first metadata value as text (`authorization`, `x-request-id`), or undefined. */
export function metadataValue(metadata: grpc.Metadata, key: string): string | undefined {
  const v = metadata.get(key)[0];
  return v === undefined ? undefined : typeof v === 'string' ? v : v.toString('utf8');
}

/** Bytes passed through unchanged: the router forwards messages without decoding them. */
export const RAW = {
  serialize: (b: Buffer) => b,
  deserialize: (b: Buffer) => b,
};

/**
 * A string field of an encoded message (proto3: the last occurrence wins), read without decoding the rest:
 * length-delimited fields (tensors) are skipped over. Undefined when absent; throws on bytes that are not
 * protobuf.
 */
export function stringField(message: Buffer, field: number): string | undefined {
  let at = 0;
  let found: string | undefined;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (at >= message.length) throw new Error('truncated varint');
      const byte = message[at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new Error('varint too long');
  };
  while (at < message.length) {
    const tag = varint();
    const wire = tag % 8;
    const number = Math.floor(tag / 8);
    if (wire === 0) varint();
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const length = varint();
      if (at + length > message.length) throw new Error('a field runs past the end of the message');
      if (number === field) found = message.toString('utf8', at, at + length);
      at += length;
    } else throw new Error(`wire type ${wire} is not used by this protocol`);
  }
  if (at > message.length) throw new Error('truncated message');
  return found;
}
