/**
 * Recording a device graph as a HostProgram (program.ts): the same walk as the interpretive
 * runner (run-graph.ts `planNode` decides each node), but instead of executing, every decision is
 * written down once, with the concrete input shapes of the run:
 *
 * - nodes whose inputs all live on the host (shape math, constant subgraphs) are evaluated here;
 * - shape-only lowerings (Shape, Size) are evaluated on placeholders;
 * - views alias their input's HostBuffer (same id: a view is not a buffer);
 * - kernel launches become DispatchSteps with fixed params, bound to HostBuffer ids; a host value a
 *   kernel reads (weight, folded constant, Resize lookup table) becomes a `constant` buffer;
 * - collective nodes become CollectiveSteps with their group resolved (node `_group`, else the
 *   mesh group along `axis`), like schedule.json;
 * - kernels are deduplicated by their rendered WGSL (the kernel name aside).
 *
 * A node whose lowering needs a value computed on the device (a data-dependent shape) cannot be
 * compiled ahead of time: UserError naming it. The result has no memory plan yet (every buffer in
 * its own slot); memory.ts `planMemory` assigns shared slots.
 */
import { plainAttrValue } from '../../ir/attrs.js';
import type { DType } from '../../ir/dtype.js';
import { UserError } from '../../ir/errors.js';
import { COLLECTIVE_DOMAIN, type Graph, type Node, type Value } from '../../ir/graph.js';
import { GROUP_ATTR } from '../../ir/ops/collective.js';
import type { OpRegistry } from '../../ir/registry.js';
import { numel } from '../../ir/shape.js';
import type { Tensor } from '../../ir/tensor.js';
import { PEER_ATTR } from '../../passes/sharding/lower.js';
import type { DeviceMesh } from '../../passes/sharding/mesh.js';
import { block, runCollective } from '../../targets/cpu/collectives.js';
import { toDeviceArray } from '../device-data.js';
import type { ScalarType } from '../expr.js';
import type { Kernel } from '../kernel.js';
import { type LoweringTable, createLoweringTable } from '../lower/index.js';
import { type PlanInput, checkDeviceDtype, inferNodeOutputs, loweringRow, planNode } from '../run-graph.js';
import { renderKernel } from '../wgsl/kernel.js';
import { type CollectiveStep, HOST_PROGRAM_FORMAT, type HostBuffer, type HostProgram, type HostStep, type HostTensorRef } from './program.js';


/** A graph whose shapes depend on values computed on the device: it runs only interpretively (codegen/run-graph.ts). */

/** Distinct kernels of a program, deduplicated by `key` (the rendered code, name aside), in first-use order. */
export class KernelTable {
  readonly kernels: Kernel[] = [];
  private readonly ids = new Map<string, number>();

  constructor(private readonly key: (k: Kernel) => string) {}

  index(k: Kernel): number {
    const key = this.key(k);
    let i = this.ids.get(key);
    if (i === undefined) {
      i = this.kernels.length;
      this.kernels.push(k);
      this.ids.set(key, i);
    }
    return i;
  }
}

export class DataDependentError extends UserError {}

export interface RecordOptions {
  registry: OpRegistry;
  table?: LoweringTable;
  /** The mesh rank this program runs on (default 0). */
  device?: number;
  /** Resolves collective groups given by `axis` (not needed when nodes carry `_group`). */
  mesh?: DeviceMesh;
  /**
   * For sharing one recording between devices (src/bundle/wgsl.ts): when given, every graph constant
   * the recording uses is handed to the lowerings behind a watch, and this map is filled with
   * whether its data was read (a host evaluation, a lowering that looks at values, a view) or only
   * bound as a constant buffer. Recording is deterministic given the graph and the data it read, so
   * a device whose graph differs only in unread constants records the same program with its own
   * constants in those buffers. The returned program holds the constants themselves, not watches.
   */
  constantUse?: Map<Value, boolean>;
}

/** A value during recording: its type, and where it lives (host tensor and/or device buffer). */
interface Rec {
  dtype: DType;
  shape: number[];
  host?: Tensor;
  buf?: number;
}

const q = (s: string): string => JSON.stringify(s);

