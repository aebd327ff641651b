import * as net from 'node:net';
import * as path from 'node:path';
import { canonicalGeneration } from './canonical';
import { groupDefaults } from './defaults';
import { parseMemory } from './memory';
import { MAX_BOT_ID, MAX_DNS_LABEL, MAX_GROUP_NAME, isDnsLabel } from './names';
import { CatalogError, Problem, closest, show } from './problems';
import { checkRe2 } from './regex';
import {
  Bot,
  CATALOG_API_VERSION,
  Catalog,
  Encoder,
  EntityRule,
  IndexBot,
  Intent,
  Locality,
  ModelStoreEgress,
  Platform,
  PoolGroup,
  PropertyValue,
  RewriteRule,
  Selector,
  Strategy,
  Tenant,
  Toleration,
} from './types';

const PROPERTY_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const STRATEGIES: readonly Strategy[] = ['sharded', 'dedicated', 'single'];
const REGEX_FLAGS = /^[ims]*$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Collects problems while walking the input; every check reports and carries on. */
class Checker {
  readonly problems: Problem[] = [];

  add(path: string, message: string, hint: string): void {
    this.problems.push({ path, message, hint });
  }

  /** An object with only the known keys; reports unknown keys (with a likely typo) and returns {} when not an object. */
  object(v: unknown, path: string, known: readonly string[], required: readonly string[] = []): Obj | undefined {
    if (!isObj(v)) {
      this.add(path, `must be an object, got ${show(v)}`, `write ${path} as { ... }`);
      return undefined;
    }
    for (const key of Object.keys(v)) {
      if (!known.includes(key)) {
        const guess = closest(key, known);
        this.add(
          `${path}.${key}`,
          `is not a known field`,
          guess ? `did you mean "${guess}"?` : `remove it; known fields are ${known.join(', ')}`,
        );
      }
    }
    for (const key of required) {
      if (!Object.prototype.hasOwnProperty.call(v, key) || v[key] === undefined) {
        this.add(`${path}.${key}`, 'is required', `add ${key} to ${path}`);
      }
    }
    return v;
  }

  array(v: unknown, path: string, optional = false): unknown[] {
    if (v === undefined && optional) return [];
    if (!Array.isArray(v)) {
      if (v !== undefined) this.add(path, `must be an array, got ${show(v)}`, `write ${path} as [ ... ]`);
      return [];
    }
    return v;
  }

  string(v: unknown, path: string, fallback: string, optional = false): string {
    if (v === undefined && optional) return fallback;
    if (typeof v !== 'string' || v.length === 0) {
      if (v !== undefined) this.add(path, `must be a non-empty string, got ${show(v)}`, `set ${path} to a string`);
      return fallback;
    }
    return v;
  }

  boolean(v: unknown, path: string, fallback: boolean, optional = false): boolean {
    if (v === undefined && optional) return fallback;
    if (typeof v !== 'boolean') {
      if (v !== undefined) this.add(path, `must be true or false, got ${show(v)}`, `set ${path} to true or false`);
      return fallback;
    }
    return v;
  }

