/**
 * Indexing family, part 1: Gather, GatherElements, GatherND, ScatterElements, ScatterND
 * (latest opset semantics: negative indices, GatherND batch_dims, scatter reductions).
 *
 * Indices are validated at evaluation time (out of range → UserError naming the node). Loops walk
 * precomputed strides; a whole contiguous block is copied at once where the layout allows.
 */
import { type DType, type TypedArray, roundToDType } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import { type Dim, numel, stridesOf } from '../shape.js';
import { Tensor } from '../tensor.js';
import { axisOf, input, typeOf } from './util.js';

type Ctx = { node: { label: string } };

/** Indices normalised against `dim` (negative counts from the end); UserError when out of range. */
export function normIndices(ctx: Ctx, t: Tensor, dim: number): Int32Array {
  const src = t.data;
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    let v = src[i]!;
    if (v < 0) v += dim;
    if (!(v >= 0 && v < dim)) throw new UserError(`index ${src[i]} is out of range for a dim of size ${dim}`, { node: ctx.node.label });
    out[i] = v;
  }
  return out;
}

/**
 * For each element of `shape` (row-major), sum of coordinate × stride: the offsets of a strided
 * view. An odometer with the innermost dim as a tight loop.
 */
export function stridedOffsets(shape: readonly number[], strides: readonly number[]): Int32Array {
  const n = numel(shape);
  const out = new Int32Array(n);
  const rank = shape.length;
  if (n === 0) return out;
  const inner = rank ? shape[rank - 1]! : 1;
  const innerStride = rank ? strides[rank - 1]! : 0;
  const counter = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let base = 0;
  for (let o = 0; o < n; o += inner) {
    for (let j = 0; j < inner; j++) out[o + j] = base + j * innerStride;
    for (let d = rank - 2; d >= 0; d--) {
      counter[d]!++;
      base += strides[d]!;
      if (counter[d]! < shape[d]!) break;
      base -= strides[d]! * counter[d]!;
      counter[d] = 0;
    }
  }
  return out;
}

/** Storage for `n` elements of the same kind as `t` (a string array for string tensors). */
function allocLike(t: Tensor, n: number): TypedArray | string[] {
  if (t.strings) return new Array<string>(n).fill('');
  return new (t.data.constructor as { new (n: number): TypedArray })(n);
}

/** Copies `len` elements from src[sOff..] to dst[dOff..] (typed arrays of one kind, or string arrays). */
function copyBlock(dst: TypedArray | string[], dOff: number, src: TypedArray | string[], sOff: number, len: number): void {
  if (len === 1) dst[dOff] = src[sOff]!;
  else if (Array.isArray(dst)) for (let i = 0; i < len; i++) dst[dOff + i] = (src as string[])[sOff + i]!;
  else (dst as Float64Array).set((src as Float64Array).subarray(sOff, sOff + len), dOff);
}

const storage = (t: Tensor): TypedArray | string[] => t.strings ?? t.data;
const prod = (s: readonly number[], from = 0, to = s.length): number => {
  let p = 1;
  for (let i = from; i < to; i++) p *= s[i]!;
  return p;
};
const fmt = (s: readonly Dim[]): string => `[${s.join(',')}]`;

function requireInt(ctx: InferContext, i: number, what: string): TypeInfo {
  const t = input(ctx, i);
  if (t.dtype !== 'int64' && t.dtype !== 'int32') throw new UserError(`${what} must be int32 or int64, got ${t.dtype}`, { node: ctx.node.label });
  return t;
}

// ---------------------------------------------------------------- Gather

function gatherInfer(ctx: InferContext): TypeInfo[] {
  const data = input(ctx, 0);
  const ind = requireInt(ctx, 1, 'indices');
  if (!data.shape) return [typeOf(data.dtype)];
  const axis = axisOf(ctx, ctx.attrs.int('axis', 0), data.shape.length);
  if (!ind.shape) return [typeOf(data.dtype)];
  return [typeOf(data.dtype, [...data.shape.slice(0, axis), ...ind.shape, ...data.shape.slice(axis + 1)])];
}

