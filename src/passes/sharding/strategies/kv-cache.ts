/**
 * Head-sharded KV caches for tensor parallelism (megatron, and sequence, which reuses megatron's
 * seeds): a decoder step runs with each device's part of the cache resident on it.
 *
 * Structure recognised (per attention block, patterns.ts `Attention` matches): the key operand of
 * the score MatMul (Q·Kᵀ) and the value operand of the output MatMul (P·V) are traced back through
 * views (Transpose, Reshape, the GQA repeat of kv heads: Expand/Unsqueeze/Tile...) to a Concat
 * that joins a GRAPH INPUT (the past cache, `past_key_<l>`) with the freshly projected, head-split
 * key (value). The new operand is traced further back to its projection, a MatMul with a constant
 * 2-D weight. When the preset seeded that weight column-parallel by heads (`S(1:head_dim)`),
 *   - the past input is seeded S(h), h the cache's head dim (the rank-4 dim that is neither the
 *     batch dim 0, nor the concat (sequence) dim, nor the last (head_dim) dim and whose size is the
 *     projection's head count);
 *   - the Concat's output, when it is a graph output (`present_key_<l>`), is seeded S(h) and kept
 *     RESIDENT: it is not gathered at the end, each device returns its heads (Seed.resident).
 * So neither the past cache, the new keys/values nor the present cache moves between devices: the
 * cache stays where the heads are computed, and step t+1 can feed step t's per-device present
 * tensors straight back as its past inputs (same layout).
 *
 * When the projection is replicated (fewer kv heads than devices in GQA/MQA, or fewer query heads
 * than devices), the cache is not seeded: it is replicated like the kv heads (every device keeps
 * the whole cache; documented, not an error). A cache whose head dim cannot be identified is left to
 * propagation too (it is then gathered where the layouts meet, as any other value).
 */
import type { Node, Value } from '../../../ir/graph.js';
import { Shard } from '../../../ir/layout.js';
import type { AxisSeeds, StrategyContext } from './types.js';

/** Ops a cached key/value passes through between the cache Concat and the attention MatMuls. */
const TO_ATTENTION = new Set(['Transpose', 'Reshape', 'Identity', 'Squeeze', 'Unsqueeze', 'Expand', 'Tile', 'Cast', 'Flatten']);
/** Ops between a projection MatMul and the head-split key/value (bias, views, RoPE). */
const FROM_PROJECTION = new Set(['Reshape', 'Transpose', 'Add', 'Sub', 'Mul', 'Div', 'Slice', 'Concat', 'Neg', 'Unsqueeze', 'Squeeze', 'Cast', 'Identity']);

export interface KvCache {
  /** The Concat joining past and new. */
  concat: Node;
  past: Value;
  /** The Concat's output (the present cache when it is a graph output). */
  present: Value;
  /** The projection weight of the new keys/values. */
  weight: Value;
  /** The cache's head dim. */
  headDim: number;
  heads: number;
  kind: 'key' | 'value';
  attention: number;
}

/** The Concat reached backwards from v through views only (undefined if none). */
function cacheConcat(v: Value, depth = 8): Node | undefined {
  let x: Value | undefined = v;
  for (let d = 0; x && d < depth; d++) {
    const p: Node | undefined = x.producer;
    if (!p) return undefined;
    if (p.op === 'Concat' && p.domain === '') return p;
    if (!TO_ATTENTION.has(p.op) || p.domain !== '') return undefined;
    x = p.inputs.find((i) => i && !i.constant) ?? undefined;
  }
  return undefined;
}

