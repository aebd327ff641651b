/**
 * An inference worker thread. It owns ONNX sessions (encoders and heads of its share of the pool's
 * bots) and runs them one message at a time: onnxruntime-node's `run()` blocks the calling thread, so
 * it never runs on the HTTP thread. Sessions use one intra-op and one inter-op thread without spinning,
 * so thousands of sessions do not mean thousands of busy threads.
 *
 * A `run` message carries several requests, of one or several bots: the requests that share an encoder
 * go through it as one batch (their rows stacked, padded to the longest), then each through its own head.
 */
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

/** Messages from the pool to a worker. */
export type WorkerRequest =
  | { type: 'load'; id: number; key: string; file: string }
  | { type: 'unload'; id: number; key: string }
  | { type: 'run'; id: number; jobs: RunJob[] }
  /** Release every session and end the thread (after the messages before it). */
  | { type: 'close'; id: number };

/** Answers of a worker, one per request. */
export type WorkerResponse =
  | { type: 'loaded'; id: number; bytes: number; inputs: string[]; outputs: string[] }
  | { type: 'unloaded'; id: number }
  | { type: 'closed'; id: number }
  | { type: 'ran'; id: number; results: RunResult[] }
  | { type: 'error'; id: number; message: string };

/** One request: token ids [batch, tokens] (0-padded) through an optional encoder, then a head. */
export interface RunJob {
  encoder?: string;
  head: string;
  ids: BigInt64Array;
  batch: number;
  tokens: number;
}

/** A request's answer: its probabilities [batch, labels] and the model time it used (its share of a shared encoder run). */
export type RunResult = { probabilities: Float32Array; labels: number; ms: number } | { error: string };

export const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  // Small models: a per-session arena and memory patterns cost more memory than they save time.
  enableCpuMemArena: false,
  enableMemPattern: false,
  extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
};

const sessions = new Map<string, ort.InferenceSession>();

function session(key: string): ort.InferenceSession {
  const s = sessions.get(key);
  if (!s) throw new Error(`model ${key} is not loaded in this worker`);
  return s;
}

async function handle(msg: WorkerRequest): Promise<WorkerResponse> {
  switch (msg.type) {
    case 'load': {
      const bytes = fs.readFileSync(msg.file);
      const s = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
      await sessions.get(msg.key)?.release();
      sessions.set(msg.key, s);
      return { type: 'loaded', id: msg.id, bytes: bytes.length, inputs: [...s.inputNames], outputs: [...s.outputNames] };
    }
    case 'unload': {
      const s = sessions.get(msg.key);
      sessions.delete(msg.key);
      await s?.release();
      return { type: 'unloaded', id: msg.id };
    }
    case 'close': {
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.all(all.map((s) => s.release()));
      return { type: 'closed', id: msg.id };
    }
    case 'run':
      return { type: 'ran', id: msg.id, results: await runJobs(msg.jobs) };
  }
}

/** Runs the jobs: those sharing an encoder through one encoder run, each through its head. */
async function runJobs(jobs: RunJob[]): Promise<RunResult[]> {
  const results: RunResult[] = new Array(jobs.length);
  const byEncoder = new Map<string | undefined, number[]>();
  jobs.forEach((job, i) => {
    const list = byEncoder.get(job.encoder) ?? [];
    list.push(i);
    byEncoder.set(job.encoder, list);
  });
  for (const [encoder, indices] of byEncoder) {
    if (encoder === undefined) {
      for (const i of indices) results[i] = await runHead(jobs[i], { input_ids: new ort.Tensor('int64', jobs[i].ids, [jobs[i].batch, jobs[i].tokens]) }, 0);
      continue;
    }
    try {
      await runThroughEncoder(jobs, indices, encoder, results);
    } catch (e) {
      // Anything that goes wrong for the group fails its jobs, each with the reason: never the whole message.
      for (const i of indices) results[i] ??= { error: (e as Error).message.split('\n')[0] };
    }
  }
  return results;
}

/** Jobs sharing an encoder: their rows stacked (padded to the longest), one encoder run, then each head. */
async function runThroughEncoder(jobs: RunJob[], indices: number[], encoder: string, results: RunResult[]): Promise<void> {
  const rows = indices.reduce((n, i) => n + jobs[i].batch, 0);
  const width = Math.max(...indices.map((i) => jobs[i].tokens));
  let ids: BigInt64Array;
  if (indices.length === 1) ids = jobs[indices[0]].ids;
  else {
    ids = new BigInt64Array(rows * width);
    let row = 0;
    for (const i of indices) {
      const { ids: own, batch, tokens } = jobs[i];
      for (let r = 0; r < batch; r++) ids.set(own.subarray(r * tokens, (r + 1) * tokens), (row + r) * width);
      row += batch;
    }
  }
  const started = performance.now();
  const embedding = (await session(encoder).run({ input_ids: new ort.Tensor('int64', ids, [rows, width]) })).embedding;
  const encoderMs = performance.now() - started;
  if (!embedding || embedding.type !== 'float32' || embedding.dims.length !== 2) {
    throw new Error(`encoder output "embedding" must be float32 [batch, dimensions], got ${embedding ? `${embedding.type} [${embedding.dims.join(', ')}]` : 'nothing'}`);
  }
  const D = embedding.dims[1];
  const all = embedding.data as Float32Array;
  let row = 0;
  for (const i of indices) {
    const { batch } = jobs[i];
    const own = indices.length === 1 ? embedding : new ort.Tensor('float32', all.slice(row * D, (row + batch) * D), [batch, D]);
    results[i] = await runHead(jobs[i], { embedding: own }, (encoderMs * batch) / rows);
    row += batch;
  }
}

/** A job's head on its encoded rows (or its token ids); `sharedMs` is its share of the encoder run. */
async function runHead(job: RunJob, feeds: ort.InferenceSession.FeedsType, sharedMs: number): Promise<RunResult> {
  const started = performance.now();
  try {
    const out = (await session(job.head).run(feeds)).probabilities;
    if (!out || out.type !== 'float32' || out.dims.length !== 2 || out.dims[0] !== job.batch) {
      throw new Error(`head output "probabilities" must be float32 [${job.batch}, labels], got ${out ? `${out.type} [${out.dims.join(', ')}]` : 'nothing'}`);
    }
    return { probabilities: new Float32Array(out.data as Float32Array), labels: out.dims[1], ms: sharedMs + performance.now() - started };
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] };
  }
}

if (parentPort) {
  const port = parentPort;
  let chain = Promise.resolve();
  port.on('message', (msg: WorkerRequest) => {
    chain = chain.then(async () => {
      let answer: WorkerResponse;
      try {
        answer = await handle(msg);
      } catch (e) {
        answer = { type: 'error', id: msg.id, message: (e as Error).message.split('\n')[0] };
      }
      const transfer = answer.type === 'ran' ? answer.results.flatMap((r) => ('probabilities' in r ? [r.probabilities.buffer as ArrayBuffer] : [])) : [];
      port.postMessage(answer, transfer);
      // Sessions released: the thread ends on its own, never in the middle of a native call.
      if (answer.type === 'closed') port.close();
    });
  });
}
