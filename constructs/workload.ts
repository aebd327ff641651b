/**
 * What the pool and router workloads share: the runtime contract (ports, paths, env), the pinned
 * image, quantities, probes, graceful termination, topology spread, and the PDB/HPA/NetworkPolicy specs.
 */
import { Construct } from 'constructs';
import * as k8s from 'cdk8s-plus-27/lib/imports/k8s';
import { checkName } from './names';
import { containerSecurityContext, podSecurityContext } from './security';

/** The runtime image used when none is given: pinned, never `latest`. */
export const DEFAULT_IMAGE = 'ghcr.io/botshard/runtime:0.1.0';
/** OIP HTTP port of pools and router (`BOTSHARD_PORT`). */
export const HTTP_PORT = 8080;
/** OIP gRPC port of pools and the Node router (`BOTSHARD_GRPC_PORT`). */
export const GRPC_PORT = 8081;
/** Prometheus `/metrics` port (`BOTSHARD_METRICS_PORT`). */
export const METRICS_PORT = 9090;
/** Where the catalog ConfigMaps are mounted, as one folder. */
export const CATALOG_MOUNT = '/etc/botshard/catalog';
/** Where the router finds the tenant API key hashes. */
export const TENANT_KEYS_MOUNT = '/etc/botshard/tenant-keys';
/** Model cache of a pool (`BOTSHARD_MODELS`). */
export const MODELS_MOUNT = '/models';
export const LIVE_PATH = '/v2/health/live';
export const READY_PATH = '/v2/health/ready';

const DIGEST = /@sha256:[a-f0-9]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Checks that an image reference is pinned: a tag other than `latest`, or a digest. Returns it. */
export function checkImage(image: string, what: string): string {
  const fix = `pin a version, e.g. "${DEFAULT_IMAGE}" or "<repository>@sha256:<digest>"`;
  if (typeof image !== 'string' || image.trim() !== image || image.length === 0 || /\s/.test(image)) {
    throw new Error(`${what}: image must be a non-empty reference without spaces, got ${JSON.stringify(image)}: ${fix}`);
  }
  if (DIGEST.test(image)) return image;
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  const tag = colon >= 0 ? image.slice(colon + 1) : undefined;
  if (tag === undefined) throw new Error(`${what}: image ${JSON.stringify(image)} has no tag, so it floats like "latest": ${fix}`);
  if (!TAG.test(tag)) throw new Error(`${what}: image ${JSON.stringify(image)} has an invalid tag ${JSON.stringify(tag)}: ${fix}`);
  if (tag.toLowerCase() === 'latest') throw new Error(`${what}: image ${JSON.stringify(image)} uses the "latest" tag, which changes under running pods: ${fix}`);
  return image;
}

