/**
 * Resharding: the collectives that turn a value's layout into the layout a consumer needs.
 *
 * STATE: the value's current placement on every mesh axis (an axis missing from a layout is R).
 * INVARIANTS, between any two steps:
 *   - the global shape never changes; only which part each device holds;
 *   - each step changes the placement of exactly ONE mesh axis and emits one collective node
 *     (domain shardc.collective, attrs per plan.ts) whose output carries the new layout;
 *   - when several axes shard one tensor dim, they split it in mesh order (major axis first, as
 *     shards.ts does), so an axis may only gather a dim after every more-minor axis that shards the
 *     same dim has gathered it, and only newly shard a dim before more-minor axes shard it.
 *
 * TRANSITIONS on one axis (from → to: collectives, in order):
 *   equal              → nothing
 *   P(r) → R           AllReduce(r)
 *   P(r) → S(d:u)      ReduceScatter(d, u, r)             [direct: only this axis touches dim d]
 *   P(r) → P(r')       AllReduce(r), LocalPartial(r')
 *   S(d:u) → R         AllGather(d, u)
 *   S(i:u) → S(j:u)    AllToAll(i → j, u)                 [direct: i ≠ j, same unit, only this axis
 *                                                          touches dims i and j]
 *   S(d:u1) → S(d:u2)  AllGather(d, u1), LocalShard(d, u2)  (different block sizes: gather, re-cut)
 *   S → P              AllGather, LocalPartial            (S → R → P)
 *   R → S(d:u)         LocalShard(d, u)                    (a local slice, no traffic)
 *   R → P(r)           LocalPartial(r)                     (device 0 of the axis keeps the value,
 *                                                          the others hold the identity)
 * A transition that is not direct because another axis shares a dim goes through R (AllReduce or
 * AllGather, then LocalShard).
 *
 * MULTI-AXIS ORDER: phase 1 visits the axes from the most minor to the most major and applies the
 * communicating steps (AllReduce, AllGather, ReduceScatter, AllToAll), leaving an axis at R or at its
 * target; phase 2 visits them from major to minor and applies the local steps (LocalShard,
 * LocalPartial) from R. An axis whose placement does not change but which shards a dim that a
 * more major changing axis touches is gathered in phase 1 and re-sharded in phase 2 (keeps the
 * mesh-order invariant; rare in practice).
 *
 * COST (per step, the ring formulas, with b the bytes of the device's input tensor, k the axis
 * size, link bandwidth/latency of the axis): AllReduce 2(k-1)/k·b bytes sent, 2(k-1) latencies;
 * AllGather (k-1)·b, k-1 latencies; ReduceScatter (k-1)/k·b, k-1; AllToAll (k-1)/k·b, k-1; local
 * steps are free. Time = bytes / bandwidth + latencies.
 */
import { type DType, dtypeBytes } from '../../ir/dtype.js';
import { Attrs } from '../../ir/attrs.js';
import { type Graph, Node, Value } from '../../ir/graph.js';
import { type Layout, type Placement, Replicate, formatLayout, formatPlacement, placementEq } from '../../ir/layout.js';
import { COLLECTIVE_DOMAIN, type CollectiveKind, type CollectiveRecord } from './plan.js';
import type { DeviceMesh, MeshAxis } from './mesh.js';
import { localShape, splitDim } from './shards.js';

export interface ReshardStep {
  kind: CollectiveKind;
  axis: string;
  from: Placement;
  to: Placement;
}

const R = Replicate;
const at = (l: Layout | undefined, axis: string): Placement => l?.get(axis) ?? R;
const shardDim = (p: Placement): number | undefined => (p.kind === 'shard' ? p.dim : undefined);
const unitOf = (p: Placement): number => (p.kind === 'shard' ? (p.unit ?? 1) : 1);

