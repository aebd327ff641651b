/**
 * A changed bot's new version that fails to load leaves the version that served serving (#31, rule 1):
 * a corrupt file, a missing one and one whose sha256 does not match, each under traffic on a real pool.
 * The bot stays ready, says which version failed and why (ready metadata, the pool's status, a metric,
 * a log line), and the new version is loaded again with backoff; a good version then replaces it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Catalog, parseCatalog } from '@botshard/runtime';
import type { BotInput } from '@botshard/runtime/catalog';
import { formatStatus } from '@botshard/runtime/commands/status';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { RunningPool, SUPPORT, catalogInput, ensureBuilt, getJson, placement, postJson, runPool, supportBot, tempDir, until, writeMountedCatalog } from './support';

beforeAll(() => ensureBuilt());

const BOT = 'sage';
const TEXT = 'I forgot my password';
/** The good new version: the same bot with its first intent renamed, so its answers tell it apart. */
const RENAMED = SUPPORT.map((i) => (i.name === 'password_reset' ? { ...i, name: 'password_help' } : i));

const catalogWith = (model: Partial<BotInput['model']>, intents = SUPPORT): Catalog => {
  const bot = supportBot(BOT);
  return parseCatalog(catalogInput([{ ...bot, intents, model: { ...bot.model, ...model } }]));
};

describe('the last good version keeps serving when a new one fails to load', () => {
  const v1 = catalogWith({});
  const folder = tempDir('catalog');
  const models = tempDir('models');
  const logs: string[] = [];
  let pool: RunningPool;
  /** Requests sent while versions change, and those that did not answer 200 with an intent of version 1. */
  let sent = 0;
  const bad: string[] = [];

  const ready = async () => (await getJson(`${pool.url}/v2/models/${BOT}/ready`)).body;
  const intent = async () => {
    const r = await postJson(`${pool.url}/v1/bots/${BOT}/predict`, { text: TEXT });
    return r.status === 200 ? (r.body.intent as string) : `status ${r.status}`;
  };
  /** A metric's value as a scrape reads it (the pool's registry; label order as written below). */
  const metric = async (name: string) => {
    const text = await pool.app.poolMetrics.registry.metrics();
    const line = text.split('\n').find((l: string) => l.startsWith(name));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };

  /** Sends requests one after the other until `done` says so; each must be answered by version 1. */
  async function trafficUntil(done: () => Promise<boolean>, what: string): Promise<void> {
    const end = Date.now() + 20_000;
    for (;;) {
      const got = await intent();
      sent++;
      if (got !== 'password_reset') bad.push(got);
      if (await done()) return;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    }
  }

  beforeAll(async () => {
    writeDemoModels(v1, models);
    writeMountedCatalog(folder, v1);
    const logger = { level: 'info', stream: { write: (line: string) => void logs.push(line) } };
    pool = await runPool({ pool: [...placement(v1).values()][0], catalog: folder, modelRoot: models, pollMs: 100, retryMs: 100, logger });
    expect(await intent()).toBe('password_reset');
  });
  afterAll(() => pool?.close());

  test.each([
    ['corrupt', { head: 'heads/sage-corrupt.onnx' }, /heads\/sage-corrupt\.onnx failed to load/],
    ['missing', { head: 'heads/sage-missing.onnx' }, /heads\/sage-missing\.onnx failed to load: ENOENT/],
    ['sha256 mismatch', { head: 'heads/sage.onnx', sha256: '0'.repeat(64) }, /sha256/],
  ])('a %s new version: the bot stays ready on its previous version and says why', async (_kind, model, error) => {
    fs.writeFileSync(path.join(models, 'heads/sage-corrupt.onnx'), Buffer.from('not an onnx model, a truncated upload'));
    const failuresBefore = (await metric('botshard_pool_model_load_failures_total{kind="head"')) ?? 0;
    const broken = catalogWith(model);
    writeMountedCatalog(folder, broken);
    const before = sent;
    // Loaded again with backoff (retryMs 100 here): three failed loads in a row, the previous version serving throughout.
    await trafficUntil(async () => (await ready()).failedVersion?.failures >= 3, 'three failed loads of the new version');
    expect(sent - before).toBeGreaterThan(0);
    expect(bad).toEqual([]);

    const body = await ready();
    expect(body).toMatchObject({ name: BOT, ready: true, state: 'ready', failedVersion: { head: broken.bots[0].model.head } });
    expect(body.failedVersion.error).toMatch(error);
    expect(body.failedVersion.error).not.toContain(models); // no local paths in what callers see
    expect(Date.parse(body.failedVersion.since)).toBeLessThanOrEqual(Date.now());
    expect(pool.app.pool.catalog?.generation).toBe(broken.generation);
    expect(await metric('botshard_pool_bots_version_failed')).toBe(1);
    expect(await metric('botshard_pool_model_load_failures_total{kind="head"')).toBeGreaterThanOrEqual(failuresBefore + 3);
    const status = (await getJson(`${pool.url}/botshard/status`)).body;
    expect(status.bots).toMatchObject({ ready: 1, failed: 0 });
    expect(status.versionsFailed).toEqual([expect.objectContaining({ bot: BOT, head: broken.bots[0].model.head, failures: body.failedVersion.failures })]);
    expect(logs.some((l) => l.includes('new version failed to load: the previous version keeps serving') && l.includes(`"bot":"${BOT}"`))).toBe(true);
    // botshard status prints it, under its own heading.
    const printed = formatStatus({ router: { generation: broken.generation, dataPlane: 'node' }, pools: [status] }).split('\n');
    const heading = printed.indexOf('new versions that failed to load (the previous version serves):');
    expect(heading).toBeGreaterThan(0);
    expect(printed[heading + 1]).toMatch(new RegExp(`^  ${status.pool}  ${BOT}: ${broken.bots[0].model.head} \\(since ${body.failedVersion.since}, \\d+ failed loads\\): `));

    // Back to the serving version in the catalog: the failed one is forgotten, nothing is reloaded.
    writeMountedCatalog(folder, v1);
    await trafficUntil(async () => (await ready()).failedVersion === undefined, 'the failed version to be forgotten');
    expect(bad).toEqual([]);
    expect(await metric('botshard_pool_bots_version_failed')).toBe(0);
    expect((await getJson(`${pool.url}/botshard/status`)).body.versionsFailed).toEqual([]);
  });

  test('a good version after a failed one replaces the serving version, and the failure is cleared', async () => {
    writeMountedCatalog(folder, catalogWith({ head: 'heads/sage-missing.onnx' }));
    await until(async () => (await ready()).failedVersion !== undefined, 20_000, 'the missing version to fail');
    const v2 = catalogWith({ head: 'heads/sage-v2.onnx' }, RENAMED);
    const file = path.join(models, 'heads/sage-v2.onnx');
    writeDemoModels(v2, models);
    const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    writeMountedCatalog(folder, catalogWith({ head: 'heads/sage-v2.onnx', sha256 }, RENAMED));
    await until(async () => (await intent()) === 'password_help', 20_000, 'version 2 to answer');
    const body = await ready();
    expect(body).toMatchObject({ ready: true, state: 'ready' });
    expect(body.failedVersion).toBeUndefined();
    expect(await metric('botshard_pool_bots_version_failed')).toBe(0);
  });

  test('a bot with no good version yet fails as before: not ready, with the reason', async () => {
    const fresh = parseCatalog(catalogInput([supportBot(BOT), supportBot('thyme', { model: { head: 'heads/thyme-missing.onnx', memory: '2Mi', encoder: 'encoder-en' } })]));
    const own = placement(fresh);
    // Both bots on this one pool (one pool in the group).
    expect(new Set(own.values()).size).toBe(1);
    writeMountedCatalog(folder, fresh);
    await until(async () => (await getJson(`${pool.url}/v2/models/thyme/ready`)).body.state === 'failed', 20_000, 'the new bot to fail');
    const r = await getJson(`${pool.url}/v2/models/thyme/ready`);
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ ready: false, state: 'failed' });
    expect(r.body.failedVersion).toBeUndefined();
    expect(await metric('botshard_pool_bots_version_failed')).toBe(0);
  });
});

