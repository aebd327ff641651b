/**
 * An inference worker thread. It owns ONNX sessions (encoders and heads of its share of the pool's
 * bots) and runs them one message at a time: onnxruntime-node's `run()` blocks the calling thread, so
 * it never runs on the HTTP thread. Sessions use one intra-op and one inter-op thread without spinning,
 * so thousands of sessions do not mean thousands of busy threads.
 */
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

/** Messages from the pool to a worker. */
export type WorkerRequest =
  | { type: 'load'; id: number; key: string; file: string }
  | { type: 'unload'; id: number; key: string }
  | { type: 'infer'; id: number; encoder?: string; head: string; ids: BigInt64Array; batch: number; tokens: number }
  /** Release every session and end the thread (after the messages before it). */
  | { type: 'close'; id: number };

/** Answers of a worker, one per request. */
export type WorkerResponse =
  | { type: 'loaded'; id: number; bytes: number; inputs: string[]; outputs: string[] }
  | { type: 'unloaded'; id: number }
  | { type: 'closed'; id: number }
  | { type: 'result'; id: number; probabilities: Float32Array; labels: number; ms: number }
  | { type: 'error'; id: number; message: string };

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
    case 'infer': {
      const started = performance.now();
      const ids = new ort.Tensor('int64', msg.ids, [msg.batch, msg.tokens]);
      const head = session(msg.head);
      let feeds: ort.InferenceSession.FeedsType;
      if (msg.encoder) {
        const encoded = await session(msg.encoder).run({ input_ids: ids });
        feeds = { embedding: encoded.embedding };
      } else {
        feeds = { input_ids: ids };
      }
      const out = (await head.run(feeds)).probabilities;
      if (!out || out.type !== 'float32' || out.dims.length !== 2 || out.dims[0] !== msg.batch) {
        throw new Error(`head output "probabilities" must be float32 [${msg.batch}, labels], got ${out ? `${out.type} [${out.dims.join(', ')}]` : 'nothing'}`);
      }
      const probabilities = new Float32Array(out.data as Float32Array);
      return { type: 'result', id: msg.id, probabilities, labels: out.dims[1], ms: performance.now() - started };
    }
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
      port.postMessage(answer, answer.type === 'result' ? [answer.probabilities.buffer as ArrayBuffer] : []);
      // Sessions released: the thread ends on its own, never in the middle of a native call.
      if (answer.type === 'closed') port.close();
    });
  });
}
