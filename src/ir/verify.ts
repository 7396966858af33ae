/**
 * The graph verifier: structural invariants every pass must keep, checked in tests after every
 * pass (PassManager's verifyEach) and on imported graphs.
 *
 * - SSA: every named value is defined once (graph input, initializer or node output), a node
 *   output's `producer` is its node, and a value object is not the output of two nodes.
 * - Order: every node input is defined before its use (graph inputs, initializers, constants,
 *   outputs of earlier nodes, or values of enclosing graphs for subgraphs); when the order is
 *   wrong because of a cycle, the cycle's nodes are named.
 * - Graph outputs are defined.
 * - With a registry: every op is known, its input/output counts are within the OpDef bounds, and
 *   where input types are known, the declared output dtypes and shapes agree with infer()
 *   (static dims must be equal; symbolic dims are not compared, as names may differ).
 */
import { UserError } from './errors.js';
import type { Graph, Node, Value } from './graph.js';
import type { InferContext, OpRegistry, TypeInfo } from './registry.js';
import { type Shape, formatShape } from './shape.js';
import type { Tensor } from './tensor.js';

/** Constants up to this many elements are loaded (if external) to give infer() constant inputs. */
const MAX_CONSTANT_LOAD = 1 << 16;

const q = (s: string): string => JSON.stringify(s);

