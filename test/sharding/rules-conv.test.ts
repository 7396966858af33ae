/**
 * Sharding rules of the conv family, checked on simulated devices at axis sizes 2 and 3: batch,
 * output-channel, input-channel (contraction → P(sum), bias P), grouped/depthwise (whole groups
 * per device, `group` localized), and the pools.
 */
import { checkWith, counter, rand } from './rules-harness.js';

const check = checkWith({ constants: [] });

afterAll(() => {
  expect(counter.checked).toBeGreaterThan(60);
  console.log(`rules-conv: ${counter.checked} candidate checks`);
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
