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
import { RunningPool, SUPPORT, catalogInput, ensureBuilt, getJson, postJson, runPoolsOf, supportBot, tempDir, writeMountedCatalog } from '../pool/support';
import { GrpcClient, inferRequest } from '../support/grpc';
import { runRouter } from './support';

beforeAll(() => ensureBuilt());

/** Four bots over two pools, two of them with a canary candidate (share 0.5) that answers like the serving version. */
function rolloutCatalog(): Catalog {
  const bots = ['anise', 'basil', 'cumin', 'dill'].map((id, i) => {
    const bot = supportBot(id);
    return i % 2 === 0 ? { ...bot, model: { ...bot.model, version: 'v1', candidate: { version: 'v2', head: `heads/${id}-v2.onnx`, memory: '2Mi', encoder: 'encoder-en', mode: 'canary' as const, share: 0.5, guards: { minRequests: 100_000 } } } } : bot;
  });
  return parseCatalog(catalogInput(bots, 2));
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
      const rollouts = rolloutsOf(s.pools);
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

  withHaproxy().test('the HAProxy mode', async () => {
    const router = await runHaproxy({ catalog: folder, pools: urls, grpcs });
    try {
      await checkRouter(router.url, router.grpc, async () => (await getJson(router.metricsUrl.replace(/\/metrics$/, '/botshard/status'))).body);
    } finally {
      await router.stop();
    }
  });
});
