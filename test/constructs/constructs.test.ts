import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Testing } from 'cdk8s';
import { NODE_OPTIONS, loadCatalog, openCatalog, parseCatalog, plan } from '@botshard/runtime';
import {
  BotPlatform,
  CatalogConfigMaps,
  InferencePool,
  InferencePoolProps,
  InferenceRouter,
  checkImage,
  checkLabels,
  checkName,
  nameProblem,
  quantity,
} from '../../constructs/index';
import { smallCatalog } from '../support/catalogs';
import { K8sObject, ofKind, validateSchema } from './support';


const small = parseCatalog(smallCatalog());

function pool(props: Partial<InferencePoolProps> = {}) {
  const chart = Testing.chart();
  const catalog = new CatalogConfigMaps(chart, 'catalog', { catalog: small });
  new InferencePool(chart, 'pool', { pool: 'realtime-abcde', group: 'realtime', catalog, memory: 512 * 1024 * 1024, realtime: true, ...props });
  return Testing.synth(chart) as K8sObject[];
}

describe('InferencePool', () => {
  it('synthesizes a Deployment, Service, PDB, HPA and NetworkPolicy named after the pool', () => {
    const objects = pool();
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'ConfigMap/botshard-catalog-0000',
      'ConfigMap/botshard-catalog-index-0000',
      'Deployment/realtime-abcde',
      'Service/realtime-abcde',
      'PodDisruptionBudget/realtime-abcde',
      'HorizontalPodAutoscaler/realtime-abcde',
      'NetworkPolicy/realtime-abcde',
    ]);
    for (const o of objects) validateSchema(o);
    expect(objects.slice(2)).toMatchSnapshot();
  });

  it('takes memory from its budget, applies non-real-time defaults, and honours overrides', () => {
    const [, , d, , , hpa] = pool({ pool: 'batch-abcde', group: 'batch', realtime: false, memory: 3 * 1024 ** 3, drainSeconds: 70, cpu: { request: '1', limit: '3' } });
    const c = d.spec.template.spec.containers[0];
    expect(c.resources).toEqual({ requests: { cpu: '1', memory: '3Gi' }, limits: { cpu: '3', memory: '3Gi' } });
    expect(hpa.spec.minReplicas).toBe(1);
    expect(c.env.find((e: any) => e.name === 'BOTSHARD_DRAIN_SECONDS').value).toBe('70');
    expect(c.env.find((e: any) => e.name === 'NODE_OPTIONS').value).toBe(NODE_OPTIONS);
    // glibc returns a freed model buffer of 1 MiB or more at once (node-options.ts).
    expect(c.env.find((e: any) => e.name === 'MALLOC_MMAP_THRESHOLD_').value).toBe('1048576');
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBe(80);
    expect(d.spec.template.spec.topologySpreadConstraints[1].whenUnsatisfiable).toBe('ScheduleAnyway');
  });

  it.each([
    [{ image: 'ghcr.io/botshard/runtime:latest' }, /"latest" tag/],
    [{ image: 'ghcr.io/botshard/runtime' }, /has no tag/],
    [{ image: 'localhost:5000/runtime' }, /has no tag/],
    [{ replicas: { min: 1, max: 4 } }, /real-time workload needs replicas.min of at least 2.*got 1/],
    [{ replicas: { min: 3, max: 2 } }, /replicas.max must be .* at least replicas.min \(3\), got 2/],
    [{ drainSeconds: 1, timeoutMs: 5000 }, /drainSeconds 1 is shorter than the request timeout of 5000 ms.*at least 5/],
    [{ drainSeconds: 10, preStopSeconds: 5, terminationGracePeriodSeconds: 15 }, /terminationGracePeriodSeconds 15 must be longer than preStopSeconds \+ drainSeconds \(5 \+ 10\).*at least 16/],
    [{ runAsUser: 0 }, /runAsUser must be a non-zero integer.*got 0/],
    [{ pool: 'Realtime_1' }, /pool name "Realtime_1" is not a DNS-1035 label/],
    [{ pool: '1realtime' }, /pool name "1realtime" is not a DNS-1035 label/],
    [{ pool: `p${'x'.repeat(63)}` }, /is 64 characters long, more than the 63/],
    [{ cpu: { request: '2', limit: '1' } }, /cpu.limit "1" is below cpu.request "2"/],
    [{ cpu: { request: 'lots', limit: '1' } }, /cpu.request must be a CPU quantity.*got "lots"/],
    [{ targetCpuPercent: 0 }, /targetCpuPercent must be a whole percentage from 1 to 100, got 0/],
  ] as [Partial<InferencePoolProps>, RegExp][])('rejects %j early with the value and a fix', (props, message) => {
    expect(() => pool(props)).toThrow(message);
  });

  it('accepts an image pinned by digest', () => {
    const image = `ghcr.io/botshard/runtime@sha256:${'a'.repeat(64)}`;
    expect(pool({ image })[2].spec.template.spec.containers[0].image).toBe(image);
  });
});

