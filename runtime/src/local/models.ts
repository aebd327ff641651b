/**
 * Demo models: tiny real ONNX encoders and heads that follow the botshard model contract
 * (docs/pool.md), generated deterministically from a seed and the catalog's example utterances.
 *
 * - Encoder: `input_ids` int64 [batch, tokens] -> `embedding` float32 [batch, D], an embedding bag:
 *   Gather(table[buckets, D]) -> ReduceSum over tokens -> LpNormalization(p=2). Row 0 is zeros (padding).
 * - Head: `embedding` float32 [batch, D] -> `probabilities` float32 [batch, L]: MatMul W[D, L] + b -> Softmax.
 *   A bot without an encoder gets a head that takes `input_ids` and holds its own embedding bag.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { DataType, encodeModel, floatTensor, int64Tensor, node, valueInfo } from './onnx';
import { Bot, Catalog, Encoder } from '../catalog';
import { writeAtomic } from '../io/atomic-write';
import { xxh64 } from '../placement';
import { DEFAULT_TOKENIZER, tokenize } from '../pool/tokenizer';
import { mulberry32 } from './random';
import { TransformerOptions, buildTransformerEncoderModel } from './transformer';

/** Width of the embedding bag inside the head of a bot without an encoder. */
export const STANDALONE_DIMENSIONS = 16;
/** The embedding-bag nodes: `input_ids` -> `out` (L2-normalised sum of the table rows). */
function bagNodes(out: string): onnx.INodeProto[] {
  return [
    node('Gather', ['table', 'input_ids'], ['gathered'], [{ name: 'axis', i: 0 }]),
    node('ReduceSum', ['gathered', 'token_axis'], ['bag'], [{ name: 'keepdims', i: 0 }]),
    node('LpNormalization', ['bag'], [out], [{ name: 'axis', i: -1 }, { name: 'p', i: 2 }]),
  ];
}

/** An encoder ONNX model around an embedding table of `buckets` x `dimensions` float32 values. */
export function buildEncoderModel(table: Float32Array, buckets: number, dimensions: number): Uint8Array {
  return encodeModel('encoder', {
    node: bagNodes('embedding'),
    initializer: [floatTensor('table', [buckets, dimensions], table), int64Tensor('token_axis', [1])],
    input: [valueInfo('input_ids', DataType.INT64, ['batch', 'tokens'])],
    output: [valueInfo('embedding', DataType.FLOAT, ['batch', dimensions])],
  });
}

export interface HeadModelOptions {
  /** W[D, L], row-major. */
  weights: Float32Array;
  /** b[L]. @default zeros */
  bias?: Float32Array;
  dimensions: number;
  labels: number;
  /** The head's own embedding bag, for a bot without an encoder: the head then takes `input_ids`. @default - takes `embedding` */
  bag?: { table: Float32Array; buckets: number };
  /**
   * Extra work that does not change the result: `rounds` products of `size` x `size` matrices built
   * from the input (so they are not folded away when the session loads). For tests of slow bots.
   * @default - none
   */
  slow?: { size: number; rounds: number };
}

