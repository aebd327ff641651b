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
import { headSize } from './sizes';
import { Answer, ModelError } from './lane';
import { Role, Rollouts, servingVersion } from './rollout/rollouts';
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
  /** The caller's conversation key: a canary's share is sticky per conversation (else per request id). */
  conversation?: string;
  /** The caller's own deadline (ms since epoch), when it is sooner than the pool's timeout. */
  deadline?: number;
}

export interface InferAnswer {
  model_name: string;
  /** The version that answered. */
  model_version: string;
  id?: string;
  outputs: Tensor[];
  /** In an overcommitted pool: whether the bot was resident (hit) or loaded for this request (miss). */
  residency?: 'hit' | 'miss';
}

/** How a request runs: its ids, deadline, and the version it names (none: the bot's rollout decides). */
interface RunOptions {
  requestId: string;
  /** The caller's own deadline (ms since epoch). */
  deadline?: number;
  role?: Role;
  /** What a canary's share is decided by: the conversation key, else the request id. */
  key: string;
  entities?: boolean;
}

/** A request's bot, and the version it names (none: the bot's rollout decides). */
export interface Resolved {
  entry: BotEntry;
  role?: Role;
}

/** A bot's versions: the serving one, and its candidate (taking traffic, or why not). */
function versionsOf(entry: BotEntry, rollouts: Rollouts): Array<{ version: string; role: Role; takesTraffic: boolean; state?: string; error?: string }> {
  const serving = { version: servingVersion(entry.bot), role: 'serving' as const, takesTraffic: true };
  const r = rollouts.of(entry.bot.id);
  if (!r) return [serving];
  return [serving, { version: r.candidate.version, role: 'candidate', takesTraffic: rollouts.active(entry.bot.id) !== undefined, state: r.state, error: r.error }];
}

export class ModelService {
  constructor(readonly o: ModelServiceOptions) {}

  /** The bot of a model request; throws the 404 (naming the pool that holds the bot) or 503 (loading). */
  bot(bot: string): BotEntry {
    const found = this.o.engine.lookup(bot);
    if (found.entry) return found.entry;
    // Placed here by the catalog being applied, not registered yet (the pool is starting or reconciling).
    if (found.holder === this.o.pool) throw loadingError(bot);
    if (found.holder) throw heldElsewhere(bot, this.o.pool, found.holder);
    throw new ProtocolError(404, `bot "${bot}" is not in the catalog (generation ${this.o.engine.catalog?.generation ?? 'none'})`);
  }

  /**
   * The bot and version a request names: no version (the bot's rollout decides), the serving version's
   * label, or its candidate's while the candidate takes traffic. Any other version is a 404 naming the bot's.
   */
  resolve(bot: string, version?: string): Resolved {
    const entry = this.bot(bot);
    if (version === undefined || version === '') return { entry };
    const versions = versionsOf(entry, this.o.engine.rollouts);
    const named = versions.find((v) => v.version === version);
    if (named?.takesTraffic) return { entry, role: named.role };
    const list = versions.filter((v) => v.takesTraffic).map((v) => `"${v.version}" (${v.role})`).join(', ');
    const why = named ? `: its candidate "${version}" is ${named.state}${named.error ? ` (${withoutPaths(named.error)})` : ''}` : '';
    throw new ProtocolError(404, `bot "${entry.bot.id}" has no version "${version}" to serve${why}; its versions are ${list}`);
  }

