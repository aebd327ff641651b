/**
 * The pool's gRPC model methods (ModelReady, ModelMetadata, ModelInfer): messages in, the model service,
 * messages out. Tensors arrive typed (`contents`) or raw (`raw_input_contents`); answers come back the
 * same way the request came (Triton's clients send raw and read raw).
 */
import * as grpc from '@grpc/grpc-js';
import { CONVERSATION_HEADER, CONVERSATION_PARAMETER, Datatype, ProtocolError, RESIDENCY_HEADER, conversationOf } from '../oip';
import { ModelMethod, deadlineOf } from '../oip/grpc';
import { Tensor, TensorDataError, datatypeOf, decodeRaw, encodeRaw, tensorHeader } from '../oip/tensors';
import type { GrpcReply, ModelHandler } from '../serve/grpc';
import { InputTensor, ModelService } from './models';

type Contents = Record<string, unknown[]>;
interface InferInputTensor { name: string; datatype: string; shape: number[]; contents: Contents | null }
interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  inputs: InferInputTensor[];
  outputs: Array<{ name: string }>;
  raw_input_contents: Buffer[];
  parameters: Record<string, { string_param?: string; int64_param?: number }>;
}
type ModelRequest = { name: string; version: string };

/** The `contents` field of each datatype. */
const CONTENTS: Record<Exclude<Datatype, 'FP16'>, string> = {
  BOOL: 'bool_contents', INT8: 'int_contents', INT16: 'int_contents', INT32: 'int_contents', INT64: 'int64_contents',
  UINT8: 'uint_contents', UINT16: 'uint_contents', UINT32: 'uint_contents', UINT64: 'uint64_contents',
  FP32: 'fp32_contents', FP64: 'fp64_contents', BYTES: 'bytes_contents',
};

/** REST's parameters as InferParameter messages: a string, a boolean, an integer (int64) or another number (double). */
function inferParameters(parameters: Record<string, string | number | boolean>): Record<string, Record<string, string | number | boolean>> {
  const typed = (v: string | number | boolean): Record<string, string | number | boolean> =>
    typeof v === 'string' ? { string_param: v } : typeof v === 'boolean' ? { bool_param: v } : Number.isSafeInteger(v) ? { int64_param: v } : { double_param: v };
  return Object.fromEntries(Object.entries(parameters).map(([k, v]) => [k, typed(v)]));
}

/** The model methods of the pool's gRPC endpoint. */
export function poolGrpcMethods(serviceOf: () => ModelService): Record<ModelMethod, ModelHandler> {
  return {
    ModelReady: async (call) => {
      const service = serviceOf();
      const r = call.request as ModelRequest;
      const { entry, role } = service.resolve(r.name, r.version);
      return { message: { ready: service.ready(entry, role).ready } };
    },
    ModelMetadata: async (call) => {
      const service = serviceOf();
      const r = call.request as ModelRequest;
      const m = service.metadata(service.resolve(r.name, r.version).entry);
      return { message: { name: m.name, versions: m.versions, platform: m.platform, inputs: m.inputs.map(tensorHeader), outputs: m.outputs.map(tensorHeader), parameters: inferParameters(m.parameters ?? {}) } };
    },
    ModelInfer: async (call, requestId) => infer(serviceOf(), call.request as ModelInferRequest, requestId, deadlineOf(call), call.metadata.get(CONVERSATION_HEADER)[0]),
  };
}

async function infer(service: ModelService, r: ModelInferRequest, requestId: string, deadline: number | undefined, conversation: unknown): Promise<GrpcReply> {
  const raw = r.raw_input_contents.length > 0;
  const parameter = r.parameters?.[CONVERSATION_PARAMETER];
  const result = await service.infer({
    bot: r.model_name,
    version: r.model_version,
    id: r.id,
    inputs: inputsOf(r, raw),
    outputs: r.outputs.map((o) => o.name),
    requestId,
    deadline,
    conversation: conversationOf(conversation, parameter?.string_param ?? parameter?.int64_param),
  });
  const metadata = new grpc.Metadata();
  if (result.residency) metadata.set(RESIDENCY_HEADER, result.residency);
  const message = raw
    ? { model_name: result.model_name, model_version: result.model_version, id: r.id, outputs: result.outputs.map(tensorHeader), raw_output_contents: result.outputs.map((t) => encodeRaw(t.datatype, t.data)) }
    : { model_name: result.model_name, model_version: result.model_version, id: r.id, outputs: result.outputs.map((t) => ({ ...tensorHeader(t), contents: contentsOf(t) })) };
  return { message, metadata };
}

/** The request's input tensors, their elements decoded from `contents` or from `raw_input_contents`. */
function inputsOf(r: ModelInferRequest, raw: boolean): InputTensor[] {
  if (raw && r.raw_input_contents.length !== r.inputs.length) {
    throw new ProtocolError(400, `raw_input_contents has ${r.raw_input_contents.length} entries for ${r.inputs.length} inputs: send one per input, in order`);
  }
  try {
    return r.inputs.map((input, i) => {
      const datatype = datatypeOf(input.name, input.datatype);
      if (raw && input.contents) throw new ProtocolError(400, `input "${input.name}" has contents and raw_input_contents is used: send every input one way`);
      if (!raw && datatype === 'FP16') throw new ProtocolError(400, `input "${input.name}" is FP16, which has no typed contents: send it as raw_input_contents`);
      const data = raw ? decodeRaw(input.name, datatype, r.raw_input_contents[i]) : ((input.contents?.[CONTENTS[datatype as Exclude<Datatype, 'FP16'>]] ?? []) as unknown[]);
      return { name: input.name, datatype, shape: input.shape, data: datatype === 'BYTES' && !raw ? data.map((b) => (b as Buffer).toString('utf8')) : data };
    });
  } catch (e) {
    if (e instanceof TensorDataError) throw new ProtocolError(400, e.message);
    throw e;
  }
}

function contentsOf(t: Tensor): Contents {
  return t.datatype === 'BYTES' ? { bytes_contents: Array.from(t.data as ArrayLike<string>, (s) => Buffer.from(s, 'utf8')) } : { fp32_contents: Array.from(t.data as ArrayLike<number>) };
}
