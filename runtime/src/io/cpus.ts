/** The CPUs this process may use: the host's, or fewer when a container's CPU limit says so. */
import * as fs from 'node:fs';
import * as os from 'node:os';

/**
 * The CPU limit of this process's cgroup in whole cores (at least 1), or undefined without one: cgroup v2
 * (`cpu.max`: "<quota> <period>" or "max <period>") or v1 (`cpu.cfs_quota_us`, -1 when unlimited). A pod
 * with `limits.cpu: 1` on a 16-core node gets 1, where `os.availableParallelism()` says 16.
 */
export function cgroupCpuLimit(root = '/sys/fs/cgroup'): number | undefined {
  const cores = (quota: number, period: number) => (quota > 0 && period > 0 ? Math.max(1, Math.floor(quota / period)) : undefined);
  try {
    const [quota, period] = fs.readFileSync(`${root}/cpu.max`, 'utf8').trim().split(/\s+/);
    return quota === 'max' ? undefined : cores(Number(quota), Number(period));
  } catch {
    // not cgroup v2
  }
  try {
    const read = (f: string) => Number(fs.readFileSync(`${root}/cpu/${f}`, 'utf8').trim());
    return cores(read('cpu.cfs_quota_us'), read('cpu.cfs_period_us'));
  } catch {
    return undefined;
  }
}

/** CPUs to plan threads for: the host's, capped by the cgroup's limit. */
export function availableCpus(): number {
  return Math.min(os.availableParallelism(), cgroupCpuLimit() ?? Infinity);
}
