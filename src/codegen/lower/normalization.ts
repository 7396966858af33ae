/**
 * Lowering rows of the normalization family: Softmax/LogSoftmax over any axis (one workgroup per
 * row, strided in place — no transpose), LayerNormalization and RMSNormalization (norm template,
 * optional Mean/InvStdDev outputs as two reduce launches), InstanceNormalization, and inference
 * BatchNormalization (a broadcast map).
 */
import { numel } from '../../ir/shape.js';
import { type Expr, add, bin, cast, cmp, div, f32, i32, mul, rem, select, sub, substitute, un, variable } from '../expr.js';
import { Params, broadcastOffset, flatIndex, isDeviceFloat, loadTyped } from '../index-map.js';
import type { NormBody, ReduceBody, SoftmaxBody } from '../kernel.js';
import { type LaunchSpec, type LowerContext, type LowerRow, type Lowered, kernels, launch, need, unsupported } from './index.js';
import { MapBuilder } from './map.js';
import { inlineCoords, rowGeometry } from './rows.js';

function requireF32(ctx: LowerContext): void {
  if (!isDeviceFloat(need(ctx, 0).dtype)) throw unsupported(ctx, `dtype ${need(ctx, 0).dtype}`);
}

function lowerSoftmax(ctx: LowerContext, log: boolean): Lowered {
  requireF32(ctx);
  const x = need(ctx, 0);
  const rank = x.shape.length;
  const axisAttr = ctx.attrs.int('axis', -1);
  const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
  // Legacy (opset < 13): softmax over the flattened dims from `axis` on.
  const axes = ctx.attrs.int('_legacy_axis_2d', 0) ? x.shape.map((_, d) => d).filter((d) => d >= axis) : [axis];
  const p = new Params();
  const g = rowGeometry(p, x.shape, axes);
  if (g.rows === 0 || g.len === 0) return kernels();
  const body: SoftmaxBody = {
    kind: 'softmax',
    log,
    rows: p.int('rows', g.rows),
    len: p.int('len', g.len),
    value: loadTyped('x0', 'float32', g.offset),
    out: { buf: 'y0', index: g.offset, value: variable('y', 'f32') },
  };
  return kernels(launch(ctx, body, p));
}

/** Offset into a parameter (scale, bias) of shape `pShape` broadcast to the normalized dims `normShape`, at r. */
function paramOffset(p: Params, name: string, pShape: readonly number[], normShape: readonly number[]): Expr {
  if (numel(pShape) === 1) return i32(0);
  const aligned = pShape.length > normShape.length ? pShape.slice(pShape.length - normShape.length) : pShape;
  if (aligned.length === normShape.length && aligned.every((d, k) => d === normShape[k])) return variable('r');
  const coords = inlineCoords(p, `${name}_r`, variable('r'), normShape);
  return broadcastOffset(p, name, coords, aligned);
}

function lowerNorm(ctx: LowerContext, mode: 'layer' | 'rms', defaultEps: number): Lowered {
  requireF32(ctx);
  const x = need(ctx, 0);
  const rank = x.shape.length;
  const axisAttr = ctx.attrs.int('axis', -1);
  const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
  const eps = ctx.attrs.float('epsilon', defaultEps);
  const normShape = x.shape.slice(axis);
  const axes = normShape.map((_, k) => axis + k);
  const launches: LaunchSpec[] = [];
  const p = new Params();
  const g = rowGeometry(p, x.shape, axes);
  if (g.rows === 0) return kernels();
  let value: Expr = variable('xhat', 'f32');
  const scale = ctx.inputs[1];
  if (scale) value = mul(value, loadTyped('x1', scale.dtype, paramOffset(p, 'scale', scale.shape, normShape)));
  const bias = ctx.inputs[2];
  if (bias) value = add(value, loadTyped('x2', bias.dtype, paramOffset(p, 'bias', bias.shape, normShape)));
  const body: NormBody = {
    kind: 'norm',
    mode,
    epsilon: eps,
    rows: p.int('rows', g.rows),
    len: p.int('len', g.len),
    value: loadTyped('x0', 'float32', g.offset),
    out: { buf: 'y0', index: g.offset, value },
  };
  launches.push(launch(ctx, body, p));

  // Optional statistics outputs (training-style LayerNormalization): Mean, then InvStdDev.
  const wants = (k: number): boolean => ctx.node.outputs[k] !== undefined && ctx.node.outputs[k]!.name !== '';
  if (mode === 'layer' && (wants(1) || wants(2))) {
    const xv = loadTyped('x0', 'float32', g.offset);
    const sp = new Params();
    const sg = rowGeometry(sp, x.shape, axes);
    const len = sp.int('len', sg.len);
    const rows = sp.int('rows', sg.rows);
    const meanBody: ReduceBody = { kind: 'reduce', op: 'sum', rows, len, value: xv, out: { buf: 'y1', index: variable('row'), value: div(variable('acc', 'f32'), cast(len, 'f32')) } };
    const d = sub(xv, loadTyped('y1', 'float32', variable('row')));
    const invBody: ReduceBody = {
      kind: 'reduce', op: 'sum', rows, len, value: mul(d, d),
      out: { buf: 'y2', index: variable('row'), value: un('rsqrt', add(div(variable('acc', 'f32'), cast(len, 'f32')), f32(eps))) },
    };
    if (!wants(1)) throw unsupported(ctx, 'InvStdDev without Mean');
    launches.push(launch(ctx, meanBody, sp, 'mean'));
    if (wants(2)) launches.push(launch(ctx, invBody, sp, 'inv_std_dev'));
  }
  return kernels(...launches);
}

