/**
 * Loads and requests in an inference worker's lane (runtime/src/pool/workers.ts): a burst of loads (cold
 * bots loading on demand) does not hold up a request for a bot that is loaded, and a request never runs
 * before the load of a model it uses. Real worker threads and real ONNX models; what is asserted is the
 * order in which the worker answered, never a duration.
 */
import * as path from 'node:path';
import { parseCatalog } from '@botshard/runtime';
import { writeDemoModels } from '@botshard/runtime/local/models';
import { processingOf } from '@botshard/runtime/pool/processors';
import { WorkerPool } from '@botshard/runtime/pool/workers';
import { catalogInput, ensureBuilt, supportBot, tempDir } from './support';

beforeAll(() => ensureBuilt());

const bots = ['resident', 'cold-1', 'cold-2', 'cold-3', 'cold-4'];
const catalog = parseCatalog(catalogInput(bots.map((id) => supportBot(id))));
const dir = tempDir('lanes');
writeDemoModels(catalog, dir);
const encoder = catalog.encoders[0];
const model = (id: string) => ({ file: path.join(dir, `heads/${id}.onnx`), processing: processingOf(catalog.bots.find((b) => b.id === id)!, encoder.tokenizer) });

let pool: WorkerPool;
beforeEach(async () => {
  pool = new WorkerPool({ workers: 1, concurrency: 64, timeoutMs: 60_000 });
  await pool.load(0, 'enc', { file: path.join(dir, encoder.path) });
  await pool.load(0, 'resident', model('resident'), { firstRun: { encoder: 'enc' } });
});
afterEach(() => pool.close());

test('a request for a loaded bot goes past a burst of loads: it waits behind one at most', async () => {
  const answered: string[] = [];
  const done = (name: string) => () => void answered.push(name);
  const loads = ['cold-1', 'cold-2', 'cold-3', 'cold-4'].map((id) => pool.load(0, id, model(id), { firstRun: { encoder: 'enc' } }).then(done(id)));
  const request = pool.infer(0, 'resident', { encoder: 'enc', head: 'resident' }, ['where is my order'], Date.now() + 60_000).then(done('request'));
  await Promise.all([...loads, request]);
  // Two loads were in the worker before the request came (an idle lane sends what it has); the other two
  // waited, and the request went before them.
  expect(answered).toEqual(['cold-1', 'cold-2', 'request', 'cold-3', 'cold-4']);
});

test('a request never runs before the load of its model, even when other requests go past that load', async () => {
  const answered: string[] = [];
  const done = (name: string) => () => void answered.push(name);
  const loads = ['cold-1', 'cold-2', 'cold-3'].map((id) => pool.load(0, id, model(id), { firstRun: { encoder: 'enc' } }).then(done(id)));
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

test("a head's first run is part of its load: a head that cannot answer for its bot fails to load", async () => {
  // cold-1's head under a bot with one intent more than it outputs.
  const wrong = { ...model('cold-1'), processing: { ...model('cold-1').processing, labels: [...model('cold-1').processing.labels, 'extra'] } };
  await expect(pool.load(0, 'wrong', wrong, { firstRun: { encoder: 'enc' } })).rejects.toThrow(/its first run failed: head outputs \d+ probabilities, the catalog lists \d+ intents/);
  // Without its encoder in the worker, the first run cannot run either.
  await expect(pool.load(0, 'orphan', model('cold-2'), { firstRun: { encoder: 'no-such-encoder' } })).rejects.toThrow(/first run failed: model no-such-encoder is not loaded/);
  // The worker goes on serving.
  const a = await pool.infer(0, 'resident', { encoder: 'enc', head: 'resident' }, ['hello'], Date.now() + 60_000);
  expect(a.rows).toHaveLength(1);
});
