/**
 * Opset normalisation, applied once at import: every default-domain node is rewritten into the
 * LATEST form of its op, so op implementations know only the latest semantics.
 *
 * | op (opset)                              | rewrite                                                  |
 * |-----------------------------------------|----------------------------------------------------------|
 * | Squeeze, Unsqueeze (< 13)               | attr `axes` → int64 input 1                              |
 * | Split (< 13)                            | attr `split` → int64 input 1                             |
 * | ReduceSum (< 13), other Reduce* (< 18)  | attr `axes` → int64 input 1                              |
 * | Clip (< 11)                             | attrs `min`/`max` → scalar inputs 1/2 (dtype of input 0 when known, else float32) |
 * | Pad (< 11)                              | attr `pads` → int64 input 1, `value` → scalar input 2; `mode` stays |
 * | Slice (< 10)                            | attrs `starts`/`ends`/`axes` → int64 inputs 1/2/3        |
 * | TopK (< 10)                             | attr `k` → int64 input 1 of shape [1]                    |
 * | Upsample (7–9), Resize (10)             | Resize(X, roi='', scales, sizes=''), `coordinate_transformation_mode`=asymmetric, `nearest_mode`=floor (the pre-11 semantics) |
 * | Resize (11, 12)                         | an empty constant `scales` next to `sizes` → absent      |
 * | Scatter (9, 10)                         | renamed ScatterElements (same semantics)                 |
 * | Dropout (< 12)                          | attrs `ratio`, `is_test` dropped (inference: identity)   |
 * | Softmax, LogSoftmax, Hardmax (< 13)     | int attr `_legacy_axis_2d` = 1, `axis` defaults to 1 explicitly |
 *
 * New constant inputs are Values with `.constant` set, appended to the graph's initializers under
 * fresh unique names (`<node output>__<what>`). Subgraphs are normalised with the same opset.
 */
import type { Attr } from '../ir/attrs.js';
import { DEFAULT_DOMAIN, type Graph, type Node, Value } from '../ir/graph.js';
import { LazyTensor, Tensor } from '../ir/tensor.js';

const REDUCE_18 = new Set([
  'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare',
]);

export interface NormalizeContext {
  /** Default-domain opset version of the model. */
  opset: number;
  /** Returns a name not used anywhere in the model, derived from `hint`. */
  uniqueName(hint: string): string;
}

interface Rewriter {
  graph: Graph;
  ctx: NormalizeContext;
}

function constInput(r: Rewriter, node: Node, what: string, t: Tensor): Value {
  const base = node.outputs.find((o) => o.name)?.name ?? node.name ?? node.op;
  const v = new Value(r.ctx.uniqueName(`${base}__${what}`), t.dtype, t.shape.slice());
  v.constant = LazyTensor.of(t);
  r.graph.initializers.push(v);
  return v;
}

const int64s = (xs: number[]): Tensor => Tensor.from('int64', [xs.length], xs);

/** Removes attribute `name` and returns it. */
function take(node: Node, name: string): Attr | undefined {
  const a = node.attrs.get(name);
  node.attrs.delete(name);
  return a;
}

const numsOf = (a: Attr | undefined): number[] | undefined => (a && (a.kind === 'ints' || a.kind === 'floats') ? a.value : undefined);
const numOf = (a: Attr | undefined): number | undefined => (a && (a.kind === 'int' || a.kind === 'float') ? a.value : undefined);

/** Sets input `i`, padding with absent (null) inputs. */
function setInput(node: Node, i: number, v: Value | null): void {
  while (node.inputs.length < i) node.inputs.push(null);
  node.inputs[i] = v;
}

/** Trailing absent inputs are dropped (ONNX form). */
function trimInputs(node: Node): void {
  while (node.inputs.length > 0 && node.inputs[node.inputs.length - 1] === null) node.inputs.pop();
}

function attrToIntsInput(r: Rewriter, node: Node, attr: string, index: number): void {
  const xs = numsOf(take(node, attr));
  if (xs !== undefined) setInput(node, index, constInput(r, node, attr, int64s(xs)));
}

function scalarLike(node: Node, v: number): Tensor {
  const d = node.inputs[0]?.dtype;
  return Tensor.scalar(d && d !== 'string' ? d : 'float32', v);
}

