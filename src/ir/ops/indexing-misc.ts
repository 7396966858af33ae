/**
 * Indexing family, part 2: OneHot, EyeLike, Trilu, CumSum, TopK (latest opset semantics: k,
 * depth and axis as inputs where ONNX has them).
 */
import { type DType, allocStorage, dtypeFromOnnx, isFloat, roundToDType } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import { Tensor } from '../tensor.js';
import { axisOf, input, typeOf } from './util.js';

type Ctx = { node: { label: string } };

const prod = (s: readonly number[], from = 0, to = s.length): number => {
  let p = 1;
  for (let i = from; i < to; i++) p *= s[i]!;
  return p;
};

/** The single integer held by a scalar or 1-element tensor (truncated toward zero). */
function scalarInt(ctx: Ctx, t: Tensor, what: string): number {
  if (t.size !== 1) throw new UserError(`${what} must hold exactly one value, got shape [${t.shape.join(',')}]`, { node: ctx.node.label });
  const v = t.data[0]!;
  if (!Number.isFinite(v)) throw new UserError(`${what} must be finite, got ${v}`, { node: ctx.node.label });
  return Math.trunc(v);
}

function noStrings(ctx: Ctx, d: DType): void {
  if (d === 'string') throw new UserError(`string tensors are not supported`, { node: ctx.node.label });
}

// ---------------------------------------------------------------- OneHot

function oneHotInfer(ctx: InferContext): TypeInfo[] {
  const ind = input(ctx, 0);
  input(ctx, 1);
  const values = input(ctx, 2);
  noStrings(ctx, values.dtype);
  if (!ind.shape) return [typeOf(values.dtype)];
  const axis = axisOf(ctx, ctx.attrs.int('axis', -1), ind.shape.length + 1);
  const depthT = ctx.constant(1);
  if (!depthT) return [typeOf(values.dtype)];
  const depth = scalarInt(ctx, depthT, 'depth');
  if (depth < 1) throw new UserError(`depth must be positive, got ${depth}`, { node: ctx.node.label });
  return [typeOf(values.dtype, [...ind.shape.slice(0, axis), depth, ...ind.shape.slice(axis)])];
}

function oneHotEval(ctx: EvalContext): Tensor[] {
  const ind = ctx.inputs[0]!;
  const depth = scalarInt(ctx, ctx.inputs[1]!, 'depth');
  const values = ctx.inputs[2]!;
  noStrings(ctx, values.dtype);
  if (depth < 1) throw new UserError(`depth must be positive, got ${depth}`, { node: ctx.node.label });
  if (values.size !== 2) throw new UserError(`values must hold [off, on], got ${values.size} elements`, { node: ctx.node.label });
  const axis = axisOf(ctx, ctx.attrs.int('axis', -1), ind.rank + 1);
  const outShape = [...ind.shape.slice(0, axis), depth, ...ind.shape.slice(axis)];
  const outer = prod(ind.shape, 0, axis);
  const inner = prod(ind.shape, axis);
  const out = allocStorage(values.dtype, outer * depth * inner);
  const off = values.data[0]!;
  const on = values.data[1]!;
  if (off !== 0) out.fill(off);
  const iv = ind.data;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let v = Math.trunc(iv[o * inner + i]!);
      if (v < 0) v += depth;
      if (v >= 0 && v < depth) out[(o * depth + v) * inner + i] = on;
    }
  return [new Tensor(values.dtype, outShape, out)];
}

// ---------------------------------------------------------------- EyeLike

function eyeDtype(ctx: Ctx & { attrs: InferContext['attrs'] }, inDtype: DType): DType {
  const code = ctx.attrs.maybeInt('dtype');
  if (code === undefined) return inDtype;
  const d = dtypeFromOnnx(code);
  if (!d || d === 'string') throw new UserError(`unsupported dtype code ${code}`, { node: ctx.node.label });
  return d;
}

function eyeLikeEval(ctx: EvalContext): Tensor[] {
  const x = ctx.inputs[0]!;
  if (x.rank !== 2) throw new UserError(`input must be 2-D, got rank ${x.rank}`, { node: ctx.node.label });
  const dtype = eyeDtype(ctx, x.dtype);
  const k = ctx.attrs.int('k', 0);
  const [rows, cols] = x.shape as [number, number];
  const out = allocStorage(dtype, rows * cols);
  for (let i = Math.max(0, -k); i < rows && i + k < cols; i++) out[i * cols + i + k] = 1;
  return [new Tensor(dtype, x.shape, out)];
}

