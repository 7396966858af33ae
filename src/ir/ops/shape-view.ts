/**
 * Shape ops that only change how a tensor's elements are indexed, not their order (Reshape,
 * Flatten, Squeeze, Unsqueeze share the input's storage), plus Expand (a broadcast copy) and the
 * shape queries Shape and Size.
 */
import type { InferContext, OpDef, TypeInfo } from '../registry.js';
import { type Dim, broadcastShapes, dimDiv, dimProduct, stridesOf } from '../shape.js';
import { Tensor } from '../tensor.js';
import { axisOf, constInts, input, typeOf } from './util.js';
import { allStatic, allocLike, arg, bufOf, fail, intsOf, intsShapeOp, like, shapeIn, stridedCopy } from './shape-kernels.js';

type Ctx = { node: { label: string } };
const noFlops = (): number => 0;

/**
 * Reshape's output shape from its shape input (`spec`): 0 copies the input dim (unless
 * allowzero), -1 is inferred from the element count. Symbolic input dims stay symbolic; a -1 that
 * is not an exact quotient of symbol products gives an unknown shape (undefined).
 */
export function reshapeTarget(ctx: Ctx, inShape: readonly Dim[] | undefined, spec: readonly number[], allowzero: boolean): Dim[] | undefined {
  let neg = -1;
  let hasZero = false;
  const out: Dim[] = [];
  for (let i = 0; i < spec.length; i++) {
    const s = spec[i]!;
    if (s === -1) {
      if (neg >= 0) fail(ctx, `shape [${spec}] has more than one -1`);
      neg = i;
      out.push(1);
    } else if (!Number.isInteger(s) || s < -1) {
      fail(ctx, `shape [${spec}] has an invalid entry ${s}`);
    } else if (s === 0 && !allowzero) {
      if (!inShape) return undefined;
      if (i >= inShape.length) fail(ctx, `shape [${spec}] copies dim ${i} (0) but the input has rank ${inShape.length}`);
      out.push(inShape[i]!);
    } else {
      if (s === 0) hasZero = true;
      out.push(s);
    }
  }
  if (allowzero && hasZero && neg >= 0) fail(ctx, `shape [${spec}] has both 0 and -1 with allowzero=1`);
  if (!inShape) return neg < 0 ? out : undefined;
  const total = dimProduct(inShape);
  const known = dimProduct(out);
  const inDesc = `[${inShape.join(',')}]`;
  if (neg >= 0) {
    if (known === 0) fail(ctx, `cannot infer -1 in shape [${spec}]: the other dims hold zero elements`);
    const d = dimDiv(total, known);
    if (d === undefined) {
      if (typeof total === 'number' && typeof known === 'number')
        fail(ctx, `cannot reshape ${inDesc} (${total} elements) to [${spec}]`);
      return undefined;
    }
    out[neg] = d;
  } else if (typeof total === 'number' && typeof known === 'number' && total !== known) {
    fail(ctx, `cannot reshape ${inDesc} (${total} elements) to [${out.join(',')}] (${known} elements)`);
  }
  return out;
}

const reshape: OpDef = {
  op: 'Reshape',
  family: 'shape',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = input(ctx, 0);
    input(ctx, 1);
    const spec = constInts(ctx, 1);
    if (!spec) return [typeOf(x.dtype)];
    return [typeOf(x.dtype, reshapeTarget(ctx, x.shape, spec, ctx.attrs.int('allowzero', 0) !== 0))];
  },
  evaluate(ctx) {
    const x = arg(ctx, 0);
    const shape = reshapeTarget(ctx, x.shape, intsOf(arg(ctx, 1)), ctx.attrs.int('allowzero', 0) !== 0) as number[];
    return [x.reshape(shape)];
  },
  flops: noFlops,
};

function flattenShape(ctx: Ctx & { attrs: InferContext['attrs'] }, s: readonly Dim[]): Dim[] {
  const r = s.length;
  let axis = ctx.attrs.int('axis', 1);
  if (axis < -r || axis > r) fail(ctx, `axis ${axis} is out of range for rank ${r}`);
  if (axis < 0) axis += r;
  return [dimProduct(s.slice(0, axis)), dimProduct(s.slice(axis))];
}

const flatten: OpDef = {
  op: 'Flatten',
  family: 'shape',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = input(ctx, 0);
    return [typeOf(x.dtype, x.shape && flattenShape(ctx, x.shape))];
  },
  evaluate(ctx) {
    const x = arg(ctx, 0);
    return [x.reshape(flattenShape(ctx, x.shape) as number[])];
  },
  flops: noFlops,
};

