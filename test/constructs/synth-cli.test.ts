/**
 * The synth entry as users run it, in child processes: `main.ts --check` (what `npm run synth` runs
 * before `cdk8s synth`, which deletes dist/ before it starts the app) and then cdk8s-cli itself.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { exampleCatalogInput } from './support';

const root = path.join(__dirname, '..', '..');
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name);
// The synth script this test stands for: `npm run build && ts-node ... constructs/main.ts --check && cdk8s synth`.
const SYNTH = `"${bin('ts-node')}" --transpile-only constructs/main.ts --check && "${bin('cdk8s')}" synth --no-check-upgrade`;

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-synth-'));
  fs.mkdirSync(path.join(tmp, 'dist'));
  fs.writeFileSync(path.join(tmp, 'dist', 'platform.k8s.yaml'), 'previous manifests\n');
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function synth(config: string, command = SYNTH) {
  const file = path.join(tmp, 'bots.config.ts');
  fs.writeFileSync(file, config);
  const r = spawnSync('sh', ['-c', command], {
    cwd: root,
    env: { ...process.env, BOTSHARD_CONFIG: file, CDK8S_OUTPUT: path.join(tmp, 'dist'), BOTSHARD_DEBUG: '' },
    encoding: 'utf8',
    timeout: 60000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, dist: fs.readdirSync(path.join(tmp, 'dist')).sort() };
}

const asModule = (input: unknown) => `export default ${JSON.stringify(input, null, 2)};\n`;

describe('npm run synth on a broken catalog', () => {
  it('prints every problem as a list, exits non-zero and leaves dist/ untouched', () => {
    const input = exampleCatalogInput();
    input.bots[0].id = 'Acme_Support';
    input.bots[1].tenant = 'nobody';
    input.groups[0].memroy = '1Gi';
    const r = synth(asModule(input));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/the catalog has 3 problems:/);
    expect(r.stderr).toMatch(/ {2}- bots\[0\] \(Acme_Support\)\.id: .*"Acme_Support"/);
    // Configs build bots with .map(): each path names the bot's id, not only its index.
    expect(r.stderr).toMatch(new RegExp(` {2}- bots\\[1\\] \\(${input.bots[1].id}\\)\\.tenant: .*"nobody"`));
    expect(r.stderr).toMatch(/ {2}- groups\[0\]\.memroy: is not a known field \(fix: did you mean "memory"\?\)/);
    expect(r.stderr).toContain('dist/ is unchanged');
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.dist).toEqual(['platform.k8s.yaml']);
    expect(fs.readFileSync(path.join(tmp, 'dist', 'platform.k8s.yaml'), 'utf8')).toBe('previous manifests\n');
  });

  it('reports a catalog that validates but cannot be synthesized, and a file that does not load', () => {
    const input = exampleCatalogInput();
    input.groups[0].replicas = { min: 1, max: 3 };
    const check = `"${bin('ts-node')}" --transpile-only constructs/main.ts --check`;
    const r = synth(asModule(input), check);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/the manifests cannot be synthesized:\n {2}- .*real-time workload needs replicas.min of at least 2.*raise groups\[\]\.replicas\.min of "realtime"/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    // A syntax error names file, line and column as tsc does; a runtime error the line that threw.
    const broken = synth('const x = 1;\nexport default { bots: [ };\n', check);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/bots\.config\.ts\(2,\d+\): error TS\d+: /);
    expect(broken.stderr).not.toMatch(/^\s+at /m);
    expect(broken.dist).toEqual(['platform.k8s.yaml']);
    const throws = synth('const langs: any = undefined;\n\nexport default { bots: langs.en };\n', check);
    expect(throws.status).toBe(1);
    expect(throws.stderr).toMatch(/bots\.config\.ts:3:\d+: TypeError: Cannot read properties of undefined \(reading 'en'\)/);
  });

  it('writes the same files as the committed dist/ for the example catalog', () => {
    const r = synth(asModule(exampleCatalogInput()));
    expect(r.stderr).not.toMatch(/synthesis stopped/);
    expect(r.status).toBe(0);
    expect(r.dist).toEqual(['platform.k8s.yaml', 'pool-group-batch.k8s.yaml', 'pool-group-realtime.k8s.yaml']);
    for (const f of r.dist) expect(fs.readFileSync(path.join(tmp, 'dist', f), 'utf8')).toBe(fs.readFileSync(path.join(root, 'dist', f), 'utf8'));
  });
});