/** Whether two layouts are equal on every axis of the mesh (missing = R). */
export function layoutEq(a: Layout | undefined, b: Layout | undefined, mesh: DeviceMesh): boolean {
  return mesh.axes.every((x) => placementEq(at(a, x.name), at(b, x.name)));
}

/** A layout with every mesh axis explicit, in mesh order. */
export function fullLayout(l: Layout | undefined, mesh: DeviceMesh): Map<string, Placement> {
  return new Map(mesh.axes.map((a) => [a.name, at(l, a.name)]));
}

/** A stable key of a layout on a mesh (for caches). */
export function layoutKey(l: Layout | undefined, mesh: DeviceMesh): string {
  return mesh.axes.map((a) => formatPlacement(at(l, a.name))).join(',');
}

/** The steps that take `from` to `to` (see the state machine above). */
export function reshardSteps(from: Layout | undefined, to: Layout | undefined, mesh: DeviceMesh): ReshardStep[] {
  const axes = mesh.axisNames();
  const cur = fullLayout(from, mesh);
  const want = fullLayout(to, mesh);
  const changing = new Set(axes.filter((a) => !placementEq(cur.get(a)!, want.get(a)!)));
  // An unchanged axis that shards a dim which a MORE MAJOR changing axis touches is gathered and
  // re-sharded (a more minor axis only subdivides the major axes' blocks, so it may stay).
  for (let grew = true; grew; ) {
    grew = false;
    axes.forEach((b, bi) => {
      const d = shardDim(cur.get(b)!);
      if (changing.has(b) || d === undefined) return;
      const touched = axes.some(
        (a, ai) => ai < bi && changing.has(a) && [cur.get(a)!, want.get(a)!].some((p) => p.kind === 'shard' && p.dim === d),
      );
      if (touched) {
        changing.add(b);
        grew = true;
      }
    });
  }
  const others = (a: string, dims: number[]): boolean =>
    axes.some((b) => b !== a && [cur.get(b)!, want.get(b)!].some((p) => p.kind === 'shard' && dims.includes(p.dim)));
  const steps: ReshardStep[] = [];
  const step = (kind: CollectiveKind, axis: string, to: Placement): void => {
    steps.push({ kind, axis, from: cur.get(axis)!, to });
    cur.set(axis, to);
  };
  // Phase 1: communicating steps, minor axes first.
  for (const a of [...axes].reverse()) {
    if (!changing.has(a)) continue;
    const f = cur.get(a)!;
    const t = want.get(a)!;
    if (f.kind === 'partial') {
      if (t.kind === 'shard' && !others(a, [t.dim])) step('ReduceScatter', a, t);
      else step('AllReduce', a, R);
    } else if (f.kind === 'shard') {
      if (t.kind === 'shard' && t.dim !== f.dim && unitOf(t) === unitOf(f) && !others(a, [f.dim, t.dim])) step('AllToAll', a, t);
      else step('AllGather', a, R);
    }
  }
  // Phase 2: local steps from R, major axes first.
  for (const a of axes) {
    const t = want.get(a)!;
    if (placementEq(cur.get(a)!, t)) continue;
    step(t.kind === 'partial' ? 'LocalPartial' : 'LocalShard', a, t);
  }
  return steps;
}

/** Bytes each device sends for one collective whose input is `b` bytes on each device, over k devices. */
export function collectiveBytes(kind: CollectiveKind, b: number, k: number): number {
  if (k <= 1) return 0;
  switch (kind) {
    case 'AllReduce':
      return (2 * (k - 1) * b) / k;
    case 'AllGather':
      return (k - 1) * b;
    case 'ReduceScatter':
    case 'AllToAll':
      return ((k - 1) * b) / k;
    case 'Broadcast':
      return b;
    case 'Send':
      return b;
    default:
      return 0;
  }
}

