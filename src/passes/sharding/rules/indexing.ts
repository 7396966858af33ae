/**
 * Sharding rules of the indexing family (the same family as src/ir/ops/indexing.ts): Gather
 * (indexing-gather.ts, with the masked vocabulary-parallel lookup) and the ops below, which shard
 * on the dims their indexing does not involve (batch-like dims) and pass P(sum) where linear.
 */
import type { Candidate, RuleContext, ShardingRule } from '../rule.js';
import { gatherRules } from './indexing-gather.js';
import { MASKED_GATHER_ELEMENTS, localizeMaskedGatherElements } from './masked-gather-elements.js';
import { P, R, S, axisIn, constInts, passDims, shapeOf, shardable } from './shape-dims.js';

/** Data and indices shapes of the *Elements ops (equal ranks required), with the normalized `axis`. */
function elementsShapes(ctx: RuleContext): { data: number[]; ind: number[]; a: number | undefined } | undefined {
  const data = shapeOf(ctx, 0);
  const ind = shapeOf(ctx, 1);
  if (!data || !ind || data.length !== ind.length) return undefined;
  return { data, ind, a: axisIn(ctx.attrs.int('axis', 0), data.length) };
}

/** Data and indices shapes of the *ND ops, with the indices' rank q and last dim k. */
function ndShapes(ctx: RuleContext): { data: number[]; ind: number[]; q: number; k: number } | undefined {
  const data = shapeOf(ctx, 0);
  const ind = shapeOf(ctx, 1);
  if (!data || !ind || !ind.length) return undefined;
  return { data, ind, q: ind.length, k: ind[ind.length - 1]! };
}

/**
 * GatherElements (out = indices' shape): a non-axis dim shards when data and indices have the same
 * size there (both S(d)); indices may be sharded on the axis dim itself against a replicated data,
 * since the axis coordinate comes from the index values; data sharded on the axis dim itself gives
 * a partial sum by a masked local gather (masked-gather-elements.ts).
 */
const gatherElements: ShardingRule = {
  op: 'GatherElements',
  candidates(ctx) {
    const s = elementsShapes(ctx);
    if (!s) return [];
    const { data, ind, a } = s;
    const out: Candidate[] = [];
    for (let d = 0; d < data.length; d++) {
      if (!shardable(ind[d]!, ctx.axisSize)) continue;
      if (d === a) out.push({ inputs: [R, S(d)], outputs: [S(d)] });
      else if (data[d] === ind[d]) out.push({ inputs: [S(d), S(d)], outputs: [S(d)] });
    }
    if (ctx.inputs[0]!.dtype === 'string') return out;
    if (a !== undefined && shardable(data[a]!, ctx.axisSize)) out.push({ inputs: [S(a), R], outputs: [P], local: MASKED_GATHER_ELEMENTS });
    out.push({ inputs: [P, R], outputs: [P] });
    return out;
  },
  localize(ctx) {
    if ([...ctx.candidates.values()].some((c) => c.local === MASKED_GATHER_ELEMENTS)) localizeMaskedGatherElements(ctx);
  },
};

/**
 * The linear candidate of a scatter, [P, R, P] -> [P]: under reduction none or add the result is
 * linear in (data, updates) together (numeric data only).
 */
function linearScatter(ctx: RuleContext): Candidate[] {
  const reduction = ctx.attrs.string('reduction', 'none');
  return (reduction === 'none' || reduction === 'add') && ctx.inputs[0]!.dtype !== 'string' ? [{ inputs: [P, R, P], outputs: [P] }] : [];
}

/** ScatterElements: non-axis dims where data and indices (and updates) agree shard together. */
const scatterElements: ShardingRule = {
  op: 'ScatterElements',
  candidates(ctx) {
    const s = elementsShapes(ctx);
    if (!s) return [];
    const { data, ind, a } = s;
    const out: Candidate[] = [];
    for (let d = 0; d < data.length; d++)
      if (d !== a && data[d] === ind[d] && shardable(data[d]!, ctx.axisSize)) out.push({ inputs: [S(d), S(d), S(d)], outputs: [S(d)] });
    return [...out, ...linearScatter(ctx)];
  },
};

