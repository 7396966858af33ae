/**
 * `auto`: a placeholder for the real strategy search. It plans every applicable preset assignment
 * and picks the cheapest by a simple estimate.
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
 * pipeline.stage; its coordinate on the stage axis), and the compute term is the busiest device's
 * work stretched by the schedule, × clocks ÷ micro-batches (the fill and drain bubble).
 * The choice and every candidate's costs are recorded in the plan (ShardPlan.autoChoice).
 */
import { UserError } from '../../../ir/errors.js';
import type { Attr } from '../../../ir/attrs.js';
import { dtypeBytes } from '../../../ir/dtype.js';
import { Graph, Node, Value } from '../../../ir/graph.js';
import type { OpRegistry } from '../../../ir/registry.js';
import type { DeviceMesh } from '../mesh.js';
import { type AutoCandidate, type AutoChoice, COMMUNICATING, type ShardPlan, isCollective, nodeStage } from '../plan.js';
import { type CostModel, DEFAULT_COST, flopsOf } from '../propagate.js';
import { localShape } from '../shards.js';
import { type AxisPreset, PRESETS, assignPresets } from './index.js';

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
  let communication = 0;
  for (const c of plan.collectives) {
    if (!COMMUNICATING.has(c.kind)) continue;
    const links = c.meshAxes.filter((a) => mesh.hasAxis(a)).map((a) => mesh.axis(a).link);
    const bandwidth = links.length ? Math.min(...links.map((l) => l.bandwidth)) : Infinity;
    const latency = links.length ? Math.max(...links.map((l) => l.latency)) : 0;
    communication += c.bytes / bandwidth + latency + cost.secondsPerCollective;
  }

  const devices = mesh.deviceCount;
  const localNumel = (v: Value, d: number): number => {
    const s = staticShape(v)!;
    return numel(v.layout ? localShape(s, v.layout, mesh, d) : s);
  };
  // Pipelines: the devices that run a node (its stage's), else every device.
  const pipe = plan.pipeline;
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
  const compute = Math.max(...flops) * cost.secondsPerFlop * stretch;
  const memory = Math.max(...bytes) * cost.secondsPerByte;
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
