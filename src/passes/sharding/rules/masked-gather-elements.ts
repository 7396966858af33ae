/**
 * The masked GatherElements (a candidate of the GatherElements rule in indexing.ts): data sharded
 * along the gather axis itself, S(a), indices R → out P(sum). Each device holds the data's block
 * [off, off+size) of the axis; it gathers the indices that fall in its block and writes 0 for the
 * others, so the sum over the axis is the full gather (every index lands in exactly one block).
 * Used by the `expert` strategy's top-k combine with tokens replicated: each device picks the
 * chosen experts' outputs among the experts it holds.
 *
 * Local rewrite of GatherElements(data, idx; axis a) → out, with N the global size of axis a:
 *   idxN    = Where(idx < 0, idx + N, idx)                  (negative indices count from the end)
 *   inRange = (idxN >= off) & (idxN < off + size)
 *   g       = GatherElements(data_local, Where(inRange, idxN − off, 0))
 *   out     = Where(inRange, g, 0)
 * (indices and output have the same shape, so the mask needs no reshape.)
 */
import { Attrs } from '../../../ir/attrs.js';
import type { DType } from '../../../ir/dtype.js';
import { Node, type Value } from '../../../ir/graph.js';
import { Tensor } from '../../../ir/tensor.js';
import type { LocalizeContext } from '../rule.js';
import { axisIn } from './shape-dims.js';

export const MASKED_GATHER_ELEMENTS = 'masked-gather-elements';

export function localizeMaskedGatherElements(ctx: LocalizeContext): void {
  const node = ctx.node;
  const dataType = ctx.inputs[0]!;
  const idxType = ctx.inputs[1]!;
  const rank = ctx.localInputShapes[0]!.length;
  const a = axisIn(node.attrs.int('axis', 0), rank)!;
  const block = ctx.inputRanges[0]![a]!;
  const total = (dataType.shape as number[])[a]!;
  const shape = ctx.localInputShapes[1]!;
  const idx = node.inputs[1]!;
  const out = node.outputs[0]!;
  const base = node.name || out.name;
  const it: DType = idxType.dtype;

  const before: Node[] = [];
  let k = 0;
  const scalar = (hint: string, dtype: DType, v: number): Value => ctx.newConstant(`${base}/${hint}`, Tensor.scalar(dtype, v));
  const apply = (op: string, inputs: Value[], dtype: DType, hint: string): Value => {
    const v = ctx.newValue(`${base}/${hint}`, dtype, shape);
    before.push(new Node(op, inputs, [v], new Attrs(), `${base}/masked_${k++}_${op}`));
    return v;
  };
  const zero = scalar('zero', it, 0);
  const negative = apply('Less', [idx, zero], 'bool', 'negative');
  const wrapped = apply('Add', [idx, scalar('size', it, total)], it, 'wrapped');
  const idxN = apply('Where', [negative, wrapped, idx], it, 'idx');
  const offset = scalar('offset', it, block.offset);
  const atLeast = apply('GreaterOrEqual', [idxN, offset], 'bool', 'ge_offset');
  const below = apply('Less', [idxN, scalar('end', it, block.offset + block.size)], 'bool', 'lt_end');
  const inRange = apply('And', [atLeast, below], 'bool', 'in_range');
  const local = apply('Sub', [idxN, offset], it, 'local_idx');
  const safe = apply('Where', [inRange, local, zero], it, 'safe_idx');

  const gathered = ctx.newValue(`${base}/gathered`, dataType.dtype, ctx.localOutputShapes[0]!);
  node.inputs[1] = safe;
  node.outputs[0] = gathered;
  gathered.producer = node;
  // The original output value is now defined by the Where (the Node constructor sets its producer).
  const fill = scalar('fill', dataType.dtype, 0);
  ctx.insertBefore(...before);
  ctx.insertAfter(new Node('Where', [inRange, gathered, fill], [out], new Attrs(), `${base}/masked_${k++}_Where`));
}
