/**
 * What the pool's model endpoints do, whatever the transport (REST or gRPC): find the bot, check the
 * request, run the bot on the inference workers, and turn what went wrong into a ProtocolError. The
 * REST routes (`routes.ts`) and the gRPC service (`grpc.ts`) only translate requests and answers.
 */
import type { FastifyBaseLogger } from 'fastify';
import { ModelMetadataResponse, ModelReadyResponse, ONNX_PLATFORM, ProtocolError, heldElsewhere, loadingError } from '../oip';
import type { Tensor } from '../oip/tensors';
import { PoolMetrics } from './metrics';
import type { PoolEngine } from './engine';
import { BotEntry, NotServableError } from './loading';
import { residencyOf } from './gauges';
import { ModelError } from './lane';
import { NotLoadedError } from './residency';
import { DeadlineError, OverloadedError } from './shedding';

export interface ModelServiceOptions {
  /** This pool's name. */
  pool: string;
  engine: PoolEngine;
  metrics: PoolMetrics;
  /** Most texts in one inference request. */
  maxBatch: number;
  /** Most characters in one text. */
  maxTextLength: number;
  log: FastifyBaseLogger;
}

/** The outputs of every bot, in this order when a request names none. */
export const OUTPUTS = ['intent', 'confidence', 'probabilities'] as const;

/** One input tensor of a request, its elements decoded (flat). */
export interface InputTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}

export interface InferCall {
  bot: string;
  version?: string;
  /** The request's `id`, echoed. */
  id?: string;
  inputs: InputTensor[];
  /** Outputs asked for, by name. @default - all */
  outputs?: string[];
  /** For messages and the log. */
  requestId: string;
  /** The caller's own deadline (ms since epoch), when it is sooner than the pool's timeout. */
  deadline?: number;
}

export interface InferAnswer {
  model_name: string;
  id?: string;
  outputs: Tensor[];
  /** In an overcommitted pool: whether the bot was resident (hit) or loaded for this request (miss). */
  residency?: 'hit' | 'miss';
}

export class ModelService {
  constructor(readonly o: ModelServiceOptions) {}

  /** The bot of a model request; throws the 404 (naming the pool that holds the bot) or 503 (loading). */
  bot(bot: string, version?: string): BotEntry {
    const found = this.o.engine.lookup(bot);
    if (found.entry && (version === undefined || version === '' || version === '1')) return found.entry;
    if (found.entry) throw new ProtocolError(404, `bot "${bot}" has no version "${version}"; botshard serves version "1" only`);
    // Placed here by the catalog being applied, not registered yet (the pool is starting or reconciling).
    if (found.holder === this.o.pool) throw loadingError(bot);
    if (found.holder) throw heldElsewhere(bot, this.o.pool, found.holder);
    throw new ProtocolError(404, `bot "${bot}" is not in the catalog (generation ${this.o.engine.catalog?.generation ?? 'none'})`);
  }

