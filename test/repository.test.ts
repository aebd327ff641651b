/** What a newcomer meets before any code runs: npm commands without warnings, dependencies for this Node. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
// npm's own range matching (semver ships with npm's dependency tree here; no types needed for one call).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const semver = require('semver') as { satisfies(version: string, range: string): boolean };

test('npm runs in the repository without warnings (no unknown project config)', () => {
  const r = spawnSync('npm', ['pkg', 'get', 'name'], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stderr).not.toMatch(/npm warn/i);
  expect(r.stdout.trim()).toBe('"botshard"');
});

test('every locked package supports this Node (npm ci prints no EBADENGINE)', () => {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean; version?: string }> };
  const unsupported: string[] = [];
  for (const [where, pkg] of Object.entries(lock.packages)) {
    const range = pkg.engines && !Array.isArray(pkg.engines) ? pkg.engines.node : undefined;
    if (!where || pkg.optional || !range) continue;
    if (!semver.satisfies(process.version, range)) unsupported.push(`${where}@${pkg.version} wants node ${range}`);
  }
  expect(unsupported).toEqual([]);
});

test("onnxruntime-node's GPU download is denied by package.json, not by an unknown npm setting", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
  expect(fs.existsSync(path.join(ROOT, '.npmrc'))).toBe(false);
});
