/** Building ONNX models by hand (onnx-proto): nodes, initializers, value infos, the model bytes. */
import { onnx } from 'onnx-proto';

const OPSET = 13;
export const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

type Attr = { name: string; i?: number; f?: number; ints?: number[] };

export function node(opType: string, inputs: string[], outputs: string[], attrs: Attr[] = []): onnx.INodeProto {
  return {
    opType,
    input: inputs,
    output: outputs,
    name: `${opType}_${outputs[0]}`,
    attribute: attrs.map((a) =>
      a.ints !== undefined
        ? { name: a.name, type: AttributeType.INTS, ints: a.ints }
        : a.f !== undefined
          ? { name: a.name, type: AttributeType.FLOAT, f: a.f }
          : { name: a.name, type: AttributeType.INT, i: a.i },
    ),
  };
}

export function floatTensor(name: string, dims: number[], values: Float32Array): onnx.ITensorProto {
  return { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

export function int64Tensor(name: string, values: number[]): onnx.ITensorProto {
  const raw = new BigInt64Array(values.map((v) => BigInt(v)));
  return { name, dims: [values.length], dataType: DataType.INT64, rawData: new Uint8Array(raw.buffer) };
}

export function valueInfo(name: string, elemType: number, dims: Array<number | string>): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

export function encodeModel(name: string, graph: onnx.IGraphProto): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'botshard',
    producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: { name, ...graph },
  });
  return onnx.ModelProto.encode(model).finish();
}

