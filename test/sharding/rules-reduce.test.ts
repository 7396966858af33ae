/**
 * Reduce-family sharding rules: candidates pinned by their printed form and checked on 2 and 3
 * simulated devices against the unsharded evaluation.
 */
import { Tensor } from '../../src/ir/tensor.js';
import { check, counter, i64, rand, verdict } from './rules-harness.js';
import { parsePlacement } from '../../src/ir/layout.js';

afterAll(() => {
  expect(counter.checked).toBeGreaterThan(30);
});

test('ReduceSum without keepdims: kept dims renumber, the reduced dim gives P(sum), P(sum) passes', () => {
  const c = check('ReduceSum', [rand([5, 4, 3], 1), i64([1])], { keepdims: 0 });
  expect(c[3]).toEqual(['[S(0), R] -> [S(0)]', '[S(1), R] -> [P(sum)]', '[S(2), R] -> [S(1)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
});

test('ReduceMax/ReduceMin over everything give P(max)/P(min)', () => {
  expect(check('ReduceMax', [rand([5, 4], 1)], { keepdims: 0 })[2]).toEqual(['[S(0)] -> [P(max)]', '[S(1)] -> [P(max)]', '[P(max)] -> [P(max)]', '[R] -> [R]']);
  expect(check('ReduceMin', [rand([5, 4], 1), i64([-1])])[3]).toEqual(['[S(0), R] -> [S(0)]', '[S(1), R] -> [P(min)]', '[P(min), R] -> [P(min)]', '[R, R] -> [R]']);
});

test('ReduceMean over an unevenly sharded dim rescales the local mean (mean-rescale)', () => {
  const x = rand([5, 4, 3], 1);
  const c = check('ReduceMean', [x, i64([0, 2])], { keepdims: 1 });
  expect(c[3]).toEqual([
    '[S(0), R] -> [P(sum)] (mean-rescale)',
    '[S(1), R] -> [S(1)]',
    '[S(2), R] -> [P(sum)] (mean-rescale)',
    '[P(sum), R] -> [P(sum)]',
    '[R, R] -> [R]',
  ]);
  // Without the rewrite the same placements are wrong (5 rows as 2,2,1: block means do not sum to the mean).
  const bare = { inputs: [parsePlacement('S(0)'), parsePlacement('R')], outputs: [parsePlacement('P(sum)')] };
  expect(verdict('ReduceMean', [x, i64([0, 2])], bare, 3, { keepdims: 1 })).toMatch(/differ/);
});

test('ReduceSumSquare and ReduceL1 sum blocks; ReduceL2, ReduceProd, ReduceLogSumExp do not', () => {
  expect(check('ReduceSumSquare', [rand([5, 4], 1), i64([1])], { keepdims: 0 })[2]).toContain('[S(1), R] -> [P(sum)]');
  expect(check('ReduceL1', [rand([5, 4], 1), i64([0])], { keepdims: 0 })[3]).toContain('[S(0), R] -> [P(sum)]');
  for (const op of ['ReduceL2', 'ReduceProd', 'ReduceLogSumExp'])
    expect(check(op, [rand([5, 4], 1), i64([1])], { keepdims: 0 })[2]).toEqual(['[S(0), R] -> [S(0)]', '[R, R] -> [R]']);
});

test('integer ReduceSum over a sharded dim; noop_with_empty_axes passes every shard', () => {
  expect(check('ReduceSum', [rand([5, 4], 1, 'int64'), i64([0])], { keepdims: 0 })[2]).toEqual(['[S(0), R] -> [P(sum)]', '[S(1), R] -> [S(0)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
  expect(check('ReduceSum', [rand([5, 4], 1), Tensor.from('int64', [0], [])], { noop_with_empty_axes: 1 })[2]).toEqual([
    '[S(0), R] -> [S(0)]',
    '[S(1), R] -> [S(1)]',
    '[P(sum), R] -> [P(sum)]',
    '[R, R] -> [R]',
  ]);
});

test('axes not constant: only R', () => {
  expect(check('ReduceSum', [rand([5, 4], 1), i64([1])], {}, { constants: [false, false] })[2]).toEqual(['[R, R] -> [R]']);
});

test('ArgMax/ArgMin: shards of the other dims only', () => {
  expect(check('ArgMax', [rand([5, 4, 3], 1)], { axis: 1, keepdims: 0 })[3]).toEqual(['[S(0)] -> [S(0)]', '[S(2)] -> [S(1)]', '[R] -> [R]']);
  expect(check('ArgMin', [rand([5, 4, 3], 1)], { axis: 0, select_last_index: 1 })[2]).toEqual(['[S(1)] -> [S(1)]', '[S(2)] -> [S(2)]', '[R] -> [R]']);
});
