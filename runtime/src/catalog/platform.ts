/** The catalog's `platform` and `tenants` sections: where and for whom the platform runs. */
import * as net from 'node:net';
import { Checker } from './checker';
import { MAX_DNS_LABEL } from './names';
import { show } from './problems';
import { Strategy } from './input';
import { ModelStoreEgress, Platform, Tenant } from './types';

const STRATEGIES: readonly Strategy[] = ['sharded', 'dedicated', 'single'];

export function normalizePlatform(c: Checker, v: unknown): Platform {
  const platform: Platform = { namespace: 'botshard', strategy: 'sharded', modelRoot: 'models' };
  if (v === undefined) return platform;
  const o = c.object(v, 'platform', ['namespace', 'strategy', 'modelRoot', 'modelStoreEgress', 'auth', 'router', 'prometheusOperator']);
  if (!o) return platform;
  if (o.namespace !== undefined) platform.namespace = c.dnsLabel(o.namespace, 'platform.namespace', 'namespace', MAX_DNS_LABEL);
  if (o.strategy !== undefined) {
    if (!STRATEGIES.includes(o.strategy as Strategy)) {
      c.add('platform.strategy', `must be one of ${STRATEGIES.join(', ')}, got ${show(o.strategy)}`, 'use "sharded" unless you are migrating from or comparing with another approach');
    } else {
      platform.strategy = o.strategy as Strategy;
    }
  }
  platform.modelRoot = c.string(o.modelRoot, 'platform.modelRoot', 'models', true);
  if (o.modelStoreEgress !== undefined) platform.modelStoreEgress = normalizeEgress(c, o.modelStoreEgress);
  if (o.auth === 'tenant-keys') platform.auth = 'tenant-keys';
  else if (o.auth !== undefined && o.auth !== 'none') {
    c.add('platform.auth', `must be "tenant-keys" or "none", got ${show(o.auth)}`, 'use "tenant-keys" to require an API key of the bot\'s tenant on every request');
  }
  if (o.prometheusOperator === true) platform.prometheusOperator = true;
  else if (o.prometheusOperator !== undefined && o.prometheusOperator !== false) {
    c.add('platform.prometheusOperator', `must be true or false, got ${show(o.prometheusOperator)}`, 'set it to true when the cluster runs the Prometheus Operator (PodMonitor and PrometheusRule objects)');
  }
  if (o.router === 'node' || o.router === 'haproxy') platform.router = o.router;
  else if (o.router !== undefined) {
    c.add('platform.router', `must be "haproxy" or "node", got ${show(o.router)}`, 'use "haproxy" (HAProxy carries the requests, the default) or "node" (the Node router, one image)');
  }
  return platform;
}

function normalizeEgress(c: Checker, v: unknown): ModelStoreEgress[] {
  const rules: ModelStoreEgress[] = [];
  c.array(v, 'platform.modelStoreEgress').forEach((r, i) => {
    const p = `platform.modelStoreEgress[${i}]`;
    const o = c.object(r, p, ['cidr', 'except', 'port'], ['cidr']);
    if (!o) return;
    const cidr = (value: unknown, at: string) => {
      if (typeof value === 'string' && isCidr(value)) return value;
      c.add(at, `is not an IPv4 or IPv6 range in CIDR notation: ${show(value)}`, 'write an address and a prefix length, e.g. "52.216.0.0/15" or "2600:1f18::/32"');
      return '';
    };
    rules.push({
      cidr: cidr(o.cidr, `${p}.cidr`),
      except: c.array(o.except, `${p}.except`, true).map((e, j) => cidr(e, `${p}.except[${j}]`)),
      port: c.number(o.port, `${p}.port`, 443, { min: 1, max: 65535, integer: true, optional: true }),
    });
  });
  return rules;
}

function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split('/');
  if (rest.length > 0 || prefix === undefined || !/^[0-9]{1,3}$/.test(prefix)) return false;
  const version = net.isIP(address);
  return version !== 0 && Number(prefix) <= (version === 4 ? 32 : 128);
}

export function normalizeTenants(c: Checker, v: unknown): Tenant[] {
  const tenants: Tenant[] = [];
  c.array(v, 'tenants').forEach((t, i) => {
    const p = `tenants[${i}]`;
    const o = c.object(t, p, ['id', 'name'], ['id']);
    if (!o) return;
    const id = c.dnsLabel(o.id, `${p}.id`, 'tenant id', MAX_DNS_LABEL);
    tenants.push({ id, name: c.string(o.name, `${p}.name`, id, true) });
  });
  c.unique(tenants.map((t, i) => ({ id: t.id, path: `tenants[${i}].id` })), 'tenant id');
  return tenants;
}
