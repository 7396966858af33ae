/**
 * Sharding rules of the elementwise family (every row of src/ir/ops/elementwise*.ts), written as
 * a table of op → algebraic properties; each property is one shared candidate generator:
 *
 *   pointwise      a shard of output dim d shards every operand on its broadcast-aligned dim
 *                  (an operand that lacks the dim or broadcasts it, size 1, stays R)
 *   additive       all operands P(sum) → P(sum)          (Add, Sub, Sum, Mean)
 *   scaled         one operand P(sum), the others R → P(sum) (Mul by either operand, Div numerator)
 *   linear         unary: P(sum) → P(sum)                (Neg, Identity, widening float casts)
 *   monotone       non-decreasing in input 0 (others R): P(max) → P(max), P(min) → P(min)
 *   antitone       non-increasing: P(max) → P(min), P(min) → P(max) (Neg)
 *   selects        Max: any one operand or all P(max), the rest R → P(max) (Min: min)
 *   shifts         Add/Sub of a P(max|min) operand and an R one keeps the order (Sub's subtrahend flips it)
 *   branches       Where(R, P, P) → P (sum, max and min alike: Where picks per element)
 *
 * Max/min partials are offered for float dtypes only (integer arithmetic wraps, so shifting or
 * negating a lowered value may not keep the order). Monotone ops whose domain is restricted
 * (Sqrt, Log, Acosh, ...) are left out: a device's lowered value may leave the domain.
 */
import { isFloat } from '../../../ir/dtype.js';
import type { Candidate, RuleContext, ShardingRule } from '../rule.js';
import { R, type ReduceKind, broadcastShardCandidates, isFloatInput, partialCandidate } from './common.js';

type Property = (ctx: RuleContext) => Candidate[];

const allInputs = (ctx: RuleContext): number[] => ctx.inputs.flatMap((t, i) => (t ? [i] : []));
const floatsOnly = (ctx: RuleContext): boolean => allInputs(ctx).every((i) => isFloatInput(ctx, i)) && ctx.outputs.every((o) => isFloat(o.dtype));

const pointwise: Property = (ctx) => broadcastShardCandidates(ctx, allInputs(ctx), ctx.outputs.length);

/** Pointwise on input 0 only (the other inputs are parameters that must stay R). */
const pointwiseFirst: Property = (ctx) => broadcastShardCandidates(ctx, [0], ctx.outputs.length);

const additive: Property = (ctx) => [partialCandidate(ctx, allInputs(ctx), 'sum')];

const additiveFloat: Property = (ctx) => (floatsOnly(ctx) ? additive(ctx) : []);

const scaledBy =
  (which: readonly number[], floatOnly: boolean): Property =>
  (ctx) =>
    floatOnly && !floatsOnly(ctx) ? [] : which.filter((i) => ctx.inputs[i]).map((i) => partialCandidate(ctx, [i], 'sum'));

const linear: Property = (ctx) => [partialCandidate(ctx, [0], 'sum')];

const monotoneIf =
  (when: (ctx: RuleContext) => boolean): Property =>
  (ctx) =>
    floatsOnly(ctx) && when(ctx) ? [partialCandidate(ctx, [0], 'max'), partialCandidate(ctx, [0], 'min')] : [];

const monotone: Property = monotoneIf(() => true);

const antitone: Property = (ctx) => (floatsOnly(ctx) ? [partialCandidate(ctx, [0], 'max', 'min'), partialCandidate(ctx, [0], 'min', 'max')] : []);

const selects =
  (reduce: ReduceKind): Property =>
  (ctx) => {
    if (!floatsOnly(ctx)) return [];
    const ins = allInputs(ctx);
    const out = ins.map((i) => partialCandidate(ctx, [i], reduce));
    if (ins.length > 1) out.push(partialCandidate(ctx, ins, reduce));
    return out;
  };

/** Add(P(max), R), Add(R, P(max)), Sub(P(max), R) keep the order; Sub(R, P(max)) reverses it. */
const shifts =
  (subtract: boolean): Property =>
  (ctx) => {
    if (!floatsOnly(ctx) || ctx.inputs.length !== 2) return [];
    const out: Candidate[] = [];
    for (const r of ['max', 'min'] as const) {
      const flipped = r === 'max' ? 'min' : 'max';
      out.push(partialCandidate(ctx, [0], r));
      out.push(partialCandidate(ctx, [1], r, subtract ? flipped : r));
    }
    return out;
  };

const branches: Property = (ctx) => {
  const out: Candidate[] = [partialCandidate(ctx, [1, 2], 'sum')];
  if (isFloatInput(ctx, 1) && isFloatInput(ctx, 2))
    out.push(partialCandidate(ctx, [1, 2], 'max'), partialCandidate(ctx, [1, 2], 'min'));
  return out;
};