/** Bytes as an exact Kubernetes quantity (`512Mi`, `1Gi`, or plain bytes). */
export function quantity(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`a memory size must be a positive whole number of bytes, got ${JSON.stringify(bytes)}`);
  for (const [unit, size] of [['Ti', 1024 ** 4], ['Gi', 1024 ** 3], ['Mi', 1024 ** 2], ['Ki', 1024]] as const) {
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

const CPU = /^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$/;

/** Checks a CPU quantity (`250m`, `1`, `1.5`) and returns it in millicores. */
export function cpuMillis(value: string, what: string): number {
  if (typeof value !== 'string' || !CPU.test(value)) throw new Error(`${what} must be a CPU quantity such as "250m" or "1", got ${JSON.stringify(value)}`);
  const m = value.endsWith('m') ? Number(value.slice(0, -1)) : Math.round(Number(value) * 1000);
  if (m <= 0) throw new Error(`${what} must be above zero, got ${JSON.stringify(value)}`);
  return m;
}

/** CPU request and limit of a container. */
export interface CpuProps {
  /** CPU request: what the scheduler reserves and what the autoscaler's utilisation is measured against. */
  readonly request: string;
  /** CPU limit. */
  readonly limit: string;
}

/** @internal */
export function _checkCpu(cpu: CpuProps, what: string): CpuProps {
  const request = cpuMillis(cpu.request, `${what}: cpu.request`);
  const limit = cpuMillis(cpu.limit, `${what}: cpu.limit`);
  if (limit < request) throw new Error(`${what}: cpu.limit ${JSON.stringify(cpu.limit)} is below cpu.request ${JSON.stringify(cpu.request)}: raise the limit to at least the request`);
  return cpu;
}

/** How a workload stops: the preStop pause, the server's drain, and the grace period that covers both. */
export interface TerminationProps {
  /** Seconds the preStop hook sleeps so that endpoints and the router stop sending before SIGTERM. @default 5 */
  readonly preStopSeconds?: number;
  /** Seconds the server keeps serving in-flight requests after SIGTERM (`BOTSHARD_DRAIN_SECONDS`). @default - the longest request timeout it serves plus 5 s, at least 10 */
  readonly drainSeconds?: number;
  /** Pod termination grace period; must exceed preStop + drain. @default - preStop + drain + 5 */
  readonly terminationGracePeriodSeconds?: number;
}

/** @internal Resolved and checked termination timings. */
export function _termination(props: TerminationProps, timeoutMs: number, what: string): { preStop: number; drain: number; grace: number } {
  const preStop = props.preStopSeconds ?? 5;
  const drain = props.drainSeconds ?? Math.max(10, Math.ceil(timeoutMs / 1000) + 5);
  const grace = props.terminationGracePeriodSeconds ?? preStop + drain + 5;
  for (const [prop, v] of [['preStopSeconds', preStop], ['drainSeconds', drain], ['terminationGracePeriodSeconds', grace]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${what}: ${prop} must be a whole number of seconds, got ${JSON.stringify(v)}`);
  }
  if (drain * 1000 < timeoutMs) {
    throw new Error(`${what}: drainSeconds ${drain} is shorter than the request timeout of ${timeoutMs} ms, so a shutdown would cut requests in flight: set drainSeconds to at least ${Math.ceil(timeoutMs / 1000)}`);
  }
  if (grace <= preStop + drain) {
    throw new Error(`${what}: terminationGracePeriodSeconds ${grace} must be longer than preStopSeconds + drainSeconds (${preStop} + ${drain}), or the kubelet kills the server mid-drain: set it to at least ${preStop + drain + 1} or leave it unset`);
  }
  return { preStop, drain, grace };
}

/** @internal Startup, readiness and liveness probes on the OIP health paths. */
export function _probes(startupSeconds: number): Pick<k8s.Container, 'startupProbe' | 'readinessProbe' | 'livenessProbe'> {
  const get = (path: string) => ({ path, port: k8s.IntOrString.fromString('http') });
  return {
    // Generous: the process must come up, but loading bots is what readiness waits for.
    startupProbe: { httpGet: get(LIVE_PATH), periodSeconds: 2, timeoutSeconds: 2, failureThreshold: Math.max(1, Math.ceil(startupSeconds / 2)) },
    readinessProbe: { httpGet: get(READY_PATH), periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2, successThreshold: 1 },
    livenessProbe: { httpGet: get(LIVE_PATH), periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
  };
}

/** @internal Spread replicas across zones (best effort) and hosts (required when `requireHosts`). */
export function _spread(selector: Record<string, string>, requireHosts: boolean): k8s.TopologySpreadConstraint[] {
  return [
    { topologyKey: 'topology.kubernetes.io/zone', maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector }, matchLabelKeys: ['pod-template-hash'] },
    { topologyKey: 'kubernetes.io/hostname', maxSkew: 1, whenUnsatisfiable: requireHosts ? 'DoNotSchedule' : 'ScheduleAnyway', labelSelector: { matchLabels: selector }, matchLabelKeys: ['pod-template-hash'] },
  ];
}

/** Replica bounds owned by the HorizontalPodAutoscaler. */
export interface ReplicaBounds {
  readonly min: number;
  readonly max: number;
}

/** @internal Checks HPA bounds: real-time workloads keep at least 2 replicas so one eviction never empties them. */
export function _checkReplicas(replicas: ReplicaBounds, realtime: boolean, what: string, fix: string): ReplicaBounds {
  const { min, max } = replicas;
  if (!Number.isInteger(min) || min < 1) throw new Error(`${what}: replicas.min must be a whole number of at least 1, got ${JSON.stringify(min)}: ${fix}`);
  if (realtime && min < 2) throw new Error(`${what}: a real-time workload needs replicas.min of at least 2 so that one eviction or crash never leaves it without a ready pod, got ${min}: ${fix}`);
  if (!Number.isInteger(max) || max < min) throw new Error(`${what}: replicas.max must be a whole number of at least replicas.min (${min}), got ${JSON.stringify(max)}: ${fix}`);
  return replicas;
}

/** @internal Checks a target CPU utilisation in percent. */
export function _checkPercent(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1 || value > 100) throw new Error(`${what}: targetCpuPercent must be a whole percentage from 1 to 100, got ${JSON.stringify(value)}`);
  return value;
}

/** @internal The objects every workload gets beside its Deployment. */
export function _workloadCompanions(
  scope: Construct,
  opts: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    selector: Record<string, string>;
    replicas: ReplicaBounds;
    targetCpuPercent: number;
    ingress: k8s.NetworkPolicyIngressRule[];
    egress?: k8s.NetworkPolicyEgressRule[];
  },
): void {
  const metadata = { name: opts.name, namespace: opts.namespace, labels: opts.labels };
  checkName(opts.name, 'dns-1035-label', 'service name', 'rename the pool, group or platform it comes from');
  new k8s.KubeService(scope, 'service', {
    metadata,
    spec: {
      type: 'ClusterIP',
      selector: opts.selector,
      ports: [
        { name: 'http', port: HTTP_PORT, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP', appProtocol: 'http' },
        { name: 'grpc', port: GRPC_PORT, targetPort: k8s.IntOrString.fromString('grpc'), protocol: 'TCP', appProtocol: 'grpc' },
        { name: 'metrics', port: METRICS_PORT, targetPort: k8s.IntOrString.fromString('metrics'), protocol: 'TCP', appProtocol: 'http' },
      ],
    },
  });
  new k8s.KubePodDisruptionBudget(scope, 'pdb', {
    metadata,
    spec: {
      // maxUnavailable (not minAvailable) so a single-replica workload can still be drained.
      maxUnavailable: k8s.IntOrString.fromNumber(1),
      // Pods that are not ready do not count against the budget: a crash-looping pod never blocks a node drain.
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
      selector: { matchLabels: opts.selector },
    },
  });
  new k8s.KubeHorizontalPodAutoscalerV2(scope, 'hpa', {
    metadata,
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: opts.name },
      minReplicas: opts.replicas.min,
      maxReplicas: opts.replicas.max,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: opts.targetCpuPercent } } }],
      behavior: { scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } },
    },
  });
  new k8s.KubeNetworkPolicy(scope, 'network-policy', {
    metadata,
    spec: {
      podSelector: { matchLabels: opts.selector },
      policyTypes: opts.egress ? ['Ingress', 'Egress'] : ['Ingress'],
      ingress: opts.ingress,
      ...(opts.egress ? { egress: opts.egress } : {}),
    },
  });
}

/** @internal Ingress rule for the metrics port from the monitoring namespace. */
export function _metricsIngress(monitoringNamespace: string, ports: readonly number[] = [METRICS_PORT]): k8s.NetworkPolicyIngressRule {
  return {
    from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': monitoringNamespace } } }],
    ports: ports.map((port) => ({ port: k8s.IntOrString.fromNumber(port), protocol: 'TCP' })),
  };
}

/** @internal Egress rule for DNS, wherever the cluster resolver runs. */
export const _dnsEgress: k8s.NetworkPolicyEgressRule = {
  ports: [
    { port: k8s.IntOrString.fromNumber(53), protocol: 'UDP' },
    { port: k8s.IntOrString.fromNumber(53), protocol: 'TCP' },
  ],
};

/** @internal Annotations that let a Prometheus scrape the metrics port. */
export const _scrapeAnnotations = { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(METRICS_PORT), 'prometheus.io/path': '/metrics' };

/** @internal The container ports both workloads expose: HTTP, metrics, gRPC. */
export const _ports: k8s.ContainerPort[] = [
  { name: 'http', containerPort: HTTP_PORT, protocol: 'TCP' },
  { name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' },
  { name: 'grpc', containerPort: GRPC_PORT, protocol: 'TCP' },
];

/** @internal The protocol's ports (HTTP and gRPC) as NetworkPolicy ports. */
export function _servingPorts(): k8s.NetworkPolicyPort[] {
  return [HTTP_PORT, GRPC_PORT].map((port) => ({ port: k8s.IntOrString.fromNumber(port), protocol: 'TCP' }));
}

/** What differs between the pool's and the router's Deployment; everything else is the same hardened shape. */
export interface DeploymentOptions {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  selector: Record<string, string>;
  podLabels: Record<string, string>;
  serviceAccountName: string;
  uid: number;
  gid: number;
  grace: number;
  preStop: number;
  priorityClassName?: string;
  tolerations?: readonly k8s.Toleration[];
  nodeSelector?: Readonly<Record<string, string>>;
  /** Spread replicas over hosts strictly (`DoNotSchedule`), as real-time workloads need. */
  requireHosts: boolean;
  container: {
    name: string;
    image: string;
    args: string[];
    env: k8s.EnvVar[];
    cpu: CpuProps;
    memory: string;
    startupSeconds: number;
    volumeMounts: k8s.VolumeMount[];
    /** @default _ports */
    ports?: k8s.ContainerPort[];
    /** @default _probes(startupSeconds) on the http port */
    probes?: Pick<k8s.Container, 'startupProbe' | 'readinessProbe' | 'livenessProbe'>;
  };
  /** More containers of the pod (the router's HAProxy), already hardened by the caller. */
  sidecars?: k8s.Container[];
  volumes: k8s.Volume[];
}

/**
 * A Deployment under the restricted Pod Security Standard: non-root, read-only root, no service account
 * token, no service links, resources, OIP probes, preStop plus grace period, topology spread, and no
 * `replicas` (the HorizontalPodAutoscaler owns it, and a GitOps sync must not reset it).
 * @internal
 */
export function _deployment(scope: Construct, o: DeploymentOptions): k8s.KubeDeployment {
  const c = o.container;
  return new k8s.KubeDeployment(scope, 'deployment', {
    metadata: { name: o.name, namespace: o.namespace, labels: o.labels },
    spec: {
      selector: { matchLabels: o.selector },
      revisionHistoryLimit: 3,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
      template: {
        metadata: { labels: o.podLabels, annotations: _scrapeAnnotations },
        spec: {
          serviceAccountName: o.serviceAccountName,
          automountServiceAccountToken: false,
          // Thousands of pool Services would otherwise become environment variables of every pod.
          enableServiceLinks: false,
          securityContext: podSecurityContext(o.uid, o.gid),
          terminationGracePeriodSeconds: o.grace,
          ...(o.priorityClassName ? { priorityClassName: o.priorityClassName } : {}),
          ...(o.tolerations && o.tolerations.length > 0 ? { tolerations: o.tolerations.map((t) => ({ ...t })) } : {}),
          ...(o.nodeSelector && Object.keys(o.nodeSelector).length > 0 ? { nodeSelector: { ...o.nodeSelector } } : {}),
          topologySpreadConstraints: _spread(o.selector, o.requireHosts),
          containers: [
            {
              name: c.name,
              image: c.image,
              imagePullPolicy: 'IfNotPresent',
              args: c.args,
              ports: c.ports ?? _ports,
              env: c.env,
              resources: {
                requests: { cpu: k8s.Quantity.fromString(c.cpu.request), memory: k8s.Quantity.fromString(c.memory) },
                limits: { cpu: k8s.Quantity.fromString(c.cpu.limit), memory: k8s.Quantity.fromString(c.memory) },
              },
              securityContext: containerSecurityContext(o.uid, o.gid),
              ...(c.probes ?? _probes(c.startupSeconds)),
              lifecycle: { preStop: { exec: { command: ['sleep', String(o.preStop)] } } },
              volumeMounts: c.volumeMounts,
            },
            ...(o.sidecars ?? []),
          ],
          volumes: o.volumes,
        },
      },
    },
  });
}
