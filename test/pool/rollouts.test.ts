/**
 * Model rollouts on a real pool (#31 rules 2 to 5): versions in the protocol, a candidate beside the serving
 * version as a canary (its share sticky per conversation) or a shadow (never changing an answer), each guard
 * rolling a bad candidate back (asserted on the pool's counters, never on time), a rollback lasting across
 * catalogs that leave the candidate alone, a candidate that does not fit refused, and a promotion.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog, parseCatalog } from '@botshard/runtime';
import type { BotInput, CandidateInput, GuardsInput } from '@botshard/runtime/catalog';
import { formatStatus } from '@botshard/runtime/commands/status';
import { demoHead, encoderTable } from '@botshard/runtime/local/demo-heads';
import { buildHeadModel, writeDemoModels } from '@botshard/runtime/local/models';
import type { Degradation } from '@botshard/runtime/local/models';
import { takesCandidate } from '@botshard/runtime/pool/rollout/split';
import { figuresOf } from '@botshard/runtime/status/figures';
import { GrpcClient } from '../support/grpc';
import { RunningPool, SUPPORT, catalogInput, ensureBuilt, getJson, placement, postJson, runPool, supportBot, tempDir, until, writeMountedCatalog } from './support';

beforeAll(() => ensureBuilt());

const BOT = 'sage';
const TEXTS = SUPPORT.flatMap((i) => i.examples);
const NEXT = 'heads/sage-next.onnx';

function catalogWith(candidate?: Partial<CandidateInput> & { guards?: GuardsInput }, o: { memory?: string; more?: BotInput[]; head?: string; version?: string } = {}): Catalog {
  const bot = supportBot(BOT);
  const model = { ...bot.model, head: o.head ?? bot.model.head, version: o.version ?? '2026-11', ...(candidate ? { candidate: { version: '2026-12', head: NEXT, memory: '2Mi', encoder: 'encoder-en', mode: 'canary', ...candidate } as CandidateInput } : {}) };
  const input = catalogInput([{ ...bot, model }, ...(o.more ?? [])]);
  return parseCatalog({ ...input, groups: [{ ...input.groups[0], ...(o.memory ? { memory: o.memory } : {}) }] });
}

describe('model rollouts on a pool', () => {
  const folder = tempDir('catalog');
  const models = tempDir('models');
  let pool: RunningPool;
  const logs: string[] = [];

  const infer = (text: string, o: { version?: string; conversation?: string; parameter?: string } = {}) =>
    postJson(
      `${pool.url}/v2/models/${BOT}${o.version ? `/versions/${o.version}` : ''}/infer`,
      { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [text] }], ...(o.parameter ? { parameters: { conversation_id: o.parameter } } : {}) },
      o.conversation ? { 'x-conversation-id': o.conversation } : {},
    );
  const rollout = async () => (await getJson(`${pool.url}/botshard/status`)).body.rollouts.find((r: any) => r.bot === BOT);
  /** Applies a catalog and waits for the pool to serve it (and for its candidate, if any, to settle). */
  async function apply(catalog: Catalog, settled: string[] = ['judging']): Promise<void> {
    writeMountedCatalog(folder, catalog);
    await until(async () => pool.app.pool.catalog?.generation === catalog.generation && (catalog.bots[0].model.candidate === undefined || settled.includes((await rollout())?.state)), 20_000, `generation ${catalog.generation}`);
  }
  /** Sends the bot's texts one after the other until `done`, at most `max` requests; every answer must be a 200. */
  async function trafficUntil(done: () => Promise<boolean>, max: number, o: { conversation?: (i: number) => string } = {}): Promise<number> {
    for (let i = 0; i < max; i++) {
      const r = await infer(TEXTS[i % TEXTS.length], { conversation: o.conversation?.(i) });
      expect(r.status).toBe(200);
      if (await done()) return i + 1;
    }
    throw new Error(`not done after ${max} requests: ${JSON.stringify(await rollout())}`);
  }

  beforeAll(async () => {
    const v1 = catalogWith();
    // Degraded heads: every intent trained on another's examples; one trained right but unsure (its answers fall below the threshold).
    const degraded: Record<string, Degradation> = { 'heads/sage-shuffled.onnx': { shuffle: 1 }, 'heads/sage-unsure.onnx': { shuffle: 0, temperature: 0.5 } };
    writeDemoModels(catalogWith({ head: NEXT }), models);
    for (const [head, d] of Object.entries(degraded)) writeDemoModels(catalogWith({ head }), models, { degraded: { [head]: d } });
    // A head that answers like the serving one but does milliseconds of extra work: it breaches the p99 guard.
    const slow = catalogWith({ head: 'heads/sage-slow.onnx' });
    const encoder = slow.encoders[0];
    const head = demoHead(slow.bots[0], { head: 'heads/sage-slow.onnx', encoder: encoder.id }, new Map([[encoder.id, { encoder, table: encoderTable(encoder, 1) }]]), {});
    fs.writeFileSync(path.join(models, 'heads/sage-slow.onnx'), buildHeadModel({ weights: head.weights, dimensions: head.dimensions, labels: head.labels, slow: { size: 256, rounds: 10 } }));
    // One that loads and fails on every text at run time: it breaches the error guard.
    fs.writeFileSync(path.join(models, 'heads/sage-failing.onnx'), buildHeadModel({ weights: head.weights, dimensions: head.dimensions, labels: head.labels, failing: true }));
    writeMountedCatalog(folder, v1);
    const logger = { level: 'info', stream: { write: (line: string) => void logs.push(line) } };
    pool = await runPool({ pool: [...placement(v1).values()][0], catalog: folder, modelRoot: models, pollMs: 100, logger });
  });
  afterAll(() => pool?.close());

  test('versions: metadata lists the serving version and a candidate taking traffic, answers name the version, others are a 404 naming the versions', async () => {
    const grpc = new GrpcClient(pool.grpc);
    try {
      expect((await getJson(`${pool.url}/v2/models/${BOT}`)).body.versions).toEqual(['2026-11']);
      await apply(catalogWith({ share: 0 }));
      const meta = (await getJson(`${pool.url}/v2/models/${BOT}`)).body;
      expect(meta.versions).toEqual(['2026-11', '2026-12']);
      expect(meta.parameters).toMatchObject({ candidate_version: '2026-12', candidate_mode: 'canary', candidate_share: 0, candidate_state: 'judging' });
      for (const version of ['2026-11', '2026-12']) {
        const r = await infer(TEXTS[0], { version });
        expect([r.status, r.body.model_version, r.body.outputs[0].data]).toEqual([200, version, ['password_reset']]);
        expect((await getJson(`${pool.url}/v2/models/${BOT}/versions/${version}/ready`)).body.ready).toBe(true);
        const g = await grpc.call('ModelInfer', { model_name: BOT, model_version: version, inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from(TEXTS[0])] } }] });
        expect([g.code, g.response?.model_version]).toEqual([0, version]);
      }
      // No version: the serving one (a canary share of 0).
      expect((await infer(TEXTS[0])).body.model_version).toBe('2026-11');
      const unknown = await infer(TEXTS[0], { version: '7' });
      expect([unknown.status, unknown.body.error]).toEqual([404, 'bot "sage" has no version "7" to serve; its versions are "2026-11" (serving), "2026-12" (candidate)']);
      const g = await grpc.call('ModelMetadata', { name: BOT, version: '7' });
      expect([g.code, g.details]).toEqual([5, unknown.body.error]);
    } finally {
      grpc.close();
    }
  });

  test('a candidate added, changed or dropped, or a new label on the serving version, never reloads the serving version', async () => {
    const headKey = () => pool.app.pool.bots.get(BOT)?.headKey;
    const before = headKey();
    expect(before).toMatch(/^sage#\d+$/);
    for (const c of [catalogWith({ share: 0.1 }), catalogWith({ share: 0.2, mode: 'shadow' }), catalogWith(), catalogWith(undefined, { version: 'relabelled' })]) {
      writeMountedCatalog(folder, c);
      await until(() => pool.app.pool.catalog?.generation === c.generation, 20_000, `generation ${c.generation}`);
      expect(headKey()).toBe(before);
    }
    expect((await infer(TEXTS[0])).body.model_version).toBe('relabelled');
    await apply(catalogWith());
    expect(headKey()).toBe(before);
  });

  test('canary: the declared share of conversations, each always on the same version (header or parameter); only split traffic is counted', async () => {
    await apply(catalogWith({ share: 0.3, guards: { minRequests: 100_000 } }));
    const keys = Array.from({ length: 200 }, (_, i) => `conversation-${i}`);
    const versions = async (how: 'header' | 'parameter') => {
      const out: string[] = [];
      for (const [i, key] of keys.entries()) {
        const r = await infer(TEXTS[i % TEXTS.length], how === 'header' ? { conversation: key } : { parameter: key });
        expect(r.status).toBe(200);
        out.push(r.body.model_version);
      }
      return out;
    };
    const first = await versions('header');
    // Exactly the conversations the split assigns: sticky by construction, not by chance.
    expect(first).toEqual(keys.map((k) => (takesCandidate(BOT, k, 0.3) ? '2026-12' : '2026-11')));
    const share = first.filter((v) => v === '2026-12').length / keys.length;
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.4);
    expect(await versions('parameter')).toEqual(first);
    // /v1/bots/{bot}/predict takes the header too (its answer does not name the version: the counts tell).
    const before = (await rollout()).figures.candidate.requests;
    for (const key of keys.slice(0, 50)) expect((await postJson(`${pool.url}/v1/bots/${BOT}/predict`, { text: TEXTS[0] }, { 'x-conversation-id': key })).status).toBe(200);
    const taken = keys.slice(0, 50).filter((k) => takesCandidate(BOT, k, 0.3)).length;
    expect((await rollout()).figures.candidate.requests - before).toBe(taken);
    const { figures } = await rollout();
    expect(figures.candidate.requests).toBe(2 * first.filter((v) => v === '2026-12').length + taken);
    expect(figures.serving.requests).toBe(2 * first.filter((v) => v === '2026-11').length + 50 - taken);
  });

  test('shadow: every answer comes from the serving version; the copies are compared (a shuffled candidate disagrees)', async () => {
    const before: string[] = [];
    for (const t of TEXTS) before.push((await infer(t, { version: '2026-11' })).body.outputs[0].data[0]);
    await apply(catalogWith({ mode: 'shadow', head: 'heads/sage-shuffled.onnx', guards: { minRequests: 100_000 } }));
    await trafficUntil(async () => {
      const r = await rollout();
      return r.figures.candidate.compared >= 3 * TEXTS.length;
    }, 40 * TEXTS.length);
    for (const [i, t] of TEXTS.entries()) {
      const r = await infer(t);
      expect([r.body.model_version, r.body.outputs[0].data[0]]).toEqual(['2026-11', before[i]]);
    }
    const f = figuresOf((await rollout()).figures.candidate);
    expect(f.agreementPct).not.toBeNull();
    expect(f.agreementPct!).toBeLessThan(50);
    expect((await rollout()).state).toBe('judging');
  });

  test.each([
    ['minAgreementPct', { mode: 'shadow', head: 'heads/sage-shuffled.onnx' }],
    ['maxFallbackRisePp', { mode: 'canary', share: 0.5, head: 'heads/sage-unsure.onnx' }],
    ['maxErrorRate', { mode: 'canary', share: 0.5, head: 'heads/sage-failing.onnx' }],
    ['maxP99Ratio', { mode: 'canary', share: 0.5, head: 'heads/sage-slow.onnx' }],
  ] as const)('the %s guard rolls a bad candidate back once it has its minimum of requests, and unloads it', async (guard, candidate) => {
    const c = catalogWith({ ...candidate, version: `bad-${guard.toLowerCase()}`, guards: { minRequests: 30 } });
    await apply(c);
    await trafficUntil(async () => (await rollout()).state === 'rolled-back', 3000, { conversation: (i) => `c${i}` });
    const r = await rollout();
    // (Limits as the status shows them: the error rate in percent.)
    const limit = c.bots[0].model.candidate!.guards[guard] * (guard === 'maxErrorRate' ? 100 : 1);
    expect(r.rolledBack).toMatchObject({ guard, limit });
    expect(r.figures.candidate.requests).toBeGreaterThanOrEqual(30);
    const f = { serving: figuresOf(r.figures.serving), candidate: figuresOf(r.figures.candidate) };
    if (guard === 'minAgreementPct') expect(f.candidate.agreementPct!).toBeLessThan(90);
    if (guard === 'maxFallbackRisePp') expect(f.candidate.fallbackRatePct! - f.serving.fallbackRatePct!).toBeGreaterThan(5);
    if (guard === 'maxErrorRate') expect([f.candidate.errors, f.candidate.errorRatePct! > 2]).toEqual([f.candidate.requests, true]);
    if (guard === 'maxP99Ratio') expect([f.candidate.p99Ms! / f.serving.p99Ms! > 1.5, f.candidate.p99Ms! - f.serving.p99Ms! > 5]).toEqual([true, true]);
    // Unloaded: no traffic, not a version any more, counted, logged, and shown by botshard status.
    expect((await getJson(`${pool.url}/v2/models/${BOT}`)).body.versions).toEqual(['2026-11']);
    const asked = await infer(TEXTS[0], { version: c.bots[0].model.candidate!.version });
    expect([asked.status, asked.body.error]).toEqual([404, expect.stringContaining(`its candidate "${c.bots[0].model.candidate!.version}" is rolled-back`)]);
    const requests = r.figures.candidate.requests;
    for (let i = 0; i < 20; i++) expect((await infer(TEXTS[i % TEXTS.length], { conversation: `after-${i}` })).body.model_version).toBe('2026-11');
    expect((await rollout()).figures.candidate.requests).toBe(requests);
    const metrics = await pool.app.poolMetrics.registry.metrics();
    expect(metrics).toContain(`botshard_pool_rollbacks_total{bot="sage",guard="${guard}",pool=`);
    expect(metrics).toMatch(/botshard_pool_candidates\{state="rolled-back",pool="[^"]+"\} 1/);
    expect(logs.some((l) => l.includes('candidate rolled back') && l.includes(`"guard":"${guard}"`))).toBe(true);
    const printed = formatStatus({ router: { generation: c.generation, dataPlane: 'node' }, pools: [(await getJson(`${pool.url}/botshard/status`)).body] });
    expect(printed).toContain(`  sage: candidate ${c.bots[0].model.candidate!.version} rolled back at ${r.rolledBack.at} by ${guard}: ${r.rolledBack.reason}`);
  });

  test('a rollback lasts across a catalog that leaves the candidate alone; a changed candidate starts over', async () => {
    const state = await rollout();
    expect(state.state).toBe('rolled-back');
    const more = catalogWith({ mode: 'canary', share: 0.5, head: 'heads/sage-slow.onnx', version: 'bad-maxp99ratio', guards: { minRequests: 30 } }, { more: [supportBot('thyme', { model: { head: `heads/${BOT}.onnx`, memory: '2Mi', encoder: 'encoder-en' } })] });
    writeMountedCatalog(folder, more);
    await until(() => pool.app.pool.catalog?.generation === more.generation && pool.app.pool.bots.get('thyme')?.state === 'ready', 20_000, 'the catalog with one more bot');
    expect(await rollout()).toMatchObject({ state: 'rolled-back', rolledBack: state.rolledBack, candidate: 'bad-maxp99ratio' });
    await apply(catalogWith({ share: 0.5 }));
    expect(await rollout()).toMatchObject({ state: 'judging', candidate: '2026-12' });
    expect((await rollout()).rolledBack).toBeUndefined();
  });

  test('a candidate the pool\'s memory cannot hold is refused with the reason; the serving version is untouched', async () => {
    await apply(catalogWith({ memory: '2Gi' }), ['refused']);
    const r = await rollout();
    expect(r.error).toMatch(/^it needs 2048 MiB and the pool has \d+(\.\d+)? MiB free of its memory 1024 MiB \(\d+(\.\d+)? MiB declared in use\)$/);
    expect((await getJson(`${pool.url}/v2/models/${BOT}`)).body.versions).toEqual(['2026-11']);
    const answer = (await infer(TEXTS[0])).body;
    expect([answer.model_version, answer.outputs[0].data]).toEqual(['2026-11', ['password_reset']]);
    expect(pool.app.pool.bots.get(BOT)?.state).toBe('ready');
  });

  test('promotion: the candidate becomes the model (a catalog edit) and answers as the serving version', async () => {
    await apply(catalogWith({ share: 0.5 }));
    const promoted = catalogWith(undefined, { head: NEXT, version: '2026-12' });
    writeMountedCatalog(folder, promoted);
    // (A canary answer names 2026-12 too: wait for the catalog to be applied, the rollout ended with it.)
    await until(async () => pool.app.pool.catalog?.generation === promoted.generation && (await rollout()) === undefined, 20_000, 'the promotion to be applied');
    for (const t of TEXTS) expect((await infer(t)).body.model_version).toBe('2026-12');
    expect((await getJson(`${pool.url}/v2/models/${BOT}`)).body.versions).toEqual(['2026-12']);
    expect((await infer(TEXTS[0], { version: '2026-11' })).status).toBe(404);
  });
});

