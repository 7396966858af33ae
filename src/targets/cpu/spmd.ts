/**
 * The simulated multi-device CPU runtime: runs every device's local graph (from lowerPlan) with
 * the reference op evaluations and real collective semantics (collectives.ts).
 *
 * Execution: each device runs its program in order until it reaches a collective; a collective
 * runs once every member of its group (node attribute `_group`, else the group along its `axis`)
 * waits at the same collective (same node label), and then every member goes on. Send deposits a
 * tensor for its peer and goes on; Recv waits for it. When no device can move, the run fails with
 * a UserError naming each waiting device, its collective and the member that does not come
 * (finished, or waiting elsewhere). A device whose op fails stops the run, naming the device and
 * node. Tensors are freed after their last use on each device.
 *
 * Inputs are GLOBAL tensors: each device gets its block per the input's layout in the plan.
 * Outputs are assembled back into global tensors per the output's layout (assembleTensor); an
 * output held by some devices only (a pipeline stage's) is assembled from those (holdersOf).
 */
import { UserError } from '../../ir/errors.js';
import type { Graph, Node, Value } from '../../ir/graph.js';
import { GROUP_ATTR } from '../../ir/ops/collective.js';
import type { OpRegistry } from '../../ir/registry.js';
import { isStatic } from '../../ir/shape.js';
import type { Tensor } from '../../ir/tensor.js';
import { PEER_ATTR, type DeviceProgram } from '../../passes/sharding/lower.js';
import type { DeviceMesh } from '../../passes/sharding/mesh.js';
import { type ShardPlan, isCollective } from '../../passes/sharding/plan.js';
import { assembleTensor, shardTensor } from '../../passes/sharding/shards.js';
import { runCollective } from './collectives.js';

export interface SpmdOptions {
  registry: OpRegistry;
  /** The plan the programs were lowered from (layouts of the global inputs and outputs). */
  plan: ShardPlan;
  /**
   * Per device (by rank), inputs given as that device's OWN block, used as they are instead of a
   * block of the global feed: e.g. a decoder step's past KV cache, fed back from the previous
   * step's per-device present outputs without assembling it. Shapes are checked against the
   * device's local input shape.
   */
  localFeeds?: readonly ReadonlyMap<string, Tensor>[];
}

export interface SpmdResult {
  /** Global outputs, assembled from the devices' outputs per their layouts. */
  outputs: Map<string, Tensor>;
  /** Each device's local outputs, by name. */
  perDevice: Map<string, Tensor>[];
}

interface DeviceState {
  program: DeviceProgram;
  graph: Graph;
  env: Map<Value, Tensor>;
  lastUse: Map<Value, number>;
  pinned: Set<Value>;
  pc: number;
}

const q = (s: string): string => JSON.stringify(s);

function describe(n: Node): string {
  const axis = n.attrs.has('axis') ? ` over ${n.attrs.string('axis')}` : '';
  return `${n.op}${axis} ${q(n.label)}`;
}