  metadata(entry: BotEntry): ModelMetadataResponse {
    const lane = this.o.engine.lanes.laneOf(entry.bot.id);
    const residency = residencyOf(entry, this.o.engine.residentBytes !== undefined);
    const rollout = this.o.engine.rollouts.of(entry.bot.id);
    const candidate = rollout && { candidate_version: rollout.candidate.version, candidate_mode: rollout.candidate.mode, candidate_share: rollout.candidate.share, candidate_state: rollout.state };
    return {
      name: entry.bot.id,
      versions: versionsOf(entry, this.o.engine.rollouts).filter((v) => v.takesTraffic).map((v) => v.version),
      platform: ONNX_PLATFORM,
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
      outputs: [
        { name: 'intent', datatype: 'BYTES', shape: [-1] },
        { name: 'confidence', datatype: 'FP32', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, entry.bot.intents.length], parameters: { labels: entry.bot.intents.map((i) => i.name).join(',') } },
      ],
      // botshard: where the bot runs, its measured run time (what quarantine is decided on), and its head's
      // size: declared in the catalog, and measured when it loaded (while loaded; sizes.ts).
      parameters: { quarantined: lane.quarantined, mean_run_ms: Math.round(lane.meanMs * 100) / 100, ...(residency ? { residency } : {}), ...candidate, ...sizeParameters(entry) },
    };
  }

  /** Whether the bot (or, asked by its version, its candidate) is ready. */
  ready(entry: BotEntry, role?: Role): ModelReadyResponse {
    // A cold bot is ready: its first request loads it (within the request's deadline).
    const ready = role === 'candidate' ? this.o.engine.rollouts.active(entry.bot.id) !== undefined : entry.state === 'ready' || entry.state === 'leaving' || entry.state === 'cold';
    const { quarantined } = this.o.engine.lanes.laneOf(entry.bot.id);
    const residency = residencyOf(entry, this.o.engine.residentBytes !== undefined);
    const failed = entry.failedVersion;
    const failedVersion = failed && { head: failed.head, error: withoutPaths(failed.error), since: failed.since, failures: failed.failures };
    return { name: entry.bot.id, ready, state: entry.state, ...(residency ? { residency } : {}), ...(entry.error ? { error: withoutPaths(entry.error) } : {}), quarantined, ...(failedVersion ? { failedVersion } : {}) };
  }

  /** Runs an inference request: its outputs, or a ProtocolError. */
  async infer(call: InferCall): Promise<InferAnswer> {
    const { entry, role } = this.resolve(call.bot, call.version);
    const texts = this.texts(entry, call.inputs);
    const wanted = call.outputs && call.outputs.length > 0 ? call.outputs : OUTPUTS;
    const unknown = wanted.find((n) => !(OUTPUTS as readonly string[]).includes(n));
    if (unknown !== undefined) throw this.badRequest(entry, `unknown output ${JSON.stringify(unknown)}; outputs are "intent", "confidence", "probabilities"`);
    const { answer, residency, version } = await this.run(entry, texts, { requestId: call.requestId, deadline: call.deadline, role, key: call.conversation ?? call.id ?? call.requestId });
    const N = texts.length;
    const all: Record<string, Tensor> = {
      intent: { name: 'intent', datatype: 'BYTES', shape: [N], data: answer.rows.map((r) => r.intent) },
      confidence: { name: 'confidence', datatype: 'FP32', shape: [N], data: answer.rows.map((r) => r.confidence) },
      probabilities: { name: 'probabilities', datatype: 'FP32', shape: [N, entry.bot.intents.length], data: answer.probabilities },
    };
    return { model_name: entry.bot.id, model_version: version, ...(call.id ? { id: call.id } : {}), outputs: wanted.map((n) => all[n]), residency };
  }

  /** `/v1/bots/{bot}/predict`: one text, its intent, confidence and entities. */
  async predict(bot: string, text: string, requestId: string, conversation?: string) {
    const entry = this.bot(bot);
    const { answer, residency } = await this.run(entry, [text], { requestId, key: conversation ?? requestId, entities: true });
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

  /**
   * Runs the bot on the texts: the version named (`role`), or the one its rollout picks (a canary's share
   * by `key`; a shadow copies the request after its answer). Every failure becomes a ProtocolError (and is
   * counted); a canary's failure is counted against it and answered by the serving version.
   */
  private async run(entry: BotEntry, texts: string[], o: RunOptions): Promise<{ answer: Answer; residency?: 'hit' | 'miss'; version: string }> {
    const id = entry.bot.id;
    const { engine } = this.o;
    const deadline = Math.min(Date.now() + engine.timeoutMs, o.deadline ?? Infinity);
    const allowedMs = Math.max(0, Math.round(deadline - Date.now()));
    const rollout = engine.rollouts.active(id);
    const counted = o.role === undefined ? rollout : undefined;
    const opts = { entities: o.entities };
    if (rollout && (o.role === 'candidate' || (counted && engine.rollouts.takesCanary(rollout, o.key)))) {
      try {
        const answer = await engine.rollouts.runCandidate(rollout, texts, deadline, opts);
        if (counted) engine.rollouts.answered(rollout, 'candidate', answer);
        this.o.metrics.botRequests.inc({ bot: id, outcome: 'ok' });
        return { answer, version: rollout.candidate.version };
      } catch (e) {
        if (!counted || !(e instanceof ModelError)) throw this.failed(entry, e, o.requestId, allowedMs);
        engine.rollouts.failed(rollout, 'candidate');
        this.o.log.warn({ bot: id, version: rollout.candidate.version, err: e, reqId: o.requestId }, 'canary failed: the serving version answers');
      }
    }
    try {
      const result = await engine.serve(id, texts, deadline, opts);
      this.o.metrics.botRequests.inc({ bot: id, outcome: 'ok' });
      if (counted) {
        engine.rollouts.answered(counted, 'serving', result.answer);
        if (counted.candidate.mode === 'shadow') setImmediate(() => engine.rollouts.shadow(counted, texts, result.answer, o.key)); // after the answer is sent
      }
      return { ...result, version: servingVersion(entry.bot) };
    } catch (e) {
      if (counted && e instanceof ModelError) engine.rollouts.failed(counted, 'serving');
      throw this.failed(entry, e, o.requestId, allowedMs);
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

/** `declared_bytes`, and `measured_bytes` once the head is loaded. */
function sizeParameters(entry: BotEntry): { declared_bytes: number; measured_bytes?: number } {
  const { declared, measured } = headSize(entry);
  return { declared_bytes: declared, ...(measured !== undefined ? { measured_bytes: measured } : {}) };
}

/**
 * A message for clients: file-system paths of the pool's machine (`open '/models/.cache/...'`) become
 * `<path>`; the log keeps the message whole. Paths from the catalog (`heads/x.onnx`, `s3://...`) stay.
 */
export function withoutPaths(message: string): string {
  return message.replace(/(?<![\w:/.~-])\/(?:[^\s'",:;()/]+\/)*[^\s'",:;()/]+/g, '<path>');
}
