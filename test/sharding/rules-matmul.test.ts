/**
 * Matmul-family sharding rules (generated from einsum strings): candidates pinned by their
 * printed form and checked on 2 and 3 simulated devices against the unsharded evaluation.
 */
import { einsumCandidates, einsumSpec, matmulEquation } from '../../src/passes/sharding/rules/einsum-spec.js';
import { formatPlacement } from '../../src/ir/layout.js';
import { check, counter, rand } from './rules-harness.js';

afterAll(() => {
  expect(counter.checked).toBeGreaterThan(40);
});

test('matmulEquation covers batch broadcasting and 1-D operands', () => {
  expect(matmulEquation(2, 2)).toBe('mk,kn->mn');
  expect(matmulEquation(4, 3)).toBe('abmk,bkn->abmn');
  expect(matmulEquation(1, 3)).toBe('k,akn->an');
  expect(matmulEquation(3, 1)).toBe('amk,k->am');
  expect(matmulEquation(1, 1)).toBe('k,k->');
});

test('einsumCandidates: kept labels shard through, the contraction gives P(sum), size-1 (broadcast) operands stay R', () => {
  const spec = einsumSpec('bmk,bkn->bmn', [3, 3]);
  const got = einsumCandidates(spec, [[1, 4, 6], [3, 6, 5]], 2, { linear: true }).map(
    (c) => `${c.inputs.map(formatPlacement).join(',')}->${formatPlacement(c.output)}`,
  );
  // b: A broadcasts (size 1) so only B is split.
  expect(got).toEqual(['R,S(0)->S(0)', 'S(1),R->S(1)', 'R,S(2)->S(2)', 'S(2),S(1)->P(sum)', 'P(sum),R->P(sum)', 'R,P(sum)->P(sum)']);
  // Labels smaller than the axis are not split.
  expect(einsumCandidates(spec, [[1, 4, 6], [3, 6, 5]], 5, { linear: false }).length).toBe(2);
});

test('MatMul [2,5,7] × [7,3]: rows, columns and the contraction (7 on 3 devices: 3,2,2)', () => {
  const c = check('MatMul', [rand([2, 5, 7], 1), rand([7, 3], 2)]);
  expect(c[2]).toEqual([
    '[S(0), R] -> [S(0)]',
    '[S(1), R] -> [S(1)]',
    '[R, S(1)] -> [S(2)]',
    '[S(2), S(0)] -> [P(sum)]',
    '[P(sum), R] -> [P(sum)]',
    '[R, P(sum)] -> [P(sum)]',
    '[R, R] -> [R]',
  ]);
  // Batch 2 is not split over 3 devices.
  expect(c[3]).toEqual(c[2]!.slice(1));
});

test('MatMul batch broadcasting [4,1,5,6] × [3,6,2] and 1-D operands', () => {
  const c = check('MatMul', [rand([4, 1, 5, 6], 1), rand([3, 6, 2], 2)]);
  expect(c[2]).toEqual([
    '[S(0), R] -> [S(0)]',
    '[R, S(0)] -> [S(1)]',
    '[S(2), R] -> [S(2)]',
    '[R, S(2)] -> [S(3)]',
    '[S(3), S(1)] -> [P(sum)]',
    '[P(sum), R] -> [P(sum)]',
    '[R, P(sum)] -> [P(sum)]',
    '[R, R] -> [R]',
  ]);
  expect(check('MatMul', [rand([6], 1), rand([4, 6, 5], 2)])[3]).toEqual([
    '[R, S(0)] -> [S(0)]',
    '[R, S(2)] -> [S(1)]',
    '[S(0), S(1)] -> [P(sum)]',
    '[P(sum), R] -> [P(sum)]',
    '[R, P(sum)] -> [P(sum)]',
    '[R, R] -> [R]',
  ]);
  expect(check('MatMul', [rand([7], 1), rand([7], 2)])[3]).toEqual(['[S(0), S(0)] -> [P(sum)]', '[P(sum), R] -> [P(sum)]', '[R, P(sum)] -> [P(sum)]', '[R, R] -> [R]']);
});

test('Gemm transA/transB with alpha/beta: the bias follows the output, and is P(sum) when the output is', () => {
  const c = check('Gemm', [rand([6, 5], 1), rand([4, 6], 2), rand([4], 3)], { transA: 1, transB: 1, alpha: { float: 0.5 }, beta: { float: 2 } });
  expect(c[3]).toEqual([
    '[S(1), R, R] -> [S(0)]',
    '[R, S(0), S(0)] -> [S(1)]',
    '[S(0), S(1), P(sum)] -> [P(sum)]',
    '[P(sum), R, P(sum)] -> [P(sum)]',
    '[R, P(sum), P(sum)] -> [P(sum)]',
    '[R, R, R] -> [R]',
  ]);
  // A [5,1] bias column broadcasts over n: R there, S(0) with the rows.
  const col = check('Gemm', [rand([5, 6], 1), rand([6, 4], 2), rand([5, 1], 3)]);
  expect(col[2]!.slice(0, 2)).toEqual(['[S(0), R, S(0)] -> [S(0)]', '[R, S(1), R] -> [S(1)]']);
  // Without C.
  expect(check('Gemm', [rand([5, 6], 1), rand([6, 4], 2)])[2]![2]).toBe('[S(1), S(0)] -> [P(sum)]');
});

test('Einsum: batched contraction, trace, and a label summed away', () => {
  const c = check('Einsum', [rand([2, 5, 6], 1), rand([2, 6, 4], 2)], { equation: 'bij,bjk->bik' });
  expect(c[3]).toEqual(['[S(1), R] -> [S(1)]', '[R, S(2)] -> [S(2)]', '[S(2), S(1)] -> [P(sum)]', '[P(sum), R] -> [P(sum)]', '[R, P(sum)] -> [P(sum)]', '[R, R] -> [R]']);
  // The repeated label i is never split; the ellipsis dim is.
  expect(check('Einsum', [rand([3, 5, 5], 1)], { equation: '...ii->...i' })[3]).toEqual(['[S(0)] -> [S(0)]', '[P(sum)] -> [P(sum)]', '[R] -> [R]']);
  expect(check('Einsum', [rand([5, 4], 1)], { equation: 'ij->i' })[2]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [P(sum)]', '[P(sum)] -> [P(sum)]', '[R] -> [R]']);
});
