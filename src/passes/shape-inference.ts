/**
 * Shape inference: sets every value's dtype and shape from the OpDef.infer rows, in node order.
 *
 * - Symbolic dims are bound first (`--dim batch=1`: bindDim on every declared shape), so the
 *   inferred shapes are as static as the bindings allow.
 * - infer() sees constant inputs (ctx.constant): initializers, Constant nodes, and values this
 *   pass computes on the way — small nodes whose inputs are all constant are evaluated (without
 *   changing the graph), and Shape/Size of a static shape are known, so shape subgraphs such as
 *   Shape → Gather → Concat → Reshape give Reshape a static target.
 * - A declared type (ONNX value_info, graph outputs) is merged with the inferred one: a different
 *   dtype, rank or static dim is a UserError naming the node; a static dim wins over a symbol.
 * - Subgraphs (If/Loop bodies) are not inferred; their outer node's outputs come from its row.
 */
import { UserError } from '../ir/errors.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { InferContext, OpRegistry, TypeInfo } from '../ir/registry.js';
import { type Dim, type Shape, bindDim, formatShape, isStatic, numel } from '../ir/shape.js';
import type { Pass } from './manager.js';
import { ConstantView, NONDETERMINISTIC_OPS, constantInputs, evaluateAtCompileTime, hasSubgraph, isTopologicallyOrdered, shapeOpValue } from './util.js';

export interface ShapeInferenceOptions {
  /** Values of symbolic dims. */
  bindings?: Record<string, number>;
  /** Leave the outputs of ops missing from the registry as they are (default: UserError). */
  skipUnknownOps?: boolean;
  /** Largest output (elements) evaluated at compile time to feed later infer() calls (default 4096). */
  maxEvaluateElements?: number;
}

function checkBindings(bindings: Record<string, number>): void {
  for (const [k, v] of Object.entries(bindings))
    if (!Number.isInteger(v) || v < 0) throw new UserError(`dim ${JSON.stringify(k)} must be bound to a non-negative integer, got ${v}`);
}

function bindShape(s: Shape | undefined, bindings: Record<string, number>, any: boolean): Shape | undefined {
  return s && any ? s.map((d) => bindDim(d, bindings)) : s;
}

/** Declared and inferred dims merged: static wins; two statics must agree (else undefined). */
function mergeShape(declared: Shape, inferred: Shape): Shape | undefined {
  if (declared.length !== inferred.length) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < declared.length; i++) {
    const d = declared[i]!;
    const f = inferred[i]!;
    if (typeof f === 'number') {
      if (typeof d === 'number' && d !== f) return undefined;
      out.push(f);
    } else out.push(typeof d === 'number' ? d : f);
  }
  return out;
}

const sameShape = (a: Shape | undefined, b: Shape | undefined): boolean =>
  a === b || (!!a && !!b && a.length === b.length && a.every((d, i) => d === b[i]));

/** Infers dtypes and shapes of every value in place; returns whether anything changed. */
export function inferShapes(graph: Graph, registry: OpRegistry, opts: ShapeInferenceOptions = {}): boolean {
  const bindings = opts.bindings ?? {};
  checkBindings(bindings);
  const anyBinding = Object.keys(bindings).length > 0;
  const limit = opts.maxEvaluateElements ?? 4096;
  let changed = false;
  const setType = (v: Value, dtype: Value['dtype'], shape: Shape | undefined): void => {
    if (v.dtype !== dtype || !sameShape(v.shape, shape)) changed = true;
    v.dtype = dtype;
    v.shape = shape;
  };

  if (!isTopologicallyOrdered(graph)) graph.sortTopologically();
  for (const v of graph.inputs) setType(v, v.dtype ?? v.constant?.dtype, bindShape(v.shape, bindings, anyBinding) ?? (v.constant ? [...v.constant.shape] : undefined));
  for (const v of graph.initializers) setType(v, v.constant?.dtype ?? v.dtype, v.constant ? [...v.constant.shape] : bindShape(v.shape, bindings, anyBinding));

  const constants = new ConstantView(graph, registry);
  for (const node of graph.nodes) {
    const def = registry.get(node.op, node.domain);
    if (!def) {
      if (opts.skipUnknownOps) continue;
      registry.forNode(node); // throws the UserError
    }
    const inputs: (TypeInfo | undefined)[] = [];
    let known = true;
    for (const v of node.inputs) {
      if (!v) inputs.push(undefined);
      else if (!v.dtype) known = false;
      else inputs.push({ dtype: v.dtype, shape: v.shape });
    }
    if (!known) {
      for (const o of node.outputs) if (o.shape) setType(o, o.dtype, bindShape(o.shape, bindings, anyBinding));
      continue;
    }
    const ctx: InferContext = {
      node,
      attrs: node.attrs,
      inputs,
      constant: (i) => {
        const v = node.inputs[i];
        return v ? constants.get(v) : undefined;
      },
    };
    let inferred: TypeInfo[];
    try {
      inferred = def!.infer(ctx);
    } catch (e) {
      if (e instanceof UserError) throw e.at({ node: node.label });
      throw e;
    }
    node.outputs.forEach((o, k) => {
      const t = inferred[k];
      if (!t) return;
      const declared = bindShape(o.shape, bindings, anyBinding);
      if (o.dtype && o.dtype !== t.dtype)
        throw new UserError(`output is declared ${o.dtype} but the op gives ${t.dtype}`, { node: node.label, tensor: o.name });
      const shape = bindShape(t.shape, bindings, anyBinding);
      let merged = shape ?? declared;
      if (declared && shape) {
        merged = mergeShape(declared, shape);
        if (!merged)
          throw new UserError(`output is declared with shape ${formatShape(declared)} but the op gives ${formatShape(shape)}`, {
            node: node.label,
            tensor: o.name,
          });
      }
      setType(o, t.dtype, merged);
    });
    evaluateSmall(node, constants, registry, limit);
  }
  return changed;
}

/** Records the outputs of a small all-constant node (or Shape/Size of a static shape) as constants. */
function evaluateSmall(node: Node, constants: ConstantView, registry: OpRegistry, limit: number): void {
  const s = shapeOpValue(node);
  if (s) {
    constants.set(node.outputs[0]!, s);
    return;
  }
  if (NONDETERMINISTIC_OPS.has(node.op) || hasSubgraph(node) || node.op === 'Constant') return;
  for (const o of node.outputs) {
    if (!o.shape || !isStatic(o.shape) || numel(o.shape) > limit) return;
  }
  for (const v of node.inputs) {
    if (!v) continue;
    if (!constants.isConstant(v)) return;
    const c = v.constant;
    if (c && !c.loaded && c.location.kind === 'external') return;
  }
  const given = constantInputs(node, constants);
  if (!given || given.total > 16 * limit) return;
  const outs = evaluateAtCompileTime(registry.forNode(node), node, given.inputs);
  node.outputs.forEach((o, k) => {
    const t = outs[k];
    if (t) constants.set(o, t);
  });
}

export const shapeInferencePass: Pass = {
  name: 'shape-inference',
  run(graph, ctx) {
    return inferShapes(graph, ctx.registry, {
      bindings: ctx.bindings,
      skipUnknownOps: ctx.options['shape-inference.skipUnknownOps'] === true,
    });
  },
};