describe('InferenceRouter', () => {
  it('uses the namespace and cluster domain in the pool URL and the Secret name given', () => {
    const chart = Testing.chart();
    const catalog = new CatalogConfigMaps(chart, 'catalog', { catalog: small, namespace: 'bots', name: 'acme' });
    const router = new InferenceRouter(chart, 'router', { catalog, timeoutMs: 30000, clusterDomain: 'corp.local', auth: 'tenant-keys', tenantKeysSecret: 'acme-keys', clientNamespaces: ['ingress-nginx'] });
    expect(router.poolUrlTemplate).toBe('http://{pool}.bots.svc.corp.local:8080');
    const objects = Testing.synth(chart) as K8sObject[];
    for (const o of objects) validateSchema(o);
    const d = ofKind(objects, 'Deployment')[0];
    expect(d.metadata).toMatchObject({ name: 'botshard-router', namespace: 'bots' });
    // Required keys: the Secret is not optional, so a missing one keeps the pod from starting.
    expect(d.spec.template.spec.volumes.find((v: any) => v.name === 'tenant-keys').secret).toMatchObject({ secretName: 'acme-keys', optional: false });
    expect(d.spec.template.spec.containers[0].env).toContainEqual({ name: 'BOTSHARD_TENANT_KEYS', value: '/etc/botshard/tenant-keys' });
    const env = Object.fromEntries(d.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    expect(Number(env.BOTSHARD_DRAIN_SECONDS)).toBeGreaterThanOrEqual(30);
    const np = ofKind(objects, 'NetworkPolicy')[0];
    expect(np.spec.ingress[0].from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }]);
  });

  it.each(['node', 'haproxy'] as const)('serves gRPC in the %s data plane: container, Service (appProtocol grpc) and NetworkPolicies, probes on HTTP', (dataPlane) => {
    const chart = Testing.chart();
    const catalog = new CatalogConfigMaps(chart, 'catalog', { catalog: small, namespace: 'bots' });
    const router = new InferenceRouter(chart, 'router', { catalog, timeoutMs: 2000, dataPlane });
    expect(router.poolGrpcTemplate).toBe('{pool}.bots.svc.cluster.local:8081');
    new InferencePool(chart, 'pool', { catalog, pool: 'realtime-abcde', group: 'realtime', realtime: true, memory: 512 * 1024 * 1024 });
    const objects = Testing.synth(chart) as K8sObject[];
    for (const o of objects) validateSchema(o);
    for (const component of ['router', 'pool']) {
      const d = ofKind(objects, 'Deployment').find((o) => o.metadata.labels?.['app.kubernetes.io/component'] === component)!;
      const containers = d.spec.template.spec.containers;
      const serving = containers.find((c: any) => (c.ports ?? []).some((p: any) => p.name === 'grpc'));
      expect([component, serving?.ports.find((p: any) => p.name === 'grpc').containerPort]).toEqual([component, 8081]);
      // The HAProxy mode: HAProxy binds gRPC on the port the control plane's configuration names.
      expect([component, serving.name]).toEqual([component, component === 'router' && dataPlane === 'haproxy' ? 'haproxy' : containers[0].name]);
      expect(containers[0].env).toContainEqual({ name: 'BOTSHARD_GRPC_PORT', value: '8081' });
      for (const c of containers) for (const probe of ['livenessProbe', 'readinessProbe']) if (c[probe]?.httpGet) expect(c[probe].httpGet.port).not.toBe('grpc');
      const service = ofKind(objects, 'Service').find((o) => o.metadata.name === d.metadata.name)!;
      expect(service.spec.ports).toContainEqual({ name: 'grpc', port: 8081, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'grpc' });
      const np = ofKind(objects, 'NetworkPolicy').find((o) => o.metadata.name === d.metadata.name)!;
      expect(np.spec.ingress[0].ports).toEqual([{ port: 8080, protocol: 'TCP' }, { port: 8081, protocol: 'TCP' }]);
    }
    const routerEnv = ofKind(objects, 'Deployment').find((o) => o.metadata.name === router.name)!.spec.template.spec.containers[0].env;
    // Every container has readiness and liveness probes that mean something: in the HAProxy mode the control
    // container's say its loop is alive and HAProxy routes the current catalog (policy check R04).
    const routerContainers = ofKind(objects, 'Deployment').find((o) => o.metadata.name === router.name)!.spec.template.spec.containers;
    for (const c of routerContainers) expect([c.name, Boolean(c.readinessProbe?.httpGet), Boolean(c.livenessProbe?.httpGet)]).toEqual([c.name, true, true]);
    if (dataPlane === 'haproxy') {
      const control = routerContainers.find((c: any) => c.name === 'control');
      expect([control.readinessProbe.httpGet, control.livenessProbe.httpGet, control.startupProbe.httpGet]).toEqual([
        { path: '/botshard/ready', port: 'metrics' },
        { path: '/botshard/live', port: 'metrics' },
        { path: '/botshard/live', port: 'metrics' },
      ]);
    }
    expect(routerEnv).toContainEqual({ name: 'BOTSHARD_POOL_GRPC_URL', value: '{pool}.bots.svc.cluster.local:8081' });
    const routerPolicy = ofKind(objects, 'NetworkPolicy').find((o) => o.metadata.name === router.name)!;
    expect(routerPolicy.spec.egress[0].ports).toEqual([{ port: 8080, protocol: 'TCP' }, { port: 8081, protocol: 'TCP' }]);
    // Every pool replica, for the status of model rollouts: a headless Service over all pool pods, which the router's egress reaches.
    expect(routerEnv).toContainEqual({ name: 'BOTSHARD_POOL_REPLICAS', value: 'http://botshard-pool-replicas.bots.svc.cluster.local:8080' });
    const replicas = ofKind(objects, 'Service').find((o) => o.metadata.name === 'botshard-pool-replicas')!;
    expect(replicas.spec).toEqual({ clusterIP: 'None', selector: routerPolicy.spec.egress[0].to[0].podSelector.matchLabels, ports: [{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP', appProtocol: 'http' }] });
    const pool = ofKind(objects, 'Deployment').find((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'pool')!;
    for (const [k, v] of Object.entries(replicas.spec.selector)) expect(pool.spec.template.metadata.labels[k]).toBe(v);
  });

  it('refuses fewer than 2 replicas', () => {
    const chart = Testing.chart();
    const catalog = new CatalogConfigMaps(chart, 'catalog', { catalog: small });
    expect(() => new InferenceRouter(chart, 'router', { catalog, timeoutMs: 2000, replicas: { min: 1, max: 3 } })).toThrow(/at least 2/);
  });
});

describe('CatalogConfigMaps', () => {
  it('splits a catalog over several ConfigMaps that read back to the same catalog, and mounts them as one folder', () => {
    const input = smallCatalog();
    for (let i = 0; i < 300; i++) input.bots.push({ ...input.bots[1], id: `bulk-${i}`, intents: [{ name: 'x'.repeat(40), examples: ['y'.repeat(100)] }, { name: 'z' }] });
    const catalog = parseCatalog(input);
    const chart = Testing.chart();
    const maps = new CatalogConfigMaps(chart, 'catalog', { catalog, maxPartBytes: 16 * 1024, reservedParts: 2 });
    const objects = Testing.synth(chart) as K8sObject[];
    expect(objects.length).toBeGreaterThan(2);
    expect([...maps.configMapNames, ...maps.indexConfigMapNames]).toEqual(objects.map((o) => o.metadata.name));
    expect(maps.indexConfigMapNames.length).toBeGreaterThan(0);
    const volume = maps.volume('catalog');
    expect(maps.volumeConfigMapNames).toEqual(maps.configMapNames);
    expect(maps.indexVolumeConfigMapNames).toEqual([...maps.indexConfigMapNames, 'botshard-catalog-index-0001']);
    expect(volume.projected!.sources!.map((s) => s.configMap!.name)).toEqual([...maps.volumeConfigMapNames, ...maps.indexVolumeConfigMapNames]);
    // Each list's first ConfigMap is required, the rest optional.
    expect(volume.projected!.sources!.map((s) => s.configMap!.optional ?? false)).toEqual([...maps.volumeConfigMapNames.map((_, i) => i > 0), ...maps.indexVolumeConfigMapNames.map((_, i) => i > 0)]);
    expect(maps.indexVolume('catalog').projected!.sources!.map((s) => s.configMap!.name)).toEqual(maps.indexVolumeConfigMapNames);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-parts-'));
    try {
      for (const o of objects) {
        validateSchema(o);
        expect(Buffer.byteLength(JSON.stringify(o.data))).toBeLessThan(16 * 1024 + 4096);
        for (const [file, data] of Object.entries(o.data as Record<string, string>)) fs.writeFileSync(path.join(dir, file), data);
      }
      expect(loadCatalog(dir)).toEqual(catalog);
      // The index the ConfigMaps carry plans like the catalog and points at each bot's definition.
      const source = openCatalog(dir);
      expect(plan(source.index).assignment).toEqual(plan(catalog).assignment);
      expect(source.definitions(catalog.bots.map((b) => b.id))).toEqual(catalog.bots);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists reserved optional ConfigMaps so that the catalog can grow without changing pod specs', () => {
    const chart = Testing.chart();
    const maps = new CatalogConfigMaps(chart, 'catalog', { catalog: small, reservedParts: 4 });
    expect(maps.configMapNames).toEqual(['botshard-catalog-0000']);
    const reserved = (kind: string) => [0, 1, 2, 3].map((i) => [`botshard-${kind}-000${i}`, i > 0]);
    expect(maps.volume('c').projected!.sources!.map((s) => [s.configMap!.name, s.configMap!.optional ?? false])).toEqual([...reserved('catalog'), ...reserved('catalog-index')]);
    expect(maps.indexVolume('c').projected!.sources!.map((s) => [s.configMap!.name, s.configMap!.optional ?? false])).toEqual(reserved('catalog-index'));
  });

  it('rejects a part size that leaves no room under the 1 MiB limit', () => {
    expect(() => new CatalogConfigMaps(Testing.chart(), 'c', { catalog: small, maxPartBytes: 1024 * 1024 })).toThrow(/maxPartBytes must be .* got 1048576/);
  });
});

describe('BotPlatform', () => {
  it('must be created in an App, and rejects settings for groups the catalog lacks', () => {
    expect(() => new BotPlatform(Testing.chart() as unknown as App, 'p', { catalog: small })).toThrow(/directly in an App/);
    expect(() => new BotPlatform(Testing.app(), 'p', { catalog: small, groups: { realtim: {} } })).toThrow(/"realtim", which the catalog does not declare: use one of realtime, batch/);
  });

  it('rejects a latest image and a topology of another catalog', () => {
    expect(() => new BotPlatform(Testing.app(), 'p', { catalog: small, image: 'botshard:latest' })).toThrow(/latest/);
    const other = parseCatalog({ ...smallCatalog(), platform: { namespace: 'other' } });
    expect(() => new BotPlatform(Testing.app(), 'p', { catalog: small, topology: plan(other) })).toThrow(/planned for catalog generation/);
  });

  it('reports a real-time group with one replica as a construct error naming the fix', () => {
    const input = smallCatalog();
    input.groups[0].replicas = { min: 1, max: 3 };
    expect(() => new BotPlatform(Testing.app(), 'p', { catalog: parseCatalog(input) })).toThrow(/real-time workload needs replicas.min of at least 2.*raise groups\[\]\.replicas\.min of "realtime"/);
  });

  it('applies per-group settings and a custom platform name everywhere', () => {
    const app = Testing.app();
    const p = new BotPlatform(app, 'p', { catalog: small, name: 'acme', groups: { batch: { cpu: { request: '2', limit: '4' } } }, createNamespace: false });
    const objects = app.charts.flatMap((c) => Testing.synth(c) as K8sObject[]);
    expect(ofKind(objects, 'Namespace')).toEqual([]);
    expect(p.router.name).toBe('acme-router');
    const batch = ofKind(objects, 'Deployment').find((d) => d.metadata.labels!['botshard.io/pool-group'] === 'batch')!;
    expect(batch.spec.template.spec.containers[0].resources.requests.cpu).toBe('2');
    expect(batch.spec.template.spec.serviceAccountName).toBe('acme-pool');
    for (const o of objects) expect(o.metadata.labels!['app.kubernetes.io/part-of']).toBe('acme');
  });
});

describe('names', () => {
  it.each([
    ['pool-1', 'dns-1035-label', undefined],
    ['1pool', 'dns-1035-label', /DNS-1035/],
    ['1pool', 'dns-1123-label', undefined],
    ['a.b', 'dns-1123-label', /dns-1123-label/],
    ['a.b', 'dns-1123-subdomain', undefined],
    ['A', 'dns-1123-subdomain', /dns-1123-subdomain/],
    ['', 'dns-1123-label', /empty/],
  ] as const)('%j as %s', (value, rule, problem) => {
    const p = nameProblem(value, rule);
    if (problem) expect(p).toMatch(problem);
    else expect(p).toBeUndefined();
  });

  it('throws with the value and the fix', () => {
    expect(() => checkName('Bad_Name', 'dns-1123-label', 'pool group name', 'rename it')).toThrow('pool group name "Bad_Name" is not a dns-1123-label name (lower-case letters, digits and "-", starting and ending with a letter or digit): rename it');
    expect(() => checkLabels({ 'botshard.io/x': 'v'.repeat(64) }, 'labels')).toThrow(/64 characters long, more than 63/);
    expect(() => checkLabels({ 'bad key/x/y': 'v' }, 'labels')).toThrow(/label key/);
  });

  it('renders exact quantities', () => {
    expect([quantity(512 * 1024 ** 2), quantity(1024 ** 3), quantity(1536 * 1024), quantity(1000)]).toEqual(['512Mi', '1Gi', '1536Ki', '1000']);
    expect(() => quantity(0)).toThrow(/positive/);
    expect(checkImage('registry.example.com:5000/botshard/runtime:1.2.3', 'x')).toBe('registry.example.com:5000/botshard/runtime:1.2.3');
  });
});
