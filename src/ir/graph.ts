/**
 * The IR: SSA values, nodes and graphs.
 *
 * - A `Value` is defined once: by a node output, as a graph input, or as a constant
 *   (initializer, with lazily loaded data). It carries dtype and shape (dims may be symbolic) and,
 *   after sharding, a layout.
 * - A `Node` applies an op (`domain`, `op`) to input values (null for an absent optional input)
 *   and defines its outputs. Collectives are ordinary nodes in the `shardc.collective` domain.
 * - A `Graph` owns its nodes in a (topological) order; subgraphs (If/Loop bodies) are graphs in
 *   attributes and may refer to values of the enclosing graph.
 */
import * as graphlib from '@dagrejs/graphlib';
import { Attrs } from './attrs.js';
import type { DType } from './dtype.js';
import { UserError } from './errors.js';
import type { Layout } from './layout.js';
import type { Shape } from './shape.js';
import type { LazyTensor } from './tensor.js';

export const DEFAULT_DOMAIN = '';
export const COLLECTIVE_DOMAIN = 'shardc.collective';

export class Value {
  name: string;
  dtype?: DType;
  shape?: Shape;
  /** Node that defines this value (undefined for graph inputs and constants). */
  producer?: Node;
  /** Constant data (initializers, folded constants). */
  constant?: LazyTensor;
  /** Layout on the device mesh, set by sharding passes. */
  layout?: Layout;
  /** Free-form annotations from passes (e.g. pattern recognition), printed sorted by key. */
  readonly meta = new Map<string, string>();

  constructor(name: string, dtype?: DType, shape?: Shape) {
    this.name = name;
    this.dtype = dtype;
    this.shape = shape;
  }
}

export class Node {
  name: string;
  op: string;
  domain: string;
  inputs: (Value | null)[];
  outputs: Value[];
  attrs: Attrs;
  /** Annotations from passes, e.g. `pattern=LayerNorm#0`; printed sorted by key. */
  readonly meta = new Map<string, string>();

  constructor(op: string, inputs: (Value | null)[], outputs: Value[], attrs = new Attrs(), name = '', domain = DEFAULT_DOMAIN) {
    this.op = op;
    this.domain = domain;
    this.inputs = inputs;
    this.outputs = outputs;
    this.attrs = attrs;
    this.name = name;
    this.attrs.owner = name || op;
    for (const o of outputs) o.producer = this;
  }

  /** Node name, or `op` when unnamed: how errors and reports refer to it. */
  get label(): string {
    return this.name || `${this.op}(${this.outputs.map((o) => o.name).join(',')})`;
  }
}

export class Graph {
  name: string;
  inputs: Value[] = [];
  outputs: Value[] = [];
  nodes: Node[] = [];
  /** Constant values (initializers), in import order. */
  initializers: Value[] = [];
  /** Opset version per domain. */
  opsets: Record<string, number> = { [DEFAULT_DOMAIN]: 17 };
  /** Free-form model metadata (producer, doc string). */
  readonly meta = new Map<string, string>();

  constructor(name = 'main') {
    this.name = name;
  }

  addNode(node: Node): Node {
    this.nodes.push(node);
    return node;
  }

  /** Every value defined in this graph (inputs, initializers, node outputs), by name. */
  valuesByName(): Map<string, Value> {
    const m = new Map<string, Value>();
    for (const v of this.inputs) m.set(v.name, v);
    for (const v of this.initializers) m.set(v.name, v);
    for (const n of this.nodes) for (const o of n.outputs) m.set(o.name, o);
    return m;
  }

  /** Consumers of each value (in node order). */
  users(): Map<Value, Node[]> {
    const m = new Map<Value, Node[]>();
    for (const n of this.nodes)
      for (const i of n.inputs) {
        if (!i) continue;
        const l = m.get(i);
        if (l) l.push(n);
        else m.set(i, [n]);
      }
    return m;
  }

  /**
   * Reorders `nodes` topologically (stable: among ready nodes the earliest in the current order
   * goes first). Throws a UserError naming the nodes of a cycle.
   */
  sortTopologically(): void {
    const index = new Map<Node, number>(this.nodes.map((n, i) => [n, i]));
    const g = new graphlib.Graph({ directed: true });
    this.nodes.forEach((_, i) => g.setNode(String(i)));
    for (const [i, n] of this.nodes.entries())
      for (const v of [...n.inputs, ...subgraphCaptures(n)]) {
        const p = v?.producer;
        if (p && index.has(p)) g.setEdge(String(index.get(p)), String(i));
      }
    if (!graphlib.alg.isAcyclic(g)) {
      const cycle = graphlib.alg.findCycles(g)[0] ?? [];
      const names = cycle.map((i: string) => this.nodes[Number(i)]!.label).sort();
      throw new UserError(`graph has a cycle through nodes ${names.map((s: string) => JSON.stringify(s)).join(', ')}`, {
        node: names[0],
      });
    }
    // Kahn's algorithm with a min-heap on original position keeps the order stable.
    const indeg = this.nodes.map((_, i) => g.predecessors(String(i))?.length ?? 0);
    const ready: number[] = [];
    indeg.forEach((d, i) => d === 0 && ready.push(i));
    const order: Node[] = [];
    while (ready.length) {
      ready.sort((a, b) => a - b);
      const i = ready.shift()!;
      order.push(this.nodes[i]!);
      for (const s of g.successors(String(i)) ?? []) if (--indeg[Number(s)]! === 0) ready.push(Number(s));
    }
    this.nodes = order;
  }
}

/** Values of enclosing scopes used inside a node's subgraphs (for ordering and liveness). */
export function subgraphCaptures(n: Node): Value[] {
  const out: Value[] = [];
  for (const [, a] of n.attrs.entries()) {
    const gs = a.kind === 'graph' ? [a.value] : a.kind === 'graphs' ? a.value : [];
    for (const g of gs) {
      const local = new Set(g.valuesByName().values());
      for (const sn of g.nodes) {
        for (const i of sn.inputs) if (i && !local.has(i)) out.push(i);
        out.push(...subgraphCaptures(sn).filter((v) => !local.has(v)));
      }
      for (const o of g.outputs) if (!local.has(o)) out.push(o);
    }
  }
  return out;
}
