/**
 * Tensor elements as raw bytes, the layout both the REST binary data extension and gRPC's
 * `raw_input_contents` / `raw_output_contents` use: row-major, little-endian, no padding; a BYTES element is
 * a 4-byte little-endian length followed by its bytes. Shared by pool and router.
 */
import { DATATYPES, Datatype } from './schemas';

/** Bytes per element of the fixed-size datatypes. */
const WIDTH: Record<Exclude<Datatype, 'BYTES'>, number> = { BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8 };

/** Raw tensor bytes that do not match their datatype or shape: a 400 ("what was wrong, and how to send it"). */
export class TensorDataError extends Error {
  readonly statusCode = 400;
}

export type Element = string | number | boolean;

/** An output tensor as botshard answers it (BYTES texts or FP32 numbers), whatever the transport. */
export interface Tensor {
  name: string;
  datatype: 'BYTES' | 'FP32';
  shape: number[];
  data: ArrayLike<string | number>;
  parameters?: Record<string, unknown>;
}

/** A tensor's datatype when it is one of the protocol's; else the 400 naming the input. */
export function datatypeOf(input: string, datatype: unknown): Datatype {
  if (!DATATYPES.includes(datatype as Datatype)) throw new TensorDataError(`input "${input}": datatype ${JSON.stringify(datatype)} is not one of ${DATATYPES.join(', ')}`);
  return datatype as Datatype;
}

/** A tensor as REST's JSON answer carries it (`data` a plain array). */
export function jsonTensor(t: Tensor): Omit<Tensor, 'data'> & { data: Array<string | number> } {
  return { ...t, data: Array.from(t.data) };
}

/** A tensor's name, datatype and shape: what gRPC's tensor messages and metadata carry beside the elements. */
export function tensorHeader(t: { name: string; datatype: string; shape: number[] }): { name: string; datatype: string; shape: number[] } {
  return { name: t.name, datatype: t.datatype, shape: t.shape };
}

/** The elements of a raw tensor. BYTES elements decode as UTF-8 text; 64-bit integers as numbers. */
export function decodeRaw(name: string, datatype: Datatype, bytes: Buffer): Element[] {
  if (datatype === 'BYTES') {
    const out: string[] = [];
    let at = 0;
    while (at < bytes.length) {
      if (at + 4 > bytes.length) throw new TensorDataError(`input "${name}": BYTES data ends inside an element's 4-byte length (at byte ${at} of ${bytes.length})`);
      const length = bytes.readUInt32LE(at);
      at += 4;
      if (at + length > bytes.length) throw new TensorDataError(`input "${name}": a BYTES element of ${length} bytes runs past the end of the data (${bytes.length - at} bytes left)`);
      out.push(bytes.toString('utf8', at, at + length));
      at += length;
    }
    return out;
  }
  const width = WIDTH[datatype];
  if (bytes.length % width !== 0) throw new TensorDataError(`input "${name}": ${bytes.length} bytes is not a whole number of ${datatype} elements (${width} bytes each)`);
  const n = bytes.length / width;
  const out: Element[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = readElement(bytes, i * width, datatype);
  return out;
}

function readElement(b: Buffer, at: number, datatype: Exclude<Datatype, 'BYTES'>): Element {
  switch (datatype) {
    case 'BOOL': return b[at] !== 0;
    case 'UINT8': return b.readUInt8(at);
    case 'INT8': return b.readInt8(at);
    case 'UINT16': return b.readUInt16LE(at);
    case 'INT16': return b.readInt16LE(at);
    case 'UINT32': return b.readUInt32LE(at);
    case 'INT32': return b.readInt32LE(at);
    case 'UINT64': return Number(b.readBigUInt64LE(at));
    case 'INT64': return Number(b.readBigInt64LE(at));
    case 'FP16': return halfToNumber(b.readUInt16LE(at));
    case 'FP32': return b.readFloatLE(at);
    case 'FP64': return b.readDoubleLE(at);
  }
}

/** An IEEE 754 half-precision value. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** The raw bytes of the outputs botshard sends: BYTES (strings) and FP32. */
export function encodeRaw(datatype: 'BYTES' | 'FP32', data: ArrayLike<string | number>): Buffer {
  if (datatype === 'FP32') {
    const b = Buffer.allocUnsafe(data.length * 4);
    for (let i = 0; i < data.length; i++) b.writeFloatLE(data[i] as number, i * 4);
    return b;
  }
  const parts = Array.from(data as ArrayLike<string>, (s) => Buffer.from(s, 'utf8'));
  const b = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    b.writeUInt32LE(p.length, at);
    p.copy(b, at + 4);
    at += 4 + p.length;
  }
  return b;
}
