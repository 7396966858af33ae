/**
 * Op family table: reduce. ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare (latest
 * opset: axes as an optional second input, keepdims, noop_with_empty_axes) and ArgMax/ArgMin.
 *
 * One reduction kernel: the input is viewed as (outer, reduced, inner) after merging adjacent
 * dims that are all kept or all reduced; the trailing kept dims form a contiguous `inner` row,
 * and the remaining kept and reduced dims become two offset tables. A table of reductions gives
 * each op its accumulation kind (sum of x, |x|, x², product, max, min, log-sum-exp) and its
 * finalisation; each accumulation kind has its own specialised loop (no per-element callbacks).
 */
import { type DType, allocStorage, isInteger, roundToDType } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import { type Dim, isStatic, numel, stridesOf } from '../shape.js';
import { Tensor } from '../tensor.js';
import { axisOf, constInts, input, typeOf } from './util.js';

type Accumulate = 'sum' | 'sumAbs' | 'sumSquare' | 'prod' | 'max' | 'min' | 'logSumExp';
type Finalize = 'none' | 'mean' | 'sqrt' | 'log';

interface Reduction {
  op: string;
  acc: Accumulate;
  fin: Finalize;
}

const REDUCTIONS: Reduction[] = [
  { op: 'ReduceSum', acc: 'sum', fin: 'none' },
  { op: 'ReduceMean', acc: 'sum', fin: 'mean' },
  { op: 'ReduceMax', acc: 'max', fin: 'none' },
  { op: 'ReduceMin', acc: 'min', fin: 'none' },
  { op: 'ReduceProd', acc: 'prod', fin: 'none' },
  { op: 'ReduceL1', acc: 'sumAbs', fin: 'none' },
  { op: 'ReduceL2', acc: 'sumSquare', fin: 'sqrt' },
  { op: 'ReduceLogSum', acc: 'sum', fin: 'log' },
  { op: 'ReduceLogSumExp', acc: 'logSumExp', fin: 'none' },
  { op: 'ReduceSumSquare', acc: 'sumSquare', fin: 'none' },
];

const INIT: Record<Accumulate, number> = {
  sum: 0,
  sumAbs: 0,
  sumSquare: 0,
  prod: 1,
  max: -Infinity,
  min: Infinity,
  logSumExp: -Infinity,
};

/** Smallest and largest value of each integer dtype (what ±inf of an empty max/min becomes). */
const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [-(2 ** 63), 2 ** 63],
  uint64: [0, 2 ** 64],
  bool: [0, 1],
};

/** The input viewed as [outer..., reduced..., inner] with offset tables (see the file comment). */
interface ReduceView {
  outerOffsets: Int32Array | Float64Array;
  reducedOffsets: Int32Array | Float64Array;
  inner: number;
  count: number;
}

/** Row-major offsets of every index of the sub-grid of `dims` with `strides`. */
function offsetTable(dims: number[], strides: number[]): Float64Array {
  const n = numel(dims);
  const out = new Float64Array(n);
  const counter = new Array<number>(dims.length).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    out[i] = off;
    for (let d = dims.length - 1; d >= 0; d--) {
      counter[d]!++;
      off += strides[d]!;
      if (counter[d]! < dims[d]!) break;
      off -= strides[d]! * counter[d]!;
      counter[d] = 0;
    }
  }
  return out;
}

function reduceView(shape: readonly number[], reduced: ReadonlySet<number>): ReduceView {
  // Merge adjacent dims with the same role; size-1 dims join either role.
  const groups: { size: number; red: boolean }[] = [];
  shape.forEach((size, d) => {
    if (size === 1) return;
    const red = reduced.has(d);
    const last = groups[groups.length - 1];
    if (last && last.red === red) last.size *= size;
    else groups.push({ size, red });
  });
  let inner = 1;
  if (groups.length && !groups[groups.length - 1]!.red) inner = groups.pop()!.size;
  const strides = stridesOf(groups.map((g) => g.size)).map((s) => s * inner);
  const pick = (red: boolean) => groups.flatMap((g, i) => (g.red === red ? [i] : []));
  const outer = pick(false);
  const red = pick(true);
  const reducedOffsets = offsetTable(red.map((i) => groups[i]!.size), red.map((i) => strides[i]!));
  let count = 1;
  shape.forEach((s, d) => reduced.has(d) && (count *= s));
  return { outerOffsets: offsetTable(outer.map((i) => groups[i]!.size), outer.map((i) => strides[i]!)), reducedOffsets, inner, count };
}

