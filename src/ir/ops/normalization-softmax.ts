/**
 * Softmax, LogSoftmax and Hardmax. Latest semantics normalise along one axis (default -1).
 * Nodes from models before opset 13 carry `_legacy_axis_2d = 1` (set by the importer, which also
 * fills in the old default axis 1): the input is then seen as the 2-D matrix
 * [prod(dims[:axis]), prod(dims[axis:])] and each row is normalised.
 */
import { isFloat } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import { isStatic } from '../shape.js';
import { Tensor } from '../tensor.js';
import { input, typeOf } from './util.js';

type Kind = 'softmax' | 'logsoftmax' | 'hardmax';

/** The (outer, n, inner) split of a shape around the normalised axis (or axes, in legacy mode). */
interface Split {
  outer: number;
  n: number;
  inner: number;
}

/** Validates the axis for `rank`; returns the normalised axis. */
function axisFor(ctx: { node: { label: string }; attrs: InferContext['attrs'] }, rank: number): { axis: number; legacy: boolean } {
  const legacy = ctx.attrs.int('_legacy_axis_2d', 0) === 1;
  const raw = ctx.attrs.int('axis', legacy ? 1 : -1);
  // Legacy forms accept axis == rank (an empty second factor); the latest form needs a real axis.
  const hi = legacy ? rank : rank - 1;
  const axis = raw < 0 ? raw + rank : raw;
  if (axis < 0 || axis > hi || (!legacy && rank === 0))
    throw new UserError(`axis ${raw} is out of range for rank ${rank}`, { node: ctx.node.label });
  return { axis, legacy };
}

function splitOf(shape: readonly number[], axis: number, legacy: boolean): Split {
  let outer = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  if (legacy) {
    let n = 1;
    for (let i = axis; i < shape.length; i++) n *= shape[i]!;
    return { outer, n, inner: 1 };
  }
  let inner = 1;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return { outer, n: shape[axis]!, inner };
}

function inferSoftmax(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  if (!isFloat(x.dtype)) throw new UserError(`input must be a floating point tensor, got ${x.dtype}`, { node: ctx.node.label });
  if (x.shape) axisFor(ctx, x.shape.length);
  return [typeOf(x.dtype, x.shape)];
}

function evaluateSoftmax(ctx: EvalContext, kind: Kind): Tensor[] {
  const x = ctx.inputs[0];
  if (!x) throw new UserError(`input is required`, { node: ctx.node.label });
  if (!isFloat(x.dtype)) throw new UserError(`input must be a floating point tensor, got ${x.dtype}`, { node: ctx.node.label });
  const { axis, legacy } = axisFor(ctx, x.rank);
  const { outer, n, inner } = splitOf(x.shape, axis, legacy);
  const xd = x.data;
  const out = new Float64Array(x.size);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let max = -Infinity;
      let arg = 0;
      for (let j = 0; j < n; j++) {
        const v = xd[base + j * inner]!;
        if (v > max) {
          max = v;
          arg = j;
        }
      }
      if (kind === 'hardmax') {
        if (n > 0) out[base + arg * inner] = 1;
        continue;
      }
      let sum = 0;
      for (let j = 0; j < n; j++) {
        const e = Math.exp(xd[base + j * inner]! - max);
        out[base + j * inner] = e;
        sum += e;
      }
      if (kind === 'softmax') {
        const inv = 1 / sum;
        for (let j = 0; j < n; j++) out[base + j * inner] *= inv;
      } else {
        const shift = max + Math.log(sum);
        for (let j = 0; j < n; j++) out[base + j * inner] = xd[base + j * inner]! - shift;
      }
    }
  }
  return [Tensor.from(x.dtype, x.shape, out)];
}

/** exp, sum, divide (and max, subtract) per element. */
function softmaxFlops(ctx: InferContext): number {
  const s = ctx.inputs[0]?.shape;
  return s && isStatic(s) ? 5 * s.reduce((a, b) => a * b, 1) : 0;
}

const row = (op: string, kind: Kind): OpDef => ({
  op,
  family: 'normalization',
  inputs: [1, 1],
  outputs: [1, 1],
  infer: inferSoftmax,
  evaluate: (ctx) => evaluateSoftmax(ctx, kind),
  flops: softmaxFlops,
});

export const softmaxOps: OpDef[] = [row('Softmax', 'softmax'), row('LogSoftmax', 'logsoftmax'), row('Hardmax', 'hardmax')];
