/**
 * Normalizations built on means and variances: LayerNormalization, RMSNormalization,
 * BatchNormalization (inference and training mode), InstanceNormalization,
 * MeanVarianceNormalization, and LRN (a local sum of squares across channels). Statistics are
 * accumulated in float64 (two passes: mean, then centred variance) and results rounded once to
 * the output dtype.
 */
import { type DType, dtypeFromOnnx, isFloat } from '../dtype.js';
import { UserError } from '../errors.js';
import type { EvalContext, InferContext, OpDef, TypeInfo } from '../registry.js';
import { type Dim, broadcastShapes, isStatic, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { axisOf, broadcastIndex, input, typeOf } from './util.js';

type Where = { node: { label: string } };

function requireFloat(ctx: Where, dtype: DType, what = 'input X'): void {
  if (!isFloat(dtype)) throw new UserError(`${what} must be a floating point tensor, got ${dtype}`, { node: ctx.node.label });
}

function requireInput(ctx: EvalContext, i: number, what: string): Tensor {
  const t = ctx.inputs[i];
  if (!t) throw new UserError(`input ${what} is required`, { node: ctx.node.label });
  return t;
}

const norm5Flops = (ctx: InferContext): number => {
  const s = ctx.inputs[0]?.shape;
  return s && isStatic(s) ? 5 * numel(s) : 0;
};

/** Whether `param` broadcasts (unidirectionally) to `target`. */
function broadcastsTo(param: readonly Dim[], target: readonly Dim[]): boolean {
  if (param.length > target.length) return false;
  const b = broadcastShapes(param, target);
  return b !== undefined && b.length === target.length && b.every((d, i) => d === target[i]);
}

// ---------------------------------------------------------------- LayerNormalization / RMSNormalization

function inferLastAxesNorm(ctx: InferContext, rms: boolean): TypeInfo[] {
  const x = input(ctx, 0);
  requireFloat(ctx, x.dtype);
  const stash = dtypeFromOnnx(ctx.attrs.int('stash_type', 1)) ?? 'float32';
  if (!x.shape) return rms ? [typeOf(x.dtype)] : [typeOf(x.dtype), typeOf(stash), typeOf(stash)];
  const rank = x.shape.length;
  const axis = axisOf(ctx, ctx.attrs.int('axis', -1), rank);
  const normShape = x.shape.slice(axis);
  for (const [i, name] of [[1, 'Scale'], [2, 'B']] as const) {
    const p = ctx.inputs[i]?.shape;
    if (p && !broadcastsTo(p, normShape))
      throw new UserError(`${name} of shape [${p.join(',')}] does not broadcast to the normalized shape [${normShape.join(',')}]`, {
        node: ctx.node.label,
      });
  }
  if (rms) return [typeOf(x.dtype, x.shape)];
  const statShape = [...x.shape.slice(0, axis), ...normShape.map(() => 1)];
  return [typeOf(x.dtype, x.shape), typeOf(stash, statShape), typeOf(stash, statShape)];
}

/** Per-element index into a parameter broadcast to the normalized shape (undefined: absent). */
function paramIndex(ctx: Where, p: Tensor | undefined, normShape: readonly number[], name: string): Int32Array | undefined {
  if (!p) return undefined;
  if (!broadcastsTo(p.shape, normShape))
    throw new UserError(`${name} of shape [${p.shape.join(',')}] does not broadcast to the normalized shape [${normShape.join(',')}]`, {
      node: ctx.node.label,
    });
  return broadcastIndex(p.shape, normShape);
}

function evaluateLastAxesNorm(ctx: EvalContext, rms: boolean): Tensor[] {
  const x = requireInput(ctx, 0, 'X');
  requireFloat(ctx, x.dtype);
  const scale = requireInput(ctx, 1, 'Scale');
  const bias = rms ? undefined : ctx.inputs[2];
  const axis = axisOf(ctx, ctx.attrs.int('axis', -1), x.rank);
  const eps = ctx.attrs.float('epsilon', 1e-5);
  const stash = dtypeFromOnnx(ctx.attrs.int('stash_type', 1)) ?? 'float32';
  const normShape = x.shape.slice(axis);
  const n = numel(normShape);
  const outer = x.size / Math.max(n, 1);
  const si = paramIndex(ctx, scale, normShape, 'Scale')!;
  const bi = paramIndex(ctx, bias, normShape, 'B');
  const xd = x.data;
  const sd = scale.data;
  const bd = bias?.data;
  const y = new Float64Array(x.size);
  const means = new Float64Array(outer);
  const invStds = new Float64Array(outer);
  for (let o = 0; o < outer; o++) {
    const base = o * n;
    let mean = 0;
    if (!rms) {
      for (let j = 0; j < n; j++) mean += xd[base + j]!;
      mean /= n;
    }
    let sq = 0;
    for (let j = 0; j < n; j++) {
      const d = xd[base + j]! - mean;
      sq += d * d;
    }
    const inv = 1 / Math.sqrt(sq / n + eps);
    means[o] = mean;
    invStds[o] = inv;
    if (bd && bi) for (let j = 0; j < n; j++) y[base + j] = (xd[base + j]! - mean) * inv * sd[si[j]!]! + bd[bi[j]!]!;
    else for (let j = 0; j < n; j++) y[base + j] = (xd[base + j]! - mean) * inv * sd[si[j]!]!;
  }
  const out = [Tensor.from(x.dtype, x.shape, y)];
  if (!rms) {
    const statShape = [...x.shape.slice(0, axis), ...normShape.map(() => 1)];
    out.push(Tensor.from(stash, statShape, means), Tensor.from(stash, statShape, invStds));
  }
  return out;
}

// ---------------------------------------------------------------- per-channel normalizations

/** Checks that X is [N, C, ...] and every named parameter is [C]. */
function checkChannelParams(ctx: Where, x: readonly Dim[] | undefined, params: [Dim[] | readonly number[] | undefined, string][], minRank = 2): void {
  if (!x) return;
  if (x.length < minRank) throw new UserError(`input X must have rank >= ${minRank} (N, C, ...), got rank ${x.length}`, { node: ctx.node.label });
  const c = x[1]!;
  for (const [p, name] of params) {
    if (!p) continue;
    if (p.length !== 1 || (typeof p[0] === 'number' && typeof c === 'number' && p[0] !== c))
      throw new UserError(`${name} must have shape [${c}] (one value per channel), got [${p.join(',')}]`, { node: ctx.node.label });
  }
}

const BN_PARAMS = ['scale', 'B', 'input_mean', 'input_var'];

function inferBatchNorm(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  requireFloat(ctx, x.dtype);
  checkChannelParams(ctx, x.shape, BN_PARAMS.map((name, i) => [input(ctx, i + 1).shape, name]), 1);
  const outs: TypeInfo[] = [typeOf(x.dtype, x.shape)];
  if (ctx.attrs.int('training_mode', 0) === 1) {
    const c = x.shape && x.shape.length >= 2 ? [x.shape[1]!] : undefined;
    const meanType = input(ctx, 3).dtype;
    const varType = input(ctx, 4).dtype;
    outs.push(typeOf(meanType, c), typeOf(varType, c));
  }
  return outs.slice(0, Math.max(1, ctx.node.outputs.length));
}

function evaluateBatchNorm(ctx: EvalContext): Tensor[] {
  const x = requireInput(ctx, 0, 'X');
  requireFloat(ctx, x.dtype);
  const [scale, b, inMean, inVar] = [1, 2, 3, 4].map((i) => requireInput(ctx, i, BN_PARAMS[i - 1]!));
  checkChannelParams(ctx, x.shape, [scale, b, inMean, inVar].map((t, i) => [t!.shape, BN_PARAMS[i]!]), 1);
  const eps = ctx.attrs.float('epsilon', 1e-5);
  const training = ctx.attrs.int('training_mode', 0) === 1;
  const N = x.shape[0]!;
  const C = x.rank >= 2 ? x.shape[1]! : 1;
  const inner = x.rank >= 2 ? x.size / Math.max(N * C, 1) : 1;
  const xd = x.data;
  let mean: ArrayLike<number> = inMean!.data;
  let variance: ArrayLike<number> = inVar!.data;
  if (training) {
    const m = new Float64Array(C);
    const v = new Float64Array(C);
    const count = N * inner;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let i = 0, b0 = (n * C + c) * inner; i < inner; i++) s += xd[b0 + i]!;
      const mu = s / count;
      let q = 0;
      for (let n = 0; n < N; n++)
        for (let i = 0, b0 = (n * C + c) * inner; i < inner; i++) {
          const d = xd[b0 + i]! - mu;
          q += d * d;
        }
      m[c] = mu;
      v[c] = q / count;
    }
    mean = m;
    variance = v;
  }
  const y = new Float64Array(x.size);
  for (let c = 0; c < C; c++) {
    const k = scale!.data[c]! / Math.sqrt(variance[c]! + eps);
    const shift = b!.data[c]! - mean[c]! * k;
    for (let n = 0; n < N; n++) for (let i = 0, b0 = (n * C + c) * inner; i < inner; i++) y[b0 + i] = xd[b0 + i]! * k + shift;
  }
  const out = [Tensor.from(x.dtype, x.shape, y)];
  if (training && ctx.node.outputs.length > 1) {
    const momentum = ctx.attrs.float('momentum', 0.9);
    const rm = new Float64Array(C);
    const rv = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      rm[c] = inMean!.data[c]! * momentum + mean[c]! * (1 - momentum);
      rv[c] = inVar!.data[c]! * momentum + variance[c]! * (1 - momentum);
    }
    out.push(Tensor.from(inMean!.dtype, [C], rm), Tensor.from(inVar!.dtype, [C], rv));
  }
  return out;
}