/**
 * GatherND(batch_dims b; indices' last dim k): out = data[:b] ++ indices[b:q-1] ++ data[b+k:].
 * Batch dims shard data and indices together; the other index dims shard the indices alone; the
 * data dims after the indexed ones shard the data alone.
 */
const gatherND: ShardingRule = {
  op: 'GatherND',
  candidates(ctx) {
    const s = ndShapes(ctx);
    if (!s) return [];
    const { data, ind, q, k } = s;
    const b = ctx.attrs.int('batch_dims', 0);
    const out: Candidate[] = [];
    for (let i = 0; i < b; i++) if (shardable(data[i]!, ctx.axisSize)) out.push({ inputs: [S(i), S(i)], outputs: [S(i)] });
    for (let j = b; j < q - 1; j++) if (shardable(ind[j]!, ctx.axisSize)) out.push({ inputs: [R, S(j)], outputs: [S(j)] });
    for (let d = b + k; d < data.length; d++)
      if (shardable(data[d]!, ctx.axisSize)) out.push({ inputs: [S(d), R], outputs: [S(q - 1 + d - b - k)] });
    if (ctx.inputs[0]!.dtype !== 'string') out.push({ inputs: [P, R], outputs: [P] });
    return out;
  },
};

/** ScatterND (indices' last dim k): data dims d >= k shard with the matching updates dim q-1+d-k. */
const scatterND: ShardingRule = {
  op: 'ScatterND',
  candidates(ctx) {
    const s = ndShapes(ctx);
    if (!s) return [];
    const { data, q, k } = s;
    const out: Candidate[] = [];
    for (let d = k; d < data.length; d++)
      if (shardable(data[d]!, ctx.axisSize)) out.push({ inputs: [S(d), R, S(q - 1 + d - k)], outputs: [S(d)] });
    return [...out, ...linearScatter(ctx)];
  },
};

/** OneHot: the indices' dims shard into the output (around the new one-hot dim). */
const oneHot: ShardingRule = {
  op: 'OneHot',
  candidates(ctx) {
    const ind = shapeOf(ctx, 0);
    if (!ind) return [];
    const a = axisIn(ctx.attrs.int('axis', -1), ind.length + 1);
    if (a === undefined) return [];
    const outDims = ind.map((_, i) => (i < a ? i : i + 1));
    return passDims(ctx, outDims, false);
  },
};

/** Dims other than the op's axis shard straight through (axis from an attribute or a constant input). */
function otherDims(ctx: RuleContext, axis: number | undefined, linear: boolean): Candidate[] {
  const x = shapeOf(ctx, 0);
  if (!x || axis === undefined) return [];
  const a = axisIn(axis, x.length);
  const outDims = x.map((_, d) => (d === a ? undefined : d));
  return passDims(ctx, outDims, linear);
}

/** TopK: values and indices shard on the non-axis dims. Not linear. */
const topK: ShardingRule = { op: 'TopK', candidates: (ctx) => otherDims(ctx, ctx.attrs.int('axis', -1), false) };

/** CumSum: non-axis dims; a running sum is linear, so P passes. */
const cumSum: ShardingRule = { op: 'CumSum', candidates: (ctx) => otherDims(ctx, constInts(ctx, 1)?.[0], ctx.inputs[0]!.dtype !== 'string') };

/** Trilu: the leading (batch) dims; masking is linear, so P passes. */
const trilu: ShardingRule = {
  op: 'Trilu',
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    if (!x || x.length < 2) return [];
    const outDims = x.map((_, d) => (d < x.length - 2 ? d : undefined));
    return passDims(ctx, outDims, true);
  },
};

/** EyeLike makes a constant from its input's shape: folded before sharding, replicated otherwise. */
const eyeLike: ShardingRule = { op: 'EyeLike', candidates: () => [] };

export const indexingRules: ShardingRule[] = [...gatherRules, gatherElements, scatterElements, gatherND, scatterND, oneHot, topK, cumSum, trilu, eyeLike];
