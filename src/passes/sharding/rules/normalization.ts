/**
 * Sharding rules of the normalization family. Every op normalises over some dims and is
 * independent along the others, so each row names its independent dims and where the
 * parameters follow (dimMapCandidates checks sizes):
 *
 *   Softmax/LogSoftmax/Hardmax   every dim but `axis` (legacy `_legacy_axis_2d` form: only the
 *                                dims before `axis`, which flattens the rest into one row)
 *   LayerNorm/RMSNorm            dims before `axis` (Scale/B stay R; Mean/InvStdDev follow X)
 *   BatchNormalization           inference: N and the spatial dims (params R), and C with
 *                                scale/B/mean/var on their dim 0; training: C only (batch
 *                                statistics span N and space), running mean/var S(0)
 *   InstanceNormalization        N (params R), and C with scale/B S(0)
 *   MeanVarianceNormalization    dims not in `axes`
 *   LRN                          every dim but the channel dim 1
 * Normalising over a sharded dim needs a cross-device reduction: no candidate (gathered instead).
 */
import type { RuleContext, ShardingRule } from '../rule.js';
import { type DimChoice, dimMapCandidates, inShape, normAxis } from './common.js';

/** X's dim d on input 0 and on every output; other inputs R. */
const follow = (ctx: RuleContext, d: number, paramDim: number | null = null): DimChoice => ({
  inputs: ctx.inputs.map((_, i) => (i === 0 ? d : paramDim)),
  outputs: ctx.outputs.map(() => d),
});

function independentDims(ctx: RuleContext, keep: (d: number, rank: number) => boolean): DimChoice[] {
  const x = inShape(ctx, 0);
  if (!x) return [];
  const out: DimChoice[] = [];
  for (let d = 0; d < x.length; d++) if (keep(d, x.length)) out.push(follow(ctx, d));
  return out;
}

function softmaxRule(op: string): ShardingRule {
  return {
    op,
    candidates(ctx) {
      const legacy = ctx.attrs.int('_legacy_axis_2d', 0) === 1;
      const x = inShape(ctx, 0);
      if (!x) return [];
      const raw = ctx.attrs.int('axis', legacy ? 1 : -1);
      const axis = raw < 0 ? raw + x.length : raw;
      if (axis < 0 || axis > x.length) return [];
      return dimMapCandidates(ctx, independentDims(ctx, (d) => (legacy ? d < axis : d !== axis)));
    },
  };
}

function lastAxesNormRule(op: string): ShardingRule {
  return {
    op,
    candidates(ctx) {
      const x = inShape(ctx, 0);
      if (!x) return [];
      const axis = normAxis(ctx.attrs.int('axis', -1), x.length);
      if (axis === undefined) return [];
      return dimMapCandidates(ctx, independentDims(ctx, (d) => d < axis));
    },
  };
}

const batchNorm: ShardingRule = {
  op: 'BatchNormalization',
  candidates(ctx) {
    const x = inShape(ctx, 0);
    if (!x || x.length < 2) return [];
    const training = ctx.attrs.int('training_mode', 0) === 1;
    const channel: DimChoice = { inputs: ctx.inputs.map((_, i) => (i === 0 ? 1 : 0)), outputs: ctx.outputs.map((_, i) => (i === 0 ? 1 : 0)) };
    const choices = training ? [channel] : [follow(ctx, 0), channel, ...x.slice(2).map((_, j) => follow(ctx, j + 2))];
    return dimMapCandidates(ctx, choices);
  },
};

const instanceNorm: ShardingRule = {
  op: 'InstanceNormalization',
  candidates(ctx) {
    const x = inShape(ctx, 0);
    if (!x || x.length < 2) return [];
    return dimMapCandidates(ctx, [follow(ctx, 0), follow(ctx, 1, 0)]);
  },
};

const mvn: ShardingRule = {
  op: 'MeanVarianceNormalization',
  candidates(ctx) {
    const x = inShape(ctx, 0);
    if (!x) return [];
    const axes = ctx.attrs.ints('axes', [0, 2, 3]).map((a) => normAxis(a, x.length));
    if (axes.some((a) => a === undefined)) return [];
    return dimMapCandidates(ctx, independentDims(ctx, (d) => !axes.includes(d)));
  },
};

const lrn: ShardingRule = {
  op: 'LRN',
  candidates: (ctx) => dimMapCandidates(ctx, independentDims(ctx, (d) => d !== 1)),
};

export const normalizationRules: ShardingRule[] = [
  softmaxRule('Softmax'),
  softmaxRule('LogSoftmax'),
  softmaxRule('Hardmax'),
  lastAxesNormRule('LayerNormalization'),
  lastAxesNormRule('RMSNormalization'),
  batchNorm,
  instanceNorm,
  mvn,
  lrn,
];
