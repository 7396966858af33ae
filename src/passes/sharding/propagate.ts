/**
 * Propagation: choose one sharding candidate per node, for ONE mesh axis (axes are independent;
 * index.ts runs this once per axis and combines the results into layouts).
 *
 * Inputs: the nodes' candidates (rules + all-R, realised with the absolute units of units.ts),
 * seeds (a placement fixed for some values, from the strategy), and a cost model.
 *
 * Placement of a value as consumers see it:
 *   - seeded (any value)                → the seed (an intermediate value whose producer makes
 *                                         something else is resharded right after it);
 *   - initializer (constant), unseeded  → FREE: it takes whatever placement each consumer's
 *                                         candidate wants, at no communication cost (it is sliced,
 *                                         or kept on one device for P, at partition time);
 *   - graph input, unseeded             → R;
 *   - node output                       → the output placement of its node's chosen candidate.
 * Graph outputs must end R (index.ts inserts the collectives at the end), except outputs seeded
 * `resident`, which end in their seed.
 *
 * Cost of node n under candidate c (seconds, the objective every decision minimises locally):
 *   in   Σ over inputs: reshard cost from the input's placement to what c wants (reshard.ts ring
 *        formulas, bytes from the static shape and dtype); 0 when free, equal, or when another
 *        consumer already wants the same placement of that value (the collective is shared);
 *   work flops(n) × secondsPerFlop ÷ k when c shards any operand (k devices share the work), plus
 *        the bytes each device writes × secondsPerByte (so a sharded chain beats a replicated one
 *        when communication is equal);
 *   out  Σ over outputs: the reshard cost from c's output placement to each distinct placement
 *        that the current consumers want (R for a graph output, the seed for a seeded value).
 *
 * A candidate that needs a SEEDED constant in another placement than its seed (or the seed's
 * `use`, where a strategy gathers the stored weight at run time) is dropped while
 * the node has another candidate (the seed says how the weight is stored; gathering it on every
 * run would undo that). Each communicating collective also costs a fixed `secondsPerCollective`,
 * so one AllReduce beats a ReduceScatter + AllGather pair of the same bytes.
 *
 * Search (deterministic): every node starts at all-R; sweeps alternate forward (topological
 * order) and backward, each node taking the candidate of least cost given its neighbours' current
 * choices (iterated conditional modes). In a node's first visit ties go to the earlier candidate
 * (the rule's order, all-R last); later a node switches only when strictly cheaper, so sweeps end
 * when one changes nothing (at most `maxSweeps`). The forward sweep carries seeded placements down
 * chains (column-parallel weight → sharded activations → row-parallel matmul); the backward sweep
 * lets a value that is consumed sharded be produced sharded.
 */
import type { Graph, Node, Value } from '../../ir/graph.js';
import { type Placement, Replicate, Shard, placementEq } from '../../ir/layout.js';
import type { InferContext, OpRegistry, TypeInfo } from '../../ir/registry.js';
import type { MeshAxis } from './mesh.js';
import { dtypeSize, placementBytes, placementCost, singleAxisSteps } from './reshard.js';
import { COMMUNICATING } from './plan.js';
import type { Candidate } from './rule.js';
import type { UnitAnalysis } from './units.js';

export interface CostModel {
  /** Seconds per floating point operation on one device. */
  secondsPerFlop: number;
  /** Seconds per byte a node writes on one device. */
  secondsPerByte: number;
  /** Fixed seconds per communicating collective (launch and synchronisation), beyond the link's latency. */
  secondsPerCollective: number;
}

/** A 100 TFLOP/s device with 2 TB/s of memory bandwidth; 10 us to launch a collective. */
export const DEFAULT_COST: CostModel = { secondsPerFlop: 1e-14, secondsPerByte: 5e-13, secondsPerCollective: 1e-5 };

export interface Seed {
  placement: Placement;
  /** Why (for explain): e.g. "megatron: column-parallel first MLP matmul (W S(1))". */
  why: string;
  /**
   * Keep the seed's shard unit as given (spec files). Otherwise (presets) the unit becomes the lcm
   * of the seed's and the unit analysis's, when that divides the dim.
   */
  exactUnit?: boolean;
  /**
   * Constants only: the placement the value is USED in at run time when that differs from how it
   * is stored (`placement`), e.g. summa2d's weight panels, stored sharded and all-gathered along
   * one axis before their MatMul. Candidates are held to `use` as they are held to `placement`
   * otherwise, and resharding inserts the collective from the stored layout. Unset (every other
   * strategy): a seeded constant is used as stored, never gathered at run time.
   */
  use?: Placement;
  /**
   * Graph outputs only: the output KEEPS this placement at the end instead of being gathered to R
   * (each device returns its block; the caller assembles it if it needs the global tensor), e.g. a
   * head-sharded KV cache fed back to the next decoder step (strategies/kv-cache.ts). Unset: graph
   * outputs end R.
   */
  resident?: boolean;
}

