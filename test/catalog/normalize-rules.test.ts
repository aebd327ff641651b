/**
 * Catalog validation rule by rule (runtime/src/catalog/normalize.ts and the section modules it composes:
 * platform.ts, encoders.ts, groups.ts, selector.ts, bots.ts, references.ts; problems.ts): for each part of the
 * catalog, the exact problems a user sees (path, message and fix) and the defaults a valid input gets.
 * The messages are what people read to fix their catalog: a changed one is a changed behaviour.
 */
import { botPath } from '@botshard/runtime/catalog/bots';
import { normalizeCatalog, parseCatalog } from '@botshard/runtime/catalog/normalize';
import { selectorMatches } from '@botshard/runtime/catalog/selector';
import { CatalogError, Problem, closest, formatProblems, show } from '@botshard/runtime/catalog/problems';
import { CATALOG_API_VERSION } from '@botshard/runtime/catalog/types';

/** A small valid catalog input (a fresh copy each time). */
function base(): any {
  return {
    tenants: [{ id: 'acme' }],
    encoders: [{ id: 'enc', path: 'e.onnx', memory: '1Mi', tokenizer: { kind: 'hashing', buckets: 8 }, dimensions: 4 }],
    groups: [{ name: 'rt', realtime: true, memory: '1Gi', dedicatedPools: ['vip'] }],
    bots: [{ id: 'a-bot', tenant: 'acme', realtime: true, model: { head: 'heads/a.onnx', memory: '1Mi' }, intents: [{ name: 'x' }] }],
  };
}

/** The problems of `base()` changed by `change`. */
function problems(change: (c: any) => void): Problem[] {
  const c = base();
  change(c);
  const r = normalizeCatalog(c);
  if (r.ok) throw new Error('expected problems');
  return r.problems;
}

/** The normalised catalog of `base()` changed by `change`. */
function valid(change: (c: any) => void = () => undefined) {
  const c = base();
  change(c);
  const r = normalizeCatalog(c);
  if (!r.ok) throw new Error(formatProblems(r.problems));
  return r.catalog;
}

const p = (path: string, message: string, hint: string): Problem => ({ path, message, hint });
const DNS = 'is not a DNS label of at most 63 characters (lowercase letters, digits and "-", starting with a letter and ending with a letter or digit)';
const CIDR_HINT = 'write an address and a prefix length, e.g. "52.216.0.0/15" or "2600:1f18::/32"';
const B = 'bots[0] (a-bot)';

describe('the catalog itself', () => {
  test('not an object', () => {
    for (const input of ['x', null, [1], undefined]) {
      const r = normalizeCatalog(input);
      expect(r).toEqual({ ok: false, problems: [p('catalog', `must be an object, got ${show(input)}`, 'write catalog as { ... }')] });
    }
  });

  test('required parts, unknown fields, apiVersion, kind, and parts of the wrong type', () => {
    expect(normalizeCatalog({})).toEqual({
      ok: false,
      problems: [
        p('catalog.tenants', 'is required', 'add tenants to catalog'),
        p('catalog.groups', 'is required', 'add groups to catalog'),
        p('catalog.bots', 'is required', 'add bots to catalog'),
      ],
    });
    expect(normalizeCatalog({ apiVersion: 'v0', kind: 'Cat', x: 1, tenants: 'x', groups: {}, bots: 3 })).toEqual({
      ok: false,
      problems: [
        p('catalog.x', 'is not a known field', 'remove it; known fields are apiVersion, kind, generation, platform, tenants, encoders, groups, bots'),
        p('apiVersion', 'unsupported apiVersion "v0"', `this runtime reads ${CATALOG_API_VERSION}; regenerate the catalog with the matching botshard`),
        p('kind', 'must be "Catalog", got "Cat"', 'set kind to "Catalog"'),
        p('tenants', 'must be an array, got "x"', 'write tenants as [ ... ]'),
        p('groups', 'must be an array, got {}', 'write groups as [ ... ]'),
        p('bots', 'must be an array, got 3', 'write bots as [ ... ]'),
      ],
    });
  });

  test('its own output reads back: apiVersion, kind and a matching generation are accepted; tenants, encoders and bots come sorted by id', () => {
    const catalog = valid((c) => {
      c.tenants = [{ id: 'zeta' }, { id: 'acme' }, { id: 'beta' }];
      c.encoders.push({ ...c.encoders[0], id: 'abc' });
      c.bots.push({ ...c.bots[0], id: 'a' }, { ...c.bots[0], id: 'b-bot' });
    });
    expect([catalog.apiVersion, catalog.kind]).toEqual([CATALOG_API_VERSION, 'Catalog']);
    expect(catalog.tenants.map((t) => t.id)).toEqual(['acme', 'beta', 'zeta']);
    expect(catalog.encoders.map((e) => e.id)).toEqual(['abc', 'enc']);
    expect(catalog.bots.map((b) => b.id)).toEqual(['a', 'a-bot', 'b-bot']);
    expect(normalizeCatalog(JSON.parse(JSON.stringify(catalog)))).toEqual({ ok: true, catalog });
  });

  test('a generation that does not match the content', () => {
    const generation = valid().generation;
    const r = problems((c) => (c.generation = 'abc'));
    expect(r).toEqual([p('generation', `"abc" does not match the content (computed "${generation}")`, 'the file was edited by hand or is incomplete: regenerate it with `botshard catalog`')]);
  });

  test('an input that makes the validator throw is a problem, not a crash', () => {
    const input = (thrown: unknown) => ({
      tenants: [],
      groups: [],
      get bots() {
        throw thrown;
      },
    });
    expect(normalizeCatalog(input(new Error('boom')))).toEqual({ ok: false, problems: [p('catalog', 'could not be validated: boom', 'report this input as a botshard bug')] });
    expect(normalizeCatalog(input('str'))).toEqual({ ok: false, problems: [p('catalog', 'could not be validated: "str"', 'report this input as a botshard bug')] });
    expect(normalizeCatalog(input(null))).toEqual({ ok: false, problems: [p('catalog', 'could not be validated: null', 'report this input as a botshard bug')] });
    expect(normalizeCatalog(input(undefined))).toEqual({ ok: false, problems: [p('catalog', 'could not be validated: undefined', 'report this input as a botshard bug')] });
  });

  test('parseCatalog returns the catalog or throws one CatalogError with every problem, named after its source', () => {
    expect(parseCatalog(base())).toEqual(valid());
    let error: unknown;
    try {
      parseCatalog({}, 'src.json');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CatalogError);
    expect((error as CatalogError).source).toBe('src.json');
    expect((error as CatalogError).problems).toHaveLength(3);
    expect((error as CatalogError).message).toBe(
      'src.json: the catalog has 3 problems:\n  - catalog.tenants: is required (fix: add tenants to catalog)\n  - catalog.groups: is required (fix: add groups to catalog)\n  - catalog.bots: is required (fix: add bots to catalog)',
    );
    expect(() => parseCatalog('x')).toThrow(/^the catalog has 1 problem:\n/);
  });
});

