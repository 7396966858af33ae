/**
 * Unfuses projections whose output is split along its last dim (GPT-2's fused QKV:
 * `Split(Add(MatMul(x, W[h, 3h]), b[3h]), [h, h, h], axis=-1)`) into one MatMul (+ Add) per part,
 * with the weight and bias sliced into per-part constants. Tensor parallelism must shard q, k and v
 * each by heads; a fused weight sharded by columns would give a device a mix of q, k and v columns
 * instead. The rewrite is exact (each output column is the same dot product) and runs before
 * sharding, only for strategies that shard heads (megatron).
 *
 * Matched: MatMul(x, W) with W a constant of rank 2; optionally a single-use Add of a constant of
 * shape [N] (either operand order); then a single-use Split along the last axis whose sizes are a
 * constant input (or an even split). The parts' constants are named `<W>.part<i>` (`<b>.part<i>`)
 * and load lazily (slices of the original data on first use). The Split's output values are kept
 * (the new nodes produce them), so their consumers and names do not change.
 */
import { Node, Value, type Graph } from '../../ir/graph.js';
import { LazyTensor } from '../../ir/tensor.js';
import { namer } from '../util.js';
import { sliceTensor } from './shards.js';

const isConst = (v: Value | null | undefined, inputs: Set<Value>): v is Value => !!v && !!v.constant && !inputs.has(v);

function sliceConstant(v: Value, axis: number, offset: number, size: number, name: string): Value {
  const src = v.constant!;
  const shape = src.shape.slice();
  const ranges = shape.map((n, d) => (d === axis ? { offset, size } : { offset: 0, size: n }));
  shape[axis] = size;
  const out = new Value(name, v.dtype ?? src.dtype, shape);
  out.constant = new LazyTensor(src.dtype, shape, { kind: 'inline' }, () => sliceTensor(src.load(), ranges));
  return out;
}

/** Rewrites every fused projection + Split in place; returns how many were unfused. */
export function unfuseSplitProjections(graph: Graph): number {
  const inputs = new Set(graph.inputs);
  const outputs = new Set(graph.outputs);
  const uses = new Map<Value, Node[]>();
  for (const n of graph.nodes) for (const v of n.inputs) if (v) uses.set(v, [...(uses.get(v) ?? []), n]);
  const single = (v: Value): Node | undefined => {
    const u = uses.get(v);
    return u && u.length === 1 && !outputs.has(v) ? u[0] : undefined;
  };
  const newName = namer(graph);
  const removed = new Set<Node>();
  const replacements = new Map<Node, Node[]>();
  let count = 0;

  for (const mm of graph.nodes) {
    if (mm.op !== 'MatMul' || mm.domain !== '' || removed.has(mm)) continue;
    const [x, w] = mm.inputs;
    if (!x || !isConst(w, inputs) || w.constant!.shape.length !== 2) continue;
    const N = w.constant!.shape[1]!;
    let y = mm.outputs[0]!;
    let add: Node | undefined;
    let bias: Value | undefined;
    let next = single(y);
    if (next?.op === 'Add' && next.domain === '') {
      const other = next.inputs[0] === y ? next.inputs[1] : next.inputs[0];
      if (isConst(other, inputs) && other.constant!.shape.length === 1 && other.constant!.shape[0] === N) {
        add = next;
        bias = other;
        y = next.outputs[0]!;
        next = single(y);
      }
    }
    const split = next;
    if (!split || split.op !== 'Split' || split.domain !== '' || split.inputs[0] !== y) continue;
    const rank = y.shape?.length ?? 0;
    const axis = split.attrs.int('axis', 0);
    if (rank === 0 || (axis !== -1 && axis !== rank - 1)) continue;
    let sizes: number[];
    const sv = split.inputs[1];
    if (sv) {
      if (!isConst(sv, inputs)) continue;
      sizes = Array.from(sv.constant!.load().data as ArrayLike<number>);
    } else {
      const parts = split.outputs.length;
      if (N % parts !== 0) continue;
      sizes = new Array<number>(parts).fill(N / parts);
    }
    if (sizes.length !== split.outputs.length || sizes.reduce((a, b) => a + b, 0) !== N) continue;

    const made: Node[] = [];
    let offset = 0;
    sizes.forEach((size, i) => {
      const out = split.outputs[i]!;
      const wi = sliceConstant(w, 1, offset, size, newName(`${w.name}.part${i}`));
      graph.initializers.push(wi);
      const mmOut = bias ? new Value(newName(`${mm.outputs[0]!.name}.part${i}`), out.dtype, out.shape?.slice()) : out;
      made.push(new Node('MatMul', [x, wi], [mmOut], undefined, newName(`${mm.name || 'MatMul'}.part${i}`)));
      if (bias && add) {
        const bi = sliceConstant(bias, 0, offset, size, newName(`${bias.name}.part${i}`));
        graph.initializers.push(bi);
        const ins = add.inputs[0] === bias ? [bi, mmOut] : [mmOut, bi];
        made.push(new Node('Add', ins, [out], undefined, newName(`${add.name || 'Add'}.part${i}`)));
      }
      offset += size;
    });
    removed.add(mm);
    if (add) removed.add(add);
    removed.add(split);
    replacements.set(split, made);
    count++;
  }
  if (!count) return 0;
  const nodes: Node[] = [];
  for (const n of graph.nodes) {
    const r = replacements.get(n);
    if (r) nodes.push(...r);
    else if (!removed.has(n)) nodes.push(n);
  }
  graph.nodes = nodes;
  // Drop constants nothing uses any more (the fused weights and split sizes).
  const used = new Set<Value>(graph.outputs);
  for (const n of graph.nodes) for (const v of n.inputs) if (v) used.add(v);
  graph.initializers = graph.initializers.filter((v) => used.has(v) || inputs.has(v));
  return count;
}
