/**
 * The pool's REST model routes (Open Inference Protocol v2 plus `/v1/bots/{bot}/predict`): schemas,
 * then the model service; JSON answers, or binary ones when the request asks (binary data extension).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  CONVERSATION_HEADER,
  CONVERSATION_PARAMETER,
  ErrorResponse,
  conversationOf,
  InferenceResponse,
  ModelMetadataResponse,
  ModelParams,
  ModelReadyResponse,
  PredictResponse,
  ProtocolError,
  RESIDENCY_HEADER,
  TextInferenceRequest,
  predictRequest,
  sendProblem,
  textInferenceRequest,
  withErrors,
} from '../oip';
import { BINARY_HEADER, binaryOutputs, encodeBinaryResponse } from '../oip/binary';
import { jsonTensor } from '../oip/tensors';
import { ModelService } from './models';

type ModelRequest = FastifyRequest<{ Params: ModelParams }>;
type InferRequest = FastifyRequest<{ Params: ModelParams; Body: TextInferenceRequest }>;
type PredictRequest = FastifyRequest<{ Params: ModelParams; Body: { text: string } }>;

/** Registers the model routes on the pool's app. */
export async function modelRoutes(app: FastifyInstance, opts: { service: ModelService }): Promise<void> {
  const { service } = opts;
  const { maxBatch, maxTextLength } = service.o;
  for (const prefix of ['/v2/models/:bot', '/v2/models/:bot/versions/:version']) {
    app.get(prefix, { schema: { params: ModelParams, response: withErrors(ModelMetadataResponse) } }, async (request: ModelRequest, reply) =>
      answer(reply, () => service.metadata(service.resolve(request.params.bot, request.params.version).entry)),
    );
    app.get(`${prefix}/ready`, { schema: { params: ModelParams, response: { 200: ModelReadyResponse, 503: ModelReadyResponse, '4xx': ErrorResponse } } }, async (request: ModelRequest, reply) =>
      answer(reply, () => {
        const { entry, role } = service.resolve(request.params.bot, request.params.version);
        const body = service.ready(entry, role);
        reply.code(body.ready ? 200 : 503);
        return body;
      }),
    );
    app.post(`${prefix}/infer`, { schema: { params: ModelParams, body: textInferenceRequest({ maxBatch, maxTextLength }), response: withErrors(InferenceResponse) } }, async (request: InferRequest, reply) =>
      answer(reply, async () => {
        const { body, params } = request;
        const input = body.inputs[0];
        const result = await service.infer({
          bot: params.bot,
          version: params.version,
          id: body.id,
          // `data` flat or nested one level ([[text], ...] for shape [N, 1]).
          inputs: [{ ...input, data: (input.data as Array<string | [string]>).map((d) => (Array.isArray(d) ? d[0] : d)) }],
          outputs: body.outputs?.map((o) => o.name),
          requestId: request.id,
          conversation: conversationOf(request.headers[CONVERSATION_HEADER], body.parameters?.[CONVERSATION_PARAMETER]),
        });
        if (result.residency) reply.header(RESIDENCY_HEADER, result.residency);
        const { residency: _, ...response } = result;
        const binary = encodeBinaryResponse(response, binaryOutputs(body));
        if (!binary) return { ...response, outputs: response.outputs.map(jsonTensor) };
        reply.header(BINARY_HEADER, String(binary.headerLength)).type('application/octet-stream');
        return binary.body;
      }),
    );
  }
  app.post('/v1/bots/:bot/predict', { schema: { params: ModelParams, body: predictRequest(maxTextLength), response: withErrors(PredictResponse) } }, async (request: PredictRequest, reply) =>
    answer(reply, async () => {
      const { answer, residency } = await service.predict(request.params.bot, request.body.text, request.id, conversationOf(request.headers[CONVERSATION_HEADER], undefined));
      if (residency) reply.header(RESIDENCY_HEADER, residency);
      return answer;
    }),
  );
}

/** The handler's answer, or its ProtocolError as `{"error"}` with its status. */
async function answer<T>(reply: FastifyReply, handle: () => T | Promise<T>): Promise<T | FastifyReply> {
  try {
    return await handle();
  } catch (e) {
    if (e instanceof ProtocolError) return sendProblem(reply, e);
    throw e;
  }
}