/** Squeeze's output: drops the listed axes (each must be 1), or every static 1 when none listed. */
function squeezeShape(ctx: Ctx, s: readonly Dim[], axes: readonly number[] | undefined): Dim[] | undefined {
  if (!axes) return allStatic(s) ? s.filter((d) => d !== 1) : undefined;
  const drop = new Set<number>();
  for (const a of axes) {
    const n = axisOf(ctx, a, s.length);
    if (typeof s[n] === 'number' && s[n] !== 1) fail(ctx, `cannot squeeze axis ${a}: its size is ${s[n]}, not 1`);
    drop.add(n);
  }
  return s.filter((_, i) => !drop.has(i));
}

const squeeze: OpDef = {
  op: 'Squeeze',
  family: 'shape',
  inputs: [1, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = input(ctx, 0);
    const axes = ctx.inputs[1] ? constInts(ctx, 1) : undefined;
    if (!x.shape || (ctx.inputs[1] && !axes)) return [typeOf(x.dtype)];
    return [typeOf(x.dtype, squeezeShape(ctx, x.shape, axes))];
  },
  evaluate(ctx) {
    const x = arg(ctx, 0);
    const axes = ctx.inputs[1] ? intsOf(ctx.inputs[1]) : undefined;
    return [x.reshape(squeezeShape(ctx, x.shape, axes) as number[])];
  },
  flops: noFlops,
};

function unsqueezeShape(ctx: Ctx, s: readonly Dim[], axes: readonly number[]): Dim[] {
  const rank = s.length + axes.length;
  const ones = new Set<number>();
  for (const a of axes) {
    const n = axisOf(ctx, a, rank);
    if (ones.has(n)) fail(ctx, `axes [${axes}] repeat axis ${n}`);
    ones.add(n);
  }
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(ones.has(i) ? 1 : s[k++]!);
  return out;
}

const unsqueeze = intsShapeOp('Unsqueeze', unsqueezeShape, (x, outShape) => x.reshape(outShape));

function expandShape(ctx: Ctx, s: readonly Dim[], spec: readonly number[]): Dim[] {
  for (const d of spec) if (!Number.isInteger(d) || d < 0) fail(ctx, `shape [${spec}] has an invalid entry ${d}`);
  const out = broadcastShapes(s, spec);
  if (!out) fail(ctx, `cannot expand [${s.join(',')}] to [${spec}]`);
  return out;
}

/** Expand's data: a strided copy that reads broadcast (size-1 or missing) dims with stride 0. */
function expandTensor(x: Tensor, outShape: number[]): Tensor {
  const rank = outShape.length;
  const off = rank - x.rank;
  const inStrides = stridesOf(x.shape);
  const src = new Array<number>(rank).fill(0);
  for (let i = 0; i < x.rank; i++) src[off + i] = x.shape[i] === 1 ? 0 : inStrides[i]!;
  let n = 1;
  for (const d of outShape) n *= d;
  const out = allocLike(x, n);
  stridedCopy(bufOf(x), 0, src, outShape, out, 0, stridesOf(outShape));
  return like(x, outShape, out);
}

const expand = intsShapeOp('Expand', expandShape, expandTensor);

/** Shape's [start, end) after clamping (opset 15). */
function shapeRange(ctx: { attrs: InferContext['attrs'] }, rank: number): [number, number] {
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = clamp(ctx.attrs.int('start', 0));
  const end = clamp(ctx.attrs.maybeInt('end') ?? rank);
  return [start, Math.max(start, end)];
}

const shapeOp: OpDef = {
  op: 'Shape',
  family: 'shape',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx): TypeInfo[] {
    const s = shapeIn(ctx, 0);
    input(ctx, 0);
    if (!s) return [typeOf('int64')];
    const [a, b] = shapeRange(ctx, s.length);
    return [typeOf('int64', [b - a])];
  },
  evaluate(ctx) {
    const x = arg(ctx, 0);
    const [a, b] = shapeRange(ctx, x.rank);
    return [Tensor.from('int64', [b - a], x.shape.slice(a, b))];
  },
  flops: noFlops,
};

const size: OpDef = {
  op: 'Size',
  family: 'shape',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    input(ctx, 0);
    return [typeOf('int64', [])];
  },
  evaluate(ctx) {
    return [Tensor.scalar('int64', arg(ctx, 0).size)];
  },
  flops: noFlops,
};

export const viewOps: OpDef[] = [reshape, flatten, squeeze, unsqueeze, expand, shapeOp, size];
