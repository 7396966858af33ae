/**
 * Stage assignment: the nodes of the micro-batch plan, in its (topological) order, cut into P
 * contiguous stages.
 *
 * Cost of a node (seconds on one device, DEFAULT_COST's device unless ShardOptions.cost is given):
 *   flops (OpDef.flops on the static shapes) × secondsPerFlop
 *   + (bytes of the constants it is the first to read + bytes of its outputs) × secondsPerByte,
 * so a stage pays for the weights it holds and streams as well as for its arithmetic. Each weight
 * counts once, at its first reader (a tied weight read on two stages is held by both; only the
 * first pays in the estimate).
 *
 * Where to cut: a cut between positions k-1 and k is crossed by every activation produced before k
 * and read at or after k (graph inputs and constants never cross: each stage is fed or holds its
 * own). At transformer layer boundaries (right after a residual Add, or after the norm that
 * follows it in post-LN models) only the residual stream crosses, plus an attention mask computed
 * once; inside a layer more values are live. So the candidates are the cuts with the fewest
 * crossing values: for thresholds t = the distinct crossing counts in increasing order, the best
 * cuts among those crossed by ≤ t values are found exactly (dynamic programming on prefix sums:
 * minimise the largest stage cost, then the bytes that cross, then cut early); the first threshold
 * whose largest stage cost is within BALANCE_SLACK of the best over all cuts wins. Deterministic.
 */
import { dtypeBytes } from '../../../ir/dtype.js';
import { UserError } from '../../../ir/errors.js';
import type { Graph, Node, Value } from '../../../ir/graph.js';
import type { OpRegistry } from '../../../ir/registry.js';
import { isStatic } from '../../../ir/shape.js';
import { type CostModel, DEFAULT_COST, flopsOf } from '../propagate.js';

/** A threshold's cuts are accepted when their largest stage costs at most this much more than the best cuts' (relative). */
export const BALANCE_SLACK = 0.1;

export interface StageAssignment {
  stages: number;
  /** Stage of every node of the graph. */
  stageOf: Map<Node, number>;
  /** Estimated cost per stage (seconds). */
  costs: number[];
  /** Node index (in graph order) where stage s+1 starts, per cut. */
  cuts: number[];
  /** Per cut: the values that cross it. */
  crossing: Value[][];
  /** Largest / smallest stage cost (Infinity when a stage costs nothing). */
  balance: number;
}

function valueBytes(v: Value): number {
  if (!v.dtype || v.dtype === 'string' || !v.shape || !isStatic(v.shape)) return 0;
  return v.shape.reduce((a, b) => a * b, 1) * dtypeBytes(v.dtype);
}

/** Estimated cost of every node (see the file comment), in graph order. */
export function nodeCosts(graph: Graph, registry: OpRegistry, cost: CostModel = DEFAULT_COST): number[] {
  const seen = new Set<Value>();
  return graph.nodes.map((n) => {
    let bytes = 0;
    for (const v of n.inputs)
      if (v?.constant && !v.producer && !seen.has(v)) {
        seen.add(v);
        bytes += valueBytes(v);
      }
    for (const o of n.outputs) bytes += valueBytes(o);
    return flopsOf(n, registry) * cost.secondsPerFlop + bytes * cost.secondsPerByte;
  });
}

interface Crossings {
  /** count[k], bytes[k]: values crossing the cut before node k (k = 1..N-1). */
  count: number[];
  bytes: number[];
  values(k: number): Value[];
}

function crossings(graph: Graph): Crossings {
  const N = graph.nodes.length;
  const index = new Map<Node, number>(graph.nodes.map((n, i) => [n, i]));
  const last = new Map<Value, number>();
  graph.nodes.forEach((n, i) => {
    for (const v of n.inputs) if (v?.producer && !v.constant && index.has(v.producer)) last.set(v, i);
  });
  const dc = new Array<number>(N + 1).fill(0);
  const db = new Array<number>(N + 1).fill(0);
  const spans: [Value, number, number][] = [];
  for (const [v, q] of last) {
    const p = index.get(v.producer!)!;
    if (q <= p) continue;
    spans.push([v, p, q]);
    dc[p + 1]! += 1;
    dc[q + 1]! -= 1;
    db[p + 1]! += valueBytes(v);
    db[q + 1]! -= valueBytes(v);
  }
  const count = new Array<number>(N).fill(0);
  const bytes = new Array<number>(N).fill(0);
  let c = 0;
  let b = 0;
  for (let k = 0; k < N; k++) {
    c += dc[k]!;
    b += db[k]!;
    count[k] = c;
    bytes[k] = b;
  }
  return {
    count,
    bytes,
    values: (k) =>
      spans
        .filter(([, p, q]) => p < k && k <= q)
        .sort((x, y) => x[1] - y[1])
        .map(([v]) => v),
  };
}

