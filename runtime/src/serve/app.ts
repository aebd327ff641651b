/**
 * The server shell that pool and router share: the fastify instance with its limits and timeouts, one
 * error shape, the body parser, request ids, request logging, the protocol's health and server metadata
 * routes, and drain. Each server builds its state, calls `createApp()` and registers its own routes.
 */
import * as http from 'node:http';
import Fastify, { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerFactory, FastifyServerOptions, LogController } from 'fastify';
import { LiveResponse, ReadyResponse, ServerMetadataResponse, isHealthProbe, sendError, withErrors } from '../oip';
import { BINARY_EXTENSION, BINARY_HEADER, decodeBinaryRequest } from '../oip/binary';
import { parseJson } from '../oip/json';
import { GrpcEndpoint, GrpcEndpointOptions } from './grpc';
import { requestIdOf } from './request-id';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const SERVER_VERSION: string = require('../../package.json').version;

/** The shell's limits and timeouts: one default for each, the same for pool and router. */
export const APP_DEFAULTS = {
  /** Most bytes in a request body (413 beyond). */
  bodyLimit: 1024 * 1024,
  /** Time to receive a request's headers. */
  headersTimeoutMs: 10_000,
  /** Time to receive a whole request. */
  requestTimeoutMs: 30_000,
  /** Idle time of a keep-alive connection: above a typical load balancer's (and the router's) 60 s. */
  keepAliveTimeoutMs: 65_000,
  /** How often Node checks the two request timeouts. */
  timeoutCheckMs: 1000,
} as const;


export interface AppOptions {
  /** The server's name in `GET /v2` (server metadata). */
  name: string;
  /** Protocol extensions listed in `GET /v2`. @default [] */
  extensions?: string[];
  /** Whether `GET /v2/health/ready` answers 200 (it answers 503 while draining whatever this says). */
  ready(): boolean;
  /** How request bodies arrive at handlers: parsed JSON (whatever the content type: `curl -d` sends form encoding), or the bytes as received (to forward them). */
  body: 'json' | 'bytes';
  /** Called when draining starts, before in-flight requests are waited for (stop taking work). */
  onDrain?(): void;
  /**
   * Called once, just before the process exits (drained, or its drain past the limit): the server ends
   * what it still has in flight and says what, for its last log line ("drained", or "drain took longer").
   */
  onExit?(): object;
  /** Called for every response (metrics). */
  onResponse?(request: FastifyRequest, reply: FastifyReply): void;
  /** fastify logger: `false`, or pino options. */
  logger: FastifyServerOptions['logger'];
  /** @default APP_DEFAULTS.bodyLimit */
  bodyLimit?: number;
  /** @default APP_DEFAULTS.headersTimeoutMs */
  headersTimeoutMs?: number;
  /** @default APP_DEFAULTS.requestTimeoutMs */
  requestTimeoutMs?: number;
  /** @default APP_DEFAULTS.keepAliveTimeoutMs */
  keepAliveTimeoutMs?: number;
  /** @default APP_DEFAULTS.timeoutCheckMs */
  timeoutCheckMs?: number;
  /** The protocol over gRPC too: the model methods' handlers (health and server metadata are the shell's). */
  grpc?: Pick<GrpcEndpointOptions, 'models' | 'raw' | 'stamp' | 'onCall'>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Set once draining has started: not ready, and every answer closes its connection. */
    readonly draining: boolean;
    /** Reports not ready, then closes once in-flight requests are answered. */
    drain(): Promise<void>;
    /** Responses that ended before they were sent whole (connection reset or closed mid-answer), since start. */
    readonly unfinishedResponses: number;
    /** Ends what the server still has in flight, just before the process exits; returns what to add to its last log line (AppOptions.onExit). */
    exiting(): object;
    /** The gRPC endpoint, when the server speaks gRPC (it listens when `grpc.listen()` is called). */
    readonly grpc?: GrpcEndpoint;
  }
}

