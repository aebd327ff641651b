import { ApiObject, App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import * as k8s from 'cdk8s-plus-27/lib/imports/k8s';
import { Catalog, Topology, plan } from '@botshard/runtime';
import { CatalogConfigMaps } from './catalog-config-maps';
import { modelStoreEgress } from './inference-pool';
import { InferenceRouter, InferenceRouterProps } from './inference-router';
import { Monitoring } from './monitoring';
import { checkName, labelProblem, nameProblem, nameRuleOf, objectLabels } from './names';
import { PoolGroup, PoolGroupOptions } from './pool-group';
import { RunAsProps } from './security';
import { DEFAULT_IMAGE, checkImage } from './workload';

/** Router settings of the platform. */
export type RouterOptions = Pick<
  InferenceRouterProps,
  'replicas' | 'targetCpuPercent' | 'cpu' | 'memory' | 'clientNamespaces' | 'preStopSeconds' | 'drainSeconds' | 'terminationGracePeriodSeconds' | 'priorityClassName' | 'haproxyImage' | 'haproxyCpu' | 'haproxyMemory'
>;

export interface BotPlatformProps extends RunAsProps {
  /** The normalised catalog (`normalizeCatalog(input)`): bots, pool groups, platform settings. */
  readonly catalog: Catalog;
  /** Placement of the catalog. @default - plan(catalog) */
  readonly topology?: Topology;
  /** Platform name: prefix of the router, catalog ConfigMaps and service accounts; `app.kubernetes.io/part-of`. @default "botshard" */
  readonly name?: string;
  /** Runtime image of pools and router, pinned by tag (never `latest`) or digest. @default "ghcr.io/botshard/runtime:0.1.0" */
  readonly image?: string;
  /** Whether the platform chart creates the namespace (labelled to enforce the restricted Pod Security Standard). @default true */
  readonly createNamespace?: boolean;
  /** Whether the platform chart creates the PriorityClasses the groups name (value 100000 for real-time groups, 1000 otherwise). @default true */
  readonly createPriorityClasses?: boolean;
  /** Secret with the tenant API key hashes, referenced by name (never synthesized). @default "botshard-tenant-keys" */
  readonly tenantKeysSecret?: string;
  /** Namespace whose Prometheus may scrape the metrics ports. @default "monitoring" */
  readonly monitoringNamespace?: string;
  /** Cluster DNS domain in the router's pool URLs. @default "cluster.local" */
  readonly clusterDomain?: string;
  /** Router settings. @default - see InferenceRouterProps */
  readonly router?: RouterOptions;
  /** Per-group settings, by group name. @default - the group defaults of PoolGroupOptions */
  readonly groups?: Readonly<Record<string, PoolGroupOptions>>;
  /** Largest catalog JSON per ConfigMap, in bytes. @default 921600 */
  readonly maxPartBytes?: number;
  /** Catalog ConfigMaps the projected volume lists ahead of need. @default 8 */
  readonly reservedParts?: number;
}

/** Chart id (and dist/ file name) of the platform chart. */
export const PLATFORM_CHART = 'platform';
/** Chart id (and dist/ file name) of a pool group's chart. Sorts after `platform`, so `kubectl apply -f dist/` creates the namespace first. */
export const groupChartId = (group: string) => `pool-group-${group}`;

/**
 * The whole platform from a catalog: a `platform` chart (namespace, service accounts, priority classes,
 * catalog ConfigMaps, router) and one `pool-group-<name>` chart per pool group, each its own file in
 * dist/ so that each can be applied and scaled on its own.
 *
 * The charts are added to the App at the top level: cdk8s names a chart's file after its construct path,
 * and a nested chart would get a hash in its file name.
 */
export class BotPlatform extends Construct {
  /** The platform chart. */
  public readonly platformChart: Chart;
  /** One chart per pool group, in catalog order. */
  public readonly groupCharts: Chart[];
  /** The pool groups, in catalog order. */
  public readonly poolGroups: PoolGroup[];
  public readonly catalogConfigMaps: CatalogConfigMaps;
  public readonly router: InferenceRouter;
  /** PodMonitors and alerts, when the catalog sets `platform.prometheusOperator`. */
  public readonly monitoring?: Monitoring;
  /** The placement the manifests were synthesized from. */
  public readonly topology: Topology;

  constructor(scope: App, id: string, props: BotPlatformProps) {
    super(scope, id);
    if (!(scope instanceof App)) {
      throw new Error(`BotPlatform must be created directly in an App (its charts become files of dist/), got a scope at "${(scope as Construct).node?.path}": pass the App`);
    }
    const catalog = props.catalog;
    const name = checkName(props.name ?? 'botshard', 'dns-1035-label', 'BotPlatform: name', 'use a short DNS label starting with a letter, e.g. "botshard"');
    if (name.length > 40) throw new Error(`BotPlatform: name ${JSON.stringify(name)} is ${name.length} characters long; keep it to 40 so derived names stay under 63`);
    const namespace = checkName(catalog.platform.namespace, 'dns-1123-label', 'BotPlatform: platform.namespace', 'set platform.namespace in bots.config.ts to a DNS label');
    const image = checkImage(props.image ?? DEFAULT_IMAGE, 'BotPlatform');
    this.topology = props.topology ?? plan(catalog);
    if (this.topology.generation !== catalog.generation) {
      throw new Error(`BotPlatform: the topology was planned for catalog generation ${this.topology.generation}, the catalog is ${catalog.generation}: pass plan(catalog) of this catalog or leave topology unset`);
    }
    const known = new Set(catalog.groups.map((g) => g.name));
    const unknown = Object.keys(props.groups ?? {}).filter((g) => !known.has(g));
    if (unknown.length > 0) {
      throw new Error(`BotPlatform: groups has settings for ${unknown.map((g) => JSON.stringify(g)).join(', ')}, which the catalog does not declare: use one of ${[...known].join(', ')}`);
    }
    const runAs = { runAsUser: props.runAsUser, runAsGroup: props.runAsGroup };

    this.platformChart = new Chart(scope, PLATFORM_CHART, { disableResourceNameHashes: true });
    const platformLabels = objectLabels(name, 'platform', name);
    if (props.createNamespace ?? true) {
      new k8s.KubeNamespace(this.platformChart, 'namespace', {
        metadata: {
          name: namespace,
          labels: {
            ...platformLabels,
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/audit': 'restricted',
            'pod-security.kubernetes.io/warn': 'restricted',
          },
        },
      });
    }
    for (const component of ['pool', 'router'] as const) {
      new k8s.KubeServiceAccount(this.platformChart, `service-account-${component}`, {
        metadata: { name: `${name}-${component}`, namespace, labels: objectLabels(name, component, `${name}-${component}`) },
        automountServiceAccountToken: false,
      });
    }
    if (props.createPriorityClasses ?? true) {
      const classes = new Map<string, boolean>();
      for (const g of catalog.groups) if (g.priorityClassName) classes.set(g.priorityClassName, (classes.get(g.priorityClassName) ?? false) || g.realtime);
      for (const [pc, realtime] of [...classes].sort(([a], [b]) => (a < b ? -1 : 1))) {
        new k8s.KubePriorityClass(this.platformChart, `priority-class-${pc}`, {
          metadata: { name: pc, labels: platformLabels },
          value: realtime ? 100000 : 1000,
          globalDefault: false,
          preemptionPolicy: 'PreemptLowerPriority',
          description: `botshard ${realtime ? 'real-time' : 'non-real-time'} pools`,
        });
      }
    }
    this.catalogConfigMaps = new CatalogConfigMaps(this.platformChart, 'catalog', {
      catalog,
      namespace,
      name,
      maxPartBytes: props.maxPartBytes,
      reservedParts: props.reservedParts,
    });
    // What carries requests to the pools: the catalog's choice, else HAProxy (bench:router's choice).
    const dataPlane = catalog.platform.router ?? 'haproxy';
    this.router = new InferenceRouter(this.platformChart, 'router', {
      ...props.router,
      ...runAs,
      catalog: this.catalogConfigMaps,
      timeoutMs: Math.max(2000, ...catalog.groups.map((g) => g.timeoutMs)),
      namespace,
      platform: name,
      image,
      clusterDomain: props.clusterDomain,
      auth: catalog.platform.auth ?? 'none',
      dataPlane,
      tenantKeysSecret: props.tenantKeysSecret,
      monitoringNamespace: props.monitoringNamespace,
    });

    if (catalog.platform.prometheusOperator) {
      this.monitoring = new Monitoring(this.platformChart, 'monitoring', { catalog, namespace, platform: name, haproxy: dataPlane === 'haproxy' });
    }

    const storeEgress = modelStoreEgress(catalog);
    this.groupCharts = [];
    this.poolGroups = catalog.groups.map((group) => {
      const chart = new Chart(scope, groupChartId(group.name), { disableResourceNameHashes: true });
      this.groupCharts.push(chart);
      return new PoolGroup(chart, 'group', {
        ...props.groups?.[group.name],
        ...runAs,
        group,
        pools: this.topology.pools.filter((p) => p.group === group.name),
        catalog: this.catalogConfigMaps,
        platform: name,
        image,
        monitoringNamespace: props.monitoringNamespace,
        modelStoreEgress: storeEgress,
      });
    });

    this.node.addValidation({ validate: () => this.validateTree() });
  }

  /** Checks across charts: every bot's pool is synthesized, and every object's name and labels are valid and unique. */
  private validateTree(): string[] {
    const errors: string[] = [];
    const pools = new Set(this.poolGroups.flatMap((g) => g.pools.map((p) => p.name)));
    for (const [bot, pool] of this.topology.assignment) {
      if (!pools.has(pool)) errors.push(`bot "${bot}" is placed on pool "${pool}", which has no Deployment`);
    }
    const seen = new Map<string, string>();
    for (const chart of [this.platformChart, ...this.groupCharts]) {
      for (const c of chart.node.findAll()) {
        if (!(c instanceof ApiObject)) continue;
        const ns = c.metadata.namespace ?? '';
        const key = `${c.apiVersion}/${c.kind} ${ns}/${c.name}`;
        const other = seen.get(key);
        if (other) errors.push(`${c.kind} "${c.name}" is synthesized twice (${other} and ${c.node.path}): rename one`);
        seen.set(key, c.node.path);
        const problem = nameProblem(c.name, nameRuleOf(c.kind));
        if (problem) errors.push(`${c.kind} name "${c.name}" ${problem}`);
        if (ns && nameProblem(ns, 'dns-1123-label')) errors.push(`${c.kind} "${c.name}": namespace "${ns}" is not a DNS label`);
        const labels = (c.metadata.toJson().labels ?? {}) as Record<string, string>;
        for (const [k, v] of Object.entries(labels)) {
          const lp = labelProblem(k, v);
          if (lp) errors.push(`${c.kind} "${c.name}": ${lp}`);
        }
      }
    }
    return errors;
  }
}
