/**
 * How many requests each data plane forwards at once, from the group's settings in the normalized catalog:
 * the Node router counts per pool group (admission.ts), HAProxy per pool (each backend's `maxconn`).
 */
import type { PoolGroup } from '../catalog';

/** Requests one pool of the group is sent at once: its concurrency on each of its most replicas. */
export function poolConcurrency(group: PoolGroup): number {
  return group.concurrency * group.replicas.max;
}

/** Requests sent at once to the whole group: every pool's share (a group without pools yet counts as one). */
export function groupConcurrency(group: PoolGroup, pools: number): number {
  return poolConcurrency(group) * Math.max(1, pools);
}
