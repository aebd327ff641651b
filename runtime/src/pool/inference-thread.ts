/**
 * The code that runs inside an inference thread (one per lane, see lane.ts for its messages). It owns ONNX
 * sessions (encoders and heads of its share of the pool's bots) and their bots' text pipelines (rules,
 * tokenizer, post-processing), and runs them one message at a time: onnxruntime-node's `run()` blocks the
 * calling thread, so it never runs on the HTTP thread. Sessions use one intra-op and one inter-op thread
 * without spinning, so thousands of sessions do not mean thousands of busy threads.
 *
 * A `run` message carries several requests (texts), of one or several bots: each is pre-processed and
 * tokenized here, the requests that share an encoder go through it as one batch (their rows stacked,
 * padded to the longest), then each through its own head, and its answer is decided here too.
 */
import * as fs from 'node:fs';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { BotProcessor, TokenIds } from './processors';
import type { LaneReply, LaneRequest, RunJob, RunResult, ThreadData } from './lane';
import { Measurer, START_UP_MODEL } from './measure';

/** Sessions of encoders (and of anything that is not a bot's head). */
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

/**
 * Sessions of heads: the basic graph optimizations only (constant folding, redundant nodes, MatMul+Add
 * fusion). The extended ones fuse transformer blocks (attention, GELU, layer norm), which heads do not
 * have, and add a large share of a small head's load time: heads load on demand while other bots are
 * being served.
 */
export const HEAD_SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { ...SESSION_OPTIONS, graphOptimizationLevel: 'basic' };

const sessions = new Map<string, ort.InferenceSession>();
/** The pipelines of the heads loaded here, by the head's key. */
const processors = new Map<string, BotProcessor>();
/** Measures each load (see measure.ts), one thread of the process at a time. */
const measurer = new Measurer((workerData as ThreadData | undefined)?.measureLock, threadId, async () => {
  await (await ort.InferenceSession.create(START_UP_MODEL, SESSION_OPTIONS)).release();
});

function session(key: string): ort.InferenceSession {
  const s = sessions.get(key);
  if (!s) throw new Error(`model ${key} is not loaded in this worker`);
  return s;
}

async function unload(key: string): Promise<void> {
  const s = sessions.get(key);
  sessions.delete(key);
  processors.delete(key);
  if (s) await measurer.exclusive(() => s.release());
}

/** A file's size, opened as a read would open it (a missing file fails as a read would: "ENOENT ... open"). */
function fileSize(file: string): number {
  const fd = fs.openSync(file, 'r');
  try {
    return fs.fstatSync(fd).size;
  } finally {
    fs.closeSync(fd);
  }
}

async function handle(msg: LaneRequest): Promise<LaneReply> {
  switch (msg.type) {
    case 'load': {
      for (const key of msg.release ?? []) await unload(key);
      // onnxruntime reads the file itself and frees what it read once the session is made: a buffer read
      // here would stay in this thread's heap until its next garbage collection (a model's size again).
      const fileBytes = fileSize(msg.file);
      const processor = msg.processing ? new BotProcessor(msg.processing) : undefined;
      const { value: s, measuredBytes } = await measurer.load(fileBytes, () => ort.InferenceSession.create(msg.file, processor ? HEAD_SESSION_OPTIONS : SESSION_OPTIONS));
      if (processor && msg.check) {
        const first = await checkHead(s, processor, msg.check.encoder);
        if (first) {
          await measurer.exclusive(() => s.release());
          throw new Error(first);
        }
      }
      const replaced = sessions.get(msg.key);
      if (replaced) await measurer.exclusive(() => replaced.release());
      sessions.set(msg.key, s);
      if (processor) processors.set(msg.key, processor);
      return { type: 'loaded', id: msg.id, bytes: fileBytes, measuredBytes, inputs: [...s.inputNames], outputs: [...s.outputNames] };
    }
    case 'unload':
      await unload(msg.key);
      return { type: 'unloaded', id: msg.id };
    case 'close': {
      const all = [...sessions.values()];
      sessions.clear();
      processors.clear();
      await measurer.exclusive(() => Promise.all(all.map((s) => s.release())));
      return { type: 'closed', id: msg.id };
    }
    case 'run':
      return { type: 'ran', id: msg.id, results: await runJobs(msg.jobs) };
  }
}

