/**
 * The pool's model routes (Open Inference Protocol v2 plus `/v1/bots/{bot}/predict`): find the bot,
 * check it can run, run it on the inference workers, and map what went wrong to a status.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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
import { NotLoadedError } from './on-demand';
import { BotEntry, NotServableError, PoolRuntime } from './runtime';
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
}

type ModelRequest = FastifyRequest<{ Params: ModelParams }>;
type InferRequest = FastifyRequest<{ Params: ModelParams; Body: TextInferenceRequest }>;
type PredictRequest = FastifyRequest<{ Params: ModelParams; Body: { text: string } }>;

const OUTPUTS = ['intent', 'confidence', 'probabilities'];

/** Registers the model routes on the pool's app. */
export async function modelRoutes(app: FastifyInstance, opts: ModelRoutesOptions): Promise<void> {
  const h = new ModelHandlers(opts);
  for (const prefix of ['/v2/models/:bot', '/v2/models/:bot/versions/:version']) {
    app.get(prefix, { schema: { params: ModelParams, response: withErrors(ModelMetadataResponse) } }, (request: ModelRequest, reply) => h.metadata(request, reply));
    app.get(`${prefix}/ready`, { schema: { params: ModelParams, response: { 200: ModelReadyResponse, 503: ModelReadyResponse, '4xx': ErrorResponse } } }, (request: ModelRequest, reply) => h.ready(request, reply));
    app.post(
      `${prefix}/infer`,
      { schema: { params: ModelParams, body: textInferenceRequest({ maxBatch: opts.maxBatch, maxTextLength: opts.maxTextLength }), response: withErrors(InferenceResponse) } },
      (request: InferRequest, reply) => h.infer(request, reply),
    );
  }
  app.post(
    '/v1/bots/:bot/predict',
    { schema: { params: ModelParams, body: predictRequest(opts.maxTextLength), response: withErrors(PredictResponse) } },
    (request: PredictRequest, reply) => h.predict(request, reply),
  );
}

/** One method per route, and what they share: finding the bot, checking it can run, mapping failures. */
class ModelHandlers {
  constructor(private readonly o: ModelRoutesOptions) {}

