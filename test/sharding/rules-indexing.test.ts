/**
 * Sharding rules of the indexing family (and Resize), checked on simulated devices at axis sizes
 * 2 and 3 (and 4 for the vocabulary-parallel lookup): each candidate's local runs, after
 * rule.localize, reassemble to the unsharded result (check-rule.ts).
 */
import { Tensor } from '../../src/ir/tensor.js';
import { checkWith, counter, i64, ints, rand } from './rules-harness.js';

const check = checkWith({ constants: [] });

afterAll(() => {
  expect(counter.checked).toBeGreaterThan(80);
  console.log(`rules-indexing: ${counter.checked} candidate checks`);
});

describe('Gather', () => {
  test('vocabulary-parallel embedding: 50 rows over 2, 3 and 4 devices, masked lookup gives P(sum)', () => {
    // Ids hit every device's rows, the last row, and count from the end (-1 = row 49).
    const ids = i64([0, 12, 13, 25, 26, 37, 38, 49, -1, -50], [2, 5]);
    const c = check('Gather', [rand([50, 8], 1), ids], {}, { sizes: [2, 3, 4] });
    expect(c[4]).toEqual([
      '[S(1), R] -> [S(2)]',
      '[R, S(1)] -> [S(1)]',
      '[S(0), R] -> [P(sum)] (masked-gather)',
      '[P(sum), R] -> [P(sum)]',
      '[R, R] -> [R]',
    ]);
    expect(c[3]).toContain('[S(0), R] -> [P(sum)] (masked-gather)');
    expect(c[2]).toContain('[R, S(0)] -> [S(0)]');
  });

  test('masked lookup with int32 ids, scalar ids and a gather axis in the middle', () => {
    const mid = check('Gather', [rand([3, 10, 4], 2), ints([2, 3], -10, 10, 3, 'int32')], { axis: 1 });
    expect(mid[3]).toEqual([
      '[S(0), R] -> [S(0)]',
      '[S(2), R] -> [S(3)]',
      '[R, S(1)] -> [S(2)]',
      '[S(1), R] -> [P(sum)] (masked-gather)',
      '[P(sum), R] -> [P(sum)]',
      '[R, R] -> [R]',
    ]);
    const scalar = check('Gather', [rand([7, 6], 4), Tensor.scalar('int64', 5)]);
    expect(scalar[3]).toEqual(['[S(1), R] -> [S(0)]', '[S(0), R] -> [P(sum)] (masked-gather)', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
  });
});

describe('element and N-d indexing', () => {
  test('GatherElements: equal non-axis dims shard together; indices alone on the axis; masked data on the axis', () => {
    const c = check('GatherElements', [rand([4, 6, 3], 5), ints([4, 5, 3], -6, 6, 6)], { axis: 1 });
    expect(c[3]).toEqual([
      '[S(0), S(0)] -> [S(0)]',
      '[R, S(1)] -> [S(1)]',
      '[S(2), S(2)] -> [S(2)]',
      '[S(1), R] -> [P(sum)] (masked-gather-elements)',
      '[P(sum), R] -> [P(sum)]',
      '[R, R] -> [R]',
    ]);
    // Indices narrower than the data on dim 0: that dim is not offered.
    const narrow = check('GatherElements', [rand([4, 6], 7), ints([3, 6], 0, 4, 8)], { axis: 0 });
    expect(narrow[2]).toEqual([
      '[R, S(0)] -> [S(0)]',
      '[S(1), S(1)] -> [S(1)]',
      '[S(0), R] -> [P(sum)] (masked-gather-elements)',
      '[P(sum), R] -> [P(sum)]',
      '[R, R] -> [R]',
    ]);
  });

  test('ScatterElements: non-axis dims; P for none/add reductions only', () => {
    const data = rand([4, 6], 9);
    const ind = i64([0, 5, 2, 1, 3, 4, 5, 0, 1, 2, 3, 4], [4, 3]);
    const upd = rand([4, 3], 10);
    const none = check('ScatterElements', [data, ind, upd], { axis: 1 });
    expect(none[3]).toEqual(['[S(0), S(0), S(0)] -> [S(0)]', '[P(sum), R, P(sum)] -> [P(sum)]', '[R, R, R] -> [R]']);
    const add = check('ScatterElements', [data, ind, upd], { axis: 1, reduction: 'add' });
    expect(add[2]).toContain('[P(sum), R, P(sum)] -> [P(sum)]');
    const mul = check('ScatterElements', [data, ind, upd], { axis: 1, reduction: 'mul' });
    expect(mul[2]).toEqual(['[S(0), S(0), S(0)] -> [S(0)]', '[R, R, R] -> [R]']);
  });

  test('GatherND with batch_dims: batch dims, index dims, trailing data dims', () => {
    // data [3, 4, 5, 6], indices [3, 2, 1] (k = 1), batch_dims 1 → out [3, 2, 5, 6].
    const c = check('GatherND', [rand([3, 4, 5, 6], 11), ints([3, 2, 1], -4, 4, 12)], { batch_dims: 1 });
    expect(c[3]).toEqual(['[S(0), S(0)] -> [S(0)]', '[S(2), R] -> [S(2)]', '[S(3), R] -> [S(3)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
    expect(c[2]).toContain('[R, S(1)] -> [S(1)]');
  });

  test('ScatterND: data dims after the indexed ones shard with the updates', () => {
    // data [5, 4, 6], indices [3, 1] (k = 1), updates [3, 4, 6].
    const c = check('ScatterND', [rand([5, 4, 6], 13), i64([4, 0, 2], [3, 1]), rand([3, 4, 6], 14)]);
    expect(c[3]).toEqual(['[S(1), R, S(1)] -> [S(1)]', '[S(2), R, S(2)] -> [S(2)]', '[P(sum), R, P(sum)] -> [P(sum)]', '[R, R, R] -> [R]']);
  });

  test('OneHot shards the indices dims around the new axis', () => {
    const c = check('OneHot', [ints([4, 3], -5, 5, 15), Tensor.scalar('int64', 5), Tensor.from('float32', [2], [0, 2])], { axis: 1 });
    expect(c[3]).toEqual(['[S(0), R, R] -> [S(0)]', '[S(1), R, R] -> [S(2)]', '[R, R, R] -> [R]']);
  });
});

describe('axis ops', () => {
  test('TopK: non-axis dims, both outputs', () => {
    const c = check('TopK', [rand([4, 7, 3], 16), i64([2])], { axis: 1 }, { nOut: 2, constants: [false, true] });
    expect(c[3]).toEqual(['[S(0), R] -> [S(0), S(0)]', '[S(2), R] -> [S(2), S(2)]', '[R, R] -> [R, R]']);
  });

  test('CumSum: non-axis dims and P (linear)', () => {
    const c = check('CumSum', [rand([4, 6], 17), Tensor.scalar('int64', -1)], { exclusive: 1, reverse: 1 }, { constants: [false, true] });
    expect(c[3]).toEqual(['[S(0), R] -> [S(0)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
  });

  test('Trilu: the batch dims and P', () => {
    const c = check('Trilu', [rand([3, 4, 5], 18), Tensor.scalar('int64', 1)], { upper: 0 });
    expect(c[3]).toEqual(['[S(0), R] -> [S(0)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
  });

  test('EyeLike is replicate-only', () => {
    expect(check('EyeLike', [rand([4, 5], 19)])[2]).toEqual(['[R] -> [R]']);
  });
});

describe('Resize', () => {
  test('scales: batch and channel dims (scale 1) shard, P passes', () => {
    const x = rand([4, 3, 3, 4], 20);
    const scales = Tensor.from('float32', [4], [1, 1, 2, 1.5]);
    for (const mode of ['nearest', 'linear', 'cubic']) {
      const c = check('Resize', [x, undefined, scales], { mode }, { constants: [false, false, true] });
      expect(c[3]).toEqual(['[S(0), -, R] -> [S(0)]', '[S(1), -, R] -> [S(1)]', '[P(sum), -, R] -> [P(sum)]', '[R, -, R] -> [R]']);
    }
  });

  test('sizes are rewritten to the local output sizes; axes restrict the resized dims', () => {
    const x = rand([3, 4, 5, 6], 21);
    const c = check('Resize', [x, undefined, undefined, i64([3, 4, 10, 3])], { mode: 'linear', coordinate_transformation_mode: 'align_corners' }, {
      constants: [false, false, false, true],
    });
    expect(c[3]).toEqual(['[S(0), -, -, R] -> [S(0)]', '[S(1), -, -, R] -> [S(1)]', '[P(sum), -, -, R] -> [P(sum)]', '[R, -, -, R] -> [R]']);
    const ax = check('Resize', [x, undefined, undefined, i64([7])], { mode: 'nearest', axes: [2] }, { constants: [false, false, false, true] });
    expect(ax[2]).toEqual(['[S(0), -, -, R] -> [S(0)]', '[S(1), -, -, R] -> [S(1)]', '[S(3), -, -, R] -> [S(3)]', '[P(sum), -, -, R] -> [P(sum)]', '[R, -, -, R] -> [R]']);
  });

  test('tf_crop_and_resize is not sharded', () => {
    const x = rand([3, 3, 4, 4], 22);
    const roi = Tensor.from('float32', [8], [0, 0, 0.2, 0.2, 1, 1, 0.8, 0.8]);
    const c = check('Resize', [x, roi, Tensor.from('float32', [4], [1, 1, 2, 2])], { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize' }, {
      constants: [false, true, true],
    });
    expect(c[3]).toEqual(['[R, R, R] -> [R]']);
  });
});
