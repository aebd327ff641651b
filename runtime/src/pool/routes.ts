/**
 * The pool's model routes (Open Inference Protocol v2 plus `/v1/bots/{bot}/predict`): find the bot,
 * check it can run, run it on the inference workers, and map what went wrong to a status.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { groupDefaults } from '../catalog';
import {
  ErrorResponse,
  InferenceResponse,
  ModelMetadataResponse,
  ModelParams,
  ModelReadyResponse,
  ONNX_PLATFORM,
  PredictResponse,
  ResponseOutput,
  TextInferenceRequest,
  predictRequest,
  sendError,
  sendHeldElsewhere,
  sendLoading,
  textInferenceRequest,
  withErrors,
} from '../oip';
import { PoolMetrics } from './metrics';
import { BotEntry, PoolRuntime } from './runtime';
import { DeadlineError, ModelError, OverloadedError } from './workers';

export interface ModelRoutesOptions {
  /** This pool's name. */
  pool: string;
  runtime: PoolRuntime;
  metrics: PoolMetrics;
  /** Most texts in one inference request. */
  maxBatch: number;
  /** Most characters in one text. */
  maxTextLength: number;
  /** Deadline over the catalog's (local use only). */
  timeoutMs?: number;
}

type ModelRequest = FastifyRequest<{ Params: ModelParams }>;

