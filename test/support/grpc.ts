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

/**
 * gRPC load: `workers` loops of ModelInfer calls over `bots` until stopped (or `maxMs`), each on its own
 * client connection. The same shape as REST's `load` (test/router/support.ts): every status, the failures,
 * and the pool that last answered each bot.
 */
export function grpcLoad(target: string, bots: string[], workers = 2, maxMs = 30_000) {
  const statuses: number[] = [];
  const failures: Array<{ code: grpc.status; bot: string; details?: string }> = [];
  const pools = new Map<string, string>();
  let running = true;
  const end = Date.now() + maxMs;
  const loops = Array.from({ length: workers }, async (_, w) => {
    const client = new GrpcClient(target);
    try {
      for (let i = w; running && Date.now() < end; i += workers) {
        const bot = bots[i % bots.length];
        const out = await client.call('ModelInfer', inferRequest(bot, ['I forgot my password'], { raw: true }), { deadlineMs: 10_000 });
        statuses.push(out.code);
        if (out.code !== grpc.status.OK) failures.push({ code: out.code, bot, details: out.details });
        else pools.set(bot, out.metadata['x-botshard-pool']);
      }
    } finally {
      client.close();
    }
  });
  return {
    statuses,
    failures,
    pools,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
