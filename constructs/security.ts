/**
 * The restricted Pod Security Standard, applied to every workload: non-root with a fixed non-zero
 * uid/gid, no privilege escalation, no capabilities, RuntimeDefault seccomp, read-only root filesystem.
 */
import * as k8s from 'cdk8s-plus-27/lib/imports/k8s';

/** Who the containers run as. */
export interface RunAsProps {
  /** Non-zero user id of the container processes. @default 65532 */
  readonly runAsUser?: number;
  /** Non-zero group id of the container processes (and of the mounted volumes). @default 65532 */
  readonly runAsGroup?: number;
}

/** @internal Resolved uid/gid, checked: the restricted standard forbids uid 0. */
export function _runAs(props: RunAsProps, what: string): { uid: number; gid: number } {
  const uid = props.runAsUser ?? 65532;
  const gid = props.runAsGroup ?? 65532;
  for (const [prop, value] of [['runAsUser', uid], ['runAsGroup', gid]] as const) {
    if (!Number.isInteger(value) || value <= 0 || value > 2147483647) {
      throw new Error(`${what}: ${prop} must be a non-zero integer user/group id (the restricted Pod Security Standard forbids root), got ${JSON.stringify(value)}: use e.g. 65532`);
    }
  }
  return { uid, gid };
}

/** Pod-level security context of the restricted standard. */
export function podSecurityContext(uid: number, gid: number): k8s.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    fsGroup: gid,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Container-level security context of the restricted standard, with a read-only root filesystem. */
export function containerSecurityContext(uid: number, gid: number): k8s.SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