function inferInstanceNorm(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  requireFloat(ctx, x.dtype);
  checkChannelParams(ctx, x.shape, [[input(ctx, 1).shape, 'scale'], [input(ctx, 2).shape, 'B']], 3);
  return [typeOf(x.dtype, x.shape)];
}

function evaluateInstanceNorm(ctx: EvalContext): Tensor[] {
  const x = requireInput(ctx, 0, 'X');
  requireFloat(ctx, x.dtype);
  const scale = requireInput(ctx, 1, 'scale');
  const b = requireInput(ctx, 2, 'B');
  checkChannelParams(ctx, x.shape, [[scale.shape, 'scale'], [b.shape, 'B']], 3);
  const eps = ctx.attrs.float('epsilon', 1e-5);
  const [N, C] = [x.shape[0]!, x.shape[1]!];
  const inner = x.size / Math.max(N * C, 1);
  const xd = x.data;
  const y = new Float64Array(x.size);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++) {
      const b0 = (n * C + c) * inner;
      let s = 0;
      for (let i = 0; i < inner; i++) s += xd[b0 + i]!;
      const mu = s / inner;
      let q = 0;
      for (let i = 0; i < inner; i++) {
        const d = xd[b0 + i]! - mu;
        q += d * d;
      }
      const k = scale.data[c]! / Math.sqrt(q / inner + eps);
      const shift = b.data[c]! - mu * k;
      for (let i = 0; i < inner; i++) y[b0 + i] = xd[b0 + i]! * k + shift;
    }
  return [Tensor.from(x.dtype, x.shape, y)];
}

