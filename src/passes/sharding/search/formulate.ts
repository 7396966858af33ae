/**
 * The layout search of ONE mesh axis as a mixed-integer linear program (solved by highs.ts).
 *
 * Candidates: every node's candidates (the sharding rules' rows plus all-R, units realised as
 * propagation realises them), restricted by pins and then by divide.ts: heavy ops (MatMul, Gemm,
 * Conv, attention) whose work divides cleanly over the axis may not run replicated, and on a
 * model-parallel axis (tp) they divide by their weights (Alpa's rule; see divide.ts for why and
 * where it stops).
 *
 * Variables (binary unless said):
 *   x[n,c]   node n runs its candidate c; Σ_c x[n,c] = 1.
 *   y[v,p]   graph input v is fed in placement p (R or one a consumer wants; a fed input is sliced
 *            for free); Σ_p y[v,p] = 1. A node output's placement p is indicated by the sum of its
 *            producer's x over the candidates that output p (no variable).
 *   f[r,p,w] (continuous ≥ 0) per read r of a value (a consumer's input, or the graph output's R):
 *            the value produced in p is read in w. Σ_w f[r,p,w] = [v produced in p] and
 *            Σ_p f[r,p,w] = Σ x of the reader's candidates wanting w (the transportation polytope
 *            of the edge: its LP relaxation is tight on chains, and in practice on the whole
 *            program, so HiGHS solves it at the root). Where one side has a single option the
 *            other side's indicator stands for f (no column).
 *   e[v,p,w] (continuous ≥ 0; values with several reads) the copy of v in w made from p:
 *            e ≥ f[r,p,w] for every read r, so reads that want the same placement share one
 *            reshard, as the plan assembly shares it. With a single read the cost sits on f.
 *   z[w,p]   (memory limit only) constant w is stored in placement p: z ≥ Σ x of a use wanting p;
 *   A        (memory limit only, continuous) the activation estimate: A ≥ the bytes node n reads
 *            and writes (non-constant operands, local shapes) for every n.
 * Operator merging (Alpa's coarsening, as constraints): a light op reading its main operand (the
 *   largest non-constant one made by a node) in a split the producer makes, when one of its
 *   candidates reads that split as it is, takes such a candidate: Σ x[n, reading p] ≥ [produced
 *   in p] for every sharded p. The light ops of a layer so travel with the split of the heavy op
 *   before them; partial sums and replicas are not followed (where to reduce, and where to split a
 *   replica for free, stay the cost's choice).
 * Objective (nanoseconds): Σ x[n,c]·compute(n,c) + Σ reshard(p→w)·(e or f) + ε·Σ x[n,c]·(index of c),
 *   compute = roofline max(flops·share·s/flop, local bytes read and written·s/byte) where share is
 *   the smallest local/global fraction among the sharded operands (1/k), and reshard = the ring
 *   formulas of reshard.ts placementCost plus the cost model's fixed secondsPerCollective per
 *   communicating step (propagation's reshard cost) plus, per local step (LocalShard,
 *   LocalPartial), the bytes it reads and writes × secondsPerByte (a copy, as cost.ts costs it).
 *   ε breaks ties toward the rules' order (all-R last) so equal-cost optima resolve the same way
 *   every time.
 * Memory (when a limit is given): Σ z[w,p]·local bytes(w,p) + A ≤ limit (MiB); the parameter part
 *   Σ z·bytes alone ≤ paramLimit where one is given. Bytes are local after the axes already solved (`frac`).
 * Pinned values (strategies/custom.ts pinLayout) restrict the choice: a pinned constant or node
 * output keeps only the candidates that agree with the pin (when any does), a pinned graph input
 * is fed in its pin.
 */
import type { Graph, Node, Value } from '../../../ir/graph.js';
import { type Placement, Replicate, formatPlacement, placementEq } from '../../../ir/layout.js';
import type { OpRegistry } from '../../../ir/registry.js';
import type { MeshAxis } from '../mesh.js';
import { COMMUNICATING } from '../plan.js';
import { type CostModel, flopsOf } from '../propagate.js';
import { dtypeSize, placementBytes, placementCost, singleAxisSteps } from '../reshard.js';
import type { Candidate } from '../rule.js';
import { divideHeavyOps, isHeavy } from './divide.js';
import { type HighsOptions, solveLp } from './highs.js';