// ---------------------------------------------------------------- Trilu

function triluEval(ctx: EvalContext): Tensor[] {
  const x = ctx.inputs[0]!;
  noStrings(ctx, x.dtype);
  if (x.rank < 2) throw new UserError(`input must have rank >= 2, got ${x.rank}`, { node: ctx.node.label });
  const k = ctx.inputs[1] ? scalarInt(ctx, ctx.inputs[1], 'k') : 0;
  const upper = ctx.attrs.int('upper', 1) !== 0;
  const rows = x.shape[x.rank - 2]!;
  const cols = x.shape[x.rank - 1]!;
  const batches = prod(x.shape, 0, x.rank - 2);
  const out = x.data.slice();
  for (let b = 0; b < batches; b++)
    for (let i = 0; i < rows; i++) {
      const row = (b * rows + i) * cols;
      // upper keeps j - i >= k (zero j < i + k); lower keeps j - i <= k (zero j > i + k).
      if (upper) out.fill(0, row, row + Math.min(cols, Math.max(0, i + k)));
      else out.fill(0, row + Math.min(cols, Math.max(0, i + k + 1)), row + cols);
    }
  return [new Tensor(x.dtype, x.shape, out)];
}

// ---------------------------------------------------------------- CumSum

function cumSumEval(ctx: EvalContext): Tensor[] {
  const x = ctx.inputs[0]!;
  noStrings(ctx, x.dtype);
  if (x.rank === 0) throw new UserError(`input must have rank >= 1`, { node: ctx.node.label });
  const axis = axisOf(ctx, scalarInt(ctx, ctx.inputs[1]!, 'axis'), x.rank);
  const exclusive = ctx.attrs.int('exclusive', 0) !== 0;
  const reverse = ctx.attrs.int('reverse', 0) !== 0;
  const n = x.shape[axis]!;
  const outer = prod(x.shape, 0, axis);
  const inner = prod(x.shape, axis + 1);
  const src = x.data;
  const out = allocStorage(x.dtype, x.size);
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    for (let s = 0; s < n; s++) {
      const row = base + (reverse ? n - 1 - s : s) * inner;
      if (s === 0) {
        if (!exclusive) for (let i = 0; i < inner; i++) out[row + i] = src[row + i]!;
        continue;
      }
      const prev = base + (reverse ? n - s : s - 1) * inner;
      const addRow = exclusive ? prev : row;
      for (let i = 0; i < inner; i++) out[row + i] = out[prev + i]! + src[addRow + i]!;
    }
  }
  roundToDType(x.dtype, out);
  return [new Tensor(x.dtype, x.shape, out)];
}

// ---------------------------------------------------------------- TopK

function topKInfer(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  const kt = input(ctx, 1);
  if (kt.dtype !== 'int64') throw new UserError(`K must be int64, got ${kt.dtype}`, { node: ctx.node.label });
  noStrings(ctx, x.dtype);
  if (!x.shape) return [typeOf(x.dtype), typeOf('int64')];
  const axis = axisOf(ctx, ctx.attrs.int('axis', -1), x.shape.length);
  const kc = ctx.constant(1);
  if (!kc) return [typeOf(x.dtype), typeOf('int64')];
  const k = scalarInt(ctx, kc, 'K');
  const dim = x.shape[axis]!;
  if (k < 0 || (typeof dim === 'number' && k > dim))
    throw new UserError(`K = ${k} is out of range for axis ${axis} of size ${dim}`, { node: ctx.node.label });
  const shape = x.shape.slice();
  shape[axis] = k;
  return [typeOf(x.dtype, shape), typeOf('int64', shape)];
}

/**
 * Selection by binary insertion into a sorted buffer of k (O(n log k) compares, O(n·k) moves in
 * the worst case, few moves on typical data) when k is small against n; otherwise a full sort.
 */
const insertionFits = (k: number, n: number): boolean => k <= 16 || (k <= 4096 && k * 8 <= n);

