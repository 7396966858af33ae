/**
 * ONNX import: ModelProto bytes → IR Graph.
 *
 * Decisions (also in DESIGN.md):
 * - The bytes are scanned (proto.ts) before decoding: malformed or too deeply nested files are
 *   user errors, never a stack overflow or a raw protobuf error.
 * - Default-domain opset must be 7–21 (`ai.onnx` is the same domain as ''); a model declaring an
 *   older opset is accepted when none of its ops changed form between that opset and 7 (the
 *   ONNX node tests declare e.g. opset 1 for Not and 6 for Selu), see CHANGED_UP_TO_7.
 * - Initializers become constant Values (LazyTensor: inline data decoded on first load, external
 *   data read on first load). An initializer that is also listed as a graph input is, for IR
 *   version ≥ 4, an *input with a default*: the Value stays in `graph.inputs` with `.constant`
 *   set (and is listed in `graph.initializers` too); for IR version < 4 every initializer had to
 *   be listed as an input, so such inputs are plain constants and dropped from `graph.inputs`.
 * - `Constant` nodes stay Constant op nodes (their `value*` attribute holds the data); the
 *   constant-folding pass turns them into constant values. This keeps the importer simple and a
 *   model that is a single Constant node runs as is.
 * - Shapes come from graph inputs/outputs and value_info: dim_value → number, dim_param → symbol
 *   (characters outside the symbol grammar become '_'), a dim with neither → a fresh symbol
 *   `unk__<n>`; a value without a shape keeps `shape` undefined. An element type outside ONNX's
 *   DataType enum, or a declared shape of more than 2^53 elements, is a user error.
 * - Value names are SSA: a name defined twice in one graph is an error; subgraphs may use (and
 *   shadow) names of enclosing graphs. A node input naming nothing is an error; cycles are
 *   errors (Graph.sortTopologically); nodes are stored in topological order.
 * - Older opsets are rewritten to the latest op forms (normalize.ts).
 * - Unsupported ops are not the importer's concern: `unsupportedOps` lists them all at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Attr, Attrs } from '../ir/attrs.js';
import { dtypeFromOnnx } from '../ir/dtype.js';
import { type ErrorLocation, UserError } from '../ir/errors.js';
import { DEFAULT_DOMAIN, Graph, Node, Value } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import { type Dim, type Shape, isSymbolName } from '../ir/shape.js';
import type { LazyTensor } from '../ir/tensor.js';
import { normalizeGraph } from './normalize.js';
import {
  type AttributeProto,
  DEFAULT_MAX_DEPTH,
  type GraphProto,
  type NodeProto,
  type TypeProto,
  bytesToString,
  decodeModelProto,
  hasField,
  onnx,
  toNum,
} from './proto.js';
import { tensorFromProto } from './tensor-file.js';

export const MIN_OPSET = 1;
export const MAX_OPSET = 21;

/**
 * Below opset 7 only ops whose form has not changed since then are accepted: for each op that
 * changed at some version ≤ 7, the last such version. A node of such an op in a model whose
 * opset is older than that version uses a pre-7 form (consumed_inputs, broadcast attributes,
 * Reshape's shape attribute...) that is not normalised: a user error. Ops not listed (Not,
 * GlobalMaxPool, Softmax...) have had their opset-7 form since before.
 */
const CHANGED_UP_TO_7: Record<string, number> = {
  Abs: 6, Add: 7, And: 7, AveragePool: 7, BatchNormalization: 7, Cast: 6, Ceil: 6, Clip: 6, Concat: 4, Div: 7,
  Dropout: 7, Elu: 6, Equal: 7, Exp: 6, Floor: 6, GRU: 7, Gemm: 7, GlobalLpPool: 2, Greater: 7, HardSigmoid: 6,
  InstanceNormalization: 6, LSTM: 7, LeakyRelu: 6, Less: 7, Log: 6, LpPool: 2, Max: 6, Mean: 6, Min: 6, Mul: 7,
  Neg: 6, Or: 7, PRelu: 7, Pad: 2, Pow: 7, RNN: 7, Reciprocal: 6, Relu: 6, Reshape: 5, Selu: 6, Sigmoid: 6,
  Split: 2, Sqrt: 6, Sub: 7, Sum: 6, Tanh: 6, Tile: 6, Upsample: 7, Xor: 7,
};

