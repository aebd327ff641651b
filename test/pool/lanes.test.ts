/**
 * Loads and requests in an inference worker's lane (runtime/src/pool/lanes.ts, load-order.ts): a burst of loads (cold
 * bots loading on demand) does not hold up a request for a bot that is loaded, and a request never runs
 * before the load of a model it uses. Real worker threads and real ONNX models; what is asserted is the
 * order in which the worker answered, never a duration.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCatalog } from '@botshard/runtime';
import { buildHeadModel, writeDemoModels } from '@botshard/runtime/local/models';
import { DataType, encodeModel, node, valueInfo } from '@botshard/runtime/local/onnx';
import { processingOf } from '@botshard/runtime/pool/processors';
import { Lanes } from '@botshard/runtime/pool/lanes';
import { catalogInput, ensureBuilt, settings, supportBot, tempDir } from './support';

beforeAll(() => ensureBuilt());

const bots = ['resident', 'cold-1', 'cold-2', 'cold-3', 'cold-4'];
const catalog = parseCatalog(catalogInput(bots.map((id) => supportBot(id))));
const dir = tempDir('lanes');
writeDemoModels(catalog, dir);
const encoder = catalog.encoders[0];
const model = (id: string) => ({ file: path.join(dir, `heads/${id}.onnx`), processing: processingOf(catalog.bots.find((b) => b.id === id)!, encoder.tokenizer) });

let pool: Lanes;
beforeEach(async () => {
  pool = new Lanes({ lanes: 1, settings: settings({ concurrency: 64, timeoutMs: 60_000 }) });
  await pool.load(0, 'enc', { file: path.join(dir, encoder.path) });
  await pool.load(0, 'resident', model('resident'), { check: { encoder: 'enc' } });
});
afterEach(() => pool.close());

test('a request for a loaded bot goes past a burst of loads: it waits behind one at most', async () => {
  const answered: string[] = [];
  const done = (name: string) => () => void answered.push(name);
  const loads = ['cold-1', 'cold-2', 'cold-3', 'cold-4'].map((id) => pool.load(0, id, model(id), { check: { encoder: 'enc' } }).then(done(id)));
  const request = pool.infer(0, 'resident', { encoder: 'enc', head: 'resident' }, ['where is my order'], Date.now() + 60_000).then(done('request'));
  await Promise.all([...loads, request]);
  // Two loads were in the worker before the request came (an idle lane sends what it has); the other two
  // waited, and the request went before them.
  expect(answered).toEqual(['cold-1', 'cold-2', 'request', 'cold-3', 'cold-4']);
});

test('a request never runs before the load of its model, even when other requests go past that load', async () => {
  const answered: string[] = [];
  const done = (name: string) => () => void answered.push(name);
  const loads = ['cold-1', 'cold-2', 'cold-3'].map((id) => pool.load(0, id, model(id), { check: { encoder: 'enc' } }).then(done(id)));
  // cold-3's load is still waiting in the lane when its request comes: the request waits for it.
  const forCold = pool.infer(0, 'cold-3', { encoder: 'enc', head: 'cold-3' }, ['where is my order'], Date.now() + 60_000).then((a) => {
    answered.push('request cold-3');
    return a;
  });
  const forResident = pool.infer(0, 'resident', { encoder: 'enc', head: 'resident' }, ['where is my order'], Date.now() + 60_000).then(done('request resident'));
  const [answer] = await Promise.all([forCold, forResident, ...loads]);
  expect(answer.rows).toHaveLength(1);
  expect(answered.indexOf('request cold-3')).toBeGreaterThan(answered.indexOf('cold-3'));
  expect(answered.indexOf('request resident')).toBeLessThan(answered.indexOf('cold-3'));
});

/**
 * A head whose model leaves the width of "probabilities" open: a softmax over its input, of a symbolic
 * width (onnxruntime cannot infer it from the model): only a run through the encoder tells its label count.
 */
function openWidthHead(): string {
  const file = path.join(dir, 'open-width.onnx');
  const bytes = encodeModel('head', {
    node: [node('Softmax', ['embedding'], ['probabilities'], [{ name: 'axis', i: -1 }])],
    input: [valueInfo('embedding', DataType.FLOAT, ['batch', 'width'])],
    output: [valueInfo('probabilities', DataType.FLOAT, ['batch', 'width'])],
  });
  fs.writeFileSync(file, bytes);
  return file;
}