/**
 * Whether a new head can answer for its bot: why not, or undefined. Its inputs and outputs by name, then
 * from the shapes the models declare: its input against its encoder's output (width) or the token ids
 * (int64), and its label count against the width of "probabilities". When a shape leaves any of that
 * open, one run on an empty text (through its encoder) decides. A head whose shapes settle it is not run
 * here: its bot's first request is its first run (a cold bot's load is on that request's path).
 */
async function checkHead(head: ort.InferenceSession, processor: BotProcessor, encoder: string | undefined): Promise<string | undefined> {
  const name = encoder === undefined ? 'input_ids' : 'embedding';
  if (!head.inputNames.includes(name) || !head.outputNames.includes('probabilities')) {
    return `it must take "${name}" and output "probabilities", it takes ${JSON.stringify(head.inputNames)} and outputs ${JSON.stringify(head.outputNames)}`;
  }
  if (encoder !== undefined && !sessions.has(encoder)) return `its encoder ${encoder} is not loaded in this worker`;
  const input = matrix(head.inputMetadata, name);
  const labels = matrix(head.outputMetadata, 'probabilities');
  if (typeof labels?.width === 'number' && labels.type === 'float32' && labels.width !== processor.labels.length) {
    return `head outputs ${labels.width} probabilities, the catalog lists ${processor.labels.length} intents`;
  }
  let inputSettled = input?.type === 'int64';
  if (encoder !== undefined) {
    const embedding = matrix(session(encoder).outputMetadata, 'embedding');
    if (typeof input?.width === 'number' && typeof embedding?.width === 'number' && input.width !== embedding.width) {
      return `it takes an embedding of width ${input.width}, its encoder gives ${embedding.width}`;
    }
    inputSettled = input?.type === 'float32' && embedding?.type === 'float32' && typeof input.width === 'number' && input.width === embedding.width;
  }
  if (inputSettled && labels?.type === 'float32' && typeof labels.width === 'number') return undefined;
  const ids = processor.ids(['']);
  const idsTensor = new ort.Tensor('int64', ids.ids, [1, ids.tokens]);
  try {
    const feeds: ort.InferenceSession.FeedsType = encoder === undefined ? { input_ids: idsTensor } : { embedding: checkEmbedding((await session(encoder).run({ input_ids: idsTensor })).embedding) };
    checkProbabilities((await head.run(feeds)).probabilities, 1, processor.labels.length);
    return undefined;
  } catch (e) {
    return `its first run failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** A rank-2 tensor's declared element type and width (a number, or a symbolic dimension's name), if the model declares it so. */
function matrix(metadata: readonly ort.InferenceSession.ValueMetadata[], name: string): { type: string; width: number | string } | undefined {
  const m = metadata.find((x) => x.name === name);
  return m?.isTensor && m.shape.length === 2 ? { type: m.type, width: m.shape[1] } : undefined;
}

/** An encoder's output as heads take it: float32 [batch, dimensions]. */
function checkEmbedding(embedding: ort.Tensor | undefined): ort.Tensor {
  if (!embedding || embedding.type !== 'float32' || embedding.dims.length !== 2) {
    throw new Error(`encoder output "embedding" must be float32 [batch, dimensions], got ${embedding ? `${embedding.type} [${embedding.dims.join(', ')}]` : 'nothing'}`);
  }
  return embedding;
}

/** A head's output as answers read it: float32 [batch, labels], one probability per intent of the catalog. */
function checkProbabilities(out: ort.Tensor | undefined, batch: number, labels: number): ort.Tensor {
  if (!out || out.type !== 'float32' || out.dims.length !== 2 || out.dims[0] !== batch) {
    throw new Error(`head output "probabilities" must be float32 [${batch}, labels], got ${out ? `${out.type} [${out.dims.join(', ')}]` : 'nothing'}`);
  }
  if (out.dims[1] !== labels) throw new Error(`head outputs ${out.dims[1]} probabilities, the catalog lists ${labels} intents`);
  return out;
}

/** A job with its texts tokenized: what the models take. */
interface Prepared {
  job: RunJob;
  processor: BotProcessor;
  input: TokenIds;
  batch: number;
  /** Time spent on it so far (ms): pre-processing and tokenizing. */
  ms: number;
}

/** Runs the jobs: each tokenized, those sharing an encoder through one encoder run, each through its head. */
async function runJobs(jobs: RunJob[]): Promise<RunResult[]> {
  const results: RunResult[] = new Array(jobs.length);
  const prepared: Prepared[] = new Array(jobs.length);
  const byEncoder = new Map<string | undefined, number[]>();
  jobs.forEach((job, i) => {
    const started = performance.now();
    const processor = processors.get(job.head);
    if (!processor) {
      results[i] = { error: `model ${job.head} is not a bot's head loaded in this worker` };
      return;
    }
    try {
      prepared[i] = { job, processor, input: processor.ids(job.texts), batch: job.texts.length, ms: performance.now() - started };
    } catch (e) {
      results[i] = { error: `pre-processing failed: ${(e as Error).message.split('\n')[0]}` };
      return;
    }
    const list = byEncoder.get(job.encoder) ?? [];
    list.push(i);
    byEncoder.set(job.encoder, list);
  });
  for (const [encoder, indices] of byEncoder) {
    if (encoder === undefined) {
      for (const i of indices) {
        const { input, batch } = prepared[i];
        results[i] = await runHead(prepared[i], { input_ids: new ort.Tensor('int64', input.ids, [batch, input.tokens]) }, 0);
      }
      continue;
    }
    try {
      await runThroughEncoder(prepared, indices, encoder, results);
    } catch (e) {
      // Anything that goes wrong for the group fails its jobs, each with the reason: never the whole message.
      for (const i of indices) results[i] ??= { error: (e as Error).message.split('\n')[0] };
    }
  }
  return results;
}

