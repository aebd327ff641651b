import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Yaml } from 'cdk8s';
import { NODE_OPTIONS, formatMemory, indexFileName, loadCatalog, partFileName, plan } from '@botshard/runtime';
import { buildPlatformApp, labelProblem, nameProblem, nameRuleOf } from '../../constructs/index';
import { K8sObject, exampleCatalogInput, ofKind, synthInput, validateSchema, catalogMaps } from './support';

const example = synthInput(exampleCatalogInput());
const workloads = ofKind(example.objects, 'Deployment');

/** The catalog the ConfigMaps hold, read back through the runtime's own loader from a temp folder. */
function readBack(objects: K8sObject[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-catalog-'));
  try {
    for (const cm of catalogMaps(objects)) for (const [file, data] of Object.entries(cm.data as Record<string, string>)) fs.writeFileSync(path.join(dir, file), data);
    return loadCatalog(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('BotPlatform on the example catalog (bots.config.ts)', () => {
  it('synthesizes a platform chart and one chart per pool group', () => {
    expect([...example.charts.keys()]).toEqual(['platform', 'pool-group-realtime', 'pool-group-batch']);
    const kinds = (chart: string) => example.charts.get(chart)!.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds('platform')).toEqual([
      'Namespace/botshard',
      'ServiceAccount/botshard-pool',
      'ServiceAccount/botshard-router',
      'PriorityClass/botshard-realtime',
      'ConfigMap/botshard-catalog-0000',
      'ConfigMap/botshard-catalog-index-0000',
      'Deployment/botshard-router',
      'Service/botshard-router',
      'PodDisruptionBudget/botshard-router',
      'HorizontalPodAutoscaler/botshard-router',
      'NetworkPolicy/botshard-router',
      'Service/botshard-pool-replicas',
      'PodMonitor/botshard-pool-metrics',
      'PodMonitor/botshard-router-metrics',
      'PrometheusRule/botshard-alerts',
      'ConfigMap/botshard-dashboard',
    ]);
    const topology = plan(example.catalog);
    for (const group of ['realtime', 'batch']) {
      const pools = topology.pools.filter((p) => p.group === group).map((p) => p.name);
      expect(kinds(`pool-group-${group}`)).toEqual(pools.flatMap((p) => ['Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'NetworkPolicy'].map((k) => `${k}/${p}`)));
    }
    expect(kinds('pool-group-realtime')).toContain('Deployment/acme-vip');
  });

  it('matches the snapshot', () => {
    expect(Object.fromEntries(example.charts)).toMatchSnapshot();
  });

  it('validates every object against the Kubernetes schema (kubernetes-models v4)', () => {
    for (const obj of example.objects) expect(() => validateSchema(obj)).not.toThrow();
    // The validator is live: a wrong type is caught.
    const bad = JSON.parse(JSON.stringify(workloads[0]));
    bad.spec.template.spec.containers[0].resources.limits.memory = { bytes: 1 };
    expect(() => validateSchema(bad)).toThrow();
  });

  it('gives every object a valid name, namespace and labels, and explicit app.kubernetes.io selectors', () => {
    for (const obj of example.objects) {
      expect(nameProblem(obj.metadata.name, nameRuleOf(obj.kind))).toBeUndefined();
      if (obj.kind !== 'Namespace' && obj.kind !== 'PriorityClass') expect(obj.metadata.namespace).toBe('botshard');
      for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) expect(labelProblem(k, v)).toBeUndefined();
      expect(obj.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'botshard', 'app.kubernetes.io/part-of': 'botshard', 'app.kubernetes.io/managed-by': 'cdk8s' });
      // No construct-path hashes: cdk8s would append 8 hex characters.
      expect(obj.metadata.name).not.toMatch(/-c8[0-9a-f]{6}$/);
      expect(JSON.stringify(obj)).not.toContain('cdk8s.io/metadata.addr');
    }
    for (const d of workloads) {
      const selector = d.spec.selector.matchLabels;
      expect(Object.keys(selector).sort()).toEqual(['app.kubernetes.io/component', 'app.kubernetes.io/instance', 'app.kubernetes.io/name', 'app.kubernetes.io/part-of']);
      expect(selector['app.kubernetes.io/instance']).toBe(d.metadata.name);
      expect(d.spec.template.metadata.labels).toMatchObject(selector);
      // Service, PDB, HPA and NetworkPolicy of the workload share its name and selector.
      const same = example.objects.filter((o) => o.metadata.name === d.metadata.name && o.kind !== 'Deployment' && o.kind !== 'ServiceAccount');
      expect(same.map((o) => o.kind).sort()).toEqual(['HorizontalPodAutoscaler', 'NetworkPolicy', 'PodDisruptionBudget', 'Service']);
      expect(same.find((o) => o.kind === 'Service')!.spec.selector).toEqual(selector);
      expect(same.find((o) => o.kind === 'PodDisruptionBudget')!.spec.selector.matchLabels).toEqual(selector);
      expect(same.find((o) => o.kind === 'NetworkPolicy')!.spec.podSelector.matchLabels).toEqual(selector);
      expect(same.find((o) => o.kind === 'HorizontalPodAutoscaler')!.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name });
    }
  });

  it('runs every workload under the restricted Pod Security Standard, read-only, without a token', () => {
    expect(workloads.length).toBe(6);
    for (const d of workloads) {
      const pod = d.spec.template.spec;
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.enableServiceLinks).toBe(false);
      expect(pod.serviceAccountName).toMatch(/^botshard-(pool|router)$/);
      expect(pod.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.hostNetwork ?? false).toBe(false);
      for (const c of pod.containers) {
        expect(c.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
        expect(c.securityContext.runAsUser).toBeGreaterThan(0);
        expect(c.resources.limits.memory).toBe(c.resources.requests.memory);
        if (c.name === 'haproxy') continue; // the router's HAProxy: its own image, checked below
        expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
        // The root filesystem is read-only: /tmp is a small bounded scratch volume, on disk (not in memory).
        expect(pod.volumes.find((v: any) => v.name === 'tmp').emptyDir).toEqual({ sizeLimit: '64Mi' });
        expect(c.image).toBe('ghcr.io/botshard/runtime:0.1.0');
      }
    }
    const ns = ofKind(example.objects, 'Namespace')[0];
    expect(ns.metadata.labels!['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const sa of ofKind(example.objects, 'ServiceAccount')) expect(sa.automountServiceAccountToken).toBe(false);
  });

  it('probes the OIP health paths and terminates gracefully (grace > preStop + drain)', () => {
    for (const d of workloads) {
      const pod = d.spec.template.spec;
      // The container that serves the requests (the router's HAProxy, in the HAProxy data plane).
      const c = pod.containers.find((x: any) => x.ports.some((p: any) => p.name === 'http'));
      expect(c.startupProbe.httpGet.path).toBe('/v2/health/live');
      expect(c.livenessProbe.httpGet.path).toBe('/v2/health/live');
      expect(c.readinessProbe.httpGet.path).toBe('/v2/health/ready');
      for (const p of [c.startupProbe, c.livenessProbe, c.readinessProbe]) expect(p.httpGet.port).toBe('http');
      const runtime = pod.containers[0];
      const env = Object.fromEntries(runtime.env.map((e: any) => [e.name, e.value]));
      const drain = Number(env.BOTSHARD_DRAIN_SECONDS);
      const preStop = Number(runtime.lifecycle.preStop.exec.command[1]);
      expect(runtime.lifecycle.preStop.exec.command[0]).toBe('sleep');
      expect(preStop).toBeGreaterThan(0);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStop + drain);
      // HAProxy serves until the control plane has drained: its pause covers the control plane's preStop and drain.
      if (c !== runtime) expect(c.lifecycle.preStop.exec.command).toEqual(['sleep', String(preStop + drain)]);
      const group = example.catalog.groups.find((g) => g.name === d.metadata.labels?.['botshard.io/pool-group']);
      if (group) expect(drain * 1000).toBeGreaterThanOrEqual(group.timeoutMs);
    }
  });

  it('passes the runtime contract to pools: pool name, catalog folder, ports; group settings only through the catalog', () => {
    const topology = plan(example.catalog);
    for (const pool of topology.pools) {
      const d = workloads.find((w) => w.metadata.name === pool.name)!;
      const group = example.catalog.groups.find((g) => g.name === pool.group)!;
      const c = d.spec.template.spec.containers[0];
      expect(c.args).toEqual(['pool']);
      const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
      expect(env).toMatchObject({
        BOTSHARD_POOL: pool.name,
        BOTSHARD_CATALOG: '/etc/botshard/catalog',
        BOTSHARD_MODELS: '/models',
        BOTSHARD_PORT: '8080',
        BOTSHARD_METRICS_PORT: '9090',
      });
      // A group's timeout and concurrency come from the catalog the pool watches: an environment value
      // would win over it and keep a running pool on the old value until the Deployment rolls.
      expect(env.BOTSHARD_TIMEOUT_MS).toBeUndefined();
      expect(env.BOTSHARD_CONCURRENCY).toBeUndefined();
      // Memory from the group's budget, not from the bots the pool holds today.
      expect(pool.used).toBeLessThan(pool.budget);
      expect(c.resources.requests.memory).toBe(formatMemory(group.memory));
      expect(c.resources.limits.memory).toBe(formatMemory(group.memory));
      // CPU from the group's class; one inference worker per whole CPU of the limit (Node sees the node's CPUs).
      expect(c.resources.requests.cpu).toBe(group.realtime ? '500m' : '250m');
      expect(c.resources.limits.cpu).toBe(group.realtime ? '2' : '1');
      expect(env.BOTSHARD_WORKERS).toBe(group.realtime ? '2' : '1');
      // The model cache holds at most the pool's budget; /tmp is small scratch.
      const volumes = d.spec.template.spec.volumes;
      expect(volumes.find((v: any) => v.name === 'models').emptyDir).toEqual({ sizeLimit: formatMemory(group.memory) });
      expect(volumes.find((v: any) => v.name === 'tmp').emptyDir).toEqual({ sizeLimit: '64Mi' });
      // The catalog folder: one projected volume, read-only, never subPath.
      const mount = c.volumeMounts.find((m: any) => m.name === 'catalog');
      expect(mount).toEqual({ name: 'catalog', mountPath: '/etc/botshard/catalog', readOnly: true });
      for (const m of c.volumeMounts) expect(m.subPath).toBeUndefined();
      const volume = d.spec.template.spec.volumes.find((v: any) => v.name === 'catalog');
      expect(volume.projected.sources[0]).toEqual({ configMap: { name: 'botshard-catalog-0000' } });
      expect(d.spec.template.spec.priorityClassName).toBe(group.priorityClassName);
      expect(d.spec.template.spec.tolerations).toEqual(group.tolerations.length ? group.tolerations : undefined);
      expect(d.spec.template.spec.nodeSelector).toEqual(Object.keys(group.nodeSelector).length ? group.nodeSelector : undefined);
      // No catalog generation in the pod template: a catalog change must not roll the pools.
      expect(JSON.stringify(d.spec.template)).not.toContain(example.catalog.generation);
    }
  });

  it('lets the HPA own replicas: no spec.replicas, real-time minimum 2, PDB with maxUnavailable and AlwaysAllow', () => {
    for (const d of workloads) {
      expect(d.spec.replicas).toBeUndefined();
      const hpa = example.objects.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata.name === d.metadata.name)!;
      const pdb = example.objects.find((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === d.metadata.name)!;
      const group = example.catalog.groups.find((g) => g.name === d.metadata.labels!['botshard.io/pool-group']);
      const realtime = group ? group.realtime : true; // the router serves live traffic
      if (realtime) expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
      if (group) expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([group.replicas.min, group.replicas.max]);
      expect(hpa.spec.metrics[0].resource).toEqual({ name: 'cpu', target: { type: 'Utilization', averageUtilization: group?.targetCpuPercent ?? 70 } });
      expect(pdb.spec.maxUnavailable).toBe(1);
      expect(pdb.spec.minAvailable).toBeUndefined();
      expect(pdb.spec.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
      // Scale down slowly: one pod a minute after five quiet minutes, so a dip does not drop warm pools.
      expect(hpa.spec.behavior).toEqual({ scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } });
      expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name });
      const spread = d.spec.template.spec.topologySpreadConstraints;
      expect(spread.map((s: any) => s.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
      for (const s of spread) expect(s.labelSelector.matchLabels).toEqual(d.spec.selector.matchLabels);
      expect(spread[1].whenUnsatisfiable).toBe(realtime ? 'DoNotSchedule' : 'ScheduleAnyway');
    }
  });

  it('admits traffic to pools only from the router, and metrics only from the monitoring namespace', () => {
    const router = workloads.find((d) => d.metadata.name === 'botshard-router')!;
    const routerPod = router.spec.template.metadata.labels;
    for (const np of ofKind(example.objects, 'NetworkPolicy')) {
      const metrics = np.spec.ingress.find((r: any) => r.ports[0].port === 9090);
      expect(metrics.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
      expect(np.spec.ingress).toHaveLength(2);
      if (np.metadata.name === 'botshard-router') continue;
      const http = np.spec.ingress.find((r: any) => r.ports[0].port === 8080);
      expect(http.from).toHaveLength(1);
      const selector = http.from[0].podSelector.matchLabels;
      expect(http.from[0].namespaceSelector).toBeUndefined();
      // The selector picks the router's pods and nothing else of the platform.
      for (const [k, v] of Object.entries(selector)) expect(routerPod[k]).toBe(v);
      for (const d of workloads.filter((w) => w !== router)) expect(Object.entries(selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v)).toBe(false);
      expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    }
  });

  const DNS = { ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }] };
  const poolPolicies = (objects: K8sObject[]) => ofKind(objects, 'NetworkPolicy').filter((np) => np.metadata.name !== 'botshard-router');

  it('lets pools reach DNS only when every model comes from the model root', () => {
    expect(poolPolicies(example.objects).length).toBeGreaterThan(1);
    for (const np of poolPolicies(example.objects)) expect(np.spec.egress).toEqual([DNS]);
  });

  it('lets pools reach HTTPS outside the metadata service when models come from s3:// or https://, or the ranges the catalog gives', () => {
    const remote = exampleCatalogInput();
    remote.bots[0].model.head = 's3://acme-models/heads/support.onnx';
    for (const np of poolPolicies(synthInput(remote).objects)) {
      expect(np.spec.egress).toEqual([
        DNS,
        { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] } }], ports: [{ port: 443, protocol: 'TCP' }] },
        { to: [{ ipBlock: { cidr: '::/0' } }], ports: [{ port: 443, protocol: 'TCP' }] },
      ]);
      validateSchema(np);
    }
    remote.platform.modelStoreEgress = [{ cidr: '10.0.40.0/24' }, { cidr: '192.168.0.0/16', except: ['192.168.7.0/24'], port: 9000 }];
    for (const np of poolPolicies(synthInput(remote).objects)) {
      expect(np.spec.egress).toEqual([
        DNS,
        { to: [{ ipBlock: { cidr: '10.0.40.0/24' } }], ports: [{ port: 443, protocol: 'TCP' }] },
        { to: [{ ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.7.0/24'] } }], ports: [{ port: 9000, protocol: 'TCP' }] },
      ]);
    }
  });

  it('refuses a model store range that is not a CIDR, naming the field', () => {
    const input = exampleCatalogInput();
    input.platform.modelStoreEgress = [{ cidr: '10.0.0.0' }, { cidr: '10.0.0.0/8', except: ['::1/129'] }];
    expect(() => synthInput(input)).toThrow(/platform\.modelStoreEgress\[0\]\.cidr: is not an IPv4 or IPv6 range in CIDR notation: "10\.0\.0\.0"[\s\S]*platform\.modelStoreEgress\[1\]\.except\[0\]/);
  });

  it('configures the router: pool URL template, no tenant keys when the catalog asks for no auth, no key material', () => {
    const router = workloads.find((d) => d.metadata.name === 'botshard-router')!;
    const c = router.spec.template.spec.containers[0];
    expect(c.args).toEqual(['haproxy']);
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
    expect(env).toEqual({
      BOTSHARD_CATALOG: '/etc/botshard/catalog',
      BOTSHARD_POOL_URL: 'http://{pool}.botshard.svc.cluster.local:8080',
      BOTSHARD_POOL_GRPC_URL: '{pool}.botshard.svc.cluster.local:8081',
      BOTSHARD_POOL_REPLICAS: 'http://botshard-pool-replicas.botshard.svc.cluster.local:8080',
      BOTSHARD_PORT: '8080',
      BOTSHARD_GRPC_PORT: '8081',
      BOTSHARD_METRICS_PORT: '9090',
      BOTSHARD_DRAIN_SECONDS: '65',
      BOTSHARD_HAPROXY_EXTERNAL: '1',
      BOTSHARD_HAPROXY_DIR: '/run/haproxy',
      BOTSHARD_HAPROXY_METRICS_PORT: '9101',
      NODE_OPTIONS: NODE_OPTIONS,
      MALLOC_MMAP_THRESHOLD_: '1048576',
    });
    // The router mounts only the placement index's ConfigMaps.
    const sources = router.spec.template.spec.volumes.find((v: any) => v.name === 'catalog').projected.sources.map((x: any) => x.configMap.name);
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.every((n: string) => n.startsWith('botshard-catalog-index-'))).toBe(true);
    expect(example.catalog.platform.auth).toBeUndefined(); // bots.config.ts sets auth: 'none'
    expect(router.spec.template.spec.volumes.find((v: any) => v.name === 'tenant-keys')).toBeUndefined();
    expect(ofKind(example.objects, 'Secret')).toEqual([]);
    const np = example.objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'botshard-router')!;
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    // The router reaches the pools' HTTP and gRPC ports and DNS, nothing else.
    expect(np.spec.egress).toEqual([
      { to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'botshard', 'app.kubernetes.io/part-of': 'botshard', 'app.kubernetes.io/component': 'pool' } } }], ports: [{ port: 8080, protocol: 'TCP' }, { port: 8081, protocol: 'TCP' }] },
      DNS,
    ]);
  });

  it('runs HAProxy beside the control plane by default (the data plane bench:router chose), the Node router alone with platform.router "node"', () => {
    const pod = workloads.find((d) => d.metadata.name === 'botshard-router')!.spec.template.spec;
    expect(example.catalog.platform.router).toBeUndefined();
    expect(pod.containers.map((c: any) => c.name)).toEqual(['control', 'haproxy']);
    const [control, haproxy] = pod.containers;
    expect(haproxy.image).toBe('haproxy:2.8.10-alpine');
    expect(haproxy.command.join(' ')).toContain('exec haproxy -W -db -S /run/haproxy/master.sock -f /run/haproxy/haproxy.cfg');
    expect(haproxy.ports.map((p: any) => [p.name, p.containerPort])).toEqual([['http', 8080], ['grpc', 8081], ['haproxy-metrics', 9101]]);
    // The control plane forwards gRPC itself (HAProxy carries REST).
    expect(control.ports.map((p: any) => [p.name, p.containerPort])).toEqual([['metrics', 9090]]);
    // Ready while HAProxy routes the current catalog (HAProxy's own readiness is its state map, kept by the control plane).
    expect(control.readinessProbe.httpGet).toEqual({ path: '/botshard/ready', port: 'metrics' });
    // The configuration, maps and sockets: one in-memory folder, in both containers.
    expect(pod.volumes.find((v: any) => v.name === 'haproxy-run').emptyDir).toEqual({ medium: 'Memory', sizeLimit: '64Mi' });
    for (const c of pod.containers) expect(c.volumeMounts).toContainEqual({ name: 'haproxy-run', mountPath: '/run/haproxy' });
    const np = example.objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'botshard-router')!;
    expect(np.spec.ingress[1].ports).toEqual([{ port: 9090, protocol: 'TCP' }, { port: 9101, protocol: 'TCP' }]);

    const input = exampleCatalogInput();
    input.platform.router = 'node';
    const node = ofKind(synthInput(input).objects, 'Deployment').find((d) => d.metadata.name === 'botshard-router')!.spec.template.spec;
    expect(node.containers.map((c: any) => [c.name, c.args])).toEqual([['router', ['router']]]);
    expect(node.volumes.find((v: any) => v.name === 'haproxy-run')).toBeUndefined();
    input.platform.router = 'envoy';
    expect(() => synthInput(input)).toThrow(/platform\.router: must be "haproxy" or "node", got "envoy"/);
  });

  it('mounts the tenant keys Secret, not optional, when the catalog requires keys', () => {
    const input = exampleCatalogInput();
    input.platform.auth = 'tenant-keys';
    const router = ofKind(synthInput(input).objects, 'Deployment').find((d) => d.metadata.name === 'botshard-router')!;
    const pod = router.spec.template.spec;
    expect(pod.volumes.find((v: any) => v.name === 'tenant-keys').secret).toEqual({ secretName: 'botshard-tenant-keys', optional: false, defaultMode: 0o440 });
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: 'tenant-keys', mountPath: '/etc/botshard/tenant-keys', readOnly: true });
    expect(pod.containers[0].env).toContainEqual({ name: 'BOTSHARD_TENANT_KEYS', value: '/etc/botshard/tenant-keys' });
  });

  it('stores the catalog in ConfigMaps under 1 MiB that read back to the same catalog', () => {
    const maps = catalogMaps(example.objects);
    expect(maps.map((m) => Object.keys(m.data))).toEqual([[partFileName(0)], [indexFileName(0)]]);
    for (const m of maps) expect(Buffer.byteLength(JSON.stringify(m))).toBeLessThan(1024 * 1024);
    expect(readBack(example.objects)).toEqual(example.catalog);
  });

  it('changes a ConfigMap, not a pod spec, when a bot is added to a pool that has room', () => {
    const input = exampleCatalogInput();
    const bot = { ...input.bots[0], id: 'acme-support-en2', model: { ...input.bots[0].model, memory: '1Mi' } };
    input.bots.push(bot);
    const after = synthInput(input);
    expect(after.catalog.generation).not.toBe(example.catalog.generation);
    expect(plan(after.catalog).pools.map((p) => p.name)).toEqual(plan(example.catalog).pools.map((p) => p.name));
    const byName = (objs: K8sObject[]) => new Map(objs.filter((o) => o.kind !== 'ConfigMap').map((o) => [`${o.kind}/${o.metadata.name}`, o]));
    expect(byName(after.objects)).toEqual(byName(example.objects));
    const cm = (objs: K8sObject[]) => catalogMaps(objs)[0].data[partFileName(0)];
    expect(cm(after.objects)).not.toEqual(cm(example.objects));
    expect(readBack(after.objects).bots.map((b) => b.id)).toContain('acme-support-en2');
  });

  it.each(['sharded', 'dedicated', 'single'] as const)('synthesizes the same bots with strategy %s', (strategy) => {
    const input = exampleCatalogInput();
    input.platform.strategy = strategy;
    const out = synthInput(input);
    const topology = plan(out.catalog);
    const deployments = ofKind(out.objects, 'Deployment').filter((d) => d.metadata.labels!['app.kubernetes.io/component'] === 'pool');
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(topology.pools.map((p) => p.name).sort());
    // Every bot of the catalog lands on a synthesized pool, and the ConfigMaps carry the same bots.
    const pools = new Set(deployments.map((d) => d.spec.template.spec.containers[0].env.find((e: any) => e.name === 'BOTSHARD_POOL').value));
    for (const bot of out.catalog.bots) expect(pools.has(topology.assignment.get(bot.id)!)).toBe(true);
    expect(readBack(out.objects).bots).toEqual(example.catalog.bots);
    if (strategy === 'dedicated') expect(deployments).toHaveLength(example.catalog.bots.length);
    if (strategy === 'single') expect(topology.pools.filter((p) => !p.dedicated).map((p) => p.group)).toEqual(['realtime', 'batch']);
    if (strategy === 'sharded') expect(deployments.length).toBeLessThan(example.catalog.bots.length);
    for (const obj of out.objects) expect(() => validateSchema(obj)).not.toThrow();
  });

  it('matches the committed dist/ (run `npm run synth` after changing bots.config.ts)', () => {
    const root = path.join(__dirname, '..', '..');
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-dist-'));
    try {
      buildPlatformApp(exampleCatalogInput(), {}, { outdir }).app.synth();
      const files = fs.readdirSync(outdir).sort();
      expect(files).toEqual(['platform.k8s.yaml', 'pool-group-batch.k8s.yaml', 'pool-group-realtime.k8s.yaml']);
      expect(fs.readdirSync(path.join(root, 'dist')).sort()).toEqual(files);
      for (const f of files) expect(fs.readFileSync(path.join(root, 'dist', f), 'utf8')).toBe(fs.readFileSync(path.join(outdir, f), 'utf8'));
      // Deterministic: a second synthesis is byte-identical.
      const again = Yaml.stringify(...synthInput(exampleCatalogInput()).objects);
      expect(again).toBe(Yaml.stringify(...example.objects));
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});