export interface AxisProblem {
  graph: Graph;
  axis: MeshAxis;
  registry: OpRegistry;
  cost: CostModel;
  /** Each node's candidates on this axis, units realised (absolute). */
  candidates: ReadonlyMap<Node, readonly Candidate[]>;
  /** Pinned placements on this axis. */
  pins: ReadonlyMap<Value, Placement>;
  /** The fraction of a value's global bytes one device holds after the axes already solved (1 on the first). */
  frac(v: Value): number;
  /** Per-device memory limit (bytes), or none. */
  memoryLimit?: number;
  /**
   * Per-device bytes of constants (parameters) the plan may hold on this axis, or none: an axis
   * whose name gives it a role (tp) must split the weights at least as much as that role's preset.
   */
  paramLimit?: number;
  /** A model-parallel axis (tp): heavy ops divide by their weights, lookups split their tables (divide.ts). */
  splitWeights?: boolean;
  /** No modelling (no forced division, no merging): every candidate free, time alone decides (for comparison). */
  free?: boolean;
  /** Minimise the parameter bytes instead of time (to say how far a plan is from fitting). */
  minimiseMemory?: boolean;
  /** Seconds the solver may take. */
  timeLimit: number;
}

export interface AxisSolution {
  /** 'time-limit' (the node or time limit) with `chosen` filled: the best plan found (not proven optimal). */
  status: 'optimal' | 'infeasible' | 'time-limit' | 'failed';
  /** The solver's status text. */
  solverStatus: string;
  chosen: Map<Node, Candidate>;
  /** Placement each graph input is fed in. */
  inputs: Map<Value, Placement>;
  /** Objective: seconds (or bytes with minimiseMemory). */
  objective: number;
  variables: number;
  binaries: number;
  constraints: number;
  /** Heavy ops forced to divide their work (divide.ts). */
  forced: number;
  solveMs: number;
}

const NS = 1e9;
const MIB = 2 ** 20;
const EPS = 1e-2; // ns per candidate index: far below any real cost difference, above the solver's gap

