/**
 * The pool server: an Open Inference Protocol v2 endpoint for the bots the catalog assigns to this
 * pool. `buildPoolServer()` returns the fastify app (tests call `app.inject()`); `listen` is the caller's.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import Fastify, { FastifyBaseLogger, LogController, FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { Catalog, loadCatalog } from '../catalog';
import { plan } from '../placement';
import {
  ErrorResponse,
  InferenceResponse,
  LiveResponse,
  ModelMetadataResponse,
  ModelParams,
  ModelReadyResponse,
  ONNX_PLATFORM,
  PredictResponse,
  ReadyResponse,
  ResponseOutput,
  ServerMetadataResponse,
  TextInferenceRequest,
  predictRequest,
  isHealthProbe,
  textInferenceRequest,
  withErrors,
} from '../oip';
import { PoolMetrics } from './metrics';
import { BotEntry, PoolRuntime } from './runtime';
import { ModelStore, ModelStoreOptions } from './store';
import { CatalogWatcher } from '../catalog/watch';
import { closeGracefully } from '../serve/process';
import { DeadlineError, ModelError, OverloadedError, WorkerPool } from './workers';

export const POOL_HEADER = 'x-botshard-pool';
export const SERVER_NAME = 'botshard-pool';
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const SERVER_VERSION: string = require('../../package.json').version;

export interface PoolServerOptions {
  /** This pool's name, as the placement names it (`<group>-<suffix>`, or a dedicated pool's name). */
  pool: string;
  /** A catalog file or folder (watched for changes), or a catalog object (not watched). */
  catalog: string | Catalog;
  /** Folder that the catalog's model paths are relative to. @default - the catalog's `platform.modelRoot`, relative to the catalog's folder */
  modelRoot?: string;
  /** Folder for models downloaded from s3:// and https:// locations. @default - `<modelRoot>/.cache`, or `<tmpdir>/botshard-models` when that is read-only */
  modelCache?: string;
  /** Download settings of the model store (S3 endpoint, concurrency, retries). @default - see ModelStoreOptions */
  modelStore?: Omit<ModelStoreOptions, 'root' | 'cacheDir' | 'registry'>;
  /** Inference worker threads. @default - the CPUs available, at most 4 */
  workers?: number;
  /** Deadline of an inference request, over the catalog's (local use: the catalog is the source). @default - the pool group's `timeoutMs`, followed live */
  timeoutMs?: number;
  /** Inference requests queued per worker before shedding with 503 (per bot: half of it, at least 2), over the catalog's (local use). @default - the pool group's `concurrency`, followed live */
  concurrency?: number;
  /** Most texts in one inference request. @default 64 */
  maxBatch?: number;
  /** Most characters in one text. @default 4096 */
  maxTextLength?: number;
  /** Most bytes in a request body (413 beyond). @default 1 MiB */
  bodyLimit?: number;
  /** Time to receive a request's headers. @default 10000 */
  headersTimeoutMs?: number;
  /** Time to receive a whole request. @default 30000 */
  requestTimeoutMs?: number;
  /** How often Node checks the two timeouts above. @default 1000 */
  timeoutCheckMs?: number;
  /** Idle time of a keep-alive connection (above the router's idle time, so the pool never closes first). @default 65000 */
  keepAliveTimeoutMs?: number;
  /** How long a bot that moved to another pool keeps being served here. @default 30000 */
  moveGraceMs?: number;
  /** Catalog polling interval (fs.watch also reports changes). @default 5000 */
  pollMs?: number;
  /** Models loading at once. @default - 2 per worker */
  loadConcurrency?: number;
  /** fastify logger: `false`, or pino options. @default - JSON lines at level info, with the pool name */
  logger?: FastifyServerOptions['logger'];
  /** Collect Node process metrics (memory, CPU, event loop) too. @default true */
  processMetrics?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The pool's state (bots, catalog, readiness). */
    pool: PoolRuntime;
    poolMetrics: PoolMetrics;
    /** Reports not ready, then closes once in-flight requests are answered. */
    drain(): Promise<void>;
  }
}

