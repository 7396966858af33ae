/**
 * IR → ONNX ModelProto (the inverse of import.ts), used for per-shard export: each device graph
 * of a sharding plan is a valid ONNX model, with its collectives in the `shardc.collective`
 * domain (version 1) so other tools can inspect each shard.
 *
 * Decisions:
 * - Ops are in the IR's latest form (inputs instead of attributes, see normalize.ts), so the
 *   default-domain opset is the graph's own, raised to the first version where every node's form
 *   exists (Squeeze axes as input → 13, ReduceMean axes as input → 18, ...); an explicit `opset`
 *   below that is a user error naming the node. The IR version follows the opset.
 * - Fix-ups for the chosen opset: Softmax/LogSoftmax/Hardmax marked `_legacy_axis_2d` keep the
 *   marker's meaning (below 13 they are written as they are; from 13 on they become
 *   Flatten → op(axis=1) → Reshape to the input's shape unless the axis is already the last);
 *   Split from 18 on without a split input gets `num_outputs`. Attributes whose names start with
 *   `_` are IR-internal and dropped from default-domain nodes (kept in other domains, e.g. a
 *   collective's `_group` and `_local_shape`).
 * - Initializers are loaded and written inline (raw_data); an input with a default stays an input
 *   and is also an initializer. Every typed intermediate gets a value_info (dtype and shape,
 *   symbolic dims as dim_param). Subgraphs (If/Loop bodies) are written the same way.
 * - Graph meta: `doc_string` → doc_string, `metadata.<k>` → metadata_props k, other keys except
 *   `producer` → metadata_props as they are.
 */
import onnxProto from 'onnx-proto';
import type { Attr } from '../ir/attrs.js';
import { dtypeToOnnx } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import { COLLECTIVE_DOMAIN, DEFAULT_DOMAIN, type Graph, type Node, type Value } from '../ir/graph.js';
import type { Shape } from '../ir/shape.js';
import type { LazyTensor } from '../ir/tensor.js';
import { tensorToProto } from './tensor-file.js';

const { onnx } = onnxProto;
type IModelProto = onnxProto.onnx.IModelProto;
type IGraphProto = onnxProto.onnx.IGraphProto;
type INodeProto = onnxProto.onnx.INodeProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;
type ITensorProto = onnxProto.onnx.ITensorProto;

export interface ExportOptions {
  /** Default-domain opset (default: the graph's, raised as far as its ops' forms need). */
  opset?: number;
  /** producer_name (default `shardc`). */
  producer?: string;
}

const REDUCE_18 = new Set([
  'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare',
]);
const LEGACY_2D = new Set(['Softmax', 'LogSoftmax', 'Hardmax']);
const LEGACY_ATTR = '_legacy_axis_2d';

/** The first default-domain opset where this node's (latest) form exists. */
function formOpset(n: Node): number {
  const has = (i: number): boolean => !!n.inputs[i];
  switch (n.op) {
    case 'Squeeze':
    case 'Unsqueeze':
    case 'Split':
    case 'ReduceSum':
      return has(1) ? 13 : 1;
    case 'Clip':
      return has(1) || has(2) ? 11 : 1;
    case 'Pad':
      return has(3) ? 18 : has(1) ? 11 : 1;
    case 'Slice':
    case 'TopK':
      return 10;
    case 'Resize':
      return n.inputs.length > 1 && (!has(1) || !has(2)) ? 13 : 11;
    case 'ScatterElements':
      return 11;
    default:
      return REDUCE_18.has(n.op) && has(1) ? 18 : 1;
  }
}

function visitNodes(g: Graph, f: (n: Node) => void): void {
  for (const n of g.nodes) {
    f(n);
    for (const [, a] of n.attrs.entries()) {
      if (a.kind === 'graph') visitNodes(a.value, f);
      else if (a.kind === 'graphs') for (const sg of a.value) visitNodes(sg, f);
    }
  }
}

