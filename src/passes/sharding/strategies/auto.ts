/**
 * `auto`: plans every applicable preset assignment and the layout search's own plan (search/*: one
 * integer program per mesh axis, solved by HiGHS; on by default, `search: false` turns it off) and
 * picks the cheapest by the estimate below. The search's plan replaces the cheapest preset's only
 * when SEARCH_MARGIN cheaper, so where it finds a preset's plan (megatron on a transformer's tp
 * axis) the preset's name stays in the report. With `devices`, every mesh shape is tried the same
 * way (planAutoDevices). The graph is bound and passed once, every candidate is planned on a copy,
 * and the winner's plan is moved into the graph given (planAuto, adopt): nothing is planned twice.
 *
 * Pipelines (a mesh axis named pp, or the pipeline preset on an open axis): each pipelined
 * candidate is planned for every micro-batch count M dividing the batch (up to
 * MAX_MICRO_BATCHES_PER_STAGE per stage; ShardOptions.microBatches, when given, is kept), and the
 * count with the least estimated total among those that fit the memory limit is kept
 * (AutoCandidateDetail.microBatches): more micro-batches shrink the bubble (P-1)/(M+P-1), but each
 * repeats the stage's collectives and Send/Recv, with their fixed costs. The layout search runs on
 * the other axes of such a mesh: it lays out one micro-batch (the cheapest eligible pipelined
 * candidate's count), as the pipeline plans its micro-batch graph with presets
 * (pipeline/index.ts shardPipeline with the search's seeds as a custom strategy).
 *
 * Candidates: for every preset name in PRESETS order (so presets added later are considered
 * without changes here), the assignment `assignPresets(name, mesh)` makes (the named preset on its
 * axis, the mesh's other axes taken by the presets that own them; on a one-axis mesh every preset
 * takes the only axis); duplicates dropped. A preset that does not fit the mesh (UserError) is no
 * candidate; one that does not fit the model (UserError while planning) is recorded with its
 * message. Each candidate is planned by shardGraph itself (as `--strategy <name>`) on a copy of the
 * graph, so its plan is exactly the one that strategy gives (pipeline plans included).
 *
 * Axis names are roles: an axis named after a preset's axis (tp, dp, tpr/tpc, ep, pp, ...) takes
 * only the presets that own that name (`tp=2`: megatron or sequence, not data). Candidates that
 * break this are "ineligible": they are planned only when no eligible candidate applies to the
 * model (e.g. a CNN on `tp=2`), and then the cheapest of them wins. An axis whose name no preset
 * owns (`x=4`) is open to every preset, and the cost alone decides.
 *
 * Cost of a candidate's plan (seconds; DEFAULT_COST's device unless ShardOptions.cost is given):
 *   communication  Σ over communicating collectives: bytes sent per device ÷ the slowest link
 *                  bandwidth of its mesh axes + that link's latency + secondsPerCollective;
 *   compute        max over devices of Σ over nodes of flops × the device's share × secondsPerFlop,
 *                  the share being the smallest local/global element ratio among the node's
 *                  operands and results (1 when nothing is split; uneven splits give the larger
 *                  blocks' devices the larger share);
 *   memory         max over devices of (the bytes of the constants it holds + the bytes of every
 *                  value it writes) × secondsPerByte: the memory traffic of one run, so sharding
 *                  the weights (megatron) or the activations (data) is worth what it saves;
 *   total          the sum. The least total wins; ties go to the earlier candidate (PRESETS order).
 * Pipelined plans (plan.pipeline): a node counts only on the devices of its stage (node.meta
 * pipeline.stage; its coordinate on the stage axis); the compute term is the busiest device's
 * work (flops; bytes) and the communication term the busiest stage's collectives (a Send counted
 * on its stage, its Recv not again), each stretched by the schedule, × clocks ÷ micro-batches: with M
 * micro-batches over P stages the schedule idles (P-1)/(M+P-1) of its clocks (fill and drain).
 * The choice and every candidate's costs are recorded in the plan (ShardPlan.autoChoice).
 */
import { UserError } from '../../../ir/errors.js';
import type { Attr } from '../../../ir/attrs.js';
import { dtypeBytes } from '../../../ir/dtype.js';
import { Graph, Node, Value } from '../../../ir/graph.js';
import type { OpRegistry } from '../../../ir/registry.js';
import { type AutoCandidate, type AutoChoice, COMMUNICATING, type ShardPlan, isCollective, nodeStage } from '../plan.js';
import { type CostModel, DEFAULT_COST, flopsOf } from '../propagate.js';
import { localShape } from '../shards.js';
import { placementBytes } from '../reshard.js';
import { type AxisPreset, PRESETS, assignPresets, dataPreset } from './index.js';
import type { ShardOptions } from '../index.js';
import type { Hardware } from '../../../hardware/hardware.js';
import { formatBytes, meshWithHardware } from '../../../hardware/hardware.js';
import { PassManager, defaultPipeline } from '../../manager.js';
import { lowerPlan } from '../lower.js';
import { DeviceMesh } from '../mesh.js';
import { estimateGraph } from '../../../bundle/estimate.js';
import { unfuseSplitProjections } from '../unfuse-qkv.js';
import { shardPipeline } from '../pipeline/index.js';
import { batchSymbol } from '../pipeline/micro-batches.js';
import { type SearchResult, searchLayouts, startSolver } from '../search/index.js';
import type { AnnotateFn } from './custom.js';

