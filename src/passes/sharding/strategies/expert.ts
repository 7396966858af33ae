/**
 * `expert`: expert parallelism for mixture-of-experts layers on its axis (ep, or a mesh's only
 * axis), as seeds; propagation and resharding place every collective.
 *
 * Recognised structure (examples/models/moe.ts; core ONNX has no dynamic dispatch, so every expert
 * runs on every token): the experts' weights are constants stacked along a leading expert dim,
 * `w1 [E, H, F]`, `b1 [E, 1, F]`, `w2 [E, F, H]`, `b2 [E, 1, H]`, and the expert computation is a
 * region of MatMuls with those weights and elementwise ops over activations `[..., E, s, d]` (E a
 * batch dim of the MatMuls, s the tokens: the MatMul's row dim). The region starts at an "entry"
 * MatMul whose activation input broadcasts over E (`Unsqueeze(x, 1) [b, 1, s, H]`) and ends at one
 * value `out [b, E, s, H]` that a combine reduces over E: a ReduceSum over the E dim after gating
 * Muls (dense gates, or top-k gates as one-hot masks), or a GatherElements along the E dim after
 * views (top-k: the chosen experts' outputs), then Muls and a ReduceSum to the MoE output `[b, s, H]`.
 *
 * prepare() makes the dispatch explicit: the entry's broadcast input is expanded to
 * `[b, E, s, H]` (an Expand, exact: the MatMul broadcast it anyway), the tensor of "every token for
 * every expert" that expert parallelism exchanges.
 *
 * Plans (which one is chosen, per model and mesh, is recorded in every seed's reason):
 *   (2) tokens sharded — the default, when every MoE layer has at least ep tokens (s ≥ ep): the
 *       usual expert parallelism. Seeds: expert weights S(0) (each device holds E/ep experts,
 *       uneven allowed); the dispatched tokens S(s) (each device starts with its own tokens) and
 *       the combine's input S(s) (each device ends with its own tokens); the MoE output S(s).
 *       Propagation then inserts AllToAll S(s) → S(E) before the experts (dispatch: each device
 *       receives every token for its experts) and AllToAll S(E) → S(s) after them (combine: each
 *       device receives every expert's output for its tokens); the router, the gating and the
 *       top-k selection run token-sharded, and the rest of the model follows the cost model.
 *       (With every expert running every token, the dispatch AllToAll moves E/ep times the bytes of
 *       an AllGather of the tokens, the same when each device holds one expert; the seeds pin the
 *       all-to-all form, the one whose traffic shrinks once a router sends each token to its top-k
 *       experts only.)
 *   (1) tokens replicated — when some MoE layer has fewer tokens than ep (a decode step), or with a
 *       spec file that seeds only the experts' weights S(0) on ep. Seeds: expert weights S(0), the
 *       MoE output P(sum): every device runs all tokens through its experts, the combine reduces
 *       over its local experts only (dense: ReduceSum over the sharded E dim; top-k: the masked
 *       GatherElements of rules/masked-gather-elements.ts, zero for experts held elsewhere), and
 *       one AllReduce per MoE layer sums the partial outputs. (Without the P(sum) seed, as with a
 *       weights-only spec file, the cost model decides the combine; on tiny tensors it gathers the
 *       [b, E, s, H] expert outputs instead, since an AllGather has half the latency hops of an
 *       AllReduce.)
 *
 * Errors (UserError): no MoE structure; fewer experts than devices on the axis.
 */
import { Attrs } from '../../../ir/attrs.js';
import { UserError } from '../../../ir/errors.js';
import { type Graph, Node, Value } from '../../../ir/graph.js';
import { Partial, type Placement, Shard } from '../../../ir/layout.js';
import { LazyTensor, Tensor } from '../../../ir/tensor.js';
import { namer } from '../../util.js';
import type { AxisSeeds, Preset, StrategyContext } from './types.js';

/** Ops an expert region may contain besides the expert MatMuls (bias adds, activations). */
const REGION_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Erf', 'Tanh', 'Sigmoid', 'Relu', 'Gelu', 'FastGelu', 'Sqrt', 'Exp', 'Neg', 'Cast', 'Identity',
  'LeakyRelu', 'Elu', 'Selu', 'Softplus', 'HardSigmoid', 'HardSwish', 'Mish', 'Clip', 'Min', 'Max', 'Abs', 'MatMul',
]);