describe('in an overcommitted group (bots loaded on demand) too', () => {
  const BOTS = ['fern', 'moss'];
  const input = (model: Partial<BotInput['model']> = {}, intents = SUPPORT) => {
    const c = catalogInput(BOTS.map((id) => supportBot(id, { model: { head: `heads/${id}.onnx`, memory: '10Mi', encoder: 'encoder-en', ...(id === 'fern' ? model : {}) }, ...(id === 'fern' ? { intents } : {}) })));
    return parseCatalog({ ...c, groups: c.groups.map((g) => ({ ...g, memory: '120Mi', fillFactor: 1, overcommit: 4 })) });
  };
  const v1 = input();
  const folder = tempDir('catalog');
  const models = tempDir('models');
  let pool: RunningPool;
  const ready = async (bot: string) => (await getJson(`${pool.url}/v2/models/${bot}/ready`)).body;
  const intent = async () => {
    const r = await postJson(`${pool.url}/v1/bots/fern/predict`, { text: TEXT });
    return r.status === 200 ? (r.body.intent as string) : `status ${r.status}`;
  };

  beforeAll(async () => {
    writeDemoModels(v1, models);
    writeMountedCatalog(folder, v1);
    pool = await runPool({ pool: [...placement(v1).values()][0], catalog: folder, modelRoot: models, pollMs: 100, retryMs: 100, loadConcurrency: 1 });
  });
  afterAll(() => pool?.close());

  test('a resident bot keeps its version when the new one is corrupt, and takes a good one at its new size', async () => {
    expect((await ready('fern')).residency).toBe('cold');
    expect(await intent()).toBe('password_reset'); // loaded on its first request
    expect((await ready('fern')).residency).toBe('resident');
    const resident = () => pool.app.pool.residentBytes as { used: number; bots: string[] };
    const before = resident().used;

    fs.writeFileSync(path.join(models, 'heads/fern-corrupt.onnx'), Buffer.from('a truncated upload'));
    writeMountedCatalog(folder, input({ head: 'heads/fern-corrupt.onnx' }));
    const answers: string[] = [];
    await until(async () => (answers.push(await intent()), (await ready('fern')).failedVersion?.failures >= 2), 20_000, 'two failed loads of the new version');
    expect(answers.filter((a) => a !== 'password_reset')).toEqual([]);
    expect(await ready('fern')).toMatchObject({ ready: true, state: 'ready', residency: 'resident', failedVersion: { head: 'heads/fern-corrupt.onnx' } });
    expect(resident()).toMatchObject({ used: before, bots: ['fern'] });

    // A good version, declared larger: swapped in beside the serving one, resident at its new size.
    const v2 = input({ head: 'heads/fern-v2.onnx', memory: '12Mi' }, RENAMED);
    writeDemoModels(v2, models);
    writeMountedCatalog(folder, v2);
    await until(async () => (await intent()) === 'password_help', 20_000, 'version 2 to answer');
    expect(await ready('fern')).toMatchObject({ ready: true, state: 'ready', residency: 'resident' });
    expect((await ready('fern')).failedVersion).toBeUndefined();
    expect(resident()).toMatchObject({ used: before + 2 * 1024 * 1024, bots: ['fern'] });
  });
});
