/**
 * Runs an IR graph node by node on a kernel backend (the CPU executor of the kernel IR, or a
 * WebGPU device): each node is lowered with its concrete input shapes to launches, which the
 * backend dispatches in order. Shape math stays on the host: constants live on the host and are
 * uploaded once, on first use by a kernel; inputs a lowering reads on the host (Reshape's shape,
 * Slice's starts) are downloaded when they were computed on the device; nodes whose inputs all
 * live on the host are evaluated there by the op's reference (constant folding at run time).
 *
 * Device storage: float32 → f32, int32 → i32, int64 → i32 (values checked to fit), bool → u32.
 */
import type { DType } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import { isStatic, numel } from '../ir/shape.js';
import { Tensor } from '../ir/tensor.js';
import type { ScalarType } from './expr.js';
import { deviceType } from './index-map.js';
import type { Launch } from './kernel.js';
import { type LaunchSpec, type LowerContext, type LowerRow, type LoweringTable, createLoweringTable } from './lower/index.js';

/** What a runtime provides to run kernels. Buffers are opaque to the driver. */
export interface KernelBackend<B> {
  /** Device copy of a host tensor (narrowing int64 to i32, bool to u32). */
  upload(t: Tensor): B;
  /** A zeroed buffer of `n` elements of `type` (at least one element is allocated). */
  alloc(type: ScalarType, n: number): B;
  /** Dispatches one launch; `bindings` maps each kernel buffer name to a buffer. */
  dispatch(launch: Launch, bindings: Record<string, B>): void | Promise<void>;
  /** Host copy of a buffer holding a tensor of `dtype` and `shape`. */
  download(b: B, dtype: DType, shape: number[]): Promise<Tensor>;
  release(b: B): void;
}

export interface KernelRunOptions {
  registry: OpRegistry;
  table?: LoweringTable;
  /** Called after each node (debugging): how it ran. */
  onNode?: (node: Node, how: 'kernels' | 'view' | 'host') => void;
}

interface Slot<B> {
  dtype: DType;
  shape: number[];
  host?: Tensor;
  dev?: { buf: B; refs: number };
}

/** Host tensor → device storage values; throws a UserError when an int64 value does not fit i32. */
export function checkDeviceDtype(dtype: DType, where: { node?: string; tensor?: string }): ScalarType {
  const t = deviceType(dtype);
  if (!t) throw new UserError(`unsupported dtype ${dtype} on the kernel targets (float32, int32, int64, bool)`, where);
  return t;
}

/** Runs `graph`; returns its outputs by name (graph output order), downloaded to the host. */
export async function runGraphOnBackend<B>(
  graph: Graph,
  feeds: ReadonlyMap<string, Tensor>,
  backend: KernelBackend<B>,
  opts: KernelRunOptions,
): Promise<Map<string, Tensor>> {
  const table = opts.table ?? createLoweringTable();
  const env = new Map<Value, Slot<B>>();
  const live = new Set<{ buf: B; refs: number }>();
  const upload = (s: Slot<B>, name: string): { buf: B; refs: number } => {
    if (!s.dev) {
      checkDeviceDtype(s.dtype, { tensor: name });
      s.dev = { buf: backend.upload(s.host!), refs: 1 };
      live.add(s.dev);
    }
    return s.dev;
  };
  const toHost = async (s: Slot<B>): Promise<Tensor> => (s.host ??= await backend.download(s.dev!.buf, s.dtype, s.shape));

  for (const v of graph.inputs) {
    const t = feeds.get(v.name) ?? (v.constant ? v.constant.load() : undefined);
    if (!t) throw new UserError(`missing graph input`, { tensor: v.name });
    const s: Slot<B> = { dtype: t.dtype, shape: [...t.shape], host: t };
    if (feeds.has(v.name)) {
      upload(s, v.name);
      s.host = undefined; // graph inputs live on the device, like any computed value
    }
    env.set(v, s);
  }
  const slotOf = (v: Value): Slot<B> => {
    let s = env.get(v);
    if (!s && v.constant) {
      const t = v.constant.load();
      s = { dtype: t.dtype, shape: [...t.shape], host: t };
      env.set(v, s);
    }
    if (!s) throw new UserError(`value is used before it is defined`, { tensor: v.name });
    return s;
  };
  const pinned = new Set<Value>(graph.outputs);
  const lastUse = new Map<Value, number>();
  graph.nodes.forEach((n, i) => n.inputs.forEach((v) => v && lastUse.set(v, i)));
  const drop = (s: Slot<B>): void => {
    if (s.dev && --s.dev.refs === 0) {
      backend.release(s.dev.buf);
      live.delete(s.dev);
    }
  };

  try {
    for (const [i, node] of graph.nodes.entries()) {
      await runNode(node, table, opts, env, slotOf, upload, toHost, backend, live);
      for (const v of node.inputs)
        if (v && lastUse.get(v) === i && !pinned.has(v) && env.has(v) && !graph.inputs.includes(v)) {
          drop(env.get(v)!);
          env.delete(v);
        }
    }
    const out = new Map<string, Tensor>();
    for (const o of graph.outputs) out.set(o.name, await toHost(slotOf(o)));
    return out;
  } finally {
    for (const d of live) backend.release(d.buf);
  }
}