  number(v: unknown, path: string, fallback: number, opts: { min: number; max: number; integer?: boolean; optional?: boolean }): number {
    if (v === undefined && opts.optional) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < opts.min || v > opts.max || (opts.integer && !Number.isInteger(v))) {
      if (v !== undefined) {
        this.add(
          path,
          `must be ${opts.integer ? 'an integer' : 'a number'} from ${opts.min} to ${opts.max}, got ${show(v)}`,
          `set ${path} to a value in that range`,
        );
      }
      return fallback;
    }
    return v;
  }

  memory(v: unknown, path: string, fallback: number, optional = false): number {
    if (v === undefined && optional) return fallback;
    const bytes = parseMemory(v);
    if (bytes === undefined) {
      if (v !== undefined) {
        this.add(path, `is not a memory size: ${show(v)}`, 'write a quantity such as "40Mi", "1.5Gi", "512Ki" or a number of bytes');
      }
      return fallback;
    }
    return bytes;
  }

  dnsLabel(v: unknown, path: string, what: string, max: number): string {
    const s = this.string(v, path, '');
    if (s === '') return s;
    if (!isDnsLabel(s, max)) {
      const fixed = s.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^[^a-z]+/, '').replace(/-+$/, '').slice(0, max).replace(/-+$/, '');
      this.add(
        path,
        `${what} ${show(s)} is not a DNS label of at most ${max} characters (lowercase letters, digits and "-", starting with a letter and ending with a letter or digit)`,
        fixed ? `rename it, e.g. ${show(fixed)}` : 'rename it',
      );
    }
    return s;
  }

  /** The first of each duplicated id is kept; later ones are reported. */
  unique(ids: Array<{ id: string; path: string }>, what: string): void {
    const seen = new Map<string, string>();
    for (const { id, path } of ids) {
      if (id === '') continue;
      const first = seen.get(id);
      if (first !== undefined) {
        this.add(path, `duplicate ${what} ${show(id)}, already used at ${first}`, `give each ${what} a unique value`);
      } else {
        seen.set(id, path);
      }
    }
  }

  regex(pattern: unknown, flags: unknown, path: string): { pattern: string; flags: string } {
    const p = this.string(pattern, `${path}.pattern`, '');
    let f = '';
    if (flags !== undefined) {
      if (typeof flags !== 'string' || !REGEX_FLAGS.test(flags)) {
        this.add(`${path}.flags`, `must be a combination of "i", "m" and "s", got ${show(flags)}`, 'use only i (ignore case), m (multi-line) and s (dot matches newline)');
      } else {
        f = flags;
      }
    }
    if (p !== '') {
      const why = checkRe2(p, f);
      if (why) this.add(`${path}.pattern`, `${show(p)} ${why}`, 'rewrite the pattern without that construct (see https://github.com/google/re2/wiki/Syntax)');
    }
    return { pattern: p, flags: f };
  }

  /** An optional SHA-256 digest of a model file, lower-cased; undefined when absent or invalid (reported). */
  sha256(v: unknown, p: string): string | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !SHA256.test(v)) {
      const hint = typeof v === 'string' && /^sha256[:-]/i.test(v)
        ? `drop the prefix: write only the 64 hex characters`
        : 'write the 64 hex characters that `sha256sum FILE` prints (or remove sha256 to skip verification)';
      const got = typeof v === 'string' ? `${show(v)} (${v.length} characters)` : show(v);
      this.add(p, `is not a SHA-256 digest of 64 hexadecimal characters: ${got}`, hint);
      return undefined;
    }
    return v.toLowerCase();
  }

  modelPath(v: unknown, p: string): string {
    const s = this.string(v, p, '');
    if (s === '') return s;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
      if (!/^(s3|https):\/\/[^/]+\/.+/.test(s)) {
        this.add(p, `${show(s)} is not a supported model location`, 'use a path relative to the model root, or an s3://bucket/key or https://host/path URI');
      }
      return s;
    }
    const normal = path.posix.normalize(s.replace(/\\/g, '/'));
    if (s.includes('\\') || path.posix.isAbsolute(s) || normal === '..' || normal.startsWith('../')) {
      this.add(p, `${show(s)} escapes the model root`, 'use a relative path inside platform.modelRoot, without "../" or a leading "/"');
    }
    return s;
  }
}