export interface AxisPropagation {
  axis: string;
  /** Chosen candidate (absolute units) per node. */
  chosen: Map<Node, Candidate>;
  /** Placement consumers see, per non-free value (see the file comment). */
  placement: Map<Value, Placement>;
  /** Values whose placement is fixed by a seed. */
  seeded: Map<Value, Placement>;
  /** Estimated seconds of the plan on this axis (compute + reshards, as the search saw it). */
  cost: number;
  sweeps: number;
}

export interface PropagateOptions {
  registry: OpRegistry;
  /** Each node's candidates on this axis, relative units (units.ts nodeCandidates). */
  candidates: ReadonlyMap<Node, readonly Candidate[]>;
  units: UnitAnalysis;
  seeds: ReadonlyMap<Value, Seed>;
  cost?: CostModel;
  maxSweeps?: number;
}

const R = Replicate;

const staticShape = (v: Value): number[] => (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
const bytesOf = (v: Value): number => staticShape(v).reduce((a, b) => a * b, 1) * dtypeSize(v.dtype);

/**
 * A candidate with absolute units: the common block count of its sharded dims is chosen so that as
 * many dims as possible get their analysed unit (first such choice in entry order), every unit
 * dividing its dim; the relative factors stay exact.
 */
export function realiseCandidate(node: Node, c: Candidate, units: UnitAnalysis): Candidate {
  const entries: { v: Value; d: number; f: number }[] = [];
  const collect = (v: Value | null | undefined, p: Placement | null | undefined): void => {
    if (v && p && p.kind === 'shard') entries.push({ v, d: p.dim, f: p.unit ?? 1 });
  };
  c.inputs.forEach((p, i) => collect(node.inputs[i], p));
  c.outputs.forEach((p, i) => collect(node.outputs[i], p));
  if (!entries.length) return c;
  const size = (e: { v: Value; d: number }): number => {
    const n = e.v.shape?.[e.d];
    return typeof n === 'number' ? n : 0;
  };
  const valid = (base: number): boolean => entries.every((e) => size(e) % (base * e.f) === 0);
  let best = 1;
  let bestScore = -1;
  for (const e of entries) {
    const u = units.unit(e.v, e.d);
    if (u % e.f !== 0) continue;
    const base = u / e.f;
    if (!valid(base)) continue;
    const score = entries.filter((x) => units.unit(x.v, x.d) === base * x.f).length;
    if (score > bestScore) {
      best = base;
      bestScore = score;
    }
  }
  const fix = (p: Placement | null): Placement | null => (p && p.kind === 'shard' ? Shard(p.dim, best * (p.unit ?? 1)) : p);
  return { ...c, inputs: c.inputs.map(fix), outputs: c.outputs.map((p) => fix(p)!) };
}

/** The node's flops on its (global) shapes: OpDef.flops, 0 where an op has none. */
export function flopsOf(node: Node, registry: OpRegistry): number {
  const def = registry.get(node.op, node.domain);
  if (!def?.flops) return 0;
  const typeOf = (v: Value | null): TypeInfo | undefined => (v && v.dtype ? { dtype: v.dtype, shape: v.shape } : undefined);
  const ctx: InferContext = {
    node,
    attrs: node.attrs,
    inputs: node.inputs.map(typeOf),
    constant: (i) => {
      const c = node.inputs[i]?.constant;
      return c && c.size <= 4096 ? c.load() : undefined;
    },
  };
  try {
    const f = def.flops(ctx);
    return Number.isFinite(f) ? f : 0;
  } catch {
    return 0;
  }
}

interface Use {
  node: Node;
  index: number;
}

/**
 * An interned id per distinct placement (placementEq ⇔ same id), memoised per placement object:
 * the search compares and keys placements millions of times on a 70B-shaped graph.
 */
const placementIds = new Map<string, number>();
const idOfObject = new WeakMap<Placement, number>();
function pid(p: Placement): number {
  let id = idOfObject.get(p);
  if (id === undefined) {
    const key = p.kind === 'shard' ? `S${p.dim}:${p.unit ?? 1}` : p.kind === 'partial' ? `P${p.reduce}` : 'R';
    id = placementIds.get(key);
    if (id === undefined) placementIds.set(key, (id = placementIds.size));
    idOfObject.set(p, id);
  }
  return id;
}

/** Runs the search for one axis. */
export function propagateAxis(graph: Graph, axis: MeshAxis, opts: PropagateOptions): AxisPropagation {
  const cost = opts.cost ?? DEFAULT_COST;
  const k = axis.size;
  const nodes = graph.nodes;
  const graphInputs = new Set(graph.inputs);
  const outputs = new Set(graph.outputs);
  const seeded = new Map<Value, Placement>([...opts.seeds].map(([v, s]) => [v, s.placement]));
  const usedAs = new Map<Value, Placement>([...opts.seeds].map(([v, s]) => [v, s.use ?? s.placement]));
  const isFree = (v: Value): boolean => !!v.constant && !graphInputs.has(v) && !seeded.has(v);
  const resident = new Set([...opts.seeds].filter(([v, s]) => s.resident && outputs.has(v)).map(([v]) => v));

  // Seeded constants are hard: a candidate that needs a seeded weight in another placement is
  // dropped while the node has any other (gathering a weight on every run would undo the storage
  // layout the seed is for; also, on small models a weight gather is as cheap as an activation
  // all-reduce and would win).
  const keepsSeededConstants = (n: Node, c: Candidate): boolean =>
    c.inputs.every((w, i) => {
      const v = n.inputs[i];
      const s = v && v.constant && !graphInputs.has(v) ? usedAs.get(v) : undefined;
      return !s || !w || placementEq(s, w);
    });
  const cands = new Map<Node, Candidate[]>();
  for (const n of nodes) {
    const all = (opts.candidates.get(n) ?? []).map((c) => realiseCandidate(n, c, opts.units));
    const kept = all.filter((c) => keepsSeededConstants(n, c));
    cands.set(n, kept.length ? kept : all);
  }
  const uses = new Map<Value, Use[]>();
  for (const n of nodes)
    n.inputs.forEach((v, index) => {
      if (!v) return;
      const l = uses.get(v);
      if (l) l.push({ node: n, index });
      else uses.set(v, [{ node: n, index }]);
    });
  const work = new Map<Node, number>();
  for (const n of nodes) work.set(n, flopsOf(n, opts.registry) * cost.secondsPerFlop);
  const bytes = new Map<Value, number>();
  const bytesOfV = (v: Value): number => {
    let b = bytes.get(v);
    if (b === undefined) bytes.set(v, (b = bytesOf(v)));
    return b;
  };
  const shapes = new Map<Value, number[]>();
  const shapeOfV = (v: Value): number[] => {
    let sh = shapes.get(v);
    if (!sh) shapes.set(v, (sh = staticShape(v)));
    return sh;
  };
  // The search evaluates the same few reshards of a value over and over: each (value, from, to)
  // is computed once (placements are compared by interned id, see pid).
  const moves = new Map<Value, Map<number, number>>();
  const move = (v: Value, from: Placement, to: Placement): number => {
    const key = pid(from) * 1048576 + pid(to);
    let m = moves.get(v);
    if (!m) moves.set(v, (m = new Map()));
    let t = m.get(key);
    if (t === undefined) {
      t =
        placementCost(from, to, bytesOfV(v), shapeOfV(v), axis) +
        singleAxisSteps(from, to).filter((s) => COMMUNICATING.has(s.kind)).length * cost.secondsPerCollective * (k > 1 ? 1 : 0);
      m.set(key, t);
    }
    return t;
  };

  // Current choice (index into cands) per node: all-R to start (the last candidate).
  const choice = new Map<Node, number>();
  for (const n of nodes) {
    const cs = cands.get(n)!;
    const r = cs.findIndex((c) => c.inputs.every((p) => !p || p.kind === 'replicate') && c.outputs.every((p) => p.kind === 'replicate'));
    choice.set(n, r >= 0 ? r : cs.length - 1);
  }
  const chosen = (n: Node): Candidate => cands.get(n)![choice.get(n)!]!;

  /** Placement consumers see (undefined: free). */
  const placementOf = (v: Value): Placement | undefined => {
    const s = seeded.get(v);
    if (s) return s;
    if (isFree(v)) return undefined;
    const p = v.producer;
    if (!p || !cands.has(p)) return R;
    return chosen(p).outputs[p.outputs.indexOf(v)] ?? R;
  };

  /** Distinct placements the current consumers of v want (excluding `except`), R for a graph output. */
  const wants = (v: Value, except?: Node): Placement[] => {
    const out: Placement[] = [];
    const ids: number[] = [];
    const add = (p: Placement | null | undefined): void => {
      if (!p) return;
      const id = pid(p);
      if (ids.includes(id)) return;
      ids.push(id);
      out.push(p);
    };
    if (outputs.has(v) && !resident.has(v)) add(R);
    for (const u of uses.get(v) ?? []) if (u.node !== except) add(chosen(u.node).inputs[u.index]);
    return out;
  };
  /** wants(v, except) includes w (without building the list). */
  const wanted = (v: Value, w: Placement, except: Node): boolean => {
    const id = pid(w);
    if (outputs.has(v) && !resident.has(v) && id === pid(R)) return true;
    for (const u of uses.get(v) ?? []) {
      if (u.node === except) continue;
      const q = chosen(u.node).inputs[u.index];
      if (q && pid(q) === id) return true;
    }
    return false;
  };

  // Per candidate, the terms that do not depend on the neighbours' choices (the same numbers
  // nodeCost would compute each time, so sums and ties are unchanged).
  // (Keyed by node and candidate index: candidate objects may be shared between nodes.)
  const fixed = new Map<Node, ({ work: number; outBytes: number[] } | undefined)[]>();
  const fixedOf = (n: Node, ci: number): { work: number; outBytes: number[] } => {
    let fs = fixed.get(n);
    if (!fs) fixed.set(n, (fs = []));
    let f = fs[ci];
    if (!f) {
      const c = cands.get(n)![ci]!;
      const sharded = c.inputs.some((p) => p?.kind === 'shard') || c.outputs.some((p) => p.kind === 'shard');
      f = {
        work: work.get(n)! / (sharded ? k : 1),
        outBytes: c.outputs.map((p, i) => {
          const v = n.outputs[i]!;
          return placementBytes(bytesOfV(v), shapeOfV(v), p, k) * cost.secondsPerByte;
        }),
      };
      fs[ci] = f;
    }
    return f;
  };

  /** Cost of node n under its candidate number ci (see the file comment). */
  const nodeCost = (n: Node, ci: number): number => {
    const c = cands.get(n)![ci]!;
    let t = 0;
    const f = fixedOf(n, ci);
    for (let i = 0; i < c.inputs.length; i++) {
      const w = c.inputs[i];
      const v = n.inputs[i];
      if (!v || !w) continue;
      const p = placementOf(v);
      if (!p || pid(p) === pid(w)) continue;
      let dup = false;
      for (let j = 0; j < i; j++) {
        // An earlier input of the same value in the same placement: its reshard is shared.
        const wj = c.inputs[j];
        if (n.inputs[j] === v && wj && pid(wj) === pid(w)) dup = true;
      }
      if (dup) continue;
      if (wanted(v, w, n)) continue;
      t += move(v, p, w);
    }
    t += f.work;
    for (let i = 0; i < c.outputs.length; i++) {
      const p = c.outputs[i]!;
      const v = n.outputs[i]!;
      t += f.outBytes[i]!;
      const pin = seeded.get(v);
      if (pin) {
        t += move(v, p, pin);
        continue;
      }
      for (const w of wants(v)) if (pid(w) !== pid(p)) t += move(v, p, w);
    }
    return t;
  };

  const maxSweeps = opts.maxSweeps ?? 12;
  let sweeps = 0;
  const visited = new Set<Node>();
  for (; sweeps < maxSweeps; sweeps++) {
    let changed = false;
    const order = sweeps % 2 === 0 ? nodes : [...nodes].reverse();
    for (const n of order) {
      const cs = cands.get(n)!;
      if (cs.length < 2) continue;
      const first = !visited.has(n);
      visited.add(n);
      const cur = choice.get(n)!;
      let best = cur;
      let bestCost = nodeCost(n, cur);
      for (let i = 0; i < cs.length; i++) {
        if (i === cur) continue;
        const t = nodeCost(n, i);
        const better = first ? t < bestCost - 1e-15 * Math.abs(bestCost) || (t <= bestCost && i < best) : t < bestCost * (1 - 1e-9) - 1e-18;
        if (better) {
          best = i;
          bestCost = t;
        }
      }
      if (best !== cur) {
        choice.set(n, best);
        changed = true;
      }
    }
    if (!changed && sweeps > 0) {
      sweeps++;
      break;
    }
  }

  // The plan's cost as the search sees it: compute + one reshard per (value, distinct want).
  let total = 0;
  for (const n of nodes) {
    const c = chosen(n);
    const sharded = c.inputs.some((p) => p?.kind === 'shard') || c.outputs.some((p) => p.kind === 'shard');
    total += work.get(n)! / (sharded ? k : 1);
  }
  const values = new Set<Value>([...graph.inputs, ...nodes.flatMap((n) => n.outputs)]);
  for (const v of values) {
    const p = placementOf(v);
    if (!p) continue;
    const prod = v.producer && cands.has(v.producer) ? chosen(v.producer).outputs[v.producer.outputs.indexOf(v)]! : p;
    if (!placementEq(prod, p)) total += move(v, prod, p);
    for (const w of wants(v)) if (!placementEq(w, p)) total += move(v, p, w);
  }

  const placement = new Map<Value, Placement>();
  for (const v of values) {
    const p = placementOf(v);
    if (p) placement.set(v, p);
  }
  for (const v of graph.initializers) {
    const p = placementOf(v);
    if (p) placement.set(v, p);
  }
  const chosenMap = new Map<Node, Candidate>();
  for (const n of nodes) chosenMap.set(n, chosen(n));
  return { axis: axis.name, chosen: chosenMap, placement, seeded, cost: total, sweeps };
}
