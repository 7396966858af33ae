/**
 * Canonicalisation: local rewrites that remove no-ops and merge chains, as a rule table run by
 * the rewrite engine (rewrite.ts). Each rule keeps the graph's meaning exactly.
 *
 *   identity            Identity(x)                      → x
 *   dropout-inference   Dropout(x[, ratio, false])        → x        (mask output unused)
 *   cast-same-dtype     Cast(x, to=dtype(x))              → x
 *   reshape-reshape     Reshape(Reshape(x, _), s)         → Reshape(x, s)   (s constant, no 0 entries unless allowzero)
 *   reshape-noop        Reshape(x, s) with out shape = static shape(x) → x
 *   transpose-transpose Transpose(Transpose(x, p1), p2)   → Transpose(x, p1∘p2), or x when that is the identity
 *   transpose-identity  Transpose(x, identity perm)       → x
 *
 * When the replaced value is a graph output, "→ x" becomes an Identity node that keeps the name.
 */
import { Attrs } from '../ir/attrs.js';
import { dtypeFromOnnx } from '../ir/dtype.js';
import type { Graph, Value } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import { isStatic, shapeEq } from '../ir/shape.js';
import type { Pass } from './manager.js';
import { type Match, type RewriteRule, Rewriter, applyRules } from './rewrite.js';

/** `x`, or an Identity of x when the root's output must keep its Value (graph output). */
function forward(m: Match, rw: Rewriter, x: Value, k = 0): Value | undefined {
  const old = m.root.outputs[k]!;
  if (!m.ctx.pinned.has(old)) return x;
  if (m.root.op === 'Identity') return undefined; // already the minimal form
  return rw.node('Identity', [x], {}, { like: [old] })[0];
}

const isIdentityPerm = (p: readonly number[]): boolean => p.every((d, i) => d === i);

function permOf(attrs: Attrs, rank: number | undefined): number[] | undefined {
  const p = attrs.maybeInts('perm');
  if (p) return p;
  if (rank === undefined) return undefined;
  return Array.from({ length: rank }, (_, i) => rank - 1 - i);
}

export const canonicalRules: RewriteRule[] = [
  {
    name: 'identity',
    pattern: { op: 'Identity', inputs: [{ bind: 'x' }] },
    rewrite: (m, rw) => {
      const r = forward(m, rw, m.get('x'));
      return r ? [r] : undefined;
    },
  },
  {
    name: 'dropout-inference',
    pattern: { op: 'Dropout', inputs: [{ bind: 'x' }] },
    rewrite: (m, rw) => {
      const training = m.root.inputs[2];
      if (training) {
        const t = m.ctx.constants.get(training);
        if (!t || t.data[0] !== 0) return undefined;
      }
      const r = forward(m, rw, m.get('x'));
      return r ? [r, undefined] : undefined;
    },
  },
  {
    name: 'cast-same-dtype',
    pattern: { op: 'Cast', inputs: [{ bind: 'x' }] },
    rewrite: (m, rw) => {
      const x = m.get('x');
      const to = dtypeFromOnnx(m.root.attrs.int('to', -1));
      if (!x.dtype || to !== x.dtype) return undefined;
      const r = forward(m, rw, x);
      return r ? [r] : undefined;
    },
  },
  {
    name: 'reshape-reshape',
    pattern: { op: 'Reshape', inputs: [{ op: 'Reshape', inputs: [{ bind: 'x' }] }, { bind: 's', constant: true }] },
    rewrite: (m, rw) => {
      const s = m.constant('s');
      if (!s || (m.root.attrs.int('allowzero', 0) === 0 && Array.from(s.data).includes(0))) return undefined;
      return rw.node('Reshape', [m.get('x'), m.get('s')], m.root.attrs, { like: [m.root.outputs[0]] });
    },
  },
  {
    name: 'reshape-noop',
    pattern: { op: 'Reshape', inputs: [{ bind: 'x' }] },
    rewrite: (m, rw) => {
      const x = m.get('x');
      const y = m.root.outputs[0]!;
      if (!x.shape || !y.shape || !isStatic(x.shape) || !shapeEq(x.shape, y.shape) || x.dtype !== y.dtype) return undefined;
      const r = forward(m, rw, x);
      return r ? [r] : undefined;
    },
  },
  {
    name: 'transpose-transpose',
    pattern: { op: 'Transpose', inputs: [{ op: 'Transpose', inputs: [{ bind: 'x' }], bind: 't' }] },
    rewrite: (m, rw) => {
      const x = m.get('x');
      const p1 = permOf(m.node('t').attrs, x.shape?.length);
      const p2 = permOf(m.root.attrs, p1?.length);
      if (!p1 || !p2 || p1.length !== p2.length) return undefined;
      const perm = p2.map((i) => p1[i]!);
      if (isIdentityPerm(perm)) {
        const r = forward(m, rw, x);
        return r ? [r] : undefined;
      }
      return rw.node('Transpose', [x], new Attrs([['perm', { kind: 'ints', value: perm }]]), { like: [m.root.outputs[0]] });
    },
  },
  {
    name: 'transpose-identity',
    pattern: { op: 'Transpose', inputs: [{ bind: 'x' }] },
    rewrite: (m, rw) => {
      const x = m.get('x');
      const p = permOf(m.root.attrs, x.shape?.length);
      if (!p || !isIdentityPerm(p)) return undefined;
      const r = forward(m, rw, x);
      return r ? [r] : undefined;
    },
  },
];

export interface CanonicalizeOptions {
  registry?: OpRegistry;
  /** Extra rules, tried after the built-in ones. */
  rules?: readonly RewriteRule[];
  onRewrite?: (rule: string, root: import('../ir/graph.js').Node) => void;
}

/** Applies the canonical rules to a fixpoint; returns the number of rewrites. */
export function canonicalize(graph: Graph, opts: CanonicalizeOptions = {}): number {
  return applyRules(graph, [...canonicalRules, ...(opts.rules ?? [])], { registry: opts.registry, onRewrite: opts.onRewrite });
}

export const canonicalizePass: Pass = {
  name: 'canonicalize',
  run(graph, ctx) {
    const n = canonicalize(graph, {
      registry: ctx.registry,
      onRewrite: (rule, root) => ctx.logger.debug(`canonicalize: ${rule} at ${root.label}`),
    });
    return n > 0;
  },
};
