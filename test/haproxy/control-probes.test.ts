/**
 * The HAProxy mode's control container probes (#32: a hung control plane is restarted, and a pod whose
 * HAProxy cannot be updated says so): live while its loop ends passes, ready while HAProxy routes the
 * current catalog generation. On a real HAProxy, frozen with SIGSTOP and thawed with SIGCONT.
 */
import { execFileSync } from 'node:child_process';
import { parseCatalog } from '@botshard/runtime';
import { CONTROL_LIVE_PATH, CONTROL_READY_PATH } from '@botshard/runtime/status';
import { catalogInput, ensureBuilt, getJson, runPoolsOf, supportBot, tempDir, until, writeMountedCatalog, RunningPool } from '../pool/support';
import { runHaproxy, withHaproxy } from './support';

beforeAll(() => ensureBuilt());

withHaproxy().describe('the control container\'s probes', () => {
  const v1 = parseCatalog(catalogInput([supportBot('anise'), supportBot('basil')]));
  const v2 = parseCatalog(catalogInput([supportBot('anise'), supportBot('basil'), supportBot('cumin')]));
  let pools: RunningPool[] = [];
  let urls = new Map<string, string>();
  let router: Awaited<ReturnType<typeof runHaproxy>>;
  const folder = tempDir('catalog');
  const state = tempDir('haproxy');
  const probe = async (path: string) => getJson(router.metricsUrl.replace(/\/metrics$/, path));
  /** HAProxy's processes (master and worker) of this router: their command line names its state folder. */
  const haproxyPids = () => execFileSync('pgrep', ['-f', `${state}/state/haproxy.cfg`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  const safePids = () => {
    try {
      return haproxyPids();
    } catch {
      return []; // pgrep exits 1 when nothing matches
    }
  };

  beforeAll(async () => {
    ({ pools, urls } = await runPoolsOf(v2));
    writeMountedCatalog(folder, v1);
    router = await runHaproxy({ catalog: folder, pools: urls, dir: state });
  }, 60_000);
  afterAll(async () => {
    for (const pid of safePids()) process.kill(Number(pid), 'SIGCONT');
    await router?.stop();
    await Promise.all(pools.map((p) => p.close()));
  });

  test('live and ready, naming the generation HAProxy routes; a new catalog is ready once applied', async () => {
    const live = await probe(CONTROL_LIVE_PATH);
    expect([live.status, live.body.live]).toEqual([200, true]);
    const ready = await probe(CONTROL_READY_PATH);
    expect([ready.status, ready.body]).toEqual([200, expect.objectContaining({ ready: true, generation: v1.generation, applied: v1.generation })]);
    writeMountedCatalog(folder, v2);
    await until(async () => (await probe(CONTROL_READY_PATH)).body.applied === v2.generation, 20_000, 'the new catalog applied');
    expect((await probe(CONTROL_READY_PATH)).status).toBe(200);
  });

  test('an HAProxy it cannot update (frozen): not ready, saying why, while the loop stays live; ready again once HAProxy answers', async () => {
    const pids = haproxyPids();
    expect(pids.length).toBeGreaterThanOrEqual(2); // master and worker
    for (const pid of pids) process.kill(Number(pid), 'SIGSTOP');
    try {
      await until(async () => (await probe(CONTROL_READY_PATH)).status === 503, 30_000, 'the control plane to report not ready');
      const ready = await probe(CONTROL_READY_PATH);
      expect(ready.body).toMatchObject({ ready: false, applied: v2.generation });
      expect(ready.body.appliedMsAgo).toBeGreaterThan(5000);
      expect((await probe(CONTROL_LIVE_PATH)).status).toBe(200);
    } finally {
      for (const pid of pids) process.kill(Number(pid), 'SIGCONT');
    }
    await until(async () => (await probe(CONTROL_READY_PATH)).status === 200, 30_000, 'the control plane to be ready again');
    expect((await probe(CONTROL_LIVE_PATH)).body).toMatchObject({ live: true, ready: true, applied: v2.generation });
  });
});
