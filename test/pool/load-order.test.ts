/**
 * The order of loads and unloads in a lane (runtime/src/pool/load-order.ts), on plain lanes without a
 * thread: which load or unload goes next, which unloads ride on a load, and which bots wait for a load.
 * test/pool/lanes.test.ts runs the same rules with real threads.
 */
import type { Job, Payload } from '@botshard/runtime/pool/lane';
import { controlInFlight, needed, nextControl, waitingForLoad, withLoad, LaneWork } from '@botshard/runtime/pool/load-order';
import { FairQueue } from '@botshard/runtime/pool/scheduler';

let seq = 0;
function job(payload: Payload, bot = ''): Job {
  return { payload, bot, queuedAt: 0, seq: ++seq, done: false, resolve: () => undefined, reject: () => undefined };
}
const load = (key: string) => job({ type: 'load', key, file: `${key}.onnx` });
const unload = (key: string) => job({ type: 'unload', key });
const infer = (bot: string, head: string, encoder?: string) => job({ type: 'infer', head, encoder, texts: ['x'] }, bot);

function lane(control: Job[], waiting: Job[] = [], inflight: Job[][] = []): LaneWork {
  const queue = new FairQueue<Job>();
  for (const j of waiting) queue.push(j);
  return { control, queue, inflight: new Map(inflight.map((jobs, i) => [i + 1, jobs])) };
}

beforeEach(() => (seq = 0));

describe('nextControl', () => {
  test('nothing waiting: none', () => {
    expect(nextControl(lane([]))).toBeUndefined();
  });

  test('a load goes first when nothing holds it', () => {
    const l = load('a');
    expect(nextControl(lane([l]))).toBe(l);
  });

  test('an unload waits for the requests submitted before it that use its model; the load behind it of another model goes', () => {
    const r = infer('bot', 'a');
    const u = unload('a');
    const l = load('b');
    expect(nextControl(lane([u, l], [r]))).toBe(l);
  });

  test('a load of the model whose unload is held waits behind that unload', () => {
    const r = infer('bot', 'a');
    const u = unload('a');
    const l = load('a');
    expect(nextControl(lane([u, l], [r]))).toBeUndefined();
  });

  test('a request submitted after the unload does not hold it (it is for the next copy)', () => {
    const u = unload('a');
    const r = infer('bot', 'a');
    expect(nextControl(lane([u], [r]))).toBe(u);
  });
});

