import { Construct } from 'constructs';
import * as k8s from 'cdk8s-plus-27/lib/imports/k8s';
import { Auth, CONTROL_LIVE_PATH, CONTROL_READY_PATH, NODE_OPTIONS, PROCESS_ENV, RouterKind } from '@botshard/runtime';
import { CatalogConfigMaps } from './catalog-config-maps';
import { LABEL_VERSION, checkName, objectLabels, selectorLabels } from './names';
import { RunAsProps, _runAs, containerSecurityContext } from './security';
import {
  CATALOG_MOUNT,
  CpuProps,
  DEFAULT_IMAGE,
  GRPC_PORT,
  HTTP_PORT,
  METRICS_PORT,
  ReplicaBounds,
  TENANT_KEYS_MOUNT,
  TerminationProps,
  _checkCpu,
  _deployment,
  _checkPercent,
  _checkReplicas,
  _dnsEgress,
  _metricsIngress,
  _ports,
  _servingPorts,
  _probes,
  _scrapeAnnotations,
  _spread,
  _termination,
  _workloadCompanions,
  checkImage,
  quantity,
} from './workload';

export interface InferenceRouterProps extends TerminationProps, RunAsProps {
  /** The catalog the router routes by. */
  readonly catalog: CatalogConfigMaps;
  /** The longest request timeout of any pool group, in milliseconds: the drain default covers it. */
  readonly timeoutMs: number;
  /** Namespace. @default - the namespace of the catalog ConfigMaps */
  readonly namespace?: string;
  /** Platform name: the router is `<platform>-router`. @default "botshard" */
  readonly platform?: string;
  /** Runtime image, pinned by tag (never `latest`) or digest. @default "ghcr.io/botshard/runtime:0.1.0" */
  readonly image?: string;
  /** Cluster DNS domain in the pool URL template. @default "cluster.local" */
  readonly clusterDomain?: string;
  /** How the router authenticates callers (the catalog's `platform.auth`). With "tenant-keys" the keys Secret is mounted, not optional: a pod without it does not start. @default "none" */
  readonly auth?: Auth;
  /** Secret holding the tenant API key hashes, mounted at /etc/botshard/tenant-keys when `auth` is "tenant-keys"; no key material is synthesized. @default "botshard-tenant-keys" */
  readonly tenantKeysSecret?: string;
  /** Replica bounds of the autoscaler, which owns `spec.replicas` (at least 2: the router serves live traffic). @default { min: 2, max: 10 } */
  readonly replicas?: ReplicaBounds;
  /** Target average CPU utilisation of the autoscaler, in percent. @default 70 */
  readonly targetCpuPercent?: number;
  /** CPU request and limit. @default { request: "250m", limit: "1" } */
  readonly cpu?: CpuProps;
  /** Memory request and limit in bytes (routing tables of two catalog generations). @default 536870912 (512 MiB) */
  readonly memory?: number;
  /** Namespaces whose pods may call the router; empty for any source (ingress controllers, other clusters). @default [] */
  readonly clientNamespaces?: readonly string[];
  /** Namespace allowed to scrape the metrics port. @default "monitoring" */
  readonly monitoringNamespace?: string;
  /** Service account of the pods (its token is never mounted). @default "<platform>-router" */
  readonly serviceAccountName?: string;
  /** PriorityClass of the pods. @default - none */
  readonly priorityClassName?: string;
  /**
   * What carries the requests (the catalog's `platform.router`). "haproxy": an HAProxy container per pod,
   * driven by the control plane (`botshard haproxy`) through a shared in-memory folder; "node": the Node
   * router alone. @default "haproxy"
   */
  readonly dataPlane?: RouterKind;
  /** HAProxy image (2.4 or later, with `sh`), pinned by tag or digest. @default "haproxy:2.8.10-alpine" */
  readonly haproxyImage?: string;
  /** CPU request and limit of the HAProxy container. @default { request: "250m", limit: "1" } */
  readonly haproxyCpu?: CpuProps;
  /** Memory request and limit of the HAProxy container in bytes. @default 268435456 (256 MiB) */
  readonly haproxyMemory?: number;
}

