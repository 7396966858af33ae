/**
 * Lowering rows of the elementwise family: every unary, binary, comparison, logical op, Where,
 * Cast, Clip — each one broadcast `map` kernel whose value is an expression tree. Integer tensors
 * (int32, int64 narrowed to i32) use the same trees with i32 constants.
 */
import type { Attrs } from '../../ir/attrs.js';
import { dtypeFromOnnx } from '../../ir/dtype.js';
import {
  type Expr, type ScalarType, add, bin, cast, cmp, constOf, div, f32, max, min, mul, select, sub, un,
} from '../expr.js';
import { type LowerContext, type LowerRow, type Lowered, hostInts, kernels, need, unsupported } from './index.js';
import { flatIndex, isDeviceFloat, loadTyped } from '../index-map.js';
import { MapBuilder, broadcastMap } from './map.js';

const c = (x: Expr, v: number): Expr => constOf(x.t, v);
const exp = (x: Expr): Expr => un('exp', x);

/** A unary row: `f(x, attrs)`; `floatOnly` rows refuse integer inputs. */
function unary(op: string, f: (x: Expr, a: Attrs, ctx: LowerContext) => Expr, floatOnly = true): LowerRow {
  return {
    op,
    family: 'elementwise',
    lower: (ctx) => {
      if (floatOnly && !isDeviceFloat(need(ctx, 0).dtype)) throw unsupported(ctx, `dtype ${need(ctx, 0).dtype}`);
      return broadcastMap(ctx, (xs) => f(xs[0]!, ctx.attrs, ctx));
    },
  };
}

const math = (op: string, u: Parameters<typeof un>[0]): LowerRow => unary(op, (x) => un(u, x));

function gelu(x: Expr, a: Attrs): Expr {
  if (a.string('approximate', 'none') === 'tanh') {
    const inner = mul(f32(Math.sqrt(2 / Math.PI)), add(x, mul(f32(0.044715), mul(x, mul(x, x)))));
    return mul(mul(f32(0.5), x), add(f32(1), un('tanh', inner)));
  }
  return mul(mul(f32(0.5), x), add(f32(1), un('erf', mul(x, f32(Math.SQRT1_2)))));
}

const unaryRows: LowerRow[] = [
  math('Exp', 'exp'), math('Log', 'log'), math('Sqrt', 'sqrt'), math('Sin', 'sin'), math('Cos', 'cos'), math('Tan', 'tan'),
  math('Asin', 'asin'), math('Acos', 'acos'), math('Atan', 'atan'), math('Sinh', 'sinh'), math('Cosh', 'cosh'),
  math('Asinh', 'asinh'), math('Acosh', 'acosh'), math('Atanh', 'atanh'), math('Floor', 'floor'), math('Ceil', 'ceil'),
  math('Round', 'round'), math('Erf', 'erf'),
  // tanh(x) = 1 - 2 / (exp(2x) + 1): exact at ±inf where some drivers' tanh returns NaN.
  unary('Tanh', (x) => sub(f32(1), div(f32(2), add(exp(mul(f32(2), x)), f32(1))))),
  unary('Abs', (x) => un('abs', x), false),
  unary('Neg', (x) => un('neg', x), false),
  unary('Sign', (x) => un('sign', x), false),
  unary('Reciprocal', (x) => div(f32(1), x)),
  unary('Relu', (x) => max(x, c(x, 0)), false),
  unary('Sigmoid', (x) => div(f32(1), add(f32(1), exp(un('neg', x))))),
  unary('Softplus', (x) => select(cmp('>', x, f32(20)), x, un('log', add(f32(1), exp(x))))),
  unary('Softsign', (x) => div(x, add(f32(1), un('abs', x)))),
  unary('Elu', (x, a) => select(cmp('<', x, f32(0)), mul(f32(a.float('alpha', 1)), sub(exp(x), f32(1))), x)),
  unary('Celu', (x, a) => {
    const al = f32(a.float('alpha', 1));
    return add(max(x, f32(0)), min(f32(0), mul(al, sub(exp(div(x, al)), f32(1)))));
  }),
  unary('Selu', (x, a) => {
    const alpha = a.float('alpha', 1.67326319217681884765625);
    const gamma = a.float('gamma', 1.05070102214813232421875);
    return select(cmp('>', x, f32(0)), mul(f32(gamma), x), mul(f32(gamma), sub(mul(f32(alpha), exp(x)), f32(alpha))));
  }),
  unary('LeakyRelu', (x, a) => select(cmp('<', x, f32(0)), mul(f32(a.float('alpha', 0.01)), x), x)),
  unary('HardSigmoid', (x, a) => max(f32(0), min(f32(1), add(mul(f32(a.float('alpha', 0.2)), x), f32(a.float('beta', 0.5)))))),
  unary('HardSwish', (x) => mul(x, max(f32(0), min(f32(1), add(mul(f32(1 / 6), x), f32(0.5)))))),
  unary('ThresholdedRelu', (x, a) => select(cmp('>', x, f32(a.float('alpha', 1))), x, f32(0))),
  unary('Shrink', (x, a) => {
    const bias = a.float('bias', 0);
    const l = a.float('lambd', 0.5);
    return select(cmp('<', x, c(x, -l)), add(x, c(x, bias)), select(cmp('>', x, c(x, l)), sub(x, c(x, bias)), c(x, 0)));
  }, false),
  unary('Gelu', gelu),
  unary('IsNaN', (x) => un('isnan', x)),
  unary('IsInf', (x, a) => {
    const pos = a.int('detect_positive', 1) !== 0;
    const neg = a.int('detect_negative', 1) !== 0;
    const inf = un('isinf', x);
    if (pos && neg) return inf;
    if (!pos && !neg) return constOf('bool', 0);
    return bin('&&', inf, cmp(pos ? '>' : '<', x, f32(0)));
  }),
  unary('Not', (x) => un('not', x), false),
];

