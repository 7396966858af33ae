/**
 * `sequence`: Megatron tensor parallelism plus sequence parallelism (Korthikanti et al., "Reducing
 * Activation Recomputation in Large Transformer Models") on the tp axis (or a mesh's only axis).
 *
 * Tensor-parallel regions are exactly megatron's (its seeds are reused: column-parallel QKV and
 * first MLP matmul, row-parallel output projection and second MLP matmul, head-parallel attention,
 * GQA handling, vocabulary-parallel embedding and LM head). Between those regions, the residual
 * stream and the norms are split along the SEQUENCE dim instead of replicated: every norm's input
 * and output (LayerNorm/RMSNorm, fused or decomposed, as patterns.ts finds them) and every residual
 * add (an Add of two activations of the same shape, one of them already on the stream) are seeded
 * S(seq), where seq is the token dim just before the hidden dim (dim 1 of [batch, seq, hidden],
 * dim 0 of flattened [tokens, hidden]). Propagation and resharding then place the collectives:
 *   - a row-parallel matmul's partial sum meets the seq-split residual add: ReduceScatter
 *     (P(sum) → S(seq)) where megatron had an AllReduce (P(sum) → R);
 *   - a column-parallel matmul (or the attention's projections) reads a seq-split norm output:
 *     AllGather (S(seq) → R) restores the full sequence first.
 * So per transformer layer megatron's 2 AllReduces become 2 ReduceScatters + 2 AllGathers.
 *
 * The ends (a choice, documented):
 *   - embedding: the vocabulary-parallel lookup gives a partial sum; it is reduce-scattered into
 *     the seq-split stream (megatron: all-reduced), so the first norm already runs seq-split;
 *   - final norm: runs seq-split too; then one AllGather (S(seq) → R) before the
 *     vocabulary-parallel LM head, whose logits are gathered at the graph output as in megatron;
 *   - a model without LM head (an encoder whose last norm output is the graph output): that
 *     output is gathered at the end (AllGather on seq).
 * Dropout is an identity at inference (the pass pipeline drops it), so it needs no seed.
 * The sequence length must be at least the axis size (else a UserError naming the value).
 */
import { UserError } from '../../../ir/errors.js';
import type { Graph, Node, Value } from '../../../ir/graph.js';
import { Shard } from '../../../ir/layout.js';
import { megatronPreset, megatronSeeds } from './megatron.js';
import type { AxisSeeds, Preset, StrategyContext } from './types.js';

const NORM_OPS = new Set(['LayerNormalization', 'RMSNormalization', 'SimplifiedLayerNormalization']);

interface Norm {
  label: string;
  input: Value;
  output: Value;
}

/**
 * The norms of the graph with their activation input and their output: the pattern matches of kind
 * LayerNorm/RMSNorm (the input is the one non-constant value the match reads from outside, the
 * output the one value used outside or a graph output), plus norm ops no pattern claimed.
 */
export function findNorms(ctx: StrategyContext): Norm[] {
  const { graph } = ctx;
  const users = graph.users();
  const outputs = new Set(graph.outputs);
  const norms: Norm[] = [];
  const seen = new Set<Node>();
  for (const m of ctx.patterns) {
    if (m.kind !== 'LayerNorm' && m.kind !== 'RMSNorm') continue;
    const inside = new Set(m.nodes);
    for (const n of m.nodes) seen.add(n);
    const ins: Value[] = [];
    const outs: Value[] = [];
    for (const n of m.nodes) {
      for (const v of n.inputs)
        if (v && !v.constant && !(v.producer && inside.has(v.producer)) && !ins.includes(v)) ins.push(v);
      for (const o of n.outputs)
        if (outputs.has(o) || (users.get(o) ?? []).some((u) => !inside.has(u))) if (!outs.includes(o)) outs.push(o);
    }
    if (ins.length === 1 && outs.length === 1) norms.push({ label: `${m.kind}#${m.index}`, input: ins[0]!, output: outs[0]! });
  }
  for (const n of graph.nodes) {
    if (seen.has(n) || !NORM_OPS.has(n.op)) continue;
    const x = n.inputs[0];
    const y = n.outputs[0];
    if (x && y && !x.constant) norms.push({ label: n.label, input: x, output: y });
  }
  return norms;
}

/** The sequence dim of a [..., seq, hidden] activation (the dim before the last), if it has one. */
const seqDim = (v: Value): number | undefined => ((v.shape?.length ?? 0) >= 2 ? v.shape!.length - 2 : undefined);

const sameShape = (a: Value, b: Value): boolean =>
  !!a.shape && !!b.shape && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape![i]);

/**
 * The residual stream: norm inputs and outputs, then (in graph order) every Add of two
 * non-constant values of the output's shape that reads a stream value (a residual add).
 */
function residualStream(graph: Graph, norms: Norm[]): Map<Value, string> {
  const stream = new Map<Value, string>();
  for (const n of norms) {
    if (!stream.has(n.input)) stream.set(n.input, `input of ${n.label}`);
    if (!stream.has(n.output)) stream.set(n.output, `output of ${n.label}`);
  }
  for (const n of graph.nodes) {
    if (n.op !== 'Add' || n.domain !== '') continue;
    const [a, b] = n.inputs;
    const y = n.outputs[0]!;
    if (!a || !b || a.constant || b.constant || !sameShape(a, y) || !sameShape(b, y)) continue;
    if (!stream.has(a) && !stream.has(b)) continue;
    if (!stream.has(y)) stream.set(y, `residual add ${n.label}`);
  }
  return stream;
}

export function sequenceSeeds(ctx: StrategyContext): AxisSeeds {
  const { graph, axis } = ctx;
  const k = axis.size;
  let base: AxisSeeds;
  try {
    base = megatronSeeds(ctx);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(e.message.replace(/^strategy megatron:/, 'strategy sequence:'));
    throw e;
  }
  const seeds: AxisSeeds = new Map();
  for (const [v, s] of base) seeds.set(v, { ...s, why: s.why.replace(/^megatron: /, 'sequence (tensor-parallel region as megatron): ') });

  const norms = findNorms(ctx);
  if (!norms.length)
    throw new UserError(`strategy sequence: the model has no LayerNorm/RMSNorm to run sequence-parallel over ${axis.name} (use megatron)`);
  const constants = new Set(graph.initializers);
  for (const [v, what] of residualStream(graph, norms)) {
    if (seeds.has(v) || constants.has(v)) continue;
    const d = seqDim(v);
    if (d === undefined) continue;
    const len = v.shape![d];
    if (typeof len !== 'number') continue;
    if (len < k)
      throw new UserError(
        `strategy sequence: the sequence dim ${d} of ${v.name} has ${len} positions, fewer than mesh axis ${axis.name}=${k}; bind a longer sequence or use megatron`,
        { tensor: v.name },
      );
    seeds.set(v, {
      placement: Shard(d),
      why: `sequence: ${what} on the residual stream, split along the sequence (S(${d}), ${len} positions over ${axis.name}=${k})`,
    });
  }
  return seeds;
}

export const sequencePreset: Preset = {
  name: 'sequence',
  axis: 'tp',
  prepare(graph) {
    megatronPreset.prepare?.(graph);
  },
  annotate: sequenceSeeds,
};