function normalizePlatform(c: Checker, v: unknown): Platform {
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

function normalizeTenants(c: Checker, v: unknown): Tenant[] {
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

function normalizeEncoders(c: Checker, v: unknown): Encoder[] {
  const encoders: Encoder[] = [];
  c.array(v, 'encoders', true).forEach((e, i) => {
    const p = `encoders[${i}]`;
    const o = c.object(e, p, ['id', 'path', 'sha256', 'memory', 'tokenizer', 'dimensions'], ['id', 'path', 'memory', 'tokenizer', 'dimensions']);
    if (!o) return;
    const tp = `${p}.tokenizer`;
    const t = o.tokenizer === undefined ? undefined : c.object(o.tokenizer, tp, ['kind', 'buckets', 'maxTokens'], ['kind', 'buckets']);
    if (t && t.kind !== undefined && t.kind !== 'hashing') c.add(`${tp}.kind`, `must be "hashing", got ${show(t.kind)}`, 'use kind: "hashing"');
    const sha256 = c.sha256(o.sha256, `${p}.sha256`);
    encoders.push({
      id: c.dnsLabel(o.id, `${p}.id`, 'encoder id', MAX_DNS_LABEL),
      path: c.modelPath(o.path, `${p}.path`),
      ...(sha256 !== undefined ? { sha256 } : {}),
      memory: c.memory(o.memory, `${p}.memory`, 0),
      tokenizer: {
        kind: 'hashing',
        buckets: c.number(t?.buckets, `${tp}.buckets`, 1, { min: 1, max: 1 << 24, integer: true }),
        maxTokens: c.number(t?.maxTokens, `${tp}.maxTokens`, 64, { min: 1, max: 4096, integer: true, optional: true }),
      },
      dimensions: c.number(o.dimensions, `${p}.dimensions`, 1, { min: 1, max: 65536, integer: true }),
    });
  });
  c.unique(encoders.map((e, i) => ({ id: e.id, path: `encoders[${i}].id` })), 'encoder id');
  return encoders;
}

function normalizePropertyValues(c: Checker, v: unknown, p: string): PropertyValue[] {
  const values = Array.isArray(v) ? v : [v];
  const out: PropertyValue[] = [];
  values.forEach((x, i) => {
    if (typeof x === 'string' || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x))) out.push(x);
    else c.add(Array.isArray(v) ? `${p}[${i}]` : p, `must be a string, number or boolean, got ${show(x)}`, 'use a plain value');
  });
  return [...new Set(out)].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

function normalizeSelector(c: Checker, v: unknown, p: string, realtime: boolean): Selector {
  if (v === undefined) return { realtime, properties: {} };
  const o = c.object(v, p, ['realtime', 'properties']);
  const selector: Selector = { properties: {} };
  if (!o) return selector;
  if (o.realtime !== undefined) selector.realtime = c.boolean(o.realtime, `${p}.realtime`, false);
  if (o.properties !== undefined) {
    const props = c.object(o.properties, `${p}.properties`, Object.keys(isObj(o.properties) ? o.properties : {}));
    for (const [k, val] of Object.entries(props ?? {})) {
      if (!PROPERTY_KEY.test(k)) c.add(`${p}.properties.${k}`, `${show(k)} is not a valid property name`, 'use letters, digits, "_", "." and "-", starting with a letter or "_"');
      selector.properties[k] = normalizePropertyValues(c, val, `${p}.properties.${k}`);
    }
  }
  return selector;
}

function normalizeLocality(c: Checker, v: unknown, p: string): Locality {
  if (v === undefined) return 'encoder';
  if (v === 'none' || v === 'encoder') return v;
  if (isObj(v)) {
    const o = c.object(v, p, ['property'], ['property']);
    const property = c.string(o?.property, `${p}.property`, '');
    if (property) return { property };
    return 'encoder';
  }
  c.add(p, `must be "none", "encoder" or { property: "<name>" }, got ${show(v)}`, 'use "encoder" to co-locate bots that share an encoder');
  return 'encoder';
}

function normalizeTolerations(c: Checker, v: unknown, p: string): Toleration[] {
  return c.array(v, p, true).flatMap((t, i) => {
    const tp = `${p}[${i}]`;
    const o = c.object(t, tp, ['key', 'operator', 'value', 'effect'], ['key']);
    if (!o) return [];
    const toleration: Toleration = { key: c.string(o.key, `${tp}.key`, ''), operator: 'Equal' };
    if (o.operator !== undefined) {
      if (o.operator !== 'Equal' && o.operator !== 'Exists') c.add(`${tp}.operator`, `must be "Equal" or "Exists", got ${show(o.operator)}`, 'use "Equal" or "Exists"');
      else toleration.operator = o.operator;
    }
    if (o.value !== undefined) toleration.value = c.string(o.value, `${tp}.value`, '');
    if (o.effect !== undefined) {
      if (o.effect !== 'NoSchedule' && o.effect !== 'PreferNoSchedule' && o.effect !== 'NoExecute') {
        c.add(`${tp}.effect`, `must be NoSchedule, PreferNoSchedule or NoExecute, got ${show(o.effect)}`, 'use one of those effects');
      } else toleration.effect = o.effect;
    }
    return [toleration];
  });
}

function normalizeStringMap(c: Checker, v: unknown, p: string): Record<string, string> {
  if (v === undefined) return {};
  const o = c.object(v, p, Object.keys(isObj(v) ? v : {}));
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(o ?? {})) out[k] = c.string(val, `${p}.${k}`, '');
  return out;
}