/** Accumulates into acc[o*inner + i] over the reduced offsets; one loop nest per kind. */
function accumulate(kind: Accumulate, x: ArrayLike<number>, v: ReduceView, acc: Float64Array): void {
  const { outerOffsets, reducedOffsets, inner } = v;
  const nOuter = outerOffsets.length;
  const nRed = reducedOffsets.length;
  const mx = kind === 'logSumExp' ? new Float64Array(inner) : acc;
  const sum = kind === 'logSumExp' ? new Float64Array(inner) : acc;
  for (let o = 0; o < nOuter; o++) {
    const base = outerOffsets[o]!;
    const a0 = o * inner;
    switch (kind) {
      case 'sum':
        for (let r = 0; r < nRed; r++) {
          const s = base + reducedOffsets[r]!;
          for (let i = 0; i < inner; i++) acc[a0 + i] += x[s + i]!;
        }
        break;
      case 'sumAbs':
        for (let r = 0; r < nRed; r++) {
          const s = base + reducedOffsets[r]!;
          for (let i = 0; i < inner; i++) acc[a0 + i] += Math.abs(x[s + i]!);
        }
        break;
      case 'sumSquare':
        for (let r = 0; r < nRed; r++) {
          const s = base + reducedOffsets[r]!;
          for (let i = 0; i < inner; i++) {
            const t = x[s + i]!;
            acc[a0 + i] += t * t;
          }
        }
        break;
      case 'prod':
        for (let r = 0; r < nRed; r++) {
          const s = base + reducedOffsets[r]!;
          for (let i = 0; i < inner; i++) acc[a0 + i] *= x[s + i]!;
        }
        break;
      case 'max':
        for (let r = 0; r < nRed; r++) {
          const s = base + reducedOffsets[r]!;
          for (let i = 0; i < inner; i++) {
            const t = x[s + i]!;
            if (t > acc[a0 + i]! || t !== t) acc[a0 + i] = t;
          }
        }
        break;
      case 'min':
        for (let r = 0; r < nRed; r++) {
          const s = base + reducedOffsets[r]!;
          for (let i = 0; i < inner; i++) {
            const t = x[s + i]!;
            if (t < acc[a0 + i]! || t !== t) acc[a0 + i] = t;
          }
        }
        break;
      case 'logSumExp': {
        // Stable: max first, then log(Σ exp(x − max)) + max.
        mx.fill(-Infinity);
        sum.fill(0);
        for (let r = 0; r < nRed; r++) {
          const s = base + reducedOffsets[r]!;
          for (let i = 0; i < inner; i++) {
            const t = x[s + i]!;
            if (t > mx[i]! || t !== t) mx[i] = t;
          }
        }
        // An all -inf (or empty) row shifts by 0 so that it gives log(0) = -inf.
        for (let i = 0; i < inner; i++) if (mx[i] === -Infinity) mx[i] = 0;
        for (let r = 0; r < nRed; r++) {
          const s = base + reducedOffsets[r]!;
          for (let i = 0; i < inner; i++) sum[i] += Math.exp(x[s + i]! - mx[i]!);
        }
        for (let i = 0; i < inner; i++) {
          const m = mx[i]!;
          acc[a0 + i] = m === Infinity || Number.isNaN(m) ? m : Math.log(sum[i]!) + m;
        }
        break;
      }
    }
  }
}

/** Reduces `x` over `axes` (normalised, distinct); result in kept-dim order as float64. */
export function reduceTensor(x: Tensor, axes: readonly number[], kind: Accumulate, fin: Finalize): Float64Array {
  const view = reduceView(x.shape, new Set(axes));
  const acc = new Float64Array(view.outerOffsets.length * view.inner).fill(INIT[kind]);
  if (acc.length === 0) return acc;
  accumulate(kind, x.data, view, acc);
  if (fin === 'mean') for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! / view.count;
  else if (fin === 'sqrt') for (let i = 0; i < acc.length; i++) acc[i] = Math.sqrt(acc[i]!);
  else if (fin === 'log') for (let i = 0; i < acc.length; i++) acc[i] = Math.log(acc[i]!);
  return acc;
}

/** Output storage of `dtype` from float64 results (integers truncated and clamped to the type). */
function store(dtype: DType, values: Float64Array): ReturnType<typeof allocStorage> {
  const out = allocStorage(dtype, values.length);
  const range = INT_RANGE[dtype];
  if (range && isInteger(dtype)) {
    const [lo, hi] = range;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      out[i] = v <= lo ? lo : v >= hi ? hi : Math.trunc(v);
    }
  } else if (range) {
    for (let i = 0; i < values.length; i++) out[i] = values[i]! > 0 ? 1 : 0; // bool: max/min of 0/1
  } else {
    out.set(values);
    roundToDType(dtype, out);
  }
  return out;
}

// ---- axes ----

/** Axes from input 1 or the (pre-opset-18) attribute; undefined when input 1 is not constant. */
function axesOf(ctx: InferContext): number[] | undefined {
  if (ctx.inputs[1]) return constInts(ctx, 1);
  return ctx.attrs.maybeInts('axes') ?? [];
}

