/**
 * Constant folding: a deterministic node whose inputs are all compile-time constants is evaluated
 * with its reference implementation and its outputs become constants (initializers, with
 * Value.constant = LazyTensor.of(result)); the node is removed. Also folded:
 * - Constant nodes (their tensor moves to an initializer without being loaded),
 * - Shape and Size of a value with a static shape, even when the value is not constant.
 * Limits: outputs above `maxElements` (default 1M) are not folded, and a large external weight is
 * never loaded just to fold an op on it. Nodes producing graph outputs stay (the runtime computes
 * graph outputs), as do nodes with subgraphs and random ops.
 */
import type { Graph, Node, Value } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import { isStatic, numel } from '../ir/shape.js';
import { LazyTensor, type Tensor } from '../ir/tensor.js';
import type { Pass } from './manager.js';
import {
  ConstantView,
  MAX_EXTERNAL_CONSTANT_LOAD,
  NONDETERMINISTIC_OPS,
  constantInputs,
  constantNodeValue,
  evaluateAtCompileTime,
  hasSubgraph,
  isDefaultDomain,
  isTopologicallyOrdered,
  shapeOpValue,
} from './util.js';

export interface ConstantFoldingOptions {
  /** Largest output (elements) that is folded (default 1 << 20). */
  maxElements?: number;
  /** External constants larger than this (elements) are not loaded to fold (default 65536). */
  maxExternalLoad?: number;
}

/** Folds constant nodes in place; returns the number of nodes removed. */
export function foldConstants(graph: Graph, registry: OpRegistry, opts: ConstantFoldingOptions = {}): number {
  const maxElements = opts.maxElements ?? 1 << 20;
  const maxExternal = opts.maxExternalLoad ?? MAX_EXTERNAL_CONSTANT_LOAD;
  if (!isTopologicallyOrdered(graph)) graph.sortTopologically();
  const constants = new ConstantView(graph, registry);
  const outputs = new Set(graph.outputs);
  const graphInputs = new Set(graph.inputs);
  const kept: Node[] = [];
  let folded = 0;

  const makeConstant = (v: Value, lt: LazyTensor, t?: Tensor): void => {
    v.producer = undefined;
    v.constant = lt;
    v.dtype = lt.dtype;
    v.shape = [...lt.shape];
    if (t) constants.set(v, t);
    graph.initializers.push(v);
  };

  for (const node of graph.nodes) {
    if (!foldable(node, outputs)) {
      kept.push(node);
      continue;
    }
    if (node.op === 'Constant' && isDefaultDomain(node) && node.outputs.length === 1) {
      const a = node.attrs.get('value');
      const out = node.outputs[0]!;
      if (a?.kind === 'tensor') makeConstant(out, a.value);
      else {
        const t = constantNodeValue(node, registry);
        if (!t) {
          kept.push(node);
          continue;
        }
        makeConstant(out, LazyTensor.of(t), t);
      }
      folded++;
      continue;
    }
    const s = shapeOpValue(node);
    if (s) {
      makeConstant(node.outputs[0]!, LazyTensor.of(s), s);
      folded++;
      continue;
    }
    const t = evaluateIfConstant(node, registry, constants, graphInputs, maxElements, maxExternal);
    if (!t) {
      kept.push(node);
      continue;
    }
    node.outputs.forEach((o, k) => {
      if (o.name !== '' && t[k]) makeConstant(o, LazyTensor.of(t[k]!), t[k]);
    });
    folded++;
  }
  graph.nodes = kept;
  return folded;
}

function foldable(node: Node, graphOutputs: ReadonlySet<Value>): boolean {
  if (NONDETERMINISTIC_OPS.has(node.op) || hasSubgraph(node) || node.outputs.length === 0) return false;
  return !node.outputs.some((o) => graphOutputs.has(o));
}

function evaluateIfConstant(
  node: Node,
  registry: OpRegistry,
  constants: ConstantView,
  graphInputs: ReadonlySet<Value>,
  maxElements: number,
  maxExternal: number,
): Tensor[] | undefined {
  const def = registry.get(node.op, node.domain);
  if (!def) return undefined;
  // Cheap checks first: every input constant, no large external weight, outputs not too big.
  for (const v of node.inputs) {
    if (!v) continue;
    if (graphInputs.has(v)) return undefined;
    const c = v.constant;
    if (c) {
      if (c.location.kind === 'external' && !c.loaded && c.size > maxExternal) return undefined;
    } else if (!constants.isConstant(v)) return undefined;
  }
  let outputsKnown = true;
  for (const o of node.outputs) {
    if (o.name === '') continue;
    if (!o.shape || !isStatic(o.shape)) outputsKnown = false;
    else if (numel(o.shape) > maxElements) return undefined;
  }
  const given = constantInputs(node, constants);
  if (!given) return undefined;
  if (!outputsKnown && given.total > maxElements) return undefined;
  const outs = evaluateAtCompileTime(def, node, given.inputs);
  if (outs.some((t) => t.size > maxElements)) return undefined;
  return outs;
}

export const constantFoldingPass: Pass = {
  name: 'constant-folding',
  run(graph, ctx) {
    const maxElements = ctx.options['constant-folding.maxElements'];
    return foldConstants(graph, ctx.registry, { maxElements: typeof maxElements === 'number' ? maxElements : undefined }) > 0;
  },
};
