import { Construct } from 'constructs';
import { ModelStoreEgress, Pool, PoolGroup as PoolGroupSpec } from '@botshard/runtime';
import { CatalogConfigMaps } from './catalog-config-maps';
import { InferencePool } from './inference-pool';
import { checkName } from './names';
import { RunAsProps } from './security';
import { CpuProps, TerminationProps } from './workload';

/** Settings a pool group adds to the catalog's: per-group tuning that is not about bots. */
export interface PoolGroupOptions extends TerminationProps {
  /** CPU request and limit of each pool replica. @default - { request: "500m", limit: "2" } for real-time groups, { request: "250m", limit: "1" } otherwise */
  readonly cpu?: CpuProps;
  /** Seconds a pool may take to answer its first liveness probe. @default - 60 for real-time groups, 180 otherwise (bigger pools) */
  readonly startupSeconds?: number;
  /** Size limit of each pool's model cache, in bytes. @default - the pool's memory budget */
  readonly modelCacheBytes?: number;
}

export interface PoolGroupProps extends PoolGroupOptions, RunAsProps {
  /** The group as the normalised catalog declares it (timeouts, replicas, autoscaling, priority, node placement). */
  readonly group: PoolGroupSpec;
  /** The group's pools from placement (`plan(catalog).pools` of this group). */
  readonly pools: readonly Pool[];
  /** The catalog ConfigMaps every pool mounts. */
  readonly catalog: CatalogConfigMaps;
  /** Platform name. @default "botshard" */
  readonly platform?: string;
  /** Runtime image, pinned. @default "ghcr.io/botshard/runtime:0.1.0" */
  readonly image?: string;
  /** Namespace allowed to scrape metrics. @default "monitoring" */
  readonly monitoringNamespace?: string;
  /** Service account of the pool pods. @default "<platform>-pool" */
  readonly serviceAccountName?: string;
  /** Address ranges pools may connect to for models (see `modelStoreEgress()`). @default [] - DNS only */
  readonly modelStoreEgress?: readonly ModelStoreEgress[];
}

/**
 * A pool group: one InferencePool per pool that placement gives the group, with the group's
 * defaults. Real-time and non-real-time groups differ in replicas, timeouts, concurrency, drain,
 * CPU, startup time and host spread (required for real-time).
 */
export class PoolGroup extends Construct {
  /** The group's pools, in placement order. */
  public readonly pools: InferencePool[];
  /** The group's name. */
  public readonly name: string;

  constructor(scope: Construct, id: string, props: PoolGroupProps) {
    super(scope, id);
    const g = props.group;
    this.name = checkName(g.name, 'dns-1123-label', 'PoolGroup: group name', 'rename the group in bots.config.ts');
    const strays = props.pools.filter((p) => p.group !== g.name).map((p) => `${p.name} (group ${p.group})`);
    if (strays.length > 0) {
      throw new Error(`PoolGroup "${g.name}": pools of other groups were passed: ${strays.join(', ')}: pass only topology.pools whose group is "${g.name}"`);
    }
    const realtime = g.realtime;
    this.pools = props.pools.map(
      (pool) =>
        new InferencePool(this, pool.name, {
          pool: pool.name,
          group: g.name,
          catalog: props.catalog,
          memory: pool.budget,
          realtime,
          dedicated: pool.dedicated,
          timeoutMs: g.timeoutMs,
          replicas: g.replicas,
          targetCpuPercent: g.targetCpuPercent,
          priorityClassName: g.priorityClassName,
          tolerations: g.tolerations,
          nodeSelector: g.nodeSelector,
          cpu: props.cpu,
          startupSeconds: props.startupSeconds,
          modelCacheBytes: props.modelCacheBytes,
          preStopSeconds: props.preStopSeconds,
          drainSeconds: props.drainSeconds,
          terminationGracePeriodSeconds: props.terminationGracePeriodSeconds,
          platform: props.platform,
          image: props.image,
          monitoringNamespace: props.monitoringNamespace,
          serviceAccountName: props.serviceAccountName,
          modelStoreEgress: props.modelStoreEgress,
          runAsUser: props.runAsUser,
          runAsGroup: props.runAsGroup,
        }),
    );
    this.node.addValidation({
      validate: () => {
        const names = this.pools.map((p) => p.name);
        const dupes = names.filter((n, i) => names.indexOf(n) !== i);
        return dupes.length > 0 ? [`pool group "${g.name}" has duplicate pool names: ${[...new Set(dupes)].join(', ')}`] : [];
      },
    });
  }
}