const GROUP_FIELDS = [
  'name', 'realtime', 'selector', 'pools', 'memory', 'fillFactor', 'poolOverhead', 'locality', 'dedicatedPools',
  'replicas', 'targetCpuPercent', 'timeoutMs', 'concurrency', 'quarantineShare', 'batchWindowMs', 'batchMaxRows', 'overcommit', 'priorityClassName', 'tolerations', 'nodeSelector',
];

function normalizeGroups(c: Checker, v: unknown): PoolGroup[] {
  const groups: PoolGroup[] = [];
  const list = c.array(v, 'groups');
  if (Array.isArray(v) && list.length === 0) c.add('groups', 'is empty', 'add at least one pool group');
  list.forEach((g, i) => {
    const p = `groups[${i}]`;
    const o = c.object(g, p, GROUP_FIELDS, ['name', 'realtime', 'memory']);
    if (!o) return;
    const realtime = c.boolean(o.realtime, `${p}.realtime`, false);
    const defaults = groupDefaults(realtime);
    const memory = c.memory(o.memory, `${p}.memory`, 0);
    const poolOverhead = c.memory(o.poolOverhead, `${p}.poolOverhead`, defaults.poolOverhead, true);
    if (memory > 0 && poolOverhead >= memory) {
      c.add(`${p}.memory`, `${show(o.memory)} leaves no room for bots after the pool overhead of ${poolOverhead} bytes`, 'raise memory or lower poolOverhead');
    }
    let pools: number | 'auto' = 'auto';
    if (o.pools !== undefined && o.pools !== 'auto') pools = c.number(o.pools, `${p}.pools`, 1, { min: 1, max: 10000, integer: true });
    const replicas = o.replicas === undefined ? {} : (c.object(o.replicas, `${p}.replicas`, ['min', 'max']) ?? {});
    const min = c.number(replicas.min, `${p}.replicas.min`, defaults.replicas.min, { min: 1, max: 1000, integer: true, optional: true });
    const max = c.number(replicas.max, `${p}.replicas.max`, Math.max(min, defaults.replicas.max), { min: 1, max: 1000, integer: true, optional: true });
    if (max < min) c.add(`${p}.replicas.max`, `${max} is below replicas.min ${min}`, 'set max to at least min');
    const group: PoolGroup = {
      name: c.dnsLabel(o.name, `${p}.name`, 'group name', MAX_GROUP_NAME),
      realtime,
      selector: normalizeSelector(c, o.selector, `${p}.selector`, realtime),
      pools,
      memory,
      fillFactor: c.number(o.fillFactor, `${p}.fillFactor`, defaults.fillFactor, { min: 0.05, max: 1, optional: true }),
      poolOverhead,
      locality: normalizeLocality(c, o.locality, `${p}.locality`),
      dedicatedPools: c.array(o.dedicatedPools, `${p}.dedicatedPools`, true).map((d, j) =>
        c.dnsLabel(d, `${p}.dedicatedPools[${j}]`, 'dedicated pool name', MAX_DNS_LABEL),
      ),
      replicas: { min, max },
      targetCpuPercent: c.number(o.targetCpuPercent, `${p}.targetCpuPercent`, defaults.targetCpuPercent, { min: 1, max: 100, integer: true, optional: true }),
      timeoutMs: c.number(o.timeoutMs, `${p}.timeoutMs`, defaults.timeoutMs, { min: 1, max: 3600000, integer: true, optional: true }),
      concurrency: c.number(o.concurrency, `${p}.concurrency`, defaults.concurrency, { min: 1, max: 100000, integer: true, optional: true }),
      tolerations: normalizeTolerations(c, o.tolerations, `${p}.tolerations`),
      nodeSelector: normalizeStringMap(c, o.nodeSelector, `${p}.nodeSelector`),
      quarantineShare: c.number(o.quarantineShare, `${p}.quarantineShare`, defaults.quarantineShare, { min: 0.01, max: 1, optional: true }),
      batchWindowMs: c.number(o.batchWindowMs, `${p}.batchWindowMs`, defaults.batchWindowMs, { min: 0, max: 1000, optional: true }),
      batchMaxRows: c.number(o.batchMaxRows, `${p}.batchMaxRows`, defaults.batchMaxRows, { min: 1, max: 1024, integer: true, optional: true }),
    };
    if (o.overcommit !== undefined) group.overcommit = c.number(o.overcommit, `${p}.overcommit`, 1, { min: 1, max: 16 });
    if (o.priorityClassName !== undefined) {
      group.priorityClassName = c.dnsLabel(o.priorityClassName, `${p}.priorityClassName`, 'priority class name', 253);
    }
    groups.push(group);
  });
  c.unique(groups.map((g, i) => ({ id: g.name, path: `groups[${i}].name` })), 'group name');
  const pools: Array<{ id: string; path: string }> = [];
  groups.forEach((g, i) => g.dedicatedPools.forEach((d, j) => pools.push({ id: d, path: `groups[${i}].dedicatedPools[${j}]` })));
  c.unique(pools, 'dedicated pool name');
  return groups;
}