function lowerInstanceNorm(ctx: LowerContext): Lowered {
  requireF32(ctx);
  const x = need(ctx, 0);
  const C = x.shape[1]!;
  const p = new Params();
  const g = rowGeometry(p, x.shape, x.shape.map((_, d) => d).filter((d) => d >= 2));
  if (g.rows === 0) return kernels();
  const c = C === 1 ? i32(0) : rem(variable('row'), p.int('C', C));
  const body: NormBody = {
    kind: 'norm',
    mode: 'layer',
    epsilon: ctx.attrs.float('epsilon', 1e-5),
    rows: p.int('rows', g.rows),
    len: p.int('len', g.len),
    value: loadTyped('x0', 'float32', g.offset),
    out: { buf: 'y0', index: g.offset, value: add(mul(variable('xhat', 'f32'), loadTyped('x1', 'float32', c)), loadTyped('x2', 'float32', c)) },
  };
  return kernels(launch(ctx, body, p));
}

function lowerBatchNorm(ctx: LowerContext): Lowered {
  requireF32(ctx);
  if (ctx.attrs.int('training_mode', 0)) return lowerBatchNormTraining(ctx);
  const x = need(ctx, 0);
  const out = ctx.outputs[0]!;
  const mb = new MapBuilder(out.shape);
  const perChannel = (k: number): Expr => {
    const v = need(ctx, k);
    return mb.broadcastLoad(`x${k}`, v.dtype, [v.shape[0]!, ...x.shape.slice(2).map(() => 1)]);
  };
  const xv = mb.broadcastLoad('x0', x.dtype, x.shape);
  const eps = f32(ctx.attrs.float('epsilon', 1e-5));
  const norm = mul(sub(xv, perChannel(3)), un('rsqrt', add(perChannel(4), eps)));
  return kernels(mb.build(ctx, 'y0', out.dtype, add(mul(norm, perChannel(1)), perChannel(2))));
}

/**
 * Training-mode BatchNormalization: Y normalized with the batch statistics per channel (norm
 * template, rows = channels), and running mean/var = input · momentum + batch · (1 − momentum)
 * (a map over channels with two folded loops).
 */
function lowerBatchNormTraining(ctx: LowerContext): Lowered {
  const x = need(ctx, 0);
  const C = x.shape[1]!;
  const p = new Params();
  const axes = x.shape.map((_, d) => d).filter((d) => d !== 1);
  const g = rowGeometry(p, x.shape, axes);
  if (g.rows === 0 || g.len === 0) return kernels();
  const eps = ctx.attrs.float('epsilon', 1e-5);
  const row = variable('row');
  const body: NormBody = {
    kind: 'norm', mode: 'layer', epsilon: eps,
    rows: p.int('rows', g.rows), len: p.int('len', g.len),
    value: loadTyped('x0', 'float32', g.offset),
    out: { buf: 'y0', index: g.offset, value: add(mul(variable('xhat', 'f32'), loadTyped('x1', 'float32', row)), loadTyped('x2', 'float32', row)) },
  };
  const launches = [launch(ctx, body, p)];
  const wants = (k: number): boolean => ctx.node.outputs[k] !== undefined && ctx.node.outputs[k]!.name !== '';
  if (wants(1) || wants(2)) {
    const sp = new Params();
    const sg = rowGeometry(sp, x.shape, axes);
    const mb = new MapBuilder([C]);
    Object.assign(mb.p.values, sp.values);
    const len = mb.p.int('len', sg.len);
    // The row geometry's offset over (row, r): row = channel = i, r = the loop variable.
    const at = (r: string): Expr => loadTyped('x0', 'float32', substitute(sg.offset, { row: flatIndex(), r: variable(r) }));
    mb.lets.push({ name: 'sum', value: at('r'), loop: { var: 'r', count: len, op: 'sum' } });
    const mean = mb.let('mean', div(variable('sum', 'f32'), cast(len, 'f32')));
    const d = sub(at('q'), mean);
    mb.lets.push({ name: 'sq', value: mul(d, d), loop: { var: 'q', count: len, op: 'sum' } });
    const variance = div(variable('sq', 'f32'), cast(len, 'f32'));
    const m = f32(ctx.attrs.float('momentum', 0.9));
    const blend = (k: number, v: Expr): Expr => add(mul(loadTyped(`x${k}`, 'float32', flatIndex()), m), mul(v, f32(1 - ctx.attrs.float('momentum', 0.9))));
    const stores = wants(2) ? [{ buf: 'y2', index: flatIndex(), value: blend(4, variance) }] : [];
    if (!wants(1)) throw unsupported(ctx, 'running_var without running_mean');
    launches.push(mb.build(ctx, 'y1', 'float32', blend(3, mean), 'running stats', stores));
  }
  return kernels(...launches);
}