function gatherEval(ctx: EvalContext): Tensor[] {
  const data = ctx.inputs[0]!;
  const ind = ctx.inputs[1]!;
  const axis = axisOf(ctx, ctx.attrs.int('axis', 0), data.rank);
  const axisDim = data.shape[axis]!;
  const outer = prod(data.shape, 0, axis);
  const inner = prod(data.shape, axis + 1);
  const idx = normIndices(ctx, ind, axisDim);
  const m = idx.length;
  const outShape = [...data.shape.slice(0, axis), ...ind.shape, ...data.shape.slice(axis + 1)];
  const src = storage(data);
  const dst = allocLike(data, outer * m * inner);
  if (inner === 1 && !data.strings) {
    const s = src as Float64Array;
    const d = dst as Float64Array;
    for (let o = 0; o < outer; o++) {
      const sb = o * axisDim;
      const db = o * m;
      for (let j = 0; j < m; j++) d[db + j] = s[sb + idx[j]!]!;
    }
  } else {
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < m; j++) copyBlock(dst, (o * m + j) * inner, src, (o * axisDim + idx[j]!) * inner, inner);
  }
  return [new Tensor(data.dtype, outShape, dst)];
}

// ---------------------------------------------------------------- GatherElements / ScatterElements

function sameRankInfer(ctx: InferContext, what: string): TypeInfo[] {
  const data = input(ctx, 0);
  const ind = requireInt(ctx, 1, 'indices');
  if (data.shape) axisOf(ctx, ctx.attrs.int('axis', 0), data.shape.length);
  if (data.shape && ind.shape && data.shape.length !== ind.shape.length)
    throw new UserError(`${what}: indices rank ${ind.shape.length} differs from data rank ${data.shape.length}`, { node: ctx.node.label });
  return [];
}

/** Offsets into data for each index element (axis coordinate left out), and the axis stride. */
function elementsLayout(ctx: EvalContext, data: Tensor, ind: Tensor): { axis: number; base: Int32Array; axisStride: number } {
  const axis = axisOf(ctx, ctx.attrs.int('axis', 0), data.rank);
  if (ind.rank !== data.rank)
    throw new UserError(`indices rank ${ind.rank} differs from data rank ${data.rank}`, { node: ctx.node.label });
  for (let d = 0; d < data.rank; d++)
    if (d !== axis && ind.shape[d]! > data.shape[d]!)
      throw new UserError(`indices shape ${fmt(ind.shape)} exceeds data shape ${fmt(data.shape)} on axis ${d}`, { node: ctx.node.label });
  const strides = stridesOf(data.shape);
  const axisStride = strides[axis]!;
  strides[axis] = 0;
  return { axis, base: stridedOffsets(ind.shape, strides), axisStride };
}

function gatherElementsEval(ctx: EvalContext): Tensor[] {
  const data = ctx.inputs[0]!;
  const ind = ctx.inputs[1]!;
  const { axis, base, axisStride } = elementsLayout(ctx, data, ind);
  const idx = normIndices(ctx, ind, data.shape[axis]!);
  const src = storage(data);
  const dst = allocLike(data, idx.length);
  for (let i = 0; i < idx.length; i++) dst[i] = src[base[i]! + idx[i]! * axisStride]!;
  return [new Tensor(data.dtype, ind.shape, dst)];
}

type Reduction = 'none' | 'add' | 'mul' | 'max' | 'min';
const REDUCTIONS: readonly string[] = ['none', 'add', 'mul', 'max', 'min'];

function reductionOf(ctx: Ctx & { attrs: { string(n: string, d: string): string } }, data: { dtype: DType }): Reduction {
  const r = ctx.attrs.string('reduction', 'none');
  if (!REDUCTIONS.includes(r)) throw new UserError(`unknown reduction '${r}'`, { node: ctx.node.label });
  if (data.dtype === 'string' && r !== 'none') throw new UserError(`reduction '${r}' is not defined for string tensors`, { node: ctx.node.label });
  return r as Reduction;
}