/** Jobs sharing an encoder: their rows stacked (padded to the longest), one encoder run, then each head. */
async function runThroughEncoder(jobs: Prepared[], indices: number[], encoder: string, results: RunResult[]): Promise<void> {
  const rows = indices.reduce((n, i) => n + jobs[i].batch, 0);
  const width = Math.max(...indices.map((i) => jobs[i].input.tokens));
  let ids: BigInt64Array;
  if (indices.length === 1) ids = jobs[indices[0]].input.ids;
  else {
    ids = new BigInt64Array(rows * width);
    let row = 0;
    for (const i of indices) {
      const { batch } = jobs[i];
      const { ids: own, tokens } = jobs[i].input;
      for (let r = 0; r < batch; r++) ids.set(own.subarray(r * tokens, (r + 1) * tokens), (row + r) * width);
      row += batch;
    }
  }
  const started = performance.now();
  const embedding = checkEmbedding((await session(encoder).run({ input_ids: new ort.Tensor('int64', ids, [rows, width]) })).embedding);
  const encoderMs = performance.now() - started;
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

/**
 * A job's head on its encoded rows (or its token ids), then its answer: the intent of each text, and its
 * entities when asked for. `sharedMs` is its share of the encoder run.
 */
async function runHead(p: Prepared, feeds: ort.InferenceSession.FeedsType, sharedMs: number): Promise<RunResult> {
  const started = performance.now();
  const { job, processor, batch } = p;
  try {
    const out = checkProbabilities((await session(job.head).run(feeds)).probabilities, batch, processor.labels.length);
    const probabilities = new Float32Array(out.data as Float32Array);
    const rows = job.texts.map((_, i) => processor.decide(probabilities, i));
    const entities = job.entities ? job.texts.map((t) => processor.entities(t)) : undefined;
    return { rows, probabilities, ...(entities ? { entities } : {}), ms: p.ms + sharedMs + performance.now() - started };
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] };
  }
}

if (parentPort) {
  const port = parentPort;
  let chain = Promise.resolve();
  port.on('message', (msg: LaneRequest) => {
    chain = chain.then(async () => {
      let answer: LaneReply;
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
