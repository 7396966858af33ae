/**
 * Dim bookkeeping shared by the shape, indexing and conv rule tables: static shapes and constant
 * ints out of a RuleContext, the "is this dim worth sharding" test, and the dim correspondence of
 * a view (Reshape / Flatten / Squeeze / Unsqueeze) between its input and output shapes.
 */
import type { Dim } from '../../../ir/shape.js';
import { normAxis } from '../../../ir/shape.js';
import { Partial, type Placement, Replicate, Shard } from '../../../ir/layout.js';
import type { Candidate, RuleContext } from '../rule.js';

export const R: Placement = Replicate;
export const P: Placement = Partial('sum');
export const S = (dim: number, unit = 1): Placement => Shard(dim, unit);

/** Input i's static shape (sharding runs on static shapes), or undefined when absent or not static. */
export function shapeOf(ctx: RuleContext, i: number): number[] | undefined {
  const s = ctx.inputs[i]?.shape;
  return s && isStaticShape(s) ? (s as number[]) : undefined;
}

/** Output i's static shape, or undefined. */
export function outShapeOf(ctx: RuleContext, i = 0): number[] | undefined {
  const s = ctx.outputs[i]?.shape;
  return s && isStaticShape(s) ? (s as number[]) : undefined;
}

const isStaticShape = (s: readonly Dim[]): boolean => s.every((d) => typeof d === 'number');

/** A constant integer input as numbers; undefined when absent or not a compile-time constant. */
export function constInts(ctx: RuleContext, i: number): number[] | undefined {
  if (!ctx.inputs[i]) return undefined;
  const t = ctx.constant(i);
  return t ? Array.from(t.data as ArrayLike<number>) : undefined;
}

/** Normalised axis, or undefined when out of range (the op's own infer reports bad axes). */
export const axisIn = (axis: number, rank: number): number | undefined => normAxis(axis, rank);

/**
 * Whether a dim of `size` elements is worth splitting over the axis in blocks of `unit`: whole
 * blocks only, and at least one block per device (smaller dims are left replicated).
 */
export const shardable = (size: number, axisSize: number, unit = 1): boolean =>
  unit > 0 && size % unit === 0 && size / unit >= axisSize;

/** Placements of every input: `fill` for present inputs, null for absent ones, then overrides. */
export function inputsWith(ctx: RuleContext, fill: Placement, set: Record<number, Placement> = {}): (Placement | null)[] {
  return ctx.inputs.map((t, i) => (t === undefined ? null : (set[i] ?? fill)));
}

/** One candidate that shards `inDim` of input 0 (others replicated) into `outDim` of every output. */
export function passDim(ctx: RuleContext, inDim: number, outDim: number, inUnit = 1, outUnit = 1): Candidate {
  return { inputs: inputsWith(ctx, R, { 0: S(inDim, inUnit) }), outputs: ctx.outputs.map(() => S(outDim, outUnit)) };
}

/** P(sum) on input 0 (others replicated) gives P(sum) on every output: ops linear in input 0. */
export function passPartial(ctx: RuleContext): Candidate {
  return { inputs: inputsWith(ctx, R, { 0: P }), outputs: ctx.outputs.map(() => P) };
}

/**
 * Candidates of an op whose output dim `map[d]` is input dim d unchanged (undefined = the dim is
 * consumed or changed), for input 0 with the other inputs replicated; plus P(sum) when linear.
 */
export function passDims(ctx: RuleContext, map: readonly (number | undefined)[], linear: boolean): Candidate[] {
  const x = shapeOf(ctx, 0);
  if (!x) return [];
  const out: Candidate[] = [];
  map.forEach((o, d) => {
    if (o !== undefined && shardable(x[d]!, ctx.axisSize)) out.push(passDim(ctx, d, o));
  });
  if (linear) out.push(passPartial(ctx));
  return out;
}

/** A group of consecutive input dims and output dims of a view holding the same elements. */
export interface ViewGroup {
  in: number[];
  out: number[];
}

/**
 * Splits a view's input and output shapes into the smallest groups of consecutive dims with
 * equal products: [b,s,h,hd] → [b,s,h*hd] gives {[0],[0]}, {[1],[1]}, {[2,3],[2]}. A size-1 dim
 * with no size-1 partner forms a group alone. Undefined when the element counts differ or a dim
 * is 0 (nothing to shard).
 */
export function viewGroups(inShape: readonly number[], outShape: readonly number[]): ViewGroup[] | undefined {
  if (inShape.includes(0) || outShape.includes(0)) return undefined;
  const groups: ViewGroup[] = [];
  let i = 0;
  let j = 0;
  while (i < inShape.length || j < outShape.length) {
    const a = inShape[i];
    const b = outShape[j];
    if (a === 1 && b !== 1) {
      groups.push({ in: [i++], out: [] });
      continue;
    }
    if (b === 1 && a !== 1) {
      groups.push({ in: [], out: [j++] });
      continue;
    }
    if (a === undefined || b === undefined) return undefined;
    const g: ViewGroup = { in: [i++], out: [j++] };
    let pa = a;
    let pb = b;
    while (pa !== pb) {
      if (pa < pb) {
        if (i >= inShape.length) return undefined;
        g.in.push(i);
        pa *= inShape[i++]!;
      } else {
        if (j >= outShape.length) return undefined;
        g.out.push(j);
        pb *= outShape[j++]!;
      }
    }
    groups.push(g);
  }
  return groups;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const product = (s: readonly number[], dims: readonly number[]): number => dims.reduce((p, d) => p * s[d]!, 1);

/**
 * The shard correspondences of a view: for each group, its major (first) input dim and major
 * output dim, with the relative units that make one block of each hold the same elements.
 * A merge [h, hd] → [h·hd] gives in unit 1, out unit hd; a split [h·hd] → [h, hd] the reverse;
 * unchanged dims 1 and 1. Groups whose blocks do not divide the dims, or that would give some
 * device no block, are left out.
 */
export function viewShardMaps(
  inShape: readonly number[],
  outShape: readonly number[],
  axisSize: number,
): { inDim: number; outDim: number; inUnit: number; outUnit: number }[] {
  const groups = viewGroups(inShape, outShape);
  if (!groups) return [];
  const maps: { inDim: number; outDim: number; inUnit: number; outUnit: number }[] = [];
  for (const g of groups) {
    if (!g.in.length || !g.out.length) continue;
    const minorIn = product(inShape, g.in.slice(1));
    const minorOut = product(outShape, g.out.slice(1));
    const lcm = (minorIn / gcd(minorIn, minorOut)) * minorOut;
    const inUnit = lcm / minorIn;
    const outUnit = lcm / minorOut;
    const inDim = g.in[0]!;
    const outDim = g.out[0]!;
    if (!shardable(inShape[inDim]!, axisSize, inUnit) || !shardable(outShape[outDim]!, axisSize, outUnit)) continue;
    maps.push({ inDim, outDim, inUnit, outUnit });
  }
  return maps;
}
