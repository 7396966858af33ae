/**
 * `auto`: plans every applicable preset assignment and the layout search's own plan (search/*: one
 * integer program per mesh axis, solved by HiGHS; on by default, `search: false` turns it off) and
 * picks the cheapest by the estimate below. The search's plan replaces the cheapest preset's only
 * when SEARCH_MARGIN cheaper, so where it finds a preset's plan (megatron on a transformer's tp
 * axis) the preset's name stays in the report. With `devices`, every mesh shape is tried the same
 * way (planAutoDevices).
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
import { type CostModel, DEFAULT_COST, type Seed, flopsOf } from '../propagate.js';
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
import { type SearchResult, searchLayouts } from '../search/index.js';
import type { AnnotateFn } from './custom.js';

export interface AutoOptions {
  registry: OpRegistry;
  cost?: CostModel;
  /** Plans a (cloned) graph with the given strategy name: shardGraph itself. */
  plan(graph: Graph, strategy: string): ShardPlan;
}

export interface AutoResult {
  /** The chosen candidate as a strategy name for shardGraph (the preset name that yields its assignment). */
  strategy: string;
  presets: AxisPreset[];
  choice: AutoChoice;
}

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

export function chooseAuto(graph: Graph, mesh: DeviceMesh, opts: AutoOptions): AutoResult {
  const options = autoCandidates(mesh);
  const records: AutoCandidate[] = options.map((o) => ({ strategy: describe(o.presets), eligible: respectsAxisNames(o.presets) }));
  let best = -1;
  const tryAll = (eligible: boolean): void => {
    options.forEach((a, i) => {
      const r = records[i]!;
      if (r.eligible !== eligible) return;
      let plan: ShardPlan;
      try {
        plan = opts.plan(cloneGraph(graph), a.strategy);
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        r.note = e.message;
        return;
      }
      r.cost = planCost(plan, opts.registry, opts.cost);
      if (best < 0 || r.cost.total < records[best]!.cost!.total) best = i;
    });
  };
  tryAll(true);
  if (best < 0) tryAll(false);
  else
    for (const r of records)
      if (!r.eligible) r.note = `not planned: the mesh's axis names ask for ${records.filter((x) => x.eligible).map((x) => x.strategy).join(' or ')}`;
  if (best < 0) {
    const problems = records.filter((r) => r.note).map((r) => `${r.strategy}: ${r.note}`);
    throw new UserError(`strategy auto: no preset applies to this model and mesh ${mesh}${problems.length ? ` (${problems.join('; ')})` : ''}`);
  }
  return { ...options[best]!, choice: { chosen: records[best]!.strategy, candidates: records } };
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
  /** The preset whose plan the search's plan equals (same collectives: kind, tensor, axes, placements), if any. */
  sameAs?: string;
  /**
   * Else the preset whose collectives the search's equal up to the tensor they act on (same kinds,
   * bytes, axes and placements in the same order: e.g. a partial sum reduced after its bias add
   * rather than before), if any.
   */
  equivalentTo?: string;
}