export interface MoeBlock {
  /** `MoE#i (first expert weight name)`. */
  label: string;
  experts: number;
  /** The first expert MatMul(s) (their activation input is `dispatch`). */
  entries: Node[];
  /** Tokens entering the experts: [..., E or 1, s, H]; its token dim is rank-2. */
  dispatch: Value;
  /** Expert weights and the dim that holds the expert index. */
  weights: { value: Value; dim: number }[];
  /** The experts' output [..., E, s, H] (expert dim `expertDim`, token dim rank-2). */
  out: Value;
  expertDim: number;
  /** The value the combine reads with the expert dim (ReduceSum input or GatherElements data). */
  combineInput: Value;
  combineTokenDim: number;
  combine: 'reduce' | 'gather';
  /** The combined MoE output ([..., s, H]). */
  output: Value;
  /** The token dim of `output`. */
  outputTokenDim: number;
  /** The values from the combine op's output to `output` (a path linear in the combined value). */
  combined: Value[];
}

const isConst = (v: Value | null | undefined, inputs: Set<Value>): v is Value => !!v && !!v.constant && !inputs.has(v);
const shapeOf = (v: Value): number[] => (v.shape ?? []) as number[];
const ints = (v: Value | null | undefined): number[] | undefined =>
  v?.constant && v.constant.size <= 64 ? Array.from(v.constant.load().data as ArrayLike<number>) : undefined;

/** Expert MatMul: constant B of rank ≥ 3 with E ≥ 2 rows in its dim 0, non-constant A; the output's expert dim. */
function expertMatMul(n: Node, inputs: Set<Value>): { experts: number; expertDim: number } | undefined {
  if (n.op !== 'MatMul' || n.domain !== '') return undefined;
  const [a, b] = n.inputs;
  if (!a || a.constant || !isConst(b, inputs)) return undefined;
  const ws = b.constant!.shape;
  const r = n.outputs[0]!.shape?.length ?? 0;
  if (ws.length < 3 || ws[0]! < 2 || r < ws.length) return undefined;
  return { experts: ws[0]!, expertDim: r - ws.length };
}

/** The MoE blocks of a graph, in graph order. */
export function findMoeBlocks(graph: Graph): MoeBlock[] {
  const inputs = new Set(graph.inputs);
  const users = graph.users();
  const claimed = new Set<Node>();
  const blocks: MoeBlock[] = [];
  for (const n of graph.nodes) {
    if (claimed.has(n)) continue;
    const em = expertMatMul(n, inputs);
    if (!em) continue;
    const { experts: E, expertDim: e } = em;
    const r = n.outputs[0]!.shape!.length;
    const dispatch = n.inputs[0]!;
    // The region: nodes reached from the entry whose non-constant inputs are region values and whose
    // output keeps rank r and E at the expert dim (graph order is topological, so one pass).
    const region = new Set<Node>([n]);
    const values = new Set<Value>([n.outputs[0]!]);
    const entries = [n];
    for (const m of graph.nodes) {
      if (region.has(m) || !REGION_OPS.has(m.op) || m.domain !== '' || m.outputs.length !== 1) continue;
      const o = m.outputs[0]!;
      if (o.shape?.length !== r || o.shape[e] !== E) continue;
      const live = m.inputs.filter((v): v is Value => !!v && !isConst(v, inputs));
      if (m.op === 'MatMul' && m.inputs[0] === dispatch && expertMatMul(m, inputs)?.experts === E) entries.push(m);
      else if (!live.length || !live.every((v) => values.has(v))) continue;
      if (m.op === 'MatMul' && expertMatMul(m, inputs)?.experts !== E) continue;
      region.add(m);
      values.add(o);
    }
    for (const m of region) claimed.add(m);
    // The region's exit: the one value used outside it.
    const exits = [...values].filter((v) => graph.outputs.includes(v) || (users.get(v) ?? []).some((u) => !region.has(u)));
    if (exits.length !== 1) continue;
    const out = exits[0]!;
    // Expert weights: constants of region nodes with E at the dim aligned with the expert dim.
    const weights: { value: Value; dim: number }[] = [];
    for (const m of graph.nodes) {
      if (!region.has(m)) continue;
      for (const v of m.inputs) {
        if (!isConst(v, inputs) || weights.some((w) => w.value === v)) continue;
        const s = v.constant!.shape;
        const d = e - (r - s.length);
        if (d >= 0 && s[d] === E) weights.push({ value: v, dim: d });
      }
    }
    const combine = findCombine(out, e, r - 2, region, users);
    if (!combine) continue;
    blocks.push({
      label: `MoE#${blocks.length} (${n.inputs[1]!.name})`,
      experts: E,
      entries,
      dispatch,
      weights,
      out,
      expertDim: e,
      ...combine,
    });
  }
  return blocks;
}