describe('platform', () => {
  test('defaults when absent', () => {
    expect(valid().platform).toEqual({ namespace: 'botshard', strategy: 'sharded', modelRoot: 'models' });
    expect(valid((c) => (c.platform = {})).platform).toEqual({ namespace: 'botshard', strategy: 'sharded', modelRoot: 'models' });
  });

  test('every field set', () => {
    const platform = valid((c) => (c.platform = { namespace: 'bots', strategy: 'dedicated', modelRoot: '/srv/models', auth: 'tenant-keys', prometheusOperator: true, router: 'node', modelStoreEgress: [] })).platform;
    expect(platform).toEqual({ namespace: 'bots', strategy: 'dedicated', modelRoot: '/srv/models', auth: 'tenant-keys', prometheusOperator: true, router: 'node', modelStoreEgress: [] });
    expect(valid((c) => (c.platform = { strategy: 'single', auth: 'none', prometheusOperator: false, router: 'haproxy' })).platform).toEqual({ namespace: 'botshard', strategy: 'single', modelRoot: 'models', router: 'haproxy' });
  });

  test('every field wrong', () => {
    expect(problems((c) => (c.platform = { namespace: 'Bad_NS', strategy: 'x', modelRoot: 5, auth: 'basic', prometheusOperator: 'yes', router: 'nginx', modelStoreEgress: 'x', extra: 1 }))).toEqual([
      p('platform.extra', 'is not a known field', 'remove it; known fields are namespace, strategy, modelRoot, modelStoreEgress, auth, router, prometheusOperator'),
      p('platform.namespace', `namespace "Bad_NS" ${DNS}`, 'rename it, e.g. "bad-ns"'),
      p('platform.strategy', 'must be one of sharded, dedicated, single, got "x"', 'use "sharded" unless you are migrating from or comparing with another approach'),
      p('platform.modelRoot', 'must be a non-empty string, got 5', 'set platform.modelRoot to a string'),
      p('platform.modelStoreEgress', 'must be an array, got "x"', 'write platform.modelStoreEgress as [ ... ]'),
      p('platform.auth', 'must be "tenant-keys" or "none", got "basic"', 'use "tenant-keys" to require an API key of the bot\'s tenant on every request'),
      p('platform.prometheusOperator', 'must be true or false, got "yes"', 'set it to true when the cluster runs the Prometheus Operator (PodMonitor and PrometheusRule objects)'),
      p('platform.router', 'must be "haproxy" or "node", got "nginx"', 'use "haproxy" (HAProxy carries the requests, the default) or "node" (the Node router, one image)'),
    ]);
    expect(problems((c) => (c.platform = [1]))).toEqual([p('platform', 'must be an object, got [1]', 'write platform as { ... }')]);
  });

  test('model store egress: CIDR ranges (IPv4 up to /32, IPv6 up to /128) and a port, 443 by default', () => {
    const egress = valid((c) => (c.platform = { modelStoreEgress: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '::/0', '1.2.3.4/32', '::1/128'] }, { cidr: 'fd00::/8', port: 65535 }, { cidr: '0.0.0.0/0', port: 1 }] })).platform.modelStoreEgress;
    expect(egress).toEqual([
      { cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '::/0', '1.2.3.4/32', '::1/128'], port: 443 },
      { cidr: 'fd00::/8', except: [], port: 65535 },
      { cidr: '0.0.0.0/0', except: [], port: 1 },
    ]);
    const e = (i: number, field: string, got: string) => p(`platform.modelStoreEgress[${i}]${field}`, `is not an IPv4 or IPv6 range in CIDR notation: ${got}`, CIDR_HINT);
    expect(problems((c) => (c.platform = { modelStoreEgress: [{ cidr: '10.0.0.0/8', except: ['x', '1.2.3.4/33', '::1/129', 5], port: 0 }, { cidr: '1.2.3.4' }, { port: 5 }, 'str', { cidr: '1.2.3.4/1/2' }, { cidr: '1.2.3.4/a' }, { cidr: '1.2.3.4/1234' }, { cidr: 'host/8' }, { cidr: '1.2.3.4/8', port: 65536 }] }))).toEqual([
      e(0, '.except[0]', '"x"'),
      e(0, '.except[1]', '"1.2.3.4/33"'),
      e(0, '.except[2]', '"::1/129"'),
      e(0, '.except[3]', '5'),
      p('platform.modelStoreEgress[0].port', 'must be an integer from 1 to 65535, got 0', 'set platform.modelStoreEgress[0].port to a value in that range'),
      e(1, '.cidr', '"1.2.3.4"'),
      p('platform.modelStoreEgress[2].cidr', 'is required', 'add cidr to platform.modelStoreEgress[2]'),
      e(2, '.cidr', 'undefined'),
      p('platform.modelStoreEgress[3]', 'must be an object, got "str"', 'write platform.modelStoreEgress[3] as { ... }'),
      e(4, '.cidr', '"1.2.3.4/1/2"'),
      e(5, '.cidr', '"1.2.3.4/a"'),
      e(6, '.cidr', '"1.2.3.4/1234"'),
      e(7, '.cidr', '"host/8"'),
      p('platform.modelStoreEgress[8].port', 'must be an integer from 1 to 65535, got 65536', 'set platform.modelStoreEgress[8].port to a value in that range'),
    ]);
    // The prefix length is 1 to 3 digits, nothing else (Number() would take "+8", " 8", "8 " or "1e1").
    expect(problems((c) => (c.platform = { modelStoreEgress: [{ cidr: '10.0.0.0/8', except: ['10.0.0.0/+8', '10.0.0.0/ 8', '10.0.0.0/8 ', '10.0.0.0/1e1', '10.0.0.0/0x8'] }, { cidr: '10.0.0.0/8', except: 'x' }] }))).toEqual([
      e(0, '.except[0]', '"10.0.0.0/+8"'),
      e(0, '.except[1]', '"10.0.0.0/ 8"'),
      e(0, '.except[2]', '"10.0.0.0/8 "'),
      e(0, '.except[3]', '"10.0.0.0/1e1"'),
      e(0, '.except[4]', '"10.0.0.0/0x8"'),
      p('platform.modelStoreEgress[1].except', 'must be an array, got "x"', 'write platform.modelStoreEgress[1].except as [ ... ]'),
    ]);
  });
});

describe('tenants', () => {
  test('a name defaults to the id', () => {
    expect(valid((c) => (c.tenants = [{ id: 'acme', name: 'ACME Corp' }, { id: 'globex' }])).tenants).toEqual([
      { id: 'acme', name: 'ACME Corp' },
      { id: 'globex', name: 'globex' },
    ]);
  });

  test('ids: required, DNS labels, unique (an id that is not a string is reported once, not as a duplicate)', () => {
    expect(problems((c) => (c.tenants = [{ id: 'acme' }, { id: 'acme' }, { id: 5 }, { id: 6 }, 'x', { name: 'n' }, { id: 'Bad' }, { id: 'ok', name: 7 }]))).toEqual([
      p('tenants[2].id', 'must be a non-empty string, got 5', 'set tenants[2].id to a string'),
      p('tenants[3].id', 'must be a non-empty string, got 6', 'set tenants[3].id to a string'),
      p('tenants[4]', 'must be an object, got "x"', 'write tenants[4] as { ... }'),
      p('tenants[5].id', 'is required', 'add id to tenants[5]'),
      p('tenants[6].id', `tenant id "Bad" ${DNS}`, 'rename it, e.g. "bad"'),
      p('tenants[7].name', 'must be a non-empty string, got 7', 'set tenants[7].name to a string'),
      p('tenants[1].id', 'duplicate tenant id "acme", already used at tenants[0].id', 'give each tenant id a unique value'),
    ]);
  });
});