export function recordHostProgram(
  graph: Graph,
  inputs: readonly { name: string; dtype: DType; shape: number[] }[],
  opts: RecordOptions,
): HostProgram {
  const table = opts.table ?? createLoweringTable();
  const device = opts.device ?? 0;
  const buffers: HostBuffer[] = [];
  const steps: HostStep[] = [];
  const kernelTable = new KernelTable((k) => renderKernel({ ...k, name: '' }));
  const kernels = kernelTable.kernels;
  const env = new Map<Value, Rec>();
  const watches = new Map<Tensor, Tensor>();
  const use = opts.constantUse;
  /** A graph constant's tensor, behind a watch when `constantUse` is given (see RecordOptions). */
  const constantOf = (v: Value): Tensor => {
    const t = v.constant!.load();
    if (!use) return t;
    if (!use.has(v)) use.set(v, false);
    const w = Object.create(t) as Tensor;
    const read = (): void => void use.set(v, true);
    Object.defineProperty(w, 'data', { get: () => (read(), t.data) });
    Object.defineProperty(w, 'strings', { get: () => (read(), t.strings) });
    watches.set(w, t);
    return w;
  };
  const unwatch = (t: Tensor | undefined): Tensor | undefined => (t && watches.get(t)) ?? t;

  const newBuffer = (b: Omit<HostBuffer, 'id' | 'slot'>): number => {
    const id = buffers.length;
    buffers.push({ id, ...b, slot: id });
    return id;
  };
  /** The device buffer of a value, uploading a host value once as a constant. */
  const bufferOf = (r: Rec, name: string, node?: string): number => {
    if (r.buf === undefined) {
      const type = storageType(r.dtype, { node, tensor: name });
      if (r.dtype === 'int64') toDeviceArray(unwatch(r.host)!, name); // values must fit i32: checked now, not at load
      r.buf = newBuffer({ type, length: Math.max(1, numel(r.shape)), role: 'constant', value: name, constant: r.host });
    }
    return r.buf;
  };
  const kernelIndex = (k: Kernel): number => kernelTable.index(k);

  // Inputs: fed ones get an input buffer; the others must be constants.
  const fed = new Map(inputs.map((i) => [i.name, i]));
  const programInputs: HostTensorRef[] = [];
  for (const v of graph.inputs) {
    const f = fed.get(v.name);
    if (f) {
      const buf = newBuffer({ type: storageType(f.dtype, { tensor: v.name }), length: Math.max(1, numel(f.shape)), role: 'input', value: v.name });
      env.set(v, { dtype: f.dtype, shape: f.shape.slice(), buf });
      programInputs.push({ name: v.name, dtype: f.dtype, shape: f.shape.slice(), buffer: buf });
    } else if (v.constant) {
      const t = constantOf(v);
      env.set(v, { dtype: t.dtype, shape: [...t.shape], host: t });
    } else throw new UserError(`missing graph input (no shape given to compile it with)`, { tensor: v.name });
  }
  for (const name of fed.keys())
    if (!graph.inputs.some((v) => v.name === name)) throw new UserError(`not an input of the device graph ${q(graph.name)}`, { tensor: name });

  const recOf = (v: Value): Rec => {
    let r = env.get(v);
    if (!r && v.constant) {
      const t = constantOf(v);
      r = { dtype: t.dtype, shape: [...t.shape], host: t };
      env.set(v, r);
    }
    if (!r) throw new UserError(`value is used before it is defined`, { tensor: v.name });
    return r;
  };
  const setHostOutputs = (node: Node, ts: readonly (Tensor | undefined)[]): void =>
    node.outputs.forEach((v, k) => {
      const t = ts[k];
      if (t && v.name !== '') env.set(v, { dtype: t.dtype, shape: [...t.shape], host: t });
    });

  for (const node of graph.nodes) {
    const recs = node.inputs.map((v) => (v ? recOf(v) : undefined));
    if (node.domain === COLLECTIVE_DOMAIN) {
      recordCollective(node, recs);
      continue;
    }
    const row = loweringRow(node, table);
    for (const k of row.hostInputs ?? [])
      if (recs[k] && !recs[k]!.host)
        throw new DataDependentError(
          `data-dependent ${node.op}: its input ${k} (${q(node.inputs[k]!.name)}) is computed on the device but the lowering needs its value on the host, so the node cannot be compiled ahead of time`,
          { node: node.label },
        );
    const plan = planNode(node, table, opts.registry, recs.map((r): PlanInput | undefined => (r ? { dtype: r.dtype, shape: r.shape, host: r.host } : undefined)));
    if (plan.kind === 'host') {
      setHostOutputs(node, plan.outputs);
      continue;
    }
    if (plan.kind === 'view') {
      const src = recs[plan.input]!;
      const buf = bufferOf(src, node.inputs[plan.input]!.name, node.label);
      const v = node.outputs[plan.output]!;
      env.set(v, { dtype: plan.type.dtype, shape: plan.type.shape, buf, host: src.host?.reshape(plan.type.shape) });
      continue;
    }
    // Kernels: fresh output buffers; inputs and lookup tables bound by id.
    const names: Record<string, number> = {};
    plan.outputs.forEach((o, k) => {
      const v = node.outputs[k]!;
      const buf = newBuffer({ type: storageType(o.dtype, { node: node.label }), length: Math.max(1, numel(o.shape)), role: 'temp', value: v.name });
      names[`y${k}`] = buf;
      if (v.name !== '') env.set(v, { dtype: o.dtype, shape: o.shape, buf });
    });
    for (const l of plan.launches) {
      const bindings: Record<string, number> = {};
      for (const b of [...l.kernel.inputs, ...l.kernel.outputs]) {
        const t = l.constants?.[b.name];
        if (t) {
          bindings[b.name] = bufferOf({ dtype: t.dtype, shape: [...t.shape], host: t }, '', node.label);
          continue;
        }
        const name = l.bind?.[b.name] ?? b.name;
        if (!(name in names) && /^x\d+$/.test(name)) {
          const k = Number(name.slice(1));
          names[name] = bufferOf(recs[k]!, node.inputs[k]!.name, node.label);
        }
        const id = names[name];
        if (id === undefined) throw new Error(`kernel ${l.kernel.name} binds unknown buffer ${name}`);
        bindings[b.name] = id;
      }
      steps.push({ kind: 'dispatch', node: node.label, op: node.op, kernel: kernelIndex(l.kernel), params: { ...l.params }, bindings });
    }
  }

  const outputs: HostTensorRef[] = graph.outputs.map((o) => {
    const r = recOf(o);
    return r.buf !== undefined
      ? { name: o.name, dtype: r.dtype, shape: r.shape.slice(), buffer: r.buf }
      : { name: o.name, dtype: r.dtype, shape: r.shape.slice(), host: unwatch(r.host) };
  });
  if (watches.size) for (const b of buffers) if (b.constant) b.constant = unwatch(b.constant);
  return { format: HOST_PROGRAM_FORMAT, device, kernels, buffers, slots: buffers.map((b) => ({ bytes: b.length * 4 })), inputs: programInputs, outputs, steps };

  function recordCollective(node: Node, recs: (Rec | undefined)[]): void {
    const x = recs[0];
    const isP2p = node.op === 'Send' || node.op === 'Recv';
    const group = isP2p ? p2pGroup(node) : collectiveGroup(node, device, opts.mesh);
    const index = group.indexOf(device);
    if (!isP2p && index < 0)
      throw new UserError(`device ${device} is not in the group ${group.join(',')} of its collective ${node.op}`, { node: node.label });
    // A host input that needs no other device: computed here.
    if (x?.host && !isP2p) {
      let out: Tensor | undefined;
      if (node.op === 'LocalShard') out = block(x.host, node.attrs.int('dim'), group.length, index, node.attrs.int('unit', 1));
      else if (node.op === 'LocalPartial' || group.length === 1) {
        const all = new Array<Tensor>(group.length).fill(x.host);
        out = runCollective(node.op, node.attrs, all)[index];
      }
      if (out) {
        setHostOutputs(node, [out]);
        return;
      }
    }
    const [type] = inferNodeOutputs(node, opts.registry, recs.map((r) => (r ? { dtype: r.dtype, shape: r.shape, host: r.host } : undefined)));
    const o = type!;
    const input = x ? bufferOf(x, node.inputs[0]!.name, node.label) : undefined;
    const v = node.outputs[0]!;
    // Send hands its input on unchanged: its output is the input's buffer.
    const output =
      node.op === 'Send' && input !== undefined
        ? input
        : newBuffer({ type: storageType(o.dtype, { node: node.label }), length: Math.max(1, numel(o.shape)), role: 'temp', value: v.name });
    const attributes: CollectiveStep['attributes'] = {};
    for (const [k, a] of node.attrs.entries()) {
      const p = plainAttrValue(a);
      if (p !== undefined && k !== 'axis' && k !== GROUP_ATTR) attributes[k] = p;
    }
    const step: CollectiveStep = { kind: 'collective', node: node.label, op: node.op, group, attributes, output, dtype: o.dtype, outputShape: o.shape.slice() };
    if (node.attrs.has('axis')) step.axis = node.attrs.string('axis');
    if (x && input !== undefined) {
      step.input = input;
      step.inputShape = x.shape.slice();
    }
    steps.push(step);
    if (v.name !== '') env.set(v, { dtype: o.dtype, shape: o.shape.slice(), buf: output, host: node.op === 'Send' ? x?.host : undefined });
  }

  function p2pGroup(node: Node): number[] {
    const peer = node.attrs.maybeInt(PEER_ATTR);
    if (peer === undefined) throw new UserError(`device ${device}: ${node.op} has no peer (lower it with a mesh that has its stage axis)`, { node: node.label });
    return node.op === 'Send' ? [device, peer] : [peer, device];
  }
}

/** The ranks of a collective's group as seen from `device` (node `_group`, else the mesh group). */
export function collectiveGroup(node: Node, device: number, mesh?: DeviceMesh): number[] {
  const g = node.attrs.maybeInts(GROUP_ATTR);
  if (g) return g.slice();
  if (node.attrs.has('axis')) {
    if (!mesh) throw new UserError(`device ${device}: collective over axis ${node.attrs.string('axis')} needs the mesh to compile`, { node: node.label });
    return mesh.group(device, node.attrs.string('axis'));
  }
  throw new UserError(`device ${device}: collective has neither ${GROUP_ATTR} nor axis`, { node: node.label });
}

/** Element type of a buffer holding `dtype` on the device (bool → u32 words). */
export function storageType(dtype: DType, where: { node?: string; tensor?: string }): ScalarType {
  const t = checkDeviceDtype(dtype, where);
  return t === 'bool' ? 'u32' : t;
}

