/**
 * ONNX TensorProto <-> Tensor (initializers, Constant values, `input_0.pb` files) and tensor
 * files on disk (`.pb` = one serialized TensorProto, `.npy` = numpy; see npy.ts).
 *
 * `tensorFromProto` validates everything it can without decoding (dtype, dims, that the data
 * holds exactly numel elements, external data bounds) and returns a LazyTensor that decodes
 * inline data, or reads the external range, on first load.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type onnxProto from 'onnx-proto';
import {
  type DType,
  type TypedArray,
  allocStorage,
  bf16BitsToF32,
  dtypeBytes,
  dtypeFromOnnx,
  dtypeToOnnx,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from '../ir/dtype.js';
import { UserError, type ErrorLocation } from '../ir/errors.js';
import { LazyTensor, Tensor } from '../ir/tensor.js';
import { readExternalRange, resolveExternalData } from './external-data.js';
import { readNpy, writeNpy } from './npy.js';
import { type TensorProto, bytesToString, decodeTensorProtoMessage, onnx, toNum } from './proto.js';

export interface TensorContext {
  /** File the tensor comes from, for messages. */
  file: string;
  /** Folder that external data locations are relative to. */
  baseDir?: string;
  /** Node whose attribute holds the tensor, for messages. */
  node?: string;
}

/** ONNX data types we cannot represent, for clear messages. */
const UNSUPPORTED_TYPES: Record<number, string> = {
  0: 'UNDEFINED', 14: 'COMPLEX64', 15: 'COMPLEX128', 17: 'FLOAT8E4M3FN', 18: 'FLOAT8E4M3FNUZ', 19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ', 21: 'UINT4', 22: 'INT4', 23: 'FLOAT4E2M1',
};

/** data_type code → DType, or a UserError naming the code. */
export function dtypeOrThrow(code: number, loc: ErrorLocation): DType {
  const d = dtypeFromOnnx(code);
  if (d === undefined) {
    const name = UNSUPPORTED_TYPES[code];
    throw new UserError(name ? `unsupported data type ${name} (${code})` : `unknown data_type ${code}`, loc);
  }
  return d;
}

/** Validated dims (non-negative safe integers whose product is safe too). */
export function checkedDims(raw: readonly unknown[], loc: ErrorLocation): number[] {
  const dims: number[] = [];
  let n = 1;
  for (const r of raw) {
    const d = toNum(r);
    if (!Number.isSafeInteger(d) || d < 0) throw new UserError(`invalid dimension ${d} in dims [${raw.map(toNum).join(',')}]`, loc);
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) throw new UserError(`dims [${raw.map(toNum).join(',')}] hold more than 2^53 elements`, loc);
    dims.push(d);
  }
  return dims;
}

const hasBytes = (b: Uint8Array | null | undefined): b is Uint8Array => !!b && b.length > 0;

/** The typed-field array that holds `dtype`'s elements, with its proto field name. */
function typedField(p: TensorProto, dtype: DType): { field: string; values: ArrayLike<unknown> } {
  switch (dtype) {
    case 'float32':
      return { field: 'float_data', values: p.floatData ?? [] };
    case 'float64':
      return { field: 'double_data', values: p.doubleData ?? [] };
    case 'int64':
      return { field: 'int64_data', values: p.int64Data ?? [] };
    case 'uint32':
    case 'uint64':
      return { field: 'uint64_data', values: p.uint64Data ?? [] };
    case 'string':
      return { field: 'string_data', values: p.stringData ?? [] };
    default:
      return { field: 'int32_data', values: p.int32Data ?? [] };
  }
}

