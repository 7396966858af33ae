/**
 * A small builder for ONNX models (ModelProto), used by the example generators, by tests that
 * need hand-made models (valid or deliberately malformed), and by benchmarks. It writes ONNX
 * directly through onnx-proto, so the bytes are exactly what other ONNX tools read.
 */
import onnxProto from 'onnx-proto';
import { type DType, dtypeBytes, dtypeToOnnx, f32ToBf16Bits, f32ToF16Bits } from '../ir/dtype.js';
import type { Dim } from '../ir/shape.js';
import type { Tensor } from '../ir/tensor.js';

const { onnx } = onnxProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

export type AttrInput = number | string | number[] | string[] | Tensor | { float: number } | { floats: number[] };

/** Little-endian bytes of a tensor as ONNX raw_data stores them. */
export function tensorBytes(t: Tensor): Uint8Array {
  const n = t.size;
  const bytes = new Uint8Array(n * dtypeBytes(t.dtype));
  const dv = new DataView(bytes.buffer);
  const d = t.data;
  const w = dtypeBytes(t.dtype);
  for (let i = 0; i < n; i++) {
    const v = d[i]!;
    const o = i * w;
    switch (t.dtype) {
      case 'float32': dv.setFloat32(o, v, true); break;
      case 'float64': dv.setFloat64(o, v, true); break;
      case 'float16': dv.setUint16(o, f32ToF16Bits(v), true); break;
      case 'bfloat16': dv.setUint16(o, f32ToBf16Bits(v), true); break;
      case 'int8': dv.setInt8(o, v); break;
      case 'uint8': case 'bool': dv.setUint8(o, v); break;
      case 'int16': dv.setInt16(o, v, true); break;
      case 'uint16': dv.setUint16(o, v, true); break;
      case 'int32': dv.setInt32(o, v, true); break;
      case 'uint32': dv.setUint32(o, v, true); break;
      case 'int64': dv.setBigInt64(o, BigInt(Math.trunc(v)), true); break;
      case 'uint64': dv.setBigUint64(o, BigInt(Math.trunc(v)), true); break;
      default: throw new Error(`cannot serialise ${t.dtype}`);
    }
  }
  return bytes;
}

export function tensorProto(name: string, t: Tensor): ITensorProto {
  if (t.dtype === 'string')
    return { name, dims: [...t.shape], dataType: 8, stringData: (t.strings ?? []).map((s) => new TextEncoder().encode(s)) };
  return { name, dims: [...t.shape], dataType: dtypeToOnnx(t.dtype), rawData: tensorBytes(t) };
}

export function valueInfo(name: string, dtype: DType, shape?: Dim[]): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: dtypeToOnnx(dtype),
        shape: shape ? { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined,
      },
    },
  };
}

function attribute(name: string, v: AttrInput): IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) {
    if (v.length > 0 && typeof v[0] === 'string')
      return { name, type: T.STRINGS, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) };
    return { name, type: T.INTS, ints: v as number[] };
  }
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.TENSOR, t: tensorProto('', v) };
}

export interface ExternalWeights {
  /** File name relative to the model's folder. */
  location: string;
  /** Tensors whose element count is at least this go external. */
  minElements: number;
}

/**
 * Builds one graph. Names are the caller's; `node` returns its output names so graphs read like
 * the computation: `const h = b.node('MatMul', [x, w])[0]`.
 */
export class ModelBuilder {
  readonly nodes: INodeProto[] = [];
  readonly inputs: IValueInfoProto[] = [];
  readonly outputs: IValueInfoProto[] = [];
  readonly initializers: ITensorProto[] = [];
  private counter = 0;
  private readonly opset: number;
  private readonly name: string;

  constructor(opts: { opset?: number; name?: string } = {}) {
    this.opset = opts.opset ?? 17;
    this.name = opts.name ?? 'main';
  }

  /** A fresh value name with the given prefix. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  input(name: string, dtype: DType, shape?: Dim[]): string {
    this.inputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  output(name: string, dtype: DType, shape?: Dim[]): string {
    this.outputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  initializer(name: string, t: Tensor): string {
    this.initializers.push(tensorProto(name, t));
    return name;
  }

  /** An initializer that only declares shape and dtype and points into an external file. */
  externalInitializer(name: string, dtype: DType, shape: number[], location: string, offset: number): string {
    const length = shape.reduce((a, b) => a * b, 1) * dtypeBytes(dtype);
    this.initializers.push({
      name,
      dims: shape,
      dataType: dtypeToOnnx(dtype),
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ],
    });
    return name;
  }

  /** Adds a node; returns its output names (fresh unless given). */
  node(op: string, inputs: string[], attrs: Record<string, AttrInput> = {}, opts: { outputs?: string[] | number; name?: string; domain?: string } = {}): string[] {
    const outputs =
      typeof opts.outputs === 'number' || opts.outputs === undefined
        ? Array.from({ length: typeof opts.outputs === 'number' ? opts.outputs : 1 }, () => this.fresh(op.toLowerCase()))
        : opts.outputs;
    const attribute_ = Object.keys(attrs)
      .sort()
      .map((k) => attribute(k, attrs[k]!));
    this.nodes.push({ opType: op, input: inputs, output: outputs, name: opts.name ?? this.fresh(`${op}_node`), attribute: attribute_, domain: opts.domain ?? '' });
    return outputs;
  }

  /** Shortcut for single-output nodes. */
  op(op: string, inputs: string[], attrs: Record<string, AttrInput> = {}, name?: string): string {
    return this.node(op, inputs, attrs, { name })[0]!;
  }

  modelProto(): onnxProto.onnx.IModelProto {
    return {
      irVersion: 8,
      producerName: 'shardc',
      producerVersion: '0.1.0',
      opsetImport: [{ domain: '', version: this.opset }],
      graph: { name: this.name, node: this.nodes, input: this.inputs, output: this.outputs, initializer: this.initializers },
    };
  }

  encode(): Uint8Array {
    return onnx.ModelProto.encode(onnx.ModelProto.create(this.modelProto())).finish();
  }
}

/** Deterministic PRNG for weights and test inputs (mulberry32, src/ir/random.ts). */
export { mulberry32 as prng } from '../ir/random.js';
