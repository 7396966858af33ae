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
 *
 * Speed (a 70B-shaped graph has ~5000 nodes and ~22000 candidates, visited a few times per sweep):
 * the search runs on dense numbers — nodes by position, values by index, placements by interned id,
 * consumers as flat lists — so a candidate's cost reads arrays and allocates nothing; reshard and
 * storage costs are cached per (shape, dtype, placements), which the 80 identical layers share;
 * realised candidates are memoised per rule candidate and block count (read-only, shared between
 * nodes). The sums are made in the same order as the plain definition above, so costs, ties and
 * choices are the same numbers.
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

/** A candidate's sharded slots: input (true) or output, slot, dim, relative factor. */
type ShardSlot = [input: boolean, slot: number, dim: number, factor: number];
const shardSlots = new WeakMap<Candidate, ShardSlot[]>();
/** Realised candidates per relative candidate and block count (read-only, shared between nodes). */
const realised = new WeakMap<Candidate, Map<number, Candidate>>();

/**
 * A candidate with absolute units: the common block count of its sharded dims is chosen so that as
 * many dims as possible get their analysed unit (first such choice in entry order), every unit
 * dividing its dim; the relative factors stay exact. The result depends only on the candidate and
 * that choice, so it is memoised on both (the 80 layers of a 70B model realise the same few).
 */
