/**
 * Dead-code elimination: removes nodes none of whose outputs reach a graph output (through
 * inputs or subgraph captures), and initializers nothing uses. Graph inputs are the interface and
 * always stay. Subgraph bodies are cleaned the same way (their outputs are the roots). One
 * backward sweep over the (topologically ordered) nodes.
 */
import type { Graph, Value } from '../ir/graph.js';
import { subgraphCaptures } from '../ir/graph.js';
import type { Pass } from './manager.js';
import { hasSubgraph, isTopologicallyOrdered } from './util.js';

/** Removes dead nodes and unused initializers in place; returns how many were removed. */
export function eliminateDeadCode(graph: Graph): number {
  if (!isTopologicallyOrdered(graph)) graph.sortTopologically();
  const live = new Set<Value>(graph.outputs);
  const kept = [];
  let removed = 0;
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i]!;
    if (!n.outputs.some((o) => live.has(o))) {
      removed++;
      continue;
    }
    kept.push(n);
    for (const v of n.inputs) if (v) live.add(v);
    if (hasSubgraph(n)) {
      for (const [, a] of n.attrs.entries()) {
        if (a.kind === 'graph') removed += eliminateDeadCode(a.value);
        else if (a.kind === 'graphs') for (const g of a.value) removed += eliminateDeadCode(g);
      }
      for (const v of subgraphCaptures(n)) live.add(v);
    }
  }
  kept.reverse();
  graph.nodes = kept;
  const inputs = new Set(graph.inputs);
  const before = graph.initializers.length;
  graph.initializers = graph.initializers.filter((v) => live.has(v) || inputs.has(v));
  return removed + before - graph.initializers.length;
}

export const deadCodePass: Pass = {
  name: 'dead-code',
  run(graph) {
    return eliminateDeadCode(graph) > 0;
  },
};
