/**
 * Demo models: tiny real ONNX encoders and heads that follow the botshard model contract
 * (docs/pool.md), generated deterministically from a seed and the catalog's example utterances.
 *
 * - Encoder: `input_ids` int64 [batch, tokens] -> `embedding` float32 [batch, D], an embedding bag:
 *   Gather(table[buckets, D]) -> ReduceSum over tokens -> LpNormalization(p=2). Row 0 is zeros (padding).
 * - Head: `embedding` float32 [batch, D] -> `probabilities` float32 [batch, L]: MatMul W[D, L] + b -> Softmax.
 *   A bot without an encoder gets a head that takes `input_ids` and holds its own embedding bag.
 *   A sized head (opts.sized) is as large as its bot declares: MatMul W1[D, H] -> Relu -> MatMul W2[H, L]
 *   + b -> Softmax, which computes the same e W (demo-heads.ts, hiddenLayer).
 * - A candidate (model.candidate) gets its head too; a degraded head (opts.degraded) loads and runs like
 *   the good one and answers worse. The weights, and answers computed in JS, are in demo-heads.ts.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { DataType, encodeModel, floatTensor, int64Tensor, node, valueInfo } from './onnx';
import { Catalog, Encoder } from '../catalog';
import { writeAtomic } from '../io/atomic-write';
import { DemoModelOptions, degradationOf, degradedHeads, demoHead, encoderTable, headVersions, hiddenLayer, hiddenWidth, seededRandom } from './demo-heads';
import { buildTransformerEncoderModel } from './transformer';

export { STANDALONE_DIMENSIONS, demoAgreement, demoAnswer, demoAnswerer, embed, embeddingTable, headWeights } from './demo-heads';
export type { Degradation, Degradations, DemoModelOptions } from './demo-heads';

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
   * A hidden layer of `width` units that computes the same e W (hiddenLayer; `random` draws the weights of
   * the units beyond 2D): the head's weights are then H (D + L) float32 values. @default - one MatMul by W
   */
  hidden?: { width: number; random: () => number };
  /**
   * Extra work that does not change the result: `rounds` products of `size` x `size` matrices built
   * from the input (so they are not folded away when the session loads). For tests of slow bots.
   * @default - none
   */
  slow?: { size: number; rounds: number };
  /**
   * A head that loads and passes its checks but fails at run time on any text: it reads an index far out
   * of range from its logits (Gather on 2 values). For tests of the error guard of model rollouts.
   * @default false
   */
  failing?: boolean;
}

/** A head ONNX model: MatMul (or a hidden layer) + Add + Softmax, optionally with its own embedding bag. */
export function buildHeadModel(opts: HeadModelOptions): Uint8Array {
  const { dimensions: D, labels: L } = opts;
  const nodes: onnx.INodeProto[] = [];
  const bias = floatTensor('b', [L], opts.bias ?? new Float32Array(L));
  const layer = opts.hidden && { width: opts.hidden.width, ...hiddenLayer(opts.weights, D, L, opts.hidden.width, opts.hidden.random) };
  const initializer: onnx.ITensorProto[] = layer
    ? [floatTensor('W1', [D, layer.width], layer.input), floatTensor('W2', [layer.width, L], layer.output), bias]
    : [floatTensor('W', [D, L], opts.weights), bias];
  if (opts.bag) {
    nodes.push(...bagNodes('embedding'));
    initializer.push(floatTensor('table', [opts.bag.buckets, D], opts.bag.table), int64Tensor('token_axis', [1]));
  }
  if (layer) nodes.push(node('MatMul', ['embedding', 'W1'], ['hidden_in']), node('Relu', ['hidden_in'], ['hidden']), node('MatMul', ['hidden', 'W2'], ['scores']));
  else nodes.push(node('MatMul', ['embedding', 'W'], ['scores']));
  nodes.push(node('Add', ['scores', 'b'], ['logits']));
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
  if (opts.failing) {
    initializer.push(floatTensor('fail_scale', [], new Float32Array([1e6])), floatTensor('fail_data', [2], new Float32Array(2)), floatTensor('fail_zero', [], new Float32Array([0])));
    nodes.push(
      node('ReduceL1', [logits], ['fail_sum'], [{ name: 'keepdims', i: 0 }]),
      node('Mul', ['fail_sum', 'fail_scale'], ['fail_big']),
      node('Cast', ['fail_big'], ['fail_index'], [{ name: 'to', i: DataType.INT64 }]),
      node('Gather', ['fail_data', 'fail_index'], ['fail_value'], [{ name: 'axis', i: 0 }]),
      node('Mul', ['fail_value', 'fail_zero'], ['fail_nothing']),
      node('Add', [logits, 'fail_nothing'], ['logits_failing']),
    );
    logits = 'logits_failing';
  }
  nodes.push(node('Softmax', [logits], ['probabilities'], [{ name: 'axis', i: -1 }]));
  return encodeModel('head', {
    node: nodes,
    initializer,
    input: [opts.bag ? valueInfo('input_ids', DataType.INT64, ['batch', 'tokens']) : valueInfo('embedding', DataType.FLOAT, ['batch', D])],
    output: [valueInfo('probabilities', DataType.FLOAT, ['batch', L])],
  });
}

