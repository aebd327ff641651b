/** The two-tenant set-up of the tenant tests: a catalog that requires API keys, and the keys folder a mounted Secret would be. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog, parseCatalog, plan } from '@botshard/runtime';
import { hashKey } from '@botshard/runtime/routing/tenants';
import { catalogInput, supportBot, tempDir } from '../pool/support';

/** A tenant's key hashes, one file per tenant: what the router reads (a Secret's keys are tenant ids). */
export function writeKeys(folder: string, tenant: string, keys: string[]): void {
  fs.writeFileSync(path.join(folder, tenant), keys.map((k) => `${hashKey(k)}\n`).join(''));
}

/**
 * Tenants acme (bot acme-bot, key acme-secret) and globex (bot globex-bot, keys globex-secret and
 * globex-second), `platform.auth: "tenant-keys"`; both bots in one pool, named `pool`.
 */
export function twoTenants(): { catalog: Catalog; keys: string; pool: string } {
  const input = catalogInput([supportBot('acme-bot'), supportBot('globex-bot', { tenant: 'globex' })]);
  const catalog = parseCatalog({ ...input, tenants: [{ id: 'acme' }, { id: 'globex' }], platform: { auth: 'tenant-keys' } });
  const keys = tempDir('keys');
  writeKeys(keys, 'acme', ['acme-secret']);
  writeKeys(keys, 'globex', ['globex-secret', 'globex-second']);
  return { catalog, keys, pool: plan(catalog).pools[0].name };
}
