/**
 * Helpers shared by the passes: a view of compile-time constant values, fresh names, and use
 * replacement. Everything here is linear in the graph size.
 */
import { UserError } from '../ir/errors.js';
import { DEFAULT_DOMAIN, type Graph, type Node, type Value } from '../ir/graph.js';
import type { OpDef, OpRegistry } from '../ir/registry.js';
import { Tensor } from '../ir/tensor.js';

/** External constants up to this many elements may be loaded to serve as compile-time constants. */
export const MAX_EXTERNAL_CONSTANT_LOAD = 1 << 16;

export const isDefaultDomain = (n: Node): boolean => n.domain === DEFAULT_DOMAIN || n.domain === 'ai.onnx';

/**
 * Compile-time constant values: initializers (not graph inputs: an input's default may be
 * overridden), folded values, outputs of Constant nodes, and values recorded with `set` (e.g.
 * computed by shape inference). Large external weights are not loaded.
 */
export class ConstantView {
  private readonly known = new Map<Value, Tensor | null>();
  private readonly inputs: Set<Value>;

  constructor(
    graph: Graph,
    private readonly registry?: OpRegistry,
  ) {
    this.inputs = new Set(graph.inputs);
  }

  set(v: Value, t: Tensor): void {
    this.known.set(v, t);
  }

  /** True when `v` has constant data without loading it (it may be large or external). */
  isConstant(v: Value): boolean {
    return (!!v.constant && !this.inputs.has(v)) || this.get(v) !== undefined;
  }

  /** The value when it is constant with at most `maxElements` elements (known without loading larger data). */
  small(v: Value, maxElements: number): Tensor | undefined {
    if (v.constant && v.constant.size > maxElements) return undefined;
    const t = this.get(v);
    return t && t.size <= maxElements ? t : undefined;
  }

  get(v: Value): Tensor | undefined {
    const k = this.known.get(v);
    if (k !== undefined) return k ?? undefined;
    const t = this.compute(v);
    this.known.set(v, t ?? null);
    return t;
  }

  private compute(v: Value): Tensor | undefined {
    if (this.inputs.has(v)) return undefined;
    const c = v.constant;
    if (c) {
      if (!c.loaded && c.location.kind === 'external' && c.size > MAX_EXTERNAL_CONSTANT_LOAD) return undefined;
      try {
        return c.load();
      } catch (e) {
        if (e instanceof UserError) return undefined; // data not available (e.g. elided in text form)
        throw e;
      }
    }
    const p = v.producer;
    if (p && p.op === 'Constant' && isDefaultDomain(p) && p.outputs[0] === v) return constantNodeValue(p, this.registry);
    return undefined;
  }
}

/**
 * The constant tensors of a node's inputs (undefined where an optional input is absent) and their
 * total element count; undefined when some input has no constant value.
 */
export function constantInputs(node: Node, constants: ConstantView): { inputs: (Tensor | undefined)[]; total: number } | undefined {
  const inputs: (Tensor | undefined)[] = [];
  let total = 0;
  for (const v of node.inputs) {
    if (!v) {
      inputs.push(undefined);
      continue;
    }
    const t = constants.get(v);
    if (!t) return undefined;
    total += t.size;
    inputs.push(t);
  }
  return { inputs, total };
}

/** Evaluates a node at compile time; a UserError from the op is tagged with the node. */
export function evaluateAtCompileTime(def: OpDef, node: Node, inputs: (Tensor | undefined)[]): Tensor[] {
  try {
    return def.evaluate({ node, attrs: node.attrs, inputs });
  } catch (e) {
    if (e instanceof UserError) throw e.at({ node: node.label });
    throw e;
  }
}