const REMOTE = /^[a-z][a-z0-9+.-]*:\/\//i;

/** What a hidden layer adds to a head's file beside its weights (two nodes, two tensors' names and shapes): a bound, so sized heads stay just under their size. */
const HIDDEN_GRAPH_BYTES = 256;

/** The local heads of a catalog (model.head and model.candidate.head, not s3:// or https://): what demoModels writes. */
export function localHeads(catalog: Catalog): string[] {
  return [...new Set(catalog.bots.flatMap((bot) => headVersions(bot).map((v) => v.head)))].filter((head) => !REMOTE.test(head));
}

/**
 * Every demo model file of a catalog (local paths only): model-root-relative path -> ONNX bytes. Each bot's
 * head, and its candidate's head when it has one (through the candidate's encoder); heads named in
 * `opts.degraded` are trained degraded (an unknown or remote head there is an error).
 */
export function demoModels(catalog: Catalog, opts: DemoModelOptions = {}): Map<string, Uint8Array> {
  return new Map(demoModelFiles(catalog, opts));
}

/** The files of demoModels one at a time, built as they are read (sized heads of thousands of bots do not fit in memory at once). */
export function* demoModelFiles(catalog: Catalog, opts: DemoModelOptions = {}): Generator<[string, Uint8Array]> {
  const seed = opts.seed ?? 1;
  const tables = new Map<string, { encoder: Encoder; table: Float32Array }>();
  const heads = new Set(localHeads(catalog));
  const unknown = degradedHeads(opts.degraded).filter((head) => !heads.has(head));
  if (unknown.length > 0) throw new Error(`degraded heads ${unknown.join(', ')} are not local heads of the catalog (a bot's model.head or model.candidate.head)`);
  for (const encoder of catalog.encoders) {
    const table = encoderTable(encoder, seed);
    tables.set(encoder.id, { encoder, table });
    if (REMOTE.test(encoder.path)) continue;
    const kind = opts.encoder ?? 'bag';
    yield [
      encoder.path,
      kind === 'bag' ? buildEncoderModel(table, encoder.tokenizer.buckets, encoder.dimensions) : buildTransformerEncoderModel(table, encoder.tokenizer.buckets, encoder.dimensions, { seed, ...kind.transformer }),
    ];
  }
  for (const bot of catalog.bots) {
    for (const version of headVersions(bot)) {
      if (REMOTE.test(version.head)) continue; // remote models are not generated
      const head = demoHead(bot, version, tables, opts);
      const bag = head.encoder ? undefined : { table: head.table, buckets: head.tokenizer.buckets };
      const model = { weights: head.weights, dimensions: head.dimensions, labels: head.labels, bag };
      if (!opts.sized) {
        yield [version.head, buildHeadModel(model)];
        continue;
      }
      // The head without its weights W (D x L floats) is what stays beside the hidden layer's H (D + L).
      const fixedBytes = buildHeadModel(model).length - 4 * head.dimensions * head.labels;
      const width = hiddenWidth(version.memory ?? 0, head.dimensions, head.labels, fixedBytes + HIDDEN_GRAPH_BYTES);
      yield [version.head, buildHeadModel({ ...model, hidden: { width, random: seededRandom(seed, `hidden/${version.head}`) } })];
    }
  }
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

/** How the record marks a degraded head (`--degraded`): a later run without that flag leaves it degraded. */
const DEGRADED = 'degraded:';

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
  for (const [relative, bytes] of demoModelFiles(catalog, opts)) {
    const file = path.resolve(modelRoot, relative);
    let existing: string | undefined;
    try {
      existing = sha256(fs.readFileSync(file));
    } catch {
      existing = undefined;
    }
    const demo = sha256(bytes);
    const degraded = degradationOf(opts.degraded, relative) !== undefined;
    const recorded = record[relative]?.replace(DEGRADED, '');
    // A degraded head stays as it is until --degraded names it again (`botshard up` would write a good one).
    const keepDegraded = !degraded && record[relative]?.startsWith(DEGRADED) && existing === recorded;
    if (existing === demo || keepDegraded) {
      result.unchanged.push(relative);
      if (!keepDegraded) record[relative] = degraded ? `${DEGRADED}${demo}` : demo;
      continue;
    }
    if (existing !== undefined && existing !== recorded) {
      result.kept.push(relative);
      continue;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeAtomic(file, bytes); // a pool reading the file never sees half of it
    record[relative] = degraded ? `${DEGRADED}${demo}` : demo;
    (existing === undefined ? result.written : result.updated).push(relative);
  }
  if (result.written.length + result.updated.length + result.unchanged.length > 0) {
    fs.mkdirSync(modelRoot, { recursive: true });
    fs.writeFileSync(recordFile, `${JSON.stringify(record, null, 2)}\n`);
  }
  return result;
}