const SAME_LAYOUT = new Set<DType>(['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32']);
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes little-endian raw bytes of `n` elements of `dtype` into storage. */
export function decodeRaw(dtype: DType, n: number, raw: Uint8Array): TypedArray {
  const out = allocStorage(dtype, n);
  if (n === 0) return out;
  if (SAME_LAYOUT.has(dtype) && LITTLE_ENDIAN_HOST) {
    // Storage layout equals the file layout: one byte copy (also fixes alignment).
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw.subarray(0, out.byteLength));
    return out;
  }
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case 'float32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      break;
    case 'float64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      break;
    case 'float16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32(dv.getUint16(i * 2, true));
      break;
    case 'bfloat16':
      for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(dv.getUint16(i * 2, true));
      break;
    case 'int8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      break;
    case 'uint8':
      out.set(raw.subarray(0, n));
      break;
    case 'bool':
      for (let i = 0; i < n; i++) out[i] = raw[i] ? 1 : 0;
      break;
    case 'int16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
      break;
    case 'uint16':
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(i * 2, true);
      break;
    case 'int32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      break;
    case 'uint32':
      for (let i = 0; i < n; i++) out[i] = dv.getUint32(i * 4, true);
      break;
    case 'int64':
    case 'uint64': {
      // Two 32-bit halves (exact below 2^53; much faster than BigInt per element).
      const words = new Uint32Array(2 * n);
      new Uint8Array(words.buffer).set(raw.subarray(0, 8 * n));
      const signed = dtype === 'int64';
      for (let i = 0; i < n; i++) {
        const hi = words[2 * i + 1]!;
        out[i] = (signed ? hi | 0 : hi) * 4294967296 + words[2 * i]!;
      }
      if (!LITTLE_ENDIAN_HOST) for (let i = 0; i < n; i++) out[i] = Number(signed ? dv.getBigInt64(i * 8, true) : dv.getBigUint64(i * 8, true));
      break;
    }
    case 'string':
      throw new Error('string tensors have no raw encoding');
  }
  return out;
}

/** Encodes storage as little-endian raw bytes. */
export function encodeRaw(t: Tensor): Uint8Array {
  const n = t.size;
  const bytes = new Uint8Array(n * dtypeBytes(t.dtype));
  const dv = new DataView(bytes.buffer);
  const d = t.data;
  const int = (v: number): bigint => (Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n);
  switch (t.dtype) {
    case 'float32':
      for (let i = 0; i < n; i++) dv.setFloat32(i * 4, d[i]!, true);
      break;
    case 'float64':
      for (let i = 0; i < n; i++) dv.setFloat64(i * 8, d[i]!, true);
      break;
    case 'float16':
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, f32ToF16Bits(d[i]!), true);
      break;
    case 'bfloat16':
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, f32ToBf16Bits(d[i]!), true);
      break;
    case 'int8':
      for (let i = 0; i < n; i++) dv.setInt8(i, d[i]!);
      break;
    case 'uint8':
    case 'bool':
      for (let i = 0; i < n; i++) bytes[i] = t.dtype === 'bool' ? (d[i] ? 1 : 0) : d[i]!;
      break;
    case 'int16':
      for (let i = 0; i < n; i++) dv.setInt16(i * 2, d[i]!, true);
      break;
    case 'uint16':
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, d[i]!, true);
      break;
    case 'int32':
      for (let i = 0; i < n; i++) dv.setInt32(i * 4, d[i]!, true);
      break;
    case 'uint32':
      for (let i = 0; i < n; i++) dv.setUint32(i * 4, d[i]!, true);
      break;
    case 'int64':
      for (let i = 0; i < n; i++) dv.setBigInt64(i * 8, BigInt.asIntN(64, int(d[i]!)), true);
      break;
    case 'uint64':
      for (let i = 0; i < n; i++) dv.setBigUint64(i * 8, BigInt.asUintN(64, int(d[i]!)), true);
      break;
    case 'string':
      throw new Error('string tensors have no raw encoding');
  }
  return bytes;
}

/** Typed-field values → storage. */
function decodeTyped(dtype: DType, n: number, values: ArrayLike<unknown>): TypedArray | string[] {
  if (dtype === 'string') {
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = bytesToString(values[i] as Uint8Array);
    return out;
  }
  const out = allocStorage(dtype, n);
  if (dtype === 'float16') for (let i = 0; i < n; i++) out[i] = f16BitsToF32((values[i] as number) & 0xffff);
  else if (dtype === 'bfloat16') for (let i = 0; i < n; i++) out[i] = bf16BitsToF32((values[i] as number) & 0xffff);
  else if (dtype === 'bool') for (let i = 0; i < n; i++) out[i] = values[i] ? 1 : 0;
  else if (dtype === 'int64' || dtype === 'uint64' || dtype === 'uint32') for (let i = 0; i < n; i++) out[i] = toNum(values[i]);
  else for (let i = 0; i < n; i++) out[i] = values[i] as number;
  return out;
}

/**
 * A TensorProto as a LazyTensor. Validates dtype, dims, data size and external data now; decodes
 * (or reads) the data on first load.
 */