/** A head ONNX model: MatMul + Add + Softmax, optionally with its own embedding bag. */
export function buildHeadModel(opts: HeadModelOptions): Uint8Array {
  const { dimensions: D, labels: L } = opts;
  const nodes: onnx.INodeProto[] = [];
  const initializer: onnx.ITensorProto[] = [
    floatTensor('W', [D, L], opts.weights),
    floatTensor('b', [L], opts.bias ?? new Float32Array(L)),
  ];
  if (opts.bag) {
    nodes.push(...bagNodes('embedding'));
    initializer.push(floatTensor('table', [opts.bag.buckets, D], opts.bag.table), int64Tensor('token_axis', [1]));
  }
  nodes.push(node('MatMul', ['embedding', 'W'], ['scores']), node('Add', ['scores', 'b'], ['logits']));
  let logits = 'logits';
  if (opts.slow) {
    // Expand a scalar drawn from the input to [size, size], multiply it by itself `rounds` times (a
    // Sigmoid keeps the values bounded), then add 0 x its mean to the logits.
    const { size, rounds } = opts.slow;
    initializer.push(int64Tensor('slow_shape', [size, size]), floatTensor('slow_zero', [], new Float32Array([0])));
    nodes.push(
      node('ReduceMean', ['logits'], ['slow_seed'], [{ name: 'keepdims', i: 0 }]),
      node('Expand', ['slow_seed', 'slow_shape'], ['slow_0']),
    );
    for (let r = 0; r < rounds; r++) {
      nodes.push(node('MatMul', [`slow_${r}`, `slow_${r}`], [`slow_p${r}`]), node('Sigmoid', [`slow_p${r}`], [`slow_${r + 1}`]));
    }
    nodes.push(
      node('ReduceMean', [`slow_${rounds}`], ['slow_mean'], [{ name: 'keepdims', i: 0 }]),
      node('Mul', ['slow_mean', 'slow_zero'], ['slow_nothing']),
      node('Add', ['logits', 'slow_nothing'], ['logits_slow']),
    );
    logits = 'logits_slow';
  }
  nodes.push(node('Softmax', [logits], ['probabilities'], [{ name: 'axis', i: -1 }]));
  return encodeModel('head', {
    node: nodes,
    initializer,
    input: [opts.bag ? valueInfo('input_ids', DataType.INT64, ['batch', 'tokens']) : valueInfo('embedding', DataType.FLOAT, ['batch', D])],
    output: [valueInfo('probabilities', DataType.FLOAT, ['batch', L])],
  });
}

/** mulberry32 seeded from a string: the same values in every run. */
function random(seed: number, key: string): () => number {
  return mulberry32((xxh64(`${seed}/${key}`).lo ^ seed) >>> 0);
}

/** A seeded embedding table: Gaussian values / sqrt(D) (a random projection of the hashed bag of words), row 0 zeros. */
export function embeddingTable(seed: number, key: string, buckets: number, dimensions: number): Float32Array {
  const next = random(seed, key);
  const table = new Float32Array(buckets * dimensions);
  const scale = 1 / Math.sqrt(dimensions);
  for (let i = dimensions; i < table.length; i += 2) {
    // Box-Muller: two Gaussian values per pair of uniform ones.
    const u = Math.max(next(), 1e-12);
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u)) * scale;
    table[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < table.length) table[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return table;
}

/** The embedding bag in JS, as the ONNX encoder computes it: sum of the rows of `ids`, L2-normalised. */
export function embed(ids: readonly number[], table: Float32Array, dimensions: number): Float32Array {
  const out = new Float32Array(dimensions);
  for (const id of ids) for (let d = 0; d < dimensions; d++) out[d] += table[id * dimensions + d];
  return normalise(out);
}

function normalise(v: Float32Array): Float32Array {
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  if (norm > 0) for (let d = 0; d < v.length; d++) v[d] /= norm;
  return v;
}

export interface DemoModelOptions {
  /** @default 1 */
  seed?: number;
  /** Scale of the head's weights: higher means more confident answers. @default 10 */
  temperature?: number;
  /** The encoders' kind: an embedding bag (a fraction of a millisecond a request), or transformer-shaped (milliseconds, for benchmarks). @default "bag" */
  encoder?: 'bag' | { transformer: TransformerOptions };
}

/** Head weights W[D, L]: column j is the normalised mean embedding of intent j's examples (or of its name). */
function headWeights(bot: Bot, table: Float32Array, tokenizer: { buckets: number; maxTokens: number }, D: number, temperature: number): Float32Array {
  const L = bot.intents.length;
  const W = new Float32Array(D * L);
  bot.intents.forEach((intent, j) => {
    const texts = intent.examples.length > 0 ? intent.examples : [intent.name.replace(/[_-]+/g, ' ')];
    const mean = new Float32Array(D);
    for (const text of texts) {
      const e = embed(tokenize(text, tokenizer), table, D);
      for (let d = 0; d < D; d++) mean[d] += e[d];
    }
    normalise(mean);
    for (let d = 0; d < D; d++) W[d * L + j] = mean[d] * temperature;
  });
  return W;
}

const REMOTE = /^[a-z][a-z0-9+.-]*:\/\//i;