describe('encoders', () => {
  test('optional; maxTokens defaults to 64; sha256 kept lower-cased', () => {
    expect(valid((c) => delete c.encoders).encoders).toEqual([]);
    expect(valid((c) => (c.encoders[0].sha256 = 'AB'.repeat(32))).encoders).toEqual([
      { id: 'enc', path: 'e.onnx', sha256: 'ab'.repeat(32), memory: 1048576, tokenizer: { kind: 'hashing', buckets: 8, maxTokens: 64 }, dimensions: 4 },
    ]);
    expect(valid((c) => Object.assign(c.encoders[0], { tokenizer: { kind: 'hashing', buckets: 1 << 24, maxTokens: 4096 }, dimensions: 65536 })).encoders[0]).toMatchObject({ tokenizer: { buckets: 1 << 24, maxTokens: 4096 }, dimensions: 65536 });
    expect(valid((c) => Object.assign(c.encoders[0], { tokenizer: { kind: 'hashing', buckets: 1, maxTokens: 1 }, dimensions: 1 })).encoders[0]).toMatchObject({ tokenizer: { buckets: 1, maxTokens: 1 }, dimensions: 1 });
  });

  test('every field wrong, every field missing, duplicates', () => {
    expect(
      problems((c) => (c.encoders = [{ id: 'enc', path: 'e.onnx', memory: '1Mi', tokenizer: { kind: 'bpe', buckets: 0, maxTokens: 5000 }, dimensions: 0, sha256: 'sha256:abc' }, { id: 'enc', path: 'x', memory: 'x', tokenizer: 'x', dimensions: 1.5 }, {}, { id: 'e3', path: 'p', memory: 1, tokenizer: { buckets: 2 ** 24 + 1 }, dimensions: 65537 }])),
    ).toEqual([
      p('encoders[0].tokenizer.kind', 'must be "hashing", got "bpe"', 'use kind: "hashing"'),
      p('encoders[0].sha256', 'is not a SHA-256 digest of 64 hexadecimal characters: "sha256:abc" (10 characters)', 'drop the prefix: write only the 64 hex characters'),
      p('encoders[0].tokenizer.buckets', 'must be an integer from 1 to 16777216, got 0', 'set encoders[0].tokenizer.buckets to a value in that range'),
      p('encoders[0].tokenizer.maxTokens', 'must be an integer from 1 to 4096, got 5000', 'set encoders[0].tokenizer.maxTokens to a value in that range'),
      p('encoders[0].dimensions', 'must be an integer from 1 to 65536, got 0', 'set encoders[0].dimensions to a value in that range'),
      p('encoders[1].tokenizer', 'must be an object, got "x"', 'write encoders[1].tokenizer as { ... }'),
      p('encoders[1].memory', 'is not a memory size: "x"', 'write a quantity such as "40Mi", "1.5Gi", "512Ki" or a number of bytes'),
      p('encoders[1].dimensions', 'must be an integer from 1 to 65536, got 1.5', 'set encoders[1].dimensions to a value in that range'),
      p('encoders[2].id', 'is required', 'add id to encoders[2]'),
      p('encoders[2].path', 'is required', 'add path to encoders[2]'),
      p('encoders[2].memory', 'is required', 'add memory to encoders[2]'),
      p('encoders[2].tokenizer', 'is required', 'add tokenizer to encoders[2]'),
      p('encoders[2].dimensions', 'is required', 'add dimensions to encoders[2]'),
      p('encoders[3].tokenizer.kind', 'is required', 'add kind to encoders[3].tokenizer'),
      p('encoders[3].tokenizer.buckets', 'must be an integer from 1 to 16777216, got 16777217', 'set encoders[3].tokenizer.buckets to a value in that range'),
      p('encoders[3].dimensions', 'must be an integer from 1 to 65536, got 65537', 'set encoders[3].dimensions to a value in that range'),
      p('encoders[1].id', 'duplicate encoder id "enc", already used at encoders[0].id', 'give each encoder id a unique value'),
    ]);
    expect(problems((c) => (c.encoders = {}))).toEqual([p('encoders', 'must be an array, got {}', 'write encoders as [ ... ]')]);
    expect(problems((c) => Object.assign(c.encoders[0], { id: 'Enc', path: '../e.onnx' }))).toEqual([
      p('encoders[0].id', `encoder id "Enc" ${DNS}`, 'rename it, e.g. "enc"'),
      p('encoders[0].path', '"../e.onnx" escapes the model root', 'use a relative path inside platform.modelRoot, without "../" or a leading "/"'),
    ]);
  });

  test('an encoder without sha256 has no sha256 key at all', () => {
    expect('sha256' in valid().encoders[0]).toBe(false);
  });
});

