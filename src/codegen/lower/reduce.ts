/**
 * Lowering rows of the reduce family: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/
 * SumSquare over any axes, on the row-reduction template (one workgroup per output element,
 * tree reduction). The reduced axes need not be contiguous: the row geometry's index map walks
 * them in place.
 */
import { numel, stridesOf } from '../../ir/shape.js';
import { type Expr, add, cast, cmp, div, f32, i32, mul, select, sub, un, variable } from '../expr.js';
import { Params, deviceTypeOrThrow, isDeviceFloat, linearOffset, loadTyped } from '../index-map.js';
import type { ReduceBody, ReduceOp } from '../kernel.js';
import { type LowerContext, type LowerRow, type Lowered, hostInts, kernels, launch, need, unsupported } from './index.js';
import { MapBuilder } from './map.js';
import { rowGeometry } from './rows.js';

interface ReduceSpec {
  op: ReduceOp;
  floatOnly?: boolean;
  /** Element transform before combining. */
  pre?: (x: Expr) => Expr;
  /** Result transform (`acc`, reduced length). */
  post?: (acc: Expr, len: Expr) => Expr;
}

const SPECS: Record<string, ReduceSpec> = {
  ReduceSum: { op: 'sum' },
  ReduceMean: { op: 'sum', post: (acc, len) => div(acc, cast(len, acc.t)) },
  ReduceMax: { op: 'max' },
  ReduceMin: { op: 'min' },
  ReduceProd: { op: 'prod' },
  ReduceL1: { op: 'sum', pre: (x) => un('abs', x) },
  ReduceL2: { op: 'sum', floatOnly: true, pre: (x) => mul(x, x), post: (acc) => un('sqrt', acc) },
  ReduceSumSquare: { op: 'sum', pre: (x) => mul(x, x) },
  ReduceLogSum: { op: 'sum', floatOnly: true, post: (acc) => un('log', acc) },
  ReduceLogSumExp: { op: 'sum', floatOnly: true, pre: (x) => un('exp', x), post: (acc) => un('log', acc) },
};

function lowerReduce(ctx: LowerContext, spec: ReduceSpec): Lowered {
  const x = need(ctx, 0);
  const t = deviceTypeOrThrow(x.dtype, ctx.node.label);
  if (t === 'bool' || (spec.floatOnly && t !== 'f32')) throw unsupported(ctx, `dtype ${x.dtype}`);
  const rank = x.shape.length;
  let axes = (hostInts(ctx, 1) ?? []).map((a) => (a < 0 ? a + rank : a));
  if (axes.length === 0) {
    if (ctx.attrs.int('noop_with_empty_axes', 0)) return { kind: 'view', input: 0 };
    axes = x.shape.map((_, d) => d);
  }
  const p = new Params();
  const g = rowGeometry(p, x.shape, axes);
  if (g.rows === 0) return kernels();
  const len = p.int('len', g.len);
  let value = loadTyped('x0', x.dtype, g.offset);
  if (spec.pre) value = spec.pre(value);
  let result: Expr = variable('acc', t);
  if (spec.post) result = spec.post(result, len);
  const body: ReduceBody = {
    kind: 'reduce',
    op: spec.op,
    rows: p.int('rows', g.rows),
    len,
    value,
    out: { buf: 'y0', index: variable('row'), value: cast(result, deviceTypeOrThrow(ctx.outputs[0]!.dtype)) },
  };
  return kernels(launch(ctx, body, p));
}

export const reduceLowerings: LowerRow[] = Object.entries(SPECS).map(
  ([op, spec]): LowerRow => ({ op, family: 'reduce', hostInputs: [1], lower: (ctx) => lowerReduce(ctx, spec) }),
);

// ---- index-tracking reductions and scans: loop-folded lets in a map kernel -----------------

/** Offset in a contiguous tensor of `shape` of the output coordinates with dim `axis` at 0 (let `base`). */
function axisBase(mb: MapBuilder, shape: readonly number[], axis: number): Expr {
  const st = stridesOf(shape).map((s, d) => (d === axis ? 0 : s));
  return mb.let('base', linearOffset(mb.p, 'x', mb.coord(), st));
}

