/**
 * Shared pieces of the sharding rule tables: placement shorthands, static shapes from a rule
 * context, broadcast alignment (which input dim a shard of an output dim lands on), and the
 * generic "dim map" pass-through candidate generator that most families reduce to.
 */
import { isFloat } from '../../../ir/dtype.js';
import { type Placement, Partial, Replicate, Shard } from '../../../ir/layout.js';
import type { Candidate, RuleContext } from '../rule.js';

export const R: Placement = Replicate;
export const S = (dim: number, unit = 1): Placement => Shard(dim, unit);
export const P = (reduce: 'sum' | 'max' | 'min' = 'sum'): Placement => Partial(reduce);

export type ReduceKind = 'sum' | 'max' | 'min';

/** Static shape of input i, undefined when absent or unknown. */
export function inShape(ctx: RuleContext, i: number): number[] | undefined {
  const s = ctx.inputs[i]?.shape;
  return s && s.every((d): d is number => typeof d === 'number') ? (s as number[]) : undefined;
}

/** Static shape of output i, undefined when unknown. */
export function outShape(ctx: RuleContext, i = 0): number[] | undefined {
  const s = ctx.outputs[i]?.shape;
  return s && s.every((d): d is number => typeof d === 'number') ? (s as number[]) : undefined;
}

/** Whether a dim of size n is worth splitting over the axis (every device gets at least one element). */
export const shardable = (n: number, ctx: RuleContext): boolean => n >= ctx.axisSize && ctx.axisSize > 1;

export const isFloatInput = (ctx: RuleContext, i: number): boolean => {
  const t = ctx.inputs[i];
  return t !== undefined && isFloat(t.dtype);
};

/** Placement of every present input: `f(i)`; null for absent inputs. */
export function perInput(ctx: RuleContext, f: (i: number) => Placement): (Placement | null)[] {
  return ctx.inputs.map((t, i) => (t ? f(i) : null));
}

/**
 * The dim of input `shape` (right-aligned numpy broadcasting against an output of rank
 * `outRank`) that output dim `d` reads, or undefined when the input lacks it or broadcasts it
 * (size 1 against a larger output dim).
 */
export function alignedDim(shape: readonly number[], outRank: number, d: number, outSize: number): number | undefined {
  const j = d - (outRank - shape.length);
  if (j < 0) return undefined;
  if (shape[j] !== outSize) return undefined;
  return j;
}

/**
 * Broadcasting pass-through: for every shardable output dim d, a candidate with the output
 * S(d) and each broadcast operand (indices `operands`) S(aligned dim) or R where it broadcasts.
 * Other present inputs (scalars such as Clip's bounds) stay R. Output `extraOutputs` copy the
 * first output's placement (Dropout's mask).
 */
export function broadcastShardCandidates(ctx: RuleContext, operands: readonly number[], outputs = 1): Candidate[] {
  const out = outShape(ctx);
  if (!out) return [];
  const shapes = operands.map((i) => inShape(ctx, i));
  if (shapes.some((s) => s === undefined)) return [];
  const res: Candidate[] = [];
  for (let d = 0; d < out.length; d++) {
    if (!shardable(out[d]!, ctx)) continue;
    const inputs = perInput(ctx, (i) => {
      const k = operands.indexOf(i);
      if (k < 0) return R;
      const j = alignedDim(shapes[k]!, out.length, d, out[d]!);
      return j === undefined ? R : S(j);
    });
    res.push({ inputs, outputs: Array.from({ length: outputs }, () => S(d)) });
  }
  return res;
}

/**
 * Dim-map pass-through: `dims` lists, per shardable dim choice, the dim (or null = R) of every
 * input and output. Candidates are emitted only where every listed dim is shardable.
 */
export interface DimChoice {
  inputs: (number | null)[];
  outputs: (number | null)[];
}

export function dimMapCandidates(ctx: RuleContext, choices: readonly DimChoice[]): Candidate[] {
  const res: Candidate[] = [];
  for (const c of choices) {
    let ok = true;
    const inputs = ctx.inputs.map((t, i) => {
      if (!t) return null;
      const d = c.inputs[i];
      if (d === null || d === undefined) return R;
      const s = inShape(ctx, i);
      if (!s || d >= s.length || !shardable(s[d]!, ctx)) ok = false;
      return S(d);
    });
    const outputs = ctx.outputs.map((_, i) => {
      const d = c.outputs[i];
      if (d === null || d === undefined) return R;
      const s = outShape(ctx, i);
      if (!s || d >= s.length || !shardable(s[d]!, ctx)) ok = false;
      return S(d);
    });
    if (ok) res.push({ inputs, outputs });
  }
  return res;
}

/** The same placement on every input listed (others R, absent null) and on every output. */
export function partialCandidate(ctx: RuleContext, partialInputs: readonly number[], inReduce: ReduceKind, outReduce: ReduceKind = inReduce): Candidate {
  return {
    inputs: perInput(ctx, (i) => (partialInputs.includes(i) ? P(inReduce) : R)),
    outputs: ctx.outputs.map(() => P(outReduce)),
  };
}

/** Constant integer values of input i (undefined when absent or not constant). */
export function constInts(ctx: RuleContext, i: number): number[] | undefined {
  if (!ctx.inputs[i]) return undefined;
  const t = ctx.constant(i);
  return t ? Array.from(t.data as ArrayLike<number>) : undefined;
}

/** Normalised axis (undefined when out of range). */
export function normAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}