const BOT_FIELDS = ['id', 'tenant', 'realtime', 'properties', 'model', 'intents', 'preprocess', 'postprocess', 'pin', 'warm'];

/**
 * Where a bot is in the input: its index and, when it has one, its id (`bots[42] (acme-support-en)`):
 * configs build their bots with `.map()`, so an index alone is hard to find.
 */
export function botPath(index: number, bot: unknown): string {
  const id = isObj(bot) && typeof bot.id === 'string' && bot.id !== '' ? bot.id : undefined;
  return id ? `bots[${index}] (${id.slice(0, 80)})` : `bots[${index}]`;
}

function normalizeBot(c: Checker, b: unknown, p: string): Bot | undefined {
  const o = c.object(b, p, BOT_FIELDS, ['id', 'tenant', 'realtime', 'model', 'intents']);
  if (!o) return undefined;
  const properties: Record<string, PropertyValue> = {};
  if (o.properties !== undefined) {
    const props = c.object(o.properties, `${p}.properties`, Object.keys(isObj(o.properties) ? o.properties : {}));
    for (const [k, val] of Object.entries(props ?? {})) {
      if (!PROPERTY_KEY.test(k)) c.add(`${p}.properties.${k}`, `${show(k)} is not a valid property name`, 'use letters, digits, "_", "." and "-", starting with a letter or "_"');
      if (typeof val === 'string' || typeof val === 'boolean' || (typeof val === 'number' && Number.isFinite(val))) properties[k] = val;
      else c.add(`${p}.properties.${k}`, `must be a string, number or boolean, got ${show(val)}`, 'use a plain value');
    }
  }
  const mp = `${p}.model`;
  const m = o.model === undefined ? undefined : c.object(o.model, mp, ['head', 'sha256', 'memory', 'encoder'], ['head', 'memory']);
  const sha256 = c.sha256(m?.sha256, `${mp}.sha256`);
  const model: Bot['model'] = {
    head: c.modelPath(m?.head, `${mp}.head`),
    ...(sha256 !== undefined ? { sha256 } : {}),
    memory: c.memory(m?.memory, `${mp}.memory`, 0),
  };
  if (m?.encoder !== undefined) model.encoder = c.string(m.encoder, `${mp}.encoder`, '');

  const intents: Intent[] = [];
  const intentList = c.array(o.intents, `${p}.intents`);
  if (Array.isArray(o.intents) && intentList.length === 0) c.add(`${p}.intents`, 'is empty', 'list the labels of the bot\'s head, in output order');
  intentList.forEach((t, i) => {
    const ip = `${p}.intents[${i}]`;
    const io = c.object(t, ip, ['name', 'examples'], ['name']);
    if (!io) return;
    intents.push({
      name: c.string(io.name, `${ip}.name`, ''),
      examples: c.array(io.examples, `${ip}.examples`, true).map((e, j) => c.string(e, `${ip}.examples[${j}]`, '')),
    });
  });
  c.unique(intents.map((t, i) => ({ id: t.name, path: `${p}.intents[${i}].name` })), 'intent name');

  const preprocess: RewriteRule[] = c.array(o.preprocess, `${p}.preprocess`, true).flatMap((r, i) => {
    const rp = `${p}.preprocess[${i}]`;
    const ro = c.object(r, rp, ['pattern', 'replace', 'flags'], ['pattern', 'replace']);
    if (!ro) return [];
    const re = c.regex(ro.pattern, ro.flags, rp);
    const replace = typeof ro.replace === 'string' ? ro.replace : '';
    if (ro.replace !== undefined && typeof ro.replace !== 'string') c.add(`${rp}.replace`, `must be a string, got ${show(ro.replace)}`, 'use "" to delete the match');
    return [{ pattern: re.pattern, replace, flags: re.flags }];
  });

  const pp = `${p}.postprocess`;
  const post = o.postprocess === undefined ? {} : (c.object(o.postprocess, pp, ['threshold', 'fallback', 'entities']) ?? {});
  const entities: EntityRule[] = c.array(post.entities, `${pp}.entities`, true).flatMap((r, i) => {
    const rp = `${pp}.entities[${i}]`;
    const ro = c.object(r, rp, ['name', 'pattern', 'flags'], ['name', 'pattern']);
    if (!ro) return [];
    const re = c.regex(ro.pattern, ro.flags, rp);
    return [{ name: c.string(ro.name, `${rp}.name`, ''), pattern: re.pattern, flags: re.flags }];
  });
  const bot: Bot = {
    id: c.dnsLabel(o.id, `${p}.id`, 'bot id', MAX_BOT_ID),
    tenant: c.string(o.tenant, `${p}.tenant`, ''),
    realtime: c.boolean(o.realtime, `${p}.realtime`, false),
    properties,
    model,
    intents,
    preprocess,
    postprocess: {
      threshold: c.number(post.threshold, `${pp}.threshold`, 0, { min: 0, max: 1, optional: true }),
      fallback: c.string(post.fallback, `${pp}.fallback`, 'fallback', true),
      entities,
    },
  };
  if (o.pin !== undefined) bot.pin = c.string(o.pin, `${p}.pin`, '');
  if (o.warm !== undefined && c.boolean(o.warm, `${p}.warm`, false)) bot.warm = true;
  return bot;
}

