import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { normalizeCatalog, plan } from '@botshard/runtime';
import { smallCatalog } from './support/catalogs';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'runtime/bin/botshard.js');
const botshard = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-cli-'));
const write = (name: string, value: unknown) => {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
};

describe('botshard CLI', () => {
  it('a config that does not compile or throws is reported with its file, line and column', () => {
    const syntax = botshard('plan', '--config', write('syntax.config.ts', 'const a = 1;\nexport default { bots: [ });\n'));
    expect(syntax.status).toBe(1);
    expect(syntax.stderr).toMatch(/syntax\.config\.ts\(2,\d+\): error TS1\d+: .* \(fix: correct the TypeScript at that line and column\)/);
    const throws = botshard('plan', '--config', write('throws.config.ts', 'const table: any = undefined;\n\nexport default { bots: table.en };\n'));
    expect(throws.status).toBe(1);
    expect(throws.stderr).toMatch(/throws\.config\.ts:3:\d+: TypeError: Cannot read properties of undefined \(reading 'en'\)/);
    expect(throws.stderr).not.toMatch(/^\s+at /m);
  });

  it('plan warns about missing local model files (exit 0, stdout unchanged) and remote ones it cannot check', () => {
    const input = smallCatalog();
    input.platform = { ...(input.platform ?? {}), modelRoot: 'models-here' };
    input.bots[1].model.head = 's3://acme-models/heads/b.onnx';
    const file = write('models.json', input);
    fs.mkdirSync(path.join(tmp, 'models-here/heads'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'models-here', input.bots[0].model.head), 'x');
    const r = botshard('plan', '--catalog', file, '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).pools.length).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/^warning: \d+ model files are missing under .*models-here\/: .*heads\/.*\(fix: put your models there, or run `npx botshard models`/m);
    expect(r.stderr).not.toContain(input.bots[0].model.head);
    expect(r.stderr).toMatch(/^warning: 1 model is at s3:\/\/ or https:\/\/ locations, not checked offline/m);
  });

  it('plan reads ./bots.config.ts by default and prints one row per pool', () => {
    const r = botshard('plan');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^generation [0-9a-f]{16}  strategy sharded  43 bots in \d+ pools/);
    expect(r.stdout).toMatch(/^POOL\s+GROUP\s+BOTS\s+MEMORY\s+USED \/ BUDGET\s+ENCODERS$/m);
    expect(r.stdout).toMatch(/^acme-vip \*\s+realtime\s+1\s+\[#+-+\]/m);
    expect(r.stdout).toMatch(/^batch-[a-z0-9]{5}\s+batch\s+\d+/m);
  });

  it('plan --json lists every pool with its name, group, memory and bots, matching plan()', () => {
    const file = write('small.json', smallCatalog());
    const r = botshard('plan', '--catalog', file, '--json');
    expect(r.status).toBe(0);
    const json = JSON.parse(r.stdout);
    const result = normalizeCatalog(smallCatalog());
    if (!result.ok) throw new Error('invalid');
    const topology = plan(result.catalog);
    expect(json.generation).toBe(result.catalog.generation);
    expect(json.pools).toEqual(
      topology.pools.map((p) => ({ name: p.name, group: p.group, dedicated: p.dedicated, memory: { used: p.used, budget: p.budget }, encoders: p.encoders, bots: p.bots })),
    );
  });

  it('catalog prints the normalised catalog, which plan reads back', () => {
    const r = botshard('catalog');
    expect(r.status).toBe(0);
    const catalog = JSON.parse(r.stdout);
    expect(catalog).toMatchObject({ apiVersion: 'botshard.io/v1alpha1', kind: 'Catalog' });
    expect(catalog.bots).toHaveLength(43);
    const file = write('example.json', r.stdout);
    expect(botshard('plan', '--catalog', file).stdout).toBe(botshard('plan').stdout);
  });

  it('diff says which bots move where and why', () => {
    const before = smallCatalog();
    const after = smallCatalog();
    after.groups[0].pools = 3;
    after.bots.push({ ...after.bots[0], id: 'acme-new' });
    const r = botshard('diff', write('before.json', before), write('after.json', after));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/bots change pool/);
    expect(r.stdout).toMatch(/^pools added: realtime-[a-z0-9]{5}, realtime-[a-z0-9]{5}$/m);
    expect(r.stdout).toMatch(/^acme-new\s+-\s+realtime-[a-z0-9]{5}\s+bot added$/m);
    const json = JSON.parse(botshard('diff', write('before.json', before), write('after.json', after), '--json').stdout);
    expect(json.moves).toContainEqual(expect.objectContaining({ bot: 'acme-new', reason: 'bot added' }));
    expect(json.moves.filter((m: { reason: string }) => m.reason !== 'bot added').every((m: { reason: string }) => m.reason === 'pool added')).toBe(true);
  });

  it('plan warns about a pool that holds no bots (it would be deployed anyway)', () => {
    const input = smallCatalog();
    input.groups[0].pools = 12;
    const r = botshard('plan', '--catalog', write('empty-pools.json', input));
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^warning: pool realtime-[a-z0-9]{5} holds no bots but is deployed with at least 2 replicas of 512Mi \(fix: lower groups\[\]\.pools of "realtime" \(12 for \d+ bots\) or set it to "auto"\)$/m);
    expect(botshard('plan', '--catalog', write('auto-pools.json', smallCatalog())).stderr).not.toMatch(/holds no bots/);
  });

  it('diff lists bots that stay in their pool but reload with a new definition', () => {
    const before = smallCatalog();
    const after = smallCatalog();
    after.bots[0].model.head = 'heads/acme-support-v2.onnx';
    after.bots[0].preprocess = [];
    after.encoders[0].memory = '41Mi';
    const r = botshard('diff', write('before.json', before), write('after.json', after));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/: 0 of \d+ bots change pool, \d+ stay \(\d+ of them reload with a new definition\)/);
    expect(r.stdout).toMatch(new RegExp(`^${after.bots[0].id}\\s+\\S+\\s+model\\.head, preprocess`, 'm'));
    const json = JSON.parse(botshard('diff', write('before.json', before), write('after.json', after), '--json').stdout);
    const reload = json.reloads.find((x: { bot: string }) => x.bot === after.bots[0].id);
    expect(reload.changed).toEqual(expect.arrayContaining(['model.head', 'preprocess']));
    // Bots of the changed encoder reload too, whatever else stays the same.
    const viaEncoder = json.reloads.filter((x: { changed: string[] }) => x.changed.includes(`encoder ${after.encoders[0].id}`));
    expect(viaEncoder.length).toBeGreaterThan(0);
  });

  it('lists every catalog problem, exits 1 and prints no stack trace', () => {
    const bad = smallCatalog();
    bad.bots[0].id = 'Bad_Id';
    bad.bots[1].model.memory = '3 apples';
    bad.bots[2].pin = 'nowhere';
    const r = botshard('plan', '--catalog', write('bad.json', bad));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/the catalog has 3 problems/);
    expect(r.stderr).toMatch(/bots\[0\] \(Bad_Id\)\.id: bot id "Bad_Id" is not a DNS label/);
    expect(r.stderr).toMatch(/bots\[1\] \([a-z0-9-]+\)\.model\.memory: is not a memory size: "3 apples"/);
    expect(r.stderr).toMatch(/bots\[2\] \([a-z0-9-]+\)\.pin: pins to pool "nowhere", which does not exist/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('reports a config that does not exist or does not compile, exit 1', () => {
    const missing = botshard('plan', '--config', path.join(tmp, 'nope.config.ts'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nope.config.ts: .*nope.config.ts: does not exist \(fix: check the path/s);
    const broken = botshard('plan', '--config', write('broken.config.ts', 'export default {{;'));
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/broken\.config\.ts\(1,\d+\): error TS\d+: /);
  });

  it('exits 2 with usage for unknown commands and options', () => {
    expect(botshard('frobnicate').status).toBe(2);
    const r = botshard('plan', '--colour');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage: botshard/);
  });
});
