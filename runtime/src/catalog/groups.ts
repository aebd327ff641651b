/** The catalog's `groups` section: pool groups with every setting resolved (defaults from defaults.ts). */
import { Checker, isObj } from './checker';
import { groupDefaults } from './defaults';
import { MAX_DNS_LABEL, MAX_GROUP_NAME } from './names';
import { show } from './problems';
import { normalizeSelector } from './selector';
import { Locality, PoolGroup, Toleration } from './types';

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

export function normalizeGroups(c: Checker, v: unknown): PoolGroup[] {
  const list = c.array(v, 'groups');
  if (Array.isArray(v) && list.length === 0) c.add('groups', 'is empty', 'add at least one pool group');
  const groups = list.flatMap((g, i) => normalizeGroup(c, g, `groups[${i}]`) ?? []);
  c.unique(groups.map((g, i) => ({ id: g.name, path: `groups[${i}].name` })), 'group name');
  const pools: Array<{ id: string; path: string }> = [];
  groups.forEach((g, i) => g.dedicatedPools.forEach((d, j) => pools.push({ id: d, path: `groups[${i}].dedicatedPools[${j}]` })));
  c.unique(pools, 'dedicated pool name');
  return groups;
}

/** One pool group, every setting it leaves out taken from the defaults of its kind (real-time or not). */
function normalizeGroup(c: Checker, g: unknown, p: string): PoolGroup | undefined {
  const o = c.object(g, p, GROUP_FIELDS, ['name', 'realtime', 'memory']);
  if (!o) return undefined;
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
  return group;
}
