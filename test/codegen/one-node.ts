/** Shared by the codegen tests: a graph of one node whose inputs are graph inputs or constants. */
import { Attrs } from '../../src/ir/attrs.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/ir/tensor.js';

/** An input of the node: a graph input fed with `t`, or (with `constant`) an initializer holding `t`. */
export type NodeInput = { name: string; t: Tensor; constant?: boolean };

/** One-node graph `op(inputs) -> y0..` (node label = op). */
export function oneNodeGraph(op: string, inputs: readonly NodeInput[], attrs: Attrs = new Attrs(), outputs = 1): Graph {
  const g = new Graph('t');
  const vals = inputs.map(({ name, t, constant }) => {
    const v = new Value(name, t.dtype, [...t.shape]);
    if (constant) {
      v.constant = { load: () => t } as unknown as Value['constant'];
      g.initializers.push(v);
    } else g.inputs.push(v);
    return v;
  });
  const outs = Array.from({ length: outputs }, (_, k) => new Value(`y${k}`));
  g.nodes.push(new Node(op, vals, outs, attrs, op));
  g.outputs.push(...outs);
  return g;
}

/** The feeds of the non-constant inputs. */
export function feedsOf(inputs: readonly NodeInput[]): Map<string, Tensor> {
  return new Map(inputs.filter((x) => !x.constant).map((x) => [x.name, x.t]));
}
