/**
 * Pattern recognition: finds the subgraphs that later passes fuse or shard as a unit and
 * annotates their nodes with `meta.pattern = '<Kind>#<n>'` (numbered per kind in graph order;
 * nothing is rewritten yet). Recognised:
 *
 *   LayerNorm  Sub(x, ReduceMean(x)) = d; Div(d, Sqrt(Add(ReduceMean(Pow(d,2) | Mul(d,d)), eps)))
 *              [→ Mul(·, gamma) [→ Add(·, beta)]], or a LayerNormalization node
 *   RMSNorm    x / Sqrt(Add(ReduceMean(Pow(x,2) | Mul(x,x)), eps))  (or x * Reciprocal(...) or
 *              x * Div(1, ...)) [→ Mul(·, weight)], or an RMSNormalization node
 *   GELU       x * 0.5 * (1 + Erf(x / √2)) and 0.5 * x * (1 + Tanh(√(2/π) * (x + 0.044715 x³)))
 *              in any association of the products, or a Gelu node
 *   Attention  MatMul(Q, Transpose(K)) → [Div/Mul by a constant, Add mask, Where mask, Cast]
 *              → Softmax → MatMul(·, V)
 *   SwiGLU     Mul(Mul(x, Sigmoid(x)), up)
 *   RoPE       Add(Mul(x, cos), Mul(Concat(Neg(Slice(x)), Slice(x)), sin))
 *
 * A node belongs to at most one pattern (the first found, in the order above per node). Inner
 * values of a pattern must have no other users. Linear in the graph size.
 */
import type { Graph, Node, Value } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import type { Tensor } from '../ir/tensor.js';
import type { Pass } from './manager.js';
import { MatchContext, MatchState, type Pattern, matchNode } from './rewrite.js';
import { isDefaultDomain, scalarOf } from './util.js';

export type PatternKind = 'Attention' | 'LayerNorm' | 'RMSNorm' | 'GELU' | 'SwiGLU' | 'RoPE';

export interface PatternMatch {
  kind: PatternKind;
  index: number;
  /** The pattern's nodes, in graph order. */
  nodes: Node[];
}

/** The meta key the annotations use. */
export const PATTERN_META = 'pattern';

const near = (want: number, tol = 1e-3) => (t: Tensor): boolean => {
  const s = scalarOf(t);
  return s !== undefined && Math.abs(s - want) <= tol * Math.max(1, Math.abs(want));
};
/** A scalar (single-element) constant near `want` (larger constants are never loaded to check). */
const scalar = (want: number): Pattern => ({ constant: near(want), maxElements: 1 });
const anyScalar: Pattern = { constant: (t) => scalarOf(t) !== undefined, maxElements: 1 };
const square = (name: string): Pattern => ({
  anyOf: [
    { op: 'Pow', inputs: [{ bind: name }, scalar(2)] },
    { op: 'Mul', inputs: [{ bind: name }, { bind: name }] },
  ],
});
/** Sqrt(Add(ReduceMean(square(name)), eps)) */
const rmsDenominator = (name: string): Pattern => ({
  op: 'Sqrt',
  inputs: [{ op: 'Add', commute: true, inputs: [{ op: 'ReduceMean', inputs: [square(name)] }, anyScalar] }],
});

const layerNormCore: Pattern = {
  op: 'Div',
  inputs: [{ op: 'Sub', bind: 'd', inputs: [{ bind: 'x' }, { op: 'ReduceMean', inputs: [{ bind: 'x' }] }] }, rmsDenominator('d')],
};

const rmsNormCores: Pattern[] = [
  { op: 'Div', inputs: [{ bind: 'x' }, rmsDenominator('x')] },
  { op: 'Mul', commute: true, inputs: [{ bind: 'x' }, { op: 'Reciprocal', inputs: [rmsDenominator('x')] }] },
  { op: 'Mul', commute: true, inputs: [{ bind: 'x' }, { op: 'Div', inputs: [scalar(1), rmsDenominator('x')] }] },
];

