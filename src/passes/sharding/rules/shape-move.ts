/**
 * Sharding rules of the ops that move elements: Transpose, Concat, Split, Slice, Tile, Pad,
 * DepthToSpace, SpaceToDepth. A dim the op does not touch shards straight through; all of these
 * are linear in their data input(s), so P(sum) passes through (Pad only when it pads with 0).
 */
import { clampSlice } from '../../../ir/ops/shape-move.js';
import type { Candidate, RuleContext, ShardingRule } from '../rule.js';
import { P, S, axisIn, constInts, passDim, passDims, passPartial, shapeOf, shardable } from './shape-dims.js';

/** Identity dim map of a rank-r tensor with the dims in `touched` removed. */
function untouched(rank: number, touched: ReadonlySet<number>): (number | undefined)[] {
  return Array.from({ length: rank }, (_, d) => (touched.has(d) ? undefined : d));
}

const transpose: ShardingRule = {
  op: 'Transpose',
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    if (!x) return [];
    const perm = ctx.attrs.maybeInts('perm') ?? x.map((_, i) => x.length - 1 - i);
    const map: (number | undefined)[] = new Array(x.length);
    perm.forEach((p, j) => (map[p] = j));
    return passDims(ctx, map, true);
  },
};

/** Concat: every input sharded on the same non-concat dim; all partial gives partial. */
const concat: ShardingRule = {
  op: 'Concat',
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    if (!x) return [];
    const axis = axisIn(ctx.attrs.int('axis'), x.length);
    const out: Candidate[] = [];
    for (let d = 0; d < x.length; d++)
      if (d !== axis && shardable(x[d]!, ctx.axisSize)) out.push({ inputs: ctx.inputs.map(() => S(d)), outputs: [S(d)] });
    out.push({ inputs: ctx.inputs.map(() => P), outputs: [P] });
    return out;
  },
};

/** Split: the data sharded on a non-split dim; the split sizes are along the split dim, so stay global. */
const split: ShardingRule = {
  op: 'Split',
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    if (!x) return [];
    const axis = axisIn(ctx.attrs.int('axis', 0), x.length);
    return passDims(ctx, untouched(x.length, new Set([axis ?? -1])), true);
  },
};

/**
 * Slice: dims the slice does not touch (not listed, or listed with the full range and step 1)
 * shard through. On a device, a full-range entry still selects everything: starts clamp to 0 and
 * ends to the local size, so the inputs need no rewrite.
 */
const slice: ShardingRule = {
  op: 'Slice',
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    const starts = constInts(ctx, 1);
    const ends = constInts(ctx, 2);
    const axes = ctx.inputs[3] ? constInts(ctx, 3) : undefined;
    const steps = ctx.inputs[4] ? constInts(ctx, 4) : undefined;
    if (!x || !starts || !ends || (ctx.inputs[3] && !axes) || (ctx.inputs[4] && !steps)) return [];
    const touched = new Set<number>();
    starts.forEach((s, i) => {
      const a = axisIn(axes ? axes[i]! : i, x.length) ?? -1;
      const step = steps ? steps[i]! : 1;
      const [start, len] = a >= 0 ? clampSlice(x[a]!, s, ends[i]!, step) : [0, 0];
      // Full range with step 1: start clamps to 0 and end is >= the size, on every device too.
      if (a < 0 || step !== 1 || start !== 0 || len !== x[a]) touched.add(a);
    });
    return passDims(ctx, untouched(x.length, touched), true);
  },
};

/** Tile: dims repeated once shard through. */
const tile: ShardingRule = {
  op: 'Tile',
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    const repeats = constInts(ctx, 1);
    if (!x || !repeats) return [];
    return passDims(
      ctx,
      x.map((_, d) => (repeats[d] === 1 ? d : undefined)),
      true,
    );
  },
};

/** Pad: dims with no padding shard through; P passes where the padding is 0 or copies elements. */
const pad: ShardingRule = {
  op: 'Pad',
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    const pads = constInts(ctx, 1);
    const axes = ctx.inputs[3] ? constInts(ctx, 3) : undefined;
    if (!x || !pads || (ctx.inputs[3] && !axes)) return [];
    const listed = axes ? axes.map((a) => axisIn(a, x.length) ?? -1) : x.map((_, i) => i);
    const padded = new Set<number>();
    listed.forEach((a, i) => {
      if (pads[i] !== 0 || pads[i + listed.length] !== 0) padded.add(a);
    });
    const mode = ctx.attrs.string('mode', 'constant');
    const cv = ctx.inputs[2] ? ctx.constant(2) : undefined;
    const zeroFill = mode !== 'constant' || !ctx.inputs[2] || (cv !== undefined && (cv.size === 0 || cv.data[0] === 0));
    return passDims(ctx, untouched(x.length, padded), zeroFill);
  },
};

/**
 * DepthToSpace: the batch shards through; rows/columns h map to output rows h·b..h·b+b-1 (in
 * S(2) → out S(2:b)); in CRD mode output channel c comes from input channels c·b²..: S(1:b²) → S(1).
 */
const depthToSpace: ShardingRule = {
  op: 'DepthToSpace',
  candidates(ctx) {
    const x = shapeOf(ctx, 0);
    if (!x || x.length !== 4) return [];
    const b = ctx.attrs.int('blocksize');
    const out: Candidate[] = [];
    if (shardable(x[0]!, ctx.axisSize)) out.push(passDim(ctx, 0, 0));
    if (ctx.attrs.string('mode', 'DCR') === 'CRD' && shardable(x[1]!, ctx.axisSize, b * b)) out.push(passDim(ctx, 1, 1, b * b, 1));
    for (const d of [2, 3]) if (shardable(x[d]!, ctx.axisSize)) out.push(passDim(ctx, d, d, 1, b));
    out.push(passPartial(ctx));
    return out;
  },
};

/** SpaceToDepth: batch, and input rows/columns in blocks of b onto output rows/columns. */
const spaceToDepth: ShardingRule = {
  op: 'SpaceToDepth',
  candidates(ctx: RuleContext) {
    const x = shapeOf(ctx, 0);
    if (!x || x.length !== 4) return [];
    const b = ctx.attrs.int('blocksize');
    const out: Candidate[] = [];
    if (shardable(x[0]!, ctx.axisSize)) out.push(passDim(ctx, 0, 0));
    for (const d of [2, 3]) if (shardable(x[d]!, ctx.axisSize, b)) out.push(passDim(ctx, d, d, b, 1));
    out.push(passPartial(ctx));
    return out;
  },
};

export const moveRules: ShardingRule[] = [transpose, concat, split, slice, tile, pad, depthToSpace, spaceToDepth];