/** Every demo model file of a catalog (local paths only): model-root-relative path -> ONNX bytes. */
export function demoModels(catalog: Catalog, opts: DemoModelOptions = {}): Map<string, Uint8Array> {
  const seed = opts.seed ?? 1;
  const temperature = opts.temperature ?? 10;
  const files = new Map<string, Uint8Array>();
  const tables = new Map<string, { encoder: Encoder; table: Float32Array }>();
  for (const encoder of catalog.encoders) {
    const table = embeddingTable(seed, `encoder/${encoder.id}`, encoder.tokenizer.buckets, encoder.dimensions);
    tables.set(encoder.id, { encoder, table });
    if (REMOTE.test(encoder.path)) continue;
    const kind = opts.encoder ?? 'bag';
    files.set(
      encoder.path,
      kind === 'bag' ? buildEncoderModel(table, encoder.tokenizer.buckets, encoder.dimensions) : buildTransformerEncoderModel(table, encoder.tokenizer.buckets, encoder.dimensions, { seed, ...kind.transformer }),
    );
  }
  for (const bot of catalog.bots) {
    if (REMOTE.test(bot.model.head)) continue; // remote models are not generated
    const shared = bot.model.encoder ? tables.get(bot.model.encoder) : undefined;
    if (shared) {
      const D = shared.encoder.dimensions;
      const weights = headWeights(bot, shared.table, shared.encoder.tokenizer, D, temperature);
      files.set(bot.model.head, buildHeadModel({ weights, dimensions: D, labels: bot.intents.length }));
    } else {
      const D = STANDALONE_DIMENSIONS;
      const table = embeddingTable(seed, `head/${bot.id}`, DEFAULT_TOKENIZER.buckets, D);
      const weights = headWeights(bot, table, DEFAULT_TOKENIZER, D, temperature);
      files.set(bot.model.head, buildHeadModel({ weights, dimensions: D, labels: bot.intents.length, bag: { table, buckets: DEFAULT_TOKENIZER.buckets } }));
    }
  }
  return files;
}

export interface WriteResult {
  /** Paths that were missing, now holding a demo model. */
  written: string[];
  /** Demo models written earlier, refreshed because the catalog changed them (new intents, say). */
  updated: string[];
  /** Paths already holding the same content. */
  unchanged: string[];
  /** Paths holding a file botshard did not write (your own model): never overwritten. */
  kept: string[];
}

/** The demo models written into a model root, by content hash: only these are ever rewritten. */
export const DEMO_RECORD = '.botshard-demo-models.json';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * Writes the demo models of a catalog under `modelRoot` at the catalog's paths: where a file is missing,
 * or still holds a demo model written earlier (recorded in `.botshard-demo-models.json`). A file that
 * botshard did not write is the user's own model and is never overwritten.
 */
export function writeDemoModels(catalog: Catalog, modelRoot: string, opts: DemoModelOptions = {}): WriteResult {
  const result: WriteResult = { written: [], updated: [], unchanged: [], kept: [] };
  const recordFile = path.join(modelRoot, DEMO_RECORD);
  let record: Record<string, string> = {};
  try {
    record = JSON.parse(fs.readFileSync(recordFile, 'utf8'));
  } catch {
    record = {};
  }
  for (const [relative, bytes] of demoModels(catalog, opts)) {
    const file = path.resolve(modelRoot, relative);
    let existing: string | undefined;
    try {
      existing = sha256(fs.readFileSync(file));
    } catch {
      existing = undefined;
    }
    const demo = sha256(bytes);
    if (existing === demo) {
      result.unchanged.push(relative);
      record[relative] = demo;
      continue;
    }
    if (existing !== undefined && existing !== record[relative]) {
      result.kept.push(relative);
      continue;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeAtomic(file, bytes); // a pool reading the file never sees half of it
    record[relative] = demo;
    (existing === undefined ? result.written : result.updated).push(relative);
  }
  if (result.written.length + result.updated.length + result.unchanged.length > 0) {
    fs.mkdirSync(modelRoot, { recursive: true });
    fs.writeFileSync(recordFile, `${JSON.stringify(record, null, 2)}\n`);
  }
  return result;
}