const erfArg: Pattern = {
  anyOf: [
    { op: 'Div', inputs: [{ bind: 'x' }, scalar(Math.SQRT2)] },
    { op: 'Mul', commute: true, inputs: [{ bind: 'x' }, scalar(Math.SQRT1_2)] },
  ],
};

const cube: Pattern = {
  anyOf: [
    { op: 'Pow', inputs: [{ bind: 'x' }, scalar(3)] },
    { op: 'Mul', commute: true, inputs: [{ bind: 'x' }, { op: 'Mul', inputs: [{ bind: 'x' }, { bind: 'x' }] }] },
  ],
};
const tanhArg: Pattern = {
  op: 'Mul',
  commute: true,
  inputs: [
    { op: 'Add', commute: true, inputs: [{ bind: 'x' }, { op: 'Mul', commute: true, inputs: [cube, scalar(0.044715)] }] },
    scalar(Math.sqrt(2 / Math.PI)),
  ],
};

function tryCore(root: Node, patterns: readonly Pattern[], ctx: MatchContext): { m: MatchState; nodes: Node[] } | undefined {
  for (const p of patterns) {
    const m = new MatchState(ctx);
    if (matchNode(root, p, m)) return { m, nodes: [...m.nodes] };
  }
  return undefined;
}

const isParam = (v: Value | null, ctx: MatchContext): boolean =>
  !!v && (ctx.constants.isConstant(v) || (v.producer?.op === 'Cast' && !!v.producer.inputs[0] && ctx.constants.isConstant(v.producer.inputs[0])));

/** Follows single-use Mul(·, param) [then Add(·, param) when `withBias`] after `v`. */
function affineTail(v: Value, ctx: MatchContext, withBias: boolean): Node[] {
  const out: Node[] = [];
  const ops = withBias ? ['Mul', 'Add'] : ['Mul'];
  for (const op of ops) {
    const u = ctx.singleUser(v);
    if (!u || u.op !== op || u.inputs.length !== 2) break;
    const other = u.inputs[0] === v ? u.inputs[1]! : u.inputs[0]!;
    if (!isParam(other, ctx)) break;
    out.push(u);
    v = u.outputs[0]!;
  }
  return out;
}

/** After `1 + erf(...)` / `1 + tanh(...)`: the products with x and 0.5 (any association). */
function geluTail(start: Value, x: Value, ctx: MatchContext): Node[] | undefined {
  let v = start;
  const nodes: Node[] = [];
  let haveX = false;
  let haveHalf = false;
  const isConst = (w: Value | null, want: number): boolean => {
    const t = w ? ctx.constants.small(w, 1) : undefined;
    return !!t && near(want)(t);
  };
  for (let step = 0; step < 2 && !(haveX && haveHalf); step++) {
    const u = ctx.singleUser(v);
    if (!u || u.inputs.length !== 2) return undefined;
    const other = u.inputs[0] === v ? u.inputs[1]! : u.inputs[0]!;
    if (u.op === 'Mul') {
      const hp = other?.producer;
      if (other === x && !haveX) haveX = true;
      else if (!haveHalf && isConst(other, 0.5)) haveHalf = true;
      else if (!haveX && !haveHalf && hp?.op === 'Mul' && ctx.singleUser(other!) && hp.inputs.includes(x)) {
        const c = hp.inputs[0] === x ? hp.inputs[1]! : hp.inputs[0]!;
        if (!isConst(c, 0.5)) return undefined;
        nodes.push(hp);
        haveX = haveHalf = true;
      } else return undefined;
    } else if (u.op === 'Div' && u.inputs[0] === v && !haveHalf && isConst(other, 2)) haveHalf = true;
    else return undefined;
    nodes.push(u);
    v = u.outputs[0]!;
  }
  return haveX && haveHalf ? nodes : undefined;
}

