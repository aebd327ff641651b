/**
 * The router's admission on its own (runtime/src/routing/admission.ts): a real routing table, real tenant
 * keys in a folder, a real rate limiter on an injected clock and real metrics; no server. Each refusal:
 * its status, message, headers and the reason it is counted under, and what it leaves of the group's slots.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseCatalog } from '@botshard/runtime/catalog';
import { ProtocolError } from '@botshard/runtime/oip';
import { Admission, AdmissionOptions } from '@botshard/runtime/routing/admission';
import { RouterMetrics } from '@botshard/runtime/routing/metrics';
import { RoutingTable } from '@botshard/runtime/routing/table';
import { RateLimiter, TenantKeys, hashKey } from '@botshard/runtime/routing/tenants';

const bot = (id: string, tenant: string, realtime = true) => ({ id, tenant, realtime, model: { head: `heads/${id}.onnx`, memory: '2Mi' }, intents: [{ name: 'a' }] });

function catalog(o: { auth?: boolean; pools?: number; concurrency?: number; replicasMax?: number } = {}) {
  return parseCatalog({
    platform: o.auth ? { auth: 'tenant-keys' } : {},
    tenants: [{ id: 'acme' }, { id: 'globex' }],
    groups: [
      { name: 'rt', realtime: true, memory: '1Gi', pools: o.pools ?? 1, locality: 'none', concurrency: o.concurrency ?? 2, replicas: { min: 1, max: o.replicasMax ?? 1 } },
      { name: 'batch', realtime: false, memory: '1Gi', pools: 1, locality: 'none', concurrency: 1, replicas: { min: 1, max: 1 } },
    ],
    bots: [bot('acme-bot', 'acme'), bot('globex-bot', 'globex'), bot('acme-batch', 'acme', false)],
  });
}

function keysFolder(keys: Record<string, string[]>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-admission-'));
  for (const [tenant, list] of Object.entries(keys)) fs.writeFileSync(path.join(dir, tenant), list.map(hashKey).join('\n'));
  return dir;
}

function admission(o: Partial<AdmissionOptions> & { auth?: boolean; pools?: number; concurrency?: number; replicasMax?: number } = {}) {
  const { auth, pools, concurrency, replicasMax, ...rest } = o;
  const metrics = new RouterMetrics(false);
  const inflight = new Map<string, number>();
  const table = new RoutingTable(catalog({ auth, pools, concurrency, replicasMax }));
  return { a: new Admission({ table, metrics, inflight, ...rest }), metrics, inflight, table };
}

/** The refusal admit() throws. */
function refusal(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return e as ProtocolError;
  }
  throw new Error('expected a refusal');
}

async function rejected(metrics: RouterMetrics): Promise<Record<string, number>> {
  const { values } = await metrics.rejected.get();
  return Object.fromEntries(values.filter((v) => v.value > 0).map((v) => [String(v.labels.reason), v.value]));
}

describe('Admission: ids and routes', () => {
  test('an invalid bot id is a 400 naming it (80 characters at most) and the rule, counted bad_id', async () => {
    const { a, metrics, inflight } = admission();
    const e = refusal(() => a.admit('Acme_Bot', {}));
    expect([e.status, e.message]).toEqual([400, 'invalid bot id "Acme_Bot": bot ids are lowercase letters, digits and "-", at most 40 characters']);
    const long = refusal(() => a.admit('x'.repeat(100), {}));
    expect(long.message).toBe(`invalid bot id "${'x'.repeat(80)}": bot ids are lowercase letters, digits and "-", at most 40 characters`);
    expect(await rejected(metrics)).toEqual({ bad_id: 2 });
    expect([...inflight]).toEqual([]);
  });

  test('an unknown bot is a 404 naming the catalog generation, counted unknown_bot', async () => {
    const { a, metrics, table } = admission();
    const e = refusal(() => a.admit('nobody', {}));
    expect([e.status, e.message]).toEqual([404, `unknown bot "nobody": it is not in catalog generation ${table.generation}`]);
    expect(await rejected(metrics)).toEqual({ unknown_bot: 1 });
  });

  test('a known bot gets its route and holds one slot of its group until released', () => {
    const { a, inflight, table } = admission();
    const route = a.admit('acme-bot', {});
    expect(route).toEqual(table.route('acme-bot'));
    expect(route.group.name).toBe('rt');
    expect(inflight.get('rt')).toBe(1);
    a.admit('acme-batch', {});
    expect(Object.fromEntries(inflight)).toEqual({ rt: 1, batch: 1 });
    a.release(route);
    expect(Object.fromEntries(inflight)).toEqual({ rt: 0, batch: 1 });
  });

  test('a release with no slot recorded leaves the count at 0, never below', () => {
    const { a, table } = admission();
    const inflight = new Map<string, number>();
    const b = new Admission({ table, metrics: new RouterMetrics(false), inflight });
    b.release(table.route('acme-bot')!);
    expect(inflight.get('rt')).toBe(0);
    expect(a.authRequired).toBe(false);
  });
});

