/**
 * Which candidates the layout search lets each node take on one mesh axis: the modelling that makes
 * the search plan for work at scale rather than for the tiny sizes it is often run on.
 *
 * Why: the search's objective is estimated time (formulate.ts). On small models (and on any model
 * at small batch) the per-collective latency dwarfs compute, so the cheapest plan by time alone is
 * to compute everything replicated and communicate nothing: a useless plan for a tensor-parallel
 * axis, and one that stops being cheapest as soon as the model is real. The intra-operator pass of
 * Alpa (Zheng et al., OSDI'22) rules out replicated computation of heavy operators for the same
 * reason; this file does so where a division is clean, so that the search still keeps a heavy op
 * replicated where dividing it would cut a structure its readers need whole (grouped-query
 * attention with fewer kv heads than devices; attention with fewer heads than devices).
 *
 * Heavy ops: the registry families `matmul` (MatMul, Gemm, Einsum, ...), `attention` and `conv`.
 * A heavy op is FORCED to divide its work (its replicated and non-dividing candidates are dropped)
 * when either
 *   (a) it has a candidate that splits a result cleanly: the result is sharded (not a partial sum)
 *       and reaches every next heavy op (or graph output) as it is, through light ops that each have
 *       a candidate reading it as it is and writing sharded results (no partial sums) that do the
 *       same (column-parallel projections, MLP up-projections, the LM head), or
 *   (b) it has a dividing candidate reading a non-constant operand in a split that a clean candidate
 *       (a) of a forced heavy op upstream produces and light ops carry as is (row-parallel
 *       projections after column-parallel ones; attention after split projections).
 * A forced op then keeps every dividing candidate (splitting a result or leaving partial sums): how
 * it divides is the cost's choice.
 *
 * Model-parallel axes (`splitWeights`, an axis named for tensor parallelism): the division must come
 * from the weights: a forced heavy op with a weight matrix (a constant operand of rank ≥ 2) keeps
 * only candidates that split one, (a) counts only such candidates, and a heavy op without weights
 * (attention) is forced only by (b). A lookup (Gather) of a weight matrix splits its table when it
 * can (the embedding is a weight of the model like any other). On other axes (dp, an open axis) any
 * dividing candidate counts (batch and sequence splits included).
 *
 * The candidates of light ops are not narrowed here; formulate.ts merges them into the split they
 * read (operator merging).
 */
import type { Graph, Node, Value } from '../../../ir/graph.js';
import { type Placement, formatPlacement, placementEq } from '../../../ir/layout.js';
import type { OpRegistry } from '../../../ir/registry.js';
import type { Candidate } from '../rule.js';

/** The op families whose work dominates a model: contractions, attention, convolutions. */
export const HEAVY_FAMILIES: ReadonlySet<string> = new Set(['matmul', 'attention', 'conv']);

/** Whether a node is a heavy op (its registry family is one of HEAVY_FAMILIES). */
export function isHeavy(n: Node, registry: OpRegistry): boolean {
  const def = registry.get(n.op, n.domain);
  return !!def && HEAVY_FAMILIES.has(def.family);
}

export interface DivideOptions {
  registry: OpRegistry;
  /** Whether v is a constant (a weight; not a graph input). */
  isConst(v: Value): boolean;
  /** A model-parallel axis (see the file comment). */
  splitWeights?: boolean;
}

export interface Division {
  /** Each node's allowed candidates (a subsequence of its given ones, never empty). */
  candidates: Map<Node, readonly Candidate[]>;
  /** The heavy ops forced to divide. */
  forced: Set<Node>;
}

const shard = (pl: Placement | null | undefined): boolean => pl?.kind === 'shard';

/** Whether a candidate splits some operand or result (divides the node's work). */
function divides(n: Node, c: Candidate): boolean {
  return c.inputs.some((pl, i) => !!n.inputs[i] && shard(pl)) || c.outputs.some(shard);
}

/** Whether v is a weight matrix: a constant of rank ≥ 2. */
const isWeight = (v: Value | null | undefined, isConst: (v: Value) => boolean): boolean => !!v && isConst(v) && (v.shape?.length ?? 0) >= 2;

/** Whether a candidate splits a weight matrix of the node. */
function splitsWeight(n: Node, c: Candidate, isConst: (v: Value) => boolean): boolean {
  return c.inputs.some((pl, i) => isWeight(n.inputs[i], isConst) && shard(pl));
}

