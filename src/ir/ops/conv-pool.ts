/**
 * Pooling rows: MaxPool (with optional int64 Indices), AveragePool, GlobalAveragePool,
 * GlobalMaxPool. Windows go through the shared tap tables of conv-geometry.ts, so every spatial
 * rank, stride, dilation, padding and ceil mode takes the same loop.
 */
import { type DType, isFloat } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import { type Dim, isStatic } from '../shape.js';
import { Tensor } from '../tensor.js';
import { prod, readWindowAttrs, tapCounts, tapTable, windowGeometry, windowOutDims } from './conv-geometry.js';
import { input, typeOf } from './util.js';

type Where = { node: { label: string } };

function checkPoolInput(ctx: Where, dtype: DType, shape: readonly Dim[] | undefined, allowInt8: boolean): void {
  const label = ctx.node.label;
  const ok = isFloat(dtype) || (allowInt8 && (dtype === 'int8' || dtype === 'uint8'));
  if (!ok) throw new UserError(`input X has unsupported dtype ${dtype}`, { node: label });
  if (shape && shape.length < 3) throw new UserError(`input X must have rank >= 3 (N, C, spatial...), got rank ${shape.length}`, { node: label });
}

function inferWindowPool(ctx: InferContext, allowInt8: boolean): Dim[] | undefined {
  const x = input(ctx, 0);
  checkPoolInput(ctx, x.dtype, x.shape, allowInt8);
  if (!x.shape) return undefined;
  const win = readWindowAttrs(ctx, ctx.attrs, x.shape.length - 2);
  const spatial = windowOutDims(ctx, x.shape.slice(2), win);
  return spatial ? [x.shape[0]!, x.shape[1]!, ...spatial] : undefined;
}

function inferMaxPool(ctx: InferContext): TypeInfo[] {
  const shape = inferWindowPool(ctx, true);
  const so = ctx.attrs.int('storage_order', 0);
  if (so !== 0 && so !== 1) throw new UserError(`storage_order must be 0 or 1, got ${so}`, { node: ctx.node.label });
  const types = [typeOf(input(ctx, 0).dtype, shape), typeOf('int64', shape)];
  return types.slice(0, Math.max(1, ctx.node.outputs.length));
}

function inferAveragePool(ctx: InferContext): TypeInfo[] {
  return [typeOf(input(ctx, 0).dtype, inferWindowPool(ctx, false))];
}

/** What both window pools' evaluation needs: the checked input, its window geometry and tap table. */
function windowPoolSetup(ctx: EvalContext, max: boolean) {
  const x = ctx.inputs[0];
  if (!x) throw new UserError(`input X is required`, { node: ctx.node.label });
  checkPoolInput(ctx, x.dtype, x.shape, max);
  const win = readWindowAttrs(ctx, ctx.attrs, x.rank - 2);
  const g = windowGeometry(ctx, x.shape.slice(2), win);
  return {
    x,
    g,
    planes: x.shape[0]! * x.shape[1]!,
    inS: prod(g.inSpatial),
    outS: prod(g.outSpatial),
    K: prod(g.kernel),
    taps: tapTable(g.outSpatial, g.inSpatial, g.kernel, g.strides, g.dilations, g.padsBegin),
  };
}

function evaluateMaxPool(ctx: EvalContext): Tensor[] {
  const { x, g, planes, inS, outS, K, taps } = windowPoolSetup(ctx, true);
  const wantIndices = ctx.node.outputs.length > 1 && ctx.node.outputs[1]!.name !== '';
  const out = new Float64Array(planes * outS).fill(-Infinity);
  const idx = wantIndices ? new Float64Array(planes * outS).fill(-1) : undefined;
  const xd = x.data;
  for (let pl = 0; pl < planes; pl++) {
    const xb = pl * inS;
    const ob = pl * outS;
    for (let t = 0; t < K; t++) {
      const tb = t * outS;
      if (!idx) {
        for (let p = 0; p < outS; p++) {
          const off = taps[tb + p]!;
          if (off >= 0) {
            const v = xd[xb + off]!;
            if (v > out[ob + p]!) out[ob + p] = v;
          }
        }
      } else {
        for (let p = 0; p < outS; p++) {
          const off = taps[tb + p]!;
          if (off >= 0) {
            const v = xd[xb + off]!;
            if (v > out[ob + p]! || idx[ob + p]! < 0) {
              out[ob + p] = v;
              idx[ob + p] = xb + off;
            }
          }
        }
      }
    }
  }
  const shape = [x.shape[0]!, x.shape[1]!, ...g.outSpatial];
  const result = [Tensor.from(x.dtype, shape, out)];
  if (idx) {
    if (ctx.attrs.int('storage_order', 0) === 1) toColumnMajor(idx, inS, g.inSpatial);
    result.push(Tensor.from('int64', shape, idx));
  }
  return result;
}