type Combine = Pick<MoeBlock, 'combineInput' | 'combineTokenDim' | 'combine' | 'output' | 'outputTokenDim' | 'combined'>;

/**
 * Follows the experts' output through views and gating Muls to the op that reduces the expert dim
 * (ReduceSum over it, or GatherElements along it), then (top-k) through Muls to the ReduceSum that
 * sums the chosen experts: the MoE output.
 */
function findCombine(out: Value, e: number, t: number, region: Set<Node>, users: Map<Value, Node[]>): Combine | undefined {
  let cur = out;
  for (let step = 0; step < 8; step++) {
    const next = (users.get(cur) ?? []).filter((u) => !region.has(u));
    if (next.length !== 1) return undefined;
    const u = next[0]!;
    if (u.domain !== '') return undefined;
    if (u.op === 'Transpose') {
      const perm = u.attrs.maybeInts('perm') ?? shapeOf(cur).map((_, i, a) => a.length - 1 - i);
      e = perm.indexOf(e);
      t = perm.indexOf(t);
    } else if (u.op === 'Mul' || u.op === 'Div') {
      if (u.op === 'Div' && u.inputs[0] !== cur) return undefined;
      if (u.outputs[0]!.shape?.length !== cur.shape?.length) return undefined;
    } else if (u.op === 'ReduceSum') {
      const axes = ints(u.inputs[1]);
      const rank = shapeOf(cur).length;
      if (!axes || !axes.map((a) => (a < 0 ? a + rank : a)).includes(e) || axes.length !== 1) return undefined;
      const keep = u.attrs.int('keepdims', 1) !== 0;
      const o = u.outputs[0]!;
      return { combine: 'reduce', combineInput: cur, combineTokenDim: t, output: o, outputTokenDim: keep || e > t ? t : t - 1, combined: [o] };
    } else if (u.op === 'GatherElements') {
      const rank = shapeOf(cur).length;
      const a = u.attrs.int('axis', 0);
      if (u.inputs[0] !== cur || (a < 0 ? a + rank : a) !== e) return undefined;
      // The chosen experts' outputs [..., s, k, H] (token dim t); then Muls and the ReduceSum over k.
      let v = u.outputs[0]!;
      let vt = t;
      const combined = [v];
      for (let s2 = 0; s2 < 6; s2++) {
        const ns = users.get(v) ?? [];
        if (ns.length !== 1) break;
        const w = ns[0]!;
        if (w.op === 'Mul' && w.outputs[0]!.shape?.length === v.shape?.length) {
          v = w.outputs[0]!;
          combined.push(v);
          continue;
        }
        if (w.op === 'ReduceSum') {
          const axes = ints(w.inputs[1]);
          const rank = shapeOf(v).length;
          const norm = axes?.map((x) => (x < 0 ? x + rank : x));
          if (!norm || norm.length !== 1 || norm[0] === vt) break;
          const keep = w.attrs.int('keepdims', 1) !== 0;
          vt = keep || norm[0]! > vt ? vt : vt - 1;
          v = w.outputs[0]!;
          combined.push(v);
        }
        break;
      }
      return { combine: 'gather', combineInput: cur, combineTokenDim: t, output: v, outputTokenDim: vt, combined };
    } else if (u.op !== 'Identity') return undefined;
    cur = u.outputs[0]!;
  }
  return undefined;
}

