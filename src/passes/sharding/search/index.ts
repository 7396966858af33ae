/**
 * The layout search of `--strategy auto`: one MILP per mesh axis (formulate.ts, solved by HiGHS),
 * axes one after another in mesh order like propagation (an axis's byte counts are local after
 * the axes before it). Its result is a set of seeds per axis — the placement of every graph input
 * and every node output the solver chose — so the plan itself is still built by shardGraph's
 * propagation, resharding and assembly (a custom strategy, strategies/custom.ts), and lowers like
 * any other plan. Seeds keep their units exactly (they are already absolute).
 *
 * Modelling (divide.ts, formulate.ts): heavy ops divide their work where they can do so cleanly
 * (on model-parallel axes, `splitWeights`, by their weights), light ops travel with the split they
 * read; time alone (`free`) would keep small models replicated. On the example transformers this
 * finds megatron's plan by itself, and the program's LP relaxation is tight, so HiGHS solves it at
 * the root in a few hundred milliseconds (bench/auto-vs-megatron.ts).
 *
 * Too big: when the axis programs together would have more than `maxVariables` columns the search
 * does not run (status 'too-big') and auto keeps to the presets; a solve that hits the time limit
 * or fails likewise (status 'time-limit' / 'failed'). With a memory limit the program may be
 * infeasible (status 'infeasible'): then the least memory estimate the search can reach on that
 * axis is computed (minimiseMemory) for the message.
 */
import type { Graph, Node, Value } from '../../../ir/graph.js';
import type { Placement } from '../../../ir/layout.js';
import { Replicate, formatPlacement } from '../../../ir/layout.js';
import type { OpRegistry } from '../../../ir/registry.js';
import type { DeviceMesh } from '../mesh.js';
import { type CostModel, DEFAULT_COST, type Seed, realiseCandidate } from '../propagate.js';
import { placementBytes } from '../reshard.js';
import type { Candidate, ShardingRuleRegistry } from '../rule.js';
import { pinnedSeeds } from '../strategies/custom.js';
import type { AxisSeeds } from '../strategies/types.js';
import { analyseUnits, nodeCandidates } from '../units.js';
import { type AxisSolution, solveAxis } from './formulate.js';

export { solveAxis, type AxisProblem, type AxisSolution } from './formulate.js';
export { divideHeavyOps, isHeavy, HEAVY_FAMILIES } from './divide.js';
export { solveLp, startSolver } from './highs.js';

export interface SearchOptions {
  registry: OpRegistry;
  rules: ShardingRuleRegistry;
  cost?: CostModel;
  /** Per-device memory limit (bytes) the search must respect (its own estimate). */
  memoryLimit?: number;
  /** Seconds per axis solve (default 20; a safety net: formulate.ts SOLVER_OPTIONS bounds the work deterministically). */
  timeLimit?: number;
  /** The most columns (over all axes) the search takes on (default 60,000). */
  maxVariables?: number;
  /** Per axis name: the per-device parameter bytes the search may hold on it (formulate.ts paramLimit). */
  paramLimits?: ReadonlyMap<string, number>;
  /** Model-parallel axes (divide.ts splitWeights): their heavy ops divide by their weights, lookups split their tables. */
  splitWeights?: readonly string[];
  /** No modelling (formulate.ts `free`): every candidate free, time alone decides (for comparison). */
  free?: boolean;
  /** Axes not to search (a pipeline's stage axis): left with no seeds. */
  skipAxes?: readonly string[];
}

export interface AxisStats {
  axis: string;
  status: AxisSolution['status'];
  variables: number;
  binaries: number;
  constraints: number;
  /** Heavy ops forced to divide their work on this axis (divide.ts). */
  forced: number;
  solveMs: number;
  /** Estimated seconds of this axis's choice (the objective). */
  objective: number;
  /** With a memory or parameter limit the program could not meet: the least parameter bytes reachable (auto adds its activation reserve). */
  leastMemoryBytes?: number;
}

export interface SearchResult {
  status: 'optimal' | 'too-big' | 'infeasible' | 'time-limit' | 'failed';
  /** Seeds per axis name (every graph input and node output), when optimal or stopped by the time limit with a plan. */
  seeds: Map<string, AxisSeeds>;
  /** The chosen candidate per node and axis, when optimal. */
  chosen: Map<string, Map<Node, Candidate>>;
  axes: AxisStats[];
  /** Totals over the axes. */
  variables: number;
  constraints: number;
  solveMs: number;
  /** Why it did not run or did not finish. */
  note?: string;
}

