/**
 * Sharding rules of the reduce family, as a table of op → how a reduction over a sharded dim
 * combines and which partial input it passes through:
 *
 *   - a shard of a kept dim passes through (keepdims aware: without keepdims the output dim index
 *     drops by the reduced dims before it);
 *   - a shard of a reduced dim leaves each device a reduction of its block, i.e. a partial of the
 *     `combine` kind: ReduceSum, ReduceL1, ReduceSumSquare → P(sum); ReduceMax → P(max);
 *     ReduceMin → P(min). ReduceMean (float) too, with the local rewrite 'mean-rescale': each
 *     device multiplies its local mean by local count / global count (a Mul inserted after the
 *     node), so the devices' values sum to the global mean also when the shards are uneven. Ops
 *     whose blocks do not combine by sum/max/min (ReduceProd, ReduceL2, ReduceLogSum,
 *     ReduceLogSumExp) offer no such candidate: the propagation gathers their input instead;
 *   - `partialIn`: the op commutes with that partial kind of its input (ReduceSum and ReduceMean
 *     are linear: P(sum) → P(sum); ReduceMax: P(max) → P(max); ReduceMin: P(min) → P(min)).
 * The axes input (latest opset form) must be a compile-time constant, else only R is offered.
 * ArgMax/ArgMin pass shards of the dims they do not reduce.
 */
import { Attrs } from '../../../ir/attrs.js';
import { isFloat } from '../../../ir/dtype.js';
import { Node } from '../../../ir/graph.js';
import { Tensor } from '../../../ir/tensor.js';
import type { Candidate, LocalizeContext, RuleContext, ShardingRule } from '../rule.js';
import { P, R, type ReduceKind, S, constInts, inShape, normAxis, shardable } from './common.js';

interface ReduceRow {
  op: string;
  /** Partial kind of the output when a reduced dim is sharded. */
  combine?: ReduceKind;
  /** Partial kind of the input the op passes through unchanged in kind. */
  partialIn?: ReduceKind;
  /** Partial pass-through only for float dtypes (integer division truncates). */
  floatOnly?: boolean;
  /** The reduced-dim shard needs the 'mean-rescale' local rewrite (float only). */
  rescale?: boolean;
}

const TABLE: ReduceRow[] = [
  { op: 'ReduceSum', combine: 'sum', partialIn: 'sum' },
  { op: 'ReduceSumSquare', combine: 'sum' },
  { op: 'ReduceL1', combine: 'sum' },
  { op: 'ReduceMax', combine: 'max', partialIn: 'max' },
  { op: 'ReduceMin', combine: 'min', partialIn: 'min' },
  { op: 'ReduceMean', combine: 'sum', partialIn: 'sum', floatOnly: true, rescale: true },
  { op: 'ReduceProd' },
  { op: 'ReduceL2' },
  { op: 'ReduceLogSum' },
  { op: 'ReduceLogSumExp' },
];

/** Reduced axes (sorted), 'noop' for an identity reduction, undefined when not known. */
function reducedAxes(ctx: RuleContext, rank: number): number[] | 'noop' | undefined {
  let axes: number[];
  if (ctx.inputs[1]) {
    const c = constInts(ctx, 1);
    if (!c) return undefined;
    axes = c;
  } else axes = ctx.attrs.maybeInts('axes') ?? [];
  if (axes.length === 0) return ctx.attrs.int('noop_with_empty_axes', 0) !== 0 ? 'noop' : Array.from({ length: rank }, (_, i) => i);
  const out: number[] = [];
  for (const a of axes) {
    const n = normAxis(a, rank);
    if (n === undefined) return undefined;
    if (!out.includes(n)) out.push(n);
  }
  return out.sort((x, y) => x - y);
}

/** Output dim of input dim j (j not reduced). */
const keptDim = (j: number, axes: readonly number[], keepdims: boolean): number => (keepdims ? j : j - axes.filter((a) => a < j).length);

