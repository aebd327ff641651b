/** `botshard up` at start-up: a busy port fails at once with a hint; required API keys give a curl that works. */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureBuilt, until } from '../pool/support';
import { haproxy } from '../support/tools';
import { UpRow, killLeftovers, freePort, parseUpTable } from './support';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'runtime/bin/botshard.js');

beforeAll(() => ensureBuilt());

/** A copy of the example config in a fresh folder (it imports @botshard/runtime through node_modules). */
function configCopy(edit: (text: string) => string = (t) => t): { dir: string; config: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-e2e-'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const config = path.join(dir, 'bots.config.ts');
  fs.writeFileSync(config, edit(fs.readFileSync(path.join(ROOT, 'bots.config.ts'), 'utf8')));
  return { dir, config };
}

test('a busy router port fails at once, naming the port and --port, and starts nothing', async () => {
  const blocker = net.createServer();
  const port = await freePort();
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
  try {
    const { dir, config } = configCopy();
    const r = spawnSync(process.execPath, [BIN, 'up', '--config', config, '--port', String(port), '--grpc-port', '0', '--models', path.join(dir, 'models')], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`botshard up: port ${port} is already in use`);
    expect(r.stderr).toContain('--port');
    expect(r.stdout).not.toMatch(/restart/);
    expect(r.stdout).not.toContain('botshard is up');
  } finally {
    blocker.close();
  }
}, 60_000);

describe('a catalog that requires API keys (platform.auth: "tenant-keys")', () => {
  let up: ChildProcess;
  let rows: UpRow[] = [];
  afterAll(() => killLeftovers(up, rows));

  test('up generates a key per tenant and prints a curl that works; without the key the router answers 401', async () => {
    const { dir, config } = configCopy((t) => t.replace("auth: 'none'", "auth: 'tenant-keys'"));
    expect(fs.readFileSync(config, 'utf8')).toContain("auth: 'tenant-keys'");
    const port = await freePort();
    let output = '';
    up = spawn(process.execPath, [BIN, 'up', '--config', config, '--port', String(port), '--grpc-port', '0', '--models', path.join(dir, 'models')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BOTSHARD_TENANT_KEYS: '' } });
    up.stdout!.on('data', (d) => (output += d));
    up.stderr!.on('data', (d) => (output += d));
    await until(() => output.includes('API keys generated for this run'), 150_000, () => `up to be ready; output so far:\n${output}`);
    rows = parseUpTable(output);
    const curl = output.split('\n').find((l) => l.trim().startsWith('curl -s'))!.trim();
    const [, bot, key, text] = /\/v1\/bots\/([a-z0-9-]+)\/predict -H 'authorization: Bearer (\S+)' .* -d '(.*)'$/.exec(curl)!;
    const ask = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${port}/v1/bots/${bot}/predict`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text });
    expect((await ask({ authorization: `Bearer ${key}` })).status).toBe(200);
    expect((await ask({})).status).toBe(401);
    const exited = new Promise((resolve) => up.once('exit', resolve));
    up.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 180_000);
});

describe('the HAProxy mode (--router haproxy)', () => {
  let up: ChildProcess;
  let rows: UpRow[] = [];
  afterAll(() => killLeftovers(up, rows));

  test('without HAProxy, up fails at once saying how to install it', () => {
    const { dir, config } = configCopy();
    const r = spawnSync(process.execPath, [BIN, 'up', '--config', config, '--port', '0', '--router', 'haproxy', '--models', path.join(dir, 'models')], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, BOTSHARD_HAPROXY: path.join(dir, 'no-haproxy') } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('HAProxy is not installed');
    expect(r.stderr).toContain('apt-get install haproxy');
    expect(r.stdout).not.toContain('botshard is up');
    const bad = spawnSync(process.execPath, [BIN, 'up', '--config', config, '--router', 'envoy'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect([bad.status, bad.stderr.trim()]).toEqual([2, 'botshard up: --router must be "node" (the Node router) or "haproxy" (HAProxy carries the requests), got "envoy"']);
  }, 60_000);

  haproxy().test('with HAProxy, up serves every pool through it and stops cleanly', async () => {
    const { dir, config } = configCopy();
    let output = '';
    // Port 0: HAProxy's ports are chosen just before it binds them, and read from up's table. A port taken
    // from freePort() here (and the gRPC port beside it) could be taken by a parallel test meanwhile.
    up = spawn(process.execPath, [BIN, 'up', '--config', config, '--port', '0', '--grpc-port', '0', '--router', 'haproxy', '--models', path.join(dir, 'models')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    up.stdout!.on('data', (d) => (output += d));
    up.stderr!.on('data', (d) => (output += d));
    // The "logs:" line comes last, after the table: the output is read whole only then.
    await until(() => output.includes('botshard is up') && output.includes('\nlogs: '), 150_000, () => `up to be ready; output so far:\n${output}`);
    rows = parseUpTable(output);
    const router = rows.find((r) => r.pool === 'router' && r.group === '(HAProxy)');
    expect(router?.port).toBeGreaterThan(0);
    expect(router?.grpcPort).toBeGreaterThan(0);
    const port = router!.port;
    const curl = output.split('\n').find((l) => l.trim().startsWith('curl -s'))!.trim();
    const [, bot, text] = /\/v1\/bots\/([a-z0-9-]+)\/predict -H .* -d '(.*)'$/.exec(curl)!;
    const res = await fetch(`http://127.0.0.1:${port}/v1/bots/${bot}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { bot: string }).bot).toBe(bot);
    const exited = new Promise((resolve) => up.once('exit', resolve));
    up.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toMatch(/\[up\] stopped: router and \d+ pools drained, 0 responses cut off/);
  }, 180_000);
});