/** The fastify instance of a botshard server, with everything both servers share. Routes are the caller's. */
export function createApp(o: AppOptions): FastifyInstance {
  const app = Fastify(fastifyOptions(o));
  let draining = false;
  let unfinished = 0;
  app.decorate('draining', { getter: () => draining });
  app.decorate('unfinishedResponses', { getter: () => unfinished });
  // Both transports list the binary tensor data extension (REST) beside the server's own.
  const extensions = [...(o.extensions ?? []), BINARY_EXTENSION];
  const grpcEndpoint = o.grpc && new GrpcEndpoint({ ...o.grpc, name: o.name, version: SERVER_VERSION, extensions, ready: () => !draining && o.ready(), maxMessageBytes: o.bodyLimit ?? APP_DEFAULTS.bodyLimit, log: app.log });
  app.decorate('grpc', { getter: () => grpcEndpoint });
  app.decorate('exiting', () => o.onExit?.() ?? {});
  // gRPC calls in flight finish before the server's own onClose hooks (the pool's workers) run.
  if (grpcEndpoint) app.addHook('preClose', async () => grpcEndpoint.close());
  app.decorate('drain', async () => {
    draining = true;
    grpcEndpoint?.drain();
    o.onDrain?.();
    app.log.info('draining: not ready, finishing in-flight requests');
    await closeGracefully(app);
  });
  parseBodies(app, o.body);
  answerErrors(app, o.bodyLimit ?? APP_DEFAULTS.bodyLimit);

  // Hooks in callback style: on every request, a promise per hook is measurable on the router's path.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) unfinished += 1;
    });
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    // Draining: the client learns to open its next connection elsewhere.
    if (draining) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    const failed = reply.statusCode >= 500 && !isHealthProbe(request.routeOptions.url);
    if (failed || request.log.level === 'debug' || request.log.level === 'trace') {
      const line = { method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime };
      if (failed) request.log.warn(line, 'request failed');
      else request.log.debug(line, 'request');
    }
    o.onResponse?.(request, reply);
    done();
  });

  app.get('/v2/health/live', { schema: { response: withErrors(LiveResponse) } }, async () => ({ live: true }));
  app.get('/v2/health/ready', { schema: { response: { 200: ReadyResponse, 503: ReadyResponse } } }, async (_request, reply) => {
    const ready = !draining && o.ready();
    return reply.code(ready ? 200 : 503).send({ ready });
  });
  // The protocol's OpenAPI document writes the server metadata path as `/v2/`; clients use both.
  for (const url of ['/v2', '/v2/']) {
    app.get(url, { schema: { response: withErrors(ServerMetadataResponse) } }, async () => ({ name: o.name, version: SERVER_VERSION, extensions }));
  }
  return app;
}

/** fastify's settings: limits, timeouts, strict validation, request ids, quiet request logging. */
function fastifyOptions(o: AppOptions): FastifyServerOptions & { serverFactory: FastifyServerFactory } {
  const headersTimeout = o.headersTimeoutMs ?? APP_DEFAULTS.headersTimeoutMs;
  const requestTimeout = Math.max(o.requestTimeoutMs ?? APP_DEFAULTS.requestTimeoutMs, headersTimeout);
  return {
    logger: o.logger,
    bodyLimit: o.bodyLimit ?? APP_DEFAULTS.bodyLimit,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // fastify's defaults coerce types and drop unknown fields silently: a client's mistake must be a 400.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
    return503OnClosing: true,
    // Two info lines per request cost more than the request itself: requests log at debug (5xx at warn).
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    requestIdHeader: false,
    genReqId: (req) => requestIdOf(req.headers['x-request-id']),
    routerOptions: { maxParamLength: 256 },
    // fastify leaves Node's request timeout off: set both timeouts so slow clients cannot hold sockets.
    serverFactory: (handler) =>
      http.createServer(
        { requestTimeout, headersTimeout, keepAliveTimeout: o.keepAliveTimeoutMs ?? APP_DEFAULTS.keepAliveTimeoutMs, connectionsCheckingInterval: o.timeoutCheckMs ?? APP_DEFAULTS.timeoutCheckMs },
        handler,
      ),
    // Malformed or overlong URLs get the protocol's error shape too, without echoing the URL back.
    frameworkErrors: (error, _request, reply) => {
      const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
      sendError(reply, status, status === 414 ? 'the URL is too long' : 'malformed URL');
    },
  };
}

/** Bodies as parsed JSON whatever the content type says (`curl -d` sends form encoding), or as received bytes. */
function parseBodies(app: FastifyInstance, body: AppOptions['body']): void {
  app.removeAllContentTypeParsers();
  if (body === 'bytes') {
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, bytes, done) => done(null, bytes));
    return;
  }
  // JSON, or JSON and raw tensors when the binary data extension's header says where the JSON ends.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, bytes, done) => {
    try {
      const headerLength = request.headers[BINARY_HEADER];
      done(null, typeof headerLength === 'string' ? decodeBinaryRequest(bytes as Buffer, headerLength) : parseJson((bytes as Buffer).toString('utf8')));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
}

/** Every error as `{"error": ...}`: schema violations and bad JSON 400, oversize 413, bugs 500 (logged, not shown). */
function answerErrors(app: FastifyInstance, bodyLimit: number): void {
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, `no route ${request.method} ${request.url.split('?')[0].slice(0, 200)}`));
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) return sendError(reply, 400, `invalid request: ${validationMessage(error)}`);
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, `request body is larger than ${bodyLimit} bytes`);
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    if (status < 500) return sendError(reply, status, error.message);
    request.log.error({ err: error }, 'request failed');
    return sendError(reply, status, 'internal error');
  });
}

/**
 * Closes a server once its in-flight requests are answered. Keep-alive connections are closed as soon as
 * they go idle (fastify closes those idle at the start only), so a client holding one open does not keep
 * the process alive until the drain limit.
 */
export async function closeGracefully(app: FastifyInstance): Promise<void> {
  const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
  try {
    await app.close();
  } finally {
    clearInterval(sweep);
  }
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