  async metadata(request: ModelRequest, reply: FastifyReply) {
    const entry = this.botOf(request, reply);
    if (!entry) return reply;
    const labels = entry.bot.intents.length;
    const lane = this.o.runtime.workers.laneOf(entry.bot.id);
    const residency = this.o.runtime.residencyOf(entry);
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
      // botshard: where the bot runs, and its measured run time (what quarantine is decided on).
      parameters: { quarantined: lane.quarantined, mean_run_ms: Math.round(lane.meanMs * 100) / 100, ...(residency ? { residency } : {}) },
    };
  }

  async ready(request: ModelRequest, reply: FastifyReply) {
    const entry = this.botOf(request, reply);
    if (!entry) return reply;
    // A cold bot is ready: its first request loads it (within the request's deadline).
    const isReady = entry.state === 'ready' || entry.state === 'leaving' || entry.state === 'cold';
    const { quarantined } = this.o.runtime.workers.laneOf(entry.bot.id);
    const residency = this.o.runtime.residencyOf(entry);
    const body = { name: entry.bot.id, ready: isReady, state: entry.state, ...(residency ? { residency } : {}), ...(entry.error ? { error: withoutPaths(entry.error) } : {}), quarantined };
    return reply.code(isReady ? 200 : 503).send(body);
  }

  async infer(request: InferRequest, reply: FastifyReply) {
    const entry = this.botOf(request, reply);
    if (!entry) return reply;
    const body = request.body;
    const input = body.inputs[0];
    const texts = (input.data as Array<string | [string]>).map((d) => (Array.isArray(d) ? d[0] : d));
    if (input.shape[0] !== texts.length) return this.badRequest(entry, reply, `input "text" has shape [${input.shape.join(', ')}] but ${texts.length} strings of data`);
    const wanted = body.outputs?.map((o) => o.name) ?? OUTPUTS;
    const unknown = wanted.find((n) => !OUTPUTS.includes(n));
    if (unknown !== undefined) return this.badRequest(entry, reply, `unknown output ${JSON.stringify(unknown)}; outputs are "intent", "confidence", "probabilities"`);
    const result = await this.run(entry, texts, reply);
    if (!result) return reply;
    const N = texts.length;
    const L = entry.bot.intents.length;
    const all: Record<string, ResponseOutput> = {
      intent: { name: 'intent', datatype: 'BYTES', shape: [N], data: result.rows.map((r) => r.intent) },
      confidence: { name: 'confidence', datatype: 'FP32', shape: [N], data: result.rows.map((r) => r.confidence) },
      probabilities: { name: 'probabilities', datatype: 'FP32', shape: [N, L], data: Array.from(result.probabilities) },
    };
    return { model_name: entry.bot.id, ...(body.id !== undefined ? { id: body.id } : {}), outputs: wanted.map((n) => all[n]) };
  }

  async predict(request: PredictRequest, reply: FastifyReply) {
    const entry = this.botOf(request, reply);
    if (!entry) return reply;
    const result = await this.run(entry, [request.body.text], reply, { entities: true });
    if (!result) return reply;
    const { intent, confidence } = result.rows[0];
    return { bot: entry.bot.id, intent, confidence, entities: result.entities?.[0] ?? [], pool: this.o.pool };
  }

  /** The bot of a model route, or the 404 (naming the pool that holds the bot) or 503 (loading) already sent. */
  private botOf(request: ModelRequest, reply: FastifyReply): BotEntry | undefined {
    const { bot, version } = request.params;
    const found = this.o.runtime.lookup(bot);
    if (found.entry && (version === undefined || version === '1')) return found.entry;
    if (found.entry) {
      sendError(reply, 404, `bot "${bot}" has no version "${version}"; botshard serves version "1" only`);
    } else if (found.holder === this.o.pool) {
      // Placed here by the catalog being applied, not registered yet (the pool is starting or reconciling).
      sendLoading(reply, bot);
    } else if (found.holder) {
      sendHeldElsewhere(reply, bot, this.o.pool, found.holder);
    } else {
      sendError(reply, 404, `bot "${bot}" is not in the catalog (generation ${this.o.runtime.catalog?.generation ?? 'none'})`);
    }
    return undefined;
  }

  /** Runs the bot on the texts: its result, or undefined with the error status already sent. */
  private async run(entry: BotEntry, texts: string[], reply: FastifyReply, o: { entities?: boolean } = {}) {
    const id = entry.bot.id;
    try {
      const { answer, residency } = await this.o.runtime.serve(id, texts, Date.now() + this.o.runtime.timeoutMs, o);
      this.o.metrics.botRequests.inc({ bot: id, outcome: 'ok' });
      // Overcommitted pools say whether the bot was resident (hit) or loaded for this request (miss).
      if (residency) reply.header('botshard-residency', residency);
      return answer;
    } catch (e) {
      this.failed(entry, reply, e);
      return undefined;
    }
  }

  private badRequest(entry: BotEntry, reply: FastifyReply, message: string): FastifyReply {
    this.o.metrics.botRequests.inc({ bot: entry.bot.id, outcome: 'bad_request' });
    return sendError(reply, 400, message);
  }

  /** Maps the errors of a prediction to statuses. */
  private failed(entry: BotEntry, reply: FastifyReply, e: unknown): FastifyReply {
    const { metrics } = this.o;
    const id = entry.bot.id;
    if (e instanceof NotServableError || e instanceof NotLoadedError) {
      metrics.botRequests.inc({ bot: id, outcome: 'not_ready' });
      if (e instanceof NotServableError && e.reason === 'loading') return sendLoading(reply, id);
      return sendError(reply, 503, `${withoutPaths(e.message)} (request id ${reply.request.id}; the pool's log has the details)`);
    }
    if (e instanceof OverloadedError) {
      metrics.botRequests.inc({ bot: id, outcome: 'shed' });
      metrics.shed.inc({ reason: e.reason });
      return sendError(reply, 503, `overloaded: ${e.message}; retry later`, e.retryAfterSeconds);
    }
    if (e instanceof DeadlineError) {
      metrics.botRequests.inc({ bot: id, outcome: 'timeout' });
      return sendError(reply, 504, `bot "${id}" did not answer within ${this.o.runtime.timeoutMs} ms`);
    }
    metrics.botRequests.inc({ bot: id, outcome: 'error' });
    reply.log.error({ bot: id, err: e }, 'inference failed');
    return sendError(reply, 500, e instanceof ModelError ? `bot "${id}" failed: ${withoutPaths(e.message)} (request id ${reply.request.id})` : 'internal error');
  }
}

/**
 * A message for clients: file-system paths of the pool's machine (`open '/models/.cache/...'`) become
 * `<path>`; the log keeps the message whole. Paths from the catalog (`heads/x.onnx`, `s3://...`) stay.
 */
export function withoutPaths(message: string): string {
  return message.replace(/(?<![\w:/.~-])\/(?:[^\s'",:;()/]+\/)*[^\s'",:;()/]+/g, '<path>');
}