function irVersionFor(opset: number): number {
  if (opset >= 21) return 10;
  if (opset >= 19) return 9;
  if (opset >= 15) return 8;
  return 7;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function shapeProto(shape: Shape | undefined): onnxProto.onnx.ITensorShapeProto | undefined {
  if (!shape) return undefined;
  return { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
}

function valueInfo(v: Value): IValueInfoProto {
  if (!v.dtype) return { name: v.name };
  return { name: v.name, type: { tensorType: { elemType: dtypeToOnnx(v.dtype), shape: shapeProto(v.shape) } } };
}

function tensorProto(t: LazyTensor, name: string): ITensorProto {
  return tensorToProto(t.load(), name);
}

class Exporter {
  private readonly names = new Set<string>();
  readonly domains = new Set<string>();

  constructor(
    root: Graph,
    readonly opset: number,
  ) {
    const collect = (g: Graph): void => {
      for (const v of g.valuesByName().keys()) this.names.add(v);
      for (const n of g.nodes) {
        if (n.name) this.names.add(n.name);
        for (const [, a] of n.attrs.entries()) {
          if (a.kind === 'graph') collect(a.value);
          else if (a.kind === 'graphs') a.value.forEach(collect);
        }
      }
    };
    collect(root);
  }

  private fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.names.has(name); i++) name = `${hint}_${i}`;
    this.names.add(name);
    return name;
  }

  graph(g: Graph, outer: ReadonlySet<Value>): IGraphProto {
    const defined = new Set<Value>(outer);
    const initializer: ITensorProto[] = [];
    const written = new Set<Value>();
    const writeConstant = (v: Value): void => {
      if (written.has(v) || !v.constant) return;
      written.add(v);
      initializer.push(tensorProto(v.constant, v.name));
    };
    for (const v of g.inputs) defined.add(v);
    for (const v of g.initializers) {
      writeConstant(v);
      defined.add(v);
    }
    const nodes: INodeProto[] = [];
    for (const n of g.nodes) {
      // Constants referenced but not listed among the initializers (e.g. folded values).
      for (const v of n.inputs) if (v?.constant && !defined.has(v)) {
        writeConstant(v);
        defined.add(v);
      }
      nodes.push(...this.node(n, defined));
      for (const o of n.outputs) defined.add(o);
    }
    for (const v of g.outputs) if (v.constant && !defined.has(v)) {
      writeConstant(v);
      defined.add(v);
    }
    const graphIO = new Set<Value>([...g.inputs, ...g.outputs]);
    const valueInfos: IValueInfoProto[] = [];
    for (const n of g.nodes) for (const o of n.outputs) if (o.name && o.dtype && !graphIO.has(o)) valueInfos.push(valueInfo(o));
    const out: IGraphProto = {
      name: g.name,
      node: nodes,
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
      initializer,
      valueInfo: valueInfos,
    };
    return out;
  }

  private node(n: Node, scope: ReadonlySet<Value>): INodeProto[] {
    const domain = n.domain === DEFAULT_DOMAIN ? '' : n.domain;
    this.domains.add(domain);
    const std = domain === '';
    const attribute: IAttributeProto[] = [];
    for (const [name, a] of n.attrs.entries()) {
      if (std && name.startsWith('_')) continue;
      attribute.push(this.attr(name, a, scope));
    }
    if (std && this.opset >= 18 && n.op === 'Split' && !n.inputs[1] && !n.attrs.has('num_outputs'))
      attribute.push({ name: 'num_outputs', type: onnx.AttributeProto.AttributeType.INT, i: n.outputs.length });
    const proto: INodeProto = {
      opType: n.op,
      domain,
      name: n.name,
      input: n.inputs.map((v) => v?.name ?? ''),
      output: n.outputs.map((v) => v.name),
      attribute,
    };
    if (std && LEGACY_2D.has(n.op) && n.attrs.int(LEGACY_ATTR, 0) === 1 && this.opset >= 13) return this.legacy2d(n, proto);
    return [proto];
  }

  /** op with the pre-13 semantics (flatten to 2-D at `axis`) in the opset-13 form. */
  private legacy2d(n: Node, proto: INodeProto): INodeProto[] {
    const x = n.inputs[0]!;
    const axis = n.attrs.int('axis', 1);
    const rank = x.shape?.length;
    const normAxis = rank !== undefined && axis < 0 ? axis + rank : axis;
    if (rank !== undefined && (normAxis === rank - 1 || rank <= 1)) {
      proto.attribute = (proto.attribute ?? []).filter((a) => a.name !== 'axis');
      proto.attribute.push({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 });
      return [proto];
    }
    const base = n.outputs[0]!.name || n.op;
    const shape = this.fresh(`${base}__shape`);
    const flat = this.fresh(`${base}__flat`);
    const flatOut = this.fresh(`${base}__flat_out`);
    const INT = onnx.AttributeProto.AttributeType.INT;
    const name = (s: string): string => (n.name ? this.fresh(`${n.name}__${s}`) : '');
    return [
      { opType: 'Shape', domain: '', name: name('shape'), input: [x.name], output: [shape] },
      { opType: 'Flatten', domain: '', name: name('flatten'), input: [x.name], output: [flat], attribute: [{ name: 'axis', type: INT, i: axis }] },
      { ...proto, input: [flat], output: [flatOut], attribute: [{ name: 'axis', type: INT, i: 1 }] },
      { opType: 'Reshape', domain: '', name: name('reshape'), input: [flatOut, shape], output: [n.outputs[0]!.name] },
    ];
  }

  private attr(name: string, a: Attr, scope: ReadonlySet<Value>): IAttributeProto {
    const T = onnx.AttributeProto.AttributeType;
    switch (a.kind) {
      case 'int':
        return { name, type: T.INT, i: a.value };
      case 'float':
        return { name, type: T.FLOAT, f: a.value };
      case 'string':
        return { name, type: T.STRING, s: utf8(a.value) };
      case 'ints':
        return { name, type: T.INTS, ints: a.value.slice() };
      case 'floats':
        return { name, type: T.FLOATS, floats: a.value.slice() };
      case 'strings':
        return { name, type: T.STRINGS, strings: a.value.map(utf8) };
      case 'tensor':
        return { name, type: T.TENSOR, t: tensorProto(a.value, '') };
      case 'tensors':
        return { name, type: T.TENSORS, tensors: a.value.map((t) => tensorProto(t, '')) };
      case 'graph':
        return { name, type: T.GRAPH, g: this.graph(a.value, scope) };
      case 'graphs':
        return { name, type: T.GRAPHS, graphs: a.value.map((g) => this.graph(g, scope)) };
    }
  }
}