export function runSpmd(programs: readonly DeviceProgram[], mesh: DeviceMesh, feeds: ReadonlyMap<string, Tensor>, opts: SpmdOptions): SpmdResult {
  const { plan, registry } = opts;
  if (programs.length !== mesh.deviceCount)
    throw new UserError(`${programs.length} device programs for a mesh of ${mesh.deviceCount} devices (${mesh})`);
  const globalInputs = new Map(plan.graph.inputs.map((v) => [v.name, v]));

  const states: DeviceState[] = programs.map((program, d) => {
    if (program.device !== d) throw new UserError(`device program ${d} is for device ${program.device}`);
    const graph = program.graph;
    const env = new Map<Value, Tensor>();
    for (const v of graph.inputs) {
      const own = opts.localFeeds?.[d]?.get(v.name);
      if (own) {
        if (v.shape && isStatic(v.shape) && (v.shape.length !== own.rank || v.shape.some((n, i) => n !== own.shape[i])))
          throw new UserError(`device ${d}: local input has shape [${own.shape.join(',')}] but the device's block is [${v.shape.join(',')}]`, { tensor: v.name });
        env.set(v, own);
        continue;
      }
      const t = scatterFeed(v, feeds, globalInputs, mesh, d);
      if (t) env.set(v, t);
    }
    const lastUse = new Map<Value, number>();
    graph.nodes.forEach((n, i) => n.inputs.forEach((v) => v && lastUse.set(v, i)));
    return { program, graph, env, lastUse, pinned: new Set(graph.outputs), pc: 0 };
  });

  const read = (s: DeviceState, v: Value): Tensor => {
    const t = s.env.get(v);
    if (t) return t;
    if (v.constant) return v.constant.load();
    throw new UserError(`device ${s.program.device}: value is used before it is defined`, { tensor: v.name });
  };
  const finishNode = (s: DeviceState, node: Node, outputs: readonly (Tensor | undefined)[]): void => {
    node.outputs.forEach((v, k) => {
      const t = outputs[k];
      if (t && v.name !== '') s.env.set(v, t);
    });
    for (const v of node.inputs) if (v && s.lastUse.get(v) === s.pc && !s.pinned.has(v) && !v.constant) s.env.delete(v);
    s.pc++;
  };
  const waitingAt = (s: DeviceState): Node | undefined => s.graph.nodes[s.pc];
  const mailbox = new Map<string, Tensor>();
  const mailKey = (from: number, to: number, tag: number): string => `${from}>${to}#${tag}`;

  /** Runs a device until it waits at a collective it cannot do alone, or ends. */
  const advance = (s: DeviceState): boolean => {
    let moved = false;
    for (;;) {
      const node = waitingAt(s);
      if (!node) return moved;
      const d = s.program.device;
      if (isCollective(node)) {
        if (node.op === 'Send') {
          const peer = node.attrs.maybeInt(PEER_ATTR);
          if (peer === undefined) throw new UserError(`device ${d}: Send has no peer (lower it with a mesh that has its stage axis)`, { node: node.label });
          const x = read(s, node.inputs[0]!);
          mailbox.set(mailKey(d, peer, node.attrs.int('tag', 0)), x);
          finishNode(s, node, [x]);
          moved = true;
          continue;
        }
        if (node.op === 'Recv') {
          const peer = node.attrs.maybeInt(PEER_ATTR);
          if (peer === undefined) throw new UserError(`device ${d}: Recv has no peer (lower it with a mesh that has its stage axis)`, { node: node.label });
          const key = mailKey(peer, d, node.attrs.int('tag', 0));
          const t = mailbox.get(key);
          if (!t) return moved;
          mailbox.delete(key);
          finishNode(s, node, [t]);
          moved = true;
          continue;
        }
        return moved;
      }
      const def = registry.forNode(node);
      const inputs = node.inputs.map((v) => (v ? read(s, v) : undefined));
      let outputs: Tensor[];
      try {
        outputs = def.evaluate({ node, attrs: node.attrs, inputs });
      } catch (e) {
        if (e instanceof UserError) {
          const others = waitingSummary(states.filter((o) => o !== s));
          throw new UserError(`device ${d} failed: ${e.reason}${others ? ` (${others})` : ''}`, { ...e.location, node: node.label });
        }
        throw e;
      }
      finishNode(s, node, outputs);
      moved = true;
    }
  };

  const groupOf = (s: DeviceState, node: Node): number[] => {
    const g = node.attrs.maybeInts(GROUP_ATTR);
    if (g) return g;
    if (node.attrs.has('axis')) return mesh.group(s.program.device, node.attrs.string('axis'));
    throw new UserError(`device ${s.program.device}: collective has neither ${GROUP_ATTR} nor axis`, { node: node.label });
  };

  /** Runs the collective device s waits at when its whole group is there; false otherwise. */
  const tryCollective = (s: DeviceState): boolean => {
    const node = waitingAt(s);
    if (!node || !isCollective(node) || node.op === 'Recv') return false;
    const group = groupOf(s, node);
    const members = group.map((r) => states[r]);
    for (const m of members) {
      const at = m && waitingAt(m);
      if (!at || at.label !== node.label || at.op !== node.op) return false;
    }
    const ms = members as DeviceState[];
    const inputs = ms.map((m) => read(m, waitingAt(m)!.inputs[0]!));
    let outputs: Tensor[];
    try {
      outputs = runCollective(node.op, node.attrs, inputs);
    } catch (e) {
      if (e instanceof UserError)
        throw new UserError(`collective ${describe(node)} over devices ${group.join(',')} failed: ${e.reason}`, { node: node.label });
      throw e;
    }
    ms.forEach((m, k) => {
      const n = waitingAt(m)!;
      const want = n.outputs[0]?.shape;
      const got = outputs[k]!;
      if (want && isStatic(want) && (want.length !== got.rank || want.some((x, i) => x !== got.shape[i])))
        throw new UserError(
          `collective ${describe(n)} gives device ${m.program.device} shape [${got.shape.join(',')}] but its program expects [${want.join(',')}]`,
          { node: n.label },
        );
      finishNode(m, n, [got]);
    });
    return true;
  };

  for (;;) {
    let progress = false;
    for (const s of states) if (advance(s)) progress = true;
    for (const s of states) if (tryCollective(s)) progress = true;
    if (states.every((s) => !waitingAt(s))) break;
    if (!progress) throw new UserError(`the devices are stuck: ${stuckReport(states, groupOf)}`);
  }

  const perDevice = states.map((s) => {
    const m = new Map<string, Tensor>();
    for (const o of s.graph.outputs) {
      const t = s.env.get(o) ?? (o.constant ? o.constant.load() : undefined);
      if (!t) throw new UserError(`device ${s.program.device}: graph output was not computed`, { tensor: o.name });
      m.set(o.name, t);
    }
    return m;
  });
  return { outputs: assembleOutputs(plan, perDevice, mesh), perDevice };
}