/** Whether a group's selector takes a bot. */
export function selectorMatches(selector: Selector, bot: IndexBot): boolean {
  if (selector.realtime !== undefined && selector.realtime !== bot.realtime) return false;
  for (const [key, values] of Object.entries(selector.properties)) {
    const v = bot.properties[key];
    if (v === undefined || !values.includes(v)) return false;
  }
  return true;
}

/** The group that holds a bot: the group of its pinned dedicated pool, else the first whose selector matches. */
export function groupOf(catalog: Pick<Catalog, 'groups'>, bot: IndexBot): PoolGroup | undefined {
  if (bot.pin !== undefined) return catalog.groups.find((g) => g.dedicatedPools.includes(bot.pin!));
  return catalog.groups.find((g) => selectorMatches(g.selector, bot));
}

function crossCheck(c: Checker, catalog: Omit<Catalog, 'generation'>): void {
  const tenants = new Set(catalog.tenants.map((t) => t.id));
  const encoders = new Set(catalog.encoders.map((e) => e.id));
  const dedicated = catalog.groups.flatMap((g) => g.dedicatedPools);
  catalog.bots.forEach((bot, i) => {
    const p = botPath(i, bot);
    if (bot.tenant !== '' && !tenants.has(bot.tenant)) {
      const guess = closest(bot.tenant, [...tenants]);
      c.add(`${p}.tenant`, `unknown tenant ${show(bot.tenant)}`, guess ? `did you mean "${guess}"? or add it to tenants` : 'add it to tenants');
    }
    if (bot.model.encoder !== undefined && bot.model.encoder !== '' && !encoders.has(bot.model.encoder)) {
      const guess = closest(bot.model.encoder, [...encoders]);
      c.add(`${p}.model.encoder`, `unknown encoder ${show(bot.model.encoder)}`, guess ? `did you mean "${guess}"? or add it to encoders` : 'add it to encoders');
    }
    if (bot.pin !== undefined && bot.pin !== '' && !dedicated.includes(bot.pin)) {
      const guess = closest(bot.pin, dedicated);
      c.add(
        `${p}.pin`,
        `pins to pool ${show(bot.pin)}, which does not exist`,
        guess ? `did you mean "${guess}"?` : dedicated.length ? `pin to one of ${dedicated.join(', ')}` : 'declare it in a group\'s dedicatedPools',
      );
    }
    if (bot.pin === undefined && catalog.groups.length > 0 && bot.id !== '' && !groupOf(catalog, bot)) {
      c.add(p, `bot ${show(bot.id)} (realtime: ${bot.realtime}, properties: ${show(bot.properties)}) matches no pool group`, 'widen a group selector, add a group, or pin the bot');
    }
  });
}