export interface AutoOption {
  /** The strategy name whose assignment this is. */
  strategy: string;
  presets: AxisPreset[];
}

export type PlanCost = NonNullable<AutoCandidate['cost']>;

const describe = (a: AxisPreset[]): string => a.map((x) => `${x.preset.name} on ${x.axis}`).join(', ');

/** Whether every axis named after a preset's axis is taken by a preset that owns that name. */
function respectsAxisNames(a: AxisPreset[]): boolean {
  return a.every(({ axis, preset }) => preset.axis === axis || !PRESETS.some((p) => p.axis === axis));
}

/** The distinct preset assignments for the mesh, in PRESETS order. */
export function autoCandidates(mesh: DeviceMesh): AutoOption[] {
  const out: AutoOption[] = [];
  const keys = new Set<string>();
  for (const name of new Set(PRESETS.map((p) => p.name))) {
    let a: AxisPreset[];
    try {
      a = assignPresets(name, mesh);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      continue;
    }
    const key = a.map((x) => `${x.axis}=${x.preset.name}/${x.preset.axis}`).join(',');
    if (keys.has(key)) continue;
    keys.add(key);
    out.push({ strategy: name, presets: a });
  }
  return out;
}

const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const staticShape = (v: Value): number[] | undefined => (v.shape && v.shape.every((d) => typeof d === 'number') ? (v.shape as number[]) : undefined);

/** The estimated cost of a plan (see the file comment). */
export function planCost(plan: ShardPlan, registry: OpRegistry, cost: CostModel = DEFAULT_COST): PlanCost {
  const { graph, mesh } = plan;
  const pipe = plan.pipeline;
  // Communication per stage (one stage without a pipeline): stages run side by side, so a pipeline
  // takes its busiest stage's, stretched by the schedule like its compute (file comment).
  const perStage = new Map<number, number>();
  const stageOfNode = new Map(pipe ? graph.nodes.map((n) => [n.name, nodeStage(n) ?? 0]) : []);
  for (const c of plan.collectives) {
    if (!COMMUNICATING.has(c.kind) || (pipe && c.kind === 'Recv')) continue; // a pipeline's Recv waits for its Send, counted there
    const links = c.meshAxes.filter((a) => mesh.hasAxis(a)).map((a) => mesh.axis(a).link);
    const bandwidth = links.length ? Math.min(...links.map((l) => l.bandwidth)) : Infinity;
    const latency = links.length ? Math.max(...links.map((l) => l.latency)) : 0;
    const s = stageOfNode.get(c.node) ?? 0;
    perStage.set(s, (perStage.get(s) ?? 0) + c.bytes / bandwidth + latency + cost.secondsPerCollective);
  }

  const devices = mesh.deviceCount;
  const localNumel = (v: Value, d: number): number => {
    const s = staticShape(v)!;
    return numel(v.layout ? localShape(s, v.layout, mesh, d) : s);
  };
  // Pipelines: the devices that run a node (its stage's), else every device.
  const stageOfDevice = Array.from({ length: devices }, (_, d) => (pipe ? mesh.coord(d, pipe.axis) : 0));
  const runs = (n: Node, d: number): boolean => {
    const s = pipe ? nodeStage(n) : undefined;
    return s === undefined || s === stageOfDevice[d];
  };
  const flops = new Array<number>(devices).fill(0);
  const bytes = new Array<number>(devices).fill(0);
  const count = (v: Value, on: (d: number) => boolean): void => {
    const s = staticShape(v);
    if (!s || !v.dtype || v.dtype === 'string') return;
    const size = dtypeBytes(v.dtype);
    for (let d = 0; d < devices; d++) if (on(d)) bytes[d]! += localNumel(v, d) * size;
  };
  // Constants: held by the devices that run a reader (every device for an unread initializer).
  const readers = new Map<Value, Node[]>();
  for (const v of graph.initializers) readers.set(v, []);
  for (const n of graph.nodes) for (const v of n.inputs) if (v?.constant) readers.set(v, [...(readers.get(v) ?? []), n]);
  for (const v of graph.inputs) readers.delete(v);
  for (const [v, ns] of readers) count(v, (d) => !ns.length || ns.some((n) => runs(n, d)));
  for (const n of graph.nodes) {
    for (const o of n.outputs) if (o.name !== '') count(o, (d) => runs(n, d));
    if (isCollective(n)) continue;
    const f = flopsOf(n, registry);
    if (!f) continue;
    const operands = [...n.inputs, ...n.outputs].filter((v): v is Value => !!v && !!staticShape(v) && numel(staticShape(v)!) > 0);
    for (let d = 0; d < devices; d++) {
      if (!runs(n, d)) continue;
      let share = 1;
      for (const v of operands) share = Math.min(share, localNumel(v, d) / numel(staticShape(v)!));
      flops[d]! += f * share;
    }
  }
  const stretch = pipe && pipe.microBatches > 0 ? Math.max(1, pipe.clocks.length / pipe.microBatches) : 1;
  const communication = Math.max(0, ...perStage.values()) * stretch;
  const compute = Math.max(...flops) * cost.secondsPerFlop * stretch;
  const memory = Math.max(...bytes) * cost.secondsPerByte * stretch;
  return { communication, compute, memory, total: communication + compute + memory };
}

