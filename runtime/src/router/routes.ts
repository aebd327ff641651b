/**
 * The router's routes: every per-bot path of the protocol (and `/v1/bots/{bot}/predict`), admitted, then
 * forwarded to the bot's pool under the same path.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProtocolError, sendError, sendProblem } from '../oip';
import { Admission } from '../routing/admission';
import { MODEL_VERSION } from '../routing/admission-rules';
import { InFlight } from '../routing/metrics';
import { RestForwarder } from './rest-forward';

type ModelRoute = { Params: { bot: string; version?: string } };

const header = (v: string | string[] | undefined) => (typeof v === 'string' ? v : undefined);

/** Registers the forwarded routes on the router's app. */
export async function proxyRoutes(app: FastifyInstance, o: { admission: Admission; rest: RestForwarder; inFlight: InFlight }): Promise<void> {
  // Every forwarded request, from its headers on, until its response is sent whole or its connection
  // closes first (the client went away: counted as aborted). This plugin's routes only (fastify scopes hooks).
  app.addHook('onRequest', (_request, reply, done) => {
    const res = reply.raw;
    const end = o.inFlight.take('rest', () => res.writableFinished);
    res.once('close', () => end(!res.writableFinished));
    done();
  });
  /** Admits, then forwards to the bot's pool; the group slot is held until the answer is sent on. */
  const forward = async (request: FastifyRequest, reply: FastifyReply, bot: string, path: string): Promise<FastifyReply> => {
    let route;
    try {
      route = o.admission.admit(bot, { authorization: request.headers.authorization, 'x-api-key': header(request.headers['x-api-key']) });
    } catch (e) {
      if (e instanceof ProtocolError) return sendProblem(reply, e);
      throw e;
    }
    try {
      return await o.rest.forward(request, reply, route, path);
    } finally {
      o.admission.release(route);
    }
  };
  for (const prefix of ['/v2/models/:bot', '/v2/models/:bot/versions/:version']) {
    for (const [method, tail] of [['GET', ''], ['GET', '/ready'], ['POST', '/infer']] as const) {
      app.route<ModelRoute>({
        method,
        url: `${prefix}${tail}`,
        handler: async (request, reply) => {
          const { bot, version } = request.params;
          if (version !== undefined && !MODEL_VERSION.test(version)) return sendError(reply, 400, `invalid model version ${JSON.stringify(version.slice(0, 80))}`);
          return forward(request, reply, bot, `/v2/models/${bot}${version !== undefined ? `/versions/${version}` : ''}${tail}`);
        },
      });
    }
  }
  app.post<ModelRoute>('/v1/bots/:bot/predict', async (request, reply) => forward(request, reply, request.params.bot, `/v1/bots/${request.params.bot}/predict`));
}