function geluFrom(root: Node, arg: Pattern, ctx: MatchContext): Node[] | undefined {
  const m = new MatchState(ctx);
  if (!matchNode(root, { op: root.op, inputs: [arg] }, m)) return undefined;
  const x = m.get('x');
  const add = ctx.singleUser(root.outputs[0]!);
  if (!add || add.op !== 'Add' || add.inputs.length !== 2) return undefined;
  const one = add.inputs[0] === root.outputs[0] ? add.inputs[1] : add.inputs[0];
  const t = one ? ctx.constants.small(one, 1) : undefined;
  if (!t || !near(1)(t)) return undefined;
  const tail = geluTail(add.outputs[0]!, x, ctx);
  if (!tail) return undefined;
  return [...m.nodes, add, ...tail];
}

/** Scores chain below Softmax back to MatMul(Q, Transpose(K)). */
function attentionScores(v: Value, ctx: MatchContext, depth: number): Node[] | undefined {
  const p = v.producer;
  if (!p || !isDefaultDomain(p) || !ctx.singleUser(v)) return undefined;
  if (p.op === 'MatMul') {
    const kt = p.inputs[1];
    const t = kt?.producer;
    return t && t.op === 'Transpose' && ctx.singleUser(kt!) ? [t, p] : undefined;
  }
  if (depth === 0) return undefined;
  const via = (i: number): Node[] | undefined => {
    const w = p.inputs[i];
    const r = w ? attentionScores(w, ctx, depth - 1) : undefined;
    return r ? [...r, p] : undefined;
  };
  const isConst = (i: number): boolean => !!p.inputs[i] && ctx.constants.isConstant(p.inputs[i]!);
  switch (p.op) {
    case 'Div':
      return isConst(1) ? via(0) : undefined;
    case 'Mul':
      return (isConst(1) ? via(0) : undefined) ?? (isConst(0) ? via(1) : undefined);
    case 'Add':
      return via(0) ?? via(1);
    case 'Where':
      return via(1) ?? via(2);
    case 'Cast':
      return via(0);
    default:
      return undefined;
  }
}

function attention(softmax: Node, ctx: MatchContext): Node[] | undefined {
  const x = softmax.inputs[0];
  if (!x) return undefined;
  const scores = attentionScores(x, ctx, 4);
  if (!scores) return undefined;
  const pv = ctx.singleUser(softmax.outputs[0]!);
  if (!pv || pv.op !== 'MatMul' || pv.inputs[0] !== softmax.outputs[0]) return undefined;
  return [...scores, softmax, pv];
}

function swiglu(sig: Node, ctx: MatchContext): Node[] | undefined {
  const x = sig.inputs[0];
  const silu = ctx.singleUser(sig.outputs[0]!);
  if (!x || !silu || silu.op !== 'Mul' || !silu.inputs.includes(x)) return undefined;
  const gate = ctx.singleUser(silu.outputs[0]!);
  if (!gate || gate.op !== 'Mul' || gate.inputs.length !== 2) return undefined;
  const up = gate.inputs[0] === silu.outputs[0] ? gate.inputs[1] : gate.inputs[0];
  if (!up || up === silu.outputs[0]) return undefined;
  return [sig, silu, gate];
}

function rope(concat: Node, ctx: MatchContext): Node[] | undefined {
  if (concat.inputs.length !== 2) return undefined;
  const [a, b] = concat.inputs;
  const neg = a?.producer;
  const s1 = neg?.op === 'Neg' && ctx.singleUser(a!) ? neg.inputs[0]?.producer : undefined;
  const s2 = b?.producer;
  if (!s1 || !s2 || s1.op !== 'Slice' || s2.op !== 'Slice' || !ctx.singleUser(neg!.inputs[0]!) || !ctx.singleUser(b!)) return undefined;
  const x = s1.inputs[0];
  if (!x || s2.inputs[0] !== x) return undefined;
  const mulSin = ctx.singleUser(concat.outputs[0]!);
  if (!mulSin || mulSin.op !== 'Mul') return undefined;
  const add = ctx.singleUser(mulSin.outputs[0]!);
  if (!add || add.op !== 'Add' || add.inputs.length !== 2) return undefined;
  const other = add.inputs[0] === mulSin.outputs[0] ? add.inputs[1] : add.inputs[0];
  const mulCos = other?.producer;
  if (!mulCos || mulCos.op !== 'Mul' || !mulCos.inputs.includes(x) || !ctx.singleUser(other!)) return undefined;
  return [s1, neg!, s2, concat, mulSin, mulCos, add];
}

