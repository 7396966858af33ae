/**
 * Unit analysis: for every (value, dim), the block size its shards must use, so that a hidden dim
 * that a Reshape later splits into heads × head_dim is only ever cut between whole heads.
 *
 * Rules state shard units as RELATIVE factors (rule.ts): within one candidate all sharded dims are
 * split in the same number of blocks, and S(d:f) has blocks f times as large as a plain S(d').
 * So every candidate of every node is a set of equations between the dims it shards:
 *
 *     unit(v_i, d_i) / f_i  =  unit(v_j, d_j) / f_j        for all sharded entries i, j
 *
 * (e.g. Reshape [b,s,h·hd] → [b,s,h,hd] with `in S(2:hd), out S(2)` says
 * unit(in, 2) = hd · unit(out, 2)). The analysis collects the equations of all candidates of all
 * nodes (for one mesh axis: rules may skip dims smaller than the axis) in a weighted union-find:
 * each (value, dim) points to a parent with the rational ratio unit(self)/unit(parent). Two dims
 * joined twice with different ratios are a conflict: the first link (graph order, candidate order)
 * is kept and the conflict recorded; a candidate that disagrees with the result simply realises
 * with other units (propagate.ts) and resharding fixes the mismatch.
 *
 * Absolute units: within a component, unit(x) = ratio(x → root) · c, with c the smallest number
 * making every unit of the component an integer (the ratios' denominators' lcm, then everything
 * divided by the gcd), so the smallest consistent integers. A unit that does not divide its dim's
 * size falls back to the gcd of both (recorded as a conflict). Dims in no candidate have unit 1.
 *
 * Example (GPT layer, tp): q = x·Wq [b,s,h·hd] → Reshape [b,s,h,hd] → heads dim 1 after Transpose;
 * the attention MatMuls link q's and k's heads dims with ratio 1, the Reshapes give Wq's dim 1,
 * q's hidden dim and the merged attention output unit hd, and the output projection's weight
 * dim 0 (its contraction with the merged output) unit hd too. With GQA, the repeat of kv heads
 * (Expand + Reshape [b,kv,rep,s,hd] → [b,kv·rep,s,hd]) gives the query heads unit `rep`, so a
 * device holding kv head j also holds query heads j·rep … j·rep+rep-1.
 *
 * This file also builds the RuleContext of a graph node and lists a node's candidates (the rule's
 * plus the implicit all-R one, as check-rule.ts expandCandidates), shared with propagation. The
 * lists are memoised per structural key (op, attributes, operand types and which operands are
 * constants; see candidateKey), since a transformer's layers repeat the same nodes: a hit also
 * needs the constants the rule read to be equal, and a rule that looked at the node itself (its
 * name, its meta) is never memoised. Candidate objects are then shared between nodes: read-only.
 */
import type { Graph, Node, Value } from '../../ir/graph.js';
import type { Placement } from '../../ir/layout.js';
import type { TypeInfo } from '../../ir/registry.js';
import type { Tensor } from '../../ir/tensor.js';
import type { Attr } from '../../ir/attrs.js';
import { candidateEq, replicatedCandidate } from './check-rule.js';
import type { Candidate, RuleContext, ShardingRuleRegistry } from './rule.js';

const typeOf = (v: Value | null): TypeInfo | undefined => (v && v.dtype ? { dtype: v.dtype, shape: v.shape } : undefined);

/** The RuleContext of a node of a statically shaped graph on an axis of `axisSize` devices. */
export function ruleContextOf(node: Node, axisSize: number): RuleContext {
  return {
    node,
    attrs: node.attrs,
    inputs: node.inputs.map(typeOf),
    outputs: node.outputs.map((o) => typeOf(o) ?? { dtype: 'float32' }),
    constant: (i: number): Tensor | undefined => node.inputs[i]?.constant?.load(),
    axisSize,
  };
}

interface Memo {
  /** The rule's candidates, deduplicated, all-R not yet added. */
  rows: Candidate[];
  /** Constants the rule read, by input index (undefined: it asked, there was none). */
  read: Map<number, Tensor | undefined>;
}

/** Per rule registry: structural key → memoised rows (null: the rule looked at the node; never memoised). */
const memos = new WeakMap<ShardingRuleRegistry, Map<string, Memo | null>>();