/** The ModelProto of a graph (see the decisions above). */
export function exportModelProto(graph: Graph, opts: ExportOptions = {}): IModelProto {
  let need = 1;
  let needBy: Node | undefined;
  visitNodes(graph, (n) => {
    if (n.domain !== DEFAULT_DOMAIN) return;
    const v = formOpset(n);
    if (v > need) {
      need = v;
      needBy = n;
    }
  });
  if (opts.opset !== undefined && (!Number.isInteger(opts.opset) || opts.opset < 1))
    throw new UserError(`opset must be a positive integer, got ${opts.opset}`);
  if (opts.opset !== undefined && opts.opset < need)
    throw new UserError(`cannot export at opset ${opts.opset}: ${needBy!.op} in this form needs opset ${need} or later`, { node: needBy!.label });
  const opset = opts.opset ?? Math.max(graph.opsets[DEFAULT_DOMAIN] ?? 17, need);

  const ex = new Exporter(graph, opset);
  const g = ex.graph(graph, new Set());
  const opsetImport: onnxProto.onnx.IOperatorSetIdProto[] = [{ domain: '', version: opset }];
  for (const d of [...ex.domains].sort()) {
    if (d === '') continue;
    opsetImport.push({ domain: d, version: d === COLLECTIVE_DOMAIN ? 1 : graph.opsets[d] ?? 1 });
  }
  const metadataProps: onnxProto.onnx.IStringStringEntryProto[] = [];
  let docString: string | undefined;
  for (const [k, v] of [...graph.meta.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (k === 'producer') continue;
    if (k === 'doc_string') docString = v;
    else metadataProps.push({ key: k.startsWith('metadata.') ? k.slice('metadata.'.length) : k, value: v });
  }
  return {
    irVersion: irVersionFor(opset),
    producerName: opts.producer ?? 'shardc',
    producerVersion: '0.1.0',
    opsetImport,
    docString,
    metadataProps,
    graph: g,
  };
}

/** IR graph → ONNX bytes. */
export function exportModel(graph: Graph, opts: ExportOptions = {}): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(exportModelProto(graph, opts))).finish();
}