describe('groups', () => {
  test('defaults of a real-time and a non-real-time group: every group field, resolved once', () => {
    const groups = valid((c) => {
      c.groups = [{ name: 'rt', realtime: true, memory: '1Gi' }, { name: 'batch', realtime: false, memory: '2Gi', replicas: { min: 6 } }];
      c.bots.push({ ...c.bots[0], id: 'b-bot', realtime: false });
    }).groups;
    expect(groups).toEqual([
      { name: 'rt', realtime: true, selector: { realtime: true, properties: {} }, pools: 'auto', memory: 1024 ** 3, fillFactor: 0.75, poolOverhead: 160 * 1024 * 1024, locality: 'encoder', dedicatedPools: [], replicas: { min: 2, max: 10 }, targetCpuPercent: 70, timeoutMs: 2000, concurrency: 32, tolerations: [], nodeSelector: {}, quarantineShare: 0.1, batchWindowMs: 0, batchMaxRows: 32 },
      // max defaults to at least min.
      { name: 'batch', realtime: false, selector: { realtime: false, properties: {} }, pools: 'auto', memory: 2 * 1024 ** 3, fillFactor: 0.75, poolOverhead: 160 * 1024 * 1024, locality: 'encoder', dedicatedPools: [], replicas: { min: 6, max: 6 }, targetCpuPercent: 70, timeoutMs: 60000, concurrency: 8, tolerations: [], nodeSelector: {}, quarantineShare: 0.1, batchWindowMs: 2, batchMaxRows: 32 },
    ]);
  });

  test('every optional field set', () => {
    const [group] = valid((c) => {
      c.groups = [
        {
          name: 'rt',
          realtime: true,
          memory: '1Gi',
          pools: 3,
          poolOverhead: '100Mi',
          fillFactor: 1,
          locality: { property: 'lang' },
          selector: { realtime: true, properties: { lang: ['en', 'de', 'en', 3, true], tier: 'gold' } },
          replicas: { min: 1, max: 1000 },
          targetCpuPercent: 100,
          timeoutMs: 3600000,
          concurrency: 100000,
          tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoExecute' }, { key: 'k2', value: 'v', effect: 'PreferNoSchedule' }, { key: 'k3', operator: 'Equal', effect: 'NoSchedule' }],
          nodeSelector: { zone: 'a' },
          overcommit: 16,
          quarantineShare: 1,
          batchWindowMs: 0,
          batchMaxRows: 1024,
          priorityClassName: 'high',
          dedicatedPools: ['vip'],
        },
      ];
      c.bots[0].properties = { lang: 'en', tier: 'gold' };
    }).groups;
    expect(group).toEqual({
      name: 'rt',
      realtime: true,
      // Values deduplicated and sorted by their JSON text.
      selector: { realtime: true, properties: { lang: ['"de"', '"en"', '3', 'true'].map((v) => JSON.parse(v)), tier: ['gold'] } },
      pools: 3,
      memory: 1024 ** 3,
      fillFactor: 1,
      poolOverhead: 100 * 1024 * 1024,
      locality: { property: 'lang' },
      dedicatedPools: ['vip'],
      replicas: { min: 1, max: 1000 },
      targetCpuPercent: 100,
      timeoutMs: 3600000,
      concurrency: 100000,
      tolerations: [
        { key: 'k', operator: 'Exists', effect: 'NoExecute' },
        { key: 'k2', operator: 'Equal', value: 'v', effect: 'PreferNoSchedule' },
        { key: 'k3', operator: 'Equal', effect: 'NoSchedule' },
      ],
      nodeSelector: { zone: 'a' },
      quarantineShare: 1,
      batchWindowMs: 0,
      batchMaxRows: 1024,
      overcommit: 16,
      priorityClassName: 'high',
    });
    expect(valid((c) => Object.assign(c.groups[0], { pools: 'auto', locality: 'none', fillFactor: 0.05, overcommit: 1, quarantineShare: 0.01, batchWindowMs: 1000, batchMaxRows: 1, replicas: { min: 1000, max: 1000 } })).groups[0]).toMatchObject({
      pools: 'auto',
      locality: 'none',
      fillFactor: 0.05,
      overcommit: 1,
      quarantineShare: 0.01,
      batchWindowMs: 1000,
      batchMaxRows: 1,
      replicas: { min: 1000, max: 1000 },
    });
  });

  test('an empty list, and every field wrong', () => {
    expect(problems((c) => (c.groups = []))).toEqual([p('groups', 'is empty', 'add at least one pool group')]);
    expect(
      problems((c) => {
        c.groups = [{ name: 'rt', realtime: 'yes', memory: '100Mi', pools: 0, replicas: { min: 5, max: 2, x: 1 }, fillFactor: 0.01, locality: 'near', dedicatedPools: ['Bad', 'ok'], targetCpuPercent: 101, timeoutMs: 0, concurrency: 0.5, quarantineShare: 0, batchWindowMs: 1001, batchMaxRows: 0, overcommit: 17, priorityClassName: 'P', tolerations: [{ key: 'k', operator: 'In', effect: 'Never', value: 3 }, {}], nodeSelector: { a: 1, b: 'x' } }];
        delete c.bots;
        c.bots = [];
      }),
    ).toEqual([
      p('groups[0].realtime', 'must be true or false, got "yes"', 'set groups[0].realtime to true or false'),
      p('groups[0].memory', '"100Mi" leaves no room for bots after the pool overhead of 167772160 bytes', 'raise memory or lower poolOverhead'),
      p('groups[0].pools', 'must be an integer from 1 to 10000, got 0', 'set groups[0].pools to a value in that range'),
      p('groups[0].replicas.x', 'is not a known field', 'did you mean "max"?'),
      p('groups[0].replicas.max', '2 is below replicas.min 5', 'set max to at least min'),
      p('groups[0].fillFactor', 'must be a number from 0.05 to 1, got 0.01', 'set groups[0].fillFactor to a value in that range'),
      p('groups[0].locality', 'must be "none", "encoder" or { property: "<name>" }, got "near"', 'use "encoder" to co-locate bots that share an encoder'),
      p('groups[0].dedicatedPools[0]', `dedicated pool name "Bad" ${DNS}`, 'rename it, e.g. "bad"'),
      p('groups[0].targetCpuPercent', 'must be an integer from 1 to 100, got 101', 'set groups[0].targetCpuPercent to a value in that range'),
      p('groups[0].timeoutMs', 'must be an integer from 1 to 3600000, got 0', 'set groups[0].timeoutMs to a value in that range'),
      p('groups[0].concurrency', 'must be an integer from 1 to 100000, got 0.5', 'set groups[0].concurrency to a value in that range'),
      p('groups[0].tolerations[0].operator', 'must be "Equal" or "Exists", got "In"', 'use "Equal" or "Exists"'),
      p('groups[0].tolerations[0].value', 'must be a non-empty string, got 3', 'set groups[0].tolerations[0].value to a string'),
      p('groups[0].tolerations[0].effect', 'must be NoSchedule, PreferNoSchedule or NoExecute, got "Never"', 'use one of those effects'),
      p('groups[0].tolerations[1].key', 'is required', 'add key to groups[0].tolerations[1]'),
      p('groups[0].nodeSelector.a', 'must be a non-empty string, got 1', 'set groups[0].nodeSelector.a to a string'),
      p('groups[0].quarantineShare', 'must be a number from 0.01 to 1, got 0', 'set groups[0].quarantineShare to a value in that range'),
      p('groups[0].batchWindowMs', 'must be a number from 0 to 1000, got 1001', 'set groups[0].batchWindowMs to a value in that range'),
      p('groups[0].batchMaxRows', 'must be an integer from 1 to 1024, got 0', 'set groups[0].batchMaxRows to a value in that range'),
      p('groups[0].overcommit', 'must be a number from 1 to 16, got 17', 'set groups[0].overcommit to a value in that range'),
      p('groups[0].priorityClassName', `priority class name "P" is not a DNS label of at most 253 characters (lowercase letters, digits and "-", starting with a letter and ending with a letter or digit)`, 'rename it, e.g. "p"'),
    ]);
  });

  test('more wrong values: upper bounds, NaN and infinity, a group that is not an object, a non-array', () => {
    expect(
      problems((c) => {
        c.groups = [{ name: 'rt', realtime: true, memory: '1Gi', pools: 10001, replicas: { min: 1001, max: 0 }, fillFactor: 1.5, overcommit: 0.5, quarantineShare: 1.5, batchWindowMs: -1, batchMaxRows: 1025, timeoutMs: 3600001, concurrency: 100001, targetCpuPercent: 0 }, 'x', { name: 'b2', realtime: true, memory: '1Gi', pools: NaN, fillFactor: Infinity, tolerations: 'x', dedicatedPools: 'x', nodeSelector: 'x', replicas: 'x' }];
      }),
    ).toEqual([
      p('groups[0].pools', 'must be an integer from 1 to 10000, got 10001', 'set groups[0].pools to a value in that range'),
      p('groups[0].replicas.min', 'must be an integer from 1 to 1000, got 1001', 'set groups[0].replicas.min to a value in that range'),
      p('groups[0].replicas.max', 'must be an integer from 1 to 1000, got 0', 'set groups[0].replicas.max to a value in that range'),
      p('groups[0].fillFactor', 'must be a number from 0.05 to 1, got 1.5', 'set groups[0].fillFactor to a value in that range'),
      p('groups[0].targetCpuPercent', 'must be an integer from 1 to 100, got 0', 'set groups[0].targetCpuPercent to a value in that range'),
      p('groups[0].timeoutMs', 'must be an integer from 1 to 3600000, got 3600001', 'set groups[0].timeoutMs to a value in that range'),
      p('groups[0].concurrency', 'must be an integer from 1 to 100000, got 100001', 'set groups[0].concurrency to a value in that range'),
      p('groups[0].quarantineShare', 'must be a number from 0.01 to 1, got 1.5', 'set groups[0].quarantineShare to a value in that range'),
      p('groups[0].batchWindowMs', 'must be a number from 0 to 1000, got -1', 'set groups[0].batchWindowMs to a value in that range'),
      p('groups[0].batchMaxRows', 'must be an integer from 1 to 1024, got 1025', 'set groups[0].batchMaxRows to a value in that range'),
      p('groups[0].overcommit', 'must be a number from 1 to 16, got 0.5', 'set groups[0].overcommit to a value in that range'),
      p('groups[1]', 'must be an object, got "x"', 'write groups[1] as { ... }'),
      p('groups[2].pools', 'must be an integer from 1 to 10000, got null', 'set groups[2].pools to a value in that range'),
      p('groups[2].replicas', 'must be an object, got "x"', 'write groups[2].replicas as { ... }'),
      p('groups[2].fillFactor', 'must be a number from 0.05 to 1, got null', 'set groups[2].fillFactor to a value in that range'),
      p('groups[2].dedicatedPools', 'must be an array, got "x"', 'write groups[2].dedicatedPools as [ ... ]'),
      p('groups[2].tolerations', 'must be an array, got "x"', 'write groups[2].tolerations as [ ... ]'),
      p('groups[2].nodeSelector', 'must be an object, got "x"', 'write groups[2].nodeSelector as { ... }'),
    ]);
  });

  test('a group without its required fields, a bad name, a toleration key that is not a string', () => {
    expect(problems((c) => (c.groups = [{}]))).toEqual([
      p('groups[0].name', 'is required', 'add name to groups[0]'),
      p('groups[0].realtime', 'is required', 'add realtime to groups[0]'),
      p('groups[0].memory', 'is required', 'add memory to groups[0]'),
      p(B, 'bot "a-bot" (realtime: true, properties: {}) matches no pool group', 'widen a group selector, add a group, or pin the bot'),
    ]);
    expect(problems((c) => Object.assign(c.groups[0], { name: 'Real_Time', tolerations: [{ key: 5 }] }))).toEqual([
      p('groups[0].name', 'group name "Real_Time" is not a DNS label of at most 20 characters (lowercase letters, digits and "-", starting with a letter and ending with a letter or digit)', 'rename it, e.g. "real-time"'),
      p('groups[0].tolerations[0].key', 'must be a non-empty string, got 5', 'set groups[0].tolerations[0].key to a string'),
    ]);
  });

  test('memory: room after the overhead (equal is no room), a memory that does not parse is reported once', () => {
    expect(problems((c) => Object.assign(c.groups[0], { memory: '200Mi', poolOverhead: '200Mi' }))).toEqual([p('groups[0].memory', '"200Mi" leaves no room for bots after the pool overhead of 209715200 bytes', 'raise memory or lower poolOverhead')]);
    expect(valid((c) => Object.assign(c.groups[0], { memory: 201, poolOverhead: 200 })).groups[0]).toMatchObject({ memory: 201, poolOverhead: 200 });
    expect(problems((c) => Object.assign(c.groups[0], { memory: 'lots', poolOverhead: 'x' }))).toEqual([
      p('groups[0].memory', 'is not a memory size: "lots"', 'write a quantity such as "40Mi", "1.5Gi", "512Ki" or a number of bytes'),
      p('groups[0].poolOverhead', 'is not a memory size: "x"', 'write a quantity such as "40Mi", "1.5Gi", "512Ki" or a number of bytes'),
    ]);
  });

  test('names and dedicated pools are unique across groups; a selector must be an object', () => {
    expect(
      problems((c) => {
        c.groups = [{ name: 'rt', realtime: true, memory: '1Gi' }, { name: 'rt', realtime: false, memory: '1Gi', dedicatedPools: ['vip'] }, { name: 'b', realtime: false, memory: '1Gi', dedicatedPools: ['vip', 'vip2'], selector: 'x' }];
      }),
    ).toEqual([
      p('groups[2].selector', 'must be an object, got "x"', 'write groups[2].selector as { ... }'),
      p('groups[1].name', 'duplicate group name "rt", already used at groups[0].name', 'give each group name a unique value'),
      p('groups[2].dedicatedPools[0]', 'duplicate dedicated pool name "vip", already used at groups[1].dedicatedPools[0]', 'give each dedicated pool name a unique value'),
    ]);
  });

  test('locality: "none", "encoder" (the default) or a property', () => {
    expect(valid((c) => (c.groups[0].locality = 'none')).groups[0].locality).toBe('none');
    expect(valid((c) => (c.groups[0].locality = 'encoder')).groups[0].locality).toBe('encoder');
    expect(
      problems((c) => {
        c.groups = [{ name: 'rt', realtime: false, memory: '1Gi', locality: {} }, { name: 'r2', realtime: true, memory: '1Gi', locality: { property: 5 } }, { name: 'r3', realtime: true, memory: '1Gi', locality: { property: 'p', x: 1 } }, { name: 'r4', realtime: true, memory: '1Gi', locality: 7 }];
      }),
    ).toEqual([
      p('groups[0].locality.property', 'is required', 'add property to groups[0].locality'),
      p('groups[1].locality.property', 'must be a non-empty string, got 5', 'set groups[1].locality.property to a string'),
      p('groups[2].locality.x', 'is not a known field', 'remove it; known fields are property'),
      p('groups[3].locality', 'must be "none", "encoder" or { property: "<name>" }, got 7', 'use "encoder" to co-locate bots that share an encoder'),
    ]);
  });

  test('a selector: realtime and property values (a single value or a list of plain values)', () => {
    const [g] = valid((c) => {
      c.groups[0].selector = { properties: { lang: 'en' } };
      c.bots[0].properties = { lang: 'en' };
    }).groups;
    expect(g.selector).toEqual({ properties: { lang: ['en'] } });
    expect(valid((c) => (c.groups[0].selector = { realtime: true })).groups[0].selector).toEqual({ realtime: true, properties: {} });
    expect(
      problems((c) => {
        c.groups[0].selector = { realtime: 'x', properties: { 'bad key': 'x', n: [null, 'ok', {}], m: NaN, o: 'x' }, y: 1 };
        c.bots = [];
      }),
    ).toEqual([
      p('groups[0].selector.y', 'is not a known field', 'remove it; known fields are realtime, properties'),
      p('groups[0].selector.realtime', 'must be true or false, got "x"', 'set groups[0].selector.realtime to true or false'),
      p('groups[0].selector.properties.bad key', '"bad key" is not a valid property name', 'use letters, digits, "_", "." and "-", starting with a letter or "_"'),
      p('groups[0].selector.properties.n[0]', 'must be a string, number or boolean, got null', 'use a plain value'),
      p('groups[0].selector.properties.n[2]', 'must be a string, number or boolean, got {}', 'use a plain value'),
      p('groups[0].selector.properties.m', 'must be a string, number or boolean, got null', 'use a plain value'),
    ]);
    expect(problems((c) => (c.groups[0].selector = { properties: 'x' }))).toEqual([
      p('groups[0].selector.properties', 'must be an object, got "x"', 'write groups[0].selector.properties as { ... }'),
    ]);
  });

  test('property names may use letters, digits, "_", "." and "-", starting with a letter or "_"', () => {
    for (const key of ['a', '_a', 'a.b-c_1', 'Z9']) expect(valid((c) => (c.bots[0].properties = { [key]: 1 })).bots[0].properties).toEqual({ [key]: 1 });
    for (const key of ['1a', '-a', '.a', 'a b', 'a/b', '']) {
      expect(problems((c) => (c.bots[0].properties = { [key]: 1 }))).toEqual([p(`${B}.properties.${key}`, `${JSON.stringify(key)} is not a valid property name`, 'use letters, digits, "_", "." and "-", starting with a letter or "_"')]);
    }
  });
});