/** Projection weights (constant rank-2 MatMul operand 1) reached backwards from v. */
function projections(v: Value, inputs: Set<Value>, depth = 24): Value[] {
  const found: Value[] = [];
  const seen = new Set<Value>();
  const walk = (x: Value, d: number): void => {
    if (seen.has(x) || d < 0) return;
    seen.add(x);
    const p = x.producer;
    if (!p || p.domain !== '') return;
    const w = p.inputs[1];
    if (p.op === 'MatMul' && w?.constant && !inputs.has(w) && w.constant.shape.length === 2) {
      if (!found.includes(w)) found.push(w);
      return;
    }
    if (!FROM_PROJECTION.has(p.op)) return;
    for (const i of p.inputs) if (i && !i.constant) walk(i, d - 1);
  };
  walk(v, depth);
  return found;
}

/** The KV caches of the graph's attention blocks (graph order, keys before values). */
export function findKvCaches(ctx: StrategyContext): KvCache[] {
  const { graph } = ctx;
  const inputs = new Set(graph.inputs);
  const initial = new Set(graph.initializers);
  const out: KvCache[] = [];
  const seen = new Set<Node>();
  for (const m of ctx.patterns) {
    if (m.kind !== 'Attention') continue;
    const mms = m.nodes.filter((n) => n.op === 'MatMul');
    if (mms.length < 2) continue;
    const operands: [Value | null | undefined, 'key' | 'value'][] = [
      [mms[0]!.inputs[1], 'key'],
      [mms[mms.length - 1]!.inputs[1], 'value'],
    ];
    for (const [operand, kind] of operands) {
      if (!operand) continue;
      const concat = cacheConcat(operand);
      if (!concat || seen.has(concat)) continue;
      const present = concat.outputs[0]!;
      const shape = present.shape;
      if (!shape || shape.length !== 4 || shape.some((d) => typeof d !== 'number')) continue;
      const pasts = concat.inputs.filter((i): i is Value => !!i && inputs.has(i) && !initial.has(i));
      const news = concat.inputs.filter((i): i is Value => !!i && !inputs.has(i) && !i.constant);
      if (pasts.length !== 1 || news.length !== 1) continue;
      const ws = projections(news[0]!, inputs);
      if (ws.length !== 1) continue;
      const weight = ws[0]!;
      const rank = shape.length;
      let axis = concat.attrs.int('axis');
      if (axis < 0) axis += rank;
      const hd = shape[rank - 1] as number;
      const heads = Math.round(weight.constant!.shape[1]! / hd);
      const dims = [1, 2].filter((d) => d !== axis && shape[d] === heads);
      if (dims.length !== 1 || heads * hd !== weight.constant!.shape[1]) continue;
      seen.add(concat);
      out.push({ concat, past: pasts[0]!, present, weight, headDim: dims[0]!, heads, kind, attention: m.index });
    }
  }
  return out;
}

/**
 * Adds the KV-cache seeds to a tensor-parallel preset's seeds (see the file comment): only for
 * caches whose projection weight the preset seeded as a shard of its columns.
 */
export function seedKvCaches(ctx: StrategyContext, seeds: AxisSeeds, preset: string): number {
  const { axis, graph } = ctx;
  const outputs = new Set(graph.outputs);
  let n = 0;
  for (const c of findKvCaches(ctx)) {
    const w = seeds.get(c.weight)?.placement;
    if (!w || w.kind !== 'shard' || w.dim !== 1) continue;
    const where = `attention #${c.attention}`;
    if (!seeds.has(c.past))
      seeds.set(c.past, {
        placement: Shard(c.headDim),
        why: `${preset}: ${where}: past ${c.kind} cache ${c.past.name} head-sharded (S(${c.headDim}), ${c.heads} heads over ${axis.name}=${axis.size}) like its projection ${c.weight.name}, resident on each device`,
      });
    if (outputs.has(c.present) && !seeds.has(c.present))
      seeds.set(c.present, {
        placement: Shard(c.headDim),
        resident: true,
        why: `${preset}: ${where}: present ${c.kind} cache ${c.present.name} stays head-sharded (S(${c.headDim})) at the output, not gathered: the next decoder step feeds each device its own heads`,
      });
    n++;
  }
  return n;
}
