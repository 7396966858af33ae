/**
 * SPMD lowering: a sharding plan (the global graph with layouts and collectives) → one local
 * graph per device of the mesh.
 *
 * For device d, every value of the global graph becomes a value of the same name whose shape is
 * d's block of it (localShape of its layout; uneven splits give per-device shapes), so graph
 * inputs and outputs keep their names. Then:
 * - Initializers are sliced per their layout, lazily: the local constant is a LazyTensor whose
 *   loader slices the global one, so no weight is read before a device needs it. A replicated
 *   constant shares the global LazyTensor.
 * - Each node's sharding rule may rewrite it (rule.localize) with the candidate chosen per mesh
 *   axis; the rule may replace constant inputs, create values and insert nodes.
 * - Shape constants of Reshape, Expand, ConstantOfShape, Split (split sizes) and Resize (sizes)
 *   that the rule left alone are rewritten to the local sizes when the node's local output
 *   differs from the global one. Initializers no longer used afterwards are dropped.
 * - Collective nodes are kept, with the attributes a runtime needs: `_local_shape` (this
 *   device's output shape, which their infer() returns) and `_group` (the ranks of the device's
 *   group along the collective's mesh axis, in axis order); Send/Recv also get `_peer`.
 * Node order is the global order (plus inserted nodes), so every device meets the collectives
 * of a group in the same order.
 * A pipelined plan (plan.pipeline, MPMD): a device lowers only the nodes of its stage, the graph
 * inputs they read and the graph outputs they produce; unused weights are dropped as above, so it
 * holds only its stage's weights.
 * Derived programs (DeviceLowering.derive): device 0 is lowered in full; every later device whose
 * values all have device 0's local shapes (every rank of an even tensor-parallel split) copies
 * device 0's program with its own values, weight blocks and collective groups, and localizes again
 * only the nodes whose rules read the device's ranges or constant blocks (a vocabulary-parallel
 * Gather). The copy is what lowering the device would build; other devices are lowered in full.
 * Device twins (end of this file): right after lowering, each device program that is the same as an
 * earlier device's but for the data of constants no cost figure reads is marked as its twin, so the
 * passes and files after lowering compute per distinct program, not per device.
 */
import { type Attr, Attrs } from '../../ir/attrs.js';
import type { DType } from '../../ir/dtype.js';
import { UserError } from '../../ir/errors.js';
import { COLLECTIVE_DOMAIN, Graph, Node, Value, subgraphCaptures } from '../../ir/graph.js';
import { type Layout, Replicate } from '../../ir/layout.js';
import { GROUP_ATTR, LOCAL_SHAPE_ATTR } from '../../ir/ops/collective.js';
import type { InferContext, OpRegistry, TypeInfo } from '../../ir/registry.js';
import { type Shape, isStatic } from '../../ir/shape.js';
import { LazyTensor, Tensor } from '../../ir/tensor.js';
import type { DeviceMesh } from './mesh.js';
import { type ShardPlan, isCollective, nodeStage } from './plan.js';
import type { Candidate, LocalizeContext, ShardingRuleRegistry } from './rule.js';
import { type Range, localRanges, localShape, shardTensor } from './shards.js';

export interface DeviceProgram {
  /** Rank of the device in the mesh (row-major). */
  device: number;
  /** Its coordinates, one per mesh axis. */
  coords: number[];
  /** Its local graph (local shapes, sliced weights, collectives with their groups). */
  graph: Graph;
}

export interface LowerOptions {
  registry: OpRegistry;
  rules: ShardingRuleRegistry;
  /** false: lower every device in full, none derived from device 0's (tests compare the two). Default true. */
  derive?: boolean;
}

/** Attribute with the peer rank of a Send/Recv in a device graph. */
export const PEER_ATTR = '_peer';

export function lowerPlan(plan: ShardPlan, opts: LowerOptions): DeviceProgram[] {
  const out: DeviceProgram[] = [];
  const shared = new SharedLowering(plan);
  // Device 0 is lowered in full; a later device whose every value has device 0's local shape
  // derives its program from device 0's (DeviceLowering.derive), else it is lowered in full too.
  let template: DeviceLowering | undefined;
  for (let d = 0; d < plan.mesh.deviceCount; d++) {
    let graph = template && new DeviceLowering(plan, d, opts, shared).derive(template);
    if (!graph) {
      const low = new DeviceLowering(plan, d, opts, shared);
      graph = low.run();
      if (d === 0 && !plan.pipeline && opts.derive !== false) template = low;
    }
    out.push({ device: d, coords: plan.mesh.coords(d), graph });
  }
  findTwins(out, plan.mesh, opts.registry);
  return out;
}

/**
 * What every device's lowering of one plan reads and is the same for all devices, computed once
 * (lowering runs once per device, so per-node work that does not depend on the device is shared):
 * the global graph's value names, and per node whether its attributes hold subgraphs.
 */
class SharedLowering {
  private names?: ReadonlySet<string>;
  private readonly subgraphs = new Map<Node, boolean>();

  constructor(private readonly plan: ShardPlan) {}

  globalNames(): ReadonlySet<string> {
    return (this.names ??= new Set(this.plan.graph.valuesByName().keys()));
  }