interface Cuts {
  positions: number[];
  max: number;
  bytes: number;
}

/** The best P-1 cuts among `cand` (sorted positions in 1..N-1): exact DP, O(P·K²). */
function bestCuts(prefix: readonly number[], cand: readonly number[], crossBytes: readonly number[], stages: number): Cuts | undefined {
  const N = prefix.length - 1;
  const K = cand.length;
  const cuts = stages - 1;
  if (cuts === 0) return { positions: [], max: prefix[N]!, bytes: 0 };
  if (K < cuts) return undefined;
  const at = Float64Array.from(cand, (p) => prefix[p]!);
  const cb = Float64Array.from(cand, (p) => crossBytes[p]!);
  // fMax/fBytes[c]: the best with j+1 cuts, the last at cand[c]; prev[j][c] the cut before it.
  let fMax = Float64Array.from(at, (x) => x - prefix[0]!);
  let fBytes = Float64Array.from(cb);
  const prev: Int32Array[] = [new Int32Array(K).fill(-1)];
  const beats = (m: number, b: number, bm: number, bb: number): boolean => {
    const tol = 1e-12 * Math.max(Math.abs(m), Math.abs(bm));
    return m < bm - tol || (m <= bm + tol && b < bb);
  };
  for (let j = 1; j < cuts; j++) {
    const gMax = new Float64Array(K).fill(Infinity);
    const gBytes = new Float64Array(K).fill(Infinity);
    const pj = new Int32Array(K).fill(-1);
    for (let c = j; c < K; c++) {
      let bm = Infinity;
      let bb = Infinity;
      let arg = -1;
      const ac = at[c]!;
      for (let b = j - 1; b < c; b++) {
        const fm = fMax[b]!;
        if (fm === Infinity) continue;
        const span = ac - at[b]!;
        const m = fm > span ? fm : span;
        const by = fBytes[b]! + cb[c]!;
        if (arg < 0 || beats(m, by, bm, bb)) {
          bm = m;
          bb = by;
          arg = b;
        }
      }
      gMax[c] = bm;
      gBytes[c] = bb;
      pj[c] = arg;
    }
    fMax = gMax;
    fBytes = gBytes;
    prev.push(pj);
  }
  let best = -1;
  let bestMax = Infinity;
  let bestBytes = Infinity;
  for (let c = cuts - 1; c < K; c++) {
    if (fMax[c] === Infinity) continue;
    const m = Math.max(fMax[c]!, prefix[N]! - at[c]!);
    if (best < 0 || beats(m, fBytes[c]!, bestMax, bestBytes)) {
      best = c;
      bestMax = m;
      bestBytes = fBytes[c]!;
    }
  }
  if (best < 0) return undefined;
  const positions: number[] = [];
  for (let j = cuts - 1, c = best; j >= 0; j--) {
    positions.unshift(cand[c]!);
    c = prev[j]![c]!;
  }
  return { positions, max: bestMax, bytes: bestBytes };
}

export function assignStages(graph: Graph, stages: number, registry: OpRegistry, cost?: CostModel): StageAssignment {
  const N = graph.nodes.length;
  if (N < stages)
    throw new UserError(`strategy pipeline: the model has ${N} node${N === 1 ? '' : 's'}, fewer than the ${stages} stages asked for; use fewer stages`);
  const costs = nodeCosts(graph, registry, cost);
  const prefix = [0];
  for (const c of costs) prefix.push(prefix[prefix.length - 1]! + c);
  const cross = crossings(graph);
  const all = Array.from({ length: Math.max(0, N - 1) }, (_, i) => i + 1);
  const unrestricted = bestCuts(prefix, all, cross.bytes, stages)!;
  let chosen = unrestricted;
  const thresholds = [...new Set(all.map((k) => cross.count[k]!))].sort((a, b) => a - b);
  for (const t of thresholds) {
    const cand = all.filter((k) => cross.count[k]! <= t);
    const r = bestCuts(prefix, cand, cross.bytes, stages);
    if (r && r.max <= unrestricted.max * (1 + BALANCE_SLACK)) {
      chosen = r;
      break;
    }
  }
  const bounds = [0, ...chosen.positions, N];
  const stageOf = new Map<Node, number>();
  const stageCosts: number[] = [];
  for (let s = 0; s < stages; s++) {
    for (let i = bounds[s]!; i < bounds[s + 1]!; i++) stageOf.set(graph.nodes[i]!, s);
    stageCosts.push(prefix[bounds[s + 1]!]! - prefix[bounds[s]!]!);
  }
  const lo = Math.min(...stageCosts);
  const hi = Math.max(...stageCosts);
  return {
    stages,
    stageOf,
    costs: stageCosts,
    cuts: chosen.positions,
    crossing: chosen.positions.map((k) => cross.values(k)),
    balance: lo > 0 ? hi / lo : hi > 0 ? Infinity : 1,
  };
}