describe('bots', () => {
  test('a full bot, and the defaults of a minimal one', () => {
    const bots = valid((c) => {
      c.bots[0] = { ...c.bots[0], properties: { lang: 'en', n: 2, t: false }, model: { head: 's3://bucket/h.onnx', memory: '1Mi', encoder: 'enc', sha256: 'A'.repeat(64) }, preprocess: [{ pattern: 'a', replace: '', flags: 'ims' }], postprocess: { threshold: 1, fallback: 'fb', entities: [{ name: 'e', pattern: 'b' }] }, warm: true };
      c.bots.push({ id: 'p-bot', tenant: 'acme', realtime: false, model: { head: 'p.onnx', memory: 1 }, intents: [{ name: 'y', examples: ['q'] }], pin: 'vip', warm: false });
    }).bots;
    expect(bots).toEqual([
      {
        id: 'a-bot',
        tenant: 'acme',
        realtime: true,
        properties: { lang: 'en', n: 2, t: false },
        model: { head: 's3://bucket/h.onnx', sha256: 'a'.repeat(64), memory: 1048576, encoder: 'enc' },
        intents: [{ name: 'x', examples: [] }],
        preprocess: [{ pattern: 'a', replace: '', flags: 'ims' }],
        postprocess: { threshold: 1, fallback: 'fb', entities: [{ name: 'e', pattern: 'b', flags: '' }] },
        warm: true,
      },
      { id: 'p-bot', tenant: 'acme', realtime: false, properties: {}, model: { head: 'p.onnx', memory: 1 }, intents: [{ name: 'y', examples: ['q'] }], preprocess: [], postprocess: { threshold: 0, fallback: 'fallback', entities: [] }, pin: 'vip' },
    ]);
  });

  test('every field wrong', () => {
    expect(
      problems((c) => {
        c.bots[0] = {
          id: 'a-bot',
          tenant: 'acmee',
          realtime: 'no',
          properties: { 'bad key': 1, n: NaN, o: {}, ok: 'x', t: true, num: 2 },
          model: { head: '/abs', memory: '1Mi', encoder: 'encc', sha256: 'ab', x: 1 },
          intents: [{ name: 'x', examples: ['a', 3] }, { name: 'x' }, { examples: [] }, 'str'],
          preprocess: [{ pattern: '(', replace: 5, flags: 'g' }, { pattern: 'a' }, 'x'],
          postprocess: { threshold: 2, fallback: '', entities: [{ name: 'e', pattern: 'a', flags: 7 }, { pattern: 'b' }, 'x'], y: 1 },
          pin: 'vipp',
          warm: 'yes',
        };
      }),
    ).toEqual([
      p(`${B}.properties.bad key`, '"bad key" is not a valid property name', 'use letters, digits, "_", "." and "-", starting with a letter or "_"'),
      p(`${B}.properties.n`, 'must be a string, number or boolean, got null', 'use a plain value'),
      p(`${B}.properties.o`, 'must be a string, number or boolean, got {}', 'use a plain value'),
      p(`${B}.model.x`, 'is not a known field', 'remove it; known fields are head, sha256, memory, encoder, version, candidate'),
      p(`${B}.model.sha256`, 'is not a SHA-256 digest of 64 hexadecimal characters: "ab" (2 characters)', 'write the 64 hex characters that `sha256sum FILE` prints (or remove sha256 to skip verification)'),
      p(`${B}.model.head`, '"/abs" escapes the model root', 'use a relative path inside platform.modelRoot, without "../" or a leading "/"'),
      p(`${B}.intents[0].examples[1]`, 'must be a non-empty string, got 3', `set ${B}.intents[0].examples[1] to a string`),
      p(`${B}.intents[2].name`, 'is required', `add name to ${B}.intents[2]`),
      p(`${B}.intents[3]`, 'must be an object, got "str"', `write ${B}.intents[3] as { ... }`),
      p(`${B}.intents[1].name`, `duplicate intent name "x", already used at ${B}.intents[0].name`, 'give each intent name a unique value'),
      p(`${B}.preprocess[0].flags`, 'must be a combination of "i", "m" and "s", got "g"', 'use only i (ignore case), m (multi-line) and s (dot matches newline)'),
      p(`${B}.preprocess[0].pattern`, '"(" is not valid RE2 syntax: missing ): (', 'rewrite the pattern without that construct (see https://github.com/google/re2/wiki/Syntax)'),
      p(`${B}.preprocess[0].replace`, 'must be a string, got 5', 'use "" to delete the match'),
      p(`${B}.preprocess[1].replace`, 'is required', `add replace to ${B}.preprocess[1]`),
      p(`${B}.preprocess[2]`, 'must be an object, got "x"', `write ${B}.preprocess[2] as { ... }`),
      p(`${B}.postprocess.y`, 'is not a known field', 'remove it; known fields are threshold, fallback, entities'),
      p(`${B}.postprocess.entities[0].flags`, 'must be a combination of "i", "m" and "s", got 7', 'use only i (ignore case), m (multi-line) and s (dot matches newline)'),
      p(`${B}.postprocess.entities[1].name`, 'is required', `add name to ${B}.postprocess.entities[1]`),
      p(`${B}.postprocess.entities[2]`, 'must be an object, got "x"', `write ${B}.postprocess.entities[2] as { ... }`),
      p(`${B}.realtime`, 'must be true or false, got "no"', `set ${B}.realtime to true or false`),
      p(`${B}.postprocess.threshold`, 'must be a number from 0 to 1, got 2', `set ${B}.postprocess.threshold to a value in that range`),
      p(`${B}.postprocess.fallback`, 'must be a non-empty string, got ""', `set ${B}.postprocess.fallback to a string`),
      p(`${B}.warm`, 'must be true or false, got "yes"', `set ${B}.warm to true or false`),
      p(`${B}.tenant`, 'unknown tenant "acmee"', 'did you mean "acme"? or add it to tenants'),
      p(`${B}.model.encoder`, 'unknown encoder "encc"', 'did you mean "enc"? or add it to encoders'),
      p(`${B}.pin`, 'pins to pool "vipp", which does not exist', 'did you mean "vip"?'),
    ]);
  });

  test('empty intents, an empty pin, unknown names without a likely one', () => {
    expect(
      problems((c) => {
        c.bots[0].intents = [];
        c.bots[0].pin = '';
        c.bots.push({ id: 'b-bot', tenant: 'other', realtime: true, model: { head: 'x.onnx', memory: 1, encoder: 'zzzzzz' }, intents: [{ name: 'y' }], pin: 'zzzz' });
      }),
    ).toEqual([
      p(`${B}.intents`, 'is empty', "list the labels of the bot's head, in output order"),
      p(`${B}.pin`, 'must be a non-empty string, got ""', `set ${B}.pin to a string`),
      p('bots[1] (b-bot).tenant', 'unknown tenant "other"', 'add it to tenants'),
      p('bots[1] (b-bot).model.encoder', 'unknown encoder "zzzzzz"', 'add it to encoders'),
      p('bots[1] (b-bot).pin', 'pins to pool "zzzz", which does not exist', 'pin to one of vip'),
    ]);
    expect(
      problems((c) => {
        c.groups[0].dedicatedPools = [];
        c.bots[0].pin = 'nope';
        c.bots[0].model = 'x';
      }),
    ).toEqual([p(`${B}.model`, 'must be an object, got "x"', `write ${B}.model as { ... }`), p(`${B}.pin`, 'pins to pool "nope", which does not exist', "declare it in a group's dedicatedPools")]);
    // An empty tenant or encoder is reported as such, not also as unknown.
    expect(problems((c) => Object.assign(c.bots[0], { tenant: '', model: { head: 'h', memory: 1, encoder: '' } }))).toEqual([
      p(`${B}.model.encoder`, 'must be a non-empty string, got ""', `set ${B}.model.encoder to a string`),
      p(`${B}.tenant`, 'must be a non-empty string, got ""', `set ${B}.tenant to a string`),
    ]);
  });

  test('entries that are not objects, required fields, ids over 40 characters, parts of the wrong type', () => {
    const long = 'A'.repeat(90);
    const at = `bots[1] (${'A'.repeat(80)})`;
    expect(problems((c) => (c.bots = [5, { id: long }, {}]))).toEqual([
      p('bots[0]', 'must be an object, got 5', 'write bots[0] as { ... }'),
      p(`${at}.tenant`, 'is required', `add tenant to ${at}`),
      p(`${at}.realtime`, 'is required', `add realtime to ${at}`),
      p(`${at}.model`, 'is required', `add model to ${at}`),
      p(`${at}.intents`, 'is required', `add intents to ${at}`),
      p(`${at}.id`, `bot id "${'A'.repeat(56)}... is not a DNS label of at most 40 characters (lowercase letters, digits and "-", starting with a letter and ending with a letter or digit)`, `rename it, e.g. "${'a'.repeat(40)}"`),
      p('bots[2].id', 'is required', 'add id to bots[2]'),
      p('bots[2].tenant', 'is required', 'add tenant to bots[2]'),
      p('bots[2].realtime', 'is required', 'add realtime to bots[2]'),
      p('bots[2].model', 'is required', 'add model to bots[2]'),
      p('bots[2].intents', 'is required', 'add intents to bots[2]'),
      // Cross-checks count only the bots that are objects (here bots[1] is their first).
      p(`bots[0] (${'A'.repeat(80)})`, `bot "${'A'.repeat(56)}... (realtime: false, properties: {}) matches no pool group`, 'widen a group selector, add a group, or pin the bot'),
    ]);
    expect(problems((c) => Object.assign(c.bots[0], { properties: 'x', postprocess: 'x', intents: 'x', preprocess: 'x' }))).toEqual([
      p(`${B}.properties`, 'must be an object, got "x"', `write ${B}.properties as { ... }`),
      p(`${B}.intents`, 'must be an array, got "x"', `write ${B}.intents as [ ... ]`),
      p(`${B}.preprocess`, 'must be an array, got "x"', `write ${B}.preprocess as [ ... ]`),
      p(`${B}.postprocess`, 'must be an object, got "x"', `write ${B}.postprocess as { ... }`),
    ]);
  });

  test('a model without its fields; intents, examples and entities of the wrong type, each at its path', () => {
    expect(problems((c) => (c.bots[0].model = {}))).toEqual([p(`${B}.model.head`, 'is required', `add head to ${B}.model`), p(`${B}.model.memory`, 'is required', `add memory to ${B}.model`)]);
    expect(
      problems((c) => {
        c.bots[0].model.memory = '1MB';
        c.bots[0].intents = [{ name: 5 }, { name: 'b', examples: 'x' }];
        c.bots[0].postprocess = { entities: [{ name: 5, pattern: 'a' }] };
      }),
    ).toEqual([
      p(`${B}.model.memory`, 'is not a memory size: "1MB"', 'write a quantity such as "40Mi", "1.5Gi", "512Ki" or a number of bytes'),
      p(`${B}.intents[0].name`, 'must be a non-empty string, got 5', `set ${B}.intents[0].name to a string`),
      p(`${B}.intents[1].examples`, 'must be an array, got "x"', `write ${B}.intents[1].examples as [ ... ]`),
      p(`${B}.postprocess.entities[0].name`, 'must be a non-empty string, got 5', `set ${B}.postprocess.entities[0].name to a string`),
    ]);
    expect(problems((c) => (c.bots[0].postprocess = { entities: 'x' }))).toEqual([p(`${B}.postprocess.entities`, 'must be an array, got "x"', `write ${B}.postprocess.entities as [ ... ]`)]);
  });

  test('a pin to a pool that does not exist lists every dedicated pool when none is close', () => {
    expect(
      problems((c) => {
        c.groups[0].dedicatedPools = ['vip', 'gold'];
        c.bots[0].pin = 'zzzzzz';
      }),
    ).toEqual([p(`${B}.pin`, 'pins to pool "zzzzzz", which does not exist', 'pin to one of vip, gold')]);
  });

  test('bots, tenants and encoders come sorted by id whatever their order (many of them)', () => {
    const ids = Array.from({ length: 150 }, (_, i) => `b${String((i * 37) % 150).padStart(3, '0')}`);
    const catalog = valid((c) => {
      c.bots = ids.map((id) => ({ ...c.bots[0], id }));
      c.tenants = [...ids].reverse().map((id) => ({ id: `t${id}` })).concat([{ id: 'acme' }]);
    });
    expect(catalog.bots.map((b) => b.id)).toEqual([...ids].sort());
    expect(catalog.tenants.map((t) => t.id)).toEqual(['acme', ...[...ids].sort().map((id) => `t${id}`)]);
  });

  test('duplicate ids, the first use named', () => {
    expect(problems((c) => c.bots.push({ ...c.bots[0] }))).toEqual([p('bots[1] (a-bot).id', 'duplicate bot id "a-bot", already used at bots[0] (a-bot).id', 'give each bot id a unique value')]);
    // Ids that are not strings are reported once each, never as duplicates of each other.
    expect(problems((c) => (c.bots = [{ ...c.bots[0], id: 5 }, { ...c.bots[0], id: 6 }]))).toEqual([
      p('bots[0].id', 'must be a non-empty string, got 5', 'set bots[0].id to a string'),
      p('bots[1].id', 'must be a non-empty string, got 6', 'set bots[1].id to a string'),
    ]);
  });

  test('a bot that matches no group, with what it has', () => {
    expect(
      problems((c) => {
        c.groups[0].selector = { properties: { lang: 'de' } };
        c.bots[0].properties = { lang: 'en' };
      }),
    ).toEqual([p(B, 'bot "a-bot" (realtime: true, properties: {"lang":"en"}) matches no pool group', 'widen a group selector, add a group, or pin the bot')]);
  });

  test('ids: the fix offered is the id made a DNS label, when one is left', () => {
    const hint = (id: string) => problems((c) => (c.bots[0].id = id)).find((x) => x.path.endsWith('.id'))!.hint;
    expect(hint('Acme_Support')).toBe('rename it, e.g. "acme-support"');
    expect(hint('-lead')).toBe('rename it, e.g. "lead"');
    expect(hint('trail-')).toBe('rename it, e.g. "trail"');
    expect(hint('Ab--')).toBe('rename it, e.g. "ab"');
    expect(hint('9a')).toBe('rename it, e.g. "a"');
    expect(hint('a!!b')).toBe('rename it, e.g. "a-b"');
    expect(hint(`${'a'.repeat(39)}_b`)).toBe(`rename it, e.g. "${'a'.repeat(39)}"`);
    expect(hint(`${'a'.repeat(38)}--xy`)).toBe(`rename it, e.g. "${'a'.repeat(38)}"`);
    expect(hint('123')).toBe('rename it');
    expect(hint('_')).toBe('rename it');
    for (const id of ['a', 'a-b', 'a1', 'a'.repeat(40)]) expect(valid((c) => (c.bots[0].id = id)).bots[0].id).toBe(id);
  });

  test('warm only when true; a pin to a dedicated pool', () => {
    const c = valid((x) => {
      x.bots[0].warm = true;
      x.bots[0].pin = 'vip';
    });
    expect(c.bots[0]).toMatchObject({ warm: true, pin: 'vip' });
    expect('warm' in valid((x) => (x.bots[0].warm = false)).bots[0]).toBe(false);
  });

  test('threshold bounds 0 and 1 are accepted, just outside is not', () => {
    expect(valid((c) => (c.bots[0].postprocess = { threshold: 0 })).bots[0].postprocess.threshold).toBe(0);
    expect(problems((c) => (c.bots[0].postprocess = { threshold: -0.01 }))[0].message).toBe('must be a number from 0 to 1, got -0.01');
  });
});