  hasSubgraphs(node: Node): boolean {
    let has = this.subgraphs.get(node);
    if (has === undefined) {
      has = node.attrs.entries().some(([, a]) => a.kind === 'graph' || a.kind === 'graphs');
      this.subgraphs.set(node, has);
    }
    return has;
  }
}

/** True when the layout splits or partialises anything (else every device holds the whole value). */
function distributes(layout: Layout | undefined): boolean {
  if (!layout) return false;
  for (const p of layout.values()) if (p.kind !== 'replicate') return true;
  return false;
}

function isSharded(layout: Layout | undefined): boolean {
  if (!layout) return false;
  for (const p of layout.values()) if (p.kind === 'shard') return true;
  return false;
}

/** The candidate per axis of a node: the plan's, else rebuilt from layouts (and `local` from node.meta). */
export function nodeCandidates(plan: ShardPlan, node: Node): Map<string, Candidate> {
  const given = plan.candidates?.get(node);
  if (given) return given;
  const out = new Map<string, Candidate>();
  for (const axis of plan.mesh.axisNames()) {
    const printed = node.meta.get(`sharding.${axis}`);
    const local = printed ? /\blocal\s*[:=]\s*['"]?([A-Za-z0-9_-]+)/.exec(printed)?.[1] : undefined;
    const cand: Candidate = {
      inputs: node.inputs.map((v) => (v ? v.layout?.get(axis) ?? Replicate : null)),
      outputs: node.outputs.map((v) => v.layout?.get(axis) ?? Replicate),
    };
    if (local) cand.local = local;
    out.set(axis, cand);
  }
  return out;
}

class DeviceLowering {
  readonly graph: Graph;
  private readonly vmap = new Map<Value, Value>();
  /**
   * What derive reads of this lowering: per global node that must be localized again on each
   * device (its rule read the device's ranges, or an input that is a device block of a constant),
   * the device nodes it became; whether the graph was sorted after the rules' edits.
   */
  private readonly perDevice = new Map<Node, Node[]>();
  /** The names the per-device nodes' localization created. */
  private readonly perDeviceNames = new Set<string>();
  /** Device collective -> its global node. */
  private readonly collectives = new Map<Node, Node>();
  private sorted = false;
  /** Names given on this device beyond the global graph's (shared.globalNames()). */
  private readonly names = new Set<string>();
  private readonly globalNames: ReadonlySet<string>;
  /**
   * Device nodes that may have subgraph attributes (copies of global nodes with subgraphs, and the
   * nodes rules insert); every other node's captures are none.
   */
  private readonly mayCapture = new Set<Node>();
  private readonly mesh: DeviceMesh;

  constructor(
    private readonly plan: ShardPlan,
    private readonly device: number,
    private readonly opts: LowerOptions,
    private readonly shared = new SharedLowering(plan),
  ) {
    this.mesh = plan.mesh;
    const g = plan.graph;
    this.graph = new Graph(g.name);
    this.graph.opsets = { ...g.opsets };
    for (const [k, v] of g.meta) this.graph.meta.set(k, v);
    this.graph.meta.set('shardc.mesh', this.mesh.toString());
    this.graph.meta.set('shardc.device', String(device));
    this.globalNames = shared.globalNames();
  }

  uniqueName(hint: string): string {
    let name = hint;
    for (let i = 1; this.names.has(name) || this.globalNames.has(name); i++) name = `${hint}_${i}`;
    this.names.add(name);
    return name;
  }

  localShapeOf(v: Value): Shape | undefined {
    if (!v.shape) return undefined;
    if (isStatic(v.shape)) return isSharded(v.layout) ? localShape(v.shape, v.layout, this.mesh, this.device) : v.shape.slice();
    if (!isSharded(v.layout)) return v.shape.slice();
    throw new UserError(`value has the symbolic shape [${v.shape.join(',')}] and a sharded layout; bind its symbols before lowering`, {
      tensor: v.name,
    });
  }

  rangesOf(v: Value | null | undefined): Range[] | undefined {
    if (!v?.shape || !isStatic(v.shape)) return undefined;
    return localRanges(v.shape, v.layout, this.mesh, this.device);
  }

  private localValue(v: Value): Value {
    const lv = new Value(v.name, v.dtype, this.localShapeOf(v));
    if (v.layout) lv.layout = v.layout;
    if (v.meta.size) for (const [k, m] of v.meta) lv.meta.set(k, m);
    if (v.constant) lv.constant = this.localConstant(v);
    this.vmap.set(v, lv);
    return lv;
  }

  private localConstant(v: Value): LazyTensor {
    const c = v.constant!;
    if (!distributes(v.layout)) return c;
    const layout = v.layout;
    const { mesh, device } = this;
    const shape = localShape(c.shape, layout, mesh, device);
    const block = new LazyTensor(c.dtype, shape, { kind: 'inline' }, () => shardTensor(c.load(), layout, mesh, device));
    blocks.add(block);
    return block;
  }

  private mapped(v: Value, node: Node): Value {
    const lv = this.vmap.get(v);
    if (lv) return lv;
    if (v.constant) {
      // A constant not listed among the initializers (e.g. folded into a node input directly).
      return this.localValue(v);
    }
    throw new UserError(`input ${JSON.stringify(v.name)} is not defined before it is used`, { node: node.label });
  }

  run(): Graph {
    const g = this.plan.graph;
    const staged = this.stageNodes();
    for (const v of g.inputs) if (!staged || staged.inputs.has(v)) this.graph.inputs.push(this.localValue(v));
    for (const v of g.initializers) this.graph.initializers.push(this.vmap.get(v) ?? this.localValue(v));
    let edited = false;
    for (const node of g.nodes) {
      if (staged && !staged.nodes.has(node)) continue;
      const inputs = node.inputs.map((v) => (v ? this.mapped(v, node) : null));
      const outputs = node.outputs.map((o) => this.localValue(o));
      const plain = !this.shared.hasSubgraphs(node);
      const attrs = plain ? node.attrs.clone() : cloneAttrs(node.attrs, this.vmap);
      const local = new Node(node.op, inputs, outputs, attrs, node.name, node.domain);
      if (!plain) this.mayCapture.add(local);
      if (node.meta.size) for (const [k, m] of node.meta) local.meta.set(k, m);
      if (isCollective(node)) {
        this.graph.addNode(local);
        this.annotateCollective(node, local);
        this.collectives.set(local, node);
        continue;
      }
      const before: Node[] = [];
      const after: Node[] = [];
      const named = this.names.size;
      if (this.localize(node, local, before, after)) {
        this.perDevice.set(node, [...before, local, ...after]);
        let i = 0;
        for (const name of this.names) if (i++ >= named) this.perDeviceNames.add(name);
      }
      if (before.length || after.length) {
        edited = true;
        for (const n of before) this.mayCapture.add(n);
        for (const n of after) this.mayCapture.add(n);
      }
      this.graph.nodes.push(...before, local, ...after);
    }
    for (const v of g.outputs) {
      if (staged && !this.vmap.has(v) && !v.constant) continue; // produced on another stage
      this.graph.outputs.push(this.vmap.get(v) ?? this.localValue(v));
    }
    // The stable sort keeps an order that is already topological, so it runs only where needed.
    if (edited && !isTopological(this.graph, this.mayCapture)) {
      this.graph.sortTopologically();
      this.sorted = true;
    }
    this.dropUnusedInitializers();
    return this.graph;
  }

  /**
   * This device's program derived from `t`'s (device 0's lowering, not pipelined), or undefined
   * when it cannot be (the caller lowers the device in full). It is what run() would build: every
   * value of the global graph gets this device's local value, whose shape must be t's (else
   * undefined); t's nodes are copied in t's order with this device's values, collectives get this
   * device's groups and peers, and the values and constants t's rules created are t's (a rule that
   * reads neither ranges nor a device's constant block writes the same for the same local shapes).
   * The nodes whose rules read either (t.perDevice: the vocabulary-parallel Gather's offsets) are
   * localized again on this device, which must give nodes and value names like t's. Names are
   * unique per graph, so this device's name set is t's less the names those nodes create.
   */
  derive(t: DeviceLowering): Graph | undefined {
    if (t.sorted) return undefined;
    for (const n of t.mayCapture) if (n.attrs.entries().some(([, a]) => a.kind === 'graph' || a.kind === 'graphs')) return undefined;
    const map = new Map<Value, Value>(); // t's value -> this device's
    for (const [g, tv] of t.vmap) {
      const lv = this.localValue(g);
      if (!sameDims(lv.shape, tv.shape)) return undefined;
      map.set(tv, lv);
    }
    const firstOf = new Map<Node, Node>(); // first device node of a per-device global node -> the global node
    const skip = new Set<Node>();
    for (const [g, nodes] of t.perDevice) {
      firstOf.set(nodes[0]!, g);
      for (const n of nodes) skip.add(n);
    }
    for (const name of t.names) if (!t.perDeviceNames.has(name)) this.names.add(name);
    const copy = (tv: Value): Value => {
      let v = map.get(tv);
      if (!v) {
        v = new Value(tv.name, tv.dtype, tv.shape?.slice());
        if (tv.layout) v.layout = tv.layout;
        if (tv.meta.size) for (const [k, m] of tv.meta) v.meta.set(k, m);
        if (tv.constant) v.constant = tv.constant;
        map.set(tv, v);
      }
      return v;
    };
    /** Pairs t's value with this device's at the same place: the same if already paired, else the same name. */
    const pair = (tv: Value | null | undefined, v: Value | null | undefined): boolean => {
      if (!tv || !v) return !tv && !v;
      const m = map.get(tv);
      if (m) return m === v;
      map.set(tv, v);
      return tv.name === v.name;
    };
    for (const tn of t.graph.nodes) {
      const g = firstOf.get(tn);
      if (g) {
        const local = new Node(g.op, g.inputs.map((v) => (v ? this.mapped(v, g) : null)), g.outputs.map((o) => this.vmap.get(o)!), g.attrs.clone(), g.name, g.domain);
        if (g.meta.size) for (const [k, m] of g.meta) local.meta.set(k, m);
        const before: Node[] = [];
        const after: Node[] = [];
        this.localize(g, local, before, after);
        const nodes = [...before, local, ...after];
        const tns = t.perDevice.get(g)!;
        if (nodes.length !== tns.length) return undefined;
        for (let i = 0; i < nodes.length; i++) {
          const x = tns[i]!;
          const y = nodes[i]!;
          if (x.op !== y.op || x.domain !== y.domain || x.inputs.length !== y.inputs.length || x.outputs.length !== y.outputs.length) return undefined;
          for (let j = 0; j < x.inputs.length; j++) if (!pair(x.inputs[j], y.inputs[j])) return undefined;
          for (let j = 0; j < x.outputs.length; j++) {
            const [ox, oy] = [x.outputs[j]!, y.outputs[j]!];
            if (!pair(ox, oy) || ox.dtype !== oy.dtype || !sameDims(ox.shape, oy.shape)) return undefined;
          }
        }
        this.graph.nodes.push(...nodes);
        continue;
      }
      if (skip.has(tn)) continue;
      const n = new Node(tn.op, tn.inputs.map((v) => (v ? copy(v) : null)), tn.outputs.map(copy), tn.attrs.clone(), tn.name, tn.domain);
      if (tn.meta.size) for (const [k, m] of tn.meta) n.meta.set(k, m);
      const global = t.collectives.get(tn);
      if (global) this.annotateCollective(global, n);
      this.graph.nodes.push(n);
    }
    this.graph.inputs = t.graph.inputs.map(copy);
    this.graph.initializers = t.graph.initializers.map(copy);
    this.graph.outputs = t.graph.outputs.map(copy);
    return this.graph;
  }

  /** Initializers no longer used (shape constants replaced by local ones); inputs with defaults stay. */
  private dropUnusedInitializers(): void {
    const used = new Set<Value>(this.graph.outputs);
    for (const n of this.graph.nodes) {
      for (const v of n.inputs) if (v) used.add(v);
      if (this.mayCapture.has(n)) for (const v of subgraphCaptures(n)) used.add(v);
    }
    const inputs = new Set(this.graph.inputs);
    this.graph.initializers = this.graph.initializers.filter((v) => used.has(v) || inputs.has(v));
  }

  /**
   * A pipelined plan (plan.pipeline): the nodes of this device's stage (node.meta pipeline.stage
   * equal to its coordinate on the stage axis; nodes without a stage run everywhere) and the graph
   * inputs they read. Graph outputs produced on other stages are left out. Undefined otherwise.
   */
  private stageNodes(): { nodes: Set<Node>; inputs: Set<Value> } | undefined {
    const info = this.plan.pipeline;
    if (!info) return undefined;
    const stage = this.mesh.coord(this.device, info.axis);
    const nodes = new Set(this.plan.graph.nodes.filter((n) => (nodeStage(n) ?? stage) === stage));
    const inputs = new Set<Value>();
    for (const n of nodes) for (const v of n.inputs) if (v) inputs.add(v);
    const graphInputs = new Set(this.plan.graph.inputs);
    if (stage === 0) for (const o of this.plan.graph.outputs) if (graphInputs.has(o)) inputs.add(o);
    return { nodes, inputs };
  }

  private annotateCollective(global: Node, local: Node): void {
    const out = local.outputs[0];
    if (out?.shape && isStatic(out.shape)) local.attrs.set(LOCAL_SHAPE_ATTR, { kind: 'ints', value: out.shape.slice() });
    const axis = global.attrs.has('axis') ? global.attrs.string('axis') : undefined;
    if (axis !== undefined) {
      if (!this.mesh.hasAxis(axis))
        throw new UserError(`collective ${global.op} is over mesh axis ${JSON.stringify(axis)}, which the mesh ${this.mesh} lacks`, {
          node: global.label,
        });
      local.attrs.set(GROUP_ATTR, { kind: 'ints', value: this.mesh.group(this.device, axis) });
    }
    if (global.op === 'Send' || global.op === 'Recv') {
      const stageAxis = axis ?? (this.mesh.hasAxis('pp') ? 'pp' : undefined);
      const peerStage = global.attrs.maybeInt('peer_stage');
      if (stageAxis !== undefined && peerStage !== undefined) {
        const group = this.mesh.group(this.device, stageAxis);
        const peer = group[peerStage];
        if (peer === undefined)
          throw new UserError(`peer_stage ${peerStage} is outside mesh axis ${stageAxis} of size ${group.length}`, { node: global.label });
        local.attrs.set(PEER_ATTR, { kind: 'int', value: peer });
      }
    }
  }

  /** Rewrites `local` for this device; true when the rule's result may depend on more than local shapes (applyRule). */
  private localize(global: Node, local: Node, before: Node[], after: Node[]): boolean {
    const original = local.inputs.slice();
    const perDevice = this.applyRule(global, local, before, after);
    // Shape constants the rule left alone (same input value as before) get the generic rewrite.
    rewriteShapeConstants(this, global, local, (i) => local.inputs[i] === original[i]);
    return perDevice;
  }

  /**
   * Applies the node's rule.localize; true when what it wrote may depend on the device beyond the
   * local shapes: it read the device's ranges, or the node reads a device block of a constant.
   */
  private applyRule(global: Node, local: Node, before: Node[], after: Node[]): boolean {
    const rule = this.opts.rules.get(global.op, global.domain);
    if (!rule?.localize) return false;
    let perDevice = global.inputs.some((v) => !!v?.constant && distributes(v.layout));
    const typeOf = (v: Value | null | undefined): TypeInfo | undefined => (v && v.dtype ? { dtype: v.dtype, shape: v.shape?.slice() } : undefined);
    const staticShape = (v: Value | null | undefined): number[] | undefined =>
      v?.shape && isStatic(v.shape) ? v.shape.slice() : undefined;
    // Most rules read a few of the shape and range lists: each is built on first read (from the
    // node's inputs and outputs as they were when the rule started), at most once.
    const localInputs = local.inputs.slice();
    const localOutputs = local.outputs.slice();
    const rangesOf = (v: Value | null | undefined): Range[] | undefined => this.rangesOf(v);
    const plan = this.plan;
    let inputs: LocalizeContext['inputs'] | undefined;
    let outputs: LocalizeContext['outputs'] | undefined;
    let localInputShapes: LocalizeContext['localInputShapes'] | undefined;
    let localOutputShapes: LocalizeContext['localOutputShapes'] | undefined;
    let inputRanges: LocalizeContext['inputRanges'] | undefined;
    let outputRanges: LocalizeContext['outputRanges'] | undefined;
    let candidates: LocalizeContext['candidates'] | undefined;
    const ctx: LocalizeContext = {
      node: local,
      get inputs() {
        return (inputs ??= global.inputs.map(typeOf));
      },
      get outputs() {
        return (outputs ??= global.outputs.map((o) => typeOf(o) ?? { dtype: 'float32' as DType }));
      },
      get localInputShapes() {
        return (localInputShapes ??= localInputs.map(staticShape));
      },
      get localOutputShapes() {
        return (localOutputShapes ??= localOutputs.map((o) => staticShape(o) ?? []));
      },
      get inputRanges() {
        perDevice = true;
        return (inputRanges ??= global.inputs.map(rangesOf));
      },
      get outputRanges() {
        perDevice = true;
        return (outputRanges ??= global.outputs.map((o) => rangesOf(o) ?? []));
      },
      get candidates() {
        return (candidates ??= nodeCandidates(plan, global));
      },
      setConstantInput: (i, t) => this.setConstantInput(local, i, t),
      newValue: (hint, dtype, shape) => new Value(this.uniqueName(hint), dtype, shape.slice()),
      newConstant: (hint, t) => this.newConstant(hint, t),
      insertBefore: (...nodes) => before.push(...nodes),
      insertAfter: (...nodes) => after.push(...nodes),
    };
    try {
      rule.localize(ctx);
    } catch (e) {
      if (e instanceof UserError) throw e.at({ node: global.label });
      throw e;
    }
    return perDevice;
  }

  newConstant(hint: string, t: Tensor): Value {
    const v = new Value(this.uniqueName(hint), t.dtype, t.shape.slice());
    v.constant = LazyTensor.of(t);
    this.graph.initializers.push(v);
    return v;
  }

  setConstantInput(node: Node, i: number, t: Tensor): void {
    const base = node.outputs.find((o) => o.name)?.name ?? node.name ?? node.op;
    while (node.inputs.length <= i) node.inputs.push(null);
    node.inputs[i] = this.newConstant(`${base}__local_in${i}`, t);
  }
}

/**
 * Whether every node comes after the producers of its inputs (and of the outer values its
 * subgraphs use; only nodes in `mayCapture` can have subgraphs).
 */
function isTopological(g: Graph, mayCapture: ReadonlySet<Node>): boolean {
  // Each node's first position; a producer outside the graph is always ready.
  const position = new Map<Node, number>();
  g.nodes.forEach((n, i) => position.has(n) || position.set(n, i));
  const ready = (v: Value | null, i: number): boolean => {
    const p = v?.producer ? position.get(v.producer) : undefined;
    return p === undefined || p < i;
  };
  for (let i = 0; i < g.nodes.length; i++) {
    const n = g.nodes[i]!;
    for (const v of n.inputs) if (!ready(v, i)) return false;
    if (mayCapture.has(n)) for (const v of subgraphCaptures(n)) if (!ready(v, i)) return false;
  }
  return true;
}

const int64s = (xs: readonly number[]): Tensor => Tensor.from('int64', [xs.length], xs);

function sameInts(t: Tensor | undefined, xs: readonly number[]): boolean {
  if (!t || t.size !== xs.length) return false;
  for (let i = 0; i < xs.length; i++) if (t.data[i] !== xs[i]) return false;
  return true;
}

function constantOf(v: Value | null | undefined): Tensor | undefined {
  try {
    return v?.constant?.load();
  } catch {
    return undefined;
  }
}

/**
 * The generic rewrite of shape-valued constant inputs: where a node's local output differs from
 * its global output, a constant that spells the global output shape (or split sizes) is replaced
 * by the local one. Non-constant shape inputs are left alone (they are computed on the device).
 */
function rewriteShapeConstants(low: DeviceLowering, global: Node, local: Node, untouched: (i: number) => boolean): void {
  if (global.domain !== '' || local.op !== global.op) return;
  const out = local.outputs[0];
  const gout = global.outputs[0];
  if (!out?.shape || !gout?.shape || !isStatic(out.shape)) return;
  const changed = global.outputs.some((o, k) => {
    const ls = local.outputs[k]?.shape;
    return !!o.shape && !!ls && o.shape.some((d, j) => d !== ls[j]);
  });
  if (!changed) return;
  const localOut = out.shape;
  const replaceShape = (i: number): void => {
    const v = global.inputs[i];
    if (!v?.constant || !untouched(i)) return;
    if (!sameInts(constantOf(v), localOut)) low.setConstantInput(local, i, int64s(localOut));
  };
  switch (global.op) {
    case 'Reshape':
    case 'Expand':
      replaceShape(1);
      break;
    case 'ConstantOfShape':
      replaceShape(0);
      break;
    case 'Resize':
      if (global.inputs[3]) replaceShape(3);
      break;
    case 'Split': {
      const x = global.inputs[0];
      const rank = x?.shape?.length;
      if (rank === undefined) return;
      let axis = global.attrs.int('axis', 0);
      if (axis < 0) axis += rank;
      const sizes = local.outputs.map((o) => (o.shape && typeof o.shape[axis] === 'number' ? (o.shape[axis] as number) : NaN));
      if (sizes.some((s) => Number.isNaN(s))) return;
      const given = global.inputs[1];
      if ((given && !given.constant) || !untouched(1)) return;
      if (given && sameInts(constantOf(given), sizes)) return;
      low.setConstantInput(local, 1, int64s(sizes));
      local.attrs.delete('num_outputs');
      break;
    }
    default:
  }
}

/** Attributes with subgraphs cloned (their references to outer values remapped to the device's). */
function cloneAttrs(attrs: Attrs, outer: ReadonlyMap<Value, Value>): Attrs {
  const out = attrs.clone();
  for (const [k, a] of attrs.entries()) {
    let c: Attr | undefined;
    if (a.kind === 'graph') c = { kind: 'graph', value: cloneSubgraph(a.value, outer) };
    else if (a.kind === 'graphs') c = { kind: 'graphs', value: a.value.map((g) => cloneSubgraph(g, outer)) };
    if (c) out.set(k, c);
  }
  return out;
}

/** A copy of a subgraph whose captured outer values are the device's (inner values keep their shapes). */
function cloneSubgraph(g: Graph, outer: ReadonlyMap<Value, Value>): Graph {
  const map = new Map<Value, Value>(outer);
  const copy = (v: Value): Value => {
    const c = new Value(v.name, v.dtype, v.shape?.slice());
    if (v.constant) c.constant = v.constant;
    if (v.layout) c.layout = v.layout;
    for (const [k, m] of v.meta) c.meta.set(k, m);
    map.set(v, c);
    return c;
  };
  const out = new Graph(g.name);
  out.opsets = { ...g.opsets };
  out.inputs = g.inputs.map(copy);
  out.initializers = g.initializers.map((v) => map.get(v) ?? copy(v));
  for (const n of g.nodes) {
    const inputs = n.inputs.map((v) => (v ? map.get(v) ?? v : null));
    const outputs = n.outputs.map(copy);
    const c = new Node(n.op, inputs, outputs, cloneAttrs(n.attrs, map), n.name, n.domain);
    for (const [k, m] of n.meta) c.meta.set(k, m);
    out.nodes.push(c);
  }
  out.outputs = g.outputs.map((v) => map.get(v) ?? v);
  return out;
}

// ---- comparing device programs ---------------------------------------------------------------

/** The device blocks of distributed constants (localConstant): loading one reads its global constant. */
const blocks = new WeakSet<LazyTensor>();

/** Whether a device constant is its device's block of a distributed global constant (a weight slice). */
export function isConstantBlock(t: LazyTensor): boolean {
  return blocks.has(t);
}

/** How sameLocalGraph compares what may differ between devices. */
export interface LocalGraphMatch {
  /** Two constants met at the same place (values of the same name, neither fed): whether they match. */
  constants(x: Value, cx: LazyTensor, cy: LazyTensor): boolean;
  /** Two collective nodes at the same place: whether they match beyond op, label, attributes and operands. */
  collectives(x: Node, y: Node): boolean;
  /** Names of the values fed as inputs: compared as values, their constant data never. */
  fed?: ReadonlySet<string>;
  /** Also compare the initializer lists, in order (every constant of the program, used or not). */
  initializers?: boolean;
}

const sameDims = (a: readonly unknown[] | undefined, b: readonly unknown[] | undefined): boolean => {
  const x = a ?? [];
  const y = b ?? [];
  if (x.length === y.length) {
    let i = 0;
    while (i < x.length && x[i] === y[i]) i++;
    if (i === x.length) return true;
  }
  return x.join(',') === y.join(','); // as printed: a missing shape is [], a dim 1 is the symbol '1'
};

/** Same dtype and shape (a constant's type). */
export const sameConstantType = (a: LazyTensor, b: LazyTensor): boolean => a.dtype === b.dtype && sameDims(a.shape, b.shape);

/** Same dtype, shape and data (numbers compared as Object.is: -0 and NaN exactly). */
export function sameTensorData(a: LazyTensor | Tensor, b: LazyTensor | Tensor): boolean {
  if (a === b) return true;
  if (a.dtype !== b.dtype || !sameDims(a.shape, b.shape)) return false;
  const x = a instanceof LazyTensor ? a.load() : a;
  const y = b instanceof LazyTensor ? b.load() : b;
  if (x === y) return true;
  if (x.strings || y.strings) return !!x.strings && !!y.strings && x.strings.length === y.strings.length && x.strings.every((s, i) => s === y.strings![i]);
  if (x.data.length !== y.data.length) return false;
  for (let i = 0; i < x.data.length; i++) if (!Object.is(x.data[i], y.data[i])) return false;
  return true;
}

/** Exact equality of two attribute values (tensors by data; subgraphs never equal). */
function sameAttr(x: Attr, y: Attr): boolean {
  if (x.kind !== y.kind) return false;
  switch (x.kind) {
    case 'graph':
    case 'graphs':
      return false;
    case 'tensor':
      return sameTensorData(x.value, (y as typeof x).value);
    case 'tensors': {
      const ys = (y as typeof x).value;
      return x.value.length === ys.length && x.value.every((t, i) => sameTensorData(t, ys[i]!));
    }
    case 'ints':
    case 'floats':
    case 'strings': {
      const ys = (y as typeof x).value as unknown[];
      return x.value.length === ys.length && (x.value as unknown[]).every((e, i) => Object.is(e, ys[i]));
    }
    default:
      return Object.is(x.value, (y as typeof x).value);
  }
}

/** Two attributes of the same name on nodes at the same place: equal, and no subgraph. */
const sameLocalAttr = (x: Attr, y: Attr): boolean => x.kind !== 'graph' && x.kind !== 'graphs' && (x === y || sameAttr(x, y));

/**
 * Whether two device graphs are the same program but for what `match` allows to differ. The
 * graphs are walked side by side, values matched by first sight (graph inputs, initializers when
 * asked, then nodes in order): values of the same name and type; nodes with the same op, domain,
 * label, attributes, inputs by position and outputs (names and types); constants as `match` says;
 * collectives as `match` says too; the same graph outputs. Subgraph attributes never match (unless
 * both nodes hold the very same attribute objects).
 */
export function sameLocalGraph(ga: Graph, gb: Graph, match: LocalGraphMatch): boolean {
  const fed = match.fed;
  const idsA = new Map<Value, number>();
  const idsB = new Map<Value, number>();
  /** Same reference: both seen, with the same id, or both first seen here and alike (name; constants as `match` says). */
  const sameRef = (x: Value | null | undefined, y: Value | null | undefined): boolean => {
    if (!x || !y) return !x && !y;
    const ix = idsA.get(x);
    const iy = idsB.get(y);
    if (ix !== undefined || iy !== undefined) return ix === iy;
    if (idsA.size !== idsB.size) return false; // first seen as different ids
    idsA.set(x, idsA.size);
    idsB.set(y, idsB.size);
    if (x.name !== y.name) return false;
    const cx = x.constant && !fed?.has(x.name) ? x.constant : undefined;
    const cy = y.constant && !fed?.has(y.name) ? y.constant : undefined;
    if (!cx || !cy) return !cx && !cy;
    return match.constants(x, cx, cy);
  };
  if (ga.inputs.length !== gb.inputs.length || ga.nodes.length !== gb.nodes.length || ga.outputs.length !== gb.outputs.length) return false;
  for (let i = 0; i < ga.inputs.length; i++) if (!sameRef(ga.inputs[i], gb.inputs[i])) return false;
  if (match.initializers) {
    if (ga.initializers.length !== gb.initializers.length) return false;
    for (let i = 0; i < ga.initializers.length; i++) if (!sameRef(ga.initializers[i], gb.initializers[i])) return false;
  }
  for (let i = 0; i < ga.nodes.length; i++) {
    const x = ga.nodes[i]!;
    const y = gb.nodes[i]!;
    if (x.domain !== y.domain || x.op !== y.op || x.inputs.length !== y.inputs.length || x.outputs.length !== y.outputs.length) return false;
    if (x.name !== y.name && x.label !== y.label) return false;
    for (let j = 0; j < x.inputs.length; j++) if (!sameRef(x.inputs[j], y.inputs[j])) return false;
    if (!x.attrs.sameAs(y.attrs) && !x.attrs.matches(y.attrs, sameLocalAttr)) return false;
    if (x.domain === COLLECTIVE_DOMAIN && !match.collectives(x, y)) return false;
    for (let j = 0; j < x.outputs.length; j++) {
      const ox = x.outputs[j]!;
      const oy = y.outputs[j]!;
      idsA.set(ox, idsA.size);
      idsB.set(oy, idsB.size);
      if (ox.name !== oy.name || (ox.dtype ?? '?') !== (oy.dtype ?? '?') || !sameDims(ox.shape, oy.shape)) return false;
    }
  }
  for (let i = 0; i < ga.outputs.length; i++) if (!sameRef(ga.outputs[i], gb.outputs[i])) return false;
  return true;
}

/**
 * Device twins. Devices whose lowered programs are the same but for the data of constants that no
 * cost figure reads (every tp rank of a transformer with even splits: their weight blocks, the
 * vocabulary offset of a vocab-parallel embedding) have the same schedule, estimates and
 * schedule.json steps: those are computed for the first such device and reused for the others
 * (passes/schedule, bundle/report.ts, bundle/schedule.ts, report.html's timelines; the wgsl
 * recording too where it read none of the differing constants). Twins are found once, right after
 * lowering (sameLocalGraph): the same nodes, attributes (collective groups and peers included),
 * value names and types, graph inputs, outputs and initializers; constants of the same type, whose
 * data may differ only where no op's flops (OpDef.flops, which the estimates and the scheduler's
 * durations count) reads them — weight blocks are never loaded to compare (that would read the
 * weights) and count as differing; collectives over the same resolved group, holding both devices
 * or neither. A twin holds while neither graph's node list is replaced (device graphs are not
 * changed after lowering but for their order); the scheduling pass, which orders twins alike,
 * renews it.
 */
interface TwinRecord {
  of: Graph;
  nodes: readonly Node[];
  ofNodes: readonly Node[];
  /** Names of the constants whose data may differ from the twin's. */
  differs: ReadonlySet<string>;
}
const twins = new WeakMap<Graph, TwinRecord>();

const currentTwin = (graph: Graph): TwinRecord | undefined => {
  const t = twins.get(graph);
  return t && t.nodes === graph.nodes && t.ofNodes === t.of.nodes ? t : undefined;
};

/** The earlier device graph `graph` is a twin of (see above), if any. */
export function deviceTwin(graph: Graph): Graph | undefined {
  return currentTwin(graph)?.of;
}

/** Names of the constants of a twin whose data may differ from its twin's (empty for a graph without a twin). */
export function twinDifferences(graph: Graph): ReadonlySet<string> {
  return currentTwin(graph)?.differs ?? new Set();
}

/** Records that `graph` is still a twin of `of` after both were put in the same order by position (the scheduling pass). */
export function renewTwin(graph: Graph, of: Graph): void {
  const t = twins.get(graph);
  if (t?.of === of) twins.set(graph, { ...t, nodes: graph.nodes, ofNodes: of.nodes });
}

/** Finds each device's twin among the earlier devices (lowerPlan). */
function findTwins(programs: readonly DeviceProgram[], mesh: DeviceMesh, registry: OpRegistry): void {
  // Candidates must agree on their sizes and collective groups first (a cheap key): a large mesh
  // with many distinct programs then makes few side-by-side comparisons.
  const firsts = new Map<string, DeviceProgram[]>();
  const reads = new Map<Node, boolean[]>(); // per node of a first device: whether its flops read each input
  for (const p of programs) {
    const g = p.graph;
    const groups: string[] = [];
    for (const n of g.nodes) if (n.domain === COLLECTIVE_DOMAIN) groups.push(n.attrs.maybeInts(GROUP_ATTR)?.join(',') ?? '');
    const key = `${g.inputs.length}/${g.initializers.length}/${g.nodes.length}/${g.outputs.length}/${groups.join(';')}`;
    const list = firsts.get(key);
    let found = false;
    for (const q of list ?? []) {
      const differs = twinDifference(q, p, mesh, registry, reads);
      if (!differs) continue;
      twins.set(g, { of: q.graph, nodes: g.nodes, ofNodes: q.graph.nodes, differs });
      found = true;
      break;
    }
    if (found) continue;
    if (list) list.push(p);
    else firsts.set(key, [p]);
  }
}

/** The names of the constants whose data may differ when `b` is a twin of `a`; undefined when it is not. */
function twinDifference(a: DeviceProgram, b: DeviceProgram, mesh: DeviceMesh, registry: OpRegistry, reads: Map<Node, boolean[]>): Set<string> | undefined {
  const differs = new Set<Value>();
  const same = sameLocalGraph(a.graph, b.graph, {
    initializers: true,
    constants: (x, cx, cy) => {
      if (!sameConstantType(cx, cy)) return false;
      if (isConstantBlock(cx) || isConstantBlock(cy) || !sameTensorData(cx, cy)) differs.add(x);
      return true;
    },
    collectives: (x, y) => {
      const axis = x.attrs.get('axis');
      const group = (n: Node, d: number): number[] | undefined =>
        n.attrs.maybeInts(GROUP_ATTR) ?? (axis?.kind === 'string' && mesh.hasAxis(axis.value) ? mesh.group(d, axis.value) : undefined);
      const gx = group(x, a.device);
      const gy = group(y, b.device);
      if (!gx || !gy) return !gx && !gy;
      return gx.length === gy.length && gx.every((r, i) => r === gy[i]) && gx.includes(a.device) === gy.includes(b.device);
    },
  });
  if (!same) return undefined;
  const read = (n: Node, j: number): boolean => {
    let r = reads.get(n);
    if (!r) reads.set(n, (r = []));
    return (r[j] ??= flopsRead(n, j, registry));
  };
  if (differs.size) for (const n of a.graph.nodes) if (n.inputs.some((v, j) => v && differs.has(v) && read(n, j))) return undefined;
  return new Set([...differs].map((v) => v.name));
}

/**
 * Whether the op's flops (OpDef.flops) read the data of input j of `node`. Constants are handed to
 * it as the estimates do (bundle/estimate.ts nodeFlops: up to 4096 elements, larger ones not
 * loaded), but input j's never: asking for it is reading it.
 */
function flopsRead(node: Node, j: number, registry: OpRegistry): boolean {
  const def = registry.get(node.op, node.domain);
  if (!def?.flops) return false;
  let read = false;
  const ctx: InferContext = {
    node,
    attrs: node.attrs,
    inputs: node.inputs.map((v) => (v?.dtype ? { dtype: v.dtype, shape: v.shape } : undefined)),
    constant: (i) => {
      if (i === j) read = true;
      const c = node.inputs[i]?.constant;
      return i !== j && c && c.size <= 4096 ? c.load() : undefined;
    },
  };
  try {
    def.flops(ctx);
  } catch {
    // a flops row that fails counts 0 flops (nodeFlops): it read what it asked for before failing
  }
  return read;
}
