/**
 * The Node router's admission: the admission rules (admission-rules.ts) applied in their order to a
 * request, each refusal counted. The HAProxy data plane applies the same rules in its frontend.
 */
import { isBotId } from '../catalog';
import { ProtocolError } from '../oip';
import { AdmissionRule, RULES, RefusalFields, RefusalReason } from './admission-rules';
import { groupConcurrency } from './limits';
import { RouterMetrics } from './metrics';
import { Route, RoutingTable } from './table';
import { RateLimiter, TenantKeys, keysRequired } from './tenants';

export interface AdmissionOptions {
  table: RoutingTable;
  metrics: RouterMetrics;
  /** Requests being forwarded, per pool group (shared with the metrics). */
  inflight: Map<string, number>;
  /** Tenant API keys, when the router was given a folder of them. */
  keys?: TenantKeys;
  limiter?: RateLimiter;
  /** Requests forwarded at once per pool group, over the default (limits.ts: the group's concurrency x pools x max replicas). */
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
    return keysRequired(this.o.table.catalog);
  }

  /**
   * The route of an admitted request, holding one of its group's slots until `release()`. Throws the
   * refusal as a ProtocolError (counted), for REST or gRPC to send. `credentials`: the caller's
   * `authorization` and `x-api-key` headers (or gRPC metadata).
   */
  admit(bot: string, credentials: Credentials): Route {
    const { table, inflight } = this.o;
    if (!isBotId(bot)) throw this.refuse(RULES.bad_id, { id: JSON.stringify(bot.slice(0, 80)) });
    const tenant = this.authenticate(credentials);
    const route = table.route(bot);
    if (!route) throw this.refuse(RULES.unknown_bot, { bot, generation: table.generation });
    if (tenant !== null && tenant !== route.tenant) throw this.refuse(RULES.other_tenant, { bot: route.bot });
    const wait = this.o.limiter?.take(route.tenant) ?? 0;
    if (wait > 0) throw this.refuse(RULES.rate_limit, { tenant: route.tenant }, wait);
    const group = route.group.name;
    const busy = inflight.get(group) ?? 0;
    if (busy >= this.groupLimit(route)) throw this.refuse(RULES.group_concurrency, { group });
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
    if (!keys || keys.size === 0) throw this.refuse(RULES.no_keys, {});
    const auth = credentials.authorization;
    const key = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7).trim() : credentials['x-api-key'];
    if (!key) throw this.refuse(RULES.no_key, {});
    const tenant = keys.tenantOf(key);
    if (tenant === undefined) throw this.refuse(RULES.bad_key, {});
    return tenant;
  }

  private groupLimit(route: Route): number {
    return this.o.groupConcurrency?.[route.group.name] ?? groupConcurrency(route.group, this.o.table.poolCount(route.group.name));
  }

  /** The rule's refusal, counted; `retryAfterSeconds`: a wait of the request's own, over the rule's. */
  private refuse<R extends RefusalReason>(rule: AdmissionRule<R>, fields: RefusalFields[R], retryAfterSeconds = rule.retryAfterSeconds): ProtocolError {
    this.o.metrics.rejected.inc({ reason: rule.reason });
    const o: ProtocolError['o'] = {};
    if (retryAfterSeconds !== undefined) o.retryAfterSeconds = retryAfterSeconds;
    if (rule.overloaded) o.overloaded = true;
    if (rule.headers) o.headers = { ...rule.headers };
    return new ProtocolError(rule.status, rule.message(fields), o);
  }
}