function constantOf(v: Value): Tensor | undefined {
  const c = v.constant;
  if (!c) return undefined;
  if (c.loaded || c.location.kind === 'inline' || c.size <= MAX_CONSTANT_LOAD) {
    try {
      return c.load();
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function shapeConflict(declared: Shape, inferred: Shape): boolean {
  if (declared.length !== inferred.length) return true;
  return declared.some((d, i) => typeof d === 'number' && typeof inferred[i] === 'number' && d !== inferred[i]);
}

/** Finds a cycle among `nodes` (by value dependencies), as node labels; empty when there is none. */
function findCycle(nodes: readonly Node[]): string[] {
  const index = new Map<Node, number>(nodes.map((n, i) => [n, i]));
  const state = new Uint8Array(nodes.length); // 0 new, 1 on stack, 2 done
  const preds = (i: number): number[] => {
    const out: number[] = [];
    for (const v of nodes[i]!.inputs) {
      const p = v?.producer ? index.get(v.producer) : undefined;
      if (p !== undefined) out.push(p);
    }
    return out;
  };
  for (let s = 0; s < nodes.length; s++) {
    if (state[s]) continue;
    const stack: { i: number; next: number[] }[] = [{ i: s, next: preds(s) }];
    state[s] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const p = top.next.pop();
      if (p === undefined) {
        state[top.i] = 2;
        stack.pop();
      } else if (state[p] === 1) {
        const from = stack.findIndex((e) => e.i === p);
        return stack.slice(from).map((e) => nodes[e.i]!.label);
      } else if (state[p] === 0) {
        state[p] = 1;
        stack.push({ i: p, next: preds(p) });
      }
    }
  }
  return [];
}

function verifyInto(graph: Graph, registry: OpRegistry | undefined, outer: ReadonlySet<Value>, problems: string[], prefix: string): void {
  const defined = new Set<Value>(outer);
  const names = new Map<string, string>(); // name → what defined it
  const where = prefix ? `${prefix}: ` : '';
  const defineName = (v: Value, what: string): void => {
    if (v.name === '') return;
    const prev = names.get(v.name);
    if (prev !== undefined) problems.push(`${where}value ${q(v.name)} is defined twice (${prev} and ${what})`);
    else names.set(v.name, what);
  };
  const inputSet = new Set(graph.inputs);
  for (const v of graph.inputs) {
    defineName(v, 'graph input');
    defined.add(v);
  }
  for (const v of graph.initializers) {
    if (!v.constant) problems.push(`${where}initializer ${q(v.name)} has no constant data`);
    if (v.producer) problems.push(`${where}initializer ${q(v.name)} also has a producer node ${q(v.producer.label)}`);
    if (inputSet.has(v)) continue; // an input's default value
    defineName(v, 'initializer');
    defined.add(v);
  }
  const outputsSeen = new Set<Value>();
  for (const n of graph.nodes)
    for (const o of n.outputs) {
      if (outputsSeen.has(o)) problems.push(`${where}value ${q(o.name)} is an output of two nodes`);
      outputsSeen.add(o);
      defineName(o, `output of ${q(n.label)}`);
      if (o.producer !== n) problems.push(`${where}value ${q(o.name)} is an output of ${q(n.label)} but its producer is ${o.producer ? q(o.producer.label) : 'unset'}`);
      if (o.constant) problems.push(`${where}value ${q(o.name)} is an output of ${q(n.label)} and also a constant`);
    }

  let orderBroken = false;
  for (const n of graph.nodes) {
    for (const [i, v] of n.inputs.entries()) {
      if (!v || defined.has(v) || v.constant) continue;
      orderBroken = true;
      const later = v.producer && outputsSeen.has(v);
      problems.push(
        `${where}node ${q(n.label)} input ${i} ${q(v.name)} is ${later ? 'used before it is defined' : 'not defined in the graph'}`,
      );
    }
    if (registry) checkNode(n, registry, problems, where);
    for (const [, a] of n.attrs.entries()) {
      const gs = a.kind === 'graph' ? [a.value] : a.kind === 'graphs' ? a.value : [];
      for (const g of gs) verifyInto(g, registry, defined, problems, `${where}subgraph ${q(g.name)} of ${q(n.label)}`);
    }
    for (const o of n.outputs) defined.add(o);
  }
  if (orderBroken) {
    const cycle = findCycle(graph.nodes);
    if (cycle.length) problems.push(`${where}graph has a cycle through nodes ${cycle.map(q).join(', ')}`);
  }
  for (const v of graph.outputs)
    if (!defined.has(v) && !v.constant) problems.push(`${where}graph output ${q(v.name)} is not defined`);
}

function checkNode(n: Node, registry: OpRegistry, problems: string[], where: string): void {
  const def = registry.get(n.op, n.domain);
  if (!def) {
    problems.push(`${where}node ${q(n.label)}: unsupported op ${n.domain ? n.domain + '.' : ''}${n.op}`);
    return;
  }
  const [imin, imax] = def.inputs;
  const [omin, omax] = def.outputs;
  let ok = true;
  if (n.inputs.length < imin || n.inputs.length > imax) {
    problems.push(`${where}node ${q(n.label)}: ${n.op} takes ${imin}..${imax} inputs, got ${n.inputs.length}`);
    ok = false;
  }
  if (n.outputs.length < omin || n.outputs.length > omax) {
    problems.push(`${where}node ${q(n.label)}: ${n.op} has ${omin}..${omax} outputs, got ${n.outputs.length}`);
    ok = false;
  }
  if (!ok) return;
  const inputs: (TypeInfo | undefined)[] = [];
  for (const v of n.inputs) {
    if (!v) inputs.push(undefined);
    else if (!v.dtype) return; // types unknown: nothing to compare
    else inputs.push({ dtype: v.dtype, shape: v.shape });
  }
  const ctx: InferContext = {
    node: n,
    attrs: n.attrs,
    inputs,
    constant: (i) => {
      const v = n.inputs[i];
      return v ? constantOf(v) : undefined;
    },
  };
  let inferred: TypeInfo[];
  try {
    inferred = def.infer(ctx);
  } catch (e) {
    if (e instanceof UserError) {
      problems.push(`${where}node ${q(n.label)}: ${e.reason}`);
      return;
    }
    throw e;
  }
  n.outputs.forEach((o, k) => {
    const t = inferred[k];
    if (!t || o.name === '') return;
    if (o.dtype && o.dtype !== t.dtype)
      problems.push(`${where}node ${q(n.label)} output ${q(o.name)} is declared ${o.dtype} but infers ${t.dtype}`);
    if (o.shape && t.shape && shapeConflict(o.shape, t.shape))
      problems.push(`${where}node ${q(n.label)} output ${q(o.name)} is declared ${formatShape(o.shape)} but infers ${formatShape(t.shape)}`);
  });
}

/** Every problem found in the graph (empty when it is valid). */
export function graphProblems(graph: Graph, registry?: OpRegistry): string[] {
  const problems: string[] = [];
  verifyInto(graph, registry, new Set(), problems, '');
  return problems;
}

/** Throws a UserError listing the graph's problems (at most 20 shown); returns when it is valid. */
export function verifyGraph(graph: Graph, registry?: OpRegistry): void {
  const problems = graphProblems(graph, registry);
  if (!problems.length) return;
  const shown = problems.slice(0, 20);
  const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
  throw new UserError(`graph ${q(graph.name)} is invalid: ${shown.join('; ')}${more}`);
}
