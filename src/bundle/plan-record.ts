/**
 * plan.json: what `shardc explain` and `shardc run <bundle>` need from a ShardPlan, so both read
 * only the bundle. Per value: its global dtype and shape, its layout (one placement per mesh axis,
 * `R` included) and why it has that layout; per collective: kind, mesh axes, tensor, bytes and
 * reason; per node: the candidate chosen on each mesh axis; the global inputs and outputs with
 * their layouts (how `run` scatters inputs and assembles outputs).
 *
 * Why a value has its layout, in order of precedence:
 *   1. the strategy or spec file seeded it (plan.seeds);
 *   2. an explanation propagation left in value.meta `sharding.why`;
 *   3. a collective produced it (the collective's reason);
 *   4. a node produced it: the candidate that node runs on each sharded axis;
 *   5. a graph input or constant: the first consumer whose candidate needs it sharded or partial;
 *   6. otherwise it is replicated because nothing needs it split.
 */
import type { DType } from '../ir/dtype.js';
import { COLLECTIVE_DOMAIN, type Node, type Value } from '../ir/graph.js';
import { formatPlacement, type Layout, parsePlacement, type Placement } from '../ir/layout.js';
import type { Dim } from '../ir/shape.js';
import type { DeviceMesh } from '../passes/sharding/mesh.js';
import type { CollectiveRecord, ShardPlan } from '../passes/sharding/plan.js';
import { compareCodeUnits } from './canonical.js';

/** Mesh axis → printed placement (every axis present). */
export type LayoutRecord = Record<string, string>;

export interface ValueRecord {
  name: string;
  kind: 'input' | 'constant' | 'node' | 'collective';
  dtype: DType | null;
  shape: Dim[] | null;
  layout: LayoutRecord;
  /** Producing node (absent for inputs and constants). */
  producer?: string;
  op?: string;
  why: string;
}

export interface PlanRecord {
  mesh: { spec: string; axes: { name: string; size: number }[] };
  strategy: string;
  bindings: Record<string, number>;
  inputs: { name: string; dtype: DType | null; shape: Dim[] | null; layout: LayoutRecord }[];
  outputs: { name: string; dtype: DType | null; shape: Dim[] | null; layout: LayoutRecord }[];
  values: ValueRecord[];
  nodes: { node: string; op: string; sharding: Record<string, string> }[];
  collectives: CollectiveRecord[];
}

export function layoutRecord(layout: Layout | undefined, mesh: DeviceMesh): LayoutRecord {
  const out: LayoutRecord = {};
  for (const a of mesh.axes) {
    const p = layout?.get(a.name);
    out[a.name] = p ? formatPlacement(p) : 'R';
  }
  return out;
}

export function layoutFromRecord(r: LayoutRecord, mesh: DeviceMesh): Layout {
  const m = new Map<string, Placement>();
  for (const a of mesh.axes) m.set(a.name, parsePlacement(r[a.name] ?? 'R'));
  return m;
}

/** `{dp: R, tp: S(1)}` in mesh axis order. */
export function formatLayoutRecord(r: LayoutRecord, axes: readonly { name: string }[]): string {
  return `{${axes.map((a) => `${a.name}: ${r[a.name] ?? 'R'}`).join(', ')}}`;
}

const isSplit = (r: LayoutRecord): boolean => Object.values(r).some((p) => p !== 'R');

function nodeSharding(n: Node, mesh: DeviceMesh): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of mesh.axes) {
    const c = n.meta.get(`sharding.${a.name}`);
    if (c !== undefined) out[a.name] = c;
  }
  return out;
}

function describeSharding(s: Record<string, string>, mesh: DeviceMesh): string {
  const parts = mesh.axes.filter((a) => s[a.name] !== undefined).map((a) => `${a.name}: ${s[a.name]}`);
  return parts.length ? parts.join('; ') : 'its replicated form';
}

