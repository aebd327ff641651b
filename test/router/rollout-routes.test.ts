/**
 * Model rollouts through both data planes (#31 rules 2, 3 and 6): a bot's versions addressed on REST and
 * gRPC through the Node router and the HAProxy mode, a canary's share sticky per conversation key carried
 * through each router (header and gRPC metadata), and the router's status aggregating the pools' rollouts.
 */
import { Catalog, parseCatalog, plan } from '@botshard/runtime';
import { formatRollouts } from '@botshard/runtime/commands/status';
import { takesCandidate } from '@botshard/runtime/pool/rollout/split';
import { rolloutsOf } from '@botshard/runtime/status';
import { runHaproxy, withHaproxy } from '../haproxy/support';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { RunningPool, SUPPORT, catalogInput, ensureBuilt, getJson, postJson, runPool, runPoolsOf, supportBot, tempDir, writeMountedCatalog } from '../pool/support';
import { GrpcClient, inferRequest } from '../support/grpc';
import { runRouter } from './support';

beforeAll(() => ensureBuilt());

/** Four bots over two pools, two of them with a canary candidate (share 0.5) that answers like the serving version. */
function rolloutCatalog(): Catalog {
  return parseCatalog(rolloutCatalogInput());
}

function rolloutCatalogInput() {
  const bots = ['anise', 'basil', 'cumin', 'dill'].map((id, i) => {
    const bot = supportBot(id);
    return i % 2 === 0 ? { ...bot, model: { ...bot.model, version: 'v1', candidate: { version: 'v2', head: `heads/${id}-v2.onnx`, memory: '2Mi', encoder: 'encoder-en', mode: 'canary' as const, share: 0.5, guards: { minRequests: 100_000 } } } } : bot;
  });
  return catalogInput(bots, 2);
}

const TEXT = SUPPORT[0].examples[0];
const KEYS = Array.from({ length: 40 }, (_, i) => `conversation-${i}`);
const expected = (bot: string) => KEYS.map((k) => (takesCandidate(bot, k, 0.5) ? 'v2' : 'v1'));