interface Recognizer {
  kind: PatternKind;
  ops: readonly string[];
  match(n: Node, ctx: MatchContext): Node[] | undefined;
}

const RECOGNIZERS: Recognizer[] = [
  { kind: 'Attention', ops: ['Softmax'], match: attention },
  {
    kind: 'LayerNorm',
    ops: ['Div', 'LayerNormalization'],
    match(n, ctx) {
      if (n.op === 'LayerNormalization') return [n];
      const core = tryCore(n, [layerNormCore], ctx);
      return core && [...core.nodes, ...affineTail(n.outputs[0]!, ctx, true)];
    },
  },
  {
    kind: 'RMSNorm',
    ops: ['Div', 'Mul', 'RMSNormalization', 'SimplifiedLayerNormalization'],
    match(n, ctx) {
      if (n.op === 'RMSNormalization' || n.op === 'SimplifiedLayerNormalization') return [n];
      const core = tryCore(n, rmsNormCores, ctx);
      return core && [...core.nodes, ...affineTail(n.outputs[0]!, ctx, false)];
    },
  },
  {
    kind: 'GELU',
    ops: ['Erf', 'Tanh', 'Gelu'],
    match(n, ctx) {
      if (n.op === 'Gelu') return [n];
      return geluFrom(n, n.op === 'Erf' ? erfArg : tanhArg, ctx);
    },
  },
  { kind: 'SwiGLU', ops: ['Sigmoid'], match: swiglu },
  { kind: 'RoPE', ops: ['Concat'], match: rope },
];

/** Finds the patterns (without annotating); matches are numbered per kind in graph order. */
export function findPatterns(graph: Graph, registry?: OpRegistry): PatternMatch[] {
  const ctx = new MatchContext(graph, registry);
  const position = new Map<Node, number>(graph.nodes.map((n, i) => [n, i]));
  const claimed = new Set<Node>();
  const counters = new Map<PatternKind, number>();
  const found: PatternMatch[] = [];
  for (const node of graph.nodes) {
    if (claimed.has(node) || (!isDefaultDomain(node) && !node.op.endsWith('Normalization'))) continue;
    for (const r of RECOGNIZERS) {
      if (!r.ops.includes(node.op)) continue;
      const nodes = r.match(node, ctx);
      if (!nodes || nodes.some((n) => claimed.has(n) || !position.has(n))) continue;
      const unique = [...new Set(nodes)].sort((a, b) => position.get(a)! - position.get(b)!);
      for (const n of unique) claimed.add(n);
      const index = counters.get(r.kind) ?? 0;
      counters.set(r.kind, index + 1);
      found.push({ kind: r.kind, index, nodes: unique });
      break;
    }
  }
  return found;
}

/** Annotates pattern nodes (`meta.pattern = 'LayerNorm#0'`), replacing earlier annotations. */
export function annotatePatterns(graph: Graph, registry?: OpRegistry): PatternMatch[] {
  for (const n of graph.nodes) n.meta.delete(PATTERN_META);
  const found = findPatterns(graph, registry);
  for (const p of found) for (const n of p.nodes) n.meta.set(PATTERN_META, `${p.kind}#${p.index}`);
  return found;
}

export const patternsPass: Pass = {
  name: 'patterns',
  run(graph, ctx) {
    const before = graph.nodes.map((n) => n.meta.get(PATTERN_META));
    const found = annotatePatterns(graph, ctx.registry);
    ctx.logger.debug(`patterns: ${found.map((p) => `${p.kind}#${p.index}`).join(', ') || 'none'}`);
    return graph.nodes.some((n, i) => n.meta.get(PATTERN_META) !== before[i]);
  },
};
