/** The Node router's REST connections to pools (undici keep-alive pools) and how their failures are classified. */
import { Agent, Dispatcher, errors } from 'undici';
import { UpstreamError } from '../routing/forward';

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