/** Port of HAProxy's Prometheus exporter in the HAProxy data plane. */
export const HAPROXY_METRICS_PORT = 9101;
/** The folder the control plane and HAProxy share: configuration, maps, sockets. */
const HAPROXY_RUN = '/run/haproxy';

/**
 * The inference router: Deployment, Service, PDB, HPA and NetworkPolicy. It forwards each request to
 * `http://{pool}.<namespace>.svc.<domain>:8080`, the pool that placement gives the bot.
 */
export class InferenceRouter extends Construct {
  /** Name of the router's Deployment and Service. */
  public readonly name: string;
  /** The pool URL template the router fills with a pool name. */
  public readonly poolUrlTemplate: string;
  /** Where the router reaches every pool replica (a headless Service over all pool pods), for the status of model rollouts. */
  public readonly poolReplicasUrl: string;
  /** Where the router reaches each pool's gRPC endpoint (`{pool}.<namespace>.svc.<domain>:8081`). */
  public readonly poolGrpcTemplate: string;
  /** Labels the Deployment selects its pods by. */
  public readonly selector: Record<string, string>;

  constructor(scope: Construct, id: string, props: InferenceRouterProps) {
    super(scope, id);
    const platform = props.platform ?? 'botshard';
    const what = `InferenceRouter "${platform}-router"`;
    this.name = checkName(`${platform}-router`, 'dns-1035-label', `${what}: router name`, 'shorten the platform name or start it with a letter');
    const namespace = checkName(props.namespace ?? props.catalog.namespace, 'dns-1123-label', `${what}: namespace`, 'use a DNS label');
    const image = checkImage(props.image ?? DEFAULT_IMAGE, what);
    const domain = checkName(props.clusterDomain ?? 'cluster.local', 'dns-1123-subdomain', `${what}: clusterDomain`, 'use your cluster\'s DNS domain');
    const auth = (props.auth ?? 'none') === 'tenant-keys';
    if (props.auth !== undefined && props.auth !== 'none' && props.auth !== 'tenant-keys') throw new Error(`${what}: auth must be "tenant-keys" or "none", got ${JSON.stringify(props.auth)}`);
    const secret = checkName(props.tenantKeysSecret ?? 'botshard-tenant-keys', 'dns-1123-subdomain', `${what}: tenantKeysSecret`, 'use a valid Secret name');
    const replicas = _checkReplicas(props.replicas ?? { min: 2, max: 10 }, true, what, 'set InferenceRouter replicas.min to 2 or more');
    const targetCpuPercent = _checkPercent(props.targetCpuPercent ?? 70, what);
    const cpu = _checkCpu(props.cpu ?? { request: '250m', limit: '1' }, what);
    const memory = quantity(props.memory ?? 512 * 1024 * 1024);
    const { uid, gid } = _runAs(props, what);
    const { preStop, drain, grace } = _termination(props, props.timeoutMs, what);
    const monitoring = checkName(props.monitoringNamespace ?? 'monitoring', 'dns-1123-label', `${what}: monitoringNamespace`, 'use the namespace of your Prometheus');
    const clients = (props.clientNamespaces ?? []).map((ns) => checkName(ns, 'dns-1123-label', `${what}: clientNamespaces`, 'list namespace names'));
    const serviceAccountName = checkName(props.serviceAccountName ?? `${platform}-router`, 'dns-1123-subdomain', `${what}: serviceAccountName`, 'use a valid ServiceAccount name');
    if (props.priorityClassName !== undefined) checkName(props.priorityClassName, 'dns-1123-subdomain', `${what}: priorityClassName`, 'use a valid PriorityClass name');
    this.poolUrlTemplate = `http://{pool}.${namespace}.svc.${domain}:${HTTP_PORT}`;
    this.poolGrpcTemplate = `{pool}.${namespace}.svc.${domain}:${GRPC_PORT}`;
    const replicasService = checkName(`${platform}-pool-replicas`, 'dns-1035-label', `${what}: pool replicas Service name`, 'shorten the platform name');
    this.poolReplicasUrl = `http://${replicasService}.${namespace}.svc.${domain}:${HTTP_PORT}`;

    const dataPlane = props.dataPlane ?? 'haproxy';
    if (dataPlane !== 'haproxy' && dataPlane !== 'node') throw new Error(`${what}: dataPlane must be "haproxy" or "node", got ${JSON.stringify(dataPlane)}`);
    const haproxy = dataPlane === 'haproxy';
    const haproxyImage = checkImage(props.haproxyImage ?? 'haproxy:2.8.10-alpine', `${what}: haproxyImage`);
    const haproxyCpu = _checkCpu(props.haproxyCpu ?? { request: '250m', limit: '1' }, what);
    const haproxyMemory = quantity(props.haproxyMemory ?? 256 * 1024 * 1024);

    this.selector = selectorLabels(platform, 'router', this.name);
    const labels = objectLabels(platform, 'router', this.name);
    const tag = image.includes('@') ? undefined : image.slice(image.lastIndexOf(':') + 1);
    const podLabels = tag ? { ...labels, [LABEL_VERSION]: tag } : labels;

    _deployment(this, {
      name: this.name,
      namespace,
      labels,
      selector: this.selector,
      podLabels,
      serviceAccountName,
      uid,
      gid,
      grace,
      preStop,
      priorityClassName: props.priorityClassName,
      requireHosts: true,
      container: {
        name: haproxy ? 'control' : 'router',
        image,
        args: [haproxy ? 'haproxy' : 'router'],
        env: [
          { name: 'BOTSHARD_CATALOG', value: CATALOG_MOUNT },
          { name: 'BOTSHARD_POOL_URL', value: this.poolUrlTemplate },
          { name: 'BOTSHARD_PORT', value: String(HTTP_PORT) },
          { name: 'BOTSHARD_METRICS_PORT', value: String(METRICS_PORT) },
          // The Node router serves gRPC itself; in the HAProxy mode HAProxy binds it (the control plane writes its configuration).
          { name: 'BOTSHARD_GRPC_PORT', value: String(GRPC_PORT) },
          { name: 'BOTSHARD_POOL_GRPC_URL', value: this.poolGrpcTemplate },
          // Every pool replica (a headless Service): botshard status sums model rollouts over them.
          { name: 'BOTSHARD_POOL_REPLICAS', value: this.poolReplicasUrl },
          { name: 'BOTSHARD_DRAIN_SECONDS', value: String(drain) },
          { name: 'NODE_OPTIONS', value: NODE_OPTIONS },
          ...Object.entries(PROCESS_ENV).map(([name, value]) => ({ name, value })),
          ...(auth ? [{ name: 'BOTSHARD_TENANT_KEYS', value: TENANT_KEYS_MOUNT }] : []),
          ...(haproxy
            ? [
                { name: 'BOTSHARD_HAPROXY_EXTERNAL', value: '1' },
                { name: 'BOTSHARD_HAPROXY_DIR', value: HAPROXY_RUN },
                { name: 'BOTSHARD_HAPROXY_METRICS_PORT', value: String(HAPROXY_METRICS_PORT) },
              ]
            : []),
        ],
        cpu,
        memory,
        startupSeconds: 60,
        volumeMounts: [
          { name: 'catalog', mountPath: CATALOG_MOUNT, readOnly: true },
          ...(auth ? [{ name: 'tenant-keys', mountPath: TENANT_KEYS_MOUNT, readOnly: true }] : []),
          { name: 'tmp', mountPath: '/tmp' },
          ...(haproxy ? [{ name: 'haproxy-run', mountPath: HAPROXY_RUN }] : []),
        ],
        // The control plane serves its metrics and probes; HAProxy serves REST, gRPC and the health paths.
        ...(haproxy
          ? {
              ports: [_ports[1]],
              // Live: its loop ends a pass every few seconds (one stuck on HAProxy's socket is restarted). Ready: HAProxy
              // routes the current catalog (while it cannot update HAProxy the pod leaves the Service; HAProxy keeps its maps).
              probes: {
                startupProbe: { httpGet: { path: CONTROL_LIVE_PATH, port: k8s.IntOrString.fromString('metrics') }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 60 },
                readinessProbe: { httpGet: { path: CONTROL_READY_PATH, port: k8s.IntOrString.fromString('metrics') }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2, successThreshold: 1 },
                livenessProbe: { httpGet: { path: CONTROL_LIVE_PATH, port: k8s.IntOrString.fromString('metrics') }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
              },
            }
          : {}),
      },
      sidecars: haproxy
        ? [
            {
              name: 'haproxy',
              image: haproxyImage,
              imagePullPolicy: 'IfNotPresent',
              // Starts once the control plane has written the configuration (whole: it is renamed into place).
              command: ['sh', '-c', `until [ -f ${HAPROXY_RUN}/haproxy.cfg ]; do sleep 0.2; done; exec haproxy -W -db -S ${HAPROXY_RUN}/master.sock -f ${HAPROXY_RUN}/haproxy.cfg`],
              ports: [_ports[0], _ports[2], { name: 'haproxy-metrics', containerPort: HAPROXY_METRICS_PORT, protocol: 'TCP' }],
              resources: {
                requests: { cpu: k8s.Quantity.fromString(haproxyCpu.request), memory: k8s.Quantity.fromString(haproxyMemory) },
                limits: { cpu: k8s.Quantity.fromString(haproxyCpu.limit), memory: k8s.Quantity.fromString(haproxyMemory) },
              },
              securityContext: containerSecurityContext(uid, gid),
              ..._probes(60),
              // Serves while the control plane drains (not ready, then no new connections, in-flight answered);
              // the kubelet's SIGTERM after this pause ends it.
              lifecycle: { preStop: { exec: { command: ['sleep', String(preStop + drain)] } } },
              volumeMounts: [{ name: 'haproxy-run', mountPath: HAPROXY_RUN }],
            },
          ]
        : undefined,
      volumes: [
        props.catalog.indexVolume('catalog'),
        // Not optional: a missing Secret keeps the pod from starting; it never means "no authentication".
        ...(auth ? [{ name: 'tenant-keys', secret: { secretName: secret, optional: false, defaultMode: 0o440 } }] : []),
        { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('64Mi') } },
        ...(haproxy ? [{ name: 'haproxy-run', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('64Mi') } }] : []),
      ],
    });

    const poolPods = { 'app.kubernetes.io/name': 'botshard', 'app.kubernetes.io/part-of': platform, 'app.kubernetes.io/component': 'pool' };
    _workloadCompanions(this, {
      name: this.name,
      namespace,
      labels,
      selector: this.selector,
      replicas,
      targetCpuPercent,
      ingress: [
        {
          ...(clients.length > 0 ? { from: clients.map((ns) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } })) } : {}),
          ports: _servingPorts(),
        },
        _metricsIngress(monitoring, haproxy ? [METRICS_PORT, HAPROXY_METRICS_PORT] : [METRICS_PORT]),
      ],
      egress: [
        // To the pools, and DNS.
        { to: [{ podSelector: { matchLabels: poolPods } }], ports: _servingPorts() },
        _dnsEgress,
      ],
    });
    // Headless: its name resolves to every pool pod (each replica judges its own model rollouts; the status asks each).
    new k8s.KubeService(this, 'pool-replicas', {
      metadata: { name: replicasService, namespace, labels: objectLabels(platform, 'pool', replicasService) },
      spec: {
        clusterIp: 'None',
        selector: poolPods,
        ports: [{ name: 'http', port: HTTP_PORT, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP', appProtocol: 'http' }],
      },
    });
  }
}