/** Registers the model routes on the pool's app. */
export async function modelRoutes(app: FastifyInstance, opts: ModelRoutesOptions): Promise<void> {
  const { runtime, metrics, maxBatch, maxTextLength } = opts;

  /** The bot of a model route, or the 404 (naming the pool that holds the bot) already sent. */
  const botOf = (request: ModelRequest, reply: FastifyReply): BotEntry | undefined => {
    const { bot, version } = request.params;
    const found = runtime.lookup(bot);
    if (found.entry && (version === undefined || version === '1')) return found.entry;
    if (found.entry) {
      sendError(reply, 404, `bot "${bot}" has no version "${version}"; botshard serves version "1" only`);
    } else if (found.holder === opts.pool) {
      // Placed here by the catalog being applied, not registered yet (the pool is starting or reconciling).
      sendLoading(reply, bot);
    } else if (found.holder) {
      sendHeldElsewhere(reply, bot, opts.pool, found.holder);
    } else {
      sendError(reply, 404, `bot "${bot}" is not in the catalog (generation ${runtime.catalog?.generation ?? 'none'})`);
    }
    return undefined;
  };

  /** A bot that can run now, or the 503 already sent. */
  const servable = (entry: BotEntry, reply: FastifyReply): boolean => {
    if (entry.state === 'ready' || entry.state === 'leaving') return true;
    metrics.botRequests.inc({ bot: entry.bot.id, outcome: 'not_ready' });
    if (entry.state === 'loading') sendLoading(reply, entry.bot.id);
    else sendError(reply, 503, `bot "${entry.bot.id}" failed to load: ${withoutPaths(entry.error ?? '')} (request id ${reply.request.id}; the pool's log has the details)`);
    return false;
  };

  /** The deadline of a request: the pool group's timeout (followed live), unless this process overrides it. */
  const timeoutMs = () => opts.timeoutMs ?? runtime.group?.timeoutMs ?? groupDefaults(true).timeoutMs;
  const deadline = () => Date.now() + timeoutMs();

  /** Maps the errors of a prediction to statuses. */
  const failed = (entry: BotEntry, reply: FastifyReply, e: unknown): FastifyReply => {
    const id = entry.bot.id;
    if (e instanceof OverloadedError) {
      metrics.botRequests.inc({ bot: id, outcome: 'shed' });
      metrics.shed.inc({ reason: e.message.startsWith('bot') ? 'bot' : 'worker' });
      return sendError(reply, 503, `overloaded: ${e.message}; retry later`, 1);
    }
    if (e instanceof DeadlineError) {
      metrics.botRequests.inc({ bot: id, outcome: 'timeout' });
      return sendError(reply, 504, `bot "${id}" did not answer within ${timeoutMs()} ms`);
    }
    metrics.botRequests.inc({ bot: id, outcome: 'error' });
    reply.log.error({ bot: id, err: e }, 'inference failed');
    return sendError(reply, 500, e instanceof ModelError ? `bot "${id}" failed: ${withoutPaths(e.message)} (request id ${reply.request.id})` : 'internal error');
  };

  for (const prefix of ['/v2/models/:bot', '/v2/models/:bot/versions/:version']) {
    app.get(prefix, { schema: { params: ModelParams, response: withErrors(ModelMetadataResponse) } }, async (request: ModelRequest, reply) => {
      const entry = botOf(request, reply);
      if (!entry) return reply;
      const labels = entry.bot.intents.length;
      return {
        name: entry.bot.id,
        versions: ['1'],
        platform: ONNX_PLATFORM,
        inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
        outputs: [
          { name: 'intent', datatype: 'BYTES', shape: [-1] },
          { name: 'confidence', datatype: 'FP32', shape: [-1] },
          { name: 'probabilities', datatype: 'FP32', shape: [-1, labels], parameters: { labels: entry.bot.intents.map((i) => i.name).join(',') } },
        ],
      };
    });

    app.get(`${prefix}/ready`, { schema: { params: ModelParams, response: { 200: ModelReadyResponse, 503: ModelReadyResponse, '4xx': ErrorResponse } } }, async (request: ModelRequest, reply) => {
      const entry = botOf(request, reply);
      if (!entry) return reply;
      const isReady = entry.state === 'ready' || entry.state === 'leaving';
      const body = { name: entry.bot.id, ready: isReady, state: entry.state, ...(entry.error ? { error: withoutPaths(entry.error) } : {}) };
      return reply.code(isReady ? 200 : 503).send(body);
    });

    app.post(
      `${prefix}/infer`,
      { schema: { params: ModelParams, body: textInferenceRequest({ maxBatch, maxTextLength }), response: withErrors(InferenceResponse) } },
      async (request: FastifyRequest<{ Params: ModelParams; Body: TextInferenceRequest }>, reply) => {
        const entry = botOf(request, reply);
        if (!entry) return reply;
        const body = request.body;
        const input = body.inputs[0];
        const texts = (input.data as Array<string | [string]>).map((d) => (Array.isArray(d) ? d[0] : d));
        if (input.shape[0] !== texts.length) {
          metrics.botRequests.inc({ bot: entry.bot.id, outcome: 'bad_request' });
          return sendError(reply, 400, `input "text" has shape [${input.shape.join(', ')}] but ${texts.length} strings of data`);
        }
        const wanted = body.outputs?.map((o) => o.name) ?? ['intent', 'confidence', 'probabilities'];
        const unknown = wanted.filter((n) => !['intent', 'confidence', 'probabilities'].includes(n));
        if (unknown.length > 0) {
          metrics.botRequests.inc({ bot: entry.bot.id, outcome: 'bad_request' });
          return sendError(reply, 400, `unknown output ${JSON.stringify(unknown[0])}; outputs are "intent", "confidence", "probabilities"`);
        }
        if (!servable(entry, reply)) return reply;
        let result;
        try {
          result = await runtime.predict(entry, texts, deadline());
        } catch (e) {
          return failed(entry, reply, e);
        }
        metrics.botRequests.inc({ bot: entry.bot.id, outcome: 'ok' });
        const N = texts.length;
        const L = entry.processor!.labels.length;
        const all: Record<string, ResponseOutput> = {
          intent: { name: 'intent', datatype: 'BYTES', shape: [N], data: result.rows.map((r) => r.intent) },
          confidence: { name: 'confidence', datatype: 'FP32', shape: [N], data: result.rows.map((r) => r.confidence) },
          probabilities: { name: 'probabilities', datatype: 'FP32', shape: [N, L], data: Array.from(result.probabilities) },
        };
        return {
          model_name: entry.bot.id,
          ...(body.id !== undefined ? { id: body.id } : {}),
          outputs: wanted.map((n) => all[n]),
        };
      },
    );
  }

  app.post(
    '/v1/bots/:bot/predict',
    { schema: { params: ModelParams, body: predictRequest(maxTextLength), response: withErrors(PredictResponse) } },
    async (request: FastifyRequest<{ Params: ModelParams; Body: { text: string } }>, reply) => {
      const entry = botOf(request, reply);
      if (!entry) return reply;
      if (!servable(entry, reply)) return reply;
      let result;
      try {
        result = await runtime.predict(entry, [request.body.text], deadline());
      } catch (e) {
        return failed(entry, reply, e);
      }
      metrics.botRequests.inc({ bot: entry.bot.id, outcome: 'ok' });
      const { intent, confidence } = result.rows[0];
      return { bot: entry.bot.id, intent, confidence, entities: entry.processor!.entities(request.body.text), pool: opts.pool };
    },
  );

}

/**
 * A message for clients: file-system paths of the pool's machine (`open '/models/.cache/...'`) become
 * `<path>`; the log keeps the message whole. Paths from the catalog (`heads/x.onnx`, `s3://...`) stay.
 */
export function withoutPaths(message: string): string {
  return message.replace(/(?<![\w:/.~-])\/(?:[^\s'",:;()/]+\/)*[^\s'",:;()/]+/g, '<path>');
}
