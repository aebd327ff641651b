/** A real gRPC client of the protocol's service (`@grpc/grpc-js`, types from the .proto) for tests. */
import * as grpc from '@grpc/grpc-js';
import { inferenceClient } from '@botshard/runtime/oip/grpc';
import { encodeRaw } from '@botshard/runtime/oip/tensors';

/** How a call ended: OK with its response, or a status; with the metadata the server sent either way. */
export interface GrpcOutcome {
  code: grpc.status;
  details?: string;
  response?: any;
  /** Initial metadata merged with trailers. */
  metadata: Record<string, string>;
}

export class GrpcClient {
  readonly client: grpc.Client & Record<string, any>;

  constructor(readonly target: string) {
    this.client = new (inferenceClient())(target, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
  }

  /** Calls a method; resolves with its outcome whatever the status (bounded by `deadlineMs`, 20 s unless set). */
  call(method: string, request: object, o: { metadata?: Record<string, string>; deadlineMs?: number } = {}): Promise<GrpcOutcome> {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(o.metadata ?? {})) metadata.set(k, v);
    const seen: Record<string, string> = {};
    const keep = (m?: grpc.Metadata) => {
      for (const [k, v] of Object.entries(m?.getMap() ?? {})) seen[k] = String(v);
    };
    return new Promise((resolve) => {
      const call = this.client[method](request, metadata, { deadline: Date.now() + (o.deadlineMs ?? 20_000) }, (err: grpc.ServiceError | null, response: any) => {
        keep(err?.metadata);
        resolve(err ? { code: err.code, details: err.details, metadata: seen } : { code: grpc.status.OK, response, metadata: seen });
      });
      call.on('metadata', keep);
    });
  }

  close(): void {
    this.client.close();
  }
}

/** A ModelInfer request for a bot: texts as `bytes_contents`, or as `raw_input_contents` (`raw`). */
export function inferRequest(bot: string, texts: string[], o: { raw?: boolean; outputs?: string[]; id?: string } = {}): object {
  const input = { name: 'text', datatype: 'BYTES', shape: [texts.length] };
  const outputs = (o.outputs ?? []).map((name) => ({ name }));
  if (!o.raw) return { model_name: bot, id: o.id ?? '', inputs: [{ ...input, contents: { bytes_contents: texts.map((t) => Buffer.from(t)) } }], outputs };
  return { model_name: bot, id: o.id ?? '', inputs: [input], outputs, raw_input_contents: [encodeRaw('BYTES', texts)] };
}

/** Sends bytes as a ModelInfer message, undecoded: for messages no client library would encode. */
export function rawModelInfer(client: GrpcClient, bytes: Buffer): Promise<grpc.ServiceError | null> {
  const same = (b: Buffer) => b;
  return new Promise((resolve) => client.client.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', same, same, bytes, (err) => resolve(err)));
}

/** A ModelInfer message naming `bot` whose inputs field (5) is not a valid message: only a full decoder sees it. */
export function malformedInfer(bot: string): Buffer {
  return Buffer.concat([Buffer.from([0x0a, bot.length]), Buffer.from(bot), Buffer.from([0x2a, 0x01, 0xff])]);
}
