/**
 * Sharding rules of the matmul family, all generated from einsum strings (einsum-spec.ts):
 * MatMul (numpy batch broadcasting, 1-D operands), Gemm (transA/transB; the bias C follows the
 * output: aligned shard, or P(sum) when the output is P(sum) so that it is added exactly once),
 * Einsum (its own equation) and MatMulInteger (shards only: the zero points make it affine, not
 * linear, in each operand).
 */
import type { Placement } from '../../../ir/layout.js';
import type { Candidate, RuleContext, ShardingRule } from '../rule.js';
import { P, R, S, alignedDim, inShape, outShape } from './common.js';
import { einsumCandidates, einsumSpec, matmulEquation } from './einsum-spec.js';

function matmulCandidates(ctx: RuleContext, linear: boolean): Candidate[] {
  const a = inShape(ctx, 0);
  const b = inShape(ctx, 1);
  if (!a || !b || a.length === 0 || b.length === 0) return [];
  const spec = einsumSpec(matmulEquation(a.length, b.length), [a.length, b.length]);
  return einsumCandidates(spec, [a, b], ctx.axisSize, { linear }).map((c) => ({ inputs: c.inputs, outputs: [c.output] }));
}

const matMul: ShardingRule = { op: 'MatMul', candidates: (ctx) => matmulCandidates(ctx, true) };

const gemm: ShardingRule = {
  op: 'Gemm',
  candidates(ctx) {
    const a = inShape(ctx, 0);
    const b = inShape(ctx, 1);
    const out = outShape(ctx);
    if (!a || !b || !out || a.length !== 2 || b.length !== 2) return [];
    const eq = `${ctx.attrs.int('transA', 0) ? 'km' : 'mk'},${ctx.attrs.int('transB', 0) ? 'nk' : 'kn'}->mn`;
    const c = ctx.inputs[2] ? inShape(ctx, 2) : undefined;
    if (ctx.inputs[2] && !c) return [];
    return einsumCandidates(einsumSpec(eq, [2, 2]), [a, b], ctx.axisSize, { linear: true }).map((cand) => {
      let bias: Placement | null = null;
      if (c) {
        const o = cand.output;
        if (o.kind === 'shard') {
          const j = alignedDim(c, 2, o.dim, out[o.dim]!);
          bias = j === undefined ? R : S(j);
        } else bias = P('sum');
      }
      return { inputs: ctx.inputs.length > 2 ? [...cand.inputs, bias] : cand.inputs, outputs: [cand.output] };
    });
  },
};

const einsum: ShardingRule = {
  op: 'Einsum',
  candidates(ctx) {
    const shapes = ctx.inputs.map((_, i) => inShape(ctx, i));
    if (shapes.some((s) => !s)) return [];
    const spec = einsumSpec(ctx.attrs.string('equation'), shapes.map((s) => s!.length));
    return einsumCandidates(spec, shapes as number[][], ctx.axisSize, { linear: true }).map((c) => ({ inputs: c.inputs, outputs: [c.output] }));
  },
};

/**
 * MatMulInteger(A, B, a_zero_point?, b_zero_point?): shards only. A zero point that is a scalar
 * stays R; a per-row A zero point ([M]) follows a shard of m, a per-column B zero point ([N]) a
 * shard of n (a shard of any other label leaves them R).
 */
const matMulInteger: ShardingRule = {
  op: 'MatMulInteger',
  candidates(ctx) {
    const a = inShape(ctx, 0);
    const b = inShape(ctx, 1);
    if (!a || !b || a.length < 2 || b.length < 2) return [];
    const zp = [2, 3].map((i) => (ctx.inputs[i] ? inShape(ctx, i) : undefined));
    if ([2, 3].some((i, k) => ctx.inputs[i] && !zp[k])) return [];
    return matmulCandidates(ctx, false).flatMap((c): Candidate[] => {
      const [pa, pb] = c.inputs as Placement[];
      // Row m of A is A's dim rank-2; column n of B is B's dim rank-1.
      const mSharded = pa!.kind === 'shard' && pa!.dim === a.length - 2;
      const nSharded = pb!.kind === 'shard' && pb!.dim === b.length - 1;
      const zpPlacement = (k: number, follows: boolean): Placement | null => {
        const s = zp[k];
        if (!ctx.inputs[k + 2]) return null;
        const n = s!.reduce((x, y) => x * y, 1);
        if (n <= 1) return R;
        return follows && s!.length === 1 ? S(0) : R;
      };
      return [{ inputs: [pa!, pb!, zpPlacement(0, mSharded), zpPlacement(1, nSharded)].slice(0, ctx.inputs.length), outputs: c.outputs }];
    });
  },
};

/** QLinearMatMul: replicate-only (not a core op; its requantisation is per tensor or per row/column and is left unsplit). */
const qlinearMatMul: ShardingRule = { op: 'QLinearMatMul', candidates: () => [] };

export const matmulRules: ShardingRule[] = [matMul, gemm, einsum, matMulInteger, qlinearMatMul];