describe('Admission: group concurrency', () => {
  test("by default a group takes its concurrency x pools x max replicas at once; more is a 503 (overloaded, retry after 1 s), counted group_concurrency", async () => {
    const { a, metrics, inflight } = admission({ concurrency: 2, pools: 2, replicasMax: 3 });
    const routes = Array.from({ length: 12 }, () => a.admit('acme-bot', {}));
    expect(inflight.get('rt')).toBe(12);
    const e = refusal(() => a.admit('globex-bot', {}));
    expect([e.status, e.message, e.o]).toEqual([503, 'pool group "rt" is at its concurrency limit', { retryAfterSeconds: 1, overloaded: true }]);
    expect(inflight.get('rt')).toBe(12);
    // Another group is not held up.
    a.admit('acme-batch', {});
    a.release(routes[0]);
    a.admit('globex-bot', {});
    expect(inflight.get('rt')).toBe(12);
    expect(await rejected(metrics)).toEqual({ group_concurrency: 1 });
  });

  test('one pool, one replica: the limit is the concurrency', () => {
    const { a } = admission({ concurrency: 3, pools: 1, replicasMax: 1 });
    for (let i = 0; i < 3; i++) a.admit('acme-bot', {});
    expect(refusal(() => a.admit('acme-bot', {})).status).toBe(503);
  });

  test('a configured group concurrency replaces the default', () => {
    const { a } = admission({ concurrency: 50, groupConcurrency: { rt: 1 } });
    a.admit('acme-bot', {});
    expect(refusal(() => a.admit('acme-bot', {})).status).toBe(503);
    // Only the configured group: the other keeps its default (concurrency 1).
    a.admit('acme-batch', {});
    expect(refusal(() => a.admit('acme-batch', {})).status).toBe(503);
  });
});

describe('Admission: rate limit', () => {
  test("over its tenant's rate a request is a 429 with the seconds to wait, counted rate_limit, holding no slot", async () => {
    const clock = { t: 0 };
    const { a, metrics, inflight } = admission({ limiter: new RateLimiter(0.5, 1, () => clock.t) });
    a.admit('acme-bot', {});
    const e = refusal(() => a.admit('acme-batch', {}));
    expect([e.status, e.message, e.o]).toEqual([429, 'tenant "acme" is over its rate limit', { retryAfterSeconds: 2 }]);
    expect(Object.fromEntries(inflight)).toEqual({ rt: 1 });
    // Another tenant has its own bucket.
    a.admit('globex-bot', {});
    clock.t += 2000;
    a.admit('acme-batch', {});
    expect(await rejected(metrics)).toEqual({ rate_limit: 1 });
  });
});