/** prepare(): each entry MatMul's broadcast activation becomes an explicit Expand over the experts. */
export function insertDispatch(graph: Graph): number {
  const inputs = new Set(graph.inputs);
  const newName = namer(graph);
  const made = new Map<Node, Node>();
  const expanded = new Map<string, Value>();
  for (const n of graph.nodes) {
    const em = expertMatMul(n, inputs);
    if (!em) continue;
    const a = n.inputs[0]!;
    const out = shapeOf(n.outputs[0]!);
    const as = a.shape;
    if (!as || as.length < 2 || !as.every((d) => typeof d === 'number')) continue;
    const want = [...out.slice(0, out.length - 2), ...(as.slice(-2) as number[])];
    if (as.length === want.length && as.every((d, i) => d === want[i])) continue;
    // Only a true broadcast over the experts (the MatMul's batch dims), nothing else.
    const key = `${a.name}|${want.join(',')}`;
    let disp = expanded.get(key);
    if (!disp) {
      const shape = new Value(newName(`${a.name}.dispatch_shape`), 'int64', [want.length]);
      shape.constant = LazyTensor.of(Tensor.from('int64', [want.length], want));
      graph.initializers.push(shape);
      disp = new Value(newName(`${a.name}.dispatch`), a.dtype, want);
      made.set(n, new Node('Expand', [a, shape], [disp], new Attrs(), newName(`Expand_dispatch_${a.name}`)));
      expanded.set(key, disp);
    }
    n.inputs[0] = disp;
  }
  if (!made.size) return 0;
  const nodes: Node[] = [];
  for (const n of graph.nodes) {
    const e = made.get(n);
    if (e) nodes.push(e);
    nodes.push(n);
  }
  graph.nodes = nodes;
  return made.size;
}

export function expertSeeds(ctx: StrategyContext): AxisSeeds {
  const { graph, axis } = ctx;
  const k = axis.size;
  const blocks = findMoeBlocks(graph);
  if (!blocks.length)
    throw new UserError(
      `strategy expert: the model has no mixture-of-experts layer to shard over ${axis.name} (expected MatMuls with constant expert weights stacked along a leading expert dim, [E, H, F], combined over E by a ReduceSum or a GatherElements)`,
    );
  for (const b of blocks)
    if (b.experts < k)
      throw new UserError(`strategy expert: ${b.label} has ${b.experts} experts, fewer than mesh axis ${axis.name}=${k}; use a smaller axis`, {
        tensor: b.out.name,
      });
  const tokensOf = (b: MoeBlock): number => shapeOf(b.out)[shapeOf(b.out).length - 2]!;
  const short = blocks.find((b) => tokensOf(b) < k);
  const seeds: AxisSeeds = new Map();
  const seed = (v: Value, p: Placement, why: string): void => {
    if (!seeds.has(v)) seeds.set(v, { placement: p, why: `expert: ${why}` });
  };
  const plan = short
    ? `tokens replicated (${short.label} has ${tokensOf(short)} tokens, fewer than ${axis.name}=${k})`
    : `tokens split over ${axis.name}, all-to-all dispatch/combine`;
  for (const b of blocks) {
    const per = `${b.experts} experts over ${axis.name}=${k}`;
    for (const w of b.weights)
      seed(w.value, Shard(w.dim), `${b.label} expert weight ${w.value.name} split by experts (S(${w.dim}), ${per}) [${plan}]`);
    if (short) {
      for (const v of b.combined)
        seed(
          v,
          Partial('sum'),
          v === b.output
            ? `${b.label} output ${v.name}: each device combines its own experts' outputs, a partial sum over ${axis.name} (all-reduced) [${plan}]`
            : `${b.label} chosen experts' outputs ${v.name}: each device holds those of its own experts, zero for the others (masked gather; a partial sum over ${axis.name})`,
        );
      continue;
    }
    const ds = shapeOf(b.dispatch);
    const dt = ds.length - 2;
    if (ds[b.expertDim - (shapeOf(b.out).length - ds.length)] === b.experts)
      seed(b.dispatch, Shard(dt), `${b.label} dispatched tokens ${b.dispatch.name} start on their own device (S(${dt}), ${tokensOf(b)} tokens over ${axis.name}=${k}); the experts need them split by experts: all-to-all dispatch`);
    seed(
      b.combineInput,
      Shard(b.combineTokenDim),
      `${b.label} combine input ${b.combineInput.name} split by tokens (S(${b.combineTokenDim})): each device combines its own tokens after the all-to-all combine`,
    );
    seed(b.output, Shard(b.outputTokenDim), `${b.label} output ${b.output.name} stays split by tokens (S(${b.outputTokenDim}))`);
  }
  return seeds;
}

export const expertPreset: Preset = {
  name: 'expert',
  axis: 'ep',
  prepare(graph) {
    insertDispatch(graph);
  },
  annotate: expertSeeds,
};