function checkPre7Ops(g: Graph, opset: number, file: string): void {
  for (const n of g.nodes) {
    const changed = n.domain === DEFAULT_DOMAIN ? CHANGED_UP_TO_7[n.op] : undefined;
    if (changed !== undefined && opset < changed)
      throw new UserError(`${n.op} at opset ${opset} uses a form older than opset ${changed}, which is not supported (supported: opset 7–${MAX_OPSET})`, {
        file,
        node: n.label,
      });
    for (const [, a] of n.attrs.entries()) {
      if (a.kind === 'graph') checkPre7Ops(a.value, opset, file);
      else if (a.kind === 'graphs') for (const sg of a.value) checkPre7Ops(sg, opset, file);
    }
  }
}

export interface Model {
  graph: Graph;
  irVersion: number;
  /** Opset version per domain ('' = the default ONNX domain). */
  opsets: Record<string, number>;
  producer: string;
  file: string;
}

export interface ImportOptions {
  /** The model's path (for messages). */
  file: string;
  /** Folder that external data locations are relative to; default: the folder of `file`. */
  baseDir?: string;
  /** Maximum nesting of subgraphs / nested types (default 100). */
  maxDepth?: number;
}

/** Reads and imports an ONNX model file; external data is resolved next to it. */
export function loadModel(file: string, opts: { maxDepth?: number } = {}): Model {
  let bytes: Uint8Array;
  try {
    const st = fs.statSync(file);
    if (st.isDirectory()) throw new UserError('is a directory, not an ONNX file', { file });
    bytes = fs.readFileSync(file);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_FS_FILE_TOO_LARGE')
      throw new UserError('the model file is larger than 2 GiB, the protobuf limit; store its weights as external data', { file });
    throw new UserError(code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? (e as Error).message})`, { file });
  }
  return importModel(bytes, { file, baseDir: path.dirname(path.resolve(file)), maxDepth: opts.maxDepth });
}

/** Imports ModelProto bytes. */
export function importModel(bytes: Uint8Array, opts: ImportOptions): Model {
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  const proto = decodeModelProto(bytes, { file: opts.file, maxDepth });
  const file = opts.file;
  if (!proto.graph) throw new UserError('the model has no graph', { file });

  const opsets: Record<string, number> = {};
  for (const o of proto.opsetImport ?? []) {
    const domain = o.domain === 'ai.onnx' ? DEFAULT_DOMAIN : o.domain ?? DEFAULT_DOMAIN;
    opsets[domain] = toNum(o.version);
  }
  const opset = opsets[DEFAULT_DOMAIN];
  if (opset === undefined) {
    if (usesDefaultDomain(proto.graph)) throw new UserError('the model imports no opset for the default ONNX domain', { file });
  } else if (!(opset >= MIN_OPSET && opset <= MAX_OPSET)) {
    throw new UserError(`opset ${opset} of the default ONNX domain is not supported (supported: ${MIN_OPSET}–${MAX_OPSET})`, { file });
  }

  const imp = new Importer(file, opts.baseDir ?? path.dirname(path.resolve(file)), maxDepth, toNum(proto.irVersion), opsets);
  imp.collectNames(proto.graph, 1);
  const graph = imp.importGraph(proto.graph, undefined, 1);
  graph.name = proto.graph.name || 'main';
  if (opset !== undefined && opset < 7) checkPre7Ops(graph, opset, file);
  if (opset !== undefined) normalizeGraph(graph, { opset, uniqueName: (h) => imp.uniqueName(h) });

  const producer = [proto.producerName, proto.producerVersion].filter((s) => s).join(' ');
  if (producer) graph.meta.set('producer', producer);
  if (proto.docString) graph.meta.set('doc_string', proto.docString);
  for (const p of proto.metadataProps ?? []) if (p.key) graph.meta.set(`metadata.${p.key}`, p.value ?? '');
  return { graph, irVersion: toNum(proto.irVersion), opsets, producer, file };
}

function usesDefaultDomain(g: GraphProto): boolean {
  for (const n of g.node ?? []) {
    if (!n.domain || n.domain === 'ai.onnx') return true;
    for (const a of n.attribute ?? []) for (const sg of [a.g, ...(a.graphs ?? [])]) if (sg && usesDefaultDomain(sg)) return true;
  }
  return false;
}

/** Name lookup through enclosing graphs. */
class Scope {
  constructor(
    readonly values: Map<string, Value>,
    readonly parent?: Scope,
  ) {}
  lookup(name: string): Value | undefined {
    return this.values.get(name) ?? this.parent?.lookup(name);
  }
}

const nodeLabel = (n: NodeProto): string => n.name || `${n.opType ?? '?'}(${(n.output ?? []).join(',')})`;

/** dim_param → a symbol of the shape grammar (products like `batch*seq` are kept). */
function symbolOf(param: string): string {
  const factors = param.split('*');
  if (factors.every((f) => isSymbolName(f) || /^\d+$/.test(f)) && factors.some((f) => isSymbolName(f))) return param;
  let s = param.replace(/[^A-Za-z0-9_.:-]/g, '_');
  if (!/^[A-Za-z_]/.test(s)) s = `_${s}`;
  return s;
}

class Importer {
  private readonly names = new Set<string>();
  private unknownDims = 0;

  constructor(
    readonly file: string,
    readonly baseDir: string,
    readonly maxDepth: number,
    readonly irVersion: number,
    readonly opsets: Record<string, number>,
  ) {}

  /** Records every name used in the model so generated names never collide. */
  collectNames(g: GraphProto, depth: number): void {
    if (depth > this.maxDepth) throw new UserError(`subgraphs nest deeper than ${this.maxDepth} levels`, { file: this.file });
    for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) if (v.name) this.names.add(v.name);
    for (const t of g.initializer ?? []) if (t.name) this.names.add(t.name);
    for (const n of g.node ?? []) {
      for (const o of n.output ?? []) if (o) this.names.add(o);
      for (const a of n.attribute ?? []) for (const sg of [a.g, ...(a.graphs ?? [])]) if (sg) this.collectNames(sg, depth + 1);
    }
  }

  uniqueName(hint: string): string {
    let name = hint;
    for (let i = 1; this.names.has(name); i++) name = `${hint}_${i}`;
    this.names.add(name);
    return name;
  }

  private shapeOf(t: TypeProto | null | undefined, loc: ErrorLocation): { dtype?: Value['dtype']; shape?: Shape } {
    const tt = t?.tensorType;
    if (!tt) return {};
    const code = tt.elemType ?? 0;
    const dtype = code ? dtypeFromOnnx(code) : undefined;
    // A code outside ONNX's DataType enum (0–23) is no type at all; known ONNX types shardc lacks
    // (complex, float8, int4) stay undefined and fail where they are used.
    if (dtype === undefined && (code < 0 || code > 23)) throw new UserError(`unknown element type ${code}`, loc);
    if (!hasField(tt, 'shape')) return { dtype };
    const shape: Dim[] = [];
    for (const d of tt.shape!.dim ?? []) {
      if (hasField(d, 'dimValue')) {
        const n = toNum(d.dimValue);
        if (!Number.isSafeInteger(n) || n < 0) throw new UserError(`invalid dimension ${n} in the declared shape`, loc);
        shape.push(n);
      } else if (hasField(d, 'dimParam') && d.dimParam) {
        shape.push(symbolOf(d.dimParam));
      } else {
        shape.push(`unk__${this.unknownDims++}`);
      }
    }
    const statics = shape.filter((d): d is number => typeof d === 'number');
    if (!Number.isSafeInteger(statics.reduce((a, b) => a * b, 1)))
      throw new UserError(`declared shape [${shape.join(',')}] holds more than 2^53 elements`, loc);
    return { dtype, shape };
  }

  private newValue(name: string, t: TypeProto | null | undefined, loc: ErrorLocation): Value {
    const { dtype, shape } = this.shapeOf(t, loc);
    return new Value(name, dtype, shape);
  }

  importGraph(gp: GraphProto, outer: Scope | undefined, depth: number): Graph {
    const file = this.file;
    if (depth > this.maxDepth) throw new UserError(`subgraphs nest deeper than ${this.maxDepth} levels`, { file });
    const g = new Graph(gp.name || 'main');
    g.opsets = { ...this.opsets };
    const local = new Map<string, Value>();
    const define = (v: Value, what: string, node?: string): void => {
      if (local.has(v.name))
        throw new UserError(`value ${JSON.stringify(v.name)} is defined twice (${what}); names must be unique (SSA)`, { file, node, tensor: v.name });
      local.set(v.name, v);
    };

    if ((gp.sparseInitializer ?? []).length > 0)
      throw new UserError('sparse initializers are not supported', { file, tensor: gp.sparseInitializer![0]!.values?.name ?? undefined });

    // Graph inputs.
    const inputs = new Map<string, Value>();
    for (const vi of gp.input ?? []) {
      const name = vi.name ?? '';
      if (!name) throw new UserError('a graph input has no name', { file });
      const v = this.newValue(name, vi.type, { file, tensor: name });
      define(v, 'graph input');
      inputs.set(name, v);
      g.inputs.push(v);
    }

    // Initializers (inputs with defaults for IR ≥ 4; plain constants for IR < 4).
    const seenInit = new Set<string>();
    for (const tp of gp.initializer ?? []) {
      const name = tp.name ?? '';
      if (!name) throw new UserError('an initializer has no name', { file });
      if (seenInit.has(name)) throw new UserError(`initializer ${JSON.stringify(name)} is defined twice`, { file, tensor: name });
      seenInit.add(name);
      const lazy: LazyTensor = tensorFromProto(tp, { file, baseDir: this.baseDir });
      const asInput = inputs.get(name);
      if (asInput) {
        asInput.constant = lazy;
        asInput.dtype ??= lazy.dtype;
        asInput.shape ??= lazy.shape.slice();
        g.initializers.push(asInput);
        if (this.irVersion < 4) g.inputs = g.inputs.filter((v) => v !== asInput);
        continue;
      }
      const v = new Value(name, lazy.dtype, lazy.shape.slice());
      v.constant = lazy;
      define(v, 'initializer');
      g.initializers.push(v);
    }

    // Node outputs (all defined up front, so node order in the file does not matter).
    const nodes = gp.node ?? [];
    const outputs: Value[][] = nodes.map((n) =>
      (n.output ?? []).map((name) => {
        const v = new Value(name ?? '');
        if (v.name) define(v, `output of node ${JSON.stringify(nodeLabel(n))}`, nodeLabel(n));
        return v;
      }),
    );
    // Declared types of intermediates.
    for (const vi of gp.valueInfo ?? []) {
      const v = vi.name ? local.get(vi.name) : undefined;
      if (!v || v.constant) continue;
      const { dtype, shape } = this.shapeOf(vi.type, { file, tensor: vi.name ?? undefined });
      v.dtype ??= dtype;
      v.shape ??= shape;
    }

    const scope = new Scope(local, outer);
    nodes.forEach((np, i) => {
      const label = nodeLabel(np);
      const op = np.opType ?? '';
      if (!op) throw new UserError('node has no op_type', { file, node: label });
      const ins = (np.input ?? []).map((name) => {
        if (!name) return null;
        const v = scope.lookup(name);
        if (!v) throw new UserError(`input ${JSON.stringify(name)} is not defined by any node, input or initializer`, { file, node: label });
        return v;
      });
      const attrs = new Attrs([], label);
      for (const ap of np.attribute ?? []) {
        const name = ap.name ?? '';
        if (!name) throw new UserError('an attribute has no name', { file, node: label });
        if (attrs.has(name)) throw new UserError(`attribute '${name}' is given twice`, { file, node: label });
        const a = this.attr(ap, label, scope, depth);
        if (a) attrs.set(name, a);
      }
      const domain = !np.domain || np.domain === 'ai.onnx' ? DEFAULT_DOMAIN : np.domain;
      g.addNode(new Node(op, ins, outputs[i]!, attrs, np.name ?? '', domain));
    });

    // Graph outputs: any value visible here.
    for (const vi of gp.output ?? []) {
      const name = vi.name ?? '';
      const v = name ? scope.lookup(name) : undefined;
      if (!v) throw new UserError(`graph output ${JSON.stringify(name)} is not defined`, { file, tensor: name });
      const { dtype, shape } = this.shapeOf(vi.type, { file, tensor: name });
      v.dtype ??= dtype;
      v.shape ??= shape;
      g.outputs.push(v);
    }

    try {
      g.sortTopologically();
    } catch (e) {
      if (e instanceof UserError) throw e.at({ file });
      throw e;
    }
    return g;
  }

  private attr(a: AttributeProto, node: string, scope: Scope, depth: number): Attr | undefined {
    const T = onnx.AttributeProto.AttributeType;
    const loc: ErrorLocation = { file: this.file, node };
    let type = a.type ?? T.UNDEFINED;
    if (type === T.UNDEFINED) type = inferAttrType(a);
    switch (type) {
      case T.FLOAT:
        return { kind: 'float', value: a.f ?? 0 };
      case T.INT:
        return { kind: 'int', value: toNum(a.i) };
      case T.STRING:
        return { kind: 'string', value: bytesToString(a.s) };
      case T.FLOATS:
        return { kind: 'floats', value: [...(a.floats ?? [])] };
      case T.INTS:
        return { kind: 'ints', value: (a.ints ?? []).map(toNum) };
      case T.STRINGS:
        return { kind: 'strings', value: (a.strings ?? []).map(bytesToString) };
      case T.TENSOR:
        if (!a.t) throw new UserError(`attribute '${a.name}' is a TENSOR without a tensor`, loc);
        return { kind: 'tensor', value: tensorFromProto(a.t, { file: this.file, baseDir: this.baseDir, node }) };
      case T.TENSORS:
        return { kind: 'tensors', value: (a.tensors ?? []).map((t) => tensorFromProto(t, { file: this.file, baseDir: this.baseDir, node })) };
      case T.GRAPH:
        if (!a.g) throw new UserError(`attribute '${a.name}' is a GRAPH without a graph`, loc);
        return { kind: 'graph', value: this.importGraph(a.g, scope, depth + 1) };
      case T.GRAPHS:
        return { kind: 'graphs', value: (a.graphs ?? []).map((sg) => this.importGraph(sg, scope, depth + 1)) };
      case T.SPARSE_TENSOR:
      case T.SPARSE_TENSORS:
        throw new UserError(`attribute '${a.name}': sparse tensor attributes are not supported`, loc);
      case T.TYPE_PROTO:
      case T.TYPE_PROTOS:
        // Only ops on sequences/optionals (unsupported here) take type attributes: dropped, so
        // the model still imports and the registry check names the op.
        return undefined;
      default:
        throw new UserError(`attribute '${a.name}' has unknown type ${type}`, loc);
    }
  }
}

/** Attribute type of files written before AttributeProto.type existed (IR < 2). */
function inferAttrType(a: AttributeProto): number {
  const T = onnx.AttributeProto.AttributeType;
  if (hasField(a, 'f')) return T.FLOAT;
  if (hasField(a, 'i')) return T.INT;
  if (hasField(a, 's')) return T.STRING;
  if (hasField(a, 't')) return T.TENSOR;
  if (hasField(a, 'g')) return T.GRAPH;
  if ((a.floats ?? []).length) return T.FLOATS;
  if ((a.ints ?? []).length) return T.INTS;
  if ((a.strings ?? []).length) return T.STRINGS;
  if ((a.tensors ?? []).length) return T.TENSORS;
  if ((a.graphs ?? []).length) return T.GRAPHS;
  return T.UNDEFINED;
}

/**
 * Ops of `graph` (subgraphs included) that `registry` lacks, grouped by op with the nodes that
 * use them, so a user sees every missing op at once.
 */
export function unsupportedOps(graph: Graph, registry: OpRegistry): { op: string; domain: string; nodes: string[] }[] {
  const found = new Map<string, { op: string; domain: string; nodes: string[] }>();
  const visit = (g: Graph): void => {
    for (const n of g.nodes) {
      if (!registry.has(n.op, n.domain)) {
        const key = `${n.domain}::${n.op}`;
        let e = found.get(key);
        if (!e) found.set(key, (e = { op: n.op, domain: n.domain, nodes: [] }));
        e.nodes.push(n.label);
      }
      for (const [, a] of n.attrs.entries()) {
        if (a.kind === 'graph') visit(a.value);
        else if (a.kind === 'graphs') a.value.forEach(visit);
      }
    }
  };
  visit(graph);
  return [...found.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}
