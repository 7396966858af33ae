/**
 * A small (pattern, replacement) rewrite engine, after tinygrad's PatternMatcher: rules are data
 * (a list of `{ name, pattern, rewrite }`), and one engine runs them over the graph to a fixpoint.
 *
 * A Pattern describes a value by the node that produces it: its op, its input patterns (matched
 * recursively; commutative ops may try both orders), names to bind (the same name bound twice
 * must be the same value), and conditions (one use, a compile-time constant, a predicate).
 * A rule's root pattern is matched against each node; its `rewrite` returns replacement values for
 * the root's outputs (or undefined to decline) and may create new nodes and constants with the
 * Rewriter. The engine then redirects every use of the old outputs and removes the root; nodes
 * that became unused are left to dead-code elimination.
 *
 * Graph outputs and values captured by subgraphs are pinned: they keep their Value object. Such a
 * value can only be replaced by an output of a node the rule created (the new node takes over the
 * old value); otherwise the rewrite is not applied.
 *
 * Each sweep is linear in the graph size; sweeps repeat until nothing changes (at most maxSweeps).
 */
import { Attrs, type Attr } from '../ir/attrs.js';
import { DEFAULT_DOMAIN, type Graph, Node, Value, subgraphCaptures } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import { LazyTensor, type Tensor } from '../ir/tensor.js';
import { ConstantView, namer, userSets } from './util.js';

export interface Pattern {
  /** Op (or ops) of the producing node; absent: any value, also a graph input or constant. */
  op?: string | readonly string[];
  /** Domain of the producing node (default: the ONNX domain). */
  domain?: string;
  /** Patterns of the producer's inputs (undefined entries match anything, also an absent input). */
  inputs?: readonly (Pattern | undefined)[];
  /** For two-input ops: also try the inputs swapped. */
  commute?: boolean;
  /** Binds the value to this name; a name bound twice must be the same value. */
  bind?: string;
  /** The value has exactly one use and is not pinned (graph output or subgraph capture). */
  oneUse?: boolean;
  /** The value is a compile-time constant (and satisfies the predicate, when given). */
  constant?: boolean | ((t: Tensor) => boolean);
  /** With a `constant` predicate: the largest constant (elements) loaded to test it (default 65536). */
  maxElements?: number;
  /** Any further condition. */
  where?: (v: Value, m: MatchState) => boolean;
  /** Alternatives: the value must match one of them (the first that does, in order) as well. */
  anyOf?: readonly Pattern[];
}

/** What matching needs to know about the graph. */
export class MatchContext {
  readonly constants: ConstantView;
  readonly users: Map<Value, Set<Node>>;
  readonly pinned: Set<Value>;

  constructor(
    readonly graph: Graph,
    registry?: OpRegistry,
  ) {
    this.constants = new ConstantView(graph, registry);
    this.users = userSets(graph);
    this.pinned = new Set(graph.outputs);
    for (const n of graph.nodes) {
      let hasGraph = false;
      for (const [, a] of n.attrs.entries()) if (a.kind === 'graph' || a.kind === 'graphs') hasGraph = true;
      if (hasGraph) for (const v of subgraphCaptures(n)) this.pinned.add(v);
    }
  }

  uses(v: Value): number {
    return this.users.get(v)?.size ?? 0;
  }

  /** Exactly one consumer and not pinned. */
  singleUser(v: Value): Node | undefined {
    const s = this.users.get(v);
    if (!s || s.size !== 1 || this.pinned.has(v)) return undefined;
    return s.values().next().value;
  }
}

/** Bindings of a match in progress (and of a finished one). */
export class MatchState {
  readonly values = new Map<string, Value>();
  /** Nodes matched by op patterns (the root first), in match order. */
  readonly nodes: Node[] = [];
  constructor(readonly ctx: MatchContext) {}

  save(): Saved {
    return { values: new Map(this.values), nodes: this.nodes.length };
  }
  restore(s: Saved): void {
    this.values.clear();
    for (const [k, v] of s.values) this.values.set(k, v);
    this.nodes.length = s.nodes;
  }

  /** The value bound to `name` (a bug when it is not bound). */
  get(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw new Error(`pattern binding ${name} is not bound`);
    return v;
  }
  /** The node producing the value bound to `name`. */
  node(name: string): Node {
    const n = this.get(name).producer;
    if (!n) throw new Error(`pattern binding ${name} has no producer`);
    return n;
  }
  constant(name: string): Tensor | undefined {
    const v = this.values.get(name);
    return v ? this.ctx.constants.get(v) : undefined;
  }
}