describe('model files', () => {
  const headProblem = (head: unknown) => {
    const r = normalizeCatalog({ ...base(), bots: [{ ...base().bots[0], model: { head, memory: 1 } }] });
    return r.ok ? undefined : r.problems.map((x) => x.message);
  };

  test('paths inside the model root and s3:// or https:// locations are accepted', () => {
    for (const head of ['heads/a.onnx', 'a/../b', './x', 's3://b/k', 'https://host/path/x.onnx', '1http://h/x', 'a..b']) expect([head, headProblem(head)]).toEqual([head, undefined]);
  });

  test('paths that leave the model root are refused', () => {
    for (const head of ['/abs', '..', '../x', 'a/../..', 'a/b\\c', '..\\x']) expect(headProblem(head)).toEqual([`${JSON.stringify(head)} escapes the model root`]);
  });

  test('other locations are refused', () => {
    for (const head of ['s3://bucket', 's3://bucket/', 'http://h/x', 'HTTPS://h/x', 'https://h/', 'S3://b/k', 'git+ssh://h/x', 'ftp://h/x', 'xs3://b/k', 'git+https://h/x']) expect(headProblem(head)).toEqual([`${JSON.stringify(head)} is not a supported model location`]);
    expect(problems((c) => (c.bots[0].model.head = 'ftp://h/x'))[0].hint).toBe('use a path relative to the model root, or an s3://bucket/key or https://host/path URI');
    expect(headProblem('')).toEqual(['must be a non-empty string, got ""']);
  });

  test('sha256: 64 hex digits, lower-cased; a prefix is named', () => {
    const sha = (v: unknown) => problems((c) => (c.bots[0].model.sha256 = v))[0];
    expect(sha(`SHA256-${'a'.repeat(64)}`)).toEqual(p(`${B}.model.sha256`, `is not a SHA-256 digest of 64 hexadecimal characters: "SHA256-${'a'.repeat(49)}... (71 characters)`, 'drop the prefix: write only the 64 hex characters'));
    expect(sha(`sha256:${'a'.repeat(64)}`).hint).toBe('drop the prefix: write only the 64 hex characters');
    expect(sha(`x-sha256:${'a'.repeat(64)}`).hint).toBe('write the 64 hex characters that `sha256sum FILE` prints (or remove sha256 to skip verification)');
    expect(sha('sha256'.padEnd(64, 'x')).hint).toBe('write the 64 hex characters that `sha256sum FILE` prints (or remove sha256 to skip verification)');
    expect(sha('a'.repeat(63)).message).toMatch(/\(63 characters\)$/);
    expect(sha('a'.repeat(65)).message).toMatch(/\(65 characters\)$/);
    expect(sha('g'.repeat(64)).message).toMatch(/\(64 characters\)$/);
    expect(sha(5)).toEqual(p(`${B}.model.sha256`, 'is not a SHA-256 digest of 64 hexadecimal characters: 5', 'write the 64 hex characters that `sha256sum FILE` prints (or remove sha256 to skip verification)'));
    expect(valid((c) => (c.bots[0].model.sha256 = `${'A'.repeat(32)}${'f'.repeat(32)}`)).bots[0].model.sha256).toBe(`${'a'.repeat(32)}${'f'.repeat(32)}`);
    expect('sha256' in valid().bots[0].model).toBe(false);
  });
});