/** A node input as `planNode` sees it: type, and the value when it lives on the host. */
export interface PlanInput {
  dtype: DType;
  shape: number[];
  host?: Tensor;
}

/**
 * What running one node means, decided from its inputs' types and host values alone (shared by
 * the interpretive runner and the ahead-of-time recorder, codegen/host/record.ts):
 * - `host`: outputs computed on the host (every input on the host, or a shape-only lowering);
 * - `view`: output `output` is input `input`'s buffer with a new type;
 * - `kernels`: launches writing fresh output buffers of the given types.
 * Inputs listed in the row's `hostInputs` must be on the host already (`loweringRow` gives them).
 */
export type NodePlan =
  | { kind: 'host'; outputs: (Tensor | undefined)[]; folded: boolean }
  | { kind: 'view'; input: number; output: number; type: { dtype: DType; shape: number[] } }
  | { kind: 'kernels'; outputs: { dtype: DType; shape: number[] }[]; launches: LaunchSpec[] };

/** The lowering row of a node; a UserError when the kernel targets have none. */
export function loweringRow(node: Node, table: LoweringTable): LowerRow {
  const row = table.get(node.op, node.domain);
  if (!row) throw new UserError(`unsupported op ${node.op} on the kernel targets (no lowering row)`, { node: node.label });
  return row;
}

/** Output types of a node from its op's shape inference; a UserError when one is not static. */
export function inferNodeOutputs(node: Node, registry: OpRegistry, inputs: readonly (PlanInput | undefined)[]): { dtype: DType; shape: number[] }[] {
  const def = registry.forNode(node);
  const types = def.infer({
    node,
    attrs: node.attrs,
    inputs: inputs.map((s) => (s ? { dtype: s.dtype, shape: s.shape } : undefined)),
    constant: (k) => inputs[k]?.host,
  });
  return types.map((t, k) => {
    if (!t.shape || !isStatic(t.shape))
      throw new UserError(`unsupported op ${node.op} on the kernel targets: output ${k} has a data-dependent shape`, { node: node.label });
    checkDeviceDtype(t.dtype, { node: node.label });
    return { dtype: t.dtype, shape: t.shape };
  });
}

export function planNode(node: Node, table: LoweringTable, registry: OpRegistry, inputs: readonly (PlanInput | undefined)[]): NodePlan {
  const row = loweringRow(node, table);
  const def = registry.forNode(node);
  const evaluate = (xs: (Tensor | undefined)[]): Tensor[] => {
    try {
      return def.evaluate({ node, attrs: node.attrs, inputs: xs });
    } catch (e) {
      throw e instanceof UserError ? e.at({ node: node.label }) : e;
    }
  };
  // Everything on the host already: fold there (shape math, constant subgraphs).
  if (inputs.every((s) => !s || s.host)) return { kind: 'host', outputs: evaluate(inputs.map((s) => s?.host)), folded: true };

  const outputs = inferNodeOutputs(node, registry, inputs);
  const ctx: LowerContext = { node, attrs: node.attrs, inputs: inputs.map((s) => (s ? { dtype: s.dtype, shape: s.shape, host: s.host } : undefined)), outputs };
  const lowered = row.lower(ctx);
  // Host shape math that reads only shapes (Shape, Size): evaluate on placeholders.
  if (lowered.kind === 'host')
    return { kind: 'host', outputs: evaluate(inputs.map((s) => (s ? (s.host ?? Tensor.zeros(s.dtype, s.shape)) : undefined))), folded: false };
  if (lowered.kind === 'view') return { kind: 'view', input: lowered.input, output: lowered.output ?? 0, type: outputs[lowered.output ?? 0]! };
  return { kind: 'kernels', outputs, launches: lowered.launches };
}

