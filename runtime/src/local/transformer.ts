/**
 * A transformer-shaped demo encoder: what a real sentence encoder costs (milliseconds a request), for
 * benchmarks. Same contract as the embedding-bag encoder (`input_ids` int64 [batch, tokens], 0-padded ->
 * `embedding` float32 [batch, D]) and nearly the same answer, so the demo heads still classify:
 *
 *   tokens -> embedding table [buckets, D] -> project to the hidden width H
 *   -> `layers` x (single-head self-attention over the non-padding tokens + residual + layer norm,
 *                  MLP H -> 4H -> H with ReLU + residual + layer norm)
 *   -> mean over the non-padding tokens -> project back to D
 *   embedding = L2-normalise(bag of the token rows + `mix` x that projection)
 *
 * Padding is masked in attention (-10,000 on padded keys) and in pooling, so a row's result does not
 * depend on how far the batch pads it. Opset 13 has no LayerNormalization: it is spelled out.
 */
import { onnx } from 'onnx-proto';
import { mulberry32 } from './random';
import { DataType, encodeModel, floatTensor, int64Tensor, node, valueInfo } from './onnx';

export interface TransformerOptions {
  /** Encoder layers. @default 4 */
  layers?: number;
  /** Hidden width. @default 256 */
  hidden?: number;
  /** Weight of the transformer's output beside the bag of words (small: the demo heads were fitted to the bag). @default 0.01 */
  mix?: number;
  /** Seed of the random weights. @default 1 */
  seed?: number;
}

/** A transformer-shaped encoder around an embedding table of `buckets` x `dimensions`. */
export function buildTransformerEncoderModel(table: Float32Array, buckets: number, dimensions: number, opts: TransformerOptions = {}): Uint8Array {
  const D = dimensions;
  const H = opts.hidden ?? 256;
  const layers = opts.layers ?? 4;
  const next = mulberry32(opts.seed ?? 1);
  /** Uniform weights with the variance of N(0, 1/fanIn): keeps activations bounded through the layers. */
  const weights = (rows: number, cols: number) => {
    const w = new Float32Array(rows * cols);
    const scale = Math.sqrt(3 / rows);
    for (let i = 0; i < w.length; i++) w[i] = (next() * 2 - 1) * scale;
    return w;
  };
  const initializer: onnx.ITensorProto[] = [
    floatTensor('table', [buckets, D], table),
    floatTensor('W_in', [D, H], weights(D, H)),
    floatTensor('W_out', [H, D], weights(H, D)),
    floatTensor('mix', [], new Float32Array([opts.mix ?? 0.01])),
    floatTensor('scale', [], new Float32Array([1 / Math.sqrt(H)])),
    floatTensor('one', [], new Float32Array([1])),
    floatTensor('masked', [], new Float32Array([10_000])),
    floatTensor('epsilon', [], new Float32Array([1e-5])),
    int64Tensor('zero', [0]),
    int64Tensor('axis_tokens', [1]),
    int64Tensor('axis_last', [2]),
  ];
  const nodes: onnx.INodeProto[] = [
    node('Gather', ['table', 'input_ids'], ['rows'], [{ name: 'axis', i: 0 }]), // [B, T, D]
    node('ReduceSum', ['rows', 'axis_tokens'], ['bag'], [{ name: 'keepdims', i: 0 }]), // [B, D]
    // Mask: 1 for tokens, 0 for padding; -10,000 added to the attention scores of padded keys.
    node('Equal', ['input_ids', 'zero'], ['is_pad']),
    node('Not', ['is_pad'], ['is_token']),
    node('Cast', ['is_token'], ['mask'], [{ name: 'to', i: DataType.FLOAT }]), // [B, T]
    node('Sub', ['mask', 'one'], ['mask_minus_one']),
    node('Mul', ['mask_minus_one', 'masked'], ['key_bias_2d']),
    node('Unsqueeze', ['key_bias_2d', 'axis_tokens'], ['key_bias']), // [B, 1, T]
    node('Unsqueeze', ['mask', 'axis_last'], ['mask_3d']), // [B, T, 1]
    node('MatMul', ['rows', 'W_in'], ['x_0']), // [B, T, H]
  ];
  let x = 'x_0';
  for (let l = 0; l < layers; l++) {
    encoderLayer(`l${l}`, x, `x_${l + 1}`, H, weights, initializer, nodes);
    x = `x_${l + 1}`;
  }
  nodes.push(
    node('Mul', [x, 'mask_3d'], ['x_tokens']),
    node('ReduceSum', ['x_tokens', 'axis_tokens'], ['x_sum'], [{ name: 'keepdims', i: 0 }]), // [B, H]
    node('ReduceSum', ['mask', 'axis_tokens'], ['token_count'], [{ name: 'keepdims', i: 1 }]), // [B, 1]
    node('Max', ['token_count', 'one'], ['token_count_1']),
    node('Div', ['x_sum', 'token_count_1'], ['pooled']),
    node('MatMul', ['pooled', 'W_out'], ['projected']), // [B, D]
    node('Mul', ['projected', 'mix'], ['mixed']),
    node('Add', ['bag', 'mixed'], ['combined']),
    node('LpNormalization', ['combined'], ['embedding'], [{ name: 'axis', i: -1 }, { name: 'p', i: 2 }]),
  );
  return encodeModel('transformer-encoder', {
    node: nodes,
    initializer,
    input: [valueInfo('input_ids', DataType.INT64, ['batch', 'tokens'])],
    output: [valueInfo('embedding', DataType.FLOAT, ['batch', D])],
  });
}