const opMatches = (p: Pattern, n: Node): boolean => {
  if (p.op === undefined) return true;
  const want = p.domain ?? DEFAULT_DOMAIN;
  const domain = n.domain === 'ai.onnx' ? DEFAULT_DOMAIN : n.domain;
  if (domain !== want) return false;
  return typeof p.op === 'string' ? n.op === p.op : p.op.includes(n.op);
};

function matchInputs(n: Node, p: Pattern, m: MatchState): boolean {
  const ps = p.inputs;
  if (!ps) return true;
  const tryOrder = (order: readonly (Pattern | undefined)[]): boolean => {
    const saved = m.save();
    for (let i = 0; i < order.length; i++) {
      const ip = order[i];
      if (ip === undefined) continue;
      const v = n.inputs[i];
      if (!v || !matchValue(v, ip, m)) {
        m.restore(saved);
        return false;
      }
    }
    return true;
  };
  if (tryOrder(ps)) return true;
  if (p.commute && ps.length === 2 && n.inputs.length === 2) return tryOrder([ps[1], ps[0]]);
  return false;
}

function checkValue(v: Value, p: Pattern, m: MatchState): boolean {
  if (p.oneUse && m.ctx.singleUser(v) === undefined) return false;
  if (p.constant === true && !m.ctx.constants.isConstant(v)) return false;
  if (typeof p.constant === 'function') {
    const t = m.ctx.constants.small(v, p.maxElements ?? 1 << 16);
    if (!t || !p.constant(t)) return false;
  }
  if (p.bind !== undefined) {
    const prev = m.values.get(p.bind);
    if (prev && prev !== v) return false;
    m.values.set(p.bind, v);
  }
  return p.where ? p.where(v, m) : true;
}

/** Matches a value against a pattern, adding bindings to `m` (restored when it fails). */
export function matchValue(v: Value, p: Pattern, m: MatchState): boolean {
  const saved = m.save();
  let ok: boolean;
  if (p.anyOf && !p.anyOf.some((alt) => matchValue(v, alt, m))) ok = false;
  else if (p.op !== undefined) {
    const n = v.producer;
    ok = !!n && opMatches(p, n);
    if (ok) m.nodes.push(n!);
    ok = ok && matchInputs(n!, p, m) && checkValue(v, p, m);
  } else ok = checkValue(v, p, m);
  if (!ok) m.restore(saved);
  return ok;
}

/** Matches a node (as the root of a pattern; `bind` binds its first output). */
export function matchNode(n: Node, p: Pattern, m: MatchState): boolean {
  const saved = m.save();
  let ok = opMatches(p, n);
  if (ok) m.nodes.push(n);
  ok = ok && matchInputs(n, p, m) && (n.outputs[0] ? checkValue(n.outputs[0], { ...p, oneUse: false, constant: false }, m) : true);
  if (!ok) m.restore(saved);
  return ok;
}

interface Saved {
  values: Map<string, Value>;
  nodes: number;
}

export interface Match extends MatchState {
  readonly root: Node;
}

/** Creates nodes and constants for a rewrite; they enter the graph only when the rewrite is applied. */
export class Rewriter {
  readonly nodes: Node[] = [];
  readonly constants: Value[] = [];
  constructor(
    readonly root: Node,
    private readonly fresh: (base: string) => string,
  ) {}

  /** A new node; returns its outputs (named after the root's first output, typed like `like`). */
  node(op: string, inputs: (Value | null)[], attrs: Attrs | Record<string, Attr> = {}, opts: { outputs?: number; like?: (Value | undefined)[]; domain?: string } = {}): Value[] {
    const base = this.root.outputs[0]?.name || op;
    const outs: Value[] = [];
    for (let i = 0; i < (opts.outputs ?? 1); i++) {
      const like = opts.like?.[i];
      outs.push(new Value(this.fresh(base), like?.dtype, like?.shape ? [...like.shape] : undefined));
    }
    const a = attrs instanceof Attrs ? attrs.clone() : new Attrs(Object.entries(attrs));
    const name = this.root.name ? this.fresh(`${this.root.name}/${op}`) : '';
    this.nodes.push(new Node(op, inputs, outs, a, name, opts.domain ?? DEFAULT_DOMAIN));
    return outs;
  }