// ---- binary and variadic ------------------------------------------------------------------

/** Python-style modulo (sign of the divisor) for integers. */
function pyMod(a: Expr, b: Expr): Expr {
  const r = bin('%', a, b);
  const fix = bin('&&', cmp('!=', r, c(r, 0)), cmp('!=', cmp('<', r, c(r, 0)), cmp('<', b, c(b, 0))));
  return select(fix, add(r, b), r);
}

function powOf(x: Expr, y: Expr): Expr {
  if (x.t === 'f32') return bin('pow', x, cast(y, 'f32'));
  return cast(un('round', bin('pow', cast(x, 'f32'), cast(y, 'f32'))), x.t);
}

function binary(op: string, f: (a: Expr, b: Expr, ctx: LowerContext) => Expr, types?: ScalarType[]): LowerRow {
  return {
    op,
    family: 'elementwise',
    lower: (ctx) =>
      broadcastMap(ctx, (xs) => {
        if (types && !types.includes(xs[0]!.t)) throw unsupported(ctx, `dtype ${need(ctx, 0).dtype}`);
        return f(xs[0]!, xs[1]!, ctx);
      }),
  };
}

function variadic(op: string, f: (a: Expr, b: Expr) => Expr, finish?: (acc: Expr, n: number) => Expr): LowerRow {
  return {
    op,
    family: 'elementwise',
    lower: (ctx): Lowered =>
      broadcastMap(ctx, (xs) => {
        const present = xs.filter((x): x is Expr => x !== undefined);
        const acc = present.slice(1).reduce(f, present[0]!);
        return finish ? finish(acc, present.length) : acc;
      }),
  };
}

const NUM: ScalarType[] = ['f32', 'i32'];

const binaryRows: LowerRow[] = [
  binary('Add', add, NUM), binary('Sub', sub, NUM), binary('Mul', mul, NUM), binary('Div', div, NUM),
  binary('Pow', powOf, NUM),
  binary('Mod', (a, b, ctx) => (ctx.attrs.int('fmod', 0) || a.t === 'f32' ? bin('%', a, b) : pyMod(a, b)), NUM),
  binary('PRelu', (x, s) => select(cmp('<', x, c(x, 0)), mul(x, s), x), NUM),
  binary('And', (a, b) => bin('&&', a, b), ['bool']),
  binary('Or', (a, b) => bin('||', a, b), ['bool']),
  binary('Xor', (a, b) => bin('^', a, b), ['bool']),
  binary('Equal', (a, b) => cmp('==', a, b)),
  binary('Greater', (a, b) => cmp('>', a, b), NUM),
  binary('GreaterOrEqual', (a, b) => cmp('>=', a, b), NUM),
  binary('Less', (a, b) => cmp('<', a, b), NUM),
  binary('LessOrEqual', (a, b) => cmp('<=', a, b), NUM),
  variadic('Sum', add),
  variadic('Max', max),
  variadic('Min', min),
  variadic('Mean', add, (acc, n) => div(acc, c(acc, n))),
  {
    op: 'Where',
    family: 'elementwise',
    lower: (ctx) => broadcastMap(ctx, (xs) => select(xs[0]!, xs[1]!, xs[2]!)),
  },
  {
    op: 'Clip',
    family: 'elementwise',
    lower: (ctx) =>
      broadcastMap(ctx, (xs) => {
        let v = xs[0]!;
        if (xs[1]) v = max(v, xs[1]);
        if (xs[2]) v = min(v, xs[2]);
        return v;
      }),
  },
  {
    op: 'Cast',
    family: 'elementwise',
    lower: (ctx) => {
      const to = dtypeFromOnnx(ctx.attrs.int('to'));
      if (to !== ctx.outputs[0]!.dtype) throw unsupported(ctx, `cast to ${to}`);
      // The store casts to the output type: float → int truncates, → bool is x != 0.
      return broadcastMap(ctx, (xs) => xs[0]!);
    },
  },
  {
    op: 'CastLike',
    family: 'elementwise',
    lower: (ctx) => broadcastMap(ctx, (xs) => xs[0]!),
  },
];

export const elementwiseLowerings: LowerRow[] = [
  ...unaryRows,
  ...binaryRows,
  { op: 'Identity', family: 'elementwise', lower: () => ({ kind: 'view', input: 0 }) },
  {
    op: 'Dropout',
    family: 'elementwise',
    hostInputs: [1, 2],
    lower: (ctx) => {
      // Training mode draws the CPU op's host RNG: only ratio 0 (the identity) is lowered.
      if (hostInts(ctx, 2)?.[0] && (hostInts(ctx, 1)?.[0] ?? 0.5) !== 0) throw unsupported(ctx, 'training mode with ratio > 0');
      if (!ctx.node.outputs[1]?.name) return { kind: 'view', input: 0 };
      // Mask requested: y = x, mask = all true.
      const x = need(ctx, 0);
      const mb = new MapBuilder(ctx.outputs[0]!.shape);
      const mask = { buf: 'y1', index: flatIndex(), value: constOf('bool', 1) };
      return kernels(mb.build(ctx, 'y0', x.dtype, loadTyped('x0', x.dtype, flatIndex()), undefined, [mask]));
    },
  },
];