export function tensorFromProto(p: TensorProto, ctx: TensorContext): LazyTensor {
  const name = p.name || undefined;
  const loc: ErrorLocation = { file: ctx.file, node: ctx.node, tensor: name };
  const dtype = dtypeOrThrow(p.dataType ?? 0, loc);
  const dims = checkedDims(p.dims ?? [], loc);
  const n = dims.reduce((a, b) => a * b, 1);
  if (p.segment) throw new UserError('segmented tensors are not supported', loc);

  const external = p.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (p.externalData?.length ?? 0) > 0;
  if (external) {
    if (dtype === 'string') throw new UserError('string tensors cannot use external data', loc);
    if (ctx.baseDir === undefined) throw new UserError('tensor uses external data but no folder is known to resolve it', loc);
    if ((p.externalData?.length ?? 0) === 0) throw new UserError('tensor is marked EXTERNAL but has no external_data entries', loc);
    const bytes = n * dtypeBytes(dtype);
    if (!Number.isSafeInteger(bytes)) throw new UserError(`tensor of ${n} elements is too large`, loc);
    const ref = resolveExternalData(p.externalData!, bytes, { file: ctx.file, baseDir: ctx.baseDir, tensor: name });
    return new LazyTensor(dtype, dims, { kind: 'external', ...ref }, () => {
      const raw = readExternalRange(ref, loc);
      return new Tensor(dtype, dims, decodeRaw(dtype, n, raw));
    });
  }

  if (hasBytes(p.rawData)) {
    if (dtype === 'string') throw new UserError('string tensors cannot use raw_data', loc);
    const want = n * dtypeBytes(dtype);
    if (p.rawData.length !== want)
      throw new UserError(`raw_data holds ${p.rawData.length} bytes but dims [${dims}] of ${dtype} need ${want}`, loc);
    const raw = p.rawData;
    return new LazyTensor(dtype, dims, { kind: 'inline' }, () => new Tensor(dtype, dims, decodeRaw(dtype, n, raw)));
  }

  const { field, values } = typedField(p, dtype);
  if (values.length !== n) {
    if (values.length === 0 && n > 0) throw new UserError(`tensor of ${n} ${dtype} elements has no data (expected ${field} or raw_data)`, loc);
    throw new UserError(`${field} holds ${values.length} elements but dims [${dims}] need ${n}`, loc);
  }
  return new LazyTensor(dtype, dims, { kind: 'inline' }, () => new Tensor(dtype, dims, decodeTyped(dtype, n, values)));
}

/** Decodes a serialized TensorProto (e.g. `input_0.pb`). */
export function decodeTensorProto(bytes: Uint8Array, ctx: TensorContext): { name?: string; tensor: Tensor } {
  const p = decodeTensorProtoMessage(bytes, { file: ctx.file, what: 'TensorProto file' });
  const lazy = tensorFromProto(p, ctx);
  return { name: p.name || undefined, tensor: lazy.load() };
}

/** A TensorProto message for `t` (raw_data for numbers, string_data for strings). */
export function tensorToProto(t: Tensor, name = ''): onnxProto.onnx.TensorProto {
  const msg = onnx.TensorProto.create({ name, dims: t.shape.slice(), dataType: dtypeToOnnx(t.dtype) });
  if (t.dtype === 'string') msg.stringData = (t.strings ?? []).map((s) => new TextEncoder().encode(s));
  else msg.rawData = encodeRaw(t);
  return msg;
}

/** Serializes `t` as a TensorProto. */
export function encodeTensorProto(t: Tensor, name = ''): Uint8Array {
  return onnx.TensorProto.encode(tensorToProto(t, name)).finish();
}

function readBytes(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, not a file' : `cannot read (${code ?? 'error'})`, { file });
  }
}

/** Reads a tensor file: `.npy` is numpy, anything else a serialized TensorProto. */
export function readTensorFile(file: string): { name?: string; tensor: Tensor } {
  const bytes = readBytes(file);
  if (file.toLowerCase().endsWith('.npy')) return { tensor: readNpy(bytes, file) };
  return decodeTensorProto(bytes, { file, baseDir: path.dirname(path.resolve(file)) });
}

/** Writes a tensor file by extension (`.npy` numpy, else TensorProto). */
export function writeTensorFile(file: string, t: Tensor, name?: string): void {
  const bytes = file.toLowerCase().endsWith('.npy') ? writeNpy(t, file) : encodeTensorProto(t, name ?? '');
  fs.writeFileSync(file, bytes);
}
