/** The CPU limit of a container (runtime/src/io/cpus.ts), from cgroup files laid out as the kernel does. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { availableCpus, cgroupCpuLimit } from '@botshard/runtime/io/cpus';

function cgroup(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-cgroup-'));
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  }
  return root;
}

describe('cgroupCpuLimit', () => {
  test('cgroup v2: whole cores of quota / period, at least 1; none when "max"', () => {
    expect(cgroupCpuLimit(cgroup({ 'cpu.max': '100000 100000\n' }))).toBe(1);
    expect(cgroupCpuLimit(cgroup({ 'cpu.max': '250000 100000\n' }))).toBe(2);
    expect(cgroupCpuLimit(cgroup({ 'cpu.max': '50000 100000\n' }))).toBe(1);
    expect(cgroupCpuLimit(cgroup({ 'cpu.max': 'max 100000\n' }))).toBeUndefined();
  });

  test('cgroup v1: cfs quota / period; -1 is no limit', () => {
    expect(cgroupCpuLimit(cgroup({ 'cpu/cpu.cfs_quota_us': '300000\n', 'cpu/cpu.cfs_period_us': '100000\n' }))).toBe(3);
    expect(cgroupCpuLimit(cgroup({ 'cpu/cpu.cfs_quota_us': '-1\n', 'cpu/cpu.cfs_period_us': '100000\n' }))).toBeUndefined();
  });

  test('no cgroup files: no limit; availableCpus is then the host\'s', () => {
    expect(cgroupCpuLimit(cgroup({}))).toBeUndefined();
    expect(availableCpus()).toBe(Math.min(os.availableParallelism(), cgroupCpuLimit() ?? Infinity));
    expect(availableCpus()).toBeGreaterThanOrEqual(1);
  });
});
