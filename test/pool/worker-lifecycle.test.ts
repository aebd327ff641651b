/**
 * Inference threads (lanes.ts) hold native onnxruntime sessions: stopping them must never abort the process
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
const { Lanes } = require(process.argv[1] + '/lanes.js');
const { OverloadedError } = require(process.argv[1] + '/shedding.js');
const [fast, slow, cycles] = [process.argv[2], process.argv[3], Number(process.argv[4])];
const processing = { preprocess: [], postprocess: { threshold: 0, fallback: 'none', entities: [] }, labels: ['a', 'b'], tokenizer: { kind: 'hashing', buckets: 256, maxTokens: 8 } };
(async () => {
  let midRun = 0;
  let answeredFirst = 0;
  for (let i = 0; i < cycles; i++) {
    const pool = new Lanes({ lanes: 2, settings: { concurrency: 8, timeoutMs: 2000, quarantineShare: 0.1, batchWindowMs: 0, batchMaxRows: 32 } });
    await pool.load(0, 'fast', { file: fast, processing });
    await pool.load(1, 'slow', { file: slow, processing });
    const fastRun = () => pool.infer(0, 'fast', { head: 'fast' }, ['x'], Date.now() + 60000);
    if (i % 2 === 1) {
      // Closes idle.
      await fastRun();
      if (pool.depths().some((d) => d > 0)) throw new Error('cycle ' + i + ': work left before an idle close');
      await pool.close();
      continue;
    }
    // Closes while worker 1 has a run in flight: the slow run sent to it, then a whole fast run through worker
    // 0 (time for worker 1 to get into its own), and the slow run still unanswered when close() is called. A
    // slow run that answers before the fast one is no stop mid-run: another is sent, a bounded number of times.
    for (let attempt = 1; ; attempt++) {
      const slowRun = pool.infer(1, 'slow', { head: 'slow' }, ['x'], Date.now() + 60000).then(() => 'answered', (e) => e);
      await fastRun();
      if (pool.depths()[1] > 0) {
        const closed = pool.close();
        const outcome = await slowRun;
        if (!(outcome instanceof OverloadedError && outcome.reason === 'closing')) throw new Error('cycle ' + i + ': a run in flight at the stop ended with ' + outcome);
        await closed;
        midRun++;
        break;
      }
      if ((await slowRun) !== 'answered') throw new Error('cycle ' + i + ': a slow run failed');
      answeredFirst++;
      if (attempt === 20) throw new Error('cycle ' + i + ': the slow run answered before the fast one 20 times');
    }
  }
  process.stdout.write(JSON.stringify({ cycles, midRun, answeredFirst }));
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
  const r = spawnSync(process.execPath, ['-e', CYCLES, path.join(ROOT, 'runtime/lib/pool'), fast, slow, '200'], { encoding: 'utf8', timeout: 300_000 });
  expect(r.stderr).not.toMatch(/terminate called|Aborted/);
  const failed = r.status !== 0 || r.signal !== null;
  expect({ status: r.status, signal: r.signal, stderr: failed ? r.stderr : '' }).toEqual({ status: 0, signal: null, stderr: '' });
  const result = JSON.parse(r.stdout);
  expect(result.cycles).toBe(200);
  // The point of the test: half of the stops came while the slow model was running in its worker.
  expect(result.midRun).toBe(100);
}, 320_000);
