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
  /** Flops of a node (default nodeFlops; device programs: deviceNodeFlops). */
  flops?: (n: Node, registry: OpRegistry) => number;
}

/** What estimateGraph tracks per value (one record per value, so each step is one map lookup). */
interface ValueInfo {
  constant: boolean;
  /** Position of the last node reading it (-1: never read). */
  last: number;
  pinned: boolean;
  live: boolean;
  /** valueBytes, once computed (-1 before). */
  bytes: number;
}

export function estimateGraph(graph: Graph, registry: OpRegistry, opts: EstimateOptions = {}): GraphEstimate {
  const flopsOf = opts.flops ?? nodeFlops;
  const info = new Map<Value, ValueInfo>();
  const infoOf = (v: Value): ValueInfo => {
    let x = info.get(v);
    if (!x) info.set(v, (x = { constant: false, last: -1, pinned: false, live: false, bytes: -1 }));
    return x;
  };
  const bytesOf = (v: Value, x: ValueInfo): number => (x.bytes >= 0 ? x.bytes : (x.bytes = valueBytes(v)));

  const constants: Value[] = [];
  const markConstant = (v: Value): void => {
    const x = infoOf(v);
    if (!x.constant) constants.push(v);
    x.constant = true;
  };
  for (const v of graph.initializers) markConstant(v);
  for (const n of graph.nodes) for (const i of n.inputs) if (i?.constant) markConstant(i);
  for (const v of graph.inputs) if (v.constant) infoOf(v).constant = false; // inputs with defaults are fed
  let paramBytes = 0;
  for (const v of constants) if (info.get(v)!.constant) paramBytes += constantBytes(v);

  const alias = new Map<Value, Value>();
  const root = opts.skipCollectives ? (v: Value): Value => alias.get(v) ?? v : (v: Value): Value => v;
  if (opts.skipCollectives)
    for (const n of graph.nodes) if (n.domain === COLLECTIVE_DOMAIN && n.inputs[0] && n.outputs[0]) alias.set(n.outputs[0], root(n.inputs[0]));

  const nodes = opts.skipCollectives ? graph.nodes.filter((n) => n.domain !== COLLECTIVE_DOMAIN) : graph.nodes;
  for (let i = 0; i < nodes.length; i++) for (const v of nodes[i]!.inputs) if (v) infoOf(root(v)).last = i;
  for (const v of graph.outputs) infoOf(root(v)).pinned = true;

  let live = 0;
  for (const v of graph.inputs) {
    const x = infoOf(v);
    if (!x.constant) {
      x.live = true;
      live += bytesOf(v, x);
    }
  }
  let peak = live;
  let flops = 0;
  // Live bytes are integers (exact in doubles), so the order values are freed in does not matter.
  const free = (v: Value, x: ValueInfo): void => {
    if (x.live && !x.pinned) {
      x.live = false;
      live -= bytesOf(v, x);
    }
  };
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    for (const o of n.outputs) {
      const r = root(o);
      const x = infoOf(r);
      if (o.name === '' || x.live || x.constant) continue;
      x.live = true;
      live += bytesOf(r, x);
    }
    if (live > peak) peak = live;
    flops += flopsOf(n, registry);
    for (const v of n.inputs) {
      if (!v) continue;
      const r = root(v);
      const x = info.get(r)!;
      if (x.last === i) free(r, x);
    }
    for (const o of n.outputs) {
      const r = root(o);
      const x = info.get(r)!;
      if (x.last < 0) free(r, x);
    }
  }
  return { peakMemoryBytes: peak + paramBytes, paramBytes, flops, activationPeakBytes: peak };
}

function constantBytes(v: Value): number {
  const c = v.constant!;
  if (c.dtype === 'string') return 0;
  return c.size * dtypeBytes(c.dtype);
}

const deviceFlops = new WeakMap<OpRegistry, WeakMap<Node, number>>();

/**
 * nodeFlops memoised per node (and registry), for the nodes of lowered device programs only: they
 * are not changed after lowering but for their order, and the scheduling pass (durations),
 * report.json and the cost model count the same nodes.
 */
export function deviceNodeFlops(n: Node, registry: OpRegistry): number {
  let memo = deviceFlops.get(registry);
  if (!memo) deviceFlops.set(registry, (memo = new WeakMap()));
  let f = memo.get(n);
  if (f === undefined) memo.set(n, (f = nodeFlops(n, registry)));
  return f;
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
