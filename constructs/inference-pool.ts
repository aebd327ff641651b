import { Construct } from 'constructs';
import * as k8s from 'cdk8s-plus-27/lib/imports/k8s';
import { Catalog, ModelStoreEgress, NODE_OPTIONS, PROCESS_ENV, Toleration, groupDefaults } from '@botshard/runtime';
import { CatalogConfigMaps } from './catalog-config-maps';
import { LABEL_POOL_GROUP, LABEL_VERSION, checkName, objectLabels, selectorLabels } from './names';
import { RunAsProps, _runAs } from './security';
import {
  CATALOG_MOUNT,
  CpuProps,
  DEFAULT_IMAGE,
  GRPC_PORT,
  HTTP_PORT,
  METRICS_PORT,
  MODELS_MOUNT,
  ReplicaBounds,
  TerminationProps,
  _checkCpu,
  _deployment,
  cpuMillis,
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

export interface InferencePoolProps extends TerminationProps, RunAsProps {
  /** The pool's name from placement (`<group>-<suffix>`, or a dedicated pool's name): Deployment, Service and `BOTSHARD_POOL`. */
  readonly pool: string;
  /** Name of the pool group the pool belongs to. */
  readonly group: string;
  /** The catalog the pool loads its bots from. */
  readonly catalog: CatalogConfigMaps;
  /** Memory budget of the pool in bytes: the container's memory request and limit (from the group, never from the bots it holds today). */
  readonly memory: number;
  /** Whether the pool serves live traffic: at least 2 replicas and required host spread. @default false */
  readonly realtime?: boolean;
  /**
   * The group's request timeout in milliseconds: sizes the drain and the grace period. The pool reads
   * the timeout itself from the catalog it watches, so a change reaches running pools without a roll.
   * @default 2000 for real-time pools, 60000 otherwise
   */
  readonly timeoutMs?: number;
  /** Replica bounds of the autoscaler, which owns `spec.replicas`. @default - { min: 2, max: 10 } for real-time pools, { min: 1, max: 4 } otherwise */
  readonly replicas?: ReplicaBounds;
  /** Target average CPU utilisation of the autoscaler, in percent of the CPU request. @default 70 */
  readonly targetCpuPercent?: number;
  /** CPU request and limit. @default - { request: "500m", limit: "2" } for real-time pools, { request: "250m", limit: "1" } otherwise */
  readonly cpu?: CpuProps;
  /** Namespace. @default - the catalog's `platform.namespace` */
  readonly namespace?: string;
  /** Platform name, in `app.kubernetes.io/part-of` and the router's selector. @default "botshard" */
  readonly platform?: string;
  /** Runtime image, pinned by tag (never `latest`) or digest. @default "ghcr.io/botshard/runtime:0.1.0" */
  readonly image?: string;
  /** Service account of the pods (its token is never mounted). @default "<platform>-pool" */
  readonly serviceAccountName?: string;
  /** PriorityClass of the pods. @default - none */
  readonly priorityClassName?: string;
  /** @default [] */
  readonly tolerations?: readonly Toleration[];
  /** @default {} */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** Namespace allowed to scrape the metrics port. @default "monitoring" */
  readonly monitoringNamespace?: string;
  /** Size limit of the model cache emptyDir at /models. @default - the memory budget */
  readonly modelCacheBytes?: number;
  /** Seconds the pool may take to answer its first liveness probe before it is restarted. @default - 60 (real-time), 180 (non-real-time): `groupDefaults()` */
  readonly startupSeconds?: number;
  /** Address ranges the pool may connect to for models (its only egress besides DNS). @default [] - DNS only: models come from a volume */
  readonly modelStoreEgress?: readonly ModelStoreEgress[];
  /** Whether the pool takes only pinned bots (informational label). @default false */
  readonly dedicated?: boolean;
}

/**
 * One inference pool: Deployment (no `spec.replicas`: the HPA owns it), Service, PodDisruptionBudget,
 * HorizontalPodAutoscaler and a NetworkPolicy that admits only the router (and metrics scrapes).
 * Every object is named after the pool, so `<group>-<suffix>` is the same everywhere.
 */
export class InferencePool extends Construct {
  /** The pool's name: of its Deployment, Service, PDB, HPA and NetworkPolicy. */
  public readonly name: string;
  /** Labels the Deployment selects its pods by. */
  public readonly selector: Record<string, string>;

  constructor(scope: Construct, id: string, props: InferencePoolProps) {
    super(scope, id);
    const what = `InferencePool "${props.pool}"`;
    const platform = props.platform ?? 'botshard';
    const realtime = props.realtime ?? false;
    // Service names are DNS-1035 labels; the router addresses a pool as http://<pool>.<namespace>.svc.
    this.name = checkName(props.pool, 'dns-1035-label', `${what}: pool name`, 'rename the group or the dedicated pool (pools are named <group>-<suffix>)');
    checkName(props.group, 'dns-1123-label', `${what}: group name`, 'rename the pool group');
    const namespace = checkName(props.namespace ?? props.catalog.namespace, 'dns-1123-label', `${what}: namespace`, 'use a DNS label');
    const image = checkImage(props.image ?? DEFAULT_IMAGE, what);
    const defaults = groupDefaults(realtime);
    const timeoutMs = props.timeoutMs ?? defaults.timeoutMs;
    const replicas = _checkReplicas(props.replicas ?? defaults.replicas, realtime, what, `raise groups[].replicas.min of "${props.group}" in bots.config.ts`);
    const targetCpuPercent = _checkPercent(props.targetCpuPercent ?? defaults.targetCpuPercent, what);
    const cpu = _checkCpu(props.cpu ?? defaults.cpu, what);
    const { uid, gid } = _runAs(props, what);
    const { preStop, drain, grace } = _termination(props, timeoutMs, what);
    const memory = quantity(props.memory);
    const modelCache = quantity(props.modelCacheBytes ?? props.memory);
    const monitoring = checkName(props.monitoringNamespace ?? 'monitoring', 'dns-1123-label', `${what}: monitoringNamespace`, 'use the namespace of your Prometheus');
    const serviceAccountName = checkName(props.serviceAccountName ?? `${platform}-pool`, 'dns-1123-subdomain', `${what}: serviceAccountName`, 'use a valid ServiceAccount name');
    if (props.priorityClassName !== undefined) checkName(props.priorityClassName, 'dns-1123-subdomain', `${what}: priorityClassName`, 'use a valid PriorityClass name');
    const startupSeconds = props.startupSeconds ?? defaults.startupSeconds;
    if (!Number.isInteger(startupSeconds) || startupSeconds < 2) throw new Error(`${what}: startupSeconds must be a whole number of at least 2, got ${JSON.stringify(startupSeconds)}`);

    this.selector = selectorLabels(platform, 'pool', this.name);
    const tag = image.includes('@') ? undefined : image.slice(image.lastIndexOf(':') + 1);
    const labels = objectLabels(platform, 'pool', this.name, {
      [LABEL_POOL_GROUP]: props.group,
      ...(props.dedicated ? { 'botshard.io/dedicated': 'true' } : {}),
    });
    const podLabels = tag ? { ...labels, [LABEL_VERSION]: tag } : labels;

    const env: k8s.EnvVar[] = [
      { name: 'BOTSHARD_POOL', value: this.name },
      { name: 'BOTSHARD_CATALOG', value: CATALOG_MOUNT },
      { name: 'BOTSHARD_MODELS', value: MODELS_MOUNT },
      { name: 'BOTSHARD_PORT', value: String(HTTP_PORT) },
      { name: 'BOTSHARD_METRICS_PORT', value: String(METRICS_PORT) },
      { name: 'BOTSHARD_GRPC_PORT', value: String(GRPC_PORT) },
      { name: 'BOTSHARD_DRAIN_SECONDS', value: String(drain) },
      { name: 'NODE_OPTIONS', value: NODE_OPTIONS },
      ...Object.entries(PROCESS_ENV).map(([name, value]) => ({ name, value })),
      // No BOTSHARD_TIMEOUT_MS / BOTSHARD_CONCURRENCY: the catalog is the one source of group settings.
      // Node sees the node's CPUs, not the container's quota: one inference worker per CPU of the limit.
      { name: 'BOTSHARD_WORKERS', value: String(Math.max(1, Math.floor(cpuMillis(cpu.limit, what) / 1000))) },
    ];

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
      tolerations: props.tolerations,
      nodeSelector: props.nodeSelector,
      requireHosts: realtime,
      container: {
        name: 'pool',
        image,
        args: ['pool'],
        env,
        cpu,
        memory,
        startupSeconds,
        volumeMounts: [
          { name: 'catalog', mountPath: CATALOG_MOUNT, readOnly: true },
          { name: 'models', mountPath: MODELS_MOUNT },
          { name: 'tmp', mountPath: '/tmp' },
        ],
      },
      volumes: [
        props.catalog.volume('catalog'),
        { name: 'models', emptyDir: { sizeLimit: k8s.Quantity.fromString(modelCache) } },
        { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('64Mi') } },
      ],
    });

    _workloadCompanions(this, {
      name: this.name,
      namespace,
      labels,
      selector: this.selector,
      replicas,
      targetCpuPercent,
      ingress: [
        {
          // Only the router sends inference traffic to a pool (REST and gRPC).
          from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'botshard', 'app.kubernetes.io/part-of': platform, 'app.kubernetes.io/component': 'router' } } }],
          ports: _servingPorts(),
        },
        _metricsIngress(monitoring),
      ],
      // A pool runs customer models and rules: it reaches DNS and the model store, nothing else.
      egress: [
        _dnsEgress,
        ...(props.modelStoreEgress ?? []).map((r) => ({
          to: [{ ipBlock: { cidr: r.cidr, ...(r.except.length > 0 ? { except: [...r.except] } : {}) } }],
          ports: [{ port: k8s.IntOrString.fromNumber(r.port), protocol: 'TCP' }],
        })),
      ],
    });
  }
}

/** The instance metadata service (node credentials): never open to pools by default. */
const METADATA_SERVICE = '169.254.169.254/32';

/**
 * Where a catalog's pools may fetch models: its `platform.modelStoreEgress`, or, when a model or encoder
 * comes from an s3:// or https:// location, HTTPS to any address but the instance metadata service;
 * nothing when every model comes from the model root.
 */
export function modelStoreEgress(catalog: Catalog): ModelStoreEgress[] {
  if (catalog.platform.modelStoreEgress) return catalog.platform.modelStoreEgress;
  const paths = [...catalog.encoders.map((e) => e.path), ...catalog.bots.map((b) => b.model.head)];
  if (!paths.some((p) => /^(s3|https):\/\//.test(p))) return [];
  return [
    { cidr: '0.0.0.0/0', except: [METADATA_SERVICE], port: 443 },
    { cidr: '::/0', except: [], port: 443 },
  ];
}