describe('Admission: API keys', () => {
  const keys = keysFolder({ acme: ['acme-secret'], globex: ['globex-secret'] });
  const tenantKeys = new TenantKeys(keys);
  const www = { headers: { 'www-authenticate': 'Bearer' } };

  test('a catalog that asks for keys requires them; one that does not ignores them', () => {
    expect(admission({ auth: true, keys: tenantKeys }).a.authRequired).toBe(true);
    const open = admission({ auth: false, keys: tenantKeys }).a;
    expect(open.authRequired).toBe(false);
    // No key at all, or another tenant's: served, the tenant is not checked.
    expect(open.admit('acme-bot', {}).bot).toBe('acme-bot');
    expect(open.admit('acme-bot', { authorization: 'Bearer globex-secret' }).bot).toBe('acme-bot');
  });

  test('without keys configured (none given, or a folder without any) every request is a 401, counted no_keys', async () => {
    const none = admission({ auth: true });
    const e = refusal(() => none.a.admit('acme-bot', { authorization: 'Bearer acme-secret' }));
    expect([e.status, e.message, e.o]).toEqual([401, 'API keys are required and none are configured on this router; retry later', www]);
    const empty = admission({ auth: true, keys: new TenantKeys(fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-admission-empty-'))) });
    expect(refusal(() => empty.a.admit('acme-bot', { authorization: 'Bearer acme-secret' })).status).toBe(401);
    expect(await rejected(none.metrics)).toEqual({ no_keys: 1 });
    expect(await rejected(empty.metrics)).toEqual({ no_keys: 1 });
  });

  test('no key is a 401 asking for one, before the bot is looked up (an unknown bot looks the same), counted no_key', async () => {
    const { a, metrics } = admission({ auth: true, keys: tenantKeys });
    for (const bot of ['acme-bot', 'nobody']) {
      const e = refusal(() => a.admit(bot, {}));
      expect([e.status, e.message, e.o]).toEqual([401, 'an API key is required: send "Authorization: Bearer <key>"', www]);
    }
    // An empty key, an authorization that is not a bearer token and no x-api-key: still no key.
    expect(refusal(() => a.admit('acme-bot', { 'x-api-key': '' })).status).toBe(401);
    expect(refusal(() => a.admit('acme-bot', { authorization: 'Basic YWNtZQ==' })).message).toMatch(/^an API key is required/);
    expect(await rejected(metrics)).toEqual({ no_key: 4 });
  });

  test('a wrong key is a 401, counted bad_key', async () => {
    const { a, metrics } = admission({ auth: true, keys: tenantKeys });
    const e = refusal(() => a.admit('acme-bot', { authorization: 'Bearer wrong' }));
    expect([e.status, e.message, e.o]).toEqual([401, 'the API key is not valid', www]);
    expect(await rejected(metrics)).toEqual({ bad_key: 1 });
  });

  test('the key comes from "Authorization: Bearer" (trimmed), else from x-api-key', () => {
    const { a } = admission({ auth: true, keys: tenantKeys, concurrency: 50 });
    expect(a.admit('acme-bot', { authorization: 'Bearer acme-secret' }).bot).toBe('acme-bot');
    expect(a.admit('acme-bot', { authorization: 'Bearer   acme-secret  ' }).bot).toBe('acme-bot');
    expect(a.admit('acme-bot', { 'x-api-key': 'acme-secret' }).bot).toBe('acme-bot');
    // Bearer first: a good bearer token wins over a wrong x-api-key, and the other way round.
    expect(a.admit('acme-bot', { authorization: 'Bearer acme-secret', 'x-api-key': 'wrong' }).bot).toBe('acme-bot');
    expect(refusal(() => a.admit('acme-bot', { authorization: 'Bearer wrong', 'x-api-key': 'acme-secret' })).message).toBe('the API key is not valid');
    // Not a bearer token (the scheme is case-sensitive here): x-api-key is read instead.
    expect(a.admit('acme-bot', { authorization: 'bearer wrong', 'x-api-key': 'acme-secret' }).bot).toBe('acme-bot');
    expect(a.admit('acme-bot', { authorization: 'Token acme-secret', 'x-api-key': 'acme-secret' }).bot).toBe('acme-bot');
  });

  test("another tenant's key is a 403 naming the bot, counted other_tenant", async () => {
    const { a, metrics, inflight } = admission({ auth: true, keys: tenantKeys });
    const e = refusal(() => a.admit('acme-bot', { authorization: 'Bearer globex-secret' }));
    expect([e.status, e.message]).toEqual([403, 'this API key may not use bot "acme-bot"']);
    expect(a.admit('globex-bot', { authorization: 'Bearer globex-secret' }).tenant).toBe('globex');
    expect(Object.fromEntries(inflight)).toEqual({ rt: 1 });
    expect(await rejected(metrics)).toEqual({ other_tenant: 1 });
  });
});
