/**
 * Ops that move elements: Transpose, Concat, Split, Slice, Tile. Each evaluation is one strided
 * copy or a sequence of contiguous block copies (shape-kernels.ts).
 */
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import { type Dim, dimDiv, dimMul, numel, stridesOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { axisOf, constInts, input, typeOf } from './util.js';
import {
  allocLike,
  arg,
  bufOf,
  checkPerm,
  copyRun,
  dimAdd,
  fail,
  intsOf,
  intsShapeOp,
  like,
  stridedCopy,
  transposeTensor,
} from './shape-kernels.js';

type Ctx = { node: { label: string } };
const noFlops = (): number => 0;

// ---- Transpose ----

function permOf(ctx: InferContext | EvalContext, rank: number): number[] {
  const perm = ctx.attrs.maybeInts('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  checkPerm(ctx, perm, rank);
  return perm;
}

const transpose: OpDef = {
  op: 'Transpose',
  family: 'shape',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = input(ctx, 0);
    if (!x.shape) return [typeOf(x.dtype)];
    const s = x.shape;
    return [typeOf(x.dtype, permOf(ctx, s.length).map((p) => s[p]!))];
  },
  evaluate(ctx) {
    const x = arg(ctx, 0);
    return [transposeTensor(x, permOf(ctx, x.rank), stridesOf(x.shape))];
  },
  flops: noFlops,
};

// ---- Concat ----

function concatShape(ctx: Ctx & { attrs: InferContext['attrs'] }, shapes: readonly (readonly Dim[])[]): { shape?: Dim[]; axis: number } {
  const first = shapes[0]!;
  const rank = first.length;
  const axis = axisOf(ctx, ctx.attrs.int('axis'), rank);
  const out = first.slice();
  let sum: Dim | undefined = first[axis]!;
  for (let k = 1; k < shapes.length; k++) {
    const s = shapes[k]!;
    if (s.length !== rank) fail(ctx, `input ${k} has rank ${s.length} but input 0 has rank ${rank}`);
    for (let d = 0; d < rank; d++) {
      if (d === axis) continue;
      const a = out[d]!;
      const b = s[d]!;
      if (typeof a === 'number' && typeof b === 'number' && a !== b)
        fail(ctx, `input ${k} has size ${b} in dim ${d} but input 0 has ${a} (concat axis ${axis})`);
      if (typeof a !== 'number' && typeof b === 'number') out[d] = b;
    }
    sum = sum === undefined ? undefined : dimAdd(sum, s[axis]!);
  }
  if (sum === undefined) return { axis };
  out[axis] = sum;
  return { shape: out, axis };
}

const concat: OpDef = {
  op: 'Concat',
  family: 'shape',
  inputs: [1, Infinity],
  outputs: [1, 1],
  infer(ctx) {
    const ts = ctx.inputs.map((_, i) => input(ctx, i));
    const dtype = ts[0]!.dtype;
    ts.forEach((t, i) => t.dtype !== dtype && fail(ctx, `input ${i} is ${t.dtype} but input 0 is ${dtype}`));
    if (ts.some((t) => !t.shape)) return [typeOf(dtype)];
    return [typeOf(dtype, concatShape(ctx, ts.map((t) => t.shape!)).shape)];
  },
  evaluate(ctx) {
    const ts = ctx.inputs.map((_, i) => arg(ctx, i));
    const { shape, axis } = concatShape(ctx, ts.map((t) => t.shape));
    const outShape = shape as number[];
    const outer = numel(outShape.slice(0, axis));
    const inner = numel(outShape.slice(axis + 1));
    const outRow = outShape[axis]! * inner;
    const out = allocLike(ts[0]!, numel(outShape));
    let col = 0;
    for (const t of ts) {
      const chunk = t.shape[axis]! * inner;
      const src = bufOf(t);
      for (let r = 0; r < outer; r++) copyRun(src, r * chunk, out, r * outRow + col, chunk);
      col += chunk;
    }
    return [like(ts[0]!, outShape, out)];
  },
  flops: noFlops,
};

// ---- Split ----

/** Sizes of Split's outputs along the axis: the split input, or equal chunks (last one smaller). */
function splitSizes(ctx: Ctx & { attrs: InferContext['attrs'] }, dim: Dim, count: number, split: number[] | undefined): Dim[] | undefined {
  if (split) {
    if (split.length !== count) fail(ctx, `split [${split}] has ${split.length} entries but the node has ${count} outputs`);
    if (split.some((v) => !Number.isInteger(v) || v < 0)) fail(ctx, `split [${split}] has a negative entry`);
    const total = split.reduce((a, b) => a + b, 0);
    if (typeof dim === 'number' && total !== dim) fail(ctx, `split [${split}] sums to ${total} but the axis has size ${dim}`);
    return split;
  }
  const n = ctx.attrs.maybeInt('num_outputs');
  if (n !== undefined && n !== count) fail(ctx, `num_outputs is ${n} but the node has ${count} outputs`);
  if (typeof dim !== 'number') {
    const d = dimDiv(dim, count);
    return d === undefined ? undefined : new Array<Dim>(count).fill(d);
  }
  const chunk = Math.ceil(dim / count);
  return Array.from({ length: count }, (_, i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
}

const split: OpDef = {
  op: 'Split',
  family: 'shape',
  inputs: [1, 2],
  outputs: [1, Infinity],
  infer(ctx) {
    const x = input(ctx, 0);
    const count = ctx.node.outputs.length;
    const unknown = (): TypeInfo[] => ctx.node.outputs.map(() => typeOf(x.dtype));
    const sizes = ctx.inputs[1] ? constInts(ctx, 1) : undefined;
    if (!x.shape || (ctx.inputs[1] && !sizes)) return unknown();
    const s = x.shape;
    const axis = axisOf(ctx, ctx.attrs.int('axis', 0), s.length);
    const dims = splitSizes(ctx, s[axis]!, count, sizes);
    if (!dims) return unknown();
    return dims.map((d) => typeOf(x.dtype, s.map((v, i) => (i === axis ? d : v))));
  },
  evaluate(ctx) {
    const x = arg(ctx, 0);
    const axis = axisOf(ctx, ctx.attrs.int('axis', 0), x.rank);
    const dims = splitSizes(ctx, x.shape[axis]!, ctx.node.outputs.length, ctx.inputs[1] && intsOf(ctx.inputs[1])) as number[];
    const outer = numel(x.shape.slice(0, axis));
    const inner = numel(x.shape.slice(axis + 1));
    const inRow = x.shape[axis]! * inner;
    const src = bufOf(x);
    let col = 0;
    return dims.map((d) => {
      const chunk = d * inner;
      const out = allocLike(x, outer * chunk);
      for (let r = 0; r < outer; r++) copyRun(src, r * inRow + col, out, r * chunk, chunk);
      col += chunk;
      return like(x, x.shape.map((v, i) => (i === axis ? d : v)), out);
    });
  },
  flops: noFlops,
};

// ---- Slice ----

/** Ends at or beyond this mean "to the end" on a symbolic dim (INT32_MAX, INT64_MAX). */
const TO_END = 2147483647;

interface SliceSpec {
  starts: number[];
  ends: number[];
  axes: number[];
  steps: number[];
}

function sliceSpec(ctx: Ctx, rank: number, starts: number[], ends: number[], axes?: number[], steps?: number[]): SliceSpec {
  if (ends.length !== starts.length) fail(ctx, `starts has ${starts.length} entries but ends has ${ends.length}`);
  const ax = axes ?? starts.map((_, i) => i);
  const st = steps ?? starts.map(() => 1);
  if (ax.length !== starts.length) fail(ctx, `axes has ${ax.length} entries but starts has ${starts.length}`);
  if (st.length !== starts.length) fail(ctx, `steps has ${st.length} entries but starts has ${starts.length}`);
  const seen = new Set<number>();
  const norm = ax.map((a) => {
    const n = axisOf(ctx, a, rank);
    if (seen.has(n)) fail(ctx, `axes [${ax}] repeat axis ${n}`);
    seen.add(n);
    return n;
  });
  if (st.some((s) => s === 0)) fail(ctx, `steps [${st}] contain 0`);
  return { starts, ends, axes: norm, steps: st };
}

/** Clamped start and length of one sliced static dim (ONNX Slice rules, negative steps included). */
export function clampSlice(dim: number, start: number, end: number, step: number): [number, number] {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = Math.min(Math.max(start, 0), dim);
    end = Math.min(Math.max(end, 0), dim);
    return [start, Math.max(0, Math.ceil((end - start) / step))];
  }
  start = Math.min(Math.max(start, 0), dim - 1);
  end = Math.min(Math.max(end, -1), dim - 1);
  return [start, Math.max(0, Math.ceil((start - end) / -step))];
}

/** Length of a slice of a symbolic dim, assuming the dim is at least as long as the bounds used. */
function symbolicSliceLen(dim: Dim, start: number, end: number, step: number): Dim | undefined {
  if (step <= 0) return undefined;
  if (start === 0 && end >= TO_END) return step === 1 ? dim : undefined;
  if (start >= 0 && end >= 0 && end < TO_END) return Math.max(0, Math.ceil((end - start) / step));
  if (start < 0 && end >= TO_END) return Math.ceil(-start / step);
  if (start < 0 && end < 0) return Math.max(0, Math.ceil((end - start) / step));
  return undefined;
}

const slice: OpDef = {
  op: 'Slice',
  family: 'shape',
  inputs: [3, 5],
  outputs: [1, 1],
  infer(ctx) {
    const x = input(ctx, 0);
    input(ctx, 1);
    input(ctx, 2);
    const starts = constInts(ctx, 1);
    const ends = constInts(ctx, 2);
    const axes = constInts(ctx, 3);
    const steps = constInts(ctx, 4);
    if (!x.shape || !starts || !ends || (ctx.inputs[3] && !axes) || (ctx.inputs[4] && !steps)) return [typeOf(x.dtype)];
    const spec = sliceSpec(ctx, x.shape.length, starts, ends, axes, steps);
    const out = x.shape.slice();
    for (let i = 0; i < spec.axes.length; i++) {
      const a = spec.axes[i]!;
      const d = out[a]!;
      const len =
        typeof d === 'number' ? clampSlice(d, spec.starts[i]!, spec.ends[i]!, spec.steps[i]!)[1] : symbolicSliceLen(d, spec.starts[i]!, spec.ends[i]!, spec.steps[i]!);
      if (len === undefined) return [typeOf(x.dtype)];
      out[a] = len;
    }
    return [typeOf(x.dtype, out)];
  },
  evaluate(ctx) {
    const x = arg(ctx, 0);
    const opt = (i: number): number[] | undefined => (ctx.inputs[i] ? intsOf(ctx.inputs[i]!) : undefined);
    const spec = sliceSpec(ctx, x.rank, intsOf(arg(ctx, 1)), intsOf(arg(ctx, 2)), opt(3), opt(4));
    const inStrides = stridesOf(x.shape);
    const outShape = x.shape.slice();
    const srcStrides = inStrides.slice();
    let off = 0;
    for (let i = 0; i < spec.axes.length; i++) {
      const a = spec.axes[i]!;
      const [start, len] = clampSlice(x.shape[a]!, spec.starts[i]!, spec.ends[i]!, spec.steps[i]!);
      outShape[a] = len;
      srcStrides[a] = inStrides[a]! * spec.steps[i]!;
      off += start * inStrides[a]!;
    }
    const out = allocLike(x, numel(outShape));
    stridedCopy(bufOf(x), off, srcStrides, outShape, out, 0, stridesOf(outShape));
    return [like(x, outShape, out)];
  },
  flops: noFlops,
};

// ---- Tile ----

function tileShape(ctx: Ctx, s: readonly Dim[], repeats: readonly number[]): Dim[] {
  if (repeats.length !== s.length) fail(ctx, `repeats has ${repeats.length} entries but the input has rank ${s.length}`);
  if (repeats.some((r) => !Number.isInteger(r) || r < 0)) fail(ctx, `repeats [${repeats}] has a negative entry`);
  return s.map((d, i) => dimMul(d, repeats[i]!));
}

/** Tile's data: the output viewed as [r0, d0, r1, d1, ...], whose repeat dims read the input with stride 0. */
function tileTensor(x: Tensor, outShape: number[], repeats: readonly number[]): Tensor {
  const inStrides = stridesOf(x.shape);
  const view: number[] = [];
  const src: number[] = [];
  x.shape.forEach((d, i) => {
    view.push(repeats[i]!, d);
    src.push(0, inStrides[i]!);
  });
  const out = allocLike(x, numel(outShape));
  stridedCopy(bufOf(x), 0, src, view, out, 0, stridesOf(view));
  return like(x, outShape, out);
}

const tile = intsShapeOp('Tile', tileShape, tileTensor);

export const moveOps: OpDef[] = [transpose, concat, split, slice, tile];