function rewriteNode(r: Rewriter, node: Node): void {
  const v = r.ctx.opset;
  switch (node.op) {
    case 'Squeeze':
    case 'Unsqueeze':
      if (v < 13) attrToIntsInput(r, node, 'axes', 1);
      break;
    case 'Split':
      if (v < 13) attrToIntsInput(r, node, 'split', 1);
      break;
    case 'ReduceSum':
      if (v < 13) attrToIntsInput(r, node, 'axes', 1);
      break;
    case 'Clip':
      if (v < 11) {
        const lo = numOf(take(node, 'min'));
        const hi = numOf(take(node, 'max'));
        if (lo !== undefined) setInput(node, 1, constInput(r, node, 'min', scalarLike(node, lo)));
        if (hi !== undefined) setInput(node, 2, constInput(r, node, 'max', scalarLike(node, hi)));
      }
      break;
    case 'Pad':
      if (v < 11) {
        attrToIntsInput(r, node, 'pads', 1);
        const value = numOf(take(node, 'value'));
        if (value !== undefined && value !== 0) setInput(node, 2, constInput(r, node, 'value', scalarLike(node, value)));
      }
      break;
    case 'Slice':
      if (v < 10) {
        attrToIntsInput(r, node, 'starts', 1);
        attrToIntsInput(r, node, 'ends', 2);
        attrToIntsInput(r, node, 'axes', 3);
      }
      break;
    case 'TopK':
      if (v < 10) {
        const k = numOf(take(node, 'k'));
        if (k !== undefined) setInput(node, 1, constInput(r, node, 'k', int64s([k])));
      }
      break;
    case 'Upsample':
    case 'Resize':
      if (node.op === 'Upsample' || v < 11) legacyResize(r, node);
      else if (v < 13) {
        const scales = node.inputs[2];
        if (scales?.constant && scales.constant.size === 0 && node.inputs[3]) node.inputs[2] = null;
      }
      break;
    case 'Scatter':
      node.op = 'ScatterElements';
      break;
    case 'Dropout':
      if (v < 12) {
        node.attrs.delete('ratio');
        node.attrs.delete('is_test');
      }
      break;
    case 'Softmax':
    case 'LogSoftmax':
    case 'Hardmax':
      if (v < 13) {
        node.attrs.set('_legacy_axis_2d', { kind: 'int', value: 1 });
        if (!node.attrs.has('axis')) node.attrs.set('axis', { kind: 'int', value: 1 });
      }
      break;
    default:
      if (REDUCE_18.has(node.op) && v < 18) attrToIntsInput(r, node, 'axes', 1);
  }
  trimInputs(node);
}

/** Upsample (7: scales attr; 9: scales input) and Resize-10 (X, scales) → latest Resize. */
function legacyResize(r: Rewriter, node: Node): void {
  const x = node.inputs[0] ?? null;
  let scales = node.inputs[1] ?? null;
  const attrScales = numsOf(take(node, 'scales'));
  if (attrScales !== undefined) scales = constInput(r, node, 'scales', Tensor.from('float32', [attrScales.length], attrScales));
  node.op = 'Resize';
  node.inputs = [x, null, scales];
  let mode = node.attrs.has('mode') ? node.attrs.string('mode') : 'nearest';
  if (mode === 'bilinear' || mode === 'trilinear') mode = 'linear';
  node.attrs.set('mode', { kind: 'string', value: mode });
  node.attrs.set('coordinate_transformation_mode', { kind: 'string', value: 'asymmetric' });
  if (mode === 'nearest') node.attrs.set('nearest_mode', { kind: 'string', value: 'floor' });
}

/** Normalises every default-domain node of `graph` and its subgraphs to the latest op forms. */
export function normalizeGraph(graph: Graph, ctx: NormalizeContext): void {
  const r: Rewriter = { graph, ctx };
  for (const node of graph.nodes) {
    for (const [, a] of node.attrs.entries()) {
      if (a.kind === 'graph') normalizeGraph(a.value, ctx);
      else if (a.kind === 'graphs') for (const g of a.value) normalizeGraph(g, ctx);
    }
    if (node.domain === DEFAULT_DOMAIN) rewriteNode(r, node);
  }
}