export function realiseCandidate(node: Node, c: Candidate, units: UnitAnalysis): Candidate {
  let slots = shardSlots.get(c);
  if (!slots) {
    slots = [];
    c.inputs.forEach((p, i) => p && p.kind === 'shard' && slots!.push([true, i, p.dim, p.unit ?? 1]));
    c.outputs.forEach((p, i) => p && p.kind === 'shard' && slots!.push([false, i, p.dim, p.unit ?? 1]));
    shardSlots.set(c, slots);
  }
  if (!slots.length) return c;
  // The entries: sharded slots whose operand exists, with the dim's size and analysed unit.
  const f: number[] = [];
  const size: number[] = [];
  const unit: number[] = [];
  for (const [input, slot, d, factor] of slots) {
    const v = input ? node.inputs[slot] : node.outputs[slot];
    if (!v) continue;
    const n = v.shape?.[d];
    f.push(factor);
    size.push(typeof n === 'number' ? n : 0);
    unit.push(units.unit(v, d));
  }
  if (!f.length) return c;
  const valid = (base: number): boolean => size.every((n, i) => n % (base * f[i]!) === 0);
  let best = 1;
  let bestScore = -1;
  for (let e = 0; e < f.length; e++) {
    const u = unit[e]!;
    if (u % f[e]! !== 0) continue;
    const base = u / f[e]!;
    if (!valid(base)) continue;
    let score = 0;
    for (let x = 0; x < f.length; x++) if (unit[x] === base * f[x]!) score++;
    if (score > bestScore) {
      best = base;
      bestScore = score;
    }
  }
  let byBase = realised.get(c);
  if (!byBase) realised.set(c, (byBase = new Map()));
  let out = byBase.get(best);
  if (!out) {
    const fix = (p: Placement | null): Placement | null => (p && p.kind === 'shard' ? Shard(p.dim, best * (p.unit ?? 1)) : p);
    byBase.set(best, (out = { ...c, inputs: c.inputs.map(fix), outputs: c.outputs.map((p) => fix(p)!) }));
  }
  return out;
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

/**
 * An interned id per distinct placement (placementEq ⇔ same id), memoised per placement object:
 * the search compares and keys placements millions of times on a 70B-shaped graph.
 */
const placementIds = new Map<string, number>();
const idOfObject = new WeakMap<Placement, number>();
/** The first placement object seen per id (for the reshard formulas, which see only its fields). */
const placementById: Placement[] = [];
function pid(p: Placement): number {
  let id = idOfObject.get(p);
  if (id === undefined) {
    const key = p.kind === 'shard' ? `S${p.dim}:${p.unit ?? 1}` : p.kind === 'partial' ? `P${p.reduce}` : 'R';
    id = placementIds.get(key);
    if (id === undefined) {
      placementIds.set(key, (id = placementIds.size));
      placementById.push(p);
    }
    idOfObject.set(p, id);
  }
  return id;
}
/** pid of an optional placement; -1 when absent. */
const pidOrNone = (p: Placement | null | undefined): number => (p ? pid(p) : -1);
/** A candidate's placements as pids, and whether it shards anything (memoised: candidates are read-only and shared). */
interface CandidateIds {
  inputs: readonly number[];
  outputs: readonly number[];
  sharded: boolean;
}
const candidateIds = new WeakMap<Candidate, CandidateIds>();
function placementIdsOf(c: Candidate): CandidateIds {
  let ids = candidateIds.get(c);
  if (!ids) {
    const sharded = c.inputs.some((p) => p?.kind === 'shard') || c.outputs.some((p) => p.kind === 'shard');
    candidateIds.set(c, (ids = { inputs: c.inputs.map(pidOrNone), outputs: c.outputs.map(pidOrNone), sharded }));
  }
  return ids;
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

  // The search works on dense numbers: nodes by position, values by first appearance, placements
  // by interned id (pid), so that a candidate's cost is array reads with no allocation.
  const N = nodes.length;
  const nodeIndex = new Map<Node, number>();
  nodes.forEach((n, i) => nodeIndex.set(n, i));
  const valueIndex = new Map<Value, number>();
  const vals: Value[] = [];
  const vid = (v: Value): number => {
    let i = valueIndex.get(v);
    if (i === undefined) {
      valueIndex.set(v, (i = vals.length));
      vals.push(v);
    }
    return i;
  };
  const R_ID = pid(R);
  /** Per node and candidate: the pid of each input placement (-1: none or no input) and of each output. */
  const candIn: (readonly number[])[][] = [];
  const candOut: (readonly number[])[][] = [];
  /** Per node: the value id of each input (-1: absent) and output. */
  const nodeIn: number[][] = [];
  const nodeOut: number[][] = [];
  for (const n of nodes) {
    nodeIn.push(n.inputs.map((v) => (v ? vid(v) : -1)));
    nodeOut.push(n.outputs.map(vid));
    const cs = cands.get(n)!.map(placementIdsOf);
    candIn.push(cs.map((c) => c.inputs));
    candOut.push(cs.map((c) => c.outputs));
  }
  for (const v of graph.inputs) vid(v);
  for (const v of graph.outputs) vid(v);
  const V = vals.length;
  /** Per value: the seed's pid (-1: none), whether it is free, its producer (node index, -1: none) and output slot, whether it must end R. */
  const seedPid = new Int32Array(V).fill(-1);
  const free = new Uint8Array(V);
  const prodNode = new Int32Array(V).fill(-1);
  const prodSlot = new Int32Array(V);
  const endsR = new Uint8Array(V);
  for (let v = 0; v < V; v++) {
    const value = vals[v]!;
    const s = seeded.get(value);
    if (s) seedPid[v] = pid(s);
    free[v] = isFree(value) ? 1 : 0;
    const p = value.producer;
    const pi = p ? nodeIndex.get(p) : undefined;
    if (p && pi !== undefined && cands.has(p)) {
      prodNode[v] = pi;
      prodSlot[v] = p.outputs.indexOf(value);
    }
    endsR[v] = outputs.has(value) && !resident.has(value) ? 1 : 0;
  }
  // Uses of each value (consumer node, input slot), in node then slot order, as flat lists.
  const useStart = new Int32Array(V + 1);
  for (let n = 0; n < N; n++) for (const v of nodeIn[n]!) if (v >= 0) useStart[v + 1]!++;
  for (let v = 0; v < V; v++) useStart[v + 1]! += useStart[v]!;
  const fill = useStart.slice(0, V);
  const useNode = new Int32Array(useStart[V]!);
  const useSlot = new Int32Array(useStart[V]!);
  let maxUses = 0;
  for (let n = 0; n < N; n++)
    nodeIn[n]!.forEach((v, i) => {
      if (v < 0) return;
      const at = fill[v]!++;
      useNode[at] = n;
      useSlot[at] = i;
    });
  for (let v = 0; v < V; v++) maxUses = Math.max(maxUses, useStart[v + 1]! - useStart[v]!);

  const work = new Float64Array(N);
  nodes.forEach((n, i) => (work[i] = flopsOf(n, opts.registry) * cost.secondsPerFlop));
  // Reshard and storage costs depend on a value only through its static shape and dtype: values of
  // one shape (the same tensor in each of 80 identical layers) share one cache.
  const shapeClass = new Int32Array(V);
  const classShape: number[][] = [];
  const classBytes: number[] = [];
  {
    const classes = new Map<string, number>();
    for (let v = 0; v < V; v++) {
      const shape = staticShape(vals[v]!);
      const size = dtypeSize(vals[v]!.dtype);
      const key = `${size}:${shape.join(',')}`;
      let c = classes.get(key);
      if (c === undefined) {
        classes.set(key, (c = classShape.length));
        classShape.push(shape);
        classBytes.push(shape.reduce((a, b) => a * b, 1) * size);
      }
      shapeClass[v] = c;
    }
  }
  // The search evaluates the same few reshards of a value over and over: each (shape, from, to)
  // is computed once.
  const moves: Map<number, number>[] = classShape.map(() => new Map());
  const collectiveSeconds = cost.secondsPerCollective * (k > 1 ? 1 : 0);
  const move = (v: number, from: number, to: number): number => {
    const c = shapeClass[v]!;
    const key = from * 1048576 + to;
    const m = moves[c]!;
    let t = m.get(key);
    if (t === undefined) {
      const f = placementById[from]!;
      const w = placementById[to]!;
      t = placementCost(f, w, classBytes[c]!, classShape[c]!, axis) + singleAxisSteps(f, w).filter((s) => COMMUNICATING.has(s.kind)).length * collectiveSeconds;
      m.set(key, t);
    }
    return t;
  };
  const stored: Map<number, number>[] = classShape.map(() => new Map());
  /** Seconds to write a value of class c under placement p on one device. */
  const storeCost = (c: number, p: number): number => {
    const m = stored[c]!;
    let t = m.get(p);
    if (t === undefined) m.set(p, (t = placementBytes(classBytes[c]!, classShape[c]!, placementById[p]!, k) * cost.secondsPerByte));
    return t;
  };

  // Current choice (index into cands) per node: all-R to start (the last candidate).
  const choice = new Int32Array(N);
  nodes.forEach((n, i) => {
    const cs = cands.get(n)!;
    const r = cs.findIndex((c) => c.inputs.every((p) => !p || p.kind === 'replicate') && c.outputs.every((p) => p.kind === 'replicate'));
    choice[i] = r >= 0 ? r : cs.length - 1;
  });
  const chosen = (n: Node): Candidate => cands.get(n)![choice[nodeIndex.get(n)!]!]!;

  /** Placement consumers see (undefined: free). */
  const placementOf = (v: Value): Placement | undefined => {
    const s = seeded.get(v);
    if (s) return s;
    if (isFree(v)) return undefined;
    const p = v.producer;
    if (!p || !cands.has(p)) return R;
    return chosen(p).outputs[p.outputs.indexOf(v)] ?? R;
  };
  /** placementOf as a pid (-1: free). */
  const placementPid = (v: number): number => {
    const s = seedPid[v]!;
    if (s >= 0) return s;
    if (free[v]) return -1;
    const p = prodNode[v]!;
    if (p < 0) return R_ID;
    const o = candOut[p]![choice[p]!]!;
    const slot = prodSlot[v]!;
    const q = slot >= 0 && slot < o.length ? o[slot]! : -1;
    return q >= 0 ? q : R_ID;
  };

  /** The pid the use at position u (useStart order) wants, -1 for none. */
  const wantAt = (u: number): number => {
    const n = useNode[u]!;
    const c = candIn[n]![choice[n]!]!;
    const slot = useSlot[u]!;
    return slot < c.length ? c[slot]! : -1;
  };
  /** wants(v, except) includes w (without building the list). */
  const wanted = (v: number, w: number, except: number): boolean => {
    if (endsR[v] && w === R_ID) return true;
    for (let u = useStart[v]!, end = useStart[v + 1]!; u < end; u++) if (useNode[u] !== except && wantAt(u) === w) return true;
    return false;
  };
  /** Scratch list of the distinct wants of one value (reused: nodeCost allocates nothing). */
  const seen = new Int32Array(maxUses + 1);
  /**
   * The distinct placements the current consumers of v want, R first for a graph output, then in
   * use order, into seen[0..count); returns count.
   */
  const wantsOf = (v: number): number => {
    let count = 0;
    if (endsR[v]) seen[count++] = R_ID;
    for (let u = useStart[v]!, end = useStart[v + 1]!; u < end; u++) {
      const q = wantAt(u);
      if (q < 0) continue;
      let dup = false;
      for (let j = 0; j < count; j++) if (seen[j] === q) dup = true;
      if (!dup) seen[count++] = q;
    }
    return count;
  };

  /** Per node and candidate, the compute term (work ÷ k when the candidate shards anything). */
  const fixedWork: number[][] = nodes.map((n, i) => cands.get(n)!.map((c) => work[i]! / (placementIdsOf(c).sharded ? k : 1)));

  /** Cost of node n (index) under its candidate number ci (see the file comment). */
  const nodeCost = (n: number, ci: number): number => {
    const cin = candIn[n]![ci]!;
    const vin = nodeIn[n]!;
    let t = 0;
    for (let i = 0; i < cin.length; i++) {
      const w = cin[i]!;
      const v = i < vin.length ? vin[i]! : -1;
      if (v < 0 || w < 0) continue;
      const p = placementPid(v);
      if (p < 0 || p === w) continue;
      let dup = false;
      // An earlier input of the same value in the same placement: its reshard is shared.
      for (let j = 0; j < i; j++) if (vin[j] === v && cin[j] === w) dup = true;
      if (dup) continue;
      if (wanted(v, w, n)) continue;
      t += move(v, p, w);
    }
    t += fixedWork[n]![ci]!;
    const cout = candOut[n]![ci]!;
    const vout = nodeOut[n]!;
    for (let i = 0; i < cout.length; i++) {
      const p = cout[i]!;
      const v = vout[i]!;
      t += storeCost(shapeClass[v]!, p);
      const pin = seedPid[v]!;
      if (pin >= 0) {
        t += move(v, p, pin);
        continue;
      }
      for (let j = 0, count = wantsOf(v); j < count; j++) if (seen[j] !== p) t += move(v, p, seen[j]!);
    }
    return t;
  };
  const maxSweeps = opts.maxSweeps ?? 12;
  let sweeps = 0;
  const visited = new Uint8Array(N);
  for (; sweeps < maxSweeps; sweeps++) {
    let changed = false;
    const forward = sweeps % 2 === 0;
    for (let step = 0; step < N; step++) {
      const n = forward ? step : N - 1 - step;
      const count = candIn[n]!.length;
      if (count < 2) continue;
      const first = !visited[n];
      visited[n] = 1;
      const cur = choice[n]!;
      let best = cur;
      let bestCost = nodeCost(n, cur);
      for (let i = 0; i < count; i++) {
        if (i === cur) continue;
        const t = nodeCost(n, i);
        const better = first ? t < bestCost - 1e-15 * Math.abs(bestCost) || (t <= bestCost && i < best) : t < bestCost * (1 - 1e-9) - 1e-18;
        if (better) {
          best = i;
          bestCost = t;
        }
      }
      if (best !== cur) {
        choice[n] = best;
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
  for (let n = 0; n < N; n++) total += fixedWork[n]![choice[n]!]!;
  const values = new Set<Value>([...graph.inputs, ...nodes.flatMap((n) => n.outputs)]);
  for (const value of values) {
    const v = vid(value);
    const p = placementPid(v);
    if (p < 0) continue;
    const prod = prodNode[v]! >= 0 ? candOut[prodNode[v]!]![choice[prodNode[v]!]!]![prodSlot[v]!]! : p;
    if (prod !== p) total += move(v, prod, p);
    for (let j = 0, count = wantsOf(v); j < count; j++) if (seen[j] !== p) total += move(v, p, seen[j]!);
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
