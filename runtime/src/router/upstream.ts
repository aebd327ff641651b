import { Agent, Dispatcher, errors } from 'undici';

/** Where each pool answers: a template such as `http://{pool}.{namespace}.svc.cluster.local:8080`, or a map. */
export type PoolAddress = (pool: string) => string | undefined;

/** A template with `{pool}` (and `{namespace}`), or a function for explicit addresses (local mode). */
export function poolAddress(template: string, namespace: string): PoolAddress {
  if (!template.includes('{pool}')) throw new Error(`pool URL template ${JSON.stringify(template)} has no {pool}: write e.g. http://{pool}.{namespace}.svc.cluster.local:8080`);
  const url = new URL(template.replace('{pool}', 'pool').replace('{namespace}', namespace));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`pool URL template ${JSON.stringify(template)} must be http:// or https://`);
  return (pool) => template.replace('{pool}', pool).replace('{namespace}', namespace).replace(/\/+$/, '');
}

/** The default gRPC port of pools (and of the router). */
export const GRPC_PORT = 8081;

/**
 * Where each pool answers gRPC (`host:port`): a template such as `{pool}.{namespace}.svc.cluster.local:8081`,
 * or the host of an HTTP pool URL template on the default gRPC port; a function (local mode) has no default.
 */
export function poolGrpcAddress(template: string | PoolAddress, namespace: string): PoolAddress {
  if (typeof template === 'function') return () => undefined;
  if (!template.includes('{pool}')) throw new Error(`pool gRPC address template ${JSON.stringify(template)} has no {pool}: write e.g. {pool}.{namespace}.svc.cluster.local:${GRPC_PORT}`);
  // `http://{pool}.{namespace}.svc.cluster.local:8080/` -> `{pool}.{namespace}.svc.cluster.local:8081`
  const hostPort = /^[a-z]+:\/\//.test(template) ? `${template.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '').replace(/:\d+$/, '')}:${GRPC_PORT}` : template;
  return (pool) => hostPort.replace('{pool}', pool).replace('{namespace}', namespace);
}

/** Why forwarding failed before a response came back. */
export type UpstreamFailure = 'connect' | 'timeout' | 'reset';

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamFailure,
    readonly pool: string,
    message: string,
  ) {
    super(message);
  }
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

/** Response headers worth passing back: all but hop-by-hop ones. */
export function responseHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name.toLowerCase())) out[name] = value;
  }
  return out;
}

function classify(e: unknown, pool: string): UpstreamError {
  const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err.code ?? err.cause?.code ?? '';
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError || err.name === 'AbortError') {
    return new UpstreamError('timeout', pool, `pool "${pool}" did not answer in time`);
  }
  if (err instanceof errors.ConnectTimeoutError || ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)) {
    return new UpstreamError('connect', pool, `pool "${pool}" is unreachable (${code || err.message})`);
  }
  return new UpstreamError('reset', pool, `pool "${pool}" closed the connection (${code || err.message})`);
}

export interface ForwardRequest {
  pool: string;
  origin: string;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Absolute deadline (ms since epoch). */
  deadline: number;
}

/** Keep-alive connection pools to every upstream, kept open longer than a load balancer's idle timeout. */
export class Upstreams {
  private readonly agent: Agent;

  constructor(opts: { connections?: number; keepAliveMs?: number; connectTimeoutMs?: number } = {}) {
    this.agent = new Agent({
      connections: opts.connections ?? 64,
      keepAliveTimeout: opts.keepAliveMs ?? 60_000,
      keepAliveMaxTimeout: 10 * 60_000,
      connect: { timeout: opts.connectTimeoutMs ?? 2000 },
      pipelining: 1,
    });
  }

  /** Sends a request; resolves with the response (body unread, streaming) or rejects with an UpstreamError. */
  async forward(req: ForwardRequest): Promise<Dispatcher.ResponseData> {
    const remaining = req.deadline - Date.now();
    if (remaining <= 0) throw new UpstreamError('timeout', req.pool, `pool "${req.pool}" did not answer in time`);
    // undici's own timers bound the wait for the headers and for each body chunk: no extra timer per request.
    try {
      return await this.agent.request({
        origin: req.origin,
        path: req.path,
        method: req.method,
        headers: req.headers,
        body: req.body,
        headersTimeout: remaining,
        bodyTimeout: remaining,
      });
    } catch (e) {
      throw classify(e, req.pool);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