describe('regular expressions', () => {
  const rule = (pattern: unknown, flags?: unknown) => normalizeCatalog({ ...base(), bots: [{ ...base().bots[0], preprocess: [{ pattern, replace: '', ...(flags !== undefined ? { flags } : {}) }] }] });

  test('RE2 only, each refusal naming the rule it breaks', () => {
    const msg = (pattern: string) => {
      const r = rule(pattern);
      return r.ok ? undefined : r.problems[0].message;
    };
    expect(msg('a(?=b)')).toBe('"a(?=b)" uses lookaround ((?=, (?!, (?<=, (?<!), which RE2 does not support: RE2 matches in linear time and never looks ahead or behind');
    expect(msg('(a)\\1')).toBe('"(a)\\\\1" uses a backreference (\\1, \\k<name>), which RE2 does not support: matching a backreference needs backtracking');
    expect(msg('(a+)+$')).toBeUndefined();
  });

  test('flags: any combination of i, m and s', () => {
    for (const flags of ['', 'i', 'ms', 'ims', 'sim']) expect(rule('a', flags).ok).toBe(true);
    for (const flags of ['g', 'x', 'iu', 5]) {
      const r = rule('a', flags);
      expect(r.ok ? [] : r.problems.map((x) => x.message)).toEqual([`must be a combination of "i", "m" and "s", got ${JSON.stringify(flags)}`]);
    }
  });

  test('an empty or missing pattern is reported once', () => {
    const r = rule('');
    expect(r.ok ? [] : r.problems).toEqual([p(`${B}.preprocess[0].pattern`, 'must be a non-empty string, got ""', `set ${B}.preprocess[0].pattern to a string`)]);
  });
});