/** Rewrites flat row-major indices so the spatial part counts in column-major order. */
function toColumnMajor(idx: Float64Array, inS: number, spatial: readonly number[]): void {
  const rank = spatial.length;
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i]!;
    if (v < 0) continue;
    const plane = Math.floor(v / inS);
    let rem = v - plane * inS;
    // Row-major coords from the last dim; column-major weight of dim d is prod(spatial[0..d)).
    const coords = new Array<number>(rank);
    for (let d = rank - 1; d >= 0; d--) {
      coords[d] = rem % spatial[d]!;
      rem = Math.floor(rem / spatial[d]!);
    }
    let off = 0;
    for (let d = 0, w = 1; d < rank; d++) {
      off += coords[d]! * w;
      w *= spatial[d]!;
    }
    idx[i] = plane * inS + off;
  }
}

function evaluateAveragePool(ctx: EvalContext): Tensor[] {
  const { x, g, planes, inS, outS, K, taps } = windowPoolSetup(ctx, false);
  const counts = tapCounts(g, ctx.attrs.int('count_include_pad', 0) !== 0);
  const out = new Float64Array(planes * outS);
  const xd = x.data;
  for (let pl = 0; pl < planes; pl++) {
    const xb = pl * inS;
    const ob = pl * outS;
    for (let t = 0; t < K; t++) {
      const tb = t * outS;
      for (let p = 0; p < outS; p++) {
        const off = taps[tb + p]!;
        if (off >= 0) out[ob + p] += xd[xb + off]!;
      }
    }
    for (let p = 0; p < outS; p++) out[ob + p] /= counts[p]!;
  }
  return [Tensor.from(x.dtype, [x.shape[0]!, x.shape[1]!, ...g.outSpatial], out)];
}

// ---------------------------------------------------------------- global pools

function inferGlobalPool(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  checkPoolInput(ctx, x.dtype, x.shape, false);
  return [typeOf(x.dtype, x.shape ? [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)] : undefined)];
}

function evaluateGlobalPool(ctx: EvalContext, max: boolean): Tensor[] {
  const x = ctx.inputs[0];
  if (!x) throw new UserError(`input X is required`, { node: ctx.node.label });
  checkPoolInput(ctx, x.dtype, x.shape, false);
  const planes = x.shape[0]! * x.shape[1]!;
  const inS = prod(x.shape.slice(2));
  const out = new Float64Array(planes);
  const xd = x.data;
  for (let pl = 0; pl < planes; pl++) {
    const b = pl * inS;
    if (max) {
      let m = -Infinity;
      for (let i = 0; i < inS; i++) if (xd[b + i]! > m) m = xd[b + i]!;
      out[pl] = m;
    } else {
      let s = 0;
      for (let i = 0; i < inS; i++) s += xd[b + i]!;
      out[pl] = s / inS;
    }
  }
  return [Tensor.from(x.dtype, [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)], out)];
}

// ---------------------------------------------------------------- flops

/** One operation per (output element, kernel tap). */
function windowPoolFlops(ctx: InferContext): number {
  const shape = inferWindowPool(ctx, true);
  const kernel = ctx.attrs.maybeInts('kernel_shape');
  return shape && isStatic(shape) && kernel ? prod(shape) * prod(kernel) : 0;
}

function globalPoolFlops(ctx: InferContext): number {
  const s = ctx.inputs[0]?.shape;
  return s && isStatic(s) ? prod(s) : 0;
}

const globalPool = (op: string, max: boolean): OpDef => ({
  op,
  family: 'conv',
  inputs: [1, 1],
  outputs: [1, 1],
  infer: inferGlobalPool,
  evaluate: (ctx) => evaluateGlobalPool(ctx, max),
  flops: globalPoolFlops,
});

export const poolOps: OpDef[] = [
  { op: 'MaxPool', family: 'conv', inputs: [1, 1], outputs: [1, 2], infer: inferMaxPool, evaluate: evaluateMaxPool, flops: windowPoolFlops },
  {
    op: 'AveragePool',
    family: 'conv',
    inputs: [1, 1],
    outputs: [1, 1],
    infer: inferAveragePool,
    evaluate: evaluateAveragePool,
    flops: windowPoolFlops,
  },
  globalPool('GlobalAveragePool', false),
  globalPool('GlobalMaxPool', true),
];
