/**
 * onnxruntime-node as the whole-model reference: converts shardc tensors to ORT tensors and back
 * (int64/uint64 travel as BigInt64Array/BigUint64Array on the ORT side, float16 as raw bits) and
 * runs a model file.
 */
import * as ort from 'onnxruntime-node';
import { type DType, f16BitsToF32, f32ToF16Bits } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';

/** A shardc tensor as an ORT tensor. */
export function toOrt(t: Tensor): ort.Tensor {
  const dims = t.shape.slice();
  const src = t.data as ArrayLike<number>;
  const n = t.size;
  switch (t.dtype) {
    case 'float32':
      return new ort.Tensor('float32', Float32Array.from(src), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(src), dims);
    case 'int8':
      return new ort.Tensor('int8', Int8Array.from(src), dims);
    case 'int16':
      return new ort.Tensor('int16', Int16Array.from(src), dims);
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(src), dims);
    case 'uint8':
      return new ort.Tensor('uint8', Uint8Array.from(src), dims);
    case 'uint16':
      return new ort.Tensor('uint16', Uint16Array.from(src), dims);
    case 'uint32':
      return new ort.Tensor('uint32', Uint32Array.from(src), dims);
    case 'bool':
      return new ort.Tensor('bool', Uint8Array.from(src, (v) => (v ? 1 : 0)), dims);
    case 'int64': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(src[i]!);
      return new ort.Tensor('int64', a, dims);
    }
    case 'uint64': {
      const a = new BigUint64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(src[i]!);
      return new ort.Tensor('uint64', a, dims);
    }
    case 'float16': {
      const a = new Uint16Array(n);
      for (let i = 0; i < n; i++) a[i] = f32ToF16Bits(src[i]!);
      return new ort.Tensor('float16', a, dims);
    }
    case 'string':
      return new ort.Tensor('string', (t.strings ?? []).slice(), dims);
    default:
      throw new UserError(`onnxruntime-node does not take ${t.dtype} tensors`);
  }
}

const ORT_DTYPES: Record<string, DType> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int8: 'int8',
  int16: 'int16',
  int32: 'int32',
  int64: 'int64',
  uint8: 'uint8',
  uint16: 'uint16',
  uint32: 'uint32',
  uint64: 'uint64',
  bool: 'bool',
  string: 'string',
};

/** An ORT tensor as a shardc tensor. */
export function fromOrt(t: ort.Tensor): Tensor {
  const dtype = ORT_DTYPES[t.type];
  if (!dtype) throw new UserError(`onnxruntime-node returned a ${t.type} tensor, which shardc does not support`);
  const shape = t.dims.map(Number);
  if (dtype === 'string') return new Tensor('string', shape, (t.data as string[]).slice());
  const data = t.data as ArrayLike<number | bigint>;
  const n = data.length;
  const values = new Float64Array(n);
  if (dtype === 'float16') {
    // ORT hands float16 out as raw bits (Uint16Array) or, on newer Node, a Float16Array.
    const bits = data instanceof Uint16Array;
    for (let i = 0; i < n; i++) values[i] = bits ? f16BitsToF32(data[i] as number) : Number(data[i]);
  } else for (let i = 0; i < n; i++) values[i] = Number(data[i]);
  return Tensor.from(dtype, shape, values);
}

/**
 * Runs `modelPath` with onnxruntime-node (CPU) on `feeds`; returns every graph output by name.
 * The session is created from the path so external data resolves beside the model.
 */
export async function runWithOrt(modelPath: string, feeds: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled' });
  } catch (e) {
    throw new UserError(`onnxruntime-node cannot load the model: ${firstLine(e)}`, { file: modelPath });
  }
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const t = feeds.get(name);
      if (t) ortFeeds[name] = toOrt(t);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run(ortFeeds);
    } catch (e) {
      throw new UserError(`onnxruntime-node failed to run the model: ${firstLine(e)}`, { file: modelPath });
    }
    const out = new Map<string, Tensor>();
    for (const name of session.outputNames) out.set(name, fromOrt(results[name]!));
    return out;
  } finally {
    await session.release();
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
}