/** Every device's local feeds: each program input scattered from the GLOBAL feeds by the plan's layouts (scatterFeed). */
export function scatterFeeds(
  programs: readonly { graph: { inputs: readonly Value[] } }[],
  plan: { graph: { inputs: readonly Value[] } },
  mesh: DeviceMesh,
  feeds: ReadonlyMap<string, Tensor>,
): Map<string, Tensor>[] {
  const globalInputs = new Map(plan.graph.inputs.map((v) => [v.name, v]));
  return programs.map((p, d) => {
    const m = new Map<string, Tensor>();
    for (const v of p.graph.inputs) {
      const t = scatterFeed(v, feeds, globalInputs, mesh, d);
      if (t) m.set(v.name, t);
    }
    return m;
  });
}

/**
 * Device `d`'s block of the global feed for its program input `v` (checked against the plan's
 * global shape); undefined for a missing input that is a constant. Shared with the WebGPU runtime.
 */
export function scatterFeed(
  v: Value,
  feeds: ReadonlyMap<string, Tensor>,
  globalInputs: ReadonlyMap<string, Value>,
  mesh: DeviceMesh,
  d: number,
): Tensor | undefined {
  const t = feeds.get(v.name);
  if (!t) {
    if (v.constant) return undefined;
    throw new UserError(`missing graph input`, { tensor: v.name });
  }
  const gv = globalInputs.get(v.name);
  if (gv?.shape && isStatic(gv.shape) && (gv.shape.length !== t.rank || gv.shape.some((n, i) => n !== t.shape[i])))
    throw new UserError(`input has shape [${t.shape.join(',')}] but the plan was made for [${gv.shape.join(',')}]`, { tensor: v.name });
  return shardTensor(t, gv?.layout, mesh, d);
}

/** The global outputs of the plan, assembled from every device's local outputs. Shared with the WebGPU runtime. */
export function assembleOutputs(plan: ShardPlan, perDevice: readonly Map<string, Tensor>[], mesh: DeviceMesh): Map<string, Tensor> {
  const outputs = new Map<string, Tensor>();
  for (const gv of plan.graph.outputs) {
    const locals = holdersOf(perDevice, gv, mesh);
    if (!gv.shape || !isStatic(gv.shape)) throw new UserError(`output has no static global shape to assemble`, { tensor: gv.name });
    outputs.set(gv.name, assembleTensor(locals, gv.shape, gv.layout, mesh));
  }
  return outputs;
}

/**
 * Every device's local tensor of a global output. A device whose program does not produce it (a
 * pipeline stage other than the one that computes it) takes the tensor of the first device that
 * has it with the same coordinates on every axis where the output is not replicated.
 */
function holdersOf(perDevice: readonly Map<string, Tensor>[], gv: Value, mesh: DeviceMesh): Tensor[] {
  const locals = perDevice.map((m) => m.get(gv.name));
  if (locals.every((t) => t)) return locals as Tensor[];
  const split = mesh.axes.filter((a) => (gv.layout?.get(a.name)?.kind ?? 'replicate') !== 'replicate').map((a) => a.name);
  return locals.map((t, d) => {
    if (t) return t;
    const e = locals.findIndex((u, r) => u && split.every((a) => mesh.coord(r, a) === mesh.coord(d, a)));
    if (e < 0) throw new UserError(`no device computes graph output`, { tensor: gv.name });
    return locals[e]!;
  });
}

function waitingSummary(states: readonly DeviceState[]): string {
  const parts: string[] = [];
  for (const s of states) {
    const n = s.graph.nodes[s.pc];
    if (n && isCollective(n)) parts.push(`device ${s.program.device} waits at collective ${describe(n)}`);
  }
  return parts.join('; ');
}

function stuckReport(states: readonly DeviceState[], groupOf: (s: DeviceState, n: Node) => number[]): string {
  const parts: string[] = [];
  for (const s of states) {
    const n = s.graph.nodes[s.pc];
    if (!n) continue;
    const d = s.program.device;
    if (n.op === 'Recv') {
      parts.push(`device ${d} waits at Recv ${q(n.label)} for a message that is never sent`);
      continue;
    }
    const missing: string[] = [];
    for (const r of groupOf(s, n)) {
      const m = states[r];
      const at = m && m.graph.nodes[m.pc];
      if (!m) missing.push(`device ${r} does not exist`);
      else if (!at) missing.push(`device ${r} never reaches it (its program ended)`);
      else if (at.label !== n.label || at.op !== n.op) missing.push(`device ${r} waits at ${isCollective(at) ? 'collective ' : ''}${describe(at)} instead`);
    }
    parts.push(`device ${d} waits at collective ${describe(n)}: ${missing.join(', ') || 'its group is incomplete'}`);
  }
  return parts.join('; ');
}
