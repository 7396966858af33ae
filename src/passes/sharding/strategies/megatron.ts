/**
 * `megatron`: tensor parallelism (Shoeybi et al.) on its axis (tp, or a mesh's only axis), as
 * seeds on the weights; propagation finds everything else.
 *
 * Recognised structure (patterns.ts annotations plus the MatMuls with constant 2-D weights, the
 * "linears"):
 *   - attention (an Attention match): Q, K and V are traced back from the two attention MatMuls
 *     through views, RoPE, bias adds and the GQA repeat of kv heads to their projections; the
 *     output projection is traced forward through the merge of heads. Q/K/V are column-parallel in
 *     whole heads (W S(1:head_dim)), the output projection row-parallel (W S(0:head_dim)), so each
 *     device runs its heads and the output projection ends in a partial sum. GQA/MQA: K and V are
 *     sharded by kv heads when kv_heads ≥ the axis size, else replicated (each device computes all
 *     kv heads and uses those of its query heads). With fewer query heads than devices the
 *     attention stays replicated.
 *   - MLP: a linear whose output reaches another linear through elementwise ops only (bias, GELU,
 *     SwiGLU's gate × up) is column-parallel (W S(1)), the one it reaches row-parallel (W S(0)).
 *   - embedding: Gather(table [V, h], ids) is vocabulary-parallel (table S(0)): the rule's
 *     masked lookup gives a partial sum.
 *   - LM head: a remaining linear whose output is a graph output (through a bias add or views)
 *     is vocabulary-parallel (W S(1)); its output is gathered at the end.
 * Layer norms, biases and other constants are not seeded (they are free: propagation gives them
 * whatever their consumer wants). A graph with none of this structure is a UserError.
 */
import { UserError } from '../../../ir/errors.js';
import type { Node, Value } from '../../../ir/graph.js';
import { type Placement, Replicate, Shard } from '../../../ir/layout.js';
import type { AxisSeeds, Preset, StrategyContext } from './types.js';
import { unfuseSplitProjections } from '../unfuse-qkv.js';
import { seedKvCaches } from './kv-cache.js';

const PASS_BACK = new Set(['Reshape', 'Transpose', 'Add', 'Sub', 'Mul', 'Div', 'Slice', 'Concat', 'Neg', 'Expand', 'Unsqueeze', 'Squeeze', 'Cast', 'Identity']);
const ELEMENTWISE = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Erf', 'Tanh', 'Sigmoid', 'Relu', 'Gelu', 'FastGelu', 'Sqrt', 'Exp', 'Neg', 'Cast', 'Identity',
  'LeakyRelu', 'Elu', 'Selu', 'Softplus', 'HardSigmoid', 'HardSwish', 'Mish', 'Clip', 'Where', 'Min', 'Max', 'Abs',
]);
const VIEWS = new Set(['Reshape', 'Transpose', 'Identity', 'Squeeze', 'Unsqueeze', 'Flatten', 'Cast']);

interface Linear {
  node: Node;
  weight: Value;
}

function findLinears(ctx: StrategyContext): Map<Node, Linear> {
  const inputs = new Set(ctx.graph.inputs);
  const out = new Map<Node, Linear>();
  for (const n of ctx.graph.nodes) {
    if (n.op !== 'MatMul' || n.domain !== '') continue;
    const w = n.inputs[1];
    if (w && w.constant && !inputs.has(w) && w.constant.shape.length === 2 && !n.inputs[0]?.constant) out.set(n, { node: n, weight: w });
  }
  return out;
}

/** Linears reached backwards from v through PASS_BACK ops (following non-constant inputs). */
function traceBack(v: Value, linears: Map<Node, Linear>, depth = 24): Linear[] {
  const found: Linear[] = [];
  const seen = new Set<Value>();
  const walk = (x: Value, d: number): void => {
    if (seen.has(x) || d < 0) return;
    seen.add(x);
    const p = x.producer;
    if (!p) return;
    const l = linears.get(p);
    if (l) {
      if (!found.includes(l)) found.push(l);
      return;
    }
    if (!PASS_BACK.has(p.op)) return;
    for (const i of p.inputs) if (i && !i.constant) walk(i, d - 1);
  };
  walk(v, depth);
  return found;
}

/** Linears that consume (as input 0) a value reached forward from v through ops in `through`. */
function traceForward(v: Value, users: Map<Value, Node[]>, linears: Map<Node, Linear>, through: Set<string>, depth = 16): Linear[] {
  const found: Linear[] = [];
  const seen = new Set<Value>();
  const walk = (x: Value, d: number): void => {
    if (seen.has(x) || d < 0) return;
    seen.add(x);
    for (const u of users.get(x) ?? []) {
      const l = linears.get(u);
      if (l) {
        if (u.inputs[0] === x && !found.includes(l)) found.push(l);
        continue;
      }
      if (through.has(u.op)) for (const o of u.outputs) walk(o, d - 1);
    }
  };
  walk(v, depth);
  return found;
}

/** Whether v reaches a graph output through views and bias adds. */
function reachesOutput(v: Value, users: Map<Value, Node[]>, outputs: Set<Value>, depth = 4): boolean {
  if (outputs.has(v)) return true;
  if (depth === 0) return false;
  return (users.get(v) ?? []).some((u) => (VIEWS.has(u.op) || u.op === 'Add') && u.outputs.some((o) => reachesOutput(o, users, outputs, depth - 1)));
}