type ModelRequest = FastifyRequest<{ Params: ModelParams }>;

function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).send({ error: message });
}

/** Builds the pool server: loads the catalog, starts the workers and begins loading this pool's bots. */
export async function buildPoolServer(opts: PoolServerOptions): Promise<FastifyInstance> {
  const initial = typeof opts.catalog === 'string' ? loadCatalog(opts.catalog) : opts.catalog;
  const maxBatch = opts.maxBatch ?? 64;
  const maxTextLength = opts.maxTextLength ?? 4096;
  const headersTimeout = opts.headersTimeoutMs ?? 10_000;
  const requestTimeout = Math.max(opts.requestTimeoutMs ?? 30_000, headersTimeout);

  const app = Fastify({
    logger: opts.logger ?? { level: 'info', base: { pool: opts.pool, pid: process.pid } },
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    requestIdHeader: 'x-request-id',
    // fastify's defaults coerce types and drop unknown fields silently: a client's mistake must be a 400.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
    return503OnClosing: true,
    // Two info lines per request cost more than the inference itself: requests log at debug (5xx at warn).
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    // fastify leaves Node's request timeout off: set both timeouts so slow clients cannot hold sockets.
    serverFactory: (handler) =>
      http.createServer(
        { requestTimeout, headersTimeout, keepAliveTimeout: opts.keepAliveTimeoutMs ?? 65_000, connectionsCheckingInterval: opts.timeoutCheckMs ?? 1000 },
        handler,
      ),
  });
  const log: FastifyBaseLogger = app.log;
  const metrics = new PoolMetrics(opts.pool, opts.processMetrics ?? true);
  const workerCount = opts.workers ?? Math.max(1, Math.min(4, os.availableParallelism()));
  // The catalog is the one source of group settings; an option (BOTSHARD_TIMEOUT_MS, BOTSHARD_CONCURRENCY)
  // is for local use, and says so when it wins.
  const group = initialGroup(initial, opts.pool);
  for (const [name, value, fromCatalog] of [['timeoutMs', opts.timeoutMs, group?.timeoutMs], ['concurrency', opts.concurrency, group?.concurrency]] as const) {
    if (value !== undefined) log.warn({ [name]: value, catalog: fromCatalog, group: group?.name }, `${name} set for this process overrides the pool group's ${name} in the catalog`);
  }
  const workers = new WorkerPool({
    workers: workerCount,
    concurrency: opts.concurrency ?? group?.concurrency ?? 1, // no group: the plan gives this pool no bots
    onWorkerExit: (index, err) => log.error({ worker: index, err }, 'inference worker died: restarted, its models reloading'),
    onModelLost: (_index, key, err) => runtime.modelLost(key, err),
    onQueueDepth: (index, depth) => metrics.queueDepth.set({ worker: String(index) }, depth),
  });
  const store = new ModelStore({
    onRetry: (r) => log.warn(r, 'model download failed: retrying'),
    ...opts.modelStore,
    root: opts.modelRoot ?? defaultModelRoot(opts.catalog, initial),
    cacheDir: opts.modelCache,
    registry: metrics.registry,
  });
  const runtime: PoolRuntime = new PoolRuntime({
    pool: opts.pool,
    store,
    workers,
    metrics,
    log,
    moveGraceMs: opts.moveGraceMs ?? 30_000,
    loadConcurrency: opts.loadConcurrency ?? 2 * workerCount,
    concurrency: opts.concurrency,
  });
  app.decorate('pool', runtime);
  app.decorate('poolMetrics', metrics);

  let watcher: CatalogWatcher | undefined;
  const applyCatalog = (catalog: Catalog) => {
    try {
      runtime.apply(catalog).catch(() => undefined);
      metrics.catalogReloads.inc({ result: 'applied' });
    } catch (e) {
      metrics.catalogReloads.inc({ result: 'invalid' });
      log.error({ generation: catalog.generation, err: (e as Error).message }, 'catalog cannot be placed: ignored, the current one keeps serving');
    }
  };
  applyCatalog(initial);
  if (typeof opts.catalog === 'string') {
    watcher = new CatalogWatcher({
      location: opts.catalog,
      generation: initial.generation,
      pollMs: opts.pollMs,
      onCatalog: (catalog) => {
        log.info({ generation: catalog.generation, previous: runtime.catalog?.generation }, 'catalog changed');
        applyCatalog(catalog);
      },
      onInvalid: (err) => {
        metrics.catalogReloads.inc({ result: 'invalid' });
        log.error({ err: err.message }, 'catalog changed but is invalid: ignored, the current one keeps serving');
      },
    });
    watcher.start();
  }

  app.decorate('drain', async () => {
    runtime.drain();
    log.info('draining: not ready, finishing in-flight requests');
    await closeGracefully(app);
  });

  app.addHook('onClose', async () => {
    watcher?.stop();
    runtime.close();
    await Promise.all([workers.close(), store.close()]);
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header(POOL_HEADER, opts.pool);
    reply.header('x-request-id', request.id);
  });
  app.addHook('onSend', async (_request, reply) => {
    if (runtime.draining) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    const line = { req: { method: request.method, url: request.url }, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime };
    if (reply.statusCode >= 500 && !isHealthProbe(request.routeOptions.url)) request.log.warn(line, 'request failed');
    else request.log.debug(line, 'request completed');
    metrics.requestSeconds.observe({ route: request.routeOptions.url ?? 'unknown', code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  // JSON whatever the content type says (curl -d sends form encoding).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJson(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, 404, `no route ${request.method} ${request.url.split('?')[0]}`));
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) return sendError(reply, 400, `invalid request: ${validationMessage(error)}`);
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, `request body is larger than ${app.initialConfig.bodyLimit} bytes`);
    if (error instanceof BadJsonError) return sendError(reply, 400, error.message);
    const status = error.statusCode ?? 500;
    if (status < 500) return sendError(reply, status, error.message);
    request.log.error({ err: error }, 'request failed');
    return sendError(reply, status, 'internal error');
  });

  const ready = () => runtime.ready;

  app.get('/v2/health/live', { schema: { response: withErrors(LiveResponse) } }, async () => ({ live: true }));
  app.get('/v2/health/ready', { schema: { response: { 200: ReadyResponse, 503: ReadyResponse } } }, async (_request, reply) => {
    if (!ready()) return reply.code(503).send({ ready: false });
    return { ready: true };
  });
  // The protocol's OpenAPI document writes the server metadata path as `/v2/`; clients use both.
  for (const url of ['/v2', '/v2/']) {
    app.get(url, { schema: { response: withErrors(ServerMetadataResponse) } }, async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: [] }));
  }

  /** The bot of a model route, or the 404 (naming the pool that holds the bot) already sent. */
  const botOf = (request: ModelRequest, reply: FastifyReply): BotEntry | undefined => {
    const { bot, version } = request.params;
    const found = runtime.lookup(bot);
    if (found.entry && (version === undefined || version === '1')) return found.entry;
    if (found.entry) {
      sendError(reply, 404, `bot "${bot}" has no version "${version}"; botshard serves version "1" only`);
    } else if (found.holder === opts.pool) {
      // Placed here by the catalog being applied, not registered yet (the pool is starting or reconciling).
      reply.header('retry-after', '1');
      sendError(reply, 503, `bot "${bot}" is loading`);
    } else if (found.holder) {
      reply.header(POOL_HEADER, found.holder);
      sendError(reply, 404, `bot "${bot}" is not served by pool "${opts.pool}": pool "${found.holder}" holds it`);
    } else {
      sendError(reply, 404, `bot "${bot}" is not in the catalog (generation ${runtime.catalog?.generation ?? 'none'})`);
    }
    return undefined;
  };

  /** A bot that can run now, or the 503 already sent. */
  const servable = (entry: BotEntry, reply: FastifyReply): boolean => {
    if (entry.state === 'ready' || entry.state === 'leaving') return true;
    metrics.botRequests.inc({ bot: entry.bot.id, outcome: 'not_ready' });
    if (entry.state === 'loading') reply.header('retry-after', '1');
    sendError(reply, 503, entry.state === 'loading' ? `bot "${entry.bot.id}" is loading` : `bot "${entry.bot.id}" failed to load: ${withoutPaths(entry.error ?? '')} (request id ${reply.request.id}; the pool's log has the details)`);
    return false;
  };

  const deadline = () => Date.now() + (opts.timeoutMs ?? runtime.group?.timeoutMs ?? 2000);

  /** Maps the errors of a prediction to statuses. */
  const failed = (entry: BotEntry, reply: FastifyReply, e: unknown): FastifyReply => {
    const id = entry.bot.id;
    if (e instanceof OverloadedError) {
      metrics.botRequests.inc({ bot: id, outcome: 'shed' });
      metrics.shed.inc({ reason: e.message.startsWith('bot') ? 'bot' : 'worker' });
      reply.header('retry-after', '1');
      return sendError(reply, 503, `overloaded: ${e.message}; retry later`);
    }
    if (e instanceof DeadlineError) {
      metrics.botRequests.inc({ bot: id, outcome: 'timeout' });
      return sendError(reply, 504, `bot "${id}" did not answer within ${opts.timeoutMs ?? runtime.group?.timeoutMs ?? 2000} ms`);
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

  return app;
}

/**
 * A message for clients: file-system paths of the pool's machine (`open '/models/.cache/...'`) become
 * `<path>`; the log keeps the message whole. Paths from the catalog (`heads/x.onnx`, `s3://...`) stay.
 */
export function withoutPaths(message: string): string {
  return message.replace(/(?<![\w:/.~-])\/(?:[^\s'",:;()/]+\/)*[^\s'",:;()/]+/g, '<path>');
}

/** The first schema violation, saying what was expected (Ajv says "must be equal to constant"). */
function validationMessage(error: FastifyError): string {
  const first = error.validation?.[0];
  if (!first) return error.message;
  const where = `${error.validationContext ?? 'body'}${first.instancePath}`;
  const params = first.params as Record<string, unknown>;
  if (first.keyword === 'const') return `${where} must be ${JSON.stringify(params.allowedValue)}`;
  if (first.keyword === 'additionalProperties') return `${where} has an unknown field ${JSON.stringify(params.additionalProperty)}`;
  return `${where} ${first.message}`;
}

/** A request body that is not acceptable JSON: 400. */
class BadJsonError extends Error {
  readonly statusCode = 400;
}

/**
 * JSON.parse, refusing the keys that pollute prototypes when objects are merged later (`__proto__`,
 * `constructor.prototype`): rejected outright rather than silently dropped.
 */
export function parseJson(text: string): unknown {
  if (text.trim() === '') throw new BadJsonError('request body is empty; send a JSON object');
  try {
    return JSON.parse(text, function reviver(key, value) {
      if (key === '__proto__') throw new BadJsonError('request body uses the forbidden key "__proto__"');
      if (key === 'constructor' && value !== null && typeof value === 'object' && Object.prototype.hasOwnProperty.call(value, 'prototype')) {
        throw new BadJsonError('request body uses the forbidden key "constructor.prototype"');
      }
      return value;
    });
  } catch (e) {
    if (e instanceof BadJsonError) throw e;
    throw new BadJsonError(`malformed JSON: ${(e as Error).message}`);
  }
}

function defaultModelRoot(location: string | Catalog, catalog: Catalog): string {
  if (typeof location !== 'string') return path.resolve(catalog.platform.modelRoot);
  const dir = fs.statSync(location).isDirectory() ? location : path.dirname(location);
  return path.resolve(dir, catalog.platform.modelRoot);
}

function initialGroup(catalog: Catalog, pool: string) {
  try {
    const own = plan(catalog).pools.find((p) => p.name === pool);
    return own ? catalog.groups.find((g) => g.name === own.group) : undefined;
  } catch {
    return undefined;
  }
}

