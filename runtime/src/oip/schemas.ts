/**
 * Open Inference Protocol v2 (REST) request and response schemas, as TypeBox schemas: one definition
 * gives fastify its validation and fast serialization and TypeScript its types. Shared by pool and router.
 * Source: KServe's open-inference-protocol specification (docs in /work/shared/OIP.md).
 */
import { Static, TSchema, Type } from '@sinclair/typebox';

/** Tensor datatypes of the protocol. */
export const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;
export type Datatype = (typeof DATATYPES)[number];

/** Platform string of ONNX models. */
export const ONNX_PLATFORM = 'onnx_onnxv1';

export const Parameters = Type.Record(Type.String({ maxLength: 256 }), Type.Union([Type.String(), Type.Number(), Type.Boolean()]));
export type Parameters = Static<typeof Parameters>;

export const ErrorResponse = Type.Object({ error: Type.String() });
export type ErrorResponse = Static<typeof ErrorResponse>;

export const LiveResponse = Type.Object({ live: Type.Boolean() });
export const ReadyResponse = Type.Object({ ready: Type.Boolean() });

export const ServerMetadataResponse = Type.Object({
  name: Type.String(),
  version: Type.String(),
  extensions: Type.Array(Type.String()),
});
export type ServerMetadataResponse = Static<typeof ServerMetadataResponse>;

export const TensorMetadata = Type.Object({
  name: Type.String(),
  datatype: Type.String(),
  /** -1 for a variable dimension. */
  shape: Type.Array(Type.Integer()),
  parameters: Type.Optional(Parameters),
});
export type TensorMetadata = Static<typeof TensorMetadata>;

export const ModelMetadataResponse = Type.Object({
  name: Type.String(),
  versions: Type.Optional(Type.Array(Type.String())),
  platform: Type.String(),
  inputs: Type.Array(TensorMetadata),
  outputs: Type.Array(TensorMetadata),
  parameters: Type.Optional(Parameters),
});
export type ModelMetadataResponse = Static<typeof ModelMetadataResponse>;

export const ModelReadyResponse = Type.Object({
  name: Type.String(),
  ready: Type.Boolean(),
  /** botshard: loading, ready, failed, leaving (moved to another pool, served for a grace period) or cold (loaded on its first request). */
  state: Type.Optional(Type.String()),
  /** botshard, in an overcommitted pool: resident, cold or loading. */
  residency: Type.Optional(Type.String()),
  /** Why the model is not ready (a load failure). */
  error: Type.Optional(Type.String()),
  /** botshard: the bot runs in the quarantine lane (its runs took too long a share of its group's timeout). */
  quarantined: Type.Optional(Type.Boolean()),
  /**
   * botshard: the catalog's new version of this bot failed to load, and its previous version serves (the
   * bot stays ready): the model file it names, why it failed, since when, failed loads in a row.
   */
  failedVersion: Type.Optional(Type.Object({ head: Type.String(), error: Type.String(), since: Type.String(), failures: Type.Integer() })),
});
export type ModelReadyResponse = Static<typeof ModelReadyResponse>;

const Shape = Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 8 });

/**
 * Request objects allow fields of their own, as the protocol's schema does (client libraries add
 * extensions): they are ignored. Keys that pollute prototypes are refused by the JSON parser.
 * Any tensor: `data` row-major, flat or nested.
 */
export const RequestInput = Type.Object(
  {
    name: Type.String({ maxLength: 256 }),
    shape: Shape,
    datatype: Type.Union(DATATYPES.map((d) => Type.Literal(d))),
    parameters: Type.Optional(Parameters),
    data: Type.Array(Type.Unknown()),
  },
);

export const RequestOutput = Type.Object(
  { name: Type.String({ maxLength: 256 }), parameters: Type.Optional(Parameters) },
);

/** A generic inference request (any tensors): what the router validates before forwarding. */
export const InferenceRequest = Type.Object(
  {
    id: Type.Optional(Type.String({ maxLength: 256 })),
    parameters: Type.Optional(Parameters),
    inputs: Type.Array(RequestInput, { minItems: 1, maxItems: 64 }),
    outputs: Type.Optional(Type.Array(RequestOutput, { maxItems: 64 })),
  },
);
export type InferenceRequest = Static<typeof InferenceRequest>;

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
  const text = Type.String({ maxLength: limits.maxTextLength });
  return Type.Object(
    {
      id: Type.Optional(Type.String({ maxLength: 256 })),
      parameters: Type.Optional(Parameters),
      inputs: Type.Array(
        Type.Object({
          name: Type.Literal('text'),
          shape: Type.Union([
            Type.Tuple([Type.Integer({ minimum: 1, maximum: limits.maxBatch })]),
            Type.Tuple([Type.Integer({ minimum: 1, maximum: limits.maxBatch }), Type.Literal(1)]),
          ]),
          datatype: Type.Literal('BYTES'),
          parameters: Type.Optional(Parameters),
          data: Type.Union([
            Type.Array(text, { minItems: 1, maxItems: limits.maxBatch }),
            Type.Array(Type.Tuple([text]), { minItems: 1, maxItems: limits.maxBatch }),
          ]),
        }),
        { minItems: 1, maxItems: 1 },
      ),
      outputs: Type.Optional(Type.Array(RequestOutput, { maxItems: 8 })),
    },
  );
}
export type TextInferenceRequest = Static<ReturnType<typeof textInferenceRequest>>;

export const ResponseOutput = Type.Object({
  name: Type.String(),
  shape: Type.Array(Type.Integer()),
  datatype: Type.String(),
  parameters: Type.Optional(Parameters),
  data: Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
});
export type ResponseOutput = Static<typeof ResponseOutput>;

export const InferenceResponse = Type.Object({
  model_name: Type.String(),
  model_version: Type.Optional(Type.String()),
  id: Type.Optional(Type.String()),
  parameters: Type.Optional(Parameters),
  outputs: Type.Array(ResponseOutput),
});
export type InferenceResponse = Static<typeof InferenceResponse>;

/** Path parameters of the model routes. */
export const ModelParams = Type.Object({ bot: Type.String({ maxLength: 253 }), version: Type.Optional(Type.String({ maxLength: 64 })) });
export type ModelParams = Static<typeof ModelParams>;

/** Responses of a route: the success schema plus `{"error"}` for every error status. */
export function withErrors<T extends TSchema>(ok: T, okStatus = 200): Record<string, TSchema> {
  return { [okStatus]: ok, '4xx': ErrorResponse, '5xx': ErrorResponse };
}

/** A liveness or readiness probe: its 503 is an answer ("not ready"), not a failed request worth a warning. */
export function isHealthProbe(routeUrl: string | undefined): boolean {
  return routeUrl === '/v2/health/live' || routeUrl === '/v2/health/ready';
}