/** The placements the search chose on every axis as seeds (see the file comment). */
export function searchLayouts(graph: Graph, mesh: DeviceMesh, opts: SearchOptions): SearchResult {
  const cost = opts.cost ?? DEFAULT_COST;
  const maxVariables = opts.maxVariables ?? 60_000;
  const result: SearchResult = { status: 'optimal', seeds: new Map(), chosen: new Map(), axes: [], variables: 0, constraints: 0, solveMs: 0 };
  // Rough size first: Σ over axes of the candidates (one binary each) and two reshard columns per value.
  const axes = mesh.axes.filter((a) => a.size > 1 && !opts.skipAxes?.includes(a.name));
  const prepared = axes.map((axis) => {
    const raw = new Map<Node, Candidate[]>();
    for (const n of graph.nodes) raw.set(n, nodeCandidates(n, opts.rules, axis.size));
    return { axis, raw };
  });
  const estimate = prepared.reduce((s, { raw }) => s + [...raw.values()].reduce((t, cs) => t + cs.length + 2 * cs.length, 0), 0);
  if (estimate > maxVariables) {
    result.status = 'too-big';
    result.note = `the search would take about ${estimate} variables, more than its limit of ${maxVariables}`;
    return result;
  }
  const fracs = new Map<Value, number>();
  const frac = (v: Value): number => fracs.get(v) ?? 1;
  for (const { axis, raw } of prepared) {
    const units = analyseUnits(graph, raw);
    const candidates = new Map<Node, Candidate[]>();
    for (const [n, cs] of raw) candidates.set(n, cs.map((c) => realiseCandidate(n, c, units)));
    const pins = new Map<Value, Placement>([...pinnedSeeds(graph, axis.name)].map(([v, s]) => [v, s.placement]));
    const problem = { graph, axis, registry: opts.registry, cost, candidates, pins, frac, memoryLimit: opts.memoryLimit, paramLimit: opts.paramLimits?.get(axis.name), splitWeights: opts.splitWeights?.includes(axis.name), free: opts.free, timeLimit: opts.timeLimit ?? 20 };
    const sol = solveAxis(problem);
    const stats: AxisStats = {
      axis: axis.name,
      status: sol.status,
      variables: sol.variables,
      binaries: sol.binaries,
      constraints: sol.constraints,
      forced: sol.forced,
      solveMs: sol.solveMs,
      objective: sol.objective,
    };
    result.axes.push(stats);
    result.variables += sol.variables;
    result.constraints += sol.constraints;
    result.solveMs += sol.solveMs;
    const usable = sol.status === 'optimal' || (sol.status === 'time-limit' && sol.chosen.size > 0);
    if (sol.status === 'time-limit' && usable) {
      result.status = 'time-limit';
      result.note = `axis ${axis.name}: the solver stopped at its limit (${sol.solverStatus}); its best plan so far is used (not proven optimal)`;
    }
    if (!usable) {
      result.status = sol.status;
      if (sol.status === 'infeasible') {
        const least = solveAxis({ ...problem, memoryLimit: undefined, paramLimit: undefined, minimiseMemory: true });
        if (least.status === 'optimal') stats.leastMemoryBytes = least.objective;
        result.solveMs += least.solveMs;
      }
      result.note = `axis ${axis.name}: the solver says ${sol.solverStatus}`;
      return result;
    }
    // Seeds: every graph input and node output in the chosen placement.
    const seeds: AxisSeeds = new Map();
    const why = (v: Value, p: Placement): Seed => ({ placement: p, why: `auto: the layout search put ${v.name} in ${formatPlacement(p)} on ${axis.name}`, exactUnit: true });
    for (const [v, p] of sol.inputs) seeds.set(v, why(v, p));
    for (const n of graph.nodes) {
      const c = sol.chosen.get(n)!;
      n.outputs.forEach((o, j) => {
        if (o.name !== '') seeds.set(o, why(o, c.outputs[j] ?? Replicate));
      });
    }
    result.seeds.set(axis.name, seeds);
    result.chosen.set(axis.name, sol.chosen);
    // Later axes see local bytes: the fraction of every value one device holds.
    const shape = (v: Value): number[] => (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
    const shrink = (v: Value, p: Placement | null | undefined): void => {
      if (!p || p.kind !== 'shard') return;
      fracs.set(v, frac(v) * placementBytes(1, shape(v), p, axis.size));
    };
    for (const [v, p] of sol.inputs) shrink(v, p);
    for (const n of graph.nodes) {
      const c = sol.chosen.get(n)!;
      n.outputs.forEach((o, j) => shrink(o, c.outputs[j]));
      n.inputs.forEach((v, i) => (v?.constant && !fracs.has(v) ? shrink(v, c.inputs[i]) : undefined));
    }
  }
  return result;
}