/** `strategy`: the strategy as recorded in the bundle (a preset name or `spec:<file name>`). */
export function planRecord(plan: ShardPlan, strategy: string = plan.strategy): PlanRecord {
  const { graph, mesh } = plan;
  const users = graph.users();
  const collectiveByNode = new Map(plan.collectives.map((c) => [c.node, c]));
  const values: ValueRecord[] = [];
  const seen = new Set<Value>();
  const add = (v: Value, kind: ValueRecord['kind'], producer?: Node): void => {
    if (seen.has(v) || v.name === '') return;
    seen.add(v);
    const layout = layoutRecord(v.layout, mesh);
    const why = whyOf(v, kind, producer, layout);
    const shape = v.shape ? v.shape.slice() : null;
    // Keys in sorted order: canonicalJson then writes the record as it is, without a sorted copy.
    const rec: ValueRecord = producer
      ? { dtype: v.dtype ?? null, kind, layout, name: v.name, op: producer.domain ? `${producer.domain}.${producer.op}` : producer.op, producer: producer.label, shape, why }
      : { dtype: v.dtype ?? null, kind, layout, name: v.name, shape, why };
    values.push(rec);
  };
  const whyOf = (v: Value, kind: ValueRecord['kind'], producer: Node | undefined, layout: LayoutRecord): string => {
    const seed = plan.seeds.get(v.name);
    if (seed) return `seeded by strategy ${strategy}: ${seed}`;
    const meta = v.meta.get('sharding.why');
    if (meta) return meta;
    if (kind === 'collective' && producer) {
      const c = collectiveByNode.get(producer.label) ?? collectiveByNode.get(producer.name);
      const reason = c?.reason ?? producer.meta.get('reason') ?? '';
      return `produced by ${producer.op} ${producer.label}${reason ? `: ${reason}` : ''}`;
    }
    if (producer) {
      const s = nodeSharding(producer, mesh);
      return `output of ${producer.op} ${producer.label}, which runs ${describeSharding(s, mesh)}`;
    }
    const consumers = users.get(v) ?? [];
    if (isSplit(layout)) {
      const c = consumers.find((n) => n.domain !== COLLECTIVE_DOMAIN && Object.keys(nodeSharding(n, mesh)).length > 0) ?? consumers[0];
      if (c) return `required by ${c.op} ${c.label}, which runs ${describeSharding(nodeSharding(c, mesh), mesh)}`;
      return `${kind === 'input' ? 'graph input' : 'constant'} laid out by propagation`;
    }
    return consumers.length ? `replicated: no consumer needs it split (first consumer ${consumers[0]!.op} ${consumers[0]!.label})` : 'replicated: unused';
  };
  for (const v of graph.inputs) add(v, v.constant ? 'constant' : 'input');
  for (const v of graph.initializers) add(v, 'constant');
  for (const n of graph.nodes) {
    for (const i of n.inputs) if (i?.constant && !i.producer) add(i, 'constant');
    for (const o of n.outputs) add(o, n.domain === COLLECTIVE_DOMAIN ? 'collective' : 'node', n);
  }
  values.sort((a, b) => compareCodeUnits(a.name, b.name));
  const io = (v: Value): PlanRecord['inputs'][number] => ({ name: v.name, dtype: v.dtype ?? null, shape: v.shape ? v.shape.slice() : null, layout: layoutRecord(v.layout, mesh) });
  return {
    mesh: { spec: mesh.toString(), axes: mesh.axes.map((a) => ({ name: a.name, size: a.size })) },
    strategy,
    bindings: { ...plan.bindings },
    inputs: graph.inputs.filter((v) => !v.constant).map(io),
    outputs: graph.outputs.map(io),
    values,
    nodes: graph.nodes.filter((n) => n.domain !== COLLECTIVE_DOMAIN).map((n) => ({ node: n.label, op: n.op, sharding: nodeSharding(n, mesh) })),
    collectives: plan.collectives.map((c) => ({ ...c, meshAxes: c.meshAxes.slice() })),
  };
}
