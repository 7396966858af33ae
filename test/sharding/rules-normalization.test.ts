/**
 * Normalization-family sharding rules: candidates pinned by their printed form and checked on 2
 * and 3 simulated devices against the unsharded evaluation.
 */
import { Tensor } from '../../src/ir/tensor.js';
import { check, counter, rand } from './rules-harness.js';

afterAll(() => {
  expect(counter.checked).toBeGreaterThan(30);
});

const positive = (n: number): Tensor => Tensor.from('float32', [n], Array.from({ length: n }, (_, i) => 0.5 + i));

test('Softmax/LogSoftmax/Hardmax: every dim but the axis; legacy 2-D form: only dims before the axis', () => {
  for (const op of ['Softmax', 'LogSoftmax', 'Hardmax'])
    expect(check(op, [rand([5, 4, 3], 1)], { axis: 1 })[3]).toEqual(['[S(0)] -> [S(0)]', '[S(2)] -> [S(2)]', '[R] -> [R]']);
  expect(check('Softmax', [rand([5, 4, 3], 1)], { axis: 1, _legacy_axis_2d: 1 })[2]).toEqual(['[S(0)] -> [S(0)]', '[R] -> [R]']);
  expect(check('Softmax', [rand([5, 4, 3], 1)], { _legacy_axis_2d: 1 })[2]).toEqual(['[S(0)] -> [S(0)]', '[R] -> [R]']);
  expect(check('LogSoftmax', [rand([5, 4, 3], 1)], { axis: 2, _legacy_axis_2d: 1 })[2]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[R] -> [R]']);
});

test('LayerNormalization/RMSNormalization: dims before axis, statistics outputs follow', () => {
  expect(check('LayerNormalization', [rand([5, 4, 6], 1), rand([6], 2), rand([6], 3)], { axis: -1 }, { nOut: 3 })[3]).toEqual([
    '[S(0), R, R] -> [S(0), S(0), S(0)]',
    '[S(1), R, R] -> [S(1), S(1), S(1)]',
    '[R, R, R] -> [R, R, R]',
  ]);
  expect(check('LayerNormalization', [rand([5, 4, 6], 1), rand([4, 6], 2)], { axis: 1 })[2]).toEqual(['[S(0), R] -> [S(0)]', '[R, R] -> [R]']);
  expect(check('RMSNormalization', [rand([5, 4, 6], 1), rand([6], 2)], { axis: 2 })[2]).toEqual(['[S(0), R] -> [S(0)]', '[S(1), R] -> [S(1)]', '[R, R] -> [R]']);
});

test('BatchNormalization inference: N, C (parameters S(0)) and spatial dims; training: C only', () => {
  const ins = [rand([3, 5, 2, 4], 1), rand([5], 2), rand([5], 3), rand([5], 4), positive(5)];
  expect(check('BatchNormalization', ins)[2]).toEqual([
    '[S(0), R, R, R, R] -> [S(0)]',
    '[S(1), S(0), S(0), S(0), S(0)] -> [S(1)]',
    '[S(2), R, R, R, R] -> [S(2)]',
    '[S(3), R, R, R, R] -> [S(3)]',
    '[R, R, R, R, R] -> [R]',
  ]);
  expect(check('BatchNormalization', ins, { training_mode: 1, momentum: { float: 0.8 } }, { nOut: 3 })[3]).toEqual([
    '[S(1), S(0), S(0), S(0), S(0)] -> [S(1), S(0), S(0)]',
    '[R, R, R, R, R] -> [R, R, R]',
  ]);
});

test('InstanceNormalization: N, and C with scale/B; MVN: dims outside axes; LRN: all but channels', () => {
  expect(check('InstanceNormalization', [rand([3, 5, 4], 1), rand([5], 2), rand([5], 3)])[3]).toEqual([
    '[S(0), R, R] -> [S(0)]',
    '[S(1), S(0), S(0)] -> [S(1)]',
    '[R, R, R] -> [R]',
  ]);
  expect(check('MeanVarianceNormalization', [rand([3, 5, 2, 2], 1)])[3]).toEqual(['[S(1)] -> [S(1)]', '[R] -> [R]']);
  expect(check('MeanVarianceNormalization', [rand([3, 5, 4], 1)], { axes: [2] })[3]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[R] -> [R]']);
  expect(check('LRN', [rand([3, 5, 4, 2], 1)], { size: 3 })[3]).toEqual(['[S(0)] -> [S(0)]', '[S(2)] -> [S(2)]', '[R] -> [R]']);
});
