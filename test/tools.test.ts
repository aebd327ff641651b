/**
 * The gate on outside tools (test/support/tools.ts): a gated test runs where its tool is, skips visibly
 * where it is not, and fails under CI, where .ci/run installs every gated tool.
 */
import { gateOf, inCi, probe } from './support/tools';

test('a gated test runs with its tool, fails without it under CI, and skips without it elsewhere', () => {
  expect([gateOf(true, false), gateOf(true, true), gateOf(false, true), gateOf(false, false)]).toEqual(['run', 'run', 'fail', 'skip']);
});

test('CI is CI=true (as .ci/run is started) or CI=1, and nothing else', () => {
  expect([inCi({ CI: 'true' }), inCi({ CI: '1' }), inCi({ CI: 'false' }), inCi({})]).toEqual([true, true, false, false]);
});

test('a tool is installed when it runs, exits 0 and, when asked, says what it is', () => {
  expect(probe(process.execPath, ['--version'])).toBe(true);
  expect(probe(process.execPath, ['--version'], /^v\d+\./)).toBe(true);
  expect(probe(process.execPath, ['--version'], /HAProxy version/)).toBe(false);
  expect(probe(process.execPath, ['-e', 'process.exit(3)'])).toBe(false);
  expect(probe('botshard-no-such-tool', ['-v'])).toBe(false);
});
