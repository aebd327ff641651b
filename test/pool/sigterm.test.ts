/** `botshard pool` as a real process: port 0, JSON logs, SIGTERM drain, a second signal. */
import { parseCatalog } from '@botshard/runtime';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PoolProcess, ROOT, catalogInput, ensureBuilt, inWorker, placement, postJson, slowModels, spawnPool, standaloneBot, supportBot, tempDir, until } from './support';

const catalog = parseCatalog(catalogInput([supportBot('fast'), standaloneBot('slow')]));
const poolName = [...placement(catalog).values()][0];
let catalogFile: string;
let models: string;

beforeAll(() => {
  ensureBuilt();
  catalogFile = path.join(tempDir('catalog'), 'catalog.json');
  fs.writeFileSync(catalogFile, JSON.stringify(catalog));
  models = slowModels(catalog);
});

/** Starts the test pool as a process; 30 s group timeout, 2 workers unless `env` says otherwise. */
function start(env: Record<string, string> = {}): Promise<PoolProcess> {
  return spawnPool({ pool: poolName, catalogFile, models, env: { BOTSHARD_WORKERS: '2', BOTSHARD_TIMEOUT_MS: '30000', ...env } });
}

test('serves on the bound port, names its pool, and exposes metrics on the other port', async () => {
  const pool = await start();
  try {
    const listening = pool.logs.find((l) => l.msg === 'listening');
    expect(listening).toMatchObject({ pool: poolName, port: expect.any(Number), metricsPort: expect.any(Number) });
    expect(listening.port).not.toBe(0);
    const res = await postJson(`${pool.url}/v1/bots/fast/predict`, { text: 'I forgot my password' }, { 'x-request-id': 'abc-123' });
    expect(res.body).toMatchObject({ intent: 'password_reset', pool: poolName });
    expect(res.headers.get('x-request-id')).toBe('abc-123');
    expect(await (await fetch(pool.metricsUrl)).text()).toContain('botshard_pool_bots_assigned');
    expect(fs.readFileSync(`/proc/${pool.child.pid}/cmdline`, 'utf8')).toContain(poolName);
  } finally {
    pool.child.kill('SIGKILL');
    await pool.exited;
  }
});

test('SIGTERM: finishes the request in flight, stops listening, exits 0', async () => {
  const pool = await start();
  const inflight = postJson(`${pool.url}/v1/bots/slow/predict`, { text: 'yes please' });
  await inWorker(pool);
  pool.child.kill('SIGTERM');
  const res = await inflight;
  expect(res.status).toBe(200);
  expect(res.body.bot).toBe('slow');
  const exit = await pool.exited;
  expect(exit).toEqual({ code: 0, signal: null });
  const messages = pool.logs.map((l) => l.msg);
  expect(messages).toEqual(expect.arrayContaining(['signal received: draining', 'draining: not ready, finishing in-flight requests', 'drained: exiting']));
  // Nothing listens any more.
  await expect(fetch(`${pool.url}/v2/health/live`)).rejects.toThrow();
});

test('a second signal ends the process at once, without waiting for the request in flight', async () => {
  const pool = await start({ BOTSHARD_DRAIN_SECONDS: '60' });
  const inflight = postJson(`${pool.url}/v1/bots/slow/predict`, { text: 'yes please' }).then(
    (r) => r.status,
    () => 'aborted',
  );
  await inWorker(pool);
  pool.child.kill('SIGTERM');
  await until(() => pool.logs.some((l) => l.msg === 'signal received: draining'), 10_000, 'the first signal to be handled');
  pool.child.kill('SIGTERM');
  const exit = await pool.exited;
  expect(exit).toEqual({ code: null, signal: 'SIGTERM' }); // killed by the signal, as without a handler
  expect(await inflight).toBe('aborted');
  expect(pool.logs.map((l) => l.msg)).toContain('second signal: exiting at once');
});

test('bad settings exit 2 with a message, an invalid catalog exits 1', async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'runtime/bin/botshard.js'), 'pool', ...args], { cwd: ROOT, env: { ...process.env, BOTSHARD_POOL: '', BOTSHARD_CATALOG: '' } });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
  const noPool = await run(['--catalog', catalogFile]);
  expect(noPool.code).toBe(2);
  expect(noPool.stderr).toMatch(/pool name is missing/);
  const badPort = await run(['--pool', poolName, '--catalog', catalogFile, '--port', 'http']);
  expect(badPort.code).toBe(2);
  expect(badPort.stderr).toMatch(/--port \/ BOTSHARD_PORT must be an integer from 0 to 65535, got "http"/);
  const bad = path.join(tempDir('bad'), 'catalog.json');
  fs.writeFileSync(bad, JSON.stringify({ ...catalog, bots: [{ ...catalog.bots[0], id: 'Not Valid' }] }));
  const invalid = await run(['--pool', poolName, '--catalog', bad, '--port', '0', '--metrics-port', '0']);
  expect(invalid.code).toBe(1);
  expect(invalid.stderr).toMatch(/the catalog has \d+ problem/);
  expect(invalid.stderr).not.toMatch(/\n\s+at /); // no stack trace
});
