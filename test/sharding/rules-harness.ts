/**
 * Shared harness of the rule tests (rules-*.test.ts): build a node, evaluate it, list its
 * candidates (rule + implicit all-R) per axis size, and run each through check-rule.ts.
 */
import type { DType } from '../../src/ir/dtype.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { mulberry32 } from '../../src/ir/random.js';
import { Tensor } from '../../src/ir/tensor.js';
import { checkCandidate, expandCandidates, formatCandidate, ruleContextFor } from '../../src/passes/sharding/check-rule.js';
import type { Candidate, ShardingRule } from '../../src/passes/sharding/rule.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { type AttrIn, attrsOf, opNode } from '../helpers/ops.js';

export const registry = createCoreRegistry();
export const rules = createCoreShardingRules();
export const counter = { checked: 0 };

/** Random values in [-1, 1) rounded to 3 decimals (or small integers for integer dtypes). */
export function rand(shape: number[], seed: number, dtype: DType = 'float32'): Tensor {
  const r = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const int = dtype.startsWith('int') || dtype.startsWith('uint');
  return Tensor.from(dtype, shape, Array.from({ length: n }, () => (int ? Math.floor(r() * 10) - (dtype.startsWith('u') ? 0 : 5) : Math.round((r() * 2 - 1) * 1000) / 1000)));
}
/** Integers in [lo, hi). */
export function ints(shape: number[], lo: number, hi: number, seed: number, dtype: DType = 'int64'): Tensor {
  const r = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(dtype, shape, Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo))));
}
export const i64 = (v: number[], shape = [v.length]): Tensor => Tensor.from('int64', shape, v);

export interface CheckOpts {
  nOut?: number;
  constants?: boolean[];
  sizes?: number[];
  /** Use this rule instead of the registry's (checker tests). */
  rule?: ShardingRule;
}

export function nodeFor(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrIn>, nOut: number) {
  return opNode(op, inputs.length, nOut, attrsOf(attrs), `${op.toLowerCase()}_0`, inputs.map((t) => t !== undefined));
}

/** Checks every candidate of `op` on these inputs (all must pass); returns the printed candidates per axis size. */
export function check(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrIn> = {}, opts: CheckOpts = {}): Record<number, string[]> {
  const { nOut = 1, constants = inputs.map(() => true), sizes = [2, 3] } = opts;
  const node = nodeFor(op, inputs, attrs, nOut);
  const rule = opts.rule ?? rules.get(op);
  if (!rule) throw new Error(`no rule for ${op}`);
  const outs = registry.forNode(node).evaluate({ node, attrs: node.attrs, inputs }).slice(0, nOut);
  const res: Record<number, string[]> = {};
  for (const k of sizes) {
    const cands = expandCandidates(rule, ruleContextFor(node, inputs, outs, k, constants));
    const bad = cands.map((c) => checkCandidate({ node, inputs, registry, constants }, rule, c, k)).filter((r) => !r.ok);
    expect(bad.map((b) => b.message)).toEqual([]);
    counter.checked += cands.length;
    res[k] = cands.map(formatCandidate);
  }
  return res;
}

/** `check` with other defaults for its options (e.g. `{ constants: [] }`: no input constant unless told). */
export function checkWith(defaults: CheckOpts): typeof check {
  return (op, inputs, attrs = {}, opts = {}) => check(op, inputs, attrs, { ...defaults, ...opts });
}

/** The checker's verdict on one candidate (which need not come from any rule). */
export function verdict(op: string, inputs: (Tensor | undefined)[], cand: Candidate, k: number, attrs: Record<string, AttrIn> = {}, rule?: ShardingRule, nOut = 1): string {
  const node = nodeFor(op, inputs, attrs, nOut);
  const r = checkCandidate({ node, inputs, registry, constants: inputs.map(() => true) }, rule ?? { op, candidates: () => [] }, cand, k);
  return r.ok ? 'ok' : r.message;
}