/** Seconds for one collective (ring formulas) on an axis. */
export function collectiveTime(kind: CollectiveKind, b: number, axis: MeshAxis): number {
  const k = axis.size;
  const bytes = collectiveBytes(kind, b, k);
  if (bytes === 0) return 0;
  const hops = kind === 'AllReduce' ? 2 * (k - 1) : kind === 'Broadcast' || kind === 'Send' ? 1 : k - 1;
  return bytes / axis.link.bandwidth + hops * axis.link.latency;
}

/** Bytes of one element (strings and unknown dtypes count 4). */
export function dtypeSize(d: DType | undefined): number {
  if (!d || d === 'string') return 4;
  return dtypeBytes(d);
}

/** Bytes the largest device holds of a tensor of this global shape under `layout`. */
export function localBytes(shape: readonly number[], dtype: DType | undefined, layout: Layout | undefined, mesh: DeviceMesh): number {
  return localShape(shape, layout, mesh, 0).reduce((a, b) => a * b, 1) * dtypeSize(dtype);
}

/** Bytes on one device of a value of `bytes` global bytes under one axis placement (k devices). */
export function placementBytes(bytes: number, shape: readonly number[], p: Placement, k: number): number {
  if (p.kind !== 'shard' || k <= 1) return bytes;
  const n = shape[p.dim] ?? 1;
  if (n === 0) return 0;
  const u = n % unitOf(p) === 0 ? unitOf(p) : 1;
  return (bytes * splitDim(n, k, u)[0]!.size) / n;
}

/** Seconds to take a value (global `bytes`, `shape`) from `from` to `to` on one axis (propagation's cost). */
export function placementCost(from: Placement, to: Placement, bytes: number, shape: readonly number[], axis: MeshAxis): number {
  if (placementEq(from, to)) return 0;
  let cur = from;
  let t = 0;
  for (const s of singleAxisSteps(from, to)) {
    t += collectiveTime(s.kind, placementBytes(bytes, shape, cur, axis.size), axis);
    cur = s.to;
  }
  return t;
}

/** The steps of the single-axis state machine (no other axis to respect). */
export function singleAxisSteps(from: Placement, to: Placement): { kind: CollectiveKind; to: Placement }[] {
  if (placementEq(from, to)) return [];
  const out: { kind: CollectiveKind; to: Placement }[] = [];
  let cur = from;
  if (cur.kind === 'partial') {
    if (to.kind === 'shard') return [{ kind: 'ReduceScatter', to }];
    out.push({ kind: 'AllReduce', to: R });
    cur = R;
  } else if (cur.kind === 'shard') {
    if (to.kind === 'shard' && to.dim !== cur.dim && unitOf(to) === unitOf(cur)) return [{ kind: 'AllToAll', to }];
    out.push({ kind: 'AllGather', to: R });
    cur = R;
  }
  if (!placementEq(cur, to)) out.push({ kind: to.kind === 'partial' ? 'LocalPartial' : 'LocalShard', to });
  return out;
}

/** What a reshard is for, to write the collective's reason. */
export interface ReshardWhy {
  /** e.g. `MatMul MatMul_node_55` or `graph output logits` */
  consumer: string;
}

/**
 * Inserts collectives into a graph being rebuilt in order: `get(v, layout, why)` returns a value
 * holding v in that layout, appending the collective nodes it needs to `emit` (the caller places
 * them before the consumer). Results are cached per (value, layout), so several consumers that need
 * the same layout share one collective, and intermediate layouts of multi-step paths are reused.
 */
export class Resharder {
  readonly records: CollectiveRecord[] = [];
  private readonly cache = new Map<Value, Map<string, Value>>();

  constructor(
    /** The graph the collectives are for (kept for callers that inspect it; nodes are placed by `emit`). */
    readonly graph: Graph,
    private readonly mesh: DeviceMesh,
    private readonly newName: (base: string) => string,
  ) {}

  /** Registers a value as available in its own layout (a node output, a graph input, a constant). */
  private entry(v: Value): Map<string, Value> {
    let m = this.cache.get(v);
    if (!m) {
      m = new Map([[layoutKey(v.layout, this.mesh), v]]);
      this.cache.set(v, m);
    }
    return m;
  }