/** Cast to float32/float64 from a float: P(sum) passes (the addends are converted exactly or nearly). */
const widening: Property = (ctx) => {
  const from = ctx.inputs[0]?.dtype;
  const to = ctx.outputs[0]?.dtype;
  return from && to && isFloat(from) && (to === 'float32' || to === 'float64') ? [partialCandidate(ctx, [0], 'sum')] : [];
};

/** Float → float casts round monotonically. */
const monotoneCast: Property = monotoneIf((ctx) => isFloat(ctx.outputs[0]!.dtype));

/** Dropout is the identity unless training_mode (input 2) may be true. */
const inference = (ctx: RuleContext): boolean => {
  if (!ctx.inputs[2]) return true;
  const t = ctx.constant(2);
  return t !== undefined && t.data[0] === 0;
};
const dropout: Property = (ctx) => {
  if (!inference(ctx)) return [];
  const out = pointwiseFirst(ctx);
  for (const c of [...linear(ctx), ...monotone(ctx)]) out.push({ inputs: c.inputs, outputs: ctx.outputs.map((_, i) => (i === 0 ? c.outputs[0]! : R)) });
  return out;
};

const attrAtLeast = (name: string, def: number, min: number) => (ctx: RuleContext) => ctx.attrs.float(name, def) >= min;

/** Pure shard pass-through: every operand broadcast-aligned, no partial. */
const SHARD_ONLY = [
  'Abs', 'Acos', 'Acosh', 'Asin', 'Atanh', 'Cos', 'Cosh', 'Gelu', 'HardSwish', 'IsInf', 'IsNaN', 'Log', 'Not',
  'Reciprocal', 'Sin', 'Sqrt', 'Tan', 'And', 'Or', 'Xor', 'BitShift', 'Equal', 'Greater', 'GreaterOrEqual', 'Less',
  'LessOrEqual', 'Mod', 'Pow', 'PRelu',
];

/** Non-decreasing on the whole real line. */
const MONOTONE = ['Relu', 'Sigmoid', 'Exp', 'Tanh', 'Erf', 'Floor', 'Ceil', 'Round', 'Sign', 'Atan', 'Asinh', 'Sinh', 'Softplus', 'Softsign'];

const TABLE: [op: string, props: Property[]][] = [
  ...SHARD_ONLY.map((op): [string, Property[]] => [op, [pointwise]]),
  ...MONOTONE.map((op): [string, Property[]] => [op, [pointwise, monotone]]),
  // Non-decreasing for the attribute values checked.
  ['LeakyRelu', [pointwise, monotoneIf(attrAtLeast('alpha', 0.01, 0))]],
  ['Elu', [pointwise, monotoneIf(attrAtLeast('alpha', 1, 0))]],
  ['Celu', [pointwise, monotoneIf(attrAtLeast('alpha', 1, Number.MIN_VALUE))]],
  ['Selu', [pointwise, monotoneIf((c) => attrAtLeast('alpha', 1.67326, 0)(c) && attrAtLeast('gamma', 1.0507, 0)(c))]],
  ['HardSigmoid', [pointwise, monotoneIf(attrAtLeast('alpha', 0.2, 0))]],
  ['ThresholdedRelu', [pointwise, monotoneIf(attrAtLeast('alpha', 1, 0))]],
  ['Shrink', [pointwise, monotoneIf((c) => c.attrs.float('lambd', 0.5) >= 0 && c.attrs.float('bias', 0) <= c.attrs.float('lambd', 0.5))]],
  ['Clip', [pointwiseFirst, monotone]],
  ['Neg', [pointwise, linear, antitone]],
  ['Identity', [pointwise, linear, monotone]],
  ['Cast', [pointwise, widening, monotoneCast]],
  ['CastLike', [pointwiseFirst, widening, monotoneCast]],
  ['Dropout', [dropout]],
  ['Add', [pointwise, additive, shifts(false)]],
  ['Sub', [pointwise, additive, shifts(true)]],
  ['Sum', [pointwise, additive]],
  ['Mean', [pointwise, additiveFloat]],
  ['Mul', [pointwise, scaledBy([0, 1], false)]],
  ['Div', [pointwise, scaledBy([0], true)]],
  ['Max', [pointwise, selects('max')]],
  ['Min', [pointwise, selects('min')]],
  ['Where', [pointwise, branches]],
];

export const elementwiseRules: ShardingRule[] = TABLE.map(([op, props]) => ({
  op,
  candidates: (ctx: RuleContext) => props.flatMap((p) => p(ctx)),
}));