/** The allowed candidates of every node on one axis (see the file comment); `given` in graph order. */
export function divideHeavyOps(graph: Graph, given: ReadonlyMap<Node, readonly Candidate[]>, opts: DivideOptions): Division {
  const { registry, isConst } = opts;
  const heavy = (n: Node): boolean => isHeavy(n, registry);
  const readers = new Map<Value, { node: Node; index: number }[]>();
  const producer = new Map<Value, { node: Node; index: number }>();
  for (const n of graph.nodes) {
    n.inputs.forEach((v, index) => (v ? readers.set(v, [...(readers.get(v) ?? []), { node: n, index }]) : undefined));
    n.outputs.forEach((v, index) => producer.set(v, { node: n, index }));
  }
  const outputs = new Set(graph.outputs);
  const out = new Map<Node, readonly Candidate[]>();
  const forced = new Set<Node>();
  /** The clean candidates (a) of each forced heavy op: the splits it hands on. */
  const cleanOf = new Map<Node, Candidate[]>();
  const memo = (): Map<Value, Map<string, boolean>> => new Map();
  const cached = (m: Map<Value, Map<string, boolean>>, v: Value, pl: Placement, f: () => boolean): boolean => {
    let byKey = m.get(v);
    if (!byKey) m.set(v, (byKey = new Map()));
    const k = formatPlacement(pl);
    let r = byKey.get(k);
    if (r === undefined) {
      byKey.set(k, false); // a cycle (none in a DAG) reads as "no"
      byKey.set(k, (r = f()));
    }
    return r;
  };
  // An output nobody reads (an unused optional result) needs no placement.
  const unread = (n: Node, j: number): boolean => n.outputs[j]!.name === '' || (!readers.has(n.outputs[j]!) && !outputs.has(n.outputs[j]!));
  const reads = (c: Candidate, i: number, pl: Placement): boolean => !!c.inputs[i] && placementEq(c.inputs[i]!, pl);

  // (a) v split as pl reaches the next heavy ops (or the graph's outputs) as it is.
  const downMemo = memo();
  const reaches = (v: Value, pl: Placement): boolean =>
    cached(downMemo, v, pl, () =>
      (readers.get(v) ?? []).every((u) => {
        const cs = (given.get(u.node) ?? []).filter((c) => reads(c, u.index, pl));
        if (heavy(u.node)) return cs.length > 0;
        return cs.some((c) => c.outputs.every((o, j) => unread(u.node, j) || (shard(o) && reaches(u.node.outputs[j]!, o))));
      }),
    );
  // (b) v split as pl is produced so by a forced heavy op, carried as is by light ops.
  const upMemo = memo();
  const fed = (v: Value, pl: Placement): boolean =>
    cached(upMemo, v, pl, () => {
      const p = producer.get(v);
      if (!p) return false; // a graph input or a constant
      const cs = (out.get(p.node) ?? given.get(p.node) ?? []).filter((c) => !!c.outputs[p.index] && placementEq(c.outputs[p.index]!, pl));
      if (heavy(p.node)) return cs.some((c) => cleanOf.get(p.node)?.includes(c));
      return cs.some((c) => c.inputs.some((w, i) => shard(w) && !!p.node.inputs[i] && !isConst(p.node.inputs[i]!) && fed(p.node.inputs[i]!, w!)));
    });

  for (const n of graph.nodes) {
    const cs = given.get(n) ?? [];
    let keep = cs;
    if (heavy(n)) {
      const weighted = !!opts.splitWeights && n.inputs.some((v) => isWeight(v, isConst));
      const role = (c: Candidate): boolean => !weighted || splitsWeight(n, c, isConst);
      const clean = (c: Candidate): boolean => c.outputs.some(shard) && c.outputs.every((o, j) => !shard(o) || reaches(n.outputs[j]!, o));
      const continues = (c: Candidate): boolean => c.inputs.some((w, i) => shard(w) && !!n.inputs[i] && !isConst(n.inputs[i]!) && fed(n.inputs[i]!, w!));
      const allowed = cs.filter((c) => divides(n, c) && role(c));
      const byResult = (!opts.splitWeights || weighted) && allowed.some(clean);
      if (allowed.length && (byResult || allowed.some(continues))) {
        keep = allowed;
        forced.add(n);
        cleanOf.set(n, allowed.filter(clean));
      }
    } else if (opts.splitWeights && n.op === 'Gather') {
      const split = cs.filter((c) => splitsWeight(n, c, isConst));
      if (split.length) keep = split;
    }
    out.set(n, keep);
  }
  return { candidates: out, forced };
}
