/**
 * The reference CPU runtime: evaluates an IR graph node by node with each op's reference
 * evaluation (src/ir/ops). It is the oracle for every other target. Tensors are freed after their
 * last use so a large graph's peak memory stays near its live set.
 */
import { UserError } from '../../ir/errors.js';
import type { Graph, Node, Value } from '../../ir/graph.js';
import type { OpRegistry } from '../../ir/registry.js';
import { Tensor } from '../../ir/tensor.js';

export interface RunOptions {
  registry: OpRegistry;
  /** Called after each node with its outputs (for debugging and tests). */
  onNode?: (node: Node, outputs: Tensor[]) => void;
  /** Values to keep alive for the caller (besides graph outputs), e.g. to inspect intermediates. */
  keep?: Iterable<Value>;
}

/** Runs `graph` on named inputs; returns its outputs by name, in graph output order. */
export function runGraph(graph: Graph, feeds: ReadonlyMap<string, Tensor>, opts: RunOptions): Map<string, Tensor> {
  const env = evaluateGraph(graph, feeds, opts);
  const out = new Map<string, Tensor>();
  for (const o of graph.outputs) {
    // An output may also be a graph input or a constant (initializer), which are not in `env`.
    const t = env.get(o) ?? (o.constant ? o.constant.load() : undefined);
    if (!t) throw new UserError(`graph output was not computed`, { tensor: o.name });
    out.set(o.name, t);
  }
  return out;
}

/** Evaluates the graph and returns the environment (graph outputs and `keep` values stay live). */
export function evaluateGraph(graph: Graph, feeds: ReadonlyMap<string, Tensor>, opts: RunOptions): Map<Value, Tensor> {
  const env = new Map<Value, Tensor>();
  for (const v of graph.inputs) {
    if (v.constant && !feeds.has(v.name)) continue; // input with a default initializer
    const t = feeds.get(v.name);
    if (!t) throw new UserError(`missing graph input`, { tensor: v.name });
    env.set(v, t);
  }
  // Last use of every value, so intermediates can be dropped.
  const pinned = new Set<Value>([...graph.outputs, ...(opts.keep ?? [])]);
  const lastUse = new Map<Value, number>();
  graph.nodes.forEach((n, i) => n.inputs.forEach((v) => v && lastUse.set(v, i)));

  const read = (v: Value): Tensor => {
    const t = env.get(v);
    if (t) return t;
    if (v.constant) return v.constant.load();
    throw new UserError(`value is used before it is defined`, { tensor: v.name });
  };

  graph.nodes.forEach((node, i) => {
    const def = opts.registry.forNode(node);
    const inputs = node.inputs.map((v) => (v ? read(v) : undefined));
    let outputs: Tensor[];
    try {
      outputs = def.evaluate({ node, attrs: node.attrs, inputs });
    } catch (e) {
      if (e instanceof UserError) throw e.at({ node: node.label });
      throw e;
    }
    node.outputs.forEach((v, k) => {
      const t = outputs[k];
      if (t && v.name !== '') env.set(v, t);
    });
    opts.onNode?.(node, outputs);
    for (const v of node.inputs) if (v && lastUse.get(v) === i && !pinned.has(v) && !v.constant) env.delete(v);
  });
  return env;
}
