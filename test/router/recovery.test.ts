/**
 * Recovery paths of the router against a real pool process on loopback: a pool that is killed, comes
 * back slow (frozen with SIGSTOP, so the router's probe times out), then answers again must be served
 * again at the circuit's next probe, without restarting the router.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { parseCatalog, plan } from '@botshard/runtime';
import { catalogInput, ensureBuilt, postJson, supportBot, tempDir, until, withModels, writeMountedCatalog } from '../pool/support';
import { freePort } from '../e2e/support';
import { runRouter } from './support';

const BIN = path.resolve(__dirname, '../../runtime/bin/botshard.js');

beforeAll(() => ensureBuilt());

describe('a pool that restarts slowly', () => {
  const input = catalogInput([supportBot('olive'), supportBot('poppy')]);
  const catalog = parseCatalog({ ...input, groups: input.groups.map((g) => ({ ...g, timeoutMs: 800 })) });
  const pool = plan(catalog).pools[0].name;
  const folder = tempDir('catalog');
  const models = withModels(catalog);
  let proc: ChildProcess | undefined;
  let port: number;

  const startPool = async () => {
    proc = spawn(process.execPath, [BIN, 'pool', '--pool', pool, '--catalog', folder, '--models', models, '--port', String(port), '--metrics-port', '0', '--host', '127.0.0.1'], {
      stdio: 'ignore',
      env: { ...process.env, BOTSHARD_WORKERS: '1' },
    });
    await until(async () => (await fetch(`http://127.0.0.1:${port}/v2/health/ready`).catch(() => undefined))?.status === 200, 20_000, 'the pool process to be ready');
  };

  beforeAll(async () => {
    writeMountedCatalog(folder, catalog);
    port = await freePort();
  });
  afterAll(() => {
    if (proc && proc.exitCode === null) {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
    }
  });

  test('is served again at the first probe once it answers, after its probe timed out', async () => {
    await startPool();
    const router = await runRouter({ catalog, urls: new Map([[pool, `http://127.0.0.1:${port}`]]), circuitThreshold: 3, circuitCooldownMs: 1500 });
    type Outcome = { status: number; error?: string };
    const outcomes: Outcome[] = [];
    const predict = async (): Promise<Outcome> => {
      const res = await postJson(`${router.url}/v1/bots/olive/predict`, { text: 'hello there' });
      outcomes.push({ status: res.status, error: res.body.error });
      return outcomes[outcomes.length - 1];
    };
    const PAUSED = `pool "${pool}" is failing; calls to it are paused`;
    const paused = (o: Outcome) => o.status === 503 && o.error === PAUSED;
    try {
      expect((await predict()).status).toBe(200);

      // Killed: connections are refused until the circuit opens.
      const killed = proc!;
      killed.kill('SIGKILL');
      await new Promise((r) => killed.once('exit', r));
      for (let i = 0; i < 3; i++) expect((await predict()).status).toBe(503);
      expect(await predict()).toEqual({ status: 503, error: PAUSED });

      // Back, but frozen: it accepts connections and answers nothing. The circuit answers at once until its
      // cooldown has passed, then lets one probe through, which times out.
      await startPool();
      proc!.kill('SIGSTOP');
      await until(async () => !paused(await predict()), 20_000, 'the circuit to let a probe through');
      expect(outcomes[outcomes.length - 1]).toEqual({ status: 504, error: `pool "${pool}" did not answer in time (pool group "rt" allows 800 ms)` });

      // Answering again: directly at once, and through the router at the first probe after the cooldown the
      // failed probe started: until then the circuit answers at once, and no other call reaches the pool.
      proc!.kill('SIGCONT');
      await until(async () => (await postJson(`http://127.0.0.1:${port}/v1/bots/olive/predict`, { text: 'hello there' })).status === 200, 10_000, 'the pool to answer directly');
      const thawed = outcomes.length;
      await until(async () => (await predict()).status === 200, 20_000, 'the router to send to the pool again');
      expect(outcomes.slice(thawed, -1).filter((o) => !paused(o))).toEqual([]);
      expect((await postJson(`${router.url}/v1/bots/poppy/predict`, { text: 'my bill is wrong' })).status).toBe(200);
      const errors = await router.app.router.metrics.upstreamErrors.get();
      const count = (kind: string) => errors.values.filter((v) => v.labels.kind === kind).reduce((s, v) => s + v.value, 0);
      expect(count('connect')).toBe(3);
      expect(count('timeout')).toBe(1);
      expect(count('circuit_open')).toBe(outcomes.filter(paused).length);
    } finally {
      await router.close();
    }
  }, 90_000);
});
