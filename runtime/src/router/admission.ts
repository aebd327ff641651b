/**
 * What the router checks before it forwards anything, in order: the bot id, the caller's API key (before
 * the bot is looked up, so that without a key known and unknown bots look the same), the bot's route,
 * the tenant's own bots and rate limit, and the pool group's concurrency. Each refusal is counted.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MAX_BOT_ID, isBotId } from '../catalog';
import { sendError } from '../oip';
import { RouterMetrics } from './metrics';
import { Route, RoutingTable } from './table';
import { RateLimiter, TenantKeys } from './tenants';

export interface AdmissionOptions {
  table: RoutingTable;
  metrics: RouterMetrics;
  /** Requests being forwarded, per pool group (shared with the metrics). */
  inflight: Map<string, number>;
  /** Tenant API keys, when the router was given a folder of them. */
  keys?: TenantKeys;
  limiter?: RateLimiter;
  /** Requests forwarded at once per pool group, over the default (the group's concurrency x pools x max replicas). */
  groupConcurrency?: Readonly<Record<string, number>>;
}

export class Admission {
  constructor(private readonly o: AdmissionOptions) {}

  /** The catalog asks for API keys: without them nothing is served (fail closed, never "auth off"). */
  get authRequired(): boolean {
    return this.o.table.catalog.platform.auth === 'tenant-keys';
  }

  /**
   * The route of an admitted request, holding one of its group's slots until `release()`; undefined
   * when refused (the reply is sent).
   */
  admit(request: FastifyRequest, reply: FastifyReply, bot: string): Route | undefined {
    const { table, inflight } = this.o;
    if (!isBotId(bot)) {
      this.refuse(reply, 'bad_id', 400, `invalid bot id ${JSON.stringify(bot.slice(0, 80))}: bot ids are lowercase letters, digits and "-", at most ${MAX_BOT_ID} characters`);
      return undefined;
    }
    const tenant = this.authenticate(request, reply);
    if (tenant === undefined) return undefined;
    const route = table.route(bot);
    if (!route) {
      this.refuse(reply, 'unknown_bot', 404, `unknown bot "${bot}": it is not in catalog generation ${table.generation}`);
      return undefined;
    }
    if (tenant !== null && tenant !== route.tenant) {
      this.refuse(reply, 'other_tenant', 403, `this API key may not use bot "${route.bot}"`);
      return undefined;
    }
    const wait = this.o.limiter?.take(route.tenant) ?? 0;
    if (wait > 0) {
      this.refuse(reply, 'rate_limit', 429, `tenant "${route.tenant}" is over its rate limit`, wait);
      return undefined;
    }
    const group = route.group.name;
    const busy = inflight.get(group) ?? 0;
    if (busy >= this.groupLimit(route)) {
      this.refuse(reply, 'group_concurrency', 503, `pool group "${group}" is at its concurrency limit`, 1);
      return undefined;
    }
    inflight.set(group, busy + 1);
    return route;
  }

  /** Gives back the group slot an admitted request held. */
  release(route: Route): void {
    const group = route.group.name;
    this.o.inflight.set(group, (this.o.inflight.get(group) ?? 1) - 1);
  }

  /** The caller's tenant, null when the catalog asks for no authentication, undefined when refused (401 sent). */
  private authenticate(request: FastifyRequest, reply: FastifyReply): string | null | undefined {
    if (!this.authRequired) return null;
    const keys = this.o.keys;
    const refuse = (reason: string, message: string) => {
      reply.header('www-authenticate', 'Bearer');
      this.refuse(reply, reason, 401, message);
      return undefined;
    };
    if (!keys || keys.size === 0) return refuse('no_keys', 'API keys are required and none are configured on this router; retry later');
    const auth = request.headers.authorization;
    const key = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7).trim() : (request.headers['x-api-key'] as string | undefined);
    if (!key) return refuse('no_key', 'an API key is required: send "Authorization: Bearer <key>"');
    return keys.tenantOf(key) ?? refuse('bad_key', 'the API key is not valid');
  }

  private groupLimit(route: Route): number {
    const configured = this.o.groupConcurrency?.[route.group.name];
    if (configured !== undefined) return configured;
    return route.group.concurrency * Math.max(1, this.o.table.poolCount(route.group.name)) * route.group.replicas.max;
  }

  private refuse(reply: FastifyReply, reason: string, status: number, message: string, retryAfter?: number): void {
    this.o.metrics.rejected.inc({ reason });
    sendError(reply, status, message, retryAfter);
  }
}