/** A deep copy of a graph (values, nodes, subgraphs); constants' data is shared (read-only). */
export function cloneGraph(g: Graph, outer: ReadonlyMap<Value, Value> = new Map()): Graph {
  const map = new Map<Value, Value>(outer);
  const copy = (v: Value): Value => {
    const hit = map.get(v);
    if (hit) return hit;
    const c = new Value(v.name, v.dtype, v.shape?.slice());
    if (v.constant) c.constant = v.constant;
    if (v.layout) c.layout = new Map(v.layout);
    for (const [k, m] of v.meta) c.meta.set(k, m);
    map.set(v, c);
    return c;
  };
  const out = new Graph(g.name);
  out.opsets = { ...g.opsets };
  for (const [k, m] of g.meta) out.meta.set(k, m);
  out.inputs = g.inputs.map(copy);
  out.initializers = g.initializers.map(copy);
  for (const n of g.nodes) {
    const inputs = n.inputs.map((v) => (v ? copy(v) : null));
    const outputs = n.outputs.map(copy);
    const attrs = n.attrs.clone();
    for (const [k, a] of n.attrs.entries()) {
      let c: Attr | undefined;
      if (a.kind === 'graph') c = { kind: 'graph', value: cloneGraph(a.value, map) };
      else if (a.kind === 'graphs') c = { kind: 'graphs', value: a.value.map((s) => cloneGraph(s, map)) };
      if (c) attrs.set(k, c);
    }
    const c = new Node(n.op, inputs, outputs, attrs, n.name, n.domain);
    for (const [k, m] of n.meta) c.meta.set(k, m);
    out.nodes.push(c);
  }
  out.outputs = g.outputs.map((v) => map.get(v) ?? copy(v));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The layout search (search/index.ts) as one more candidate, memory limits, and the mesh shape.
// ---------------------------------------------------------------------------------------------

/** What ShardOptions adds for `auto`. */
export interface AutoSearchOptions {
  /** Per-device memory limit (bytes): auto keeps to plans whose estimated peak (bundle/estimate.ts) fits. */
  memoryLimit?: number;
  /** Choose the mesh shape for this many devices (tp, dp×tp, pp×tp, ...; tp innermost); the `mesh` argument is then only the default link. */
  devices?: number;
  /** The hardware whose links the meshes tried for `devices` get (hardware.ts maps axes to links). */
  hardware?: Hardware;
  /** Seconds the layout search's solver may take per mesh axis (default 20). */
  searchTimeLimit?: number;
  /** false: presets only, no ILP layout search (search/*, the highs solver); default: the search runs too. */
  search?: boolean;
  /**
   * true: the search's plan wins whenever it has one that fits (no SEARCH_MARGIN, no preset ahead of
   * it): the plan the search finds by itself, for tests and comparisons.
   */
  preferSearch?: boolean;
}

/** shardGraph itself, handed in by index.ts (no import cycle). */
export type ShardFn = (graph: Graph, mesh: DeviceMesh, opts: ShardOptions) => ShardPlan;

/** How the layout search went (plan.autoChoice.search). */
export interface SearchSummary {
  status: SearchResult['status'];
  variables: number;
  constraints: number;
  /** Milliseconds in the solver (all axes; not enumerable, so not in JSON output). */
  solveMs: number;
  axes: SearchResult['axes'];
  note?: string;
  /** The estimated cost of the search's plan (planCost), when it was planned. */
  cost?: PlanCost;
  /** On a mesh with a pipeline axis: the micro-batches of the search's pipelined plan (the anchor preset's count). */
  microBatches?: number;
  /** The preset whose plan the search's plan equals (same collectives: kind, tensor, axes, placements), if any. */
  sameAs?: string;
  /**
   * Else the preset whose collectives the search's equal up to the tensor they act on (same kinds,
   * bytes, axes and placements in the same order: e.g. a partial sum reduced after its bias add
   * rather than before), if any.
   */
  equivalentTo?: string;
}

/** A pipelined candidate's micro-batch counts tried (chooseOnMesh; microBatchCounts). */
export interface MicroBatchChoice {
  /** The count kept: the least estimated total among those that fit the memory limit (if none fits, the least peak). */
  chosen: number;
  /** Each count tried: its estimated total (planCost) and, with a memory limit, its peak; or why it does not apply. */
  tried: { microBatches: number; total?: number; peakBytes?: number; note?: string }[];
}

/** A candidate as auto records it: a pipelined one with its micro-batch choice. */
export interface AutoCandidateDetail extends AutoCandidate {
  microBatches?: MicroBatchChoice;
}

/** ShardPlan.autoChoice with the search's summary, the memory verdicts and the meshes tried. */
export interface AutoChoiceDetail extends AutoChoice {
  candidates: AutoCandidateDetail[];
  search?: SearchSummary;
  /** Per-device memory limit applied and the chosen plan's estimated peak. */
  memory?: { limitBytes: number; peakBytes: number; note: string };
  /** `devices`: every mesh tried with its chosen candidate and cost (seconds). */
  meshes?: MeshTried[];
}

/** One mesh shape tried for `devices` (AutoChoiceDetail.meshes). */
export interface MeshTried {
  mesh: string;
  /** The candidate chosen on it and its estimated total (seconds, planCost). */
  chosen?: string;
  total?: number;
  /** A pipelined choice: its stages, micro-batches and bubble (the idle fraction (pp-1)/(m+pp-1) of its schedule). */
  pipeline?: { stages: number; microBatches: number; bubble: number };
  /** With a memory limit: the chosen plan's estimated per-device peak (bytes). */
  peakBytes?: number;
  /** Why no plan on it (does not fit the model, or the memory limit). */
  note?: string;
}

export const SEARCH_LABEL = 'search (ILP)';
/** How much cheaper (relative) the search's plan must be to replace the cheapest fitting preset plan. */
export const SEARCH_MARGIN = 0.01;
const noPasses = (o: ConstructorParameters<typeof PassManager>[1]): PassManager => new PassManager([], o);

/** The peak memory estimate of the busiest device of a plan (lowered; bundle/estimate.ts). */
export function planPeak(plan: ShardPlan, opts: ShardOptions): number {
  const programs = lowerPlan(plan, { registry: opts.registry, rules: opts.rules });
  return Math.max(0, ...programs.map((p) => estimateGraph(p.graph, opts.registry).peakMemoryBytes));
}

/** The collectives of a plan as comparable text: kind, tensor, axes, in plan order. */
export function collectiveSignature(plan: ShardPlan): string {
  return plan.collectives.map((c) => `${c.kind}:${c.tensor}:${c.meshAxes.join('+')}:${c.from}->${c.to}`).join('\n');
}

/** collectiveSignature without the tensors' names, with the bytes: equal collectives acting on (possibly) other tensors. */
export function collectiveShape(plan: ShardPlan): string {
  return plan.collectives.map((c) => `${c.kind}:${c.bytes}:${c.meshAxes.join('+')}:${c.from}->${c.to}`).join('\n');
}

/**
 * `--strategy auto` on a graph as imported: every applicable preset (autoCandidates) and
 * the layout search's plan are planned on copies and costed by planCost; plans over the memory
 * limit are dropped; the cheapest wins (ties: presets first, in PRESETS order, so a search that
 * finds a preset's plan is named after it). The graph is bound and passed once, on a copy
 * (`prepared`): SPMD candidates and the search plan copies of it, without running the passes
 * again; pipelined candidates copies of the graph as given (they bind the micro-batch size
 * themselves). The winner's plan is then moved into `graph` (adopt), which shardGraph rewrites in
 * place: nothing is planned twice.
 */
export function planAuto(graph: Graph, mesh: DeviceMesh, opts: ShardOptions, shard: ShardFn): ShardPlan {
  // The passes first, so that a model they reject fails with their own message (the candidates
  // would each record it as why they do not apply).
  const prepared = cloneGraph(graph);
  passesOf(opts)(prepared);
  if (opts.devices !== undefined) return planAutoDevices(graph, prepared, mesh, opts, shard);
  return chooseOnMesh(graph, prepared, mesh, opts, shard).final(graph);
}

/** Runs shardGraph's graph passes (bound by opts.bindings) on a graph. */
function passesOf(opts: ShardOptions): (g: Graph) => void {
  return (g) => {
    (opts.pipeline ?? defaultPipeline)({ registry: opts.registry, bindings: opts.bindings ?? {} }).run(g);
  };
}

/**
 * Moves a plan made on a copy of a graph into `into` (the copy's contents; the plan then names
 * `into`): what planning `into` itself gives, since planning is deterministic and cloneGraph copies
 * everything it reads.
 */
function adopt(plan: ShardPlan, into: Graph): ShardPlan {
  const g = plan.graph;
  if (g === into) return plan;
  into.name = g.name;
  into.opsets = g.opsets;
  into.inputs = g.inputs;
  into.initializers = g.initializers;
  into.nodes = g.nodes;
  into.outputs = g.outputs;
  into.meta.clear();
  for (const [k, m] of g.meta) into.meta.set(k, m);
  plan.graph = into;
  return plan;
}

/** Per stage, the most micro-batches auto tries (GPipe's M ≥ 4·P keeps the bubble under 20%; the unrolled stage programs grow with M). */
export const MAX_MICRO_BATCHES_PER_STAGE = 4;

/**
 * The micro-batch counts auto tries for a pipeline of `stages` stages: the divisors of the bound
 * batch up to MAX_MICRO_BATCHES_PER_STAGE per stage; undefined (no choice: the pipeline's own)
 * when ShardOptions.microBatches is given or the graph has no bound batch dim.
 */
export function microBatchCounts(graph: Graph, opts: ShardOptions, stages: number): number[] | undefined {
  if (opts.microBatches !== undefined) return undefined;
  let symbol: string | undefined;
  try {
    symbol = batchSymbol(graph);
  } catch (e) {
    if (e instanceof UserError) return undefined; // the pipeline says why
    throw e;
  }
  const size = symbol === undefined ? undefined : opts.bindings?.[symbol];
  if (size === undefined || !Number.isInteger(size) || size < 1) return undefined;
  const most = Math.min(size, MAX_MICRO_BATCHES_PER_STAGE * stages);
  return Array.from({ length: most }, (_, i) => i + 1).filter((m) => size % m === 0);
}

interface MeshChoice {
  choice: AutoChoiceDetail;
  cost: number;
  /** The winner's plan (on the copy it was planned on). */
  plan: ShardPlan;
  /** The winner's plan moved into `graph` (adopt), with its strategy and autoChoice set. */
  final(graph: Graph): ShardPlan;
}

/** Thrown out of a pipeline's micro-batch planning when the search has no plan (caught in chooseOnMesh). */
class NoSearchPlan extends Error {}

/**
 * Plans every candidate on the mesh (copies of `graph` as given, or of `prepared`, the graph
 * bound and passed; neither is changed) and the layout search's plan, and picks the winner.
 */
function chooseOnMesh(graph: Graph, prepared: Graph, mesh: DeviceMesh, opts: ShardOptions, shard: ShardFn): MeshChoice {
  const base: ShardOptions = { ...opts, devices: undefined };
  const limit = opts.memoryLimit;
  // The solver's worker loads while the presets are planned.
  if (opts.search !== false) startSolver();
  const options = autoCandidates(mesh);
  const records: AutoCandidateDetail[] = options.map((o) => ({ strategy: describe(o.presets), eligible: respectsAxisNames(o.presets) }));
  const plans = new Map<number, ShardPlan>();
  const peaks = new Map<number, number>();
  const peakCache = new WeakMap<ShardPlan, number>();
  const peakOf = (plan: ShardPlan): number => {
    let p = peakCache.get(plan);
    if (p === undefined) peakCache.set(plan, (p = planPeak(plan, opts)));
    return p;
  };
  const overLimit = (i: number, plan: ShardPlan): boolean => {
    if (limit === undefined) return false;
    const peak = peakOf(plan);
    peaks.set(i, peak);
    if (peak <= limit) return false;
    records[i]!.note = `needs ${formatBytes(peak)} per device, ${formatBytes(peak - limit)} over the memory limit of ${formatBytes(limit)}`;
    return true;
  };
  let best = -1;
  const consider = (i: number, plan: ShardPlan, margin = 1e-12): void => {
    const r = records[i]!;
    r.cost = planCost(plan, opts.registry, opts.cost);
    plans.set(i, plan);
    if (overLimit(i, plan)) return;
    if (best < 0 || r.cost.total < records[best]!.cost!.total * (1 - margin)) best = i;
  };

  const pipeAxis = mesh.axes.find((a) => PRESETS.some((p) => p.mpmd && p.axis === a.name));
  /**
   * A pipelined plan for each micro-batch count (microBatchCounts), the one with the least
   * estimated total among those that fit the memory limit kept (if none fits, the one with the
   * least peak); without a choice, the pipeline's own count. Throws the first count's UserError
   * when no count applies. The total is convex in the count M (the work stretched by the
   * schedule's (M+P-1)/M falls, the per-micro-batch collectives' fixed costs grow with M), so the
   * counts are tried in increasing order only until a fitting plan costs more than the one kept.
   */
  const choosePipeline = (stages: number, planWith: (microBatches: number | undefined) => ShardPlan): { plan: ShardPlan; choice?: MicroBatchChoice } => {
    const counts = microBatchCounts(graph, opts, stages);
    if (!counts) return { plan: planWith(undefined) };
    const tried: MicroBatchChoice['tried'] = [];
    let kept: { plan: ShardPlan; m: number; total: number; peak: number; fits: boolean } | undefined;
    let first: UserError | undefined;
    for (const m of counts) {
      let plan: ShardPlan;
      try {
        plan = planWith(m);
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        tried.push({ microBatches: m, note: e.message });
        first ??= e;
        continue;
      }
      const total = planCost(plan, opts.registry, opts.cost).total;
      const peak = limit === undefined ? 0 : peakOf(plan);
      const fits = limit === undefined || peak <= limit;
      tried.push({ microBatches: m, total, ...(limit === undefined ? {} : { peakBytes: peak }) });
      if (!kept || (fits && !kept.fits) || (fits === kept.fits && (fits ? total < kept.total * (1 - 1e-12) : peak < kept.peak))) kept = { plan, m, total, peak, fits };
      else if (fits && kept.fits && total > kept.total) break; // past the least total (see below)
    }
    if (!kept) throw first!;
    return { plan: kept.plan, choice: { chosen: kept.m, tried } };
  };
  // A candidate's plan: an SPMD one on a copy of the prepared graph; a pipelined one per micro-batch count on copies of the graph as given.
  const planOption = (a: AutoOption, r: AutoCandidateDetail): ShardPlan => {
    const staged = a.presets.find((p) => p.preset.mpmd);
    if (!staged) return shard(cloneGraph(prepared), mesh, { ...base, strategy: a.strategy, pipeline: noPasses });
    const { plan, choice } = choosePipeline(mesh.axis(staged.axis).size, (m) => shard(cloneGraph(graph), mesh, { ...base, strategy: a.strategy, microBatches: m ?? opts.microBatches }));
    if (choice) r.microBatches = choice;
    return plan;
  };
  const tryPresets = (eligible: boolean): void => {
    options.forEach((a, i) => {
      if (records[i]!.eligible !== eligible) return;
      let plan: ShardPlan;
      try {
        plan = planOption(a, records[i]!);
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        records[i]!.note = e.message;
        return;
      }
      consider(i, plan);
    });
  };
  tryPresets(true);

  // The layout search: on every axis but a pipeline's stage axis.
  let search: SearchSummary | undefined;
  const searchAxes = mesh.axes.filter((a) => a.size > 1 && a !== pipeAxis);
  // The search runs (unless `search: false`) when some eligible preset applies (else the ineligible
  // presets decide, as before) and some axis it lays out has more than one device.
  const applies = [...plans.keys()].some((j) => records[j]!.eligible) && mesh.axes.some((a) => a.size > 1);
  if (opts.search !== false && applies && searchAxes.length) {
    // Axes named after a model-parallel role (tp, tpr/tpc, ep) divide heavy ops by their weights
    // (search/divide.ts); dp and open axes (x) divide them any way.
    const splitWeights = modelParallelAxes(mesh);
    const searchOpts = { registry: opts.registry, rules: opts.rules, cost: opts.cost, splitWeights, timeLimit: opts.searchTimeLimit, skipAxes: pipeAxis ? [pipeAxis.name] : [] };
    const annotate = (res: SearchResult): AnnotateFn => (ctx) => res.seeds.get(ctx.axis.name) ?? new Map();
    // The anchor: the cheapest eligible preset plan, whether or not it fits the memory limit.
    let anchorAt = -1;
    for (const [j] of plans) if (records[j]!.eligible && (anchorAt < 0 || records[j]!.cost!.total < records[anchorAt]!.cost!.total)) anchorAt = j;
    const anchor = anchorAt >= 0 ? plans.get(anchorAt) : undefined;
    const searched = (plan: ShardPlan): void => {
      const i = records.length;
      records.push({ strategy: SEARCH_LABEL, eligible: true }); // moved to choice.search at the end
      const same = [...plans].find(([j]) => collectiveSignature(plans.get(j)!) === collectiveSignature(plan));
      if (same) search!.sameAs = records[same[0]]!.strategy;
      const like = same ? undefined : [...plans].find(([j]) => collectiveShape(plans.get(j)!) === collectiveShape(plan));
      if (like) search!.equivalentTo = records[like[0]]!.strategy;
      // The search's plan replaces a preset's only when clearly cheaper (SEARCH_MARGIN): within the
      // cost model's resolution the well-understood preset plan is kept (its name in the report).
      if (opts.preferSearch) {
        records[i]!.cost = planCost(plan, opts.registry, opts.cost);
        plans.set(i, plan);
        if (!overLimit(i, plan)) best = i;
      } else consider(i, plan, SEARCH_MARGIN);
    };
    if (pipeAxis && anchor) {
      // A pipeline: the search lays out one micro-batch (the anchor's count) on the other axes, as
      // the pipeline plans its micro-batch graph with presets; its plan is checked against the
      // memory limit (not bounded by it: a stage holds only its own weights, which the search,
      // seeing the whole model, does not know).
      const copy = cloneGraph(graph);
      try {
        const plan = shardPipeline(copy, mesh, { ...base, microBatches: anchor.pipeline?.microBatches ?? opts.microBatches }, options[anchorAt]!.presets, (o) => {
          passesOf(o)(copy); // bound at the micro-batch size
          unfuseSplitProjections(copy);
          const res = searchLayouts(copy, mesh, searchOpts);
          search = summary(res);
          if (res.seeds.size === 0) throw new NoSearchPlan();
          return shard(copy, mesh, { ...o, strategy: annotate(res), pipeline: noPasses });
        });
        search!.microBatches = plan.pipeline?.microBatches;
        searched(plan);
      } catch (e) {
        if (e instanceof UserError && search) records.push({ strategy: SEARCH_LABEL, eligible: true, note: `its plan does not pipeline (${e.message}); the presets decide` });
        else if (!(e instanceof NoSearchPlan)) throw e;
      }
    } else if (!pipeAxis) {
      const paramLimits = new Map<string, number>();
      // A memory limit bounds the search's parameter bytes on the last axis: the limit less the
      // activation peak of the anchor plan (its lowered peak less its parameters). The search's own
      // activation estimate is cruder than bundle/estimate.ts, so it is not what decides.
      let reserve = 0;
      const last = mesh.axes[mesh.axes.length - 1]!.name;
      if (limit !== undefined && anchor) {
        reserve = Math.max(0, peakOf(anchor) - paramBytes(anchor, last));
        paramLimits.set(last, Math.max(0, limit - reserve));
      }
      for (let attempt = 0; attempt < 4; attempt++) {
        // A fresh copy per attempt: planning rewrites the copy it plans.
        const g = cloneGraph(prepared);
        unfuseSplitProjections(g);
        const res = searchLayouts(g, mesh, { ...searchOpts, paramLimits });
        search = summary(res);
        if (res.seeds.size === 0) {
          for (const a of search.axes) if (a.leastMemoryBytes !== undefined) a.leastMemoryBytes += reserve;
          break;
        }
        const plan = shard(g, mesh, { ...base, strategy: annotate(res), pipeline: noPasses });
        if (limit !== undefined && attempt < 3) {
          const peak = peakOf(plan);
          if (peak > limit) {
            // The search's activation estimate is below the real peak: tighten by the excess and solve again.
            paramLimits.set(last, Math.min(paramLimits.get(last) ?? Infinity, paramBytes(plan, last)) - (peak - limit) - limit * 0.01);
            if (paramLimits.get(last)! <= 0) break;
            continue;
          }
        }
        searched(plan);
        break;
      }
    }
    if (search && !records.some((r) => r.strategy === SEARCH_LABEL))
      records.push({ strategy: SEARCH_LABEL, eligible: true, note: searchNote(search, limit) });
  } else if (opts.search !== false && applies) {
    records.push({ strategy: SEARCH_LABEL, eligible: true, note: `not run: no mesh axis but the pipeline's ${pipeAxis?.name ?? 'pp'} (stages) to lay out` });
  }

  if (best < 0) tryPresets(false);
  else
    for (const r of records)
      if (!r.eligible) r.note = `not planned: the mesh's axis names ask for ${records.filter((x) => x.eligible && x.strategy !== SEARCH_LABEL).map((x) => x.strategy).join(' or ')}`;
  if (best < 0) {
    const problems = records.filter((r) => r.note).map((r) => `${r.strategy}: ${r.note}`);
    if (limit !== undefined && peaks.size) {
      const least = Math.min(...peaks.values(), ...(search?.axes.map((a) => a.leastMemoryBytes ?? Infinity) ?? []));
      throw new UserError(
        `strategy auto: no plan on mesh ${mesh} fits the memory limit of ${formatBytes(limit)} per device; the least any candidate needs is ${formatBytes(least)} (${formatBytes(least - limit)} over): use more devices or pipeline stages (${problems.join('; ')})`,
      );
    }
    throw new UserError(`strategy auto: no preset applies to this model and mesh ${mesh}${problems.length ? ` (${problems.join('; ')})` : ''}`);
  }
  const winner = records[best]!;
  // The search's own record goes to choice.search (candidates stay the presets, as before).
  const searchRecord = records.find((r) => r.strategy === SEARCH_LABEL);
  const choice: AutoChoiceDetail = { chosen: winner.strategy, candidates: records.filter((r) => r !== searchRecord) };
  if (search) {
    if (searchRecord?.cost) search.cost = searchRecord.cost;
    if (searchRecord?.note) search.note = searchRecord.note;
    choice.search = search;
  }
  if (limit !== undefined) {
    const peak = peaks.get(best)!;
    const over = records.filter((r, i) => peaks.has(i) && peaks.get(i)! > limit && r.strategy !== SEARCH_LABEL).map((r) => r.strategy);
    const note = over.length
      ? `${over.join(', ')} ${over.length > 1 ? 'do' : 'does'} not fit ${formatBytes(limit)} per device; ${winner.strategy} fits with ${formatBytes(peak)}`
      : `every plan fits ${formatBytes(limit)} per device; ${winner.strategy} needs ${formatBytes(peak)}`;
    choice.memory = { limitBytes: limit, peakBytes: peak, note };
  }
  const final = (into: Graph): ShardPlan => {
    const plan = adopt(plans.get(best)!, into);
    plan.strategy = `auto (${winner.strategy})`;
    plan.autoChoice = choice;
    return plan;
  };
  return { choice, cost: winner.cost!.total, plan: plans.get(best)!, final };
}

/**
 * The mesh axes named after a model-parallel preset's axis (tp, tpr/tpc, ep: every preset that
 * owns an axis except data's and the pipeline's): the layout search divides heavy ops on them by
 * their weights (search/divide.ts splitWeights).
 */
export function modelParallelAxes(mesh: DeviceMesh): string[] {
  return mesh.axisNames().filter((a) => PRESETS.some((p) => p.axis === a && !p.mpmd && p !== dataPreset));
}

/**
 * A plan's per-device bytes of constants counting the axes up to `axis` (mesh order): what the
 * search's parameter bound on that axis compares with.
 */
export function paramBytes(plan: ShardPlan, axis: string): number {
  const { mesh, graph } = plan;
  const upto = mesh.axes.slice(0, mesh.axisIndex(axis) + 1);
  const inputs = new Set(graph.inputs);
  let total = 0;
  for (const v of graph.initializers) {
    if (!v.constant || inputs.has(v) || !v.dtype || v.dtype === 'string') continue;
    const shape = staticShape(v);
    if (!shape) continue;
    let b = numel(shape) * dtypeBytes(v.dtype);
    for (const a of upto) b = placementBytes(b, shape, v.layout?.get(a.name) ?? { kind: 'replicate' }, a.size);
    total += b;
  }
  return total;
}

/** The search's summary for the plan; timings are non-enumerable (not in JSON: plans are deterministic). */
function summary(res: SearchResult): SearchSummary {
  const axes = res.axes.map((a) => {
    const { solveMs, ...rest } = a;
    return Object.defineProperty(rest, 'solveMs', { value: solveMs, enumerable: false }) as SearchResult['axes'][number];
  });
  const out: SearchSummary = { status: res.status, variables: res.variables, constraints: res.constraints, axes, ...(res.note ? { note: res.note } : {}) } as SearchSummary;
  return Object.defineProperty(out, 'solveMs', { value: res.solveMs, enumerable: false });
}

function searchNote(s: SearchSummary, limit: number | undefined): string {
  if (s.status === 'infeasible' && limit !== undefined) {
    const least = Math.min(...s.axes.map((a) => a.leastMemoryBytes ?? Infinity));
    return `no layout fits the memory limit of ${formatBytes(limit)} per device by the search's estimate${Number.isFinite(least) ? ` (the least it can reach is ${formatBytes(least)})` : ''}`;
  }
  if (s.status === 'too-big') return `not run: ${s.note}; the presets decide`;
  return `did not finish (${s.note ?? s.status}); the presets decide`;
}

/** The mesh shapes tried for n devices: tp=n, dp×tp, pp×tp, pp×dp×tp (powers of two), tp innermost. */
export function meshShapes(n: number): string[] {
  const out: string[] = [];
  const divisors = Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
  for (const pp of divisors.filter((d) => d <= 4))
    for (const dp of divisors.filter((d) => (n / pp) % d === 0)) {
      const tp = n / pp / dp;
      if (!Number.isInteger(tp)) continue;
      const axes = [pp > 1 ? `pp=${pp}` : '', dp > 1 ? `dp=${dp}` : '', tp > 1 || (pp === 1 && dp === 1) ? `tp=${tp}` : ''].filter(Boolean);
      out.push(axes.join(','));
    }
  return [...new Set(out)];
}

/** `devices`: every mesh shape planned (each as above), the cheapest estimated total wins. */
function planAutoDevices(graph: Graph, prepared: Graph, mesh: DeviceMesh, opts: ShardOptions, shard: ShardFn): ShardPlan {
  const n = opts.devices!;
  if (!Number.isInteger(n) || n < 1) throw new UserError(`devices must be a whole number ≥ 1, got ${n}`);
  const link = mesh.axes[mesh.axes.length - 1]!.link;
  const tried: NonNullable<AutoChoiceDetail['meshes']> = [];
  let best: { mesh: DeviceMesh; r: MeshChoice } | undefined;
  for (const spec of meshShapes(n)) {
    let m = new DeviceMesh(DeviceMesh.parse(spec).axes.map((a) => ({ name: a.name, size: a.size, link })));
    try {
      if (opts.hardware) m = meshWithHardware(m, opts.hardware);
      const r = chooseOnMesh(graph, prepared, m, opts, shard);
      const pipe = r.plan.pipeline;
      tried.push({
        mesh: spec,
        chosen: r.choice.chosen,
        total: r.cost,
        ...(pipe ? { pipeline: { stages: pipe.stages, microBatches: pipe.microBatches, bubble: 1 - pipe.microBatches / Math.max(pipe.microBatches, pipe.clocks.length) } } : {}),
        ...(r.choice.memory ? { peakBytes: r.choice.memory.peakBytes } : {}),
      });
      if (!best || r.cost < best.r.cost * (1 - 1e-12)) best = { mesh: m, r };
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      tried.push({ mesh: spec, note: e.message });
    }
  }
  if (!best) throw new UserError(`strategy auto: no mesh of ${n} devices works for this model (${tried.map((t) => `${t.mesh}: ${t.note}`).join('; ')})`);
  const plan = best.r.final(graph);
  (plan.autoChoice as AutoChoiceDetail).meshes = tried;
  plan.strategy = `auto (${best.mesh}: ${best.r.choice.chosen})`;
  return plan;
}