  metadata(entry: BotEntry): ModelMetadataResponse {
    const lane = this.o.engine.lanes.laneOf(entry.bot.id);
    const residency = residencyOf(entry, this.o.engine.residentBytes !== undefined);
    return {
      name: entry.bot.id,
      versions: ['1'],
      platform: ONNX_PLATFORM,
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
      outputs: [
        { name: 'intent', datatype: 'BYTES', shape: [-1] },
        { name: 'confidence', datatype: 'FP32', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, entry.bot.intents.length], parameters: { labels: entry.bot.intents.map((i) => i.name).join(',') } },
      ],
      // botshard: where the bot runs, and its measured run time (what quarantine is decided on).
      parameters: { quarantined: lane.quarantined, mean_run_ms: Math.round(lane.meanMs * 100) / 100, ...(residency ? { residency } : {}) },
    };
  }

  ready(entry: BotEntry): ModelReadyResponse {
    // A cold bot is ready: its first request loads it (within the request's deadline).
    const ready = entry.state === 'ready' || entry.state === 'leaving' || entry.state === 'cold';
    const { quarantined } = this.o.engine.lanes.laneOf(entry.bot.id);
    const residency = residencyOf(entry, this.o.engine.residentBytes !== undefined);
    const failed = entry.failedVersion;
    const failedVersion = failed && { head: failed.head, error: withoutPaths(failed.error), since: failed.since, failures: failed.failures };
    return { name: entry.bot.id, ready, state: entry.state, ...(residency ? { residency } : {}), ...(entry.error ? { error: withoutPaths(entry.error) } : {}), quarantined, ...(failedVersion ? { failedVersion } : {}) };
  }

  /** Runs an inference request: its outputs, or a ProtocolError. */
  async infer(call: InferCall): Promise<InferAnswer> {
    const entry = this.bot(call.bot, call.version);
    const texts = this.texts(entry, call.inputs);
    const wanted = call.outputs && call.outputs.length > 0 ? call.outputs : OUTPUTS;
    const unknown = wanted.find((n) => !(OUTPUTS as readonly string[]).includes(n));
    if (unknown !== undefined) throw this.badRequest(entry, `unknown output ${JSON.stringify(unknown)}; outputs are "intent", "confidence", "probabilities"`);
    const { answer, residency } = await this.run(entry, texts, call.requestId, call.deadline);
    const N = texts.length;
    const all: Record<string, Tensor> = {
      intent: { name: 'intent', datatype: 'BYTES', shape: [N], data: answer.rows.map((r) => r.intent) },
      confidence: { name: 'confidence', datatype: 'FP32', shape: [N], data: answer.rows.map((r) => r.confidence) },
      probabilities: { name: 'probabilities', datatype: 'FP32', shape: [N, entry.bot.intents.length], data: answer.probabilities },
    };
    return { model_name: entry.bot.id, ...(call.id ? { id: call.id } : {}), outputs: wanted.map((n) => all[n]), residency };
  }

  /** `/v1/bots/{bot}/predict`: one text, its intent, confidence and entities. */
  async predict(bot: string, text: string, requestId: string) {
    const entry = this.bot(bot);
    const { answer, residency } = await this.run(entry, [text], requestId, undefined, { entities: true });
    const { intent, confidence } = answer.rows[0];
    return { answer: { bot: entry.bot.id, intent, confidence, entities: answer.entities?.[0] ?? [], pool: this.o.pool }, residency };
  }

  /** The texts of a request's one input, checked as the REST schema checks them (gRPC has no schema). */
  private texts(entry: BotEntry, inputs: InputTensor[]): string[] {
    const { maxBatch, maxTextLength } = this.o;
    const expected = `one input "text" of datatype BYTES and shape [N] or [N, 1], N from 1 to ${maxBatch}`;
    if (inputs.length !== 1) throw this.badRequest(entry, `expected ${expected}; got ${inputs.length} inputs`);
    const input = inputs[0];
    if (input.name !== 'text') throw this.badRequest(entry, `unknown input ${JSON.stringify(input.name)}: expected ${expected}`);
    if (input.datatype !== 'BYTES') throw this.badRequest(entry, `input "text" has datatype ${JSON.stringify(input.datatype)}: expected ${expected}`);
    const [n, width] = input.shape;
    if (!(input.shape.length === 1 || (input.shape.length === 2 && width === 1)) || !Number.isInteger(n) || n < 1 || n > maxBatch) {
      throw this.badRequest(entry, `input "text" has shape [${input.shape.join(', ')}]: expected ${expected}`);
    }
    if (input.data.length !== n) throw this.badRequest(entry, `input "text" has shape [${input.shape.join(', ')}] but ${input.data.length} strings of data`);
    for (const [i, t] of input.data.entries()) {
      if (typeof t !== 'string') throw this.badRequest(entry, `input "text" element ${i} is not a string`);
      if (t.length > maxTextLength) throw this.badRequest(entry, `input "text" element ${i} has ${t.length} characters; at most ${maxTextLength} are allowed`);
    }
    return input.data as string[];
  }

  /** Runs the bot on the texts; every failure becomes a ProtocolError (and is counted). */
  private async run(entry: BotEntry, texts: string[], requestId: string, callerDeadline?: number, o: { entities?: boolean } = {}) {
    const id = entry.bot.id;
    const deadline = Math.min(Date.now() + this.o.engine.timeoutMs, callerDeadline ?? Infinity);
    const allowedMs = Math.max(0, Math.round(deadline - Date.now()));
    try {
      const result = await this.o.engine.serve(id, texts, deadline, o);
      this.o.metrics.botRequests.inc({ bot: id, outcome: 'ok' });
      return result;
    } catch (e) {
      throw this.failed(entry, e, requestId, allowedMs);
    }
  }

  private badRequest(entry: BotEntry, message: string): ProtocolError {
    this.o.metrics.botRequests.inc({ bot: entry.bot.id, outcome: 'bad_request' });
    return new ProtocolError(400, message);
  }

  /** Maps the errors of a prediction to statuses. */
  private failed(entry: BotEntry, e: unknown, requestId: string, allowedMs: number): ProtocolError {
    const { metrics } = this.o;
    const id = entry.bot.id;
    if (e instanceof NotServableError || e instanceof NotLoadedError) {
      metrics.botRequests.inc({ bot: id, outcome: 'not_ready' });
      if (e instanceof NotServableError && e.reason === 'loading') return loadingError(id);
      return new ProtocolError(503, `${withoutPaths(e.message)} (request id ${requestId}; the pool's log has the details)`);
    }
    if (e instanceof OverloadedError) {
      metrics.botRequests.inc({ bot: id, outcome: 'shed' });
      metrics.shed.inc({ reason: e.reason });
      return new ProtocolError(503, `overloaded: ${e.message}; retry later`, { retryAfterSeconds: e.retryAfterSeconds, overloaded: true });
    }
    if (e instanceof DeadlineError) {
      metrics.botRequests.inc({ bot: id, outcome: 'timeout' });
      return new ProtocolError(504, `bot "${id}" did not answer within ${allowedMs} ms`);
    }
    metrics.botRequests.inc({ bot: id, outcome: 'error' });
    this.o.log.error({ bot: id, err: e, reqId: requestId }, 'inference failed');
    return new ProtocolError(500, e instanceof ModelError ? `bot "${id}" failed: ${withoutPaths(e.message)} (request id ${requestId})` : 'internal error');
  }
}

/**
 * A message for clients: file-system paths of the pool's machine (`open '/models/.cache/...'`) become
 * `<path>`; the log keeps the message whole. Paths from the catalog (`heads/x.onnx`, `s3://...`) stay.
 */
export function withoutPaths(message: string): string {
  return message.replace(/(?<![\w:/.~-])\/(?:[^\s'",:;()/]+\/)*[^\s'",:;()/]+/g, '<path>');
}