/** MeanVarianceNormalization: (x - mean) / sqrt(var) over `axes` (default N, H, W), on the norm template. */
function lowerMvn(ctx: LowerContext): Lowered {
  requireF32(ctx);
  const x = need(ctx, 0);
  const rank = x.shape.length;
  const axes = ctx.attrs.ints('axes', [0, 2, 3]).map((a) => (a < 0 ? a + rank : a));
  if (axes.some((a) => a < 0 || a >= rank)) throw unsupported(ctx, `axes [${axes}] out of range for rank ${rank}`);
  const p = new Params();
  const g = rowGeometry(p, x.shape, axes);
  if (g.rows === 0 || g.len === 0) return kernels();
  const body: NormBody = {
    kind: 'norm',
    mode: 'layer',
    epsilon: 1e-9,
    rows: p.int('rows', g.rows),
    len: p.int('len', g.len),
    value: loadTyped('x0', 'float32', g.offset),
    out: { buf: 'y0', index: g.offset, value: variable('xhat', 'f32') },
  };
  return kernels(launch(ctx, body, p));
}

/** LRN: x / (bias + alpha / size · Σ x² over the channel window)^beta. */
function lowerLrn(ctx: LowerContext): Lowered {
  requireF32(ctx);
  const x = need(ctx, 0);
  if (x.shape.length < 2) throw unsupported(ctx, 'input must have a channel dim');
  const size = ctx.attrs.int('size', 1);
  const alpha = ctx.attrs.float('alpha', 1e-4);
  const beta = ctx.attrs.float('beta', 0.75);
  const bias = ctx.attrs.float('bias', 1);
  const out = ctx.outputs[0]!;
  if (numel(out.shape) === 0) return kernels();
  const mb = new MapBuilder(x.shape);
  const c = mb.coord();
  const C = x.shape[1]!;
  const cSt = numel(x.shape.slice(2));
  const lo = Math.floor((size - 1) / 2);
  const cc = sub(add(c[1]!, variable('k')), mb.p.int('lo', lo));
  const inb = bin('&&', cmp('>=', cc, i32(0)), cmp('<', cc, mb.p.int('C', C)));
  const base = mb.let('base', sub(flatIndex(), mul(c[1]!, mb.p.int('c_st', cSt))));
  const xv = loadTyped('x0', 'float32', select(inb, add(base, mul(cc, mb.p.int('c_st', cSt))), i32(0)));
  mb.lets.push({ name: 'sq', value: select(inb, mul(xv, xv), f32(0)), loop: { var: 'k', count: mb.p.int('size', size), op: 'sum' } });
  const denom = bin('pow', add(f32(bias), mul(f32(alpha / size), variable('sq', 'f32'))), f32(beta));
  return kernels(mb.build(ctx, 'y0', out.dtype, div(loadTyped('x0', 'float32', flatIndex()), denom)));
}

export const normalizationLowerings: LowerRow[] = [
  { op: 'MeanVarianceNormalization', family: 'normalization', lower: lowerMvn },
  { op: 'LRN', family: 'normalization', lower: lowerLrn },
  { op: 'Softmax', family: 'normalization', lower: (ctx) => lowerSoftmax(ctx, false) },
  { op: 'LogSoftmax', family: 'normalization', lower: (ctx) => lowerSoftmax(ctx, true) },
  { op: 'LayerNormalization', family: 'normalization', lower: (ctx) => lowerNorm(ctx, 'layer', 1e-5) },
  { op: 'RMSNormalization', family: 'normalization', lower: (ctx) => lowerNorm(ctx, 'rms', 1e-5) },
  { op: 'InstanceNormalization', family: 'normalization', lower: lowerInstanceNorm },
  { op: 'BatchNormalization', family: 'normalization', lower: lowerBatchNorm },
];