const key = (p: Placement): string => formatPlacement(p);
const staticShape = (v: Value): number[] => (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
const globalBytes = (v: Value): number => staticShape(v).reduce((a, b) => a * b, 1) * dtypeSize(v.dtype);
const num = (x: number): string => {
  const s = Number.isInteger(x) ? String(x) : x.toPrecision(12);
  return s.includes('e') ? Number(s).toFixed(12).replace(/0+$/, '') : s;
};

/** A small LP-format model writer: named columns, linear rows, binaries. */
class LpModel {
  private cols: { name: string; binary: boolean; lo?: number; hi?: number }[] = [];
  private obj = new Map<number, number>();
  private rows: string[] = [];
  binaries = 0;

  col(binary: boolean, lo?: number, hi?: number): number {
    this.cols.push({ name: `v${this.cols.length}`, binary, lo, hi });
    if (binary) this.binaries++;
    return this.cols.length - 1;
  }
  name(i: number): string {
    return this.cols[i]!.name;
  }
  get columns(): number {
    return this.cols.length;
  }
  get constraints(): number {
    return this.rows.length;
  }
  cost(i: number, c: number): void {
    if (c !== 0) this.obj.set(i, (this.obj.get(i) ?? 0) + c);
  }
  fix(i: number, value: number): void {
    this.cols[i]!.lo = value;
    this.cols[i]!.hi = value;
  }
  row(terms: readonly [number, number][], sense: '<=' | '>=' | '=', rhs: number): void {
    const merged = new Map<number, number>();
    for (const [i, c] of terms) merged.set(i, (merged.get(i) ?? 0) + c);
    const parts = [...merged].filter(([, c]) => c !== 0).map(([i, c]) => `${c < 0 ? '-' : '+'} ${num(Math.abs(c))} ${this.name(i)}`);
    if (!parts.length) return;
    this.rows.push(` r${this.rows.length}: ${wrap(parts)} ${sense} ${num(rhs)}`);
  }
  text(): string {
    const obj = [...this.obj].map(([i, c]) => `${c < 0 ? '-' : '+'} ${num(Math.abs(c))} ${this.name(i)}`);
    const bounds = this.cols.filter((c) => c.lo !== undefined || c.hi !== undefined).map((c) => ` ${num(c.lo ?? 0)} <= ${c.name} <= ${c.hi === undefined ? 'inf' : num(c.hi)}`);
    const bins = this.cols.filter((c) => c.binary).map((c) => c.name);
    return [
      'Minimize',
      ` obj: ${obj.length ? wrap(obj) : '0 v0'}`,
      'Subject To',
      ...this.rows,
      'Bounds',
      ...bounds,
      ...(bins.length ? ['Binary', ...chunks(bins)] : []),
      'End',
      '',
    ].join('\n');
  }
}

const chunks = (xs: string[]): string[] => {
  const out: string[] = [];
  for (let i = 0; i < xs.length; i += 16) out.push(` ${xs.slice(i, i + 16).join(' ')}`);
  return out;
};
const wrap = (parts: string[]): string => chunks(parts).join('\n').trimStart();

interface Use {
  node: Node;
  index: number;
}

export const SOLVER_OPTIONS: HighsOptions = {
  output_flag: false,
  presolve: 'on',
  threads: 1,
  random_seed: 0,
  mip_rel_gap: 1e-5,
  mip_abs_gap: 1,
  // A deterministic work limit (branch-and-bound nodes): the wall-clock time_limit is only a safety
  // net, since a plan must not depend on how fast the machine is.
  mip_max_nodes: 400,
};

/** The operand a light op follows: its largest non-constant operand made by another node (the first on ties), or -1. */
function mainOperand(n: Node, made: (v: Value) => boolean, bytesOf: (v: Value) => number): number {
  let best = -1;
  n.inputs.forEach((v, i) => {
    if (v && made(v) && (best < 0 || bytesOf(v) > bytesOf(n.inputs[best]!))) best = i;
  });
  return best;
}

/** Builds and solves the axis's program (see the file comment). */
export function solveAxis(p: AxisProblem): AxisSolution {
  const { graph, axis, cost } = p;
  const k = axis.size;
  const m = new LpModel();
  const graphInputs = new Set(graph.inputs);
  const isConst = (v: Value): boolean => !!v.constant && !graphInputs.has(v);
  const bytes = new Map<Value, number>();
  const bytesOf = (v: Value): number => {
    let b = bytes.get(v);
    if (b === undefined) bytes.set(v, (b = globalBytes(v) * p.frac(v)));
    return b;
  };
  const local = (v: Value, pl: Placement): number => placementBytes(bytesOf(v), staticShape(v), pl, k);
  // A reshard: the link's time, the fixed cost per communicating step, and the memory traffic of a
  // local step (LocalShard, LocalPartial: a copy, costed like an op on bytes as cost.ts does).
  const move = (v: Value, from: Placement, to: Placement): number => {
    if (k <= 1) return 0;
    let t = placementCost(from, to, bytesOf(v), staticShape(v), axis);
    for (const s of singleAxisSteps(from, to))
      t += COMMUNICATING.has(s.kind) ? cost.secondsPerCollective : (bytesOf(v) + local(v, s.to)) * cost.secondsPerByte;
    return t;
  };

  // Candidates, restricted by pins, then by the division of heavy ops (divide.ts).
  const pinned = new Map<Node, readonly Candidate[]>();
  for (const n of graph.nodes) {
    const all = p.candidates.get(n) ?? [];
    const agrees = (c: Candidate): boolean =>
      c.inputs.every((w, i) => {
        const v = n.inputs[i];
        const pin = v && isConst(v) ? p.pins.get(v) : undefined;
        return !pin || !w || placementEq(pin, w);
      }) && c.outputs.every((o, j) => {
        const pin = p.pins.get(n.outputs[j]!);
        return !pin || placementEq(pin, o);
      });
    const kept = all.filter(agrees);
    pinned.set(n, kept.length ? kept : all);
  }
  const modelled = !p.minimiseMemory && !p.free;
  const division = modelled ? divideHeavyOps(graph, pinned, { registry: p.registry, isConst, splitWeights: p.splitWeights }) : undefined;
  const cands = division?.candidates ?? pinned;

  // x[n,c] and the compute objective.
  const x = new Map<Node, number[]>();
  for (const n of graph.nodes) {
    const cs = cands.get(n)!;
    const vars = cs.map(() => m.col(true));
    x.set(n, vars);
    m.row(vars.map((i) => [i, 1]), '=', 1);
    const flops = flopsOf(n, p.registry);
    cs.forEach((c, ci) => {
      let share = 1;
      let moved = 0;
      const operand = (v: Value | null | undefined, pl: Placement | null | undefined): void => {
        if (!v || !pl) return;
        const g = bytesOf(v);
        const l = local(v, pl);
        moved += l;
        if (pl.kind === 'shard' && g > 0) share = Math.min(share, l / g);
      };
      c.inputs.forEach((pl, i) => operand(n.inputs[i], pl));
      c.outputs.forEach((pl, j) => (n.outputs[j]!.name !== '' ? operand(n.outputs[j], pl) : undefined));
      const prior = Math.min(1, ...[...n.inputs, ...n.outputs].filter((v): v is Value => !!v && !isConst(v)).map((v) => p.frac(v)));
      const seconds = p.minimiseMemory ? 0 : Math.max(flops * prior * share * cost.secondsPerFlop, moved * cost.secondsPerByte);
      m.cost(vars[ci]!, seconds * NS + (p.minimiseMemory ? 0 : EPS * ci));
    });
  }

  // Uses of every value.
  const uses = new Map<Value, Use[]>();
  for (const n of graph.nodes)
    n.inputs.forEach((v, index) => {
      if (v) uses.set(v, [...(uses.get(v) ?? []), { node: n, index }]);
    });
  const outputs = new Set(graph.outputs);

  // Wanted placements of v: key → (placement, per use the x vars wanting it).
  const wantsOf = (v: Value): Map<string, { pl: Placement; perUse: number[][] }> => {
    const out = new Map<string, { pl: Placement; perUse: number[][] }>();
    for (const u of uses.get(v) ?? []) {
      const vars = x.get(u.node)!;
      const byKey = new Map<string, number[]>();
      cands.get(u.node)!.forEach((c, ci) => {
        const w = c.inputs[u.index];
        if (!w) return;
        const kk = key(w);
        if (!out.has(kk)) out.set(kk, { pl: w, perUse: [] });
        byKey.set(kk, [...(byKey.get(kk) ?? []), vars[ci]!]);
      });
      for (const [kk, vs] of byKey) out.get(kk)!.perUse.push(vs);
    }
    return out;
  };

  // Non-free values: graph inputs and node outputs.
  const inputVars = new Map<Value, Map<string, { pl: Placement; col: number }>>();
  const values: { v: Value; produced: Map<string, { pl: Placement; terms: number[] }> }[] = [];
  for (const v of graph.inputs) {
    const wants = wantsOf(v);
    const pin = p.pins.get(v);
    const options = new Map<string, Placement>(pin ? [[key(pin), pin]] : [[key(Replicate), Replicate], ...[...wants].map(([kk, w]) => [kk, w.pl] as [string, Placement])]);
    const cols = new Map<string, { pl: Placement; col: number }>();
    for (const [kk, pl] of options) cols.set(kk, { pl, col: m.col(true) });
    m.row([...cols.values()].map((c) => [c.col, 1]), '=', 1);
    inputVars.set(v, cols);
    values.push({ v, produced: new Map([...cols].map(([kk, c]) => [kk, { pl: c.pl, terms: [c.col] }])) });
  }
  for (const n of graph.nodes)
    n.outputs.forEach((o, j) => {
      if (o.name === '' && !uses.has(o)) return;
      const produced = new Map<string, { pl: Placement; terms: number[] }>();
      cands.get(n)!.forEach((c, ci) => {
        const pl = c.outputs[j] ?? Replicate;
        const kk = key(pl);
        if (!produced.has(kk)) produced.set(kk, { pl, terms: [] });
        produced.get(kk)!.terms.push(x.get(n)![ci]!);
      });
      values.push({ v: o, produced });
    });

  // f and e: reshards between what is produced and what is read (see the file comment).
  const minus = (is: readonly number[]): [number, number][] => is.map((i) => [i, -1]);
  for (const { v, produced } of values) {
    const reads: { wants: Map<string, { pl: Placement | null; vars: number[] }>; fixed: boolean }[] = [];
    for (const u of uses.get(v) ?? []) {
      const wants = new Map<string, { pl: Placement | null; vars: number[] }>();
      cands.get(u.node)!.forEach((c, ci) => {
        const w = c.inputs[u.index] ?? null;
        const wk = w ? key(w) : '-';
        if (!wants.has(wk)) wants.set(wk, { pl: w, vars: [] });
        wants.get(wk)!.vars.push(x.get(u.node)![ci]!);
      });
      reads.push({ wants, fixed: false });
    }
    if (outputs.has(v)) reads.push({ wants: new Map([[key(Replicate), { pl: Replicate, vars: [] }]]), fixed: true });
    // The reshard p → w costs once however many reads use it: e[p,w] ≥ each read's use of the pair.
    // With a single read the cost goes on the read's own indicator (no e).
    const copies = new Map<string, number>();
    const charge = (pk: string, from: Placement, wk: string, to: Placement | null, used: readonly number[], always = false): void => {
      const seconds = pk === wk || !to || p.minimiseMemory ? 0 : move(v, from, to);
      if (seconds <= 0) return;
      if (reads.length === 1 && !always) {
        for (const i of used) m.cost(i, seconds * NS);
        return;
      }
      let e = copies.get(`${pk}>${wk}`);
      if (e === undefined) {
        copies.set(`${pk}>${wk}`, (e = m.col(false, 0)));
        m.cost(e, seconds * NS);
      }
      m.row([[e, 1], ...minus(used)], '>=', always ? 1 : 0);
    };
    for (const r of reads) {
      if (produced.size === 1 || r.wants.size === 1) {
        // One side is decided by the other: the pair's use is the other side's indicator (no f).
        for (const [wk, w] of r.wants)
          for (const [pk, pr] of produced) {
            if (r.fixed && produced.size === 1) charge(pk, pr.pl, wk, w.pl, [], true);
            else charge(pk, pr.pl, wk, w.pl, produced.size === 1 ? w.vars : pr.terms);
          }
        continue;
      }
      // The transportation polytope of the edge (tight): f[p,w] with the produced and wanted marginals.
      const byProduced = new Map<string, [number, number][]>([...produced.keys()].map((pk) => [pk, []]));
      for (const [wk, w] of r.wants) {
        const into: [number, number][] = [];
        for (const [pk, pr] of produced) {
          const f = m.col(false, 0);
          into.push([f, 1]);
          byProduced.get(pk)!.push([f, 1]);
          charge(pk, pr.pl, wk, w.pl, [f]);
        }
        m.row([...into, ...minus(w.vars)], '=', r.fixed ? 1 : 0);
      }
      for (const [pk, flow] of byProduced) m.row([...flow, ...minus(produced.get(pk)!.terms)], '=', 0);
    }
  }

  // Operator merging: a light op follows the op it reads its main operand from (see the file comment).
  if (modelled) {
    const producedBy = new Map<Value, { pl: Placement; terms: number[] }[]>();
    for (const { v, produced } of values) producedBy.set(v, [...produced.values()]);
    for (const n of graph.nodes) {
      if (isHeavy(n, p.registry)) continue;
      const main = mainOperand(n, (v) => !isConst(v) && producedBy.has(v) && !graphInputs.has(v), bytesOf);
      if (main < 0) continue;
      const v = n.inputs[main]!;
      const cs = cands.get(n)!;
      for (const pr of producedBy.get(v)!) {
        if (pr.pl.kind !== 'shard') continue; // partial sums and replicas: the cost decides
        const follow = cs.map((c, ci) => [c, ci] as const).filter(([c]) => c.inputs[main] && placementEq(c.inputs[main]!, pr.pl));
        if (!follow.length) continue;
        m.row([...follow.map(([, ci]) => [x.get(n)![ci]!, 1] as [number, number]), ...pr.terms.map((t) => [t, -1] as [number, number])], '>=', 0);
      }
    }
  }

  // The axis must be used (shard_mesh_fits): some candidate splits or leaves partial sums.
  if (k > 1 && !p.minimiseMemory) {
    const used: [number, number][] = [];
    for (const n of graph.nodes)
      cands.get(n)!.forEach((c, ci) => {
        if ([...c.inputs, ...c.outputs].some((pl) => pl && pl.kind !== 'replicate')) used.push([x.get(n)![ci]!, 1]);
      });
    for (const cols of inputVars.values()) for (const c of cols.values()) if (c.pl.kind !== 'replicate') used.push([c.col, 1]);
    m.row(used, '>=', 1);
  }

  // Memory.
  let memoryFixed = 0;
  if (p.memoryLimit !== undefined || p.minimiseMemory || p.paramLimit !== undefined) {
    const terms: [number, number][] = [];
    let fixed = 0;
    for (const w of graph.initializers) {
      if (!isConst(w)) continue;
      const wants = wantsOf(w);
      if (!wants.size) continue; // read by no node: not on any device
      for (const [, want] of wants) {
        const z = m.col(true);
        for (const vs of want.perUse) m.row([...vs.map((i) => [i, 1] as [number, number]), [z, -1]], '<=', 0);
        terms.push([z, local(w, want.pl) / MIB]);
      }
    }
    if (p.paramLimit !== undefined && !p.minimiseMemory) m.row(terms, '<=', (p.paramLimit * (1 + 1e-6) - fixed) / MIB);
    const A = m.col(false, 0);
    for (const n of graph.nodes) {
      const row: [number, number][] = [];
      cands.get(n)!.forEach((c, ci) => {
        let b = 0;
        c.inputs.forEach((pl, i) => {
          const v = n.inputs[i];
          if (v && pl && !isConst(v)) b += local(v, pl);
        });
        c.outputs.forEach((pl, j) => (n.outputs[j]!.name !== '' ? (b += local(n.outputs[j]!, pl)) : 0));
        row.push([x.get(n)![ci]!, b / MIB]);
      });
      m.row([...row, [A, -1]], '<=', 0);
    }
    if (p.minimiseMemory) for (const [i, c] of terms) m.cost(i, c * MIB); // parameters only, in bytes (the solver's absolute gap is 1)
    terms.push([A, 1]);
    if (!p.minimiseMemory && p.memoryLimit !== undefined) m.row(terms, '<=', (p.memoryLimit - fixed) / MIB);
    memoryFixed = fixed;
  }

  const t0 = performance.now();
  const r = solveLp(m.text(), { ...SOLVER_OPTIONS, time_limit: p.timeLimit });
  const solveMs = performance.now() - t0;
  const base = { variables: m.columns, binaries: m.binaries, constraints: m.constraints, forced: division?.forced.size ?? 0, solveMs, solverStatus: r.Status };
  const chosen = new Map<Node, Candidate>();
  const inputs = new Map<Value, Placement>();
  const limited = /limit/i.test(r.Status);
  const status = r.Status === 'Optimal' ? 'optimal' : r.Status === 'Infeasible' ? 'infeasible' : limited ? 'time-limit' : 'failed';
  // A time-limited solve may still carry a feasible incumbent (used, reported as not proven optimal).
  const incumbent = status === 'time-limit' && Number.isFinite(r.ObjectiveValue) && Object.values(r.Columns).some((c) => c.Primal !== undefined);
  if (status !== 'optimal' && !incumbent) return { ...base, status, chosen, inputs, objective: NaN };
  const val = (i: number): number => r.Columns[m.name(i)]?.Primal ?? 0;
  for (const n of graph.nodes) {
    const vars = x.get(n)!;
    let best = 0;
    vars.forEach((i, ci) => {
      if (val(i) > val(vars[best]!)) best = ci;
    });
    chosen.set(n, cands.get(n)![best]!);
  }
  for (const [v, cols] of inputVars) {
    let best: { pl: Placement; col: number } | undefined;
    for (const c of cols.values()) if (!best || val(c.col) > val(best.col)) best = c;
    inputs.set(v, best!.pl);
  }
  const objective = p.minimiseMemory ? r.ObjectiveValue + memoryFixed : r.ObjectiveValue / NS;
  return { ...base, status, chosen, inputs, objective };
}