async function runNode<B>(
  node: Node,
  table: LoweringTable,
  opts: KernelRunOptions,
  env: Map<Value, Slot<B>>,
  slotOf: (v: Value) => Slot<B>,
  upload: (s: Slot<B>, name: string) => { buf: B; refs: number },
  toHost: (s: Slot<B>) => Promise<Tensor>,
  backend: KernelBackend<B>,
  live: Set<{ buf: B; refs: number }>,
): Promise<void> {
  const row = loweringRow(node, table);
  const slots = node.inputs.map((v) => (v ? slotOf(v) : undefined));
  for (const k of row.hostInputs ?? []) if (slots[k] && !slots[k]!.host) await toHost(slots[k]!);

  const setOutputs = (tensors: readonly (Tensor | undefined)[]): void =>
    node.outputs.forEach((v, k) => {
      const t = tensors[k];
      if (t && v.name !== '') env.set(v, { dtype: t.dtype, shape: [...t.shape], host: t });
    });
  const plan = planNode(node, table, opts.registry, slots.map((s) => (s ? { dtype: s.dtype, shape: s.shape, host: s.host } : undefined)));
  if (plan.kind === 'host') {
    setOutputs(plan.outputs);
    opts.onNode?.(node, 'host');
    return;
  }
  if (plan.kind === 'view') {
    const src = slots[plan.input]!;
    const o = plan.type;
    const v = node.outputs[plan.output]!;
    const dev = upload(src, node.inputs[plan.input]!.name);
    dev.refs++;
    env.set(v, { dtype: o.dtype, shape: o.shape, dev, host: src.host?.reshape(o.shape) });
    opts.onNode?.(node, 'view');
    return;
  }
  const outputs = plan.outputs;
  const lowered = { launches: plan.launches };
  // Kernels: fresh output buffers, inputs uploaded on first use.
  const bufs: Record<string, B> = {};
  outputs.forEach((o, k) => {
    const v = node.outputs[k]!;
    const dev = { buf: backend.alloc(checkDeviceDtype(o.dtype, { node: node.label }), Math.max(1, numel(o.shape))), refs: 1 };
    live.add(dev);
    bufs[`y${k}`] = dev.buf;
    if (v.name !== '') env.set(v, { dtype: o.dtype, shape: o.shape, dev });
    else dev.refs = 1; // unnamed output: released below
  });
  const tables: B[] = [];
  for (const l of lowered.launches) {
    const bindings: Record<string, B> = {};
    for (const b of [...l.kernel.inputs, ...l.kernel.outputs]) {
      const table = l.constants?.[b.name];
      if (table) {
        const buf = backend.upload(table);
        tables.push(buf);
        bindings[b.name] = buf;
        continue;
      }
      const name = l.bind?.[b.name] ?? b.name;
      if (!(name in bufs) && /^x\d+$/.test(name)) {
        const k = Number(name.slice(1));
        bufs[name] = upload(slots[k]!, node.inputs[k]!.name).buf;
      }
      const buf = bufs[name];
      if (buf === undefined) throw new Error(`kernel ${l.kernel.name} binds unknown buffer ${name}`);
      bindings[b.name] = buf;
    }
    await backend.dispatch({ kernel: l.kernel, params: l.params }, bindings);
  }
  for (const t of tables) backend.release(t);
  node.outputs.forEach((v, k) => {
    if (v.name === '') {
      const d = [...live].find((x) => x.buf === bufs[`y${k}`]);
      if (d) {
        backend.release(d.buf);
        live.delete(d);
      }
    }
  });
  opts.onNode?.(node, 'kernels');
}