describe('selectors and bot paths', () => {
  const bot = (o: { realtime?: boolean; properties?: Record<string, string | number | boolean>; pin?: string } = {}) => ({ id: 'b', tenant: 't', realtime: o.realtime ?? true, properties: o.properties ?? {}, model: { head: 'h', memory: 1 }, ...(o.pin ? { pin: o.pin } : {}) });

  test('selectorMatches: realtime when set, and each property among its values', () => {
    expect(selectorMatches({ properties: {} }, bot({ realtime: false }))).toBe(true);
    expect(selectorMatches({ realtime: true, properties: {} }, bot({ realtime: false }))).toBe(false);
    expect(selectorMatches({ realtime: false, properties: {} }, bot({ realtime: false }))).toBe(true);
    expect(selectorMatches({ properties: { lang: ['en', 'de'] } }, bot({ properties: { lang: 'de' } }))).toBe(true);
    expect(selectorMatches({ properties: { lang: ['en'] } }, bot({ properties: { lang: 'de' } }))).toBe(false);
    expect(selectorMatches({ properties: { lang: ['en'] } }, bot())).toBe(false);
    expect(selectorMatches({ properties: { lang: ['en'], tier: ['gold'] } }, bot({ properties: { lang: 'en', tier: 'silver' } }))).toBe(false);
    expect(selectorMatches({ properties: { n: [1] } }, bot({ properties: { n: '1' } }))).toBe(false);
  });

  test('botPath names a bot by index and id (80 characters at most)', () => {
    expect(botPath(3, { id: 'x'.repeat(100) })).toBe(`bots[3] (${'x'.repeat(80)})`);
    expect(botPath(1, { id: 'abc' })).toBe('bots[1] (abc)');
    expect([botPath(1, { id: '' }), botPath(2, { id: 5 }), botPath(0, ['x']), botPath(0, null)]).toEqual(['bots[1]', 'bots[2]', 'bots[0]', 'bots[0]']);
  });
});

describe('problems', () => {
  test('formatProblems: one line each, the fix when there is one', () => {
    expect(formatProblems([p('a', 'm', 'h'), p('b', 'n', '')])).toBe('  - a: m (fix: h)\n  - b: n');
    expect(formatProblems([])).toBe('');
  });

  test('CatalogError: the count, each problem, the source when given', () => {
    const one = new CatalogError([p('a', 'm', 'h')]);
    expect([one.name, one.message, one.source]).toEqual(['CatalogError', 'the catalog has 1 problem:\n  - a: m (fix: h)', undefined]);
    expect(new CatalogError([p('a', 'm', 'h'), p('b', 'n', '')], 'f.json').message).toBe('f.json: the catalog has 2 problems:\n  - a: m (fix: h)\n  - b: n');
    expect(new CatalogError([]).message).toBe('the catalog has 0 problems:\n');
    expect(new CatalogError([p('a', 'm', 'h')])).toBeInstanceOf(Error);
  });

  test('show: short JSON, cut at 60 characters, never throwing', () => {
    expect([show(undefined), show(10n), show(() => 1), show(Symbol('x')), show(null), show([1, 'a']), show({ a: 1 }), show('x')]).toEqual(['undefined', '10n', 'function', 'symbol', 'null', '[1,"a"]', '{"a":1}', '"x"']);
    expect(show({ toJSON: () => undefined })).toBe('[object Object]');
    expect(show({ toJSON: () => undefined, toString: () => 'custom' })).toBe('custom');
    expect(show('x'.repeat(58))).toBe(`"${'x'.repeat(58)}"`);
    expect(show('x'.repeat(59))).toBe(`"${'x'.repeat(56)}...`);
    const circular: any = {};
    circular.self = circular;
    expect(show(circular)).toBe('[object Object]');
  });

  test('closest: the nearest candidate by edit distance, ignoring case, when near enough to be a typo', () => {
    expect(closest('memroy', ['pools', 'memory'])).toBe('memory');
    expect(closest('ACME', ['acme'])).toBe('acme');
    expect(closest('abc', ['xyz'])).toBeUndefined();
    expect(closest('x', [])).toBeUndefined();
    // Ties: the first; nearer wins over earlier.
    expect(closest('abcd', ['abxx', 'xbcx'])).toBe('abxx');
    expect(closest('abcdefghijkl', ['abcdefghixxx', 'abcdefghijxx'])).toBe('abcdefghijxx');
    // Close enough: 2 edits always, a third of the word's length when longer.
    expect(closest('ab', ['xy'])).toBe('xy');
    expect(closest('abcdefghi', ['abcdefxyz'])).toBe('abcdefxyz');
    expect(closest('abcdefghi', ['abcdewxyz'])).toBeUndefined();
    expect(closest('abcdefgh', ['abcdefxy'])).toBe('abcdefxy');
    expect(closest('abcdefgh', ['abcdexyz'])).toBeUndefined();
    // Insertions and deletions count one each.
    expect(closest('abcdef', ['abcdefgh'])).toBe('abcdefgh');
    expect(closest('abcdefgh', ['abcdef'])).toBe('abcdef');
    expect(closest('bcdefgh', ['abcdefgh', 'zzzzzzz'])).toBe('abcdefgh');
    // Over 64 characters no distance is computed: no suggestion.
    expect(closest('a'.repeat(70), ['a'.repeat(70)])).toBeUndefined();
    expect(closest('a'.repeat(64), ['a'.repeat(64)])).toBe('a'.repeat(64));
    expect(closest('a'.repeat(65), ['a'.repeat(64)])).toBeUndefined();
    expect(closest('a'.repeat(64), ['a'.repeat(65)])).toBeUndefined();
    // Past 64 characters the distance is the length difference plus 64: a very long word can still match.
    expect(closest('a'.repeat(200), ['a'.repeat(199)])).toBe('a'.repeat(199));
    expect(closest('a'.repeat(200), ['a'.repeat(100)])).toBeUndefined();
  });
});
