/**
 * Sharding rules of the conv family (src/ir/ops/conv.ts): Conv, ConvTranspose and the pools.
 * Spatial dims are never sharded here (a window crosses shard borders: that needs halos).
 *
 * Conv(X [N,C,...], W [M,C/g,...], B [M]) → Y [N,M,...]:
 *   batch           X S(0), W R, B R              → Y S(0)
 *   output channels X R, W S(0), B S(0)           → Y S(1)           (g = 1)
 *   input channels  X S(1), W S(1), B P(sum)      → Y P(sum)         (g = 1; a contraction)
 *   groups          X S(1:C/g), W S(0:M/g), B S(0:M/g) → Y S(1:M/g)  (g > 1, whole groups per
 *                   device; depthwise is C/g = 1; localize sets `group` to the local count)
 *   linear          X P, W R, B P → Y P and X R, W P, B P → Y P
 * ConvTranspose(X [N,C,...], W [C,M/g,...], B [M]) the same with W's dims swapped.
 * Pools: batch and channel dims; AveragePool/GlobalAveragePool are linear (P passes). MaxPool with
 * its Indices output has no candidates: the indices are flat offsets into the GLOBAL input.
 */
import type { Candidate, LocalizeContext, RuleContext, ShardingRule } from '../rule.js';
import type { Placement } from '../../../ir/layout.js';
import { P, R, S, passDims, shapeOf, shardable } from './shape-dims.js';

/** Candidates of Conv (transpose = false) or ConvTranspose (true). */
function convCandidates(ctx: RuleContext, transpose: boolean): Candidate[] {
  const x = shapeOf(ctx, 0);
  const w = shapeOf(ctx, 1);
  if (!x || !w || x.length < 3) return [];
  const hasBias = ctx.inputs[2] !== undefined;
  const bias = (p: Placement): Placement | null => (hasBias ? p : null);
  const cand = (xp: Placement, wp: Placement, bp: Placement | null, yp: Placement): Candidate => ({
    inputs: [xp, wp, bp].slice(0, ctx.inputs.length),
    outputs: [yp],
  });
  const g = ctx.attrs.int('group', 1);
  const C = x[1]!;
  // W's output-channel dim and input-channel dim.
  const wOut = transpose ? 1 : 0;
  const wIn = transpose ? 0 : 1;
  const M = transpose ? w[1]! * g : w[0]!;
  const out: Candidate[] = [];
  if (shardable(x[0]!, ctx.axisSize)) out.push(cand(S(0), R, bias(R), S(0)));
  if (g === 1) {
    if (shardable(M, ctx.axisSize)) out.push(cand(R, S(wOut), bias(S(0)), S(1)));
    if (shardable(C, ctx.axisSize)) out.push(cand(S(1), S(wIn), bias(P), P));
  } else if (shardable(g, ctx.axisSize)) {
    const cg = C / g;
    const mg = M / g;
    // W's dim 0 holds whole groups: M/g rows per group for Conv, C/g rows for ConvTranspose.
    out.push(cand(S(1, cg), S(0, transpose ? cg : mg), bias(S(0, mg)), S(1, mg)));
  }
  out.push(cand(P, R, bias(P), P));
  out.push(cand(R, P, bias(P), P));
  return out;
}

/** Grouped sharding: each device runs the groups it holds. */
function localizeGroups(ctx: LocalizeContext): void {
  const g = ctx.node.attrs.int('group', 1);
  if (g === 1) return;
  const C = (ctx.inputs[0]!.shape as number[])[1]!;
  const localC = ctx.localInputShapes[0]![1]!;
  if (localC !== C) ctx.node.attrs.set('group', { kind: 'int', value: (localC * g) / C });
}

const conv: ShardingRule = { op: 'Conv', candidates: (ctx) => convCandidates(ctx, false), localize: localizeGroups };
const convTranspose: ShardingRule = { op: 'ConvTranspose', candidates: (ctx) => convCandidates(ctx, true), localize: localizeGroups };

/** Pools: batch and channel dims shard through; P passes for the averaging pools. */
const pool = (op: string, linear: boolean): ShardingRule => ({
  op,
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    if (!x || x.length < 3 || ctx.outputs.length !== 1) return [];
    return passDims(
      ctx,
      x.map((_, d) => (d < 2 ? d : undefined)),
      linear,
    );
  },
});

export const convRules: ShardingRule[] = [
  conv,
  convTranspose,
  pool('MaxPool', false),
  pool('AveragePool', true),
  pool('GlobalAveragePool', true),
  pool('GlobalMaxPool', false),
];
