/**
 * Element types. Names follow ONNX (lower case). Storage in the CPU runtime:
 * - float32 → Float32Array, float64 → Float64Array
 * - float16 / bfloat16 → Float32Array holding values already rounded to the narrow type
 * - int8/16/32, uint8/16/32 → the matching typed array; bool → Uint8Array (0/1)
 * - int64 / uint64 → Float64Array holding integers (exact up to 2^53; shapes, indices and
 *   counts never exceed that). Values beyond 2^53 are rounded; this is documented in DESIGN.md.
 */
export type DType =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool'
  | 'string';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array;

export type TypedArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | Uint8ArrayConstructor
  | Uint16ArrayConstructor
  | Uint32ArrayConstructor;

interface DTypeInfo {
  onnx: number;
  /** bytes per element in files and on devices */
  bytes: number;
  storage: TypedArrayCtor;
  isFloat: boolean;
  isInt: boolean;
  isSigned: boolean;
}

const INFO: Record<Exclude<DType, 'string'>, DTypeInfo> = {
  float32: { onnx: 1, bytes: 4, storage: Float32Array, isFloat: true, isInt: false, isSigned: true },
  uint8: { onnx: 2, bytes: 1, storage: Uint8Array, isFloat: false, isInt: true, isSigned: false },
  int8: { onnx: 3, bytes: 1, storage: Int8Array, isFloat: false, isInt: true, isSigned: true },
  uint16: { onnx: 4, bytes: 2, storage: Uint16Array, isFloat: false, isInt: true, isSigned: false },
  int16: { onnx: 5, bytes: 2, storage: Int16Array, isFloat: false, isInt: true, isSigned: true },
  int32: { onnx: 6, bytes: 4, storage: Int32Array, isFloat: false, isInt: true, isSigned: true },
  int64: { onnx: 7, bytes: 8, storage: Float64Array, isFloat: false, isInt: true, isSigned: true },
  bool: { onnx: 9, bytes: 1, storage: Uint8Array, isFloat: false, isInt: false, isSigned: false },
  float16: { onnx: 10, bytes: 2, storage: Float32Array, isFloat: true, isInt: false, isSigned: true },
  float64: { onnx: 11, bytes: 8, storage: Float64Array, isFloat: true, isInt: false, isSigned: true },
  uint32: { onnx: 12, bytes: 4, storage: Uint32Array, isFloat: false, isInt: true, isSigned: false },
  uint64: { onnx: 13, bytes: 8, storage: Float64Array, isFloat: false, isInt: true, isSigned: false },
  bfloat16: { onnx: 16, bytes: 2, storage: Float32Array, isFloat: true, isInt: false, isSigned: true },
};

const BY_ONNX = new Map<number, DType>(
  (Object.keys(INFO) as Exclude<DType, 'string'>[]).map((d) => [INFO[d].onnx, d]),
);

/** ONNX TensorProto.DataType code → DType, or undefined when unknown/unsupported. */
export function dtypeFromOnnx(code: number): DType | undefined {
  if (code === 8) return 'string';
  return BY_ONNX.get(code);
}

export function dtypeToOnnx(d: DType): number {
  return d === 'string' ? 8 : INFO[d].onnx;
}

function info(d: DType): DTypeInfo {
  if (d === 'string') throw new Error('string tensors have no numeric storage');
  return INFO[d];
}

export const dtypeBytes = (d: DType): number => info(d).bytes;
export const isFloat = (d: DType): boolean => d !== 'string' && INFO[d].isFloat;
export const isInteger = (d: DType): boolean => d !== 'string' && INFO[d].isInt;
export const isSigned = (d: DType): boolean => d !== 'string' && INFO[d].isSigned;
export const storageOf = (d: DType): TypedArrayCtor => info(d).storage;

export const ALL_NUMERIC_DTYPES = Object.keys(INFO) as Exclude<DType, 'string'>[];

/** Allocates zeroed storage for `n` elements of `d`. */
export function allocStorage(d: DType, n: number): TypedArray {
  return new (info(d).storage)(n);
}

// ---- narrow float conversions (round to nearest even) ----
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 value → IEEE half bits. */
export function f32ToF16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function f32ToBf16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  const lsb = (x >>> 16) & 1;
  return ((x + 0x7fff + lsb) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** Rounds a float32 array in place to the precision of `d` (float16/bfloat16); no-op otherwise. */
export function roundToDType(d: DType, a: TypedArray): void {
  if (d === 'float16') for (let i = 0; i < a.length; i++) a[i] = f16BitsToF32(f32ToF16Bits(a[i]!));
  else if (d === 'bfloat16') for (let i = 0; i < a.length; i++) a[i] = bf16BitsToF32(f32ToBf16Bits(a[i]!));
}