  get(v: Value, to: Layout, why: ReshardWhy, emit: (n: Node) => void, opts: { name?: string } = {}): Value {
    const m = this.entry(v);
    const key = layoutKey(to, this.mesh);
    const hit = m.get(key);
    if (hit) return hit;
    const steps = reshardSteps(v.layout, to, this.mesh);
    let cur = v;
    const origin = v.producer ? `produced by ${v.producer.label}` : v.constant ? 'a constant' : 'a graph input';
    steps.forEach((s, i) => {
      const layout = new Map(fullLayout(cur.layout, this.mesh));
      layout.set(s.axis, s.to);
      const k = layoutKey(layout, this.mesh);
      const cached = m.get(k);
      if (cached) {
        cur = cached;
        return;
      }
      const last = i === steps.length - 1;
      const out = new Value(last && opts.name ? opts.name : this.newName(`${v.name}.${s.kind.toLowerCase()}_${s.axis}`), v.dtype, v.shape?.slice());
      out.layout = layout;
      const node = new Node(s.kind, [cur], [out], collectiveAttrs(s), this.newName(`${s.kind}_${s.axis}_${v.name}`), COLLECTIVE_DOMAIN);
      const wantText = formatPlacement(at(to, s.axis));
      node.meta.set(
        'reason',
        `${why.consumer} needs ${wantText} of ${v.name} on ${s.axis}; it is ${formatPlacement(at(v.layout, s.axis))} (${origin})` +
          (steps.length > 1 ? ` [step ${i + 1} of ${steps.length}: ${formatPlacement(s.from)} -> ${formatPlacement(s.to)}]` : ''),
      );
      node.meta.set('from', formatLayout(fullLayout(cur.layout, this.mesh)));
      node.meta.set('to', formatLayout(layout));
      emit(node);
      const shape = (cur.shape ?? []) as number[];
      const b = localBytes(shape, cur.dtype, cur.layout, this.mesh);
      this.records.push({
        node: node.name,
        kind: s.kind,
        meshAxes: [s.axis],
        tensor: v.name,
        bytes: Math.round(collectiveBytes(s.kind, b, this.mesh.axis(s.axis).size)),
        reason: node.meta.get('reason')!,
        from: node.meta.get('from')!,
        to: node.meta.get('to')!,
      });
      m.set(k, out);
      cur = out;
    });
    return cur;
  }
}

function collectiveAttrs(s: ReshardStep): Attrs {
  const a = new Attrs();
  a.set('axis', { kind: 'string', value: s.axis });
  const int = (k: string, v: number): void => void a.set(k, { kind: 'int', value: v });
  const str = (k: string, v: string): void => void a.set(k, { kind: 'string', value: v });
  switch (s.kind) {
    case 'AllReduce':
      if (s.from.kind === 'partial') str('reduce', s.from.reduce);
      break;
    case 'AllGather':
      if (s.from.kind === 'shard') {
        int('dim', s.from.dim);
        int('unit', unitOf(s.from));
      }
      break;
    case 'ReduceScatter':
      if (s.to.kind === 'shard' && s.from.kind === 'partial') {
        int('dim', s.to.dim);
        int('unit', unitOf(s.to));
        str('reduce', s.from.reduce);
      }
      break;
    case 'AllToAll':
      if (s.from.kind === 'shard' && s.to.kind === 'shard') {
        int('from_dim', s.from.dim);
        int('to_dim', s.to.dim);
        int('unit', unitOf(s.to));
      }
      break;
    case 'LocalShard':
      if (s.to.kind === 'shard') {
        int('dim', s.to.dim);
        int('unit', unitOf(s.to));
      }
      break;
    case 'LocalPartial':
      if (s.to.kind === 'partial') str('reduce', s.to.reduce);
      break;
    default:
      break;
  }
  return a;
}
