/**
 * Elementwise sharding rules: the candidates of representative rows, pinned by their printed
 * form, each checked on 2 and 3 simulated devices against the unsharded evaluation (uneven: 5
 * rows split 3+2 and 2+2+1).
 */
import { Tensor } from '../../src/ir/tensor.js';
import { check, counter, rand } from './rules-harness.js';

afterAll(() => {
  expect(counter.checked).toBeGreaterThan(50);
});

test('broadcast alignment: [5,1,4] + [3,4] → [5,3,4] shards each operand on its aligned dim, R where it broadcasts', () => {
  const c = check('Add', [rand([5, 1, 4], 1), rand([3, 4], 2)]);
  expect(c[3]).toEqual([
    '[S(0), R] -> [S(0)]',
    '[R, S(0)] -> [S(1)]',
    '[S(2), S(1)] -> [S(2)]',
    '[P(sum), P(sum)] -> [P(sum)]',
    '[P(max), R] -> [P(max)]',
    '[R, P(max)] -> [P(max)]',
    '[P(min), R] -> [P(min)]',
    '[R, P(min)] -> [P(min)]',
    '[R, R] -> [R]',
  ]);
});

test('Sub flips the order of a partial subtrahend: R - P(max) is P(min)', () => {
  const c = check('Sub', [rand([5, 4], 1), rand([5, 4], 2)]);
  expect(c[2]).toContain('[R, P(max)] -> [P(min)]');
  expect(c[2]).toContain('[R, P(min)] -> [P(max)]');
  expect(c[2]).toContain('[P(sum), P(sum)] -> [P(sum)]');
});

test('Mul is linear in either operand, Div only in the numerator, Pow in neither', () => {
  const m = check('Mul', [rand([5, 4], 1), rand([5, 4], 2)]);
  expect(m[2]).toEqual(['[S(0), S(0)] -> [S(0)]', '[S(1), S(1)] -> [S(1)]', '[P(sum), R] -> [P(sum)]', '[R, P(sum)] -> [P(sum)]', '[R, R] -> [R]']);
  const d = check('Div', [rand([5, 4], 1), Tensor.from('float32', [4], [0.5, -2, 4, 1.5])]);
  expect(d[2]).toEqual(['[S(0), R] -> [S(0)]', '[S(1), S(0)] -> [S(1)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
  const p = check('Pow', [Tensor.from('float32', [5], [1, 2, 3, 4, 5]), Tensor.from('float32', [5], [2, 0.5, 1, 3, 2])]);
  expect(p[3]).toEqual(['[S(0), S(0)] -> [S(0)]', '[R, R] -> [R]']);
});

test('integer Div: no partial (truncating division is not linear)', () => {
  const c = check('Div', [rand([5, 4], 1, 'int32'), Tensor.from('int32', [4], [2, 3, -2, 7])]);
  expect(c[2]).toEqual(['[S(0), R] -> [S(0)]', '[S(1), S(0)] -> [S(1)]', '[R, R] -> [R]']);
});

test('monotone unary ops pass P(max)/P(min), Neg swaps them, Abs passes neither', () => {
  expect(check('Relu', [rand([5, 4], 1)])[2]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[P(max)] -> [P(max)]', '[P(min)] -> [P(min)]', '[R] -> [R]']);
  expect(check('Neg', [rand([5, 4], 1)])[3]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[P(sum)] -> [P(sum)]', '[P(max)] -> [P(min)]', '[P(min)] -> [P(max)]', '[R] -> [R]']);
  expect(check('Abs', [rand([5, 4], 1)])[2]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[R] -> [R]']);
  // LeakyRelu with a negative slope is not monotone: no partial.
  expect(check('LeakyRelu', [rand([5, 4], 1)], { alpha: { float: -0.5 } })[2]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[R] -> [R]']);
  expect(check('LeakyRelu', [rand([5, 4], 1)], { alpha: { float: 0.1 } })[2]).toContain('[P(max)] -> [P(max)]');
});

test('Max/Min select: any one operand P(max), or all', () => {
  const c = check('Max', [rand([5, 4], 1), rand([5, 4], 2), rand([4], 3)]);
  expect(c[3]).toEqual([
    '[S(0), S(0), R] -> [S(0)]',
    '[S(1), S(1), S(0)] -> [S(1)]',
    '[P(max), R, R] -> [P(max)]',
    '[R, P(max), R] -> [P(max)]',
    '[R, R, P(max)] -> [P(max)]',
    '[P(max), P(max), P(max)] -> [P(max)]',
    '[R, R, R] -> [R]',
  ]);
});

test('Where: condition R and both branches partial', () => {
  const cond = Tensor.from('bool', [5, 4], Array.from({ length: 20 }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0));
  const c = check('Where', [cond, rand([5, 4], 2), rand([4], 3)]);
  expect(c[2]).toEqual([
    '[S(0), S(0), R] -> [S(0)]',
    '[S(1), S(1), S(0)] -> [S(1)]',
    '[R, P(sum), P(sum)] -> [P(sum)]',
    '[R, P(max), P(max)] -> [P(max)]',
    '[R, P(min), P(min)] -> [P(min)]',
    '[R, R, R] -> [R]',
  ]);
});

test('Clip: bounds stay R; Cast float → double passes every partial, float → int none', () => {
  expect(check('Clip', [rand([5, 4], 1), Tensor.scalar('float32', -0.2), undefined])[2]).toEqual([
    '[S(0), R, -] -> [S(0)]',
    '[S(1), R, -] -> [S(1)]',
    '[P(max), R, -] -> [P(max)]',
    '[P(min), R, -] -> [P(min)]',
    '[R, R, -] -> [R]',
  ]);
  expect(check('Cast', [rand([5, 4], 1)], { to: 11 })[2]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[P(sum)] -> [P(sum)]', '[P(max)] -> [P(max)]', '[P(min)] -> [P(min)]', '[R] -> [R]']);
  expect(check('Cast', [rand([5, 4], 1)], { to: 7 })[2]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1)]', '[R] -> [R]']);
});

test('Dropout: the mask follows shards; in training mode (seeded randomness) only R', () => {
  expect(check('Dropout', [rand([5, 4], 1)], {}, { nOut: 2 })[3]).toEqual(['[S(0)] -> [S(0), S(0)]', '[S(1)] -> [S(1), S(1)]', '[P(sum)] -> [P(sum), R]', '[R] -> [R, R]']);
  const training = [rand([5, 4], 1), Tensor.scalar('float32', 0.3), Tensor.from('bool', [], [1])];
  expect(check('Dropout', training, { seed: 3 }, { nOut: 2 })[2]).toEqual(['[R, R, R] -> [R, R]']);
});

test('float16 partial sums are exact per device and checked with the half tolerance', () => {
  const a = Tensor.from('float16', [5, 4], rand([5, 4], 1).data);
  const b = Tensor.from('float16', [5, 4], rand([5, 4], 2).data);
  expect(check('Add', [a, b])[3]).toContain('[P(sum), P(sum)] -> [P(sum)]');
});