const typeKey = (v: Value | null | undefined): string =>
  v ? `${v.dtype ?? '?'}[${(v.shape ?? ['?']).join(',')}]${v.constant ? 'c' : ''}` : '-';

function attrKey(a: Attr): string | undefined {
  switch (a.kind) {
    case 'graph':
    case 'graphs':
    case 'tensor':
    case 'tensors':
      return undefined;
    default:
      return `${a.kind}:${JSON.stringify(a.value, (_k, x: unknown) => (typeof x === 'number' && (Object.is(x, -0) || !Number.isFinite(x)) ? `#${String(x)}${Object.is(x, -0) ? '-0' : ''}` : x))}`;
  }
}

/** What a rule's candidates may depend on besides constants' data; undefined: do not memoise. */
function candidateKey(node: Node, axisSize: number): string | undefined {
  const parts = [node.domain, node.op, String(axisSize), node.inputs.map(typeKey).join(';'), node.outputs.map(typeKey).join(';')];
  for (const [k, a] of node.attrs.entries()) {
    const ak = attrKey(a);
    if (ak === undefined) return undefined;
    parts.push(`${k}=${ak}`);
  }
  return parts.join('|');
}

function sameTensor(a: Tensor | undefined, b: Tensor | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.dtype !== b.dtype || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  if (a.strings || b.strings) return !!a.strings && !!b.strings && a.strings.every((x, i) => x === b.strings![i]);
  for (let i = 0; i < a.data.length; i++) if (!Object.is(a.data[i], b.data[i])) return false;
  return true;
}

/** A node's candidates on one axis (relative units): the rule's rows in order, then all-R. */
export function nodeCandidates(node: Node, rules: ShardingRuleRegistry, axisSize: number): Candidate[] {
  const rule = rules.get(node.op, node.domain);
  let rows: Candidate[] = [];
  if (rule) {
    let memo = memos.get(rules);
    if (!memo) memos.set(rules, (memo = new Map()));
    const key = candidateKey(node, axisSize);
    const hit = key === undefined ? null : memo.get(key);
    const base = ruleContextOf(node, axisSize);
    if (hit && [...hit.read].every(([i, t]) => sameTensor(base.constant(i), t))) rows = hit.rows;
    else {
      // The rule sees a context that notes what it reads: the node itself, or constants.
      let sawNode = false;
      const read = new Map<number, Tensor | undefined>();
      const ctx: RuleContext = {
        ...base,
        get node(): Node {
          sawNode = true;
          return node;
        },
        constant: (i: number): Tensor | undefined => {
          const t = base.constant(i);
          read.set(i, t);
          return t;
        },
      };
      for (const c of rule.candidates(ctx)) if (!rows.some((o) => candidateEq(o, c))) rows.push(c);
      if (key !== undefined && hit !== null) memo.set(key, sawNode ? null : { rows, read });
    }
  }
  const out = rows.slice();
  const r = replicatedCandidate(node);
  if (!out.some((o) => candidateEq(o, r))) out.push(r);
  return out.filter((c) => c.inputs.length === node.inputs.length && c.outputs.length === node.outputs.length);
}

/** Sharded entries of a candidate: [value, dim, relative factor]. */
export function shardedEntries(node: Node, c: Candidate): [Value, number, number][] {
  const out: [Value, number, number][] = [];
  const add = (v: Value | null | undefined, p: Placement | null | undefined): void => {
    if (v && p && p.kind === 'shard') out.push([v, p.dim, p.unit ?? 1]);
  };
  c.inputs.forEach((p, i) => add(node.inputs[i], p));
  c.outputs.forEach((p, i) => add(node.outputs[i], p));
  return out;
}

const gcd = (a: number, b: number): number => {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
};
const lcm = (a: number, b: number): number => (a / gcd(a, b)) * b;

/** A positive rational num/den in lowest terms. */
interface Ratio {
  num: number;
  den: number;
}
const ratio = (num: number, den: number): Ratio => {
  const g = gcd(num, den) || 1;
  return { num: num / g, den: den / g };
};
const mul = (a: Ratio, b: Ratio): Ratio => ratio(a.num * b.num, a.den * b.den);
const div = (a: Ratio, b: Ratio): Ratio => ratio(a.num * b.den, a.den * b.num);
const req = (a: Ratio, b: Ratio): boolean => a.num === b.num && a.den === b.den;