// ---------------------------------------------------------------- MeanVarianceNormalization

function mvnAxes(ctx: Where & { attrs: InferContext['attrs'] }, rank: number): number[] {
  const axes = ctx.attrs.ints('axes', [0, 2, 3]).map((a) => axisOf(ctx, a, rank));
  if (new Set(axes).size !== axes.length) throw new UserError(`axes [${axes}] repeat an axis`, { node: ctx.node.label });
  return axes;
}

function inferMvn(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  requireFloat(ctx, x.dtype);
  if (x.shape) mvnAxes(ctx, x.shape.length);
  return [typeOf(x.dtype, x.shape)];
}

/** (X - mean) / (sqrt(E[X^2] - mean^2) + 1e-9) over `axes`, as the ONNX function body defines it. */
function evaluateMvn(ctx: EvalContext): Tensor[] {
  const x = requireInput(ctx, 0, 'X');
  requireFloat(ctx, x.dtype);
  const axes = mvnAxes(ctx, x.rank);
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const groups = numel(kept);
  const gi = broadcastIndex(kept, x.shape);
  const count = x.size / Math.max(groups, 1);
  const sum = new Float64Array(groups);
  const sumSq = new Float64Array(groups);
  const xd = x.data;
  for (let i = 0; i < x.size; i++) {
    const v = xd[i]!;
    sum[gi[i]!] += v;
    sumSq[gi[i]!] += v * v;
  }
  const mean = new Float64Array(groups);
  const denom = new Float64Array(groups);
  for (let g = 0; g < groups; g++) {
    mean[g] = sum[g]! / count;
    denom[g] = Math.sqrt(Math.max(0, sumSq[g]! / count - mean[g]! * mean[g]!)) + 1e-9;
  }
  const y = new Float64Array(x.size);
  for (let i = 0; i < x.size; i++) y[i] = (xd[i]! - mean[gi[i]!]!) / denom[gi[i]!]!;
  return [Tensor.from(x.dtype, x.shape, y)];
}