describe('withLoad', () => {
  test('an unload followed by a load goes as one message, the load first', () => {
    const u = unload('a');
    const l = load('b');
    expect(withLoad(lane([u, l]), u)).toEqual([l, u]);
  });

  test('several free unloads ride on the next load', () => {
    const [u1, u2, l] = [unload('a'), unload('b'), load('c')];
    expect(withLoad(lane([u1, u2, l]), u1)).toEqual([l, u1, u2]);
  });

  test('a load goes alone', () => {
    const l = load('a');
    expect(withLoad(lane([l, unload('b')]), l)).toEqual([l]);
  });

  test('an unload held between them keeps the load apart', () => {
    const [u1, u2, l] = [unload('a'), unload('b'), load('c')];
    const r = infer('bot', 'b');
    r.seq = 0; // submitted before the unloads
    expect(withLoad(lane([u1, u2, l], [r]), u1)).toEqual([u1]);
  });

  test('a load of a model whose unload is held before it goes alone (not with this unload)', () => {
    const held = unload('a');
    const u = unload('b');
    const l = load('a');
    const r = infer('bot', 'a');
    r.seq = 0;
    expect(withLoad(lane([held, u, l], [r]), u)).toEqual([u]);
  });

  test('an unload with no load behind it goes alone', () => {
    const u = unload('a');
    expect(withLoad(lane([u]), u)).toEqual([u]);
    const [u1, u2] = [unload('a'), unload('b')];
    expect(withLoad(lane([u1, u2]), u1)).toEqual([u1]);
  });

  test('only unloads held before this one keep a load apart: a load of the model this unload or a later one frees rides along', () => {
    const u = unload('a');
    const l = load('a');
    expect(withLoad(lane([u, l]), u)).toEqual([l, u]);
    const [u1, u2, l2] = [unload('a'), unload('b'), load('b')];
    expect(withLoad(lane([u1, u2, l2]), u1)).toEqual([l2, u1, u2]);
  });

  test('an unload held before this one does not stop a load of another model riding on this one', () => {
    const held = unload('a');
    const u = unload('b');
    const l = load('c');
    const r = infer('bot', 'a');
    r.seq = 0; // submitted before the unloads: holds the unload of a
    const work = lane([held, u, l], [r]);
    expect(nextControl(work)).toBe(u);
    expect(withLoad(work, u)).toEqual([l, u]);
  });

  test('a load waiting ahead of this unload (behind its own held unload) stays waiting; the next load behind rides', () => {
    const held = unload('a');
    const waiting = load('a');
    const u = unload('b');
    const l = load('c');
    const r = infer('bot', 'a');
    r.seq = 0; // holds the unload of a, so the load of a waits behind it
    const work = lane([held, waiting, u, l], [r]);
    expect(nextControl(work)).toBe(u);
    expect(withLoad(work, u)).toEqual([l, u]);
  });

  test('an ended unload between them is not taken along; the load still is', () => {
    const [u1, u2, l] = [unload('a'), unload('b'), load('c')];
    u2.done = true;
    expect(withLoad(lane([u1, u2, l]), u1)).toEqual([l, u1]);
  });

  test('an ended load is not taken along', () => {
    const u = unload('a');
    const l = load('b');
    l.done = true;
    expect(withLoad(lane([u, l]), u)).toEqual([u]);
  });
});

describe('waitingForLoad', () => {
  test('a bot whose request uses a model with a load waiting is blocked; others are not', () => {
    const l = load('a');
    const blocked = infer('cold', 'a');
    const other = infer('warm', 'b');
    expect([...waitingForLoad(lane([l], [blocked, other]))]).toEqual(['cold']);
  });

  test('the encoder counts as a model the request uses', () => {
    const l = load('enc');
    expect([...waitingForLoad(lane([l], [infer('bot', 'head', 'enc')]))]).toEqual(['bot']);
  });

  test('a request submitted before an unload of that model (for the copy being unloaded) goes first', () => {
    const r = infer('bot', 'a');
    const u = unload('a');
    const l = load('a');
    expect(waitingForLoad(lane([u, l], [r])).size).toBe(0);
    const later = infer('bot2', 'a');
    expect([...waitingForLoad(lane([u, l], [r, later]))]).toEqual(['bot2']);
  });

  test("a bot's oldest waiting request decides: one submitted before the unload goes first, with the bot's later ones", () => {
    const old = infer('bot', 'a'); // for the copy being unloaded
    const u = unload('a');
    const l = load('a');
    const newer = infer('bot', 'a'); // for the copy being loaded
    expect(waitingForLoad(lane([u, l], [old, newer])).size).toBe(0);
    // Once the older one has gone, the bot waits for the load.
    expect([...waitingForLoad(lane([u, l], [newer]))]).toEqual(['bot']);
  });

  test('no load waiting: nobody blocked', () => {
    expect(waitingForLoad(lane([unload('a')], [infer('bot', 'a')])).size).toBe(0);
  });
});

test('controlInFlight: only a load or unload in flight counts', () => {
  expect(controlInFlight(lane([], [], [[infer('bot', 'a')]]))).toBe(false);
  expect(controlInFlight(lane([], [], [[infer('bot', 'a')], [load('b')]]))).toBe(true);
});

test('needed: a waiting request uses the model, before a sequence number if given', () => {
  const r = infer('bot', 'a');
  const l = lane([], [r]);
  expect(needed(l, 'a')).toBe(true);
  expect(needed(l, 'b')).toBe(false);
  expect(needed(l, 'a', r.seq)).toBe(false);
  expect(needed(l, 'a', r.seq + 1)).toBe(true);
});