describe('rollouts through the routers', () => {
  const catalog = rolloutCatalog();
  let pools: RunningPool[] = [];
  let urls = new Map<string, string>();
  let grpcs = new Map<string, string>();
  const folder = tempDir('catalog');

  beforeAll(async () => {
    expect(new Set(plan(catalog).assignment.values()).size).toBe(2);
    ({ pools, urls, grpcs } = await runPoolsOf(catalog));
    // A pool is ready once its first catalog is applied, its candidates loaded.
    const states = pools.flatMap((p) => [...p.app.pool.rollouts.all()].map((r) => [r.bot.id, r.state]));
    expect(states.sort()).toEqual([['anise', 'judging'], ['cumin', 'judging']]);
    writeMountedCatalog(folder, catalog);
  }, 60_000);
  afterAll(() => Promise.all(pools.map((p) => p.close())));

  /** What each data plane is checked for, through its REST URL and gRPC endpoint. */
  async function checkRouter(url: string, grpcTarget: string, status: () => Promise<any>): Promise<void> {
    const client = new GrpcClient(grpcTarget);
    try {
      for (const bot of ['anise', 'cumin']) {
        for (const version of ['v1', 'v2']) {
          const r = await postJson(`${url}/v2/models/${bot}/versions/${version}/infer`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [TEXT] }] });
          expect([bot, r.status, r.body.model_version, r.body.outputs?.[0].data]).toEqual([bot, 200, version, ['password_reset']]);
          const g = await client.call('ModelInfer', { ...inferRequest(bot, [TEXT]), model_version: version });
          expect([bot, g.code, g.response?.model_version]).toEqual([bot, 0, version]);
        }
        expect((await getJson(`${url}/v2/models/${bot}`)).body.versions).toEqual(['v1', 'v2']);
        const unknown = await postJson(`${url}/v2/models/${bot}/versions/v9/infer`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [TEXT] }] });
        expect([unknown.status, unknown.body.error]).toEqual([404, `bot "${bot}" has no version "v9" to serve; its versions are "v1" (serving), "v2" (candidate)`]);
        const g = await client.call('ModelInfer', { ...inferRequest(bot, [TEXT]), model_version: 'v9' });
        expect([g.code, g.details]).toEqual([5, unknown.body.error]);
        // The canary's share, sticky per conversation: the key goes through the router to the pool.
        const rest: string[] = [];
        const overGrpc: string[] = [];
        for (const key of KEYS) {
          rest.push((await postJson(`${url}/v2/models/${bot}/infer`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [TEXT] }] }, { 'x-conversation-id': key })).body.model_version);
          overGrpc.push((await client.call('ModelInfer', inferRequest(bot, [TEXT]), { metadata: { 'x-conversation-id': key } })).response?.model_version);
        }
        expect(rest).toEqual(expected(bot));
        expect(overGrpc).toEqual(expected(bot));
      }
      // A bot without a candidate: version "1" only.
      expect((await postJson(`${url}/v2/models/basil/versions/1/infer`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [TEXT] }] })).body.model_version).toBe('1');
      // The router's status carries every pool's rollouts; botshard status sums them per bot.
      const s = await status();
      const rollouts = rolloutsOf(s);
      expect(rollouts.map((r) => [r.bot, r.serving, r.candidate, r.mode, r.state])).toEqual([
        ['anise', 'v1', 'v2', 'canary', 'judging'],
        ['cumin', 'v1', 'v2', 'canary', 'judging'],
      ]);
      for (const r of rollouts) expect(r.figures.candidate.requests).toBeGreaterThanOrEqual(expected(r.bot).filter((v) => v === 'v2').length);
      expect(formatRollouts(s)).toMatch(/^rollouts \(each pool replica judges its own traffic; figures summed over the 1 replica that answered; run times in the worker\):\nBOT +VERSION +ROLE/);
    } finally {
      client.close();
    }
  }

  test('the Node router', async () => {
    const router = await runRouter({ catalog: folder, urls, grpcs });
    try {
      await checkRouter(router.url, router.grpc, () => router.app.router.status());
    } finally {
      await router.close();
    }
  });

  test('two replicas of one pool judge their own traffic; the router\'s status sums them, and a rollback on one is the rollout\'s', async () => {
    const pool = plan(catalog).assignment.get('anise')!;
    const models = tempDir('models');
    writeDemoModels(catalog, models);
    // Replica b's candidate is an unsure head (its answers fall back): its guards roll it back after 5 requests; replica a's is good.
    const strict = tempDir('catalog');
    const input = rolloutCatalogInput();
    const strictCatalog = parseCatalog({ ...input, bots: input.bots.map((b) => (b.id === 'anise' ? { ...b, model: { ...b.model, candidate: { ...b.model.candidate!, head: 'heads/anise-unsure.onnx', guards: { minRequests: 5 } } } } : b)) });
    writeDemoModels(strictCatalog, models, { degraded: { 'heads/anise-unsure.onnx': { shuffle: 0, temperature: 0.5 } } });
    writeMountedCatalog(strict, strictCatalog);
    const a = await runPool({ pool, catalog: folder, modelRoot: models, workers: 1 });
    const b = await runPool({ pool, catalog: strict, modelRoot: models, workers: 1 });
    const router = await runRouter({ catalog: folder, urls: new Map([...urls, [pool, a.url]]), grpcs, poolReplicas: async () => [a.url, b.url] });
    try {
      const counts = { a: 0, b: 0 };
      for (const [name, replica] of [['a', a], ['b', b]] as const) {
        for (const key of KEYS) {
          const r = await postJson(`${replica.url}/v2/models/anise/infer`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [TEXT] }] }, { 'x-conversation-id': key });
          expect(r.status).toBe(200);
          if (r.body.model_version === 'v2') counts[name]++;
        }
      }
      const s = await router.app.router.status();
      expect(s.replicas!.map((r) => [r.pool, r.replica])).toEqual([[pool, expect.any(String)], [pool, expect.any(String)]]);
      const own = await Promise.all([a, b].map(async (r) => (await getJson(`${r.url}/botshard/status`)).body.rollouts.find((x: any) => x.bot === 'anise')));
      expect(own[0].state).toBe('judging');
      expect(own[1].state).toBe('rolled-back');
      const anise = rolloutsOf(s).find((r) => r.bot === 'anise')!;
      expect(anise).toMatchObject({ replicas: 2, state: 'rolled-back', rolledBack: own[1].rolledBack });
      expect(anise.figures.candidate.requests).toBe(own[0].figures.candidate.requests + own[1].figures.candidate.requests);
      expect(anise.figures.serving.requests).toBe(own[0].figures.serving.requests + own[1].figures.serving.requests);
      expect(counts.a).toBe(expected('anise').filter((v) => v === 'v2').length);
      expect(formatRollouts(s)).toContain('figures summed over the 2 replicas that answered');
    } finally {
      await router.close();
      await Promise.all([a.close(), b.close()]);
    }
  });

  withHaproxy().test('the HAProxy mode', async () => {
    const router = await runHaproxy({ catalog: folder, pools: urls, grpcs });
    try {
      await checkRouter(router.url, router.grpc, async () => (await getJson(router.metricsUrl.replace(/\/metrics$/, '/botshard/status'))).body);
    } finally {
      await router.stop();
    }
  });
});