function topKEval(ctx: EvalContext): Tensor[] {
  const x = ctx.inputs[0]!;
  noStrings(ctx, x.dtype);
  if (x.rank === 0) throw new UserError(`input must have rank >= 1`, { node: ctx.node.label });
  const axis = axisOf(ctx, ctx.attrs.int('axis', -1), x.rank);
  const k = scalarInt(ctx, ctx.inputs[1]!, 'K');
  const n = x.shape[axis]!;
  if (k < 0 || k > n) throw new UserError(`K = ${k} is out of range for axis ${axis} of size ${n}`, { node: ctx.node.label });
  const largest = ctx.attrs.int('largest', 1) !== 0;
  const outer = prod(x.shape, 0, axis);
  const inner = prod(x.shape, axis + 1);
  const outShape = x.shape.slice();
  outShape[axis] = k;
  const vals = allocStorage(x.dtype, outer * k * inner);
  const inds = new Float64Array(outer * k * inner);
  const src = x.data;
  // Keys: larger key = preferred. NaN counts as the largest value (as numpy's sort places it last).
  const keys = new Float64Array(n);
  const topKey = new Float64Array(k);
  const topIdx = new Int32Array(k);
  const order = new Int32Array(n);
  const sign = largest ? 1 : -1;
  const useInsertion = insertionFits(k, n);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      for (let j = 0; j < n; j++) {
        const v = src[base + j * inner]!;
        keys[j] = v !== v ? (largest ? Infinity : -Infinity) : sign * v;
      }
      let chosen: Int32Array;
      if (useInsertion) {
        let count = 0;
        for (let j = 0; j < n; j++) {
          const key = keys[j]!;
          // Strictly better only: among equal keys the earlier (lower) index stays ahead.
          if (count === k && !(key > topKey[k - 1]!)) continue;
          // First slot whose key is smaller (keys are kept in descending order).
          let lo = 0;
          let hi = count;
          while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (topKey[mid]! < key) hi = mid;
            else lo = mid + 1;
          }
          if (count < k) count++;
          topKey.copyWithin(lo + 1, lo, count - 1);
          topIdx.copyWithin(lo + 1, lo, count - 1);
          topKey[lo] = key;
          topIdx[lo] = j;
        }
        chosen = topIdx;
      } else {
        for (let j = 0; j < n; j++) order[j] = j;
        order.sort((a, b) => keys[b]! - keys[a]! || a - b);
        chosen = order;
      }
      const ob = o * k * inner + i;
      for (let j = 0; j < k; j++) {
        const c = chosen[j]!;
        vals[ob + j * inner] = src[base + c * inner]!;
        inds[ob + j * inner] = c;
      }
    }
  return [new Tensor(x.dtype, outShape, vals), new Tensor('int64', outShape, inds)];
}

// ---------------------------------------------------------------- table

const sameAsInput = (ctx: InferContext): TypeInfo[] => {
  const x = input(ctx, 0);
  noStrings(ctx, x.dtype);
  return [typeOf(x.dtype, x.shape)];
};

export const indexingMiscOps: OpDef[] = [
  { op: 'OneHot', family: 'shape', inputs: [3, 3], outputs: [1, 1], infer: oneHotInfer, evaluate: oneHotEval },
  {
    op: 'EyeLike',
    family: 'shape',
    inputs: [1, 1],
    outputs: [1, 1],
    infer: (ctx) => {
      const x = input(ctx, 0);
      if (x.shape && x.shape.length !== 2) throw new UserError(`input must be 2-D, got rank ${x.shape.length}`, { node: ctx.node.label });
      return [typeOf(eyeDtype(ctx, x.dtype), x.shape)];
    },
    evaluate: eyeLikeEval,
  },
  {
    op: 'Trilu',
    family: 'shape',
    inputs: [1, 2],
    outputs: [1, 1],
    infer: (ctx) => {
      const x = input(ctx, 0);
      if (x.shape && x.shape.length < 2) throw new UserError(`input must have rank >= 2, got ${x.shape.length}`, { node: ctx.node.label });
      return sameAsInput(ctx);
    },
    evaluate: triluEval,
  },
  {
    op: 'CumSum',
    family: 'shape',
    inputs: [2, 2],
    outputs: [1, 1],
    infer: (ctx) => {
      const x = input(ctx, 0);
      const a = ctx.constant(1);
      if (x.shape && a) axisOf(ctx, scalarInt(ctx, a, 'axis'), x.shape.length);
      if (x.dtype === 'bool') throw new UserError(`CumSum is not defined for bool`, { node: ctx.node.label });
      return sameAsInput(ctx);
    },
    evaluate: cumSumEval,
    flops: (ctx) => {
      const s = ctx.inputs[0]?.shape;
      return s && s.every((d) => typeof d === 'number') && isFloat(ctx.inputs[0]!.dtype) ? prod(s as number[]) : 0;
    },
  },
  { op: 'TopK', family: 'shape', inputs: [2, 2], outputs: [2, 2], infer: topKInfer, evaluate: topKEval },
];