/** The value of a Constant node (its `value` tensor or one of the `value_*` attributes). */
export function constantNodeValue(n: Node, registry?: OpRegistry): Tensor | undefined {
  const a = n.attrs;
  const t = a.get('value');
  if (t?.kind === 'tensor') return t.value.load();
  const f = a.get('value_float');
  if (f?.kind === 'float' || f?.kind === 'int') return Tensor.scalar('float32', f.value);
  const fs = a.get('value_floats');
  if (fs?.kind === 'floats' || fs?.kind === 'ints') return Tensor.from('float32', [fs.value.length], fs.value);
  const i = a.get('value_int');
  if (i?.kind === 'int') return Tensor.scalar('int64', i.value);
  const is = a.get('value_ints');
  if (is?.kind === 'ints') return Tensor.from('int64', [is.value.length], is.value);
  const s = a.get('value_string');
  if (s?.kind === 'string') return new Tensor('string', [], [s.value]);
  const ss = a.get('value_strings');
  if (ss?.kind === 'strings') return new Tensor('string', [ss.value.length], ss.value);
  const def = registry?.get('Constant');
  if (def) return def.evaluate({ node: n, attrs: n.attrs, inputs: [] })[0];
  return undefined;
}

/** A scalar (or single-element) numeric constant's value, or undefined. */
export function scalarOf(t: Tensor | undefined): number | undefined {
  if (!t || t.strings || t.size !== 1) return undefined;
  return t.data[0];
}

/** Makes names that are unused in the graph (and its subgraphs are not checked: names are per graph). */
export function namer(graph: Graph): (base: string) => string {
  const used = new Set<string>();
  for (const v of graph.inputs) used.add(v.name);
  for (const v of graph.initializers) used.add(v.name);
  for (const n of graph.nodes) {
    for (const o of n.outputs) used.add(o.name);
    if (n.name) used.add(n.name);
  }
  const counters = new Map<string, number>();
  return (base: string) => {
    let k = counters.get(base) ?? 0;
    let name = base;
    while (used.has(name)) name = `${base}_${k++}`;
    counters.set(base, k);
    used.add(name);
    return name;
  };
}

/** Consumers of each value, as sets (cheap removal when nodes are rewritten). */
export function userSets(graph: Graph): Map<Value, Set<Node>> {
  const m = new Map<Value, Set<Node>>();
  for (const n of graph.nodes)
    for (const i of n.inputs) {
      if (!i) continue;
      let s = m.get(i);
      if (!s) m.set(i, (s = new Set()));
      s.add(n);
    }
  return m;
}

/** Ops whose result is not a function of their inputs: never evaluated at compile time. */
export const NONDETERMINISTIC_OPS: ReadonlySet<string> = new Set([
  'RandomNormal',
  'RandomUniform',
  'RandomNormalLike',
  'RandomUniformLike',
  'Multinomial',
  'Bernoulli',
]);

/** True when the node holds a subgraph (If, Loop, Scan). */
export function hasSubgraph(n: Node): boolean {
  for (const [, a] of n.attrs.entries()) if (a.kind === 'graph' || a.kind === 'graphs') return true;
  return false;
}

/**
 * The output of `Shape` (with its start/end attributes) or `Size` of a value with a static shape,
 * or undefined for other nodes or unknown shapes.
 */
export function shapeOpValue(n: Node): Tensor | undefined {
  if (!isDefaultDomain(n) || (n.op !== 'Shape' && n.op !== 'Size')) return undefined;
  const x = n.inputs[0];
  const shape = x?.shape;
  if (!shape || !shape.every((d): d is number => typeof d === 'number')) return undefined;
  if (n.op === 'Size') return Tensor.scalar('int64', shape.reduce((a, b) => a * b, 1));
  const rank = shape.length;
  const clamp = (i: number): number => Math.min(Math.max(i < 0 ? i + rank : i, 0), rank);
  const start = clamp(n.attrs.int('start', 0));
  const end = clamp(n.attrs.int('end', rank));
  const dims = shape.slice(start, Math.max(start, end));
  return Tensor.from('int64', [dims.length], dims);
}

/** True when every node's inputs are defined by earlier nodes (or are not node outputs). */
export function isTopologicallyOrdered(graph: Graph): boolean {
  const inGraph = new Set(graph.nodes);
  const seen = new Set<Node>();
  for (const n of graph.nodes) {
    for (const i of n.inputs) if (i?.producer && inGraph.has(i.producer) && !seen.has(i.producer)) return false;
    seen.add(n);
  }
  return true;
}
