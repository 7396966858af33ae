/** Ops that make tensors from attributes and scalars: Constant, ConstantOfShape, Range. */
import type { DType } from '../dtype.js';
import type { EvalContext, InferContext, OpDef } from '../registry.js';
import { Tensor } from '../tensor.js';
import { constInts, input, typeOf } from './util.js';
import { arg, fail, intsOf } from './shape-kernels.js';

type AnyCtx = InferContext | EvalContext;
const noFlops = (): number => 0;

// ---- Constant ----

const VALUE_ATTRS = ['value', 'value_float', 'value_floats', 'value_int', 'value_ints', 'value_string', 'value_strings', 'sparse_value'];

/** Constant's value: its dtype and shape without loading data, and a loader. */
function constantValue(ctx: AnyCtx): { dtype: DType; shape: number[]; load: () => Tensor } {
  const present = VALUE_ATTRS.filter((a) => ctx.attrs.has(a));
  if (present.length !== 1)
    fail(ctx, present.length === 0 ? 'Constant has no value attribute' : `Constant has several value attributes (${present.join(', ')})`);
  const a = ctx.attrs;
  switch (present[0]) {
    case 'value': {
      const lt = a.tensor('value')!;
      return { dtype: lt.dtype, shape: lt.shape.slice(), load: () => lt.load() };
    }
    case 'value_float': {
      const v = a.float('value_float');
      return { dtype: 'float32', shape: [], load: () => Tensor.scalar('float32', v) };
    }
    case 'value_floats': {
      const v = a.floats('value_floats');
      return { dtype: 'float32', shape: [v.length], load: () => Tensor.from('float32', [v.length], v) };
    }
    case 'value_int': {
      const v = a.int('value_int');
      return { dtype: 'int64', shape: [], load: () => Tensor.scalar('int64', v) };
    }
    case 'value_ints': {
      const v = a.ints('value_ints');
      return { dtype: 'int64', shape: [v.length], load: () => Tensor.from('int64', [v.length], v) };
    }
    case 'value_string': {
      const v = a.string('value_string');
      return { dtype: 'string', shape: [], load: () => new Tensor('string', [], [v]) };
    }
    case 'value_strings': {
      const v = a.strings('value_strings');
      return { dtype: 'string', shape: [v.length], load: () => new Tensor('string', [v.length], v.slice()) };
    }
    default:
      return fail(ctx, 'Constant with sparse_value is not supported');
  }
}

const constant: OpDef = {
  op: 'Constant',
  family: 'shape',
  inputs: [0, 0],
  outputs: [1, 1],
  infer(ctx) {
    const v = constantValue(ctx);
    return [typeOf(v.dtype, v.shape)];
  },
  evaluate(ctx) {
    return [constantValue(ctx).load()];
  },
  flops: noFlops,
};

// ---- ConstantOfShape ----

function fillValue(ctx: AnyCtx): { dtype: DType; value: number } {
  const lt = ctx.attrs.tensor('value');
  if (!lt) return { dtype: 'float32', value: 0 };
  if (lt.size !== 1) fail(ctx, `value must hold one element, got shape [${lt.shape}]`);
  if (lt.dtype === 'string') fail(ctx, 'ConstantOfShape does not support string values');
  return { dtype: lt.dtype, value: lt.load().data[0]! };
}

function checkShape(ctx: AnyCtx, shape: number[]): number[] {
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail(ctx, `shape [${shape}] has a negative entry`);
  return shape;
}

const constantOfShape: OpDef = {
  op: 'ConstantOfShape',
  family: 'shape',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    input(ctx, 0);
    const { dtype } = fillValue(ctx);
    const shape = constInts(ctx, 0);
    return [typeOf(dtype, shape && checkShape(ctx, shape))];
  },
  evaluate(ctx) {
    const { dtype, value } = fillValue(ctx);
    const t = Tensor.zeros(dtype, checkShape(ctx, intsOf(arg(ctx, 0))));
    if (value !== 0) t.data.fill(value);
    return [t];
  },
  flops: noFlops,
};

// ---- Range ----

function scalarOf(ctx: AnyCtx, t: Tensor, name: string): number {
  if (t.size !== 1) fail(ctx, `${name} must be a scalar, got shape [${t.shape}]`);
  return t.data[0]!;
}

function rangeLength(ctx: AnyCtx, start: number, limit: number, delta: number): number {
  if (delta === 0) fail(ctx, 'delta must not be 0');
  return Math.max(Math.ceil((limit - start) / delta), 0);
}

const range: OpDef = {
  op: 'Range',
  family: 'shape',
  inputs: [3, 3],
  outputs: [1, 1],
  infer(ctx) {
    const dtype = input(ctx, 0).dtype;
    input(ctx, 1);
    input(ctx, 2);
    const [s, l, d] = [0, 1, 2].map((i) => ctx.constant(i));
    if (!s || !l || !d) return [typeOf(dtype)];
    return [typeOf(dtype, [rangeLength(ctx, scalarOf(ctx, s, 'start'), scalarOf(ctx, l, 'limit'), scalarOf(ctx, d, 'delta'))])];
  },
  evaluate(ctx) {
    const st = arg(ctx, 0);
    const start = scalarOf(ctx, st, 'start');
    const delta = scalarOf(ctx, arg(ctx, 2), 'delta');
    const n = rangeLength(ctx, start, scalarOf(ctx, arg(ctx, 1), 'limit'), delta);
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = start + i * delta;
    return [Tensor.from(st.dtype, [n], values)];
  },
  flops: noFlops,
};

export const constantOps: OpDef[] = [constant, constantOfShape, range];
