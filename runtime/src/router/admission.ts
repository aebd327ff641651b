/**
 * What the router checks before it forwards anything, in order: the bot id, the caller's API key (before
 * the bot is looked up, so that without a key known and unknown bots look the same), the bot's route,
 * the tenant's own bots and rate limit, and the pool group's concurrency. Each refusal is counted.
 */
import { MAX_BOT_ID, isBotId } from '../catalog';
import { ProtocolError } from '../oip';
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

/** Where a caller's API key comes from: REST headers or gRPC metadata of these names. */
export interface Credentials {
  authorization?: string;
  'x-api-key'?: string;
}

export class Admission {
  constructor(private readonly o: AdmissionOptions) {}

  /** The catalog asks for API keys: without them nothing is served (fail closed, never "auth off"). */
  get authRequired(): boolean {
    return this.o.table.catalog.platform.auth === 'tenant-keys';
  }

  /**
   * The route of an admitted request, holding one of its group's slots until `release()`. Throws the
   * refusal as a ProtocolError (counted), for REST or gRPC to send. `credentials`: the caller's
   * `authorization` and `x-api-key` headers (or gRPC metadata).
   */
  admit(bot: string, credentials: Credentials): Route {
    const { table, inflight } = this.o;
    if (!isBotId(bot)) throw this.refuse('bad_id', 400, `invalid bot id ${JSON.stringify(bot.slice(0, 80))}: bot ids are lowercase letters, digits and "-", at most ${MAX_BOT_ID} characters`);
    const tenant = this.authenticate(credentials);
    const route = table.route(bot);
    if (!route) throw this.refuse('unknown_bot', 404, `unknown bot "${bot}": it is not in catalog generation ${table.generation}`);
    if (tenant !== null && tenant !== route.tenant) throw this.refuse('other_tenant', 403, `this API key may not use bot "${route.bot}"`);
    const wait = this.o.limiter?.take(route.tenant) ?? 0;
    if (wait > 0) throw this.refuse('rate_limit', 429, `tenant "${route.tenant}" is over its rate limit`, { retryAfterSeconds: wait });
    const group = route.group.name;
    const busy = inflight.get(group) ?? 0;
    if (busy >= this.groupLimit(route)) throw this.refuse('group_concurrency', 503, `pool group "${group}" is at its concurrency limit`, { retryAfterSeconds: 1, overloaded: true });
    inflight.set(group, busy + 1);
    return route;
  }

  /** Gives back the group slot an admitted request held. */
  release(route: Route): void {
    const group = route.group.name;
    this.o.inflight.set(group, (this.o.inflight.get(group) ?? 1) - 1);
  }

  /** The caller's tenant, null when the catalog asks for no authentication; throws the 401. */
  private authenticate(credentials: Credentials): string | null {
    if (!this.authRequired) return null;
    const keys = this.o.keys;
    const refuse = (reason: string, message: string) => this.refuse(reason, 401, message, { headers: { 'www-authenticate': 'Bearer' } });
    if (!keys || keys.size === 0) throw refuse('no_keys', 'API keys are required and none are configured on this router; retry later');
    const auth = credentials.authorization;
    const key = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7).trim() : credentials['x-api-key'];
    if (!key) throw refuse('no_key', 'an API key is required: send "Authorization: Bearer <key>"');
    const tenant = keys.tenantOf(key);
    if (tenant === undefined) throw refuse('bad_key', 'the API key is not valid');
    return tenant;
  }

  private groupLimit(route: Route): number {
    const configured = this.o.groupConcurrency?.[route.group.name];
    if (configured !== undefined) return configured;
    return route.group.concurrency * Math.max(1, this.o.table.poolCount(route.group.name)) * route.group.replicas.max;
  }

  private refuse(reason: string, status: number, message: string, o?: ProtocolError['o']): ProtocolError {
    this.o.metrics.rejected.inc({ reason });
    return new ProtocolError(status, message, o);
  }
}