describe('a rollout in an overcommitted pool', () => {
  const folder = tempDir('catalog');
  const models = tempDir('models');
  let pool: RunningPool;
  // Two bots of 400Mi where the pool keeps 768Mi resident (1Gi at the fill factor, 100Mi overhead): one resident at a time.
  const big = (id: string, candidate?: Partial<CandidateInput>): BotInput => {
    const bot = supportBot(id);
    return { ...bot, model: { ...bot.model, memory: '400Mi', ...(candidate ? { candidate: { version: 'next', head: `heads/${id}-next.onnx`, memory: '2Mi', encoder: 'encoder-en', mode: 'canary', share: 0, ...candidate } as CandidateInput } : {}) } };
  };
  const input = catalogInput([big(BOT, {}), big('thyme')]);
  const catalog = parseCatalog({ ...input, groups: [{ ...input.groups[0], overcommit: 3 }] });
  const rollout = async () => (await getJson(`${pool.url}/botshard/status`)).body.rollouts.find((r: any) => r.bot === BOT);
  const ask = (bot: string) => postJson(`${pool.url}/v2/models/${bot}/infer`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [TEXTS[0]] }] });

  beforeAll(async () => {
    writeDemoModels(catalog, models);
    writeMountedCatalog(folder, catalog);
    pool = await runPool({ pool: [...placement(catalog).values()][0], catalog: folder, modelRoot: models, pollMs: 100 });
  });
  afterAll(() => pool?.close());

  test('the candidate waits while its bot is cold, loads with it, and goes with it when the bot is evicted', async () => {
    expect(pool.app.pool.bots.get(BOT)?.state).toBe('cold');
    expect((await rollout()).state).toBe('waiting');
    expect((await ask(BOT)).status).toBe(200);
    await until(async () => (await rollout()).state === 'judging', 20_000, 'the candidate to load with its bot');
    expect((await getJson(`${pool.url}/v2/models/${BOT}`)).body.versions).toEqual(['1', 'next']);
    // The resident set counts the candidate with its bot: overhead, sage's head, its encoder and the candidate's 2 MiB.
    const MiB = 1024 * 1024;
    expect(pool.app.pool.residentBytes!.used).toBe(100 * MiB + 400 * MiB + 4 * MiB + 2 * MiB);
    // thyme's first request evicts sage (and its candidate) to make room.
    expect((await ask('thyme')).status).toBe(200);
    expect(pool.app.pool.bots.get(BOT)?.state).toBe('cold');
    expect((await rollout()).state).toBe('waiting');
    expect(pool.app.pool.residentBytes!.used).toBe(100 * MiB + 400 * MiB + 4 * MiB); // thyme alone: the candidate's bytes went with sage
    expect((await getJson(`${pool.url}/v2/models/${BOT}`)).body.versions).toEqual(['1']);
    expect((await ask(BOT)).status).toBe(200);
    await until(async () => (await rollout()).state === 'judging', 20_000, 'the candidate to load again');
    expect((await ask(BOT)).body.model_version).toBe('1');
    expect((await postJson(`${pool.url}/v2/models/${BOT}/versions/next/infer`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [TEXTS[0]] }] })).body.model_version).toBe('next');
  });
});
