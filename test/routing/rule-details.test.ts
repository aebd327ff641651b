/**
 * The details of the shared routing rules that no data-plane test pins: each refusal's message with and
 * without the id it names, the model version pattern, the start-up check for API keys, and how the Node router tells that a pool's host resolves.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseCatalog } from '@botshard/runtime/catalog';
import { SettingsError } from '@botshard/runtime/commands/failure';
import { MODEL_VERSION, MODEL_VERSION_PATTERN, RULES } from '@botshard/runtime/routing/admission-rules';
import { PoolAddresses } from '@botshard/runtime/routing/readiness';
import { TenantKeys, checkKeysAtStart } from '@botshard/runtime/routing/tenants';

const bot = (id: string) => ({ id, tenant: 'acme', realtime: true, model: { head: `heads/${id}.onnx`, memory: '2Mi' }, intents: [{ name: 'a' }] });
const catalog = (auth: boolean) =>
  parseCatalog({ platform: auth ? { auth: 'tenant-keys' } : {}, tenants: [{ id: 'acme' }], groups: [{ name: 'rt', realtime: true, memory: '1Gi', pools: 1, locality: 'none' }], bots: [bot('only-bot')] });

describe('refusal messages', () => {
  test('an invalid id is quoted when it can be, and left out where it cannot (HAProxy)', () => {
    const rule = 'bot ids are lowercase letters, digits and "-", at most 40 characters';
    expect(RULES.bad_id.message({ id: '"Bad_Id"' })).toBe(`invalid bot id "Bad_Id": ${rule}`);
    expect(RULES.bad_id.message({})).toBe(`invalid bot id: ${rule}`);
  });
});

describe('model versions', () => {
  test('a version is 1 to 64 letters, digits, ".", "_" and "-", starting with a letter or digit', () => {
    expect(MODEL_VERSION_PATTERN).toBe('[0-9A-Za-z][0-9A-Za-z._-]{0,63}');
    for (const v of ['1', 'v2', '2026.12.06', 'v1.2-rc_3', 'a'.repeat(64)]) expect([v, MODEL_VERSION.test(v)]).toEqual([v, true]);
    for (const v of ['', '-1', '.v', 'v 1', 'v/1', 'a'.repeat(65), 'x1\n']) expect([v, MODEL_VERSION.test(v)]).toEqual([v, false]);
  });
});

describe('API keys at start', () => {
  const folder = (files: Record<string, string>) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-keys-'));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
  };

  test('a catalog without keys needs no folder; one with keys needs a folder that holds some, and says how to fix it', () => {
    expect(() => checkKeysAtStart(catalog(false), undefined)).not.toThrow();
    expect(() => checkKeysAtStart(catalog(true), undefined)).toThrow(SettingsError);
    expect(() => checkKeysAtStart(catalog(true), undefined)).toThrow(/requires API keys \(platform.auth: "tenant-keys"\) and no tenant keys folder is given: pass --tenant-keys DIR/);
    const empty = new TenantKeys(folder({}));
    expect(empty.problem).toBeDefined();
    expect(() => checkKeysAtStart(catalog(true), empty)).toThrow(new RegExp(`requires API keys .* and ${empty.problem!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: add the key hashes`));
    const some = new TenantKeys(folder({ acme: `${'a'.repeat(64)}\n` }));
    expect(some.problem).toBeUndefined();
    expect(() => checkKeysAtStart(catalog(true), some)).not.toThrow();
    some.stop();
    empty.stop();
  });
});

describe('a pool is routable once its host resolves (Node router)', () => {
  const lookups: string[] = [];
  const pending = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  const lookup = (host: string) =>
    new Promise<unknown>((resolve, reject) => {
      lookups.push(host);
      pending.set(host, { resolve: () => resolve(undefined), reject });
    });
  const settle = () => new Promise((r) => setImmediate(r));

  test('IP addresses at once; a host name after one lookup, shared by its pools and never repeated; a failed lookup is tried again', async () => {
    const urls: Record<string, string | undefined> = { a: 'http://10.0.0.1:8080', b: 'http://[::1]:8080', c: 'http://pool-c.ns.svc:8080', d: 'http://pool-c.ns.svc:9090', e: 'http://pool-e.ns.svc:8080', f: undefined };
    const addresses = new PoolAddresses((pool) => urls[pool], lookup);
    expect(addresses.unroutable(Object.keys(urls))).toEqual(['c', 'd', 'e', 'f']);
    expect(lookups).toEqual(['pool-c.ns.svc', 'pool-e.ns.svc']); // one lookup per host, none for IPs (v6 in brackets too)
    expect(addresses.unroutable(['c', 'd'])).toEqual(['c', 'd']); // still resolving: not looked up again
    expect(lookups).toHaveLength(2);
    pending.get('pool-c.ns.svc')!.resolve();
    pending.get('pool-e.ns.svc')!.reject(new Error('ENOTFOUND'));
    await settle();
    expect(addresses.unroutable(Object.keys(urls))).toEqual(['e', 'f']);
    expect(lookups).toEqual(['pool-c.ns.svc', 'pool-e.ns.svc', 'pool-e.ns.svc']); // the failed host again, the resolved one never
    pending.get('pool-e.ns.svc')!.resolve();
    await settle();
    urls.f = 'http://127.0.0.1:1';
    expect(addresses.unroutable(Object.keys(urls))).toEqual([]);
    expect(lookups).toHaveLength(3);
  });
});
