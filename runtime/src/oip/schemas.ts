/**
 * Open Inference Protocol v2 (REST) request and response schemas: JSON Schema for fastify's validation
 * and fast serialization (built with json-schema.ts), and the TypeScript type of each beside it. Shared
 * by pool and router. Source: KServe's open-inference-protocol specification (docs in /work/shared/OIP.md).
 */
import { JsonSchema, anyOf, array, boolean, integer, literal, number, object, optional, record, string, tuple, unknown } from './json-schema';

/** Tensor datatypes of the protocol. */
export const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;
export type Datatype = (typeof DATATYPES)[number];

/** Platform string of ONNX models. */
export const ONNX_PLATFORM = 'onnx_onnxv1';

export const Parameters = record(anyOf([string(), number(), boolean()]));
export type Parameters = Record<string, string | number | boolean>;

export const ErrorResponse = object({ error: string() });
export interface ErrorResponse {
  error: string;
}

export const LiveResponse = object({ live: boolean() });
export const ReadyResponse = object({ ready: boolean() });

export const ServerMetadataResponse = object({
  name: string(),
  version: string(),
  extensions: array(string()),
});
export interface ServerMetadataResponse {
  name: string;
  version: string;
  extensions: string[];
}

export const TensorMetadata = object({
  name: string(),
  datatype: string(),
  /** -1 for a variable dimension. */
  shape: array(integer()),
  parameters: optional(Parameters),
});
export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Parameters;
}

export const ModelMetadataResponse = object({
  name: string(),
  versions: optional(array(string())),
  platform: string(),
  inputs: array(TensorMetadata),
  outputs: array(TensorMetadata),
  parameters: optional(Parameters),
});
export interface ModelMetadataResponse {
  name: string;
  versions?: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
  parameters?: Parameters;
}

export const ModelReadyResponse = object({
  name: string(),
  ready: boolean(),
  /** botshard: loading, ready, failed, leaving (moved to another pool, served for a grace period) or cold (loaded on its first request). */
  state: optional(string()),
  /** botshard, in an overcommitted pool: resident, cold or loading. */
  residency: optional(string()),
  /** Why the model is not ready (a load failure). */
  error: optional(string()),
  /** botshard: the bot runs in the quarantine lane (its runs took too long a share of its group's timeout). */
  quarantined: optional(boolean()),
  /**
   * botshard: the catalog's new version of this bot failed to load, and its previous version serves (the
   * bot stays ready): the model file it names, why it failed, since when, failed loads in a row.
   */
  failedVersion: optional(object({ head: string(), error: string(), since: string(), failures: integer() })),
});
export interface ModelReadyResponse {
  name: string;
  ready: boolean;
  state?: string;
  residency?: string;
  error?: string;
  quarantined?: boolean;
  failedVersion?: { head: string; error: string; since: string; failures: number };
}

const Shape = array(integer({ minimum: 0 }), { maxItems: 8 });

/**
 * Request objects allow fields of their own, as the protocol's schema does (client libraries add
 * extensions): they are ignored. Keys that pollute prototypes are refused by the JSON parser.
 * Any tensor: `data` row-major, flat or nested.
 */
export const RequestInput = object(
  {
    name: string({ maxLength: 256 }),
    shape: Shape,
    datatype: anyOf(DATATYPES.map((d) => literal(d))),
    parameters: optional(Parameters),
    data: array(unknown()),
  },
);

export const RequestOutput = object(
  { name: string({ maxLength: 256 }), parameters: optional(Parameters) },
);

/** A generic inference request (any tensors): what the router validates before forwarding. */
export const InferenceRequest = object(
  {
    id: optional(string({ maxLength: 256 })),
    parameters: optional(Parameters),
    inputs: array(RequestInput, { minItems: 1, maxItems: 64 }),
    outputs: optional(array(RequestOutput, { maxItems: 64 })),
  },
);
export interface InferenceRequest {
  id?: string;
  parameters?: Parameters;
  inputs: Array<{ name: string; shape: number[]; datatype: Datatype; parameters?: Parameters; data: unknown[] }>;
  outputs?: Array<{ name: string; parameters?: Parameters }>;
}

export interface TextRequestLimits {
  /** Most texts in one request. */
  maxBatch: number;
  /** Most characters in one text. */
  maxTextLength: number;
}

/**
 * The inference request of a botshard bot: one BYTES tensor named `text` with N strings, shape `[N]`
 * or `[N, 1]`, `data` flat or nested one level. Limits are part of the schema, so an oversize batch or
 * text is a 400 before any model runs. (That the element count equals the shape is checked by the server.)
 */
export function textInferenceRequest(limits: TextRequestLimits) {
  const text = string({ maxLength: limits.maxTextLength });
  return object(
    {
      id: optional(string({ maxLength: 256 })),
      parameters: optional(Parameters),
      inputs: array(
        object({
          name: literal('text'),
          shape: anyOf([
            tuple([integer({ minimum: 1, maximum: limits.maxBatch })]),
            tuple([integer({ minimum: 1, maximum: limits.maxBatch }), literal(1)]),
          ]),
          datatype: literal('BYTES'),
          parameters: optional(Parameters),
          data: anyOf([
            array(text, { minItems: 1, maxItems: limits.maxBatch }),
            array(tuple([text]), { minItems: 1, maxItems: limits.maxBatch }),
          ]),
        }),
        { minItems: 1, maxItems: 1 },
      ),
      outputs: optional(array(RequestOutput, { maxItems: 8 })),
    },
  );
}
export interface TextInferenceRequest {
  id?: string;
  parameters?: Parameters;
  inputs: Array<{ name: 'text'; shape: [number] | [number, 1]; datatype: 'BYTES'; parameters?: Parameters; data: string[] | Array<[string]> }>;
  outputs?: Array<{ name: string; parameters?: Parameters }>;
}

export const ResponseOutput = object({
  name: string(),
  shape: array(integer()),
  datatype: string(),
  parameters: optional(Parameters),
  data: array(anyOf([string(), number(), boolean()])),
});
export interface ResponseOutput {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Parameters;
  data: Array<string | number | boolean>;
}

export const InferenceResponse = object({
  model_name: string(),
  model_version: optional(string()),
  id: optional(string()),
  parameters: optional(Parameters),
  outputs: array(ResponseOutput),
});
export interface InferenceResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: ResponseOutput[];
}

/** Path parameters of the model routes. */
export const ModelParams = object({ bot: string({ maxLength: 253 }), version: optional(string({ maxLength: 64 })) });
export interface ModelParams {
  bot: string;
  version?: string;
}

/** Responses of a route: the success schema plus `{"error"}` for every error status. */
export function withErrors(ok: JsonSchema, okStatus = 200): Record<string, JsonSchema> {
  return { [okStatus]: ok, '4xx': ErrorResponse, '5xx': ErrorResponse };
}

/** A liveness or readiness probe: its 503 is an answer ("not ready"), not a failed request worth a warning. */
export function isHealthProbe(routeUrl: string | undefined): boolean {
  return routeUrl === '/v2/health/live' || routeUrl === '/v2/health/ready';
}
