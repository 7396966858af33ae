/**
 * Sharding rules of the conv family, checked on simulated devices at axis sizes 2 and 3: batch,
 * output-channel, input-channel (contraction → P(sum), bias P), grouped/depthwise (whole groups
 * per device, `group` localized), and the pools.
 */
import type { DType } from '../../src/ir/dtype.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { mulberry32 } from '../../src/ir/random.js';
import { Tensor } from '../../src/ir/tensor.js';
import { checkCandidate, expandCandidates, formatCandidate, ruleContextFor } from '../../src/passes/sharding/check-rule.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { type AttrIn, attrsOf, opNode } from '../helpers/ops.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();
let checked = 0;

function rand(shape: number[], seed: number, dtype: DType = 'float32'): Tensor {
  const r = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(dtype, shape, Array.from({ length: n }, () => Math.round((r() * 2 - 1) * 1000) / 1000));
}

interface CheckOpts {
  nOut?: number;
  sizes?: number[];
}

/** Checks every candidate of `op` on these inputs; returns the printed candidates per axis size. */
function check(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrIn> = {}, opts: CheckOpts = {}): Record<number, string[]> {
  const { nOut = 1, sizes = [2, 3] } = opts;
  const node = opNode(op, inputs.length, nOut, attrsOf(attrs), `${op.toLowerCase()}_0`, inputs.map((t) => t !== undefined));
  const rule = rules.get(op);
  expect(rule).toBeDefined();
  const outs = registry.forNode(node).evaluate({ node, attrs: node.attrs, inputs });
  const res: Record<number, string[]> = {};
  for (const k of sizes) {
    const cands = expandCandidates(rule, ruleContextFor(node, inputs, outs, k));
    for (const c of cands) {
      expect(checkCandidate({ node, inputs, registry }, rule!, c, k).message).toBe('');
      checked++;
    }
    res[k] = cands.map(formatCandidate);
  }
  return res;
}

afterAll(() => {
  expect(checked).toBeGreaterThan(60);
  console.log(`rules-conv: ${checked} candidate checks`);
});

describe('Conv', () => {
  test('group 1 with bias: batch, output channels, input channels (P with a P bias), linear P', () => {
    const c = check('Conv', [rand([4, 6, 5, 5], 1), rand([7, 6, 3, 3], 2), rand([7], 3)], { pads: [1, 1, 1, 1], strides: [2, 1] });
    expect(c[3]).toEqual([
      '[S(0), R, R] -> [S(0)]',
      '[R, S(0), S(0)] -> [S(1)]',
      '[S(1), S(1), P(sum)] -> [P(sum)]',
      '[P(sum), R, P(sum)] -> [P(sum)]',
      '[R, P(sum), P(sum)] -> [P(sum)]',
      '[R, R, R] -> [R]',
    ]);
  });

  test('no bias, 1-D', () => {
    const c = check('Conv', [rand([2, 5, 9], 4), rand([4, 5, 2], 5)], { dilations: [2] });
    expect(c[2]).toEqual([
      '[S(0), R] -> [S(0)]',
      '[R, S(0)] -> [S(1)]',
      '[S(1), S(1)] -> [P(sum)]',
      '[P(sum), R] -> [P(sum)]',
      '[R, P(sum)] -> [P(sum)]',
      '[R, R] -> [R]',
    ]);
    expect(c[3]).toContain('[S(1), S(1)] -> [P(sum)]');
  });

  test('depthwise (group = C, multiplier 2): channel shards with the group localized', () => {
    const c = check('Conv', [rand([2, 5, 4, 4], 6), rand([10, 1, 3, 3], 7), rand([10], 8)], { group: 5, pads: [1, 1, 1, 1] });
    expect(c[3]).toContain('[S(1), S(0:2), S(0:2)] -> [S(1:2)]');
    expect(c[2]).toContain('[S(1), S(0:2), S(0:2)] -> [S(1:2)]');
  });

  test('grouped (3 groups of 2 input channels, 4 output channels each)', () => {
    const c = check('Conv', [rand([2, 6, 4, 4], 9), rand([12, 2, 3, 3], 10), rand([12], 11)], { group: 3 });
    expect(c[3]).toEqual([
      '[S(1:2), S(0:4), S(0:4)] -> [S(1:4)]',
      '[P(sum), R, P(sum)] -> [P(sum)]',
      '[R, P(sum), P(sum)] -> [P(sum)]',
      '[R, R, R] -> [R]',
    ]);
  });
});

describe('ConvTranspose', () => {
  test('group 1: batch, output channels (W dim 1), input channels (W dim 0) → P', () => {
    const c = check('ConvTranspose', [rand([3, 4, 3, 3], 12), rand([4, 5, 3, 3], 13), rand([5], 14)], { strides: [2, 2], output_padding: [1, 0] });
    expect(c[3]).toEqual([
      '[S(0), R, R] -> [S(0)]',
      '[R, S(1), S(0)] -> [S(1)]',
      '[S(1), S(0), P(sum)] -> [P(sum)]',
      '[P(sum), R, P(sum)] -> [P(sum)]',
      '[R, P(sum), P(sum)] -> [P(sum)]',
      '[R, R, R] -> [R]',
    ]);
  });

  test('grouped: whole groups per device', () => {
    const c = check('ConvTranspose', [rand([2, 6, 3, 3], 15), rand([6, 2, 2, 2], 16), rand([6], 17)], { group: 3 });
    expect(c[3]).toContain('[S(1:2), S(0:2), S(0:2)] -> [S(1:2)]');
  });
});

describe('pools', () => {
  const x = rand([4, 6, 5, 5], 18);

  test('MaxPool and GlobalMaxPool: batch and channels, no P', () => {
    const mp = check('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    expect(mp[3]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[R] -> [R]']);
    expect(check('GlobalMaxPool', [x])[2]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[R] -> [R]']);
  });

  test('MaxPool with its Indices output (global flat offsets) stays replicated', () => {
    const mp = check('MaxPool', [x], { kernel_shape: [2, 2] }, { nOut: 2 });
    expect(mp[2]).toEqual(['[R] -> [R, R]']);
  });

  test('AveragePool and GlobalAveragePool: batch, channels and P', () => {
    const ap = check('AveragePool', [x], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 });
    expect(ap[3]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[P(sum)] -> [P(sum)]', '[R] -> [R]']);
    expect(check('GlobalAveragePool', [x])[3]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[P(sum)] -> [P(sum)]', '[R] -> [R]']);
  });
});
