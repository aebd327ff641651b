/**
 * Tests gated on an outside tool that `.ci/run` installs (HAProxy, promtool, openssl). Where the tool is
 * missing, the gated tests are visible skips (`test.skip`) and the reason is printed once. Under `CI=true`
 * `.ci/run` has installed every such tool, so a missing one is not a skip but a failing test that names
 * the tool and the package: a gated check can never pass silently in CI.
 */
import { spawnSync } from 'node:child_process';

export interface Tool {
  /** The command, as the tests run it. */
  command: string;
  installed: boolean;
  /** `test` where the tool runs; a visible skip (locally) or a failure naming the tool (CI) where it does not. */
  test: (title: string, fn: jest.ProvidesCallback, timeout?: number) => void;
  /** `describe` with the same rule: its tests skip locally, and CI gets one failing test in their place. */
  describe: (title: string, fn: () => void) => void;
}

/** Whether this run is CI's (`.ci/run` sets CI=true and installs the gated tools). */
export const inCi = (env: NodeJS.ProcessEnv = process.env): boolean => env.CI === 'true' || env.CI === '1';

/** What a gated test does: run where its tool is installed; otherwise fail under CI and skip elsewhere. */
export function gateOf(installed: boolean, ci: boolean): 'run' | 'fail' | 'skip' {
  if (installed) return 'run';
  return ci ? 'fail' : 'skip';
}

/** Whether `command args` runs and exits 0, its output matching `expect` when given. */
export function probe(command: string, args: string[], expect?: RegExp): boolean {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return !r.error && r.status === 0 && (expect === undefined || expect.test(`${r.stdout}${r.stderr}`));
}

/**
 * A gate on `command`: installed when `command args` exits 0 and, when given, its output matches `expect`.
 * `what` says what the gated tests check and `pkg` the Debian package that brings the tool.
 */
export function tool(command: string, args: string[], o: { pkg: string; what: string; expect?: RegExp; env?: NodeJS.ProcessEnv }): Tool {
  const installed = probe(command, args, o.expect);
  const missing = `${command} is not installed (apt-get install ${o.pkg}), so ${o.what} are not checked here`;
  const gate = gateOf(installed, inCi(o.env ?? process.env));
  if (gate === 'run') return { command, installed, test, describe };
  if (gate === 'fail') {
    const fail = () => {
      throw new Error(`${missing}; CI=true and .ci/run installs it, so this is a failure, not a skip`);
    };
    return {
      command,
      installed,
      test: (title) => test(title, fail),
      describe: (title) => describe(title, () => test(`needs ${command}`, fail)),
    };
  }
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED: ${missing}; .ci/run installs it`);
  return { command, installed, test: test.skip, describe: describe.skip };
}

export const haproxy = (command = process.env.BOTSHARD_HAPROXY || 'haproxy') =>
  tool(command, ['-v'], { pkg: 'haproxy', what: 'the HAProxy mode tests', expect: /HAProxy version/ });
export const promtool = () => tool('promtool', ['--version'], { pkg: 'prometheus', what: 'the metrics and rules lints' });
export const openssl = () => tool('openssl', ['version'], { pkg: 'openssl', what: 'the HTTPS model source tests' });
