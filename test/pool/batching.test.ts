/**
 * Requests of different bots that share an encoder run through it as one batch in the worker: the
 * results must be those of each request run alone, whatever the batch holds (other bots, other lengths,
 * several texts): the same intents, and the same probabilities to float rounding. Not bit for bit:
 * padding a row to a longer batch changes the order in which onnxruntime's vectorised reductions add
 * (the sum over tokens), which moves the last bits. Real worker threads and real ONNX models.
 */
import * as path from 'node:path';
import { parseCatalog } from '@botshard/runtime';
import { demoModels, writeDemoModels } from '@botshard/runtime/local/models';
import { processingOf } from '@botshard/runtime/pool/processors';
import { Lanes } from '@botshard/runtime/pool/lanes';
import { catalogInput, ensureBuilt, settings, supportBot, tempDir } from './support';

beforeAll(() => ensureBuilt());

const bots = ['ash', 'birch', 'cedar', 'damson', 'elm', 'fir'];
const catalog = parseCatalog(catalogInput(bots.map((id) => supportBot(id))));
const texts = ['I forgot my password', 'why was I charged twice for my order', 'hello', 'reset my password please, I cannot log in at all', 'hi there'];

/** Every (bot, texts) request of the test: one or two texts each, of different lengths. */
const requests = bots.flatMap((bot, b) => [0, 1, 2].map((k) => ({ bot, texts: k === 2 ? [texts[(b + k) % 5], texts[(b + k + 1) % 5]] : [texts[(b + k) % 5]] })));

async function runAll(encoder: 'bag' | { transformer: { layers: number; hidden: number } }) {
  const dir = tempDir('batching');
  writeDemoModels(catalog, dir, { encoder });
  const batches: number[] = [];
  const pool = new Lanes({ lanes: 1, settings: settings({ concurrency: 256, timeoutMs: 60_000, batchWindowMs: 200 }), onBatch: (_i, n) => batches.push(n) });
  try {
    const encoderOf = catalog.encoders[0];
    await pool.load(0, 'enc', { file: path.join(dir, encoderOf.path) });
    for (const bot of catalog.bots) await pool.load(0, bot.id, { file: path.join(dir, `heads/${bot.id}.onnx`), processing: processingOf(bot, encoderOf.tokenizer) });
    const run = (r: (typeof requests)[number]) => pool.infer(0, r.bot, { encoder: 'enc', head: r.bot }, r.texts, Date.now() + 60_000).then((x) => Array.from(x.probabilities));
    // Alone: one request at a time, so each message holds one request.
    const alone: number[][] = [];
    for (const r of requests) alone.push(await run(r));
    const aloneMessages = batches.length;
    // Together: all at once, gathered by the 200 ms window into a few messages.
    const together = await Promise.all(requests.map(run));
    return { alone, together, aloneMessages, togetherBatches: batches.slice(aloneMessages) };
  } finally {
    await pool.close();
  }
}

const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));
const farthest = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));

test('with the embedding-bag encoder, a batch of many bots gives what each request gives alone', async () => {
  const r = await runAll('bag');
  expect(r.aloneMessages).toBe(requests.length);
  expect(Math.max(...r.togetherBatches)).toBeGreaterThan(1); // it did batch across requests (and bots)
  expect(r.togetherBatches.reduce((a, b) => a + b, 0)).toBe(requests.length);
  expect(r.together.map((row) => row.length)).toEqual(r.alone.map((row) => row.length));
  expect(farthest(r.together, r.alone)).toBeLessThan(1e-6);
  expect(r.together.map(argmax)).toEqual(r.alone.map(argmax));
  // Rows cannot have traded places unnoticed: the answers to different texts differ by far more than that.
  expect(farthest([r.alone[0]], [r.alone[1]])).toBeGreaterThan(0.01);
}, 60_000);

test('with the transformer-shaped encoder, the same (padding is masked in attention and pooling)', async () => {
  const r = await runAll({ transformer: { layers: 2, hidden: 64 } });
  expect(Math.max(...r.togetherBatches)).toBeGreaterThan(1);
  expect(farthest(r.together, r.alone)).toBeLessThan(1e-5);
  expect(r.together.map(argmax)).toEqual(r.alone.map(argmax));
}, 60_000);

test('the demo transformer model is deterministic', () => {
  const a = demoModels(catalog, { encoder: { transformer: { layers: 1, hidden: 32 } } }).get(catalog.encoders[0].path)!;
  const b = demoModels(catalog, { encoder: { transformer: { layers: 1, hidden: 32 } } }).get(catalog.encoders[0].path)!;
  expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
});
