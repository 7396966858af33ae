/**
 * Elementwise ops that do not fit the unary / binary tables: Clip (bounds as optional inputs),
 * Where (three-way broadcast), Identity and Dropout.
 */
import type { TypedArray } from '../dtype.js';
import { allocStorage } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef } from '../registry.js';
import { Tensor } from '../tensor.js';
import {
  broadcastInputs,
  broadcastPlan,
  broadcastRuntime,
  checkClass,
  checkSameDType,
  finish,
  mapUnary,
  staticNumel,
  tensorAt,
  tensorOfClass,
} from './elementwise-kernels.js';
import { Mt19937 } from './elementwise-math.js';
import { input } from './util.js';

// ---- Clip ----

/** min(max(x, lo), hi): when lo > hi every element becomes hi (ONNX). */
const clamp = (x: number, lo: number, hi: number): number => {
  const v = x < lo ? lo : x;
  return v > hi ? hi : v;
};

/** The value of an optional scalar bound input, or `def` when absent. */
function bound(ctx: EvalContext, i: number, def: number): number {
  const t = ctx.inputs[i];
  if (!t) return def;
  if (t.size !== 1) throw new UserError(`Clip input ${i} must be a scalar, got shape [${t.shape.join(',')}]`, { node: ctx.node.label });
  return t.data[0]!;
}

function inferClip(ctx: InferContext) {
  const x = checkClass(ctx, 0, 'numeric');
  checkSameDType(ctx, [0, 1, 2]);
  return { dtype: x.dtype, shape: x.shape };
}

const clip: OpDef = {
  op: 'Clip',
  family: 'elementwise',
  inputs: [1, 3],
  outputs: [1, 1],
  infer: (ctx) => [inferClip(ctx)],
  evaluate(ctx) {
    const x = tensorOfClass(ctx, 0, 'numeric');
    for (const i of [1, 2]) {
      const t = ctx.inputs[i];
      if (t && t.dtype !== x.dtype)
        throw new UserError(`Clip input ${i} must have the input's dtype ${x.dtype}, got ${t.dtype}`, { node: ctx.node.label });
    }
    const lo = bound(ctx, 1, -Infinity);
    const hi = bound(ctx, 2, Infinity);
    const y = allocStorage(x.dtype, x.size);
    mapUnary(clamp, x.data, y, lo, hi);
    return [finish(x.dtype, x.shape, y)];
  },
  flops: (ctx) => staticNumel(ctx.inputs[0]?.shape) * 2,
};

// ---- Where ----

function inferWhere(ctx: InferContext) {
  checkClass(ctx, 0, 'bool');
  const dtype = checkSameDType(ctx, [1, 2]);
  return { dtype, shape: broadcastInputs(ctx, [0, 1, 2]) };
}

type Indexable = { [i: number]: unknown; length: number };

function whereLoop(c: TypedArray, x: Indexable, y: Indexable, out: Indexable, shapes: (readonly number[])[], shape: number[]): void {
  const n = out.length;
  if (c.length === n && x.length === n && y.length === n) {
    for (let i = 0; i < n; i++) out[i] = c[i] ? x[i] : y[i];
    return;
  }
  if (n === 0) return;
  const p = broadcastPlan(shapes, shape);
  const [cb, xb, yb] = p.base as [Int32Array, Int32Array, Int32Array];
  const [cs, xs, ys] = p.step as [number, number, number];
  for (let r = 0, o = 0; r < p.rows; r++) {
    const c0 = cb[r]!;
    const x0 = xb[r]!;
    const y0 = yb[r]!;
    for (let j = 0; j < p.inner; j++, o++) out[o] = c[c0 + j * cs] ? x[x0 + j * xs] : y[y0 + j * ys];
  }
}

const where: OpDef = {
  op: 'Where',
  family: 'elementwise',
  inputs: [3, 3],
  outputs: [1, 1],
  infer: (ctx) => [inferWhere(ctx)],
  evaluate(ctx) {
    const c = tensorOfClass(ctx, 0, 'bool');
    const x = tensorAt(ctx, 1);
    const y = tensorAt(ctx, 2);
    if (x.dtype !== y.dtype)
      throw new UserError(`Where inputs 1 and 2 must have the same dtype, got ${x.dtype} and ${y.dtype}`, { node: ctx.node.label });
    const shapes = [c.shape, x.shape, y.shape];
    const shape = broadcastRuntime(ctx, shapes);
    const n = shape.reduce((p, d) => p * d, 1);
    if (x.dtype === 'string') {
      const out = new Array<string>(n);
      whereLoop(c.data, x.strings!, y.strings!, out, shapes, shape);
      return [new Tensor('string', shape, out)];
    }
    const out = allocStorage(x.dtype, n);
    whereLoop(c.data, x.data, y.data, out, shapes, shape);
    return [new Tensor(x.dtype, shape, out)];
  },
  flops: (ctx) => staticNumel(inferWhere(ctx).shape),
};

// ---- Identity, Dropout ----

const identity: OpDef = {
  op: 'Identity',
  family: 'elementwise',
  inputs: [1, 1],
  outputs: [1, 1],
  infer: (ctx) => [{ ...input(ctx, 0) }],
  evaluate: (ctx) => [tensorAt(ctx, 0)],
  flops: () => 0,
};

/**
 * Dropout. In inference (training_mode absent or false, or ratio 0) the output is the input and
 * the optional mask is all true. In training mode each element is kept with probability
 * 1 - ratio and scaled by 1 / (1 - ratio); the mask comes from a numpy-compatible Mersenne
 * Twister seeded with the `seed` attribute (0 when absent), which reproduces the ONNX reference
 * implementation's outputs exactly.
 */
const dropout: OpDef = {
  op: 'Dropout',
  family: 'elementwise',
  inputs: [1, 3],
  outputs: [1, 2],
  infer(ctx) {
    const x = checkClass(ctx, 0, 'float');
    if (ctx.inputs[1]) checkClass(ctx, 1, 'float');
    if (ctx.inputs[2]) checkClass(ctx, 2, 'bool');
    return [
      { dtype: x.dtype, shape: x.shape },
      { dtype: 'bool', shape: x.shape },
    ];
  },
  evaluate(ctx) {
    const x = tensorOfClass(ctx, 0, 'float');
    const ratio = ctx.inputs[1] ? ctx.inputs[1].data[0]! : 0.5;
    const training = ctx.inputs[2] ? ctx.inputs[2].data[0] === 1 : false;
    const mask = allocStorage('bool', x.size).fill(1);
    if (!training || ratio === 0) return [x, new Tensor('bool', x.shape, mask)];
    if (!(ratio >= 0 && ratio < 1)) throw new UserError(`Dropout ratio must be in [0, 1), got ${ratio}`, { node: ctx.node.label });
    const rng = new Mt19937(ctx.attrs.int('seed', 0));
    const scale = 1 / (1 - ratio);
    const y = allocStorage(x.dtype, x.size);
    for (let i = 0; i < x.size; i++) {
      const keep = rng.nextDouble() >= ratio;
      mask[i] = keep ? 1 : 0;
      y[i] = keep ? x.data[i]! * scale : 0;
    }
    return [finish(x.dtype, x.shape, y), new Tensor('bool', x.shape, mask)];
  },
  flops: (ctx) => staticNumel(ctx.inputs[0]?.shape),
};

export const miscOps: OpDef[] = [clip, where, identity, dropout];