/** out[dst[i] + j] ⊕= upd[src[i] + j] for j < block, for every i. */
function scatterBlocks(
  red: Reduction,
  out: TypedArray | string[],
  dstOff: Int32Array,
  upd: TypedArray | string[],
  block: number,
): void {
  const o = out as Float64Array;
  const u = upd as Float64Array;
  const n = dstOff.length;
  switch (red) {
    case 'none':
      for (let i = 0; i < n; i++) copyBlock(out, dstOff[i]!, upd, i * block, block);
      break;
    case 'add':
      for (let i = 0; i < n; i++) for (let j = 0, d = dstOff[i]!, s = i * block; j < block; j++) o[d + j] += u[s + j]!;
      break;
    case 'mul':
      for (let i = 0; i < n; i++) for (let j = 0, d = dstOff[i]!, s = i * block; j < block; j++) o[d + j] *= u[s + j]!;
      break;
    case 'max':
      for (let i = 0; i < n; i++)
        for (let j = 0, d = dstOff[i]!, s = i * block; j < block; j++) if (u[s + j]! > o[d + j]!) o[d + j] = u[s + j]!;
      break;
    case 'min':
      for (let i = 0; i < n; i++)
        for (let j = 0, d = dstOff[i]!, s = i * block; j < block; j++) if (u[s + j]! < o[d + j]!) o[d + j] = u[s + j]!;
      break;
  }
}

function copyOf(t: Tensor): TypedArray | string[] {
  return t.strings ? t.strings.slice() : t.data.slice();
}

function finish(dtype: DType, shape: readonly number[], out: TypedArray | string[], red: Reduction): Tensor {
  if (red !== 'none' && !Array.isArray(out)) {
    roundToDType(dtype, out);
    if (dtype === 'int64' || dtype === 'uint64') for (let i = 0; i < out.length; i++) out[i] = Math.trunc(out[i]!);
  }
  return new Tensor(dtype, shape, out);
}

function scatterElementsEval(ctx: EvalContext): Tensor[] {
  const data = ctx.inputs[0]!;
  const ind = ctx.inputs[1]!;
  const upd = ctx.inputs[2]!;
  const red = reductionOf(ctx, data);
  if (upd.rank !== ind.rank || upd.shape.some((d, i) => d !== ind.shape[i]))
    throw new UserError(`updates shape ${fmt(upd.shape)} differs from indices shape ${fmt(ind.shape)}`, { node: ctx.node.label });
  const { axis, base, axisStride } = elementsLayout(ctx, data, ind);
  const idx = normIndices(ctx, ind, data.shape[axis]!);
  const dstOff = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) dstOff[i] = base[i]! + idx[i]! * axisStride;
  const out = copyOf(data);
  scatterBlocks(red, out, dstOff, storage(upd), 1);
  return [finish(data.dtype, data.shape, out, red)];
}

// ---------------------------------------------------------------- GatherND / ScatterND

function gatherNDInfer(ctx: InferContext): TypeInfo[] {
  const data = input(ctx, 0);
  const ind = requireInt(ctx, 1, 'indices');
  const b = ctx.attrs.int('batch_dims', 0);
  if (!data.shape || !ind.shape) return [typeOf(data.dtype)];
  const r = data.shape.length;
  const q = ind.shape.length;
  const k = ind.shape[q - 1];
  if (q < 1 || b < 0 || b >= Math.min(q, r))
    throw new UserError(`batch_dims ${b} must be less than both ranks (data ${r}, indices ${q})`, { node: ctx.node.label });
  if (typeof k !== 'number') return [typeOf(data.dtype)];
  if (k < 1 || k > r - b) throw new UserError(`indices last dim ${k} must be in [1, ${r - b}]`, { node: ctx.node.label });
  return [typeOf(data.dtype, [...ind.shape.slice(0, q - 1), ...data.shape.slice(b + k)])];
}

/** For each index tuple of `ind` (last dim = tuple), the flat data offset it addresses. */
function tupleOffsets(ctx: EvalContext, data: Tensor, ind: Tensor, b: number): { off: Int32Array; block: number } {
  const r = data.rank;
  const q = ind.rank;
  const k = ind.shape[q - 1]!;
  if (k > r - b) throw new UserError(`indices last dim ${k} exceeds data rank ${r} - batch_dims ${b}`, { node: ctx.node.label });
  const strides = stridesOf(data.shape);
  const nTuples = prod(ind.shape, 0, q - 1);
  const perBatch = prod(ind.shape, b, q - 1);
  const batchStride = prod(data.shape, b);
  const off = new Int32Array(nTuples);
  const iv = ind.data;
  for (let t = 0; t < nTuples; t++) {
    let o = perBatch > 0 ? Math.floor(t / perBatch) * batchStride : 0;
    for (let j = 0; j < k; j++) {
      const dim = data.shape[b + j]!;
      let v = iv[t * k + j]!;
      if (v < 0) v += dim;
      if (!(v >= 0 && v < dim)) throw new UserError(`index ${iv[t * k + j]} is out of range for a dim of size ${dim}`, { node: ctx.node.label });
      o += v * strides[b + j]!;
    }
    off[t] = o;
  }
  return { off, block: prod(data.shape, b + k) };
}