export class UnitAnalysis {
  private readonly index = new Map<Value, number[]>();
  private readonly keys: [Value, number][] = [];
  private readonly parent: number[] = [];
  /** unit(self) / unit(parent) */
  private readonly weight: Ratio[] = [];
  private units?: number[];
  /** Links that disagreed with earlier ones, and units that did not divide their dim. */
  readonly conflicts: string[] = [];

  private id(v: Value, d: number): number {
    let ids = this.index.get(v);
    if (!ids) this.index.set(v, (ids = []));
    let i = ids[d];
    if (i === undefined) {
      i = this.keys.length;
      ids[d] = i;
      this.keys.push([v, d]);
      this.parent.push(i);
      this.weight.push({ num: 1, den: 1 });
    }
    return i;
  }

  /** Root of i and unit(i)/unit(root), with path compression. */
  private find(i: number): [number, Ratio] {
    const p = this.parent[i]!;
    if (p === i) return [i, { num: 1, den: 1 }];
    const [root, w] = this.find(p);
    this.weight[i] = mul(this.weight[i]!, w);
    this.parent[i] = root;
    return [root, this.weight[i]!];
  }

  /** Records unit(a)/fa = unit(b)/fb. Returns false on a conflict (nothing changed). */
  link(a: Value, da: number, fa: number, b: Value, db: number, fb: number): boolean {
    this.units = undefined;
    const [ra, wa] = this.find(this.id(a, da));
    const [rb, wb] = this.find(this.id(b, db));
    const want = ratio(fa, fb); // unit(a)/unit(b)
    if (ra === rb) {
      if (req(div(wa, wb), want)) return true;
      this.conflicts.push(`${a.name}[${da}]:${b.name}[${db}] should be ${fa}:${fb}, earlier links make it ${wa.num * wb.den}:${wa.den * wb.num}`);
      return false;
    }
    // unit(rb)/unit(ra) = wa·fb / (fa·wb)
    this.parent[rb] = ra;
    this.weight[rb] = div(mul(wa, ratio(fb, 1)), mul(ratio(fa, 1), wb));
    return true;
  }

  private solve(): number[] {
    const n = this.keys.length;
    const rel = Array.from({ length: n }, (_, i) => this.find(i));
    const den = new Map<number, number>();
    for (const [root, w] of rel) den.set(root, lcm(den.get(root) ?? 1, w.den));
    const ints = rel.map(([root, w]) => (w.num * den.get(root)!) / w.den);
    const g = new Map<number, number>();
    rel.forEach(([root], i) => g.set(root, gcd(g.get(root) ?? 0, ints[i]!)));
    const units = rel.map(([root], i) => ints[i]! / g.get(root)!);
    units.forEach((u, i) => {
      const [v, d] = this.keys[i]!;
      const size = v.shape?.[d];
      if (typeof size === 'number' && size > 0 && size % u !== 0) {
        const f = gcd(size, u);
        this.conflicts.push(`${v.name}[${d}]: unit ${u} does not divide ${size}; using ${f}`);
        units[i] = f;
      }
    });
    return units;
  }

  /** The absolute shard unit of dim d of v (1 when no candidate shards it). */
  unit(v: Value, d: number): number {
    const i = this.index.get(v)?.[d];
    if (i === undefined) return 1;
    this.units ??= this.solve();
    return this.units[i]!;
  }
}

/** Runs the analysis over every candidate of every node (candidates as nodeCandidates lists them). */
export function analyseUnits(graph: Graph, candidates: ReadonlyMap<Node, readonly Candidate[]>): UnitAnalysis {
  const ua = new UnitAnalysis();
  for (const node of graph.nodes) {
    for (const c of candidates.get(node) ?? []) {
      const e = shardedEntries(node, c);
      for (let i = 1; i < e.length; i++) ua.link(e[0]![0], e[0]![1], e[0]![2], e[i]![0], e[i]![1], e[i]![2]);
    }
  }
  return ua;
}