/** Normalised, distinct axes (all when `axes` is empty and noop is off); undefined for a no-op. */
function resolveAxes(ctx: { attrs: InferContext['attrs']; node: { label: string } }, axes: number[], rank: number): number[] | undefined {
  if (axes.length === 0) {
    if (ctx.attrs.int('noop_with_empty_axes', 0) !== 0) return undefined;
    return Array.from({ length: rank }, (_, i) => i);
  }
  return [...new Set(axes.map((a) => axisOf(ctx, a, rank)))].sort((a, b) => a - b);
}

function reducedShape<D extends Dim>(shape: readonly D[], axes: readonly number[], keepdims: boolean): D[] {
  const set = new Set(axes);
  const out: D[] = [];
  shape.forEach((d, i) => {
    if (!set.has(i)) out.push(d);
    else if (keepdims) out.push(1 as D);
  });
  return out;
}

function makeReduce(r: Reduction): OpDef {
  return {
    op: r.op,
    family: 'reduce',
    inputs: [1, 2],
    outputs: [1, 1],
    infer(ctx): TypeInfo[] {
      const x = input(ctx, 0);
      const axes = axesOf(ctx);
      if (!x.shape || !axes) return [typeOf(x.dtype)];
      const resolved = resolveAxes(ctx, axes, x.shape.length);
      if (!resolved) return [typeOf(x.dtype, x.shape.slice())];
      return [typeOf(x.dtype, reducedShape(x.shape, resolved, ctx.attrs.int('keepdims', 1) !== 0))];
    },
    evaluate(ctx: EvalContext): Tensor[] {
      const x = ctx.inputs[0];
      if (!x) throw new UserError('input 0 is required', { node: ctx.node.label });
      const axesT = ctx.inputs[1];
      const axes = axesT ? axesT.toArray() : ctx.attrs.maybeInts('axes') ?? [];
      const resolved = resolveAxes(ctx, axes, x.rank);
      if (!resolved) return [x];
      const values = reduceTensor(x, resolved, r.acc, r.fin);
      const shape = reducedShape(x.shape, resolved, ctx.attrs.int('keepdims', 1) !== 0);
      return [new Tensor(x.dtype, shape, store(x.dtype, values))];
    },
    flops(ctx) {
      const s = ctx.inputs[0]?.shape;
      return s && isStatic(s) ? numel(s) : 0;
    },
  };
}

// ---- ArgMax / ArgMin ----

/** Index of the max (or min) along one axis: view as (outer, n, inner); first or last on ties. */
function argReduce(x: Tensor, axis: number, isMax: boolean, last: boolean): Float64Array {
  const n = x.shape[axis]!;
  const inner = numel(x.shape.slice(axis + 1));
  const outer = numel(x.shape.slice(0, axis));
  const out = new Float64Array(outer * inner);
  const best = new Float64Array(inner);
  const sign = isMax ? 1 : -1;
  const d = x.data;
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    const a0 = o * inner;
    for (let i = 0; i < inner; i++) best[i] = sign * d[base + i]!;
    for (let k = 1; k < n; k++) {
      const s = base + k * inner;
      for (let i = 0; i < inner; i++) {
        const t = sign * d[s + i]!;
        const b = best[i]!;
        // NaN wins (first NaN, or last with select_last_index), as in numpy.
        if (b !== b ? last && t !== t : t > b || (last && t === b) || t !== t) {
          best[i] = t;
          out[a0 + i] = k;
        }
      }
    }
  }
  return out;
}

function makeArg(op: string, isMax: boolean): OpDef {
  return {
    op,
    family: 'reduce',
    inputs: [1, 1],
    outputs: [1, 1],
    infer(ctx) {
      const x = input(ctx, 0);
      if (!x.shape) return [typeOf('int64')];
      const axis = axisOf(ctx, ctx.attrs.int('axis', 0), x.shape.length);
      return [typeOf('int64', reducedShape(x.shape, [axis], ctx.attrs.int('keepdims', 1) !== 0))];
    },
    evaluate(ctx) {
      const x = ctx.inputs[0];
      if (!x) throw new UserError('input 0 is required', { node: ctx.node.label });
      const axis = axisOf(ctx, ctx.attrs.int('axis', 0), x.rank);
      const shape = reducedShape(x.shape, [axis], ctx.attrs.int('keepdims', 1) !== 0);
      if (x.shape[axis] === 0 && numel(shape) > 0)
        throw new UserError(`${op} over an empty axis ${axis} of shape [${x.shape.join(',')}]`, { node: ctx.node.label });
      const last = ctx.attrs.int('select_last_index', 0) !== 0;
      return [new Tensor('int64', shape, argReduce(x, axis, isMax, last))];
    },
    flops(ctx) {
      const s = ctx.inputs[0]?.shape;
      return s && isStatic(s) ? numel(s) : 0;
    },
  };
}

export const reduceOps: OpDef[] = [...REDUCTIONS.map(makeReduce), makeArg('ArgMax', true), makeArg('ArgMin', false)];
