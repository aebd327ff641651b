/**
 * The routing rules both data planes read, each on its own: the concurrency limits (runtime/src/routing/limits.ts),
 * the readiness rule (readiness.ts), the router settings (settings.ts) and a pool's group in the routing table.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseCatalog } from '@botshard/runtime/catalog';
import { SettingsError } from '@botshard/runtime/commands/failure';
import { groupConcurrency, poolConcurrency } from '@botshard/runtime/routing/limits';
import { routerReady } from '@botshard/runtime/routing/readiness';
import { grpcAddresses, poolUrlsFile, routerSettings } from '@botshard/runtime/routing/settings';
import { RoutingTable } from '@botshard/runtime/routing/table';
import { keysRequired } from '@botshard/runtime/routing/tenants';

const bot = (id: string) => ({ id, tenant: 'acme', realtime: true, model: { head: `heads/${id}.onnx`, memory: '2Mi' }, intents: [{ name: 'a' }] });
const catalog = (auth = false) =>
  parseCatalog({
    platform: auth ? { auth: 'tenant-keys' } : {},
    tenants: [{ id: 'acme' }],
    groups: [{ name: 'rt', realtime: true, memory: '1Gi', pools: 3, locality: 'none', concurrency: 4, replicas: { min: 1, max: 5 } }],
    bots: [bot('only-bot')],
  });

describe('limits', () => {
  test("a pool takes its group's concurrency on each of its most replicas; the group, every pool's (one while it has none)", () => {
    const group = catalog().groups[0];
    expect(poolConcurrency(group)).toBe(20);
    expect([0, 1, 3].map((pools) => groupConcurrency(group, pools))).toEqual([20, 20, 60]);
  });
});

describe('routerReady', () => {
  const base = { draining: false, allRoutable: () => true, keysRequired: false, keys: 0 };
  test('ready only when not draining, every pool routable and keys in place where required', () => {
    expect(routerReady(base)).toBe(true);
    expect(routerReady({ ...base, draining: true })).toBe(false);
    expect(routerReady({ ...base, allRoutable: () => false })).toBe(false);
    expect(routerReady({ ...base, keysRequired: true })).toBe(false);
    expect(routerReady({ ...base, keysRequired: true, keys: 1 })).toBe(true);
  });

  test('while draining, whether pools are routable is not asked (the Node router would start host lookups)', () => {
    const allRoutable = jest.fn(() => true);
    expect(routerReady({ ...base, draining: true, allRoutable })).toBe(false);
    expect(allRoutable).not.toHaveBeenCalled();
  });
});

describe('routing table and tenants', () => {
  test('every pool of the generation has its group, pools without bots too', () => {
    const table = new RoutingTable(catalog());
    expect(table.pools().size).toBe(3);
    for (const pool of table.pools()) expect(table.groupOf(pool)?.name).toBe('rt');
    expect(table.groupOf('nowhere')).toBeUndefined();
  });

  test('keys are required exactly when the catalog says "tenant-keys"', () => {
    expect([keysRequired(catalog(true)), keysRequired(catalog(false))]).toEqual([true, false]);
  });
});

describe('router settings', () => {
  test('pool addresses are required: a template, or a file', () => {
    expect(() => routerSettings({ catalog: 'c.json' }, {})).toThrow(SettingsError);
    expect(() => routerSettings({ catalog: 'c.json' }, {})).toThrow(/pool addresses are missing: pass --pool-url/);
    expect(routerSettings({ catalog: 'c.json', poolUrls: 'p.json' }, {})).toMatchObject({ poolUrl: 'p.json', poolUrlsFile: true, poolGrpcFile: false });
    // Flags win over the environment.
    expect(routerSettings({ catalog: 'c.json', poolUrl: 'http://{pool}:1' }, { BOTSHARD_POOL_URL: 'http://{pool}:2' })).toMatchObject({ poolUrl: 'http://{pool}:1', poolUrlsFile: false });
  });

  test('a gRPC template without {pool} is refused; without one, gRPC goes to the pool URL host on 8081', () => {
    expect(() => routerSettings({ catalog: 'c.json', poolUrl: 'http://{pool}:1', poolGrpcUrl: 'x:1' }, {})).toThrow(/has no \{pool\}/);
    const s = routerSettings({ catalog: 'c.json', poolUrl: 'http://{pool}.{namespace}.svc:8080' }, {});
    expect(grpcAddresses(s, 'ns')('p')).toBe('p.ns.svc:8081');
    // Pool URLs from a file and no gRPC file: no gRPC address to guess.
    expect(grpcAddresses(routerSettings({ catalog: 'c.json', poolUrls: 'p.json' }, {}), 'ns')('p')).toBeUndefined();
  });

  test('a pool URLs file is read, and read again once it changes', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-urls-')), 'pools.json');
    fs.writeFileSync(file, JSON.stringify({ a: 'http://127.0.0.1:1' }));
    const address = poolUrlsFile(file);
    expect([address('a'), address('b')]).toEqual(['http://127.0.0.1:1', undefined]);
    await new Promise((r) => setTimeout(r, 20));
    fs.writeFileSync(file, JSON.stringify({ a: 'http://127.0.0.1:1', b: 'http://127.0.0.1:2' }));
    // A pool not in the last map read makes it look again at once.
    expect(address('b')).toBe('http://127.0.0.1:2');
  });
});