export function megatronSeeds(ctx: StrategyContext): AxisSeeds {
  const { graph, axis } = ctx;
  const k = axis.size;
  const seeds: AxisSeeds = new Map();
  const linears = findLinears(ctx);
  const users = graph.users();
  const claimed = new Set<Node>();
  const seed = (v: Value, p: Placement, why: string): void => {
    if (!seeds.has(v)) seeds.set(v, { placement: p, why: `megatron: ${why}` });
  };
  const label = (l: Linear): string => l.weight.name;

  // Attention blocks.
  let attentions = 0;
  for (const m of ctx.patterns) {
    if (m.kind !== 'Attention') continue;
    const mms = m.nodes.filter((n) => n.op === 'MatMul');
    if (mms.length < 2) continue;
    const qk = mms[0]!;
    const pv = mms[mms.length - 1]!;
    const [q, kt] = qk.inputs;
    const v = pv.inputs[1];
    if (!q || !kt || !v) continue;
    const qs = traceBack(q, linears);
    const ks = traceBack(kt, linears);
    const vs = traceBack(v, linears);
    const os = traceForward(pv.outputs[0]!, users, linears, VIEWS);
    if (qs.length !== 1 || ks.length !== 1 || vs.length !== 1 || os.length !== 1) continue;
    const [lq, lk, lv, lo] = [qs[0]!, ks[0]!, vs[0]!, os[0]!];
    const qShape = q.shape as number[] | undefined;
    if (!qShape || qShape.length < 3) continue;
    const hd = qShape[qShape.length - 1]!;
    const heads = qShape.length === 4 ? qShape[1]! : Math.round(lq.weight.constant!.shape[1]! / hd);
    const kvHeads = Math.round(lk.weight.constant!.shape[1]! / hd);
    attentions++;
    for (const l of [lq, lk, lv, lo]) claimed.add(l.node);
    const where = `attention #${m.index}`;
    if (heads < k) {
      for (const l of [lq, lk, lv, lo])
        seed(l.weight, Replicate, `${where} has ${heads} heads, fewer than ${axis.name}=${k}: ${label(l)} replicated`);
      continue;
    }
    seed(lq.weight, Shard(1, hd), `${where}: query projection ${label(lq)} column-parallel by heads (W S(1:${hd}), ${heads} heads over ${axis.name}=${k})`);
    for (const [l, what] of [[lk, 'key'], [lv, 'value']] as const) {
      if (kvHeads >= k)
        seed(l.weight, Shard(1, hd), `${where}: ${what} projection ${label(l)} column-parallel by kv heads (W S(1:${hd}), ${kvHeads} kv heads over ${axis.name}=${k})`);
      else
        seed(l.weight, Replicate, `${where}: ${what} projection ${label(l)} replicated (${kvHeads} kv heads, fewer than ${axis.name}=${k}: every device computes all kv heads)`);
    }
    seed(lo.weight, Shard(0, hd), `${where}: output projection ${label(lo)} row-parallel by heads (W S(0:${hd})): partial sums`);
  }

  // MLPs: column-parallel linear → elementwise → row-parallel linear.
  let mlps = 0;
  const rows = new Set<Node>();
  for (const [n, l] of linears) {
    if (claimed.has(n)) continue;
    const targets = traceForward(n.outputs[0]!, users, linears, ELEMENTWISE).filter((t) => t.node !== n);
    const row = targets.find((t) => rows.has(t.node) || !claimed.has(t.node));
    if (!row) continue;
    claimed.add(n);
    claimed.add(row.node);
    if (!rows.has(row.node)) mlps++;
    rows.add(row.node);
    seed(l.weight, Shard(1), `MLP: ${label(l)} column-parallel (W S(1)), feeding ${label(row)}`);
    seed(row.weight, Shard(0), `MLP: ${label(row)} row-parallel (W S(0)): partial sums`);
  }

  // Vocabulary-parallel embedding.
  const inputs = new Set(graph.inputs);
  for (const n of graph.nodes) {
    if (n.op !== 'Gather' || n.domain !== '' || n.attrs.int('axis', 0) !== 0) continue;
    const table = n.inputs[0];
    if (!table?.constant || inputs.has(table) || table.constant.shape.length !== 2) continue;
    const vocab = table.constant.shape[0]!;
    if (vocab < k) continue;
    seed(table, Shard(0), `vocabulary-parallel embedding ${table.name} (table S(0), ${vocab} rows over ${axis.name}=${k}; masked lookup, partial sums)`);
  }

  // Vocabulary-parallel LM head.
  const outputs = new Set(graph.outputs);
  for (const [n, l] of linears) {
    if (claimed.has(n)) continue;
    const cols = l.weight.constant!.shape[1]!;
    if (cols < k || !reachesOutput(n.outputs[0]!, users, outputs)) continue;
    claimed.add(n);
    seed(l.weight, Shard(1), `vocabulary-parallel LM head ${label(l)} (W S(1), ${cols} columns over ${axis.name}=${k}; logits gathered at the output)`);
  }

  if (!attentions && !mlps)
    throw new UserError(`strategy megatron: the model has no transformer structure to shard over ${axis.name} (no attention block and no MLP of two matmuls with constant weights)`);
  // KV caches (past/present inputs and outputs) head-sharded like their projections (kv-cache.ts).
  seedKvCaches(ctx, seeds, 'megatron');
  return seeds;
}

export const megatronPreset: Preset = {
  name: 'megatron',
  axis: 'tp',
  prepare(graph) {
    unfuseSplitProjections(graph);
  },
  annotate: megatronSeeds,
};
