/**
 * The REST transport of the forwarding loop (routing/forward.ts): calls a pool over keep-alive HTTP
 * connections and sends its answer on to the caller, small answers in one write, large ones streamed.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CONVERSATION_HEADER, ProtocolError, holderOf, sendError, sendProblem } from '../oip';
import type { PoolAddress } from '../routing/addresses';
import { Forwarder, Transport } from '../routing/forward';
import { RouterMetrics } from '../routing/metrics';
import { Route } from '../routing/table';
import { Upstreams, responseHeaders } from './upstream';

/** Responses up to this size are read whole and sent in one write; larger ones are streamed. */
const SMALL_BODY = 64 * 1024;
/** Request headers passed on to the pool. */
const FORWARDED_HEADERS = ['content-type', 'accept', 'traceparent', 'tracestate', 'inference-header-content-length', CONVERSATION_HEADER];

type Upstream = Awaited<ReturnType<Upstreams['forward']>>;

export class RestForwarder {
  private readonly upstreams = new Upstreams({ keepAliveMs: 60_000 });

  constructor(
    private readonly forwarder: Forwarder,
    private readonly address: PoolAddress,
    private readonly metrics: RouterMetrics,
  ) {}

  /** Forwards a REST request for `route` to `path` on the bot's pool (or its fallbacks) and sends the answer on. */
  async forward(request: FastifyRequest, reply: FastifyReply, route: Route, path: string): Promise<FastifyReply> {
    const headers: Record<string, string> = { 'x-request-id': request.id };
    for (const name of FORWARDED_HEADERS) {
      const v = request.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    const method = request.method as 'GET' | 'POST';
    const body = method === 'POST' ? (Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)) : undefined;
    const transport: Transport<Upstream> = {
      name: 'rest',
      address: this.address,
      call: async (pool, origin, deadline) => {
        const res = await this.upstreams.forward({ pool, origin, method, path, headers, body, deadline });
        return { answer: res, code: res.statusCode, holder: holderOf(res.statusCode, res.headers), unavailable: res.statusCode === 503, discard: () => res.body.dump() };
      },
    };
    try {
      const { pool, answer } = await this.forwarder.forward(route, transport);
      return await this.relay(reply, pool, answer);
    } catch (e) {
      if (e instanceof ProtocolError) return sendProblem(reply, e);
      throw e;
    }
  }

  close(): Promise<void> {
    return this.upstreams.close();
  }

  /** Sends a pool's answer on: small ones (all of the protocol's JSON, in practice) in one write, large ones streamed. */
  private async relay(reply: FastifyReply, pool: string, res: Upstream): Promise<FastifyReply> {
    const length = Number(res.headers['content-length']);
    let answer: Buffer | Upstream['body'] = res.body;
    if (length >= 0 && length <= SMALL_BODY) {
      try {
        answer = Buffer.from(await res.body.arrayBuffer());
      } catch {
        this.metrics.upstreamErrors.inc({ pool, kind: 'reset' });
        return sendError(reply, 502, `pool "${pool}" closed the connection in the middle of its answer`);
      }
    }
    reply.code(res.statusCode).headers(responseHeaders(res.headers));
    return reply.send(answer);
  }
}