function reduceRule(row: ReduceRow): ShardingRule {
  return {
    op: row.op,
    ...(row.rescale ? { localize: localizeMean } : {}),
    candidates(ctx) {
      const x = inShape(ctx, 0);
      if (!x) return [];
      const axes = reducedAxes(ctx, x.length);
      if (axes === undefined) return [];
      const extra = ctx.inputs[1] ? [R] : [];
      const out: Candidate[] = [];
      const float = isFloat(ctx.inputs[0]!.dtype);
      const keepdims = ctx.attrs.int('keepdims', 1) !== 0;
      for (let j = 0; j < x.length; j++) {
        if (!shardable(x[j]!, ctx)) continue;
        if (axes === 'noop') out.push({ inputs: [S(j), ...extra], outputs: [S(j)] });
        else if (!axes.includes(j)) out.push({ inputs: [S(j), ...extra], outputs: [S(keptDim(j, axes, keepdims))] });
        else if (row.combine && !row.rescale) out.push({ inputs: [S(j), ...extra], outputs: [P(row.combine)] });
        else if (row.combine && float) out.push({ inputs: [S(j), ...extra], outputs: [P(row.combine)], local: 'mean-rescale' });
      }
      if (row.partialIn && (float || !row.floatOnly)) out.push({ inputs: [P(row.partialIn), ...extra], outputs: [P(row.partialIn)] });
      return out;
    },
  };
}

/**
 * 'mean-rescale': local mean × (local count / global count) over the reduced dims, as a Mul
 * after the node (nothing to do where this device holds every reduced element).
 */
function localizeMean(ctx: LocalizeContext): void {
  const x = ctx.inputs[0]?.shape;
  const local = ctx.localInputShapes[0];
  if (!x || !local) return;
  const rank = x.length;
  let axes: number[] | 'noop' | undefined;
  if (ctx.node.inputs[1]) {
    const c = ctx.node.inputs[1].constant?.load();
    if (!c) throw new Error(`ReduceMean ${ctx.node.label}: axes are not constant at lowering`);
    axes = c.toArray().map((a) => normAxis(a, rank)!);
    if (axes.length === 0) axes = ctx.node.attrs.int('noop_with_empty_axes', 0) !== 0 ? 'noop' : undefined;
  } else {
    const a = ctx.node.attrs.maybeInts('axes') ?? [];
    axes = a.length ? a.map((v) => normAxis(v, rank)!) : ctx.node.attrs.int('noop_with_empty_axes', 0) !== 0 ? 'noop' : undefined;
  }
  if (axes === 'noop') return;
  const reduced = axes ?? x.map((_, i) => i);
  let globalCount = 1;
  let localCount = 1;
  for (const j of new Set(reduced)) {
    globalCount *= x[j] as number;
    localCount *= local[j]!;
  }
  if (localCount === globalCount) return;
  const out = ctx.node.outputs[0]!;
  const dtype = ctx.outputs[0]!.dtype;
  const partial = ctx.newValue(`${out.name}_local_mean`, dtype, ctx.localOutputShapes[0]!);
  partial.producer = ctx.node;
  ctx.node.outputs[0] = partial;
  const scale = ctx.newConstant(`${out.name}_mean_scale`, Tensor.from(dtype, [], [localCount / globalCount]));
  ctx.insertAfter(new Node('Mul', [partial, scale], [out], new Attrs(), `${ctx.node.name || out.name}_mean_rescale`));
}

function argRule(op: string): ShardingRule {
  return {
    op,
    candidates(ctx) {
      const x = inShape(ctx, 0);
      if (!x) return [];
      const axis = normAxis(ctx.attrs.int('axis', 0), x.length);
      if (axis === undefined) return [];
      const keepdims = ctx.attrs.int('keepdims', 1) !== 0;
      const out: Candidate[] = [];
      for (let j = 0; j < x.length; j++)
        if (j !== axis && shardable(x[j]!, ctx)) out.push({ inputs: [S(j)], outputs: [S(keptDim(j, [axis], keepdims))] });
      return out;
    },
  };
}

export const reduceRules: ShardingRule[] = [...TABLE.map(reduceRule), argRule('ArgMax'), argRule('ArgMin')];