/** ShardPlan.autoChoice with the search's summary, the memory verdicts and the meshes tried. */
export interface AutoChoiceDetail extends AutoChoice {
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
 * `--strategy auto` on a graph as imported (bound and passed per candidate): every applicable preset (chooseAuto's
 * candidates) and the layout search's plan are planned on copies and costed by planCost; plans over
 * the memory limit are dropped; the cheapest wins (ties: presets first, in PRESETS order, so a
 * search that finds a preset's plan is named after it). The winner is planned again on `graph`.
 */
export function planAuto(graph: Graph, mesh: DeviceMesh, opts: ShardOptions, shard: ShardFn): ShardPlan {
  // The passes once on a copy first, so that a model they reject fails with their own message
  // (the candidates would each record it as why they do not apply).
  passesOf(opts)(cloneGraph(graph));
  if (opts.devices !== undefined) return planAutoDevices(graph, mesh, opts, shard);
  const r = chooseOnMesh(graph, mesh, opts, shard);
  return r.final();
}

/** Runs shardGraph's graph passes (bound by opts.bindings) on a graph. */
function passesOf(opts: ShardOptions): (g: Graph) => void {
  return (g) => {
    (opts.pipeline ?? defaultPipeline)({ registry: opts.registry, bindings: opts.bindings ?? {} }).run(g);
  };
}

interface MeshChoice {
  choice: AutoChoiceDetail;
  cost: number;
  /** The winner's plan (on the copy it was planned on). */
  plan: ShardPlan;
  final(): ShardPlan;
}

function chooseOnMesh(graph: Graph, mesh: DeviceMesh, opts: ShardOptions, shard: ShardFn): MeshChoice {
  const base: ShardOptions = { ...opts, devices: undefined };
  // The graph comes unbound (shardGraph): every preset candidate binds its copy; the search's copy
  // and, if the search wins, the graph itself are bound and passed here.
  const prepare = passesOf(opts);
  const limit = opts.memoryLimit;
  const options = autoCandidates(mesh);
  const records: AutoCandidate[] = options.map((o) => ({ strategy: describe(o.presets), eligible: respectsAxisNames(o.presets) }));
  const plans = new Map<number, ShardPlan>();
  const peaks = new Map<number, number>();
  const overLimit = (i: number, plan: ShardPlan): boolean => {
    if (limit === undefined) return false;
    const peak = planPeak(plan, opts);
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
  const tryPresets = (eligible: boolean): void => {
    options.forEach((a, i) => {
      if (records[i]!.eligible !== eligible) return;
      let plan: ShardPlan;
      try {
        plan = shard(cloneGraph(graph), mesh, { ...base, strategy: a.strategy });
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        records[i]!.note = e.message;
        return;
      }
      consider(i, plan);
    });
  };
  tryPresets(true);

  // The layout search: not on meshes with a pipeline (MPMD) axis.
  let search: SearchSummary | undefined;
  let searchSeeds: Map<string, Map<string, Seed>> | undefined;
  const pipeAxis = mesh.axes.find((a) => PRESETS.some((p) => p.mpmd && p.axis === a.name));
  // The search runs (unless `search: false`) when some eligible preset applies (else the ineligible
  // presets decide, as before) and some axis has more than one device.
  const applies = [...plans.keys()].some((j) => records[j]!.eligible) && mesh.axes.some((a) => a.size > 1);
  if (opts.search !== false && !pipeAxis && applies) {
    // Axes named after a model-parallel role (tp, tpr/tpc, ep) divide heavy ops by their weights
    // (search/divide.ts); dp and open axes (x) divide them any way.
    const splitWeights = modelParallelAxes(mesh);
    const paramLimits = new Map<string, number>();
    // The anchor: the cheapest eligible preset plan, whether or not it fits the memory limit.
    let anchorAt = -1;
    for (const [j] of plans) if (records[j]!.eligible && (anchorAt < 0 || records[j]!.cost!.total < records[anchorAt]!.cost!.total)) anchorAt = j;
    const anchor = anchorAt >= 0 ? plans.get(anchorAt) : undefined;
    // A memory limit bounds the search's parameter bytes on the last axis: the limit less the
    // activation peak of the anchor plan (its lowered peak less its parameters). The search's own
    // activation estimate is cruder than bundle/estimate.ts, so it is not what decides.
    let reserve = 0;
    if (limit !== undefined && anchor) {
      const last = mesh.axes[mesh.axes.length - 1]!.name;
      reserve = Math.max(0, planPeak(anchor, opts) - paramBytes(anchor, last));
      paramLimits.set(last, Math.min(paramLimits.get(last) ?? Infinity, Math.max(0, limit - reserve)));
    }
    let searchLimit: number | undefined = undefined;
    for (let attempt = 0; attempt < 4; attempt++) {
      // A fresh copy per attempt: planning rewrites the copy it plans.
      const g = cloneGraph(graph);
      prepare(g);
      unfuseSplitProjections(g);
      const res = searchLayouts(g, mesh, { registry: opts.registry, rules: opts.rules, cost: opts.cost, memoryLimit: searchLimit, paramLimits, splitWeights, timeLimit: opts.searchTimeLimit });
      search = summary(res);
      if (res.seeds.size === 0 && mesh.axes.some((a) => a.size > 1)) {
        for (const a of search.axes) if (a.leastMemoryBytes !== undefined) a.leastMemoryBytes += reserve;
        break;
      }
      // By value name: planning renames values (a gathered output's sharded value).
      const named = new Map([...res.seeds].map(([axis, s]) => [axis, new Map([...s].map(([v, seed]) => [v.name, seed]))]));
      const annotate: AnnotateFn = (ctx) => res.seeds.get(ctx.axis.name) ?? new Map();
      const plan = shard(g, mesh, { ...base, strategy: annotate, pipeline: noPasses });
      const i = records.length;
      records.push({ strategy: SEARCH_LABEL, eligible: true }); // moved to choice.search at the end
      const same = [...plans].find(([j]) => collectiveSignature(plans.get(j)!) === collectiveSignature(plan));
      if (same) search.sameAs = records[same[0]]!.strategy;
      const like = same ? undefined : [...plans].find(([j]) => collectiveShape(plans.get(j)!) === collectiveShape(plan));
      if (like) search.equivalentTo = records[like[0]]!.strategy;
      if (limit !== undefined) {
        const peak = planPeak(plan, opts);
        if (peak > limit && attempt < 3) {
          // The search's activation estimate is below the real peak: tighten by the excess and solve again.
          records.pop();
          const last = mesh.axes[mesh.axes.length - 1]!.name;
          paramLimits.set(last, Math.min(paramLimits.get(last) ?? Infinity, paramBytes(plan, last)) - (peak - limit) - limit * 0.01);
          if (paramLimits.get(last)! <= 0) break;
          continue;
        }
      }
      // The search's plan replaces a preset's only when clearly cheaper (SEARCH_MARGIN): within the
      // cost model's resolution the well-understood preset plan is kept (its name in the report).
      if (opts.preferSearch) {
        records[i]!.cost = planCost(plan, opts.registry, opts.cost);
        plans.set(i, plan);
        if (!overLimit(i, plan)) best = i;
      } else consider(i, plan, SEARCH_MARGIN);
      searchSeeds = named;
      break;
    }
    if (search && !records.some((r) => r.strategy === SEARCH_LABEL))
      records.push({ strategy: SEARCH_LABEL, eligible: true, note: searchNote(search, limit) });
  } else if (opts.search !== false && applies) {
    records.push({ strategy: SEARCH_LABEL, eligible: true, note: `not run: mesh axis ${pipeAxis?.name ?? 'pp'} is a pipeline (stage) axis; the presets decide` });
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
  const final = (): ShardPlan => {
    let plan: ShardPlan;
    if (winner.strategy === SEARCH_LABEL) {
      // The search ran on a copy: the same passes and rewrite on the graph, and its seeds mapped by value name.
      prepare(graph);
      unfuseSplitProjections(graph);
      const byName = new Map<string, Value>();
      for (const v of [...graph.inputs, ...graph.initializers, ...graph.nodes.flatMap((n) => n.outputs)]) byName.set(v.name, v);
      const seeds = new Map<string, Map<Value, Seed>>();
      for (const [axis, s] of searchSeeds!)
        seeds.set(
          axis,
          new Map(
            [...s].map(([name, seed]) => {
              const o = byName.get(name);
              if (!o) throw new Error(`auto: the search's value ${name} is not in the graph`);
              return [o, seed];
            }),
          ),
        );
      const annotate: AnnotateFn = (ctx) => seeds.get(ctx.axis.name) ?? new Map();
      plan = shard(graph, mesh, { ...base, strategy: annotate, pipeline: noPasses });
    } else plan = shard(graph, mesh, { ...base, strategy: options[best]!.strategy });
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
function planAutoDevices(graph: Graph, mesh: DeviceMesh, opts: ShardOptions, shard: ShardFn): ShardPlan {
  const n = opts.devices!;
  if (!Number.isInteger(n) || n < 1) throw new UserError(`devices must be a whole number ≥ 1, got ${n}`);
  const link = mesh.axes[mesh.axes.length - 1]!.link;
  const tried: NonNullable<AutoChoiceDetail['meshes']> = [];
  let best: { mesh: DeviceMesh; r: MeshChoice } | undefined;
  for (const spec of meshShapes(n)) {
    let m = new DeviceMesh(DeviceMesh.parse(spec).axes.map((a) => ({ name: a.name, size: a.size, link })));
    try {
      if (opts.hardware) m = meshWithHardware(m, opts.hardware);
      const r = chooseOnMesh(cloneGraph(graph), m, opts, shard);
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
  // Planned again on the graph itself, on the chosen mesh.
  const r = chooseOnMesh(graph, best.mesh, opts, shard);
  const plan = r.final();
  (plan.autoChoice as AutoChoiceDetail).meshes = tried;
  plan.strategy = `auto (${best.mesh}: ${r.choice.chosen})`;
  return plan;
}
