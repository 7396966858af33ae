/**
 * Lowering rows of the reduce family: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/
 * SumSquare over any axes, on the row-reduction template (one workgroup per output element,
 * tree reduction). The reduced axes need not be contiguous: the row geometry's index map walks
 * them in place.
 */
import { type Expr, cast, div, mul, un, variable } from '../expr.js';
import { Params, deviceTypeOrThrow, loadTyped } from '../index-map.js';
import type { ReduceBody, ReduceOp } from '../kernel.js';
import { type LowerContext, type LowerRow, type Lowered, hostInts, kernels, launch, need, unsupported } from './index.js';
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
