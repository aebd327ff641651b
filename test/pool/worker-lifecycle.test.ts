/**
 * Inference workers hold native onnxruntime sessions: stopping them must never abort the process
 * (`terminate called after throwing an instance of 'Napi::Error'`), even in the middle of a run.
 * The cycles run in a child process, so that an abort shows as its exit status instead of killing jest.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { STANDALONE_DIMENSIONS, buildHeadModel, embeddingTable } from '@botshard/runtime/local/models';
import { ROOT, ensureBuilt, tempDir } from './support';

beforeAll(() => ensureBuilt());

const CYCLES = `
const { WorkerPool } = require(process.argv[1]);
const [fast, slow, cycles] = [process.argv[2], process.argv[3], Number(process.argv[4])];
(async () => {
  let midRun = 0;
  for (let i = 0; i < cycles; i++) {
    const pool = new WorkerPool({ workers: 2, concurrency: 8 });
    const processing = { preprocess: [], postprocess: { threshold: 0, fallback: 'none', entities: [] }, labels: ['a', 'b'], tokenizer: { kind: 'hashing', buckets: 256, maxTokens: 8 } };
    await pool.load(0, 'fast', { file: fast, processing });
    await pool.load(1, 'slow', { file: slow, processing });
    const outcomes = [];
    // Every other cycle closes while a run is in the worker's native code; the others close idle.
    if (i % 2 === 0) {
      outcomes.push(pool.infer(1, 'slow', { head: 'slow' }, ['x'], Date.now() + 60000).then(() => 'ok', (e) => e.constructor.name));
      await new Promise((r) => setTimeout(r, 5));
      if (pool.depths()[1] > 0) midRun++;
    }
    await pool.infer(0, 'fast', { head: 'fast' }, ['x'], Date.now() + 60000);
    await pool.close();
    for (const o of await Promise.all(outcomes)) if (o !== 'ok' && o !== 'OverloadedError') throw new Error('run ended with ' + o);
  }
  process.stdout.write(JSON.stringify({ cycles, midRun }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

function head(slow?: { size: number; rounds: number }): Buffer {
  const D = STANDALONE_DIMENSIONS;
  return Buffer.from(buildHeadModel({ weights: new Float32Array(D * 2), dimensions: D, labels: 2, bag: { table: embeddingTable(1, 'x', 256, D), buckets: 256 }, slow }));
}

test('starting and stopping inference workers with loaded sessions 200 times, half of them mid-run, never aborts', () => {
  const dir = tempDir('lifecycle');
  const fast = path.join(dir, 'fast.onnx');
  const slow = path.join(dir, 'slow.onnx');
  fs.writeFileSync(fast, head());
  fs.writeFileSync(slow, head({ size: 256, rounds: 40 }));
  const r = spawnSync(process.execPath, ['-e', CYCLES, path.join(ROOT, 'runtime/lib/pool/workers.js'), fast, slow, '200'], { encoding: 'utf8', timeout: 300_000 });
  expect(r.stderr).not.toMatch(/terminate called|Aborted/);
  expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
  const result = JSON.parse(r.stdout);
  expect(result.cycles).toBe(200);
  // The point of the test: most of the stops came while the slow model was running.
  expect(result.midRun).toBeGreaterThan(50);
}, 320_000);