function gatherNDEval(ctx: EvalContext): Tensor[] {
  const data = ctx.inputs[0]!;
  const ind = ctx.inputs[1]!;
  const b = ctx.attrs.int('batch_dims', 0);
  if (ind.rank < 1 || b < 0 || b >= Math.min(ind.rank, data.rank))
    throw new UserError(`batch_dims ${b} must be less than both ranks (data ${data.rank}, indices ${ind.rank})`, { node: ctx.node.label });
  for (let d = 0; d < b; d++)
    if (data.shape[d] !== ind.shape[d])
      throw new UserError(`batch dims of data ${fmt(data.shape)} and indices ${fmt(ind.shape)} differ`, { node: ctx.node.label });
  const { off, block } = tupleOffsets(ctx, data, ind, b);
  const k = ind.shape[ind.rank - 1]!;
  const outShape = [...ind.shape.slice(0, ind.rank - 1), ...data.shape.slice(b + k)];
  const src = storage(data);
  const dst = allocLike(data, off.length * block);
  for (let t = 0; t < off.length; t++) copyBlock(dst, t * block, src, off[t]!, block);
  return [new Tensor(data.dtype, outShape, dst)];
}

function scatterNDEval(ctx: EvalContext): Tensor[] {
  const data = ctx.inputs[0]!;
  const ind = ctx.inputs[1]!;
  const upd = ctx.inputs[2]!;
  const red = reductionOf(ctx, data);
  if (ind.rank < 1) throw new UserError(`indices must have rank >= 1`, { node: ctx.node.label });
  const k = ind.shape[ind.rank - 1]!;
  const want = [...ind.shape.slice(0, ind.rank - 1), ...data.shape.slice(k)];
  if (upd.rank !== want.length || upd.shape.some((d, i) => d !== want[i]))
    throw new UserError(`updates shape ${fmt(upd.shape)} must be ${fmt(want)}`, { node: ctx.node.label });
  const { off, block } = tupleOffsets(ctx, data, ind, 0);
  const out = copyOf(data);
  scatterBlocks(red, out, off, storage(upd), block);
  return [finish(data.dtype, data.shape, out, red)];
}

function scatterInfer(ctx: InferContext, elements: boolean): TypeInfo[] {
  const data = input(ctx, 0);
  const upd = input(ctx, 2);
  const ind = requireInt(ctx, 1, 'indices');
  if (elements) sameRankInfer(ctx, 'ScatterElements');
  if (upd.dtype !== data.dtype) throw new UserError(`updates dtype ${upd.dtype} differs from data dtype ${data.dtype}`, { node: ctx.node.label });
  if (elements && ind.shape && upd.shape && ind.shape.length !== upd.shape.length)
    throw new UserError(`updates rank ${upd.shape.length} differs from indices rank ${ind.shape.length}`, { node: ctx.node.label });
  reductionOf(ctx, data);
  return [typeOf(data.dtype, data.shape)];
}

export const gatherScatterOps: OpDef[] = [
  { op: 'Gather', family: 'shape', inputs: [2, 2], outputs: [1, 1], infer: gatherInfer, evaluate: gatherEval },
  {
    op: 'GatherElements',
    family: 'shape',
    inputs: [2, 2],
    outputs: [1, 1],
    infer: (ctx) => {
      sameRankInfer(ctx, 'GatherElements');
      return [typeOf(input(ctx, 0).dtype, input(ctx, 1).shape)];
    },
    evaluate: gatherElementsEval,
  },
  { op: 'GatherND', family: 'shape', inputs: [2, 2], outputs: [1, 1], infer: gatherNDInfer, evaluate: gatherNDEval },
  {
    op: 'ScatterElements',
    family: 'shape',
    inputs: [3, 3],
    outputs: [1, 1],
    infer: (ctx) => scatterInfer(ctx, true),
    evaluate: scatterElementsEval,
  },
  {
    op: 'ScatterND',
    family: 'shape',
    inputs: [3, 3],
    outputs: [1, 1],
    infer: (ctx) => scatterInfer(ctx, false),
    evaluate: scatterNDEval,
  },
];