test('a head is checked as part of its load: one that cannot answer for its bot fails to load, the worker goes on', async () => {
  const labels = model('cold-1').processing.labels;
  // cold-1's head under a bot with one intent more than it outputs: its model says so, no run needed.
  const wrong = { ...model('cold-1'), processing: { ...model('cold-1').processing, labels: [...labels, 'extra'] } };
  await expect(pool.load(0, 'wrong', wrong, { check: { encoder: 'enc' } })).rejects.toThrow(/head outputs \d+ probabilities, the catalog lists \d+ intents/);
  // Without its encoder in the worker it could not run.
  await expect(pool.load(0, 'orphan', model('cold-2'), { check: { encoder: 'no-such-encoder' } })).rejects.toThrow(/its encoder no-such-encoder is not loaded in this worker/);
  // A head of another width than its encoder's embedding: the declared shapes say so.
  const D = encoder.dimensions!;
  const wide = path.join(dir, 'wide.onnx');
  fs.writeFileSync(wide, buildHeadModel({ weights: new Float32Array((D + 1) * labels.length), dimensions: D + 1, labels: labels.length }));
  await expect(pool.load(0, 'wide', { ...model('cold-2'), file: wide }, { check: { encoder: 'enc' } })).rejects.toThrow(new RegExp(`it takes an embedding of width ${D + 1}, its encoder gives ${D}`));
  // A model that leaves its width open is run once on an empty text, through the encoder, whose embedding
  // sets the width here.
  await expect(pool.load(0, 'open', { ...model('cold-3'), file: openWidthHead() }, { check: { encoder: 'enc' } })).rejects.toThrow(
    new RegExp(`its first run failed: head outputs ${encoder.dimensions} probabilities, the catalog lists ${labels.length} intents`),
  );
  // The worker goes on serving.
  const a = await pool.infer(0, 'resident', { encoder: 'enc', head: 'resident' }, ['hello'], Date.now() + 60_000);
  expect(a.rows).toHaveLength(1);
});

test('an unload queued in the same turn as a load of the same model goes before it: the new copy serves', async () => {
  const before = await run('resident', 'resident');
  const fresh = await referenceOf(distinct);
  // Unloaded and loaded again under the same key, with another model, in one turn.
  await Promise.all([pool.unload(0, 'resident'), pool.load(0, 'resident', distinct, { check: { encoder: 'enc' } })]);
  const after = await run('resident', 'resident');
  expectClose(after, fresh);
  expect(farthest(after, before)).toBeGreaterThan(0.01);
});

describe('a model unloaded and loaded again under the same key while requests for the old copy wait', () => {
  test('the waiting requests run on the old copy, then the unload, the load, and later requests on the new copy', async () => {
    const old = await run('resident', 'resident');
    const fresh = await referenceOf(distinct);
    // Three requests of one bot: one runs, two wait (a bot has one request in the worker at a time).
    const waiting = [0, 1, 2].map(() => run('resident', 'resident'));
    const unloaded = pool.unload(0, 'resident');
    const loaded = pool.load(0, 'resident', distinct, { check: { encoder: 'enc' } });
    const later = run('resident', 'resident'); // submitted after the unload: for the new copy
    for (const answer of await Promise.all(waiting)) expectClose(answer, old);
    await Promise.all([unloaded, loaded]);
    expectClose(await later, fresh);
  }, 20_000);

  test('an unload of another model that could go at once does not take the load past the held unload', async () => {
    await pool.load(0, 'other', model('cold-2'), { check: { encoder: 'enc' } });
    const old = await run('resident', 'resident');
    const fresh = await referenceOf(distinct);
    const waiting = [0, 1, 2].map(() => run('resident', 'resident'));
    const unloaded = [pool.unload(0, 'resident'), pool.unload(0, 'other')]; // the first is held by the waiting requests
    const loaded = pool.load(0, 'resident', distinct, { check: { encoder: 'enc' } });
    for (const answer of await Promise.all(waiting)) expectClose(answer, old);
    await Promise.all([...unloaded, loaded]);
    // The held unload went before the load: the new copy is still there, and serves.
    expectClose(await run('resident', 'resident'), fresh);
    expectClose(await run('resident', 'resident'), fresh);
  }, 20_000);
});

/** One request's probabilities, within 10 s (a lane that deadlocks fails the test instead of hanging it). */
async function run(bot: string, head: string): Promise<number[]> {
  return Array.from((await pool.infer(0, bot, { encoder: 'enc', head }, ['where is my order'], Date.now() + 10_000)).probabilities);
}

/** What a model answers, loaded under a key of its own. */
async function referenceOf(m: ReturnType<typeof model>): Promise<number[]> {
  await pool.load(0, 'reference', m, { check: { encoder: 'enc' } });
  return run('reference', 'reference');
}

/** A head for the resident bot's intents whose answers differ from every demo head's. */
const distinct = (() => {
  const D = encoder.dimensions!;
  const L = model('resident').processing.labels.length;
  const file = path.join(dir, 'distinct.onnx');
  fs.writeFileSync(file, buildHeadModel({ weights: Float32Array.from({ length: D * L }, (_, i) => ((i * 37) % 11) / 10 - 0.5), dimensions: D, labels: L }));
  return { ...model('resident'), file };
})();

const farthest = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
/** The same model's answer (to float rounding: a session's first run may differ in the last bits). */
const expectClose = (a: number[], b: number[]) => expect(farthest(a, b)).toBeLessThan(1e-5);
