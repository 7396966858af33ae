/**
 * Sharding rules of Gather, including the vocabulary-parallel (masked) lookup.
 *
 * Gather(data, indices; axis a) with data rank r and indices rank q gives
 * out = data[:a] ++ indices.shape ++ data[a+1:]. Ways to run it sharded over one mesh axis:
 *   1. data S(d), d ≠ a, indices R         → out S(d < a ? d : d + q − 1)
 *   2. data R, indices S(i)                → out S(a + i)
 *   3. data S(a), indices R                → out P(sum), `local: 'masked-gather'`: each device
 *      holds rows [off, off+size) of the table; it looks up the ids that fall in its rows and
 *      writes 0 for the others, so the sum over the axis is the full lookup (vocab-parallel
 *      embedding, Megatron).
 *   4. data P(sum), indices R              → out P(sum) (Gather is linear in data)
 */
import type { DType } from '../../../ir/dtype.js';
import { Attrs } from '../../../ir/attrs.js';
import { Node, type Value } from '../../../ir/graph.js';
import { Tensor } from '../../../ir/tensor.js';
import type { Candidate, LocalizeContext, ShardingRule } from '../rule.js';
import { P, R, S, axisIn, shapeOf, shardable } from './shape-dims.js';

export const MASKED_GATHER = 'masked-gather';

const gather: ShardingRule = {
  op: 'Gather',
  candidates(ctx) {
    const data = shapeOf(ctx, 0);
    const ind = shapeOf(ctx, 1);
    if (!data || !ind) return [];
    const a = axisIn(ctx.attrs.int('axis', 0), data.length);
    if (a === undefined) return [];
    const q = ind.length;
    const out: Candidate[] = [];
    for (let d = 0; d < data.length; d++) {
      if (d === a || !shardable(data[d]!, ctx.axisSize)) continue;
      out.push({ inputs: [S(d), R], outputs: [S(d < a ? d : d + q - 1)] });
    }
    for (let i = 0; i < q; i++) if (shardable(ind[i]!, ctx.axisSize)) out.push({ inputs: [R, S(i)], outputs: [S(a + i)] });
    if (ctx.inputs[0]!.dtype === 'string') return out; // no zero to mask with, nothing to sum
    if (shardable(data[a]!, ctx.axisSize)) out.push({ inputs: [S(a), R], outputs: [P], local: MASKED_GATHER });
    out.push({ inputs: [P, R], outputs: [P] });
    return out;
  },
  localize(ctx) {
    if ([...ctx.candidates.values()].some((c) => c.local === MASKED_GATHER)) localizeMaskedGather(ctx);
  },
};

/**
 * Rewrites Gather(data, ids) → out on one device whose data holds rows [off, off+size) of the
 * gathered axis (of V rows in all):
 *   idsN    = Where(ids < 0, ids + V, ids)                       (negative ids count from the end)
 *   inRange = (idsN >= off) & (idsN < off + size)
 *   g       = Gather(data_local, Where(inRange, idsN − off, 0))
 *   out     = Where(Reshape(inRange, [1]·a ++ ids.shape ++ [1]·(r−a−1)), g, 0)
 */
function localizeMaskedGather(ctx: LocalizeContext): void {
  const node = ctx.node;
  const dataType = ctx.inputs[0]!;
  const idsType = ctx.inputs[1]!;
  const rank = ctx.localInputShapes[0]!.length;
  const a = axisIn(node.attrs.int('axis', 0), rank)!;
  const rows = ctx.inputRanges[0]![a]!;
  const total = (dataType.shape as number[])[a]!;
  const idsShape = ctx.localInputShapes[1]!;
  const outShape = ctx.localOutputShapes[0]!;
  const ids = node.inputs[1]!;
  const out = node.outputs[0]!;
  const base = node.name || out.name;
  const it: DType = idsType.dtype;

  const before: Node[] = [];
  let k = 0;
  const scalar = (hint: string, dtype: DType, v: number): Value => ctx.newConstant(`${base}/${hint}`, Tensor.scalar(dtype, v));
  const apply = (op: string, inputs: Value[], dtype: DType, shape: readonly number[], hint: string, into: Node[] = before): Value => {
    const v = ctx.newValue(`${base}/${hint}`, dtype, shape);
    into.push(new Node(op, inputs, [v], new Attrs(), `${base}/masked_${k++}_${op}`));
    return v;
  };

  const zero = scalar('zero', it, 0);
  const negative = apply('Less', [ids, zero], 'bool', idsShape, 'negative');
  const wrapped = apply('Add', [ids, scalar('rows', it, total)], it, idsShape, 'wrapped');
  const idsN = apply('Where', [negative, wrapped, ids], it, idsShape, 'ids');
  const offset = scalar('offset', it, rows.offset);
  const atLeast = apply('GreaterOrEqual', [idsN, offset], 'bool', idsShape, 'ge_offset');
  const below = apply('Less', [idsN, scalar('end', it, rows.offset + rows.size)], 'bool', idsShape, 'lt_end');
  const inRange = apply('And', [atLeast, below], 'bool', idsShape, 'in_range');
  const local = apply('Sub', [idsN, offset], it, idsShape, 'local_ids');
  const safe = apply('Where', [inRange, local, zero], it, idsShape, 'safe_ids');

  const gathered = ctx.newValue(`${base}/gathered`, dataType.dtype, outShape);
  node.inputs[1] = safe;
  node.outputs[0] = gathered;
  gathered.producer = node;

  const after: Node[] = [];
  const maskShape = [...new Array<number>(a).fill(1), ...idsShape, ...new Array<number>(rank - a - 1).fill(1)];
  const shapeConst = ctx.newConstant(`${base}/mask_shape`, Tensor.from('int64', [maskShape.length], maskShape));
  const mask = apply('Reshape', [inRange, shapeConst], 'bool', maskShape, 'mask', after);
  // The original output value is now defined by the final Where (the Node constructor sets its producer).
  after.push(new Node('Where', [mask, gathered, scalar('fill', dataType.dtype, 0)], [out], new Attrs(), `${base}/masked_${k++}_Where`));

  ctx.insertBefore(...before);
  ctx.insertAfter(...after);
}

export const gatherRules: ShardingRule[] = [gather];
