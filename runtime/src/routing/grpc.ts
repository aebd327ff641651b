/**
 * The router's gRPC model methods: read the bot from the request's bytes (field 1, without decoding the
 * tensors), admit it as REST requests are (API keys from metadata), and forward the message unchanged to
 * the bot's pool over a kept HTTP/2 connection (node:http2, grpc-call.ts), with the same fallbacks and
 * circuits. The pool's answer, status and metadata come back as they were.
 */
import * as grpc from '@grpc/grpc-js';
import { CONVERSATION_HEADER, POOL_HEADER, ProtocolError, RESIDENCY_HEADER } from '../oip';
import { MODEL_METHODS, ModelMethod, deadlineOf, httpStatusOf, metadataValue, methodPath, stringField } from '../oip/grpc';
import { GrpcStatusError, ModelHandler } from '../serve/grpc';
import type { PoolAddress } from './addresses';
import { Admission } from './admission';
import { MODEL_VERSION } from './admission-rules';
import { PoolChannels, PoolClient } from './channels';
import { CallerGone, Forwarder, PoolAnswer, Transport, UpstreamError } from './forward';
import { Cancel, UnaryOutcome, headerValue, unaryCall } from './grpc-call';
import { InFlight } from './metrics';

/** Metadata passed on to the pool (credentials stay at the router). */
const FORWARDED_METADATA = ['traceparent', 'tracestate', CONVERSATION_HEADER];
/** Pool metadata passed back to the caller. */
const RETURNED_METADATA = [POOL_HEADER, RESIDENCY_HEADER, 'retry-after', 'grpc-retry-pushback-ms'];

type Answer = { message: Buffer; metadata: grpc.Metadata } | { status: Partial<grpc.StatusObject> };

/** The model methods of the router's gRPC endpoint (raw: messages as bytes). */
export function routerGrpcMethods(parts: () => { admission: Admission; forwarder: Forwarder; address: PoolAddress; channels: PoolChannels; inFlight: InFlight }): Record<ModelMethod, ModelHandler> {
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
    if (version && !MODEL_VERSION.test(version)) throw new ProtocolError(400, `invalid model version ${JSON.stringify(version.slice(0, 80))}`);
    const route = o.admission.admit(bot, { authorization: metadataValue(call.metadata, 'authorization'), 'x-api-key': metadataValue(call.metadata, 'x-api-key') });
    // The caller's deadline bounds the forwarding, and its cancel cancels the pool's call. A call its caller
    // stopped waiting for (cancelled, or its deadline passed: whichever of grpc-js and the forwarding sees it
    // first) is one the router never answered.
    const end = o.inFlight.take('grpc');
    const cancelled = new Cancel();
    const onCancel = () => {
      end(true);
      cancelled.abort();
    };
    call.once('cancelled', onCancel);
    if (call.cancelled) onCancel();
    try {
      // The metadata the pool gets, as the request headers node:http2 sends (grpc-call.ts).
      const outgoing: Record<string, string> = { 'x-request-id': requestId };
      for (const key of FORWARDED_METADATA) {
        const v = metadataValue(call.metadata, key);
        if (v !== undefined) outgoing[key] = v;
      }
      const transport: Transport<Answer> = {
        name: 'grpc',
        address: o.address,
        call: (pool, address, deadline) => callPool(o.channels.client(pool, address), pool, method, message, outgoing, deadline, cancelled),
      };
      const { answer } = await o.forwarder.forward(route, transport, { deadline: deadlineOf(call), signal: cancelled }).catch((e: unknown) => {
        if (e instanceof CallerGone) end(true);
        throw e;
      });
      // Counted as cut off already (the router is exiting past its drain limit): no answer after the count.
      if (!end(false) && !cancelled.aborted) throw new ProtocolError(503, 'the router is exiting: its drain passed its limit');
      if ('status' in answer) throw new GrpcStatusError(answer.status);
      return { message: answer.message, metadata: answer.metadata };
    } finally {
      call.removeListener('cancelled', onCancel);
      end(false);
      o.admission.release(route);
    }
  };
  return Object.fromEntries(MODEL_METHODS.map((m) => [m, handler(m)])) as Record<ModelMethod, ModelHandler>;
}

/**
 * One call to a pool. An error status that carries the pool's name is the pool's answer (NOT_FOUND naming
 * the holder, UNAVAILABLE while loading, ...). Without it, DEADLINE_EXCEEDED and UNAVAILABLE never reached
 * the pool (connection refused or reset, deadline) and are UpstreamErrors for the loop (and its circuit);
 * any other status (UNIMPLEMENTED from an older pool, ...) is relayed as the pool's answer.
 */
export async function callPool(client: PoolClient, pool: string, method: ModelMethod, message: Buffer, metadata: Readonly<Record<string, string>>, deadline: number, signal: Cancel): Promise<PoolAnswer<Answer>> {
  const out = await unaryCall(client, methodPath(method), message, metadata, deadline, signal);
  const discard = async () => undefined;
  if (out.code === grpc.status.OK) {
    // proto3 writes `ready: false` as an empty message: a pool not ready for the bot, as REST's 503.
    const unavailable = method === 'ModelReady' && out.message!.length === 0;
    return { answer: { message: out.message!, metadata: returned(out) }, code: unavailable ? 503 : 200, unavailable, discard };
  }
  const answeredBy = headerValue(out.trailers, POOL_HEADER) ?? headerValue(out.headers, POOL_HEADER);
  if (answeredBy === undefined) {
    if (out.code === grpc.status.DEADLINE_EXCEEDED || out.code === grpc.status.CANCELLED) throw new UpstreamError('timeout', pool, `pool "${pool}" did not answer in time`);
    if (out.code === grpc.status.UNAVAILABLE) throw new UpstreamError('connect', pool, `pool "${pool}" is unreachable over gRPC (${out.details})`);
  }
  return {
    answer: { status: { code: out.code, details: out.details, metadata: returned(out) } },
    code: httpStatusOf(out.code),
    // As over REST: a NOT_FOUND names the pool that holds the bot (itself, when the bot is not in its catalog).
    holder: out.code === grpc.status.NOT_FOUND ? answeredBy : undefined,
    unavailable: answeredBy !== undefined && (out.code === grpc.status.UNAVAILABLE || out.code === grpc.status.RESOURCE_EXHAUSTED),
    discard,
  };
}

/** The pool metadata a caller gets back: each key's values from the trailers, else from the headers. */
function returned(from: UnaryOutcome): grpc.Metadata {
  const out = new grpc.Metadata();
  for (const key of RETURNED_METADATA) {
    const v = from.trailers[key] ?? from.headers[key];
    if (v !== undefined) for (const one of Array.isArray(v) ? v : [v]) out.add(key, one);
  }
  return out;
}