function normAxis(ctx: LowerContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw unsupported(ctx, `axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** ArgMax/ArgMin along `axis` (keepdims either way: the flat output order is the same). */
function lowerArg(ctx: LowerContext, op: 'argmax' | 'argmin'): Lowered {
  const x = need(ctx, 0);
  const t = deviceTypeOrThrow(x.dtype, ctx.node.label);
  if (t === 'bool') throw unsupported(ctx, `dtype ${x.dtype}`);
  const axis = normAxis(ctx, ctx.attrs.int('axis', 0), x.shape.length);
  const keep = x.shape.map((d, k) => (k === axis ? 1 : d));
  if (numel(keep) === 0) return kernels();
  if (x.shape[axis] === 0) throw unsupported(ctx, 'empty reduction axis');
  const mb = new MapBuilder(keep);
  const base = axisBase(mb, x.shape, axis);
  const stride = mb.p.int('ax_st', stridesOf(x.shape)[axis]!);
  const value = loadTyped('x0', x.dtype, add(base, mul(variable('k'), stride)));
  const count = mb.p.int('ax_len', x.shape[axis]!);
  mb.lets.push({ name: 'best', value, loop: { var: 'k', count, op, last: ctx.attrs.int('select_last_index', 0) !== 0 } });
  return kernels(mb.build(ctx, 'y0', ctx.outputs[0]!.dtype, variable('best')));
}

/** Hardmax: 1 at the first maximum along the axis (legacy opsets: along the flattened trailing dims). */
function lowerHardmax(ctx: LowerContext): Lowered {
  const x = need(ctx, 0);
  if (!isDeviceFloat(x.dtype)) throw unsupported(ctx, `dtype ${x.dtype}`);
  const rank = x.shape.length;
  let axis = normAxis(ctx, ctx.attrs.int('axis', -1), rank);
  let shape = x.shape;
  if (ctx.attrs.int('_legacy_axis_2d', 0)) {
    shape = [numel(x.shape.slice(0, axis)), numel(x.shape.slice(axis))];
    axis = 1;
  }
  if (numel(shape) === 0) return kernels();
  const mb = new MapBuilder(shape);
  const base = axisBase(mb, shape, axis);
  const stride = mb.p.int('ax_st', stridesOf(shape)[axis]!);
  const value = loadTyped('x0', x.dtype, add(base, mul(variable('k'), stride)));
  mb.lets.push({ name: 'best', value, loop: { var: 'k', count: mb.p.int('ax_len', shape[axis]!), op: 'argmax' } });
  const y = select(cmp('==', mb.coord()[axis]!, variable('best')), f32(1), f32(0));
  return kernels(mb.build(ctx, 'y0', ctx.outputs[0]!.dtype, y));
}

/** CumSum along the axis input: each output element folds its prefix (or suffix) in a loop. */
function lowerCumSum(ctx: LowerContext): Lowered {
  const x = need(ctx, 0);
  const t = deviceTypeOrThrow(x.dtype, ctx.node.label);
  if (t === 'bool') throw unsupported(ctx, `dtype ${x.dtype}`);
  const ax = hostInts(ctx, 1);
  if (!ax || ax.length !== 1) throw unsupported(ctx, 'axis must be a scalar');
  const axis = normAxis(ctx, ax[0]!, x.shape.length);
  if (numel(x.shape) === 0) return kernels();
  const exclusive = ctx.attrs.int('exclusive', 0) !== 0;
  const reverse = ctx.attrs.int('reverse', 0) !== 0;
  const mb = new MapBuilder(x.shape);
  const base = axisBase(mb, x.shape, axis);
  const stride = mb.p.int('ax_st', stridesOf(x.shape)[axis]!);
  const L = mb.p.int('ax_len', x.shape[axis]!);
  const c = mb.coord()[axis]!;
  const k = variable('k');
  // Forward: j = k over [0, c (+1)); reverse: j = L-1-k over [0, L-c (-1)).
  const j = reverse ? sub(sub(L, i32(1)), k) : k;
  let count = reverse ? sub(L, c) : c;
  if (reverse === exclusive) count = reverse ? sub(count, i32(1)) : add(count, i32(1));
  const value = loadTyped('x0', x.dtype, add(base, mul(j, stride)));
  mb.lets.push({ name: 'acc', value, loop: { var: 'k', count, op: 'sum' } });
  return kernels(mb.build(ctx, 'y0', ctx.outputs[0]!.dtype, variable('acc', t)));
}

reduceLowerings.push(
  { op: 'ArgMax', family: 'reduce', lower: (ctx) => lowerArg(ctx, 'argmax') },
  { op: 'ArgMin', family: 'reduce', lower: (ctx) => lowerArg(ctx, 'argmin') },
  { op: 'Hardmax', family: 'normalization', lower: lowerHardmax },
  { op: 'CumSum', family: 'shape', hostInputs: [1], lower: lowerCumSum },
);
