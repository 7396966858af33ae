/**
 * Per-device cost figures for report.json, from a graph alone (no execution):
 * - paramBytes: bytes of the constants the graph holds (initializers and folded constants).
 * - peakMemoryBytes: a liveness estimate in program order: parameters stay resident; a graph input
 *   is live from the start to its last use; a node's outputs are allocated when it runs (its inputs
 *   still live) and freed after their last use (graph outputs stay to the end). The peak is the
 *   largest sum of live bytes at any step. Collective outputs count as new buffers (the runtime
 *   does not reduce in place), which is what a device allocates.
 * - flops: each op's `OpDef.flops` on the graph's (local) shapes; ops without a flops row count 0.
 * Values whose shape is not static count 0 bytes (shapes are static after sharding).
 */
import { dtypeBytes } from '../ir/dtype.js';
import { COLLECTIVE_DOMAIN, type Graph, type Node, type Value } from '../ir/graph.js';
import type { InferContext, OpRegistry, TypeInfo } from '../ir/registry.js';
import { isStatic } from '../ir/shape.js';
import type { Tensor } from '../ir/tensor.js';

/** Constants larger than this are not loaded just to compute flops. */
const MAX_CONSTANT_FOR_FLOPS = 4096;

export interface GraphEstimate {
  peakMemoryBytes: number;
  paramBytes: number;
  flops: number;
  /** Largest live activation bytes (peak minus parameters). */
  activationPeakBytes: number;
}

export function valueBytes(v: Value): number {
  if (!v.dtype || v.dtype === 'string' || !v.shape || !isStatic(v.shape)) return 0;
  return v.shape.reduce((a, b) => a * b, 1) * dtypeBytes(v.dtype);
}

export interface EstimateOptions {
  /** Treat collective nodes as free aliases (estimate of the unsharded program from a plan's global graph). */
  skipCollectives?: boolean;
}

export function estimateGraph(graph: Graph, registry: OpRegistry, opts: EstimateOptions = {}): GraphEstimate {
  const constants = new Set<Value>();
  for (const v of graph.initializers) constants.add(v);
  for (const n of graph.nodes) for (const i of n.inputs) if (i?.constant) constants.add(i);
  for (const v of graph.inputs) if (v.constant) constants.delete(v); // inputs with defaults are fed
  let paramBytes = 0;
  for (const v of constants) paramBytes += constantBytes(v);

  const alias = new Map<Value, Value>();
  const root = (v: Value): Value => alias.get(v) ?? v;
  if (opts.skipCollectives)
    for (const n of graph.nodes) if (n.domain === COLLECTIVE_DOMAIN && n.inputs[0] && n.outputs[0]) alias.set(n.outputs[0], root(n.inputs[0]));

  const nodes = opts.skipCollectives ? graph.nodes.filter((n) => n.domain !== COLLECTIVE_DOMAIN) : graph.nodes;
  const lastUse = new Map<Value, number>();
  for (let i = 0; i < nodes.length; i++) for (const v of nodes[i]!.inputs) if (v) lastUse.set(root(v), i);
  const pinned = new Set(graph.outputs.map(root));

  let live = 0;
  const liveSet = new Set<Value>();
  for (const v of graph.inputs)
    if (!constants.has(v)) {
      liveSet.add(v);
      live += valueBytes(v);
    }
  let peak = live;
  let flops = 0;
  // Live bytes are integers (exact in doubles), so the order values are freed in does not matter.
  const free = (v: Value): void => {
    if (liveSet.has(v) && !pinned.has(v)) {
      liveSet.delete(v);
      live -= valueBytes(v);
    }
  };
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    for (const o of n.outputs) {
      const r = root(o);
      if (o.name === '' || liveSet.has(r) || constants.has(r)) continue;
      liveSet.add(r);
      live += valueBytes(r);
    }
    if (live > peak) peak = live;
    flops += nodeFlops(n, registry);
    for (const v of n.inputs) if (v && lastUse.get(root(v)) === i) free(root(v));
    for (const o of n.outputs) if (!lastUse.has(root(o))) free(root(o));
  }
  return { peakMemoryBytes: peak + paramBytes, paramBytes, flops, activationPeakBytes: peak };
}

function constantBytes(v: Value): number {
  const c = v.constant!;
  if (c.dtype === 'string') return 0;
  return c.size * dtypeBytes(c.dtype);
}

export function nodeFlops(n: Node, registry: OpRegistry): number {
  const def = registry.get(n.op, n.domain);
  if (!def?.flops) return 0;
  const inputs: (TypeInfo | undefined)[] = n.inputs.map((v) => (v?.dtype ? { dtype: v.dtype, shape: v.shape } : undefined));
  if (inputs.some((t, i) => n.inputs[i] && (!t?.shape || !isStatic(t.shape)))) return 0;
  const ctx: InferContext = {
    node: n,
    attrs: n.attrs,
    inputs,
    constant(i: number): Tensor | undefined {
      const c = n.inputs[i]?.constant;
      return c && c.size <= MAX_CONSTANT_FOR_FLOPS ? c.load() : undefined;
    },
  };
  try {
    const f = def.flops(ctx);
    return Number.isFinite(f) ? f : 0;
  } catch {
    return 0;
  }
}
