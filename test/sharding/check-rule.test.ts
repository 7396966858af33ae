/**
 * The rule checker itself: it must accept right candidates and reject wrong ones (a checker that
 * accepts everything would make the property test vacuous), run localize rewrites that insert
 * nodes, and expand candidates with the implicit all-R one.
 */
import { Attrs } from '../../src/ir/attrs.js';
import { Node } from '../../src/ir/graph.js';
import { parsePlacement } from '../../src/ir/layout.js';
import { Tensor } from '../../src/ir/tensor.js';
import { expandCandidates, formatCandidate, ruleContextFor } from '../../src/passes/sharding/check-rule.js';
import type { Candidate, ShardingRule } from '../../src/passes/sharding/rule.js';
import { i64, nodeFor, rand, registry, verdict } from './rules-harness.js';

/** 'S(0), R -> P(sum)' → a candidate ('-' = absent input). */
function cand(s: string, local?: string): Candidate {
  const [ins, outs] = s.split('->').map((p) => p.split(',').map((x) => x.trim()).filter(Boolean));
  const pl = (x: string) => (x === '-' ? null : parsePlacement(x));
  return { inputs: ins!.map(pl), outputs: outs!.map((x) => parsePlacement(x)), ...(local ? { local } : {}) };
}

const x = rand([5, 4], 1);
const y = rand([5, 4], 2);

describe('accepts right candidates', () => {
  test.each([
    ['Relu', 'S(0) -> S(0)', [x]],
    ['Relu', 'P(max) -> P(max)', [x]],
    ['Neg', 'P(sum) -> P(sum)', [x]],
    ['Neg', 'P(max) -> P(min)', [x]],
    ['Add', 'P(sum), P(sum) -> P(sum)', [x, y]],
    ['Mul', 'R, P(sum) -> P(sum)', [x, y]],
    ['MatMul', 'S(1), S(0) -> P(sum)', [rand([5, 7], 3), rand([7, 3], 4)]],
  ] as const)('%s %s', (op, c, inputs) => {
    for (const k of [2, 3]) expect(verdict(op, [...inputs], cand(c), k)).toBe('ok');
  });
});

describe('rejects wrong candidates', () => {
  test.each([
    ['Relu is not linear', 'Relu', [x], 'P(sum) -> P(sum)', /output 0 \(P\(sum\)\)/],
    ['Abs is not monotone', 'Abs', [x], 'P(max) -> P(max)', /differ/],
    ['Neg flips max to min', 'Neg', [x], 'P(max) -> P(max)', /differ/],
    ['Add of P and R adds R k times', 'Add', [x, y], 'P(sum), R -> P(sum)', /differ/],
    ['Mul of two partials', 'Mul', [x, y], 'P(sum), P(sum) -> P(sum)', /differ/],
    ['a shard declared on the wrong output dim', 'Relu', [x], 'S(0) -> S(1)', /shape/],
    ['contraction dim sharded on one operand only', 'MatMul', [rand([5, 6], 3), rand([6, 3], 4)], 'S(1), R -> P(sum)', /failed to evaluate|shape/],
    ['softmax over the sharded axis', 'Softmax', [x], 'S(1) -> S(1)', /differ/],
    ['ReduceMean of uneven blocks summed', 'ReduceMean', [x, i64([0])], 'S(0), R -> P(sum)', /differ/],
    ['arity', 'Add', [x, y], 'S(0) -> S(0)', /1 input placements for 2 inputs/],
    ['shard dim out of range', 'Relu', [x], 'S(2) -> S(2)', /rank-2/],
  ] as const)('%s', (_why, op, inputs, c, msg) => {
    // Rejected on at least one of 2 and 3 devices (5 rows split 3+2 and 2+2+1).
    const v = [2, 3].map((k) => verdict(op, [...inputs], cand(c), k));
    expect(v.some((m) => m !== 'ok')).toBe(true);
    expect(v.filter((m) => m !== 'ok').join('\n')).toMatch(msg);
  });

  test('P(sum) on a bool tensor is rejected', () => {
    const b = Tensor.from('bool', [4], [1, 0, 1, 1]);
    expect(verdict('Not', [b], cand('P(sum) -> P(sum)'), 2)).toMatch(/P\(sum\) on a bool tensor/);
  });

  test('a local key without localize is rejected', () => {
    expect(verdict('Relu', [x], cand('S(0) -> S(0)', 'masked-gather'), 2)).toMatch(/no localize/);
  });
});

describe('localize', () => {
  // A hand-written rule for ReduceMean over a sharded dim: scale the local mean by local/global count.
  const rescale: ShardingRule = {
    op: 'ReduceMean',
    candidates: () => [],
    localize(ctx) {
      const scale = ctx.localInputShapes[0]![0]! / (ctx.inputs[0]!.shape![0] as number);
      const out = ctx.node.outputs[0]!;
      const tmp = ctx.newValue('tmp', 'float32', ctx.localOutputShapes[0]!);
      tmp.producer = ctx.node;
      ctx.node.outputs[0] = tmp;
      ctx.insertAfter(new Node('Mul', [tmp, ctx.newConstant('s', Tensor.scalar('float32', scale))], [out], new Attrs(), 'rescale'));
    },
  };

  test('nodes inserted after the node run on every device', () => {
    for (const k of [2, 3]) expect(verdict('ReduceMean', [x, i64([0])], cand('S(0), R -> P(sum)'), k, { keepdims: 0 }, rescale)).toBe('ok');
  });

  test('a wrong rewrite is caught', () => {
    const noop: ShardingRule = { ...rescale, localize: () => {} };
    expect(verdict('ReduceMean', [x, i64([0])], cand('S(0), R -> P(sum)'), 2, { keepdims: 0 }, noop)).toMatch(/differ/);
  });

  test('setConstantInput replaces a constant input for the device', () => {
    // Expand to a global shape: the device's shape input must become its local shape.
    const local: ShardingRule = {
      op: 'Expand',
      candidates: () => [],
      localize: (ctx) => ctx.setConstantInput(1, Tensor.from('int64', [2], ctx.localOutputShapes[0]!)),
    };
    const e = rand([1, 4], 5);
    expect(verdict('Expand', [e, i64([5, 4])], cand('R, R -> S(0)'), 3, {}, local)).toBe('ok');
    expect(verdict('Expand', [e, i64([5, 4])], cand('R, R -> S(0)'), 3, {}, { ...local, localize: () => {} })).toMatch(/shape/);
  });
});

test('expandCandidates appends the all-R candidate once, after the rule\'s own', () => {
  const node = nodeFor('Add', [x, undefined], {}, 1);
  const outs = [x];
  const rule: ShardingRule = { op: 'Add', candidates: () => [cand('S(0), - -> S(0)'), cand('R, - -> R'), cand('S(0), - -> S(0)')] };
  const got = expandCandidates(rule, ruleContextFor(node, [x, undefined], outs, 2)).map(formatCandidate);
  expect(got).toEqual(['[S(0), -] -> [S(0)]', '[R, -] -> [R]']);
  expect(expandCandidates(undefined, ruleContextFor(node, [x, undefined], outs, 2)).map(formatCandidate)).toEqual(['[R, -] -> [R]']);
  expect(registry.has('Add')).toBe(true);
});
