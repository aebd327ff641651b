/**
 * The protocol's binary tensor data extension over REST (Triton's `binary_tensor_data`): a body of
 * `Inference-Header-Content-Length` bytes of JSON followed by the raw bytes of the inputs whose
 * `parameters.binary_data_size` says how many are theirs, in input order. Answers carry outputs the same
 * way when the request asks (`parameters.binary_data_output`, or `binary_data` on one output).
 */
import { parseJson } from './json';
import { Tensor, TensorDataError, datatypeOf, decodeRaw, encodeRaw, jsonTensor } from './tensors';

/** The request and response header giving the JSON part's length in bytes. */
export const BINARY_HEADER = 'inference-header-content-length';

/** The extension's name in server metadata. */
export const BINARY_EXTENSION = 'binary_tensor_data';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The JSON request of a binary-extension body, each binary input's `data` filled with its decoded
 * elements: from here on it is validated as any JSON request is. Throws a 400 error naming what is wrong.
 */
export function decodeBinaryRequest(body: Buffer, headerLength: string): unknown {
  const n = Number(headerLength);
  if (!/^\d+$/.test(headerLength) || n > body.length) {
    throw new TensorDataError(`${BINARY_HEADER} is ${JSON.stringify(headerLength)} but the body has ${body.length} bytes: it must be the length of the JSON part, from 0 to ${body.length}`);
  }
  const request = parseJson(body.toString('utf8', 0, n));
  let at = n;
  const inputs = isObject(request) && Array.isArray(request.inputs) ? request.inputs : [];
  for (const input of inputs) {
    const size = isObject(input) && isObject(input.parameters) ? input.parameters.binary_data_size : undefined;
    if (size === undefined) continue;
    const name = String((input as Json).name);
    if (!Number.isInteger(size) || (size as number) < 0) throw new TensorDataError(`input "${name}": parameters.binary_data_size must be a byte count, got ${JSON.stringify(size)}`);
    if ((input as Json).data !== undefined) throw new TensorDataError(`input "${name}" has both "data" and parameters.binary_data_size: send its elements one way`);
    const datatype = datatypeOf(name, (input as Json).datatype);
    if (at + (size as number) > body.length) throw new TensorDataError(`input "${name}" declares ${size} binary bytes but the body has ${body.length - at} left`);
    (input as Json).data = decodeRaw(name, datatype, body.subarray(at, at + (size as number)));
    at += size as number;
  }
  if (at !== body.length) throw new TensorDataError(`the body has ${body.length - at} bytes after the JSON part and the inputs' binary_data_size: the sizes must add up to the body`);
  return request;
}

/** Which outputs an inference request wants as binary data: every one, or those named. */
export function binaryOutputs(request: { parameters?: Json; outputs?: Array<{ name: string; parameters?: Json }> }): 'all' | Set<string> {
  if (request.parameters?.binary_data_output === true) return 'all';
  return new Set((request.outputs ?? []).filter((o) => o.parameters?.binary_data === true).map((o) => o.name));
}

/**
 * An inference response with the chosen outputs as binary data: the body, and the JSON part's length
 * (the `Inference-Header-Content-Length` of the answer). Undefined when no output is binary (plain JSON then).
 */
export function encodeBinaryResponse(response: Json & { outputs: Tensor[] }, binary: 'all' | Set<string>): { body: Buffer; headerLength: number } | undefined {
  const wanted = (t: Tensor) => binary === 'all' || binary.has(t.name);
  if (!response.outputs.some(wanted)) return undefined;
  const blobs: Buffer[] = [];
  const outputs = response.outputs.map((t) => {
    if (!wanted(t)) return jsonTensor(t);
    const raw = encodeRaw(t.datatype, t.data);
    blobs.push(raw);
    return { name: t.name, datatype: t.datatype, shape: t.shape, parameters: { ...t.parameters, binary_data_size: raw.length } };
  });
  const header = Buffer.from(JSON.stringify({ ...response, outputs }), 'utf8');
  return { body: Buffer.concat([header, ...blobs]), headerLength: header.length };
}