/** One encoder layer from `x` to `out`: self-attention, residual and layer norm, then the MLP, residual and layer norm. */
function encoderLayer(p: string, x: string, out: string, H: number, weights: (rows: number, cols: number) => Float32Array, initializer: onnx.ITensorProto[], nodes: onnx.INodeProto[]): void {
  for (const w of ['q', 'k', 'v', 'o']) initializer.push(floatTensor(`${p}_W${w}`, [H, H], weights(H, H)));
  initializer.push(floatTensor(`${p}_W1`, [H, 4 * H], weights(H, 4 * H)), floatTensor(`${p}_W2`, [4 * H, H], weights(4 * H, H)));
  nodes.push(
    node('MatMul', [x, `${p}_Wq`], [`${p}_q`]),
    node('MatMul', [x, `${p}_Wk`], [`${p}_k`]),
    node('MatMul', [x, `${p}_Wv`], [`${p}_v`]),
    node('Transpose', [`${p}_k`], [`${p}_kt`], [{ name: 'perm', ints: [0, 2, 1] }]),
    node('MatMul', [`${p}_q`, `${p}_kt`], [`${p}_scores`]), // [B, T, T]
    node('Mul', [`${p}_scores`, 'scale'], [`${p}_scaled`]),
    node('Add', [`${p}_scaled`, 'key_bias'], [`${p}_biased`]),
    node('Softmax', [`${p}_biased`], [`${p}_attention`], [{ name: 'axis', i: -1 }]),
    node('MatMul', [`${p}_attention`, `${p}_v`], [`${p}_context`]),
    node('MatMul', [`${p}_context`, `${p}_Wo`], [`${p}_attended`]),
    node('Add', [x, `${p}_attended`], [`${p}_residual_1`]),
  );
  layerNorm(nodes, `${p}_residual_1`, `${p}_h`);
  nodes.push(
    node('MatMul', [`${p}_h`, `${p}_W1`], [`${p}_up`]),
    node('Relu', [`${p}_up`], [`${p}_active`]),
    node('MatMul', [`${p}_active`, `${p}_W2`], [`${p}_down`]),
    node('Add', [`${p}_h`, `${p}_down`], [`${p}_residual_2`]),
  );
  layerNorm(nodes, `${p}_residual_2`, out);
}

/** Layer norm over the last axis (no scale or shift). */
function layerNorm(nodes: onnx.INodeProto[], x: string, out: string): void {
  nodes.push(
    node('ReduceMean', [x], [`${out}_mean`], [{ name: 'axes', ints: [-1] }, { name: 'keepdims', i: 1 }]),
    node('Sub', [x, `${out}_mean`], [`${out}_centred`]),
    node('Mul', [`${out}_centred`, `${out}_centred`], [`${out}_squares`]),
    node('ReduceMean', [`${out}_squares`], [`${out}_var`], [{ name: 'axes', ints: [-1] }, { name: 'keepdims', i: 1 }]),
    node('Add', [`${out}_var`, 'epsilon'], [`${out}_var_eps`]),
    node('Sqrt', [`${out}_var_eps`], [`${out}_std`]),
    node('Div', [`${out}_centred`, `${out}_std`], [out]),
  );
}
