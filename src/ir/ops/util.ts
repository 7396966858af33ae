/** Helpers shared by the op-family tables: type results, constant inputs, broadcasting, axes. */
import type { DType } from '../dtype.js';
import { UserError } from '../errors.js';
import type { InferContext, TypeInfo } from '../registry.js';
import { type Dim, broadcastShapes, normAxis, stridesOf } from '../shape.js';
import type { Tensor } from '../tensor.js';

export const typeOf = (dtype: DType, shape?: Dim[]): TypeInfo => ({ dtype, shape });

/** Input i's type; a UserError naming the node when it is absent. */
export function input(ctx: InferContext, i: number): TypeInfo {
  const t = ctx.inputs[i];
  if (!t) throw new UserError(`input ${i} is required`, { node: ctx.node.label });
  return t;
}

/** A constant integer input (e.g. Reshape's shape) as numbers, or undefined when not constant. */
export function constInts(ctx: InferContext, i: number): number[] | undefined {
  if (ctx.inputs[i] === undefined) return undefined;
  const t = ctx.constant(i);
  return t ? Array.from(t.data as ArrayLike<number>) : undefined;
}

/** Tensor elements as numbers. */
export const ints = (t: Tensor | undefined): number[] | undefined => (t ? Array.from(t.data as ArrayLike<number>) : undefined);

/** Normalises an axis or throws a UserError naming the node. */
export function axisOf(ctx: { node: { label: string } }, axis: number, rank: number): number {
  // Axes read from a tensor input may be any number (a float tensor wired in as axes).
  if (!Number.isInteger(axis)) throw new UserError(`axis ${axis} is not an integer`, { node: ctx.node.label });
  const a = normAxis(axis, rank);
  if (a === undefined) throw new UserError(`axis ${axis} is out of range for rank ${rank}`, { node: ctx.node.label });
  return a;
}

/** Broadcast of input shapes; undefined if any is unknown; UserError if incompatible. */
export function broadcastOrThrow(ctx: InferContext, shapes: (Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const out = broadcastShapes(...(shapes as Dim[][]));
  if (!out)
    throw new UserError(`shapes ${shapes.map((s) => `[${s!.join(',')}]`).join(' and ')} do not broadcast`, { node: ctx.node.label });
  return out;
}

/**
 * For each element of `outShape` (row-major), the flat index of the element of a tensor of
 * `inShape` that broadcasts to it.
 */
export function broadcastIndex(inShape: readonly number[], outShape: readonly number[]): Int32Array {
  const rank = outShape.length;
  const off = rank - inShape.length;
  const inStrides = stridesOf(inShape);
  const strides = new Array<number>(rank).fill(0);
  for (let i = 0; i < inShape.length; i++) strides[off + i] = inShape[i] === 1 ? 0 : inStrides[i]!;
  let n = 1;
  for (const d of outShape) n *= d;
  const idx = new Int32Array(n);
  if (n === 0) return idx;
  // Odometer over the output, innermost dim as a tight loop.
  const inner = rank ? outShape[rank - 1]! : 1;
  const innerStride = rank ? strides[rank - 1]! : 0;
  const counter = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let base = 0;
  for (let o = 0; o < n; o += inner) {
    for (let j = 0; j < inner; j++) idx[o + j] = base + j * innerStride;
    for (let d = rank - 2; d >= 0; d--) {
      counter[d]!++;
      base += strides[d]!;
      if (counter[d]! < outShape[d]!) break;
      base -= strides[d]! * counter[d]!;
      counter[d] = 0;
    }
  }
  return idx;
}

/** True when the two static shapes are identical (no broadcasting needed). */
export const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);
