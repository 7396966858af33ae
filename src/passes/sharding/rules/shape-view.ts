/**
 * Sharding rules of the view ops (Reshape, Flatten, Squeeze, Unsqueeze), Expand, and the ops
 * that only produce constants or shape facts (replicate-only rows).
 *
 * Views keep the element order, so a shard maps through them wherever a block of the input is a
 * block of the output: per group of dims with equal products (shape-dims.ts viewGroups), the
 * major input dim maps to the major output dim, with relative units equal to the minor factors
 * ([b,s,h,hd] S(2) → [b,s,h·hd] S(2:hd); [b,s,h·hd] S(2:hd) → [b,s,h,hd] S(2)). Views are
 * linear, so P(sum) passes through.
 */
import { Tensor } from '../../../ir/tensor.js';
import type { Candidate, LocalizeContext, RuleContext, ShardingRule } from '../rule.js';
import { R, S, inputsWith, outShapeOf, passPartial, shapeOf, shardable, viewShardMaps } from './shape-dims.js';

/** Candidates of a view from its static input and output shapes (inputs other than 0 replicated). */
function viewCandidates(ctx: RuleContext): Candidate[] {
  const x = shapeOf(ctx, 0);
  const y = outShapeOf(ctx, 0);
  if (!x || !y) return [];
  const out: Candidate[] = viewShardMaps(x, y, ctx.axisSize).map((m) => ({
    inputs: inputsWith(ctx, R, { 0: S(m.inDim, m.inUnit) }),
    outputs: [S(m.outDim, m.outUnit)],
  }));
  out.push(passPartial(ctx));
  return out;
}

/**
 * Input `i` becomes this device's output shape, spelled out dim by dim (no 0 or -1); allowzero
 * is set when a device holds an empty block, so that a 0 means zero elements.
 */
function localizeShapeInput(ctx: LocalizeContext, i: number, setAllowZero: boolean): void {
  const local = ctx.localOutputShapes[0]!;
  ctx.setConstantInput(i, Tensor.from('int64', [local.length], local));
  if (setAllowZero && local.includes(0)) ctx.node.attrs.set('allowzero', { kind: 'int', value: 1 });
}

const reshape: ShardingRule = {
  op: 'Reshape',
  candidates: viewCandidates,
  localize: (ctx) => localizeShapeInput(ctx, 1, true),
};

const flatten: ShardingRule = { op: 'Flatten', candidates: viewCandidates };
const squeeze: ShardingRule = { op: 'Squeeze', candidates: viewCandidates };
const unsqueeze: ShardingRule = { op: 'Unsqueeze', candidates: viewCandidates };

/**
 * Expand: input dims that are kept (same size in the output) shard into their output dim; output
 * dims that are broadcast (input size 1 or missing) may be sharded from a replicated input, each
 * device expanding to its own block. Linear: P passes. localize writes the local output shape.
 */
const expand: ShardingRule = {
  op: 'Expand',
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    const y = outShapeOf(ctx, 0);
    if (!x || !y) return [];
    const off = y.length - x.length;
    const out: Candidate[] = [];
    for (let d = 0; d < y.length; d++) {
      if (!shardable(y[d]!, ctx.axisSize)) continue;
      const i = d - off;
      const kept = i >= 0 && x[i] === y[d];
      out.push({ inputs: inputsWith(ctx, R, kept ? { 0: S(i) } : {}), outputs: [S(d)] });
    }
    out.push(passPartial(ctx));
    return out;
  },
  localize: (ctx) => localizeShapeInput(ctx, 1, false),
};

/** Ops folded to constants before sharding, or whose output is a fact about a global shape: replicated only. */
const replicateOnly = (op: string): ShardingRule => ({ op, candidates: () => [] });

export const viewRules: ShardingRule[] = [
  reshape,
  flatten,
  squeeze,
  unsqueeze,
  expand,
  // Shape and Size describe the GLOBAL tensor; Constant, ConstantOfShape, Range and EyeLike make
  // tensors from attributes/shapes. All are folded before sharding; if one survives, it runs
  // replicated (R everywhere is implicit).
  replicateOnly('Shape'),
  replicateOnly('Size'),
  replicateOnly('Constant'),
  replicateOnly('ConstantOfShape'),
  replicateOnly('Range'),
];
