/**
 * Elementwise ops that do not fit the unary / binary tables: Clip (bounds as optional inputs),
 * Where (three-way broadcast), Identity and Dropout (inference: identity).
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

/** Dropout in inference: output = input, the optional mask all true. Training mode with a non-zero ratio is random: refused. */
function checkDropoutMode(ctx: { node: { label: string } }, ratio: number | undefined, training: number | undefined): void {
  if (training && ratio !== undefined && ratio !== 0)
    throw new UserError(`Dropout in training mode (random) is not supported; export the model for inference`, {
      node: ctx.node.label,
    });
}

const dropout: OpDef = {
  op: 'Dropout',
  family: 'elementwise',
  inputs: [1, 3],
  outputs: [1, 2],
  infer(ctx) {
    const x = checkClass(ctx, 0, 'float');
    if (ctx.inputs[2]) {
      const training = ctx.constant(2);
      const ratio = ctx.inputs[1] ? ctx.constant(1) : undefined;
      // A ratio computed at run time is checked by evaluate.
      checkDropoutMode(ctx, ctx.inputs[1] ? ratio?.data[0] : 0.5, training?.data[0]);
    }
    return [
      { dtype: x.dtype, shape: x.shape },
      { dtype: 'bool', shape: x.shape },
    ];
  },
  evaluate(ctx) {
    const x = tensorOfClass(ctx, 0, 'float');
    const ratio = ctx.inputs[1] ? ctx.inputs[1].data[0] : 0.5;
    checkDropoutMode(ctx, ratio, ctx.inputs[2]?.data[0]);
    const mask = new Tensor('bool', x.shape, allocStorage('bool', x.size).fill(1));
    return [x, mask];
  },
  flops: () => 0,
};

export const miscOps: OpDef[] = [clip, where, identity, dropout];
