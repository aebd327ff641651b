/**
 * The quarantine lane (runtime/src/pool/quarantine/), on lanes without a thread: a bot confined moves its
 * waiting requests to the quarantine lane at once and wakes it, its models are copied there first, the
 * copies go when no confined bot uses them, a failed copy sends the bot home, and each move is reported.
 * The rule itself is tested in test/pool/scheduler.test.ts and scheduler-rules.test.ts.
 */
import type { Worker } from 'node:worker_threads';
import { Job, Lane, Payload } from '@botshard/runtime/pool/lane';
import { QuarantineChange, QuarantineLane } from '@botshard/runtime/pool/quarantine';
import { ServiceTimes } from '@botshard/runtime/pool/scheduler';

const thread = { postMessage: () => undefined } as unknown as Worker;
let seq = 0;
const request = (bot: string, head: string, encoder?: string): Job => ({ payload: { type: 'infer', head, encoder, texts: ['x'] }, bot, queuedAt: 0, seq: ++seq, done: false, resolve: () => undefined, reject: () => undefined });

function setup(slowMs = 100) {
  const times = new ServiceTimes();
  const home = new Lane(0, thread, new Map([['enc', { file: 'enc.onnx' }], ['slow#1', { file: 'slow.onnx' }], ['other#1', { file: 'other.onnx' }]]), 2, 32);
  const submitted: Array<{ lane: number; payload: Payload }> = [];
  const pumped: number[] = [];
  const changes: QuarantineChange[] = [];
  let failNextLoad = false;
  const q = new QuarantineLane(times, {
    homes: () => [home],
    start: () => new Lane(1, thread, new Map(), 1, 1),
    submit: (lane, payload) => {
      submitted.push({ lane: lane.index, payload });
      if (failNextLoad && payload.type === 'load') {
        failNextLoad = false;
        return Promise.reject(new Error('no such file'));
      }
      return Promise.resolve();
    },
    pump: (lane) => pumped.push(lane.index),
    slowMs: () => slowMs,
    onChange: (c) => changes.push(c),
  });
  /** Three slow runs of a bot, measured: it is confined at the third. */
  const slowRuns = (bot: string, ms = 300) => {
    for (let i = 0; i < 3; i++) {
      times.record(bot, ms);
      q.measured(bot);
    }
  };
  return { times, home, q, submitted, pumped, changes, slowRuns, failLoad: () => (failNextLoad = true) };
}

test('a bot confined: its waiting requests move to the quarantine lane, behind the copies of its models, and the lane is woken', () => {
  const { home, q, submitted, pumped, changes, slowRuns } = setup();
  const waiting = [request('slow', 'slow#1', 'enc'), request('slow', 'slow#1', 'enc')];
  const other = request('other', 'other#1', 'enc');
  for (const j of [...waiting, other]) home.queue.push(j);
  slowRuns('slow');
  expect(q.has('slow')).toBe(true);
  const lane = q.lane!;
  expect(lane.index).toBe(1);
  // Its models copied first (their loads go before the moved requests), then its requests moved.
  expect(submitted).toEqual([
    { lane: 1, payload: { type: 'load', key: 'enc', file: 'enc.onnx' } },
    { lane: 1, payload: { type: 'load', key: 'slow#1', file: 'slow.onnx' } },
  ]);
  expect([...lane.queue.jobs()]).toEqual(waiting);
  expect(waiting.every((j) => j.lane === lane)).toBe(true);
  expect([...home.queue.jobs()]).toEqual([other]);
  // Both lanes pumped after the move: the home lane (its queue changed) and the quarantine lane last.
  expect(pumped).toEqual([0, 1]);
  expect(changes).toEqual([{ bot: 'slow', confined: true, meanMs: 300, slowMs: 100 }]);
});

test('a confined bot runs in the quarantine lane; others at home', () => {
  const { home, q, slowRuns } = setup();
  slowRuns('slow');
  expect(q.laneFor(home, 'slow', { encoder: 'enc', head: 'slow#1' })).toBe(q.lane);
  expect(q.laneFor(home, 'other', { encoder: 'enc', head: 'other#1' })).toBe(home);
});

test('a model not loaded at home (yet) is not copied: the request runs at home', () => {
  const { home, q, slowRuns } = setup();
  slowRuns('slow');
  expect(q.laneFor(home, 'slow', { encoder: 'enc', head: 'slow#2' })).toBe(home);
});

test('released: its copies are unloaded, except one another confined bot still uses', () => {
  const { times, home, q, submitted, changes, slowRuns } = setup();
  slowRuns('slow');
  slowRuns('other');
  q.laneFor(home, 'slow', { encoder: 'enc', head: 'slow#1' });
  q.laneFor(home, 'other', { encoder: 'enc', head: 'other#1' });
  submitted.length = 0;
  // Fast again: its average below half the threshold, after at least three runs in quarantine.
  for (let i = 0; i < 12; i++) {
    times.record('slow', 1);
    q.measured('slow');
  }
  expect(q.has('slow')).toBe(false);
  // The shared encoder stays (other uses it), its head goes.
  expect(submitted).toEqual([{ lane: 1, payload: { type: 'unload', key: 'slow#1' } }]);
  expect(changes.at(-1)).toMatchObject({ bot: 'slow', confined: false });
});

test('a model unloaded at home: its copy goes, and a bot left with no copy leaves quarantine without a report', () => {
  const { home, q, submitted, changes, slowRuns } = setup();
  slowRuns('slow');
  q.laneFor(home, 'slow', { encoder: 'enc', head: 'slow#1' });
  submitted.length = 0;
  q.unloaded('slow#1');
  expect(q.has('slow')).toBe(true); // the encoder copy is still there
  q.unloaded('enc');
  expect(q.has('slow')).toBe(false);
  expect(submitted.map((s) => s.payload)).toEqual([{ type: 'unload', key: 'slow#1' }, { type: 'unload', key: 'enc' }]);
  expect(changes).toHaveLength(1); // only the confinement
});

test('a copy that fails to load sends the bots that needed it home, reported as released', async () => {
  const { home, q, changes, failLoad, times } = setup();
  home.queue.push(request('slow', 'slow#1'));
  failLoad(); // the copy of its head (its request names no encoder)
  for (let i = 0; i < 3; i++) {
    times.record('slow', 300);
    q.measured('slow');
  }
  await new Promise((r) => setImmediate(r));
  expect(q.has('slow')).toBe(false);
  expect(q.lane!.models.has('slow#1')).toBe(false);
  expect(changes.map((c) => c.confined)).toEqual([true, false]);
  expect(q.laneFor(home, 'slow', { head: 'slow#1' })).toBe(home);
});

test('once closed, a failing copy changes nothing (the pool is stopping)', async () => {
  const { home, q, changes, failLoad, times } = setup();
  home.queue.push(request('slow', 'slow#1'));
  failLoad();
  for (let i = 0; i < 3; i++) {
    times.record('slow', 300);
    q.measured('slow');
  }
  q.close();
  await new Promise((r) => setImmediate(r));
  expect(q.has('slow')).toBe(true);
  expect(changes).toHaveLength(1);
});
