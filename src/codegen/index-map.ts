/**
 * Index maps: how a kernel finds the element of an input that belongs to an output position.
 * Coordinates of a flat index are let-bound once per kernel; an input offset is a dot product of
 * coordinates with strides. Dims and strides are kernel parameters computed on the host
 * (`Params`), so one compiled kernel serves every shape of the same rank (broadcast dims get
 * stride 0).
 */
import type { DType } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import { stridesOf } from '../ir/shape.js';
import { type Expr, type ScalarType, add, div, i32, load, mul, param, rem, variable } from './expr.js';
import type { Let } from './kernel.js';

/** Parameter values of one launch, collected while a lowering builds its expressions. */
export class Params {
  readonly values: Record<string, number> = {};

  /** An i32 parameter with this launch's value. */
  int(name: string, v: number): Expr {
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw new UserError(`size ${v} of ${name} does not fit the device's 32-bit indices`);
    const had = this.values[name];
    if (had !== undefined && had !== v) throw new Error(`param ${name} bound twice (${had}, ${v})`);
    this.values[name] = v;
    return param(name);
  }
}

/** Device element type of an IR dtype; undefined when the device target does not support it. */
export function deviceType(d: DType): ScalarType | undefined {
  switch (d) {
    // float16 and bfloat16 are computed as f32 in kernels (values arrive rounded to the narrow
    // type; results are rounded when they come back to the host, as Tensor.from does). The cuda
    // target stores them in 2-byte buffers (src/bundle/cuda.ts); WebGPU stores them as f32.
    case 'float32': case 'float16': case 'bfloat16': return 'f32';
    case 'int32': case 'int64': return 'i32';
    case 'bool': return 'bool';
    default: return undefined;
  }
}

/** True for the IR dtypes kernels compute as f32 (float32, float16, bfloat16). */
export const isDeviceFloat = (d: DType | undefined): boolean => d !== undefined && deviceType(d) === 'f32';

export function deviceTypeOrThrow(d: DType, node?: string): ScalarType {
  const t = deviceType(d);
  if (!t) throw new UserError(`unsupported dtype ${d} on the kernel targets (float32, float16, bfloat16, int32, int64, bool)`, { node });
  return t;
}

/** Multiplies and adds, folding zeros and ones so the emitted code stays readable. */
export function madd(acc: Expr | undefined, a: Expr, b: Expr): Expr {
  const isConst = (e: Expr, v: number): boolean => e.k === 'const' && e.v === v;
  const prod = isConst(b, 1) ? a : isConst(a, 1) ? b : mul(a, b);
  return acc === undefined || isConst(acc, 0) ? prod : add(acc, prod);
}

/**
 * Let-binds the coordinates of `flat` in a row-major `shape`: `<prefix><d>` for each dim.
 * Params `<prefix>_st<d>` (strides) and `<prefix>_dim<d>` (dims) carry the shape.
 */
export function coordinates(p: Params, lets: Let[], prefix: string, flat: Expr, shape: readonly number[]): Expr[] {
  const strides = stridesOf(shape);
  const rank = shape.length;
  return shape.map((dim, d) => {
    let v: Expr = flat;
    if (d < rank - 1) v = div(v, p.int(`${prefix}_st${d}`, strides[d]!));
    if (d > 0) v = rem(v, p.int(`${prefix}_dim${d}`, dim));
    const name = `${prefix}${d}`;
    lets.push({ name, value: v });
    return variable(name);
  });
}

/** Σ coords[d] · strides[d] with strides as params `<name>_s<d>` (zero strides are dropped). */
export function linearOffset(p: Params, name: string, coords: readonly Expr[], strides: readonly number[]): Expr {
  let acc: Expr | undefined;
  strides.forEach((s, d) => {
    if (s === 0) return;
    acc = madd(acc, coords[d]!, p.int(`${name}_s${d}`, s));
  });
  return acc ?? i32(0);
}

/** Strides of `inShape` broadcast (right-aligned) to rank `rank`: 0 on broadcast and missing dims. */
export function broadcastStrides(inShape: readonly number[], rank: number): number[] {
  const own = stridesOf(inShape);
  const out = new Array<number>(rank).fill(0);
  const off = rank - inShape.length;
  inShape.forEach((d, k) => (out[off + k] = d === 1 ? 0 : own[k]!));
  return out;
}

/** Offset of the element of an input of `inShape` broadcast to the output coordinates. */
export function broadcastOffset(p: Params, name: string, coords: readonly Expr[], inShape: readonly number[]): Expr {
  return linearOffset(p, name, coords, broadcastStrides(inShape, coords.length));
}

/** Load of input `buf` (IR dtype) at `index`. */
export function loadTyped(buf: string, dtype: DType, index: Expr): Expr {
  return load(buf, deviceTypeOrThrow(dtype), index);
}

export const flatIndex = (): Expr => variable('i');
