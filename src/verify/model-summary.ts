/**
 * What `shardc inspect` reports about a model, as data: ops histogram, opsets, inputs and outputs
 * with symbolic shapes, parameter count (from initializer shapes, without reading their data),
 * flops (from each op's `flops` after shape inference, where shapes are static) and the ops the
 * registry does not support.
 */
import { dtypeBytes } from '../ir/dtype.js';
import type { Node, Value } from '../ir/graph.js';
import type { InferContext, OpRegistry, TypeInfo } from '../ir/registry.js';
import { type Dim, isStatic } from '../ir/shape.js';
import type { Tensor } from '../ir/tensor.js';
import type { Model } from '../onnx/import.js';
import { unsupportedOps } from '../onnx/import.js';
import { inferShapes } from '../passes/shape-inference.js';

export interface ValueSummary {
  name: string;
  dtype: string | null;
  /** Dims are numbers or symbols; null when the rank is unknown. */
  shape: Dim[] | null;
}

export interface ModelSummary {
  model: string;
  producer: string;
  irVersion: number;
  opsets: Record<string, number>;
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  nodes: number;
  /** Nodes per op (`domain.op` outside the default domain), most frequent first. */
  ops: { op: string; count: number }[];
  parameters: { count: number; bytes: number; tensors: number };
  flops: {
    /** Sum over the nodes whose flops are known. */
    total: number;
    /** Nodes whose op defines flops but whose shapes are not static (bind symbols with --dim). */
    unknownNodes: number;
    /** Symbol bindings used. */
    dims: Record<string, number>;
  };
  /** Whether shape inference ran to the end (else its error). */
  shapeInference: { ok: boolean; message: string };
  unsupported: { op: string; nodes: string[] }[];
}

/** Constants larger than this are not loaded just to compute flops (weights stay on disk). */
const MAX_CONSTANT_FOR_FLOPS = 4096;

export function summarizeModel(model: Model, registry: OpRegistry, dims: Readonly<Record<string, number>> = {}): ModelSummary {
  const graph = model.graph;
  const unsupported = unsupportedOps(graph, registry);

  // Inputs and outputs are described with their symbolic shapes (inference without bindings);
  // flops are counted after a second inference with the bindings, where shapes become static.
  let shapeInference = { ok: true, message: '' };
  const infer = (bindings: Record<string, number>): void => {
    try {
      inferShapes(graph, registry, { bindings, skipUnknownOps: true });
    } catch (e) {
      shapeInference = { ok: false, message: e instanceof Error ? e.message : String(e) };
    }
  };
  infer({});
  const summarize = (v: Value): ValueSummary => ({ name: v.name, dtype: v.dtype ?? null, shape: v.shape ? v.shape.slice() : null });
  const inputs = graph.inputs.filter((v) => !v.constant).map(summarize);
  const outputs = graph.outputs.map(summarize);
  if (Object.keys(dims).length > 0 && shapeInference.ok) infer({ ...dims });

  const hist = new Map<string, number>();
  for (const n of graph.nodes) {
    const k = n.domain ? `${n.domain}.${n.op}` : n.op;
    hist.set(k, (hist.get(k) ?? 0) + 1);
  }
  const ops = [...hist.entries()]
    .map(([op, count]) => ({ op, count }))
    .sort((a, b) => b.count - a.count || (a.op < b.op ? -1 : a.op > b.op ? 1 : 0));

  let count = 0;
  let bytes = 0;
  for (const v of graph.initializers) {
    if (!v.constant) continue;
    count += v.constant.size;
    bytes += v.constant.dtype === 'string' ? 0 : v.constant.size * dtypeBytes(v.constant.dtype);
  }

  let total = 0;
  let unknownNodes = 0;
  for (const n of graph.nodes) {
    const def = registry.get(n.op, n.domain);
    if (!def?.flops) continue;
    const ctx = inferContext(n);
    if (!ctx) {
      unknownNodes++;
      continue;
    }
    try {
      const f = def.flops(ctx);
      if (Number.isFinite(f)) total += f;
      else unknownNodes++;
    } catch {
      unknownNodes++;
    }
  }

  return {
    model: model.file,
    producer: model.producer,
    irVersion: model.irVersion,
    opsets: { ...model.opsets },
    inputs,
    outputs,
    nodes: graph.nodes.length,
    ops,
    parameters: { count, bytes, tensors: graph.initializers.length },
    flops: { total, unknownNodes, dims: { ...dims } },
    shapeInference,
    unsupported,
  };
}

/** An InferContext over the node's (inferred) input types, or undefined when a shape is not static. */
function inferContext(n: Node): InferContext | undefined {
  const inputs: (TypeInfo | undefined)[] = [];
  for (const v of n.inputs) {
    if (!v) {
      inputs.push(undefined);
      continue;
    }
    if (!v.dtype || !v.shape || !isStatic(v.shape)) return undefined;
    inputs.push({ dtype: v.dtype, shape: v.shape });
  }
  return {
    node: n,
    attrs: n.attrs,
    inputs,
    constant: (i: number): Tensor | undefined => {
      const c = n.inputs[i]?.constant;
      return c && (c.loaded || c.size <= MAX_CONSTANT_FOR_FLOPS) ? c.load() : undefined;
    },
  };
}

/** Flops with an SI prefix: `1.23 GFLOP`. */
export function formatFlops(f: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P'];
  let i = 0;
  let v = f;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? String(v) : v.toFixed(2)} ${units[i]}FLOP`;
}

export function formatBytes(b: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = b;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(2)} ${units[i]}`;
}