/** The outcome of validating a catalog: the normalised catalog, or every problem found. */
export type NormalizeResult = { ok: true; catalog: Catalog } | { ok: false; problems: Problem[] };

/**
 * Validates and normalises a catalog input; throws one CatalogError listing every problem (named after
 * `source`, the file it came from, when given). What every loader, construct, test and benchmark uses.
 */
export function parseCatalog(input: unknown, source?: string): Catalog {
  const result = normalizeCatalog(input);
  if (!result.ok) throw new CatalogError(result.problems, source);
  return result.catalog;
}

/**
 * Validates and normalises a catalog: every problem is reported at once, with its path and a fix.
 * Accepts what `defineCatalog()` takes and its own output (a normalised catalog), whose `generation`
 * must then match its content. Never throws, whatever the input.
 */
export function normalizeCatalog(input: unknown): NormalizeResult {
  const c = new Checker();
  try {
    const o = c.object(input, 'catalog', ['apiVersion', 'kind', 'generation', 'platform', 'tenants', 'encoders', 'groups', 'bots'], ['tenants', 'groups', 'bots']);
    if (!o) return { ok: false, problems: c.problems };
    if (o.apiVersion !== undefined && o.apiVersion !== CATALOG_API_VERSION) {
      c.add('apiVersion', `unsupported apiVersion ${show(o.apiVersion)}`, `this runtime reads ${CATALOG_API_VERSION}; regenerate the catalog with the matching botshard`);
    }
    if (o.kind !== undefined && o.kind !== 'Catalog') c.add('kind', `must be "Catalog", got ${show(o.kind)}`, 'set kind to "Catalog"');
    const platform = normalizePlatform(c, o.platform);
    const tenants = normalizeTenants(c, o.tenants);
    const encoders = normalizeEncoders(c, o.encoders);
    const groups = normalizeGroups(c, o.groups);
    const bots = c.array(o.bots, 'bots').map((b, i) => normalizeBot(c, b, botPath(i, b)));
    const content = { platform, tenants, encoders, groups, bots: bots.filter((b): b is Bot => b !== undefined) };
    c.unique(bots.flatMap((b, i) => (b ? [{ id: b.id, path: `${botPath(i, b)}.id` }] : [])), 'bot id');
    crossCheck(c, { apiVersion: CATALOG_API_VERSION, kind: 'Catalog', ...content });
    if (c.problems.length > 0) return { ok: false, problems: c.problems };

    const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    content.tenants.sort(byId);
    content.encoders.sort(byId);
    content.bots.sort(byId);
    const generation = canonicalGeneration(content);
    if (o.generation !== undefined && o.generation !== generation) {
      c.add('generation', `${show(o.generation)} does not match the content (computed ${show(generation)})`, 'the file was edited by hand or is incomplete: regenerate it with `botshard catalog`');
      return { ok: false, problems: c.problems };
    }
    return { ok: true, catalog: { apiVersion: CATALOG_API_VERSION, kind: 'Catalog', generation, ...content } };
  } catch (e) {
    // A validator that throws is a bug; still, the caller gets a problem, not a crash.
    c.add('catalog', `could not be validated: ${(e as Error)?.message ?? show(e)}`, 'report this input as a botshard bug');
    return { ok: false, problems: c.problems };
  }
}