  /** A new constant (initializer). */
  constant(t: Tensor, base = 'const'): Value {
    const v = new Value(this.fresh(base), t.dtype, [...t.shape]);
    v.constant = LazyTensor.of(t);
    this.constants.push(v);
    return v;
  }
}

export interface RewriteRule {
  name: string;
  /** Root pattern; must name an op. */
  pattern: Pattern;
  /** Replacement for each root output (undefined entries: the output must be unused), or undefined to decline. */
  rewrite(m: Match, rw: Rewriter): (Value | undefined)[] | undefined;
}

export interface RewriteOptions {
  registry?: OpRegistry;
  /** Upper bound on sweeps over the graph (default 32). */
  maxSweeps?: number;
  /** Called for each applied rewrite (for logging and tests). */
  onRewrite?: (rule: string, root: Node) => void;
}

/** Runs the rules to a fixpoint; returns how many rewrites were applied. */
export function applyRules(graph: Graph, rules: readonly RewriteRule[], opts: RewriteOptions = {}): number {
  const byOp = new Map<string, RewriteRule[]>();
  for (const r of rules) {
    const ops = r.pattern.op;
    if (ops === undefined) throw new Error(`rewrite rule ${r.name} has no root op`);
    for (const op of typeof ops === 'string' ? [ops] : ops) {
      const l = byOp.get(op);
      if (l) l.push(r);
      else byOp.set(op, [r]);
    }
  }
  const fresh = namer(graph);
  let total = 0;
  for (let sweep = 0; sweep < (opts.maxSweeps ?? 32); sweep++) {
    const ctx = new MatchContext(graph, opts.registry);
    const out: Node[] = [];
    let applied = 0;
    for (const node of graph.nodes) {
      const candidates = byOp.get(node.op);
      let done = false;
      if (candidates)
        for (const rule of candidates) {
          const state = new MatchState(ctx);
          if (!matchNode(node, rule.pattern, state)) continue;
          const m = Object.assign(state, { root: node }) as Match;
          const rw = new Rewriter(node, fresh);
          const repl = rule.rewrite(m, rw);
          if (!repl || !commit(graph, ctx, node, repl, rw, out)) continue;
          opts.onRewrite?.(rule.name, node);
          applied++;
          done = true;
          break;
        }
      if (!done) out.push(node);
    }
    graph.nodes = out;
    total += applied;
    if (!applied) break;
  }
  return total;
}

function commit(graph: Graph, ctx: MatchContext, root: Node, repl: (Value | undefined)[], rw: Rewriter, out: Node[]): boolean {
  const created = new Map<Value, Node>();
  for (const n of rw.nodes) for (const o of n.outputs) created.set(o, n);
  const transfers: [Value, Value][] = []; // [new value, old value it becomes]
  const redirects: [Value, Value][] = []; // [old, new]
  for (const [k, old] of root.outputs.entries()) {
    const nv = repl[k];
    if (nv === old) return false; // a rewrite must replace the root
    const used = ctx.uses(old) > 0;
    if (ctx.pinned.has(old)) {
      if (!nv || !created.has(nv) || ctx.pinned.has(nv) || transfers.some(([t]) => t === nv)) return false;
      transfers.push([nv, old]);
    } else if (!nv) {
      if (used) return false;
    } else if (used) redirects.push([old, nv]);
  }
  // Apply: new constants and nodes enter at the root's position.
  for (const c of rw.constants) graph.initializers.push(c);
  for (const [nv, old] of transfers) {
    const n = created.get(nv)!;
    n.outputs[n.outputs.indexOf(nv)] = old;
    old.producer = n;
    old.dtype ??= nv.dtype;
    old.shape ??= nv.shape;
    for (const m of rw.nodes) m.inputs = m.inputs.map((i) => (i === nv ? old : i));
    for (const r of redirects) if (r[1] === nv) r[1] = old;
  }
  for (const n of rw.nodes) {
    out.push(n);
    for (const i of n.inputs) if (i) addUser(ctx, i, n);
  }
  for (const [old, nv] of redirects) {
    const users = ctx.users.get(old);
    if (!users) continue;
    for (const u of users) {
      u.inputs = u.inputs.map((i) => (i === old ? nv : i));
      addUser(ctx, nv, u);
    }
    ctx.users.delete(old);
  }
  for (const i of root.inputs) if (i) ctx.users.get(i)?.delete(root);
  return true;
}

function addUser(ctx: MatchContext, v: Value, n: Node): void {
  let s = ctx.users.get(v);
  if (!s) ctx.users.set(v, (s = new Set()));
  s.add(n);
}