// ---------------------------------------------------------------- LRN

function inferLrn(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  requireFloat(ctx, x.dtype);
  const size = ctx.attrs.int('size');
  if (!(size >= 1)) throw new UserError(`size must be positive, got ${size}`, { node: ctx.node.label });
  checkChannelParams(ctx, x.shape, [], 2);
  return [typeOf(x.dtype, x.shape)];
}

/** y = x / (bias + alpha / size * sum of x^2 over the channel window) ^ beta. */
function evaluateLrn(ctx: EvalContext): Tensor[] {
  const x = requireInput(ctx, 0, 'X');
  requireFloat(ctx, x.dtype);
  checkChannelParams(ctx, x.shape, [], 2);
  const size = ctx.attrs.int('size');
  if (!(size >= 1)) throw new UserError(`size must be positive, got ${size}`, { node: ctx.node.label });
  const alpha = ctx.attrs.float('alpha', 1e-4);
  const beta = ctx.attrs.float('beta', 0.75);
  const bias = ctx.attrs.float('bias', 1);
  const [N, C] = [x.shape[0]!, x.shape[1]!];
  const inner = x.size / Math.max(N * C, 1);
  const before = Math.floor((size - 1) / 2);
  const after = Math.ceil((size - 1) / 2);
  const xd = x.data;
  const y = new Float64Array(x.size);
  const sq = new Float64Array(inner);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++) {
      sq.fill(0);
      const lo = Math.max(0, c - before);
      const hi = Math.min(C - 1, c + after);
      for (let k = lo; k <= hi; k++)
        for (let i = 0, b0 = (n * C + k) * inner; i < inner; i++) {
          const v = xd[b0 + i]!;
          sq[i] += v * v;
        }
      const b0 = (n * C + c) * inner;
      for (let i = 0; i < inner; i++) y[b0 + i] = xd[b0 + i]! / Math.pow(bias + (alpha / size) * sq[i]!, beta);
    }
  return [Tensor.from(x.dtype, x.shape, y)];
}

function lrnFlops(ctx: InferContext): number {
  const s = ctx.inputs[0]?.shape;
  const size = ctx.attrs.maybeInt('size') ?? 1;
  return s && isStatic(s) ? (2 * size + 4) * numel(s) : 0;
}

export const statsNormOps: OpDef[] = [
  {
    op: 'LayerNormalization',
    family: 'normalization',
    inputs: [2, 3],
    outputs: [1, 3],
    infer: (ctx) => inferLastAxesNorm(ctx, false).slice(0, Math.max(1, ctx.node.outputs.length)),
    evaluate: (ctx) => evaluateLastAxesNorm(ctx, false),
    flops: norm5Flops,
  },
  {
    op: 'RMSNormalization',
    family: 'normalization',
    inputs: [2, 2],
    outputs: [1, 1],
    infer: (ctx) => inferLastAxesNorm(ctx, true),
    evaluate: (ctx) => evaluateLastAxesNorm(ctx, true),
    flops: norm5Flops,
  },
  { op: 'BatchNormalization', family: 'normalization', inputs: [5, 5], outputs: [1, 3], infer: inferBatchNorm, evaluate: evaluateBatchNorm, flops: norm5Flops },
  {
    op: 'InstanceNormalization',
    family: 'normalization',
    inputs: [3, 3],
    outputs: [1, 1],
    infer: inferInstanceNorm,
    evaluate: evaluateInstanceNorm,
    flops: norm5Flops,
  },
  { op: 'MeanVarianceNormalization', family: 'normalization', inputs: [1, 1], outputs: [1, 1], infer: inferMvn, evaluate: evaluateMvn, flops: norm5Flops },
  { op: 'LRN', family: 'normalization', inputs: [1, 1], outputs: [1, 1], infer: inferLrn, evaluate: evaluateLrn, flops: lrnFlops },
];
